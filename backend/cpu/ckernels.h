//go:build cgo && !noopenblas

// Entry points of ckernels.c, for cpool_openblas.go.

#ifndef GOTRAIN_CKERNELS_H
#define GOTRAIN_CKERNELS_H

typedef struct gt_pool gt_pool;

void gt_init(void);
void gt_use_vectors(int on);
gt_pool *gt_pool_new(int n);
void gt_pool_sgemm(gt_pool *p, int ta, int tb, int m, int n, int k, float alpha,
	const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc,
	const float *bias, int relu);
void gt_pool_adam(gt_pool *p, const float *pp, const float *g, const float *m, const float *v,
	float *po, float *mo, float *vo, long n,
	float b1, float omb1, float b2, float omb2, float eps, float step_size, float bc2s, float shrink,
	float scale, float clip, float wd, int plain, int dec);
void gt_pool_maxpool2x2(gt_pool *p, const float *x, float *y, long long *ind, long planes, int H, int W);
long long gt_pool_maxpoolgrad(gt_pool *p, const float *dy, const long long *ind, const float *x, float *dx,
	long planes, long inPlane, long outPlane, int relu);
void gt_im2col_dense2d(const float *x, float *col, int c, int H, int W, int KH, int KW, int OH, int OW, long ld);
void gt_col2im_dense2d(const float *col, float *x, int c, int H, int W, int KH, int KW, int OH, int OW, long ld);
void gt_maxpool2x2_planes(const float *x, long inStride, long ldr, float *y, unsigned char *taps, long planes, int H, int W);
void gt_unpool2x2_planes(const float *dy, const unsigned char *taps, const float *ym, float *dst, long ldd,
	long planes, int H, int W);

#endif
