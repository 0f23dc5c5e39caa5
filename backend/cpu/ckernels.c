//go:build cgo && !noopenblas

// The C kernels of the CPU backend's OpenBLAS build: a pool of POSIX threads
// that runs one task at a time split into parts (see cPool in cpool.go for
// why it exists), the tasks it runs (products split by rows or columns with
// Gemm's epilogue, the Adam update, 2x2 max pooling and its gradient's
// scatter), and the short-run data movement of convolutions, which Go
// workers call directly. Each computes exactly what the Go code it stands
// in for computes: the same IEEE operations in the same order. The file is
// ISO C11 (-std=c11, set in cpool_openblas.go), which keeps GCC from fusing
// a*b+c into one rounding; Go does not fuse on amd64 either.

#define _POSIX_C_SOURCE 200809L
#include "ckernels.h"
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*gt_fn)(const void *arg, int part, int parts);

struct gt_pool {
	int nthreads;
	pthread_t *threads;
	pthread_mutex_t run;   // one task at a time
	pthread_mutex_t mu;    // guards sleepers and quit
	pthread_cond_t cv;
	int sleepers, quit;
	atomic_uint gen;       // bumped for each task
	// The task's generation (high 32 bits) and the next part to claim
	// (low 32): a worker claims a part only of the task it was woken for,
	// so one delayed in the previous task's claim loop cannot take a part
	// of the next before the caller has counted that task's parts.
	atomic_ullong ticket;
	atomic_int pending;    // parts not yet finished
	gt_fn fn;
	const void *arg;
	int parts;
};

static double gt_now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline void gt_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("pause");
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

// gt_claim runs parts of task gen until none is left (or another task
// has begun).
static void gt_claim(gt_pool *p, unsigned gen) {
	for (;;) {
		unsigned long long t = atomic_load(&p->ticket);
		if ((unsigned)(t >> 32) != gen || (int)(unsigned)t >= p->parts) return;
		if (!atomic_compare_exchange_weak(&p->ticket, &t, t + 1)) continue;
		int i = (int)(unsigned)t;
		p->fn(p->arg, i, p->parts);
		atomic_fetch_sub(&p->pending, 1);
	}
}

// Workers spin briefly after a task, since tasks come in runs (the layers
// of a step), then sleep so that they do not take the cores from the Go
// workers between tasks.
#define GT_SPIN_SECONDS 50e-6

static void *gt_worker(void *arg) {
	gt_pool *p = arg;
	unsigned seen = 0;
	for (;;) {
		double start = gt_now();
		int spins = 0;
		while (atomic_load(&p->gen) == seen) {
			gt_relax();
			if (++spins % 64 == 0 && gt_now() - start > GT_SPIN_SECONDS) {
				pthread_mutex_lock(&p->mu);
				p->sleepers++;
				while (atomic_load(&p->gen) == seen && !p->quit)
					pthread_cond_wait(&p->cv, &p->mu);
				p->sleepers--;
				int quit = p->quit;
				pthread_mutex_unlock(&p->mu);
				if (quit) return NULL;
				break;
			}
		}
		seen = atomic_load(&p->gen);
		gt_claim(p, seen);
	}
}

// gt_avx2 says whether the CPU has AVX2; set by gt_init, from the
// package's init, before any kernel runs.
static int gt_avx2;

// gt_avx512 says whether the CPU has AVX-512F, for the loops that have an
// AVX-512 form; set with gt_avx2.
static int gt_avx512;

void gt_init(void) { gt_use_vectors(1); }

// gt_use_vectors turns the AVX2 loops on (where the CPU has AVX2) or off;
// tests run the scalar loops with it too.
void gt_use_vectors(int on) {
#if defined(__x86_64__)
	__builtin_cpu_init();
	gt_avx2 = on && __builtin_cpu_supports("avx2");
	gt_avx512 = gt_avx2 && __builtin_cpu_supports("avx512f");
#else
	(void)on;
#endif
}

gt_pool *gt_pool_new(int n) {
	gt_pool *p = calloc(1, sizeof *p);
	if (!p) return NULL;
	p->nthreads = n;
	pthread_mutex_init(&p->run, NULL);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = calloc(n, sizeof(pthread_t));
	for (int i = 1; i < n; i++) {
		if (!p->threads || pthread_create(&p->threads[i], NULL, gt_worker, p) != 0) {
			p->nthreads = i; // run with the threads we have
			break;
		}
	}
	return p;
}

// gt_pool_run runs fn(arg, i, parts) for every part i over the pool's
// threads and the caller's, and returns when all are done.
static void gt_pool_run(gt_pool *p, gt_fn fn, const void *arg, int parts) {
	pthread_mutex_lock(&p->run);
	p->fn = fn;
	p->arg = arg;
	p->parts = parts;
	atomic_store(&p->pending, parts);
	// The ticket opens the task's parts; gen then wakes the workers.
	unsigned gen = atomic_load(&p->gen) + 1;
	atomic_store(&p->ticket, (unsigned long long)gen << 32);
	atomic_store(&p->gen, gen);
	pthread_mutex_lock(&p->mu);
	if (p->sleepers > 0) pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	gt_claim(p, gen);
	while (atomic_load(&p->pending) > 0) gt_relax();
	pthread_mutex_unlock(&p->run);
}

// ---- sgemm split by rows or columns of C, with Gemm's epilogue ----

// gt_relu is Go's max(v, 0): NaN stays NaN, -0 becomes +0.
static inline float gt_relu(float v) { return v > 0 || v != v ? v : 0.0f; }

typedef struct {
	int ta, tb, m, n, k, lda, ldb, ldc, rows;
	float alpha, beta;
	const float *a, *b;
	float *c;
	const float *bias; // added to every row of C after the product, or NULL
	int relu;          // then C = max(C, 0)
} gt_gemm;

static void gt_gemm_part(const void *arg, int i, int parts) {
	const gt_gemm *j = arg;
	int total = j->rows ? j->m : j->n;
	int lo = (int)((long)total * i / parts), hi = (int)((long)total * (i + 1) / parts);
	if (hi <= lo) return;
	const float *a = j->a, *b = j->b, *bias = j->bias;
	float *c = j->c;
	int m = j->m, n = j->n;
	if (j->rows) {
		a += j->ta ? lo : (long)lo * j->lda;
		c += (long)lo * j->ldc;
		m = hi - lo;
	} else {
		b += j->tb ? (long)lo * j->ldb : lo;
		c += lo;
		if (bias) bias += lo;
		n = hi - lo;
	}
	cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
		m, n, j->k, j->alpha, a, j->lda, b, j->ldb, j->beta, c, j->ldc);
	// The epilogue on this part, while it is still in cache.
	if (!bias && !j->relu) return;
	for (int r = 0; r < m; r++) {
		float *row = c + (long)r * j->ldc;
		if (bias && j->relu) {
			for (int x = 0; x < n; x++) row[x] = gt_relu(row[x] + bias[x]);
		} else if (bias) {
			for (int x = 0; x < n; x++) row[x] += bias[x];
		} else {
			for (int x = 0; x < n; x++) row[x] = gt_relu(row[x]);
		}
	}
}

void gt_pool_sgemm(gt_pool *p, int ta, int tb, int m, int n, int k, float alpha,
		const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc,
		const float *bias, int relu) {
	// Rows when there are enough of them: a row part writes whole rows of C
	// and measured faster than a column part of the same size even when
	// it packs more of B (256x512x784: 1.14 against 1.15-1.50 ms; 256x256
	// x512: 0.41 against 0.51 ms); columns when rows are few (a 64-row
	// product split by rows would pack all of B per thread).
	int rows = m >= n || m >= 128 * p->nthreads;
	gt_gemm j = {ta, tb, m, n, k, lda, ldb, ldc, rows, alpha, beta, a, b, c, bias, relu};
	gt_pool_run(p, gt_gemm_part, &j, p->nthreads);
}

// ---- AdamUpdate, as adamKernel.run computes it ----

typedef struct {
	const float *p, *g, *m, *v;
	float *po, *mo, *vo;
	long n;
	float b1, omb1, b2, omb2, eps, step_size, bc2s, shrink;
	float scale, clip, wd; // gradPrep
	int plain, dec;
} gt_adam;

// gt_adam_scalar is adamKernel.run's loop over [lo, hi).
static void gt_adam_scalar(const gt_adam *k, long lo, long hi) {
	const float b1 = k->b1, omb1 = k->omb1, b2 = k->b2, omb2 = k->omb2;
	const float eps = k->eps, step_size = k->step_size, bc2s = k->bc2s, shrink = k->shrink;
	const float scale = k->scale, clip = k->clip, wd = k->wd;
	for (long i = lo; i < hi; i++) {
		float pv = k->p[i], gv = k->g[i];
		if (!k->plain) {
			gv *= scale;
			if (clip > 0) gv = gv > clip ? clip : (gv < -clip ? -clip : gv);
			if (wd != 0) gv += wd * pv;
		}
		if (k->dec) pv *= shrink;
		float mv = k->m[i] * b1 + gv * omb1;
		float vv = k->v[i] * b2 + omb2 * gv * gv;
		float denom = sqrtf(vv) / bc2s + eps;
		k->po[i] = pv - step_size * (mv / denom);
		k->mo[i] = mv;
		k->vo[i] = vv;
	}
}

#if defined(__x86_64__)
#include <immintrin.h>

// gt_adam_avx2 is the same loop eight lanes at a time, each lane the same
// IEEE operations in the same order; it returns where it stopped.
__attribute__((target("avx2")))
static long gt_adam_avx2(const gt_adam *k, long lo, long hi) {
	const __m256 b1 = _mm256_set1_ps(k->b1), omb1 = _mm256_set1_ps(k->omb1);
	const __m256 b2 = _mm256_set1_ps(k->b2), omb2 = _mm256_set1_ps(k->omb2);
	const __m256 eps = _mm256_set1_ps(k->eps), step_size = _mm256_set1_ps(k->step_size);
	const __m256 bc2s = _mm256_set1_ps(k->bc2s), shrink = _mm256_set1_ps(k->shrink);
	const __m256 scale = _mm256_set1_ps(k->scale), wd = _mm256_set1_ps(k->wd);
	const __m256 clip = _mm256_set1_ps(k->clip), nclip = _mm256_set1_ps(-k->clip);
	const int plain = k->plain, doclip = k->clip > 0, dowd = k->wd != 0, dec = k->dec;
	long i = lo;
	for (; i + 8 <= hi; i += 8) {
		__m256 pv = _mm256_loadu_ps(k->p + i), gv = _mm256_loadu_ps(k->g + i);
		if (!plain) {
			gv = _mm256_mul_ps(gv, scale);
			// min(clip, g) then max(-clip, ·) keep a NaN g, as the scalar
			// comparisons do: each returns its second operand when unordered.
			if (doclip) gv = _mm256_max_ps(nclip, _mm256_min_ps(clip, gv));
			if (dowd) gv = _mm256_add_ps(gv, _mm256_mul_ps(wd, pv));
		}
		if (dec) pv = _mm256_mul_ps(pv, shrink);
		__m256 mv = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(k->m + i), b1), _mm256_mul_ps(gv, omb1));
		__m256 vv = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(k->v + i), b2), _mm256_mul_ps(_mm256_mul_ps(omb2, gv), gv));
		__m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vv), bc2s), eps);
		_mm256_storeu_ps(k->po + i, _mm256_sub_ps(pv, _mm256_mul_ps(step_size, _mm256_div_ps(mv, denom))));
		_mm256_storeu_ps(k->mo + i, mv);
		_mm256_storeu_ps(k->vo + i, vv);
	}
	return i;
}
#endif

static void gt_adam_range(const gt_adam *k, long lo, long hi) {
#if defined(__x86_64__)
	if (gt_avx2) lo = gt_adam_avx2(k, lo, hi);
#endif
	gt_adam_scalar(k, lo, hi);
}

static void gt_adam_part(const void *arg, int i, int parts) {
	const gt_adam *k = arg;
	// Parts start on 16-element boundaries, so vector loops stay aligned
	// with each other across parts.
	long lo = (k->n * i / parts) & ~15L, hi = i + 1 == parts ? k->n : (k->n * (i + 1) / parts) & ~15L;
	if (hi > lo) gt_adam_range(k, lo, hi);
}

void gt_pool_adam(gt_pool *p, const float *pp, const float *g, const float *m, const float *v,
		float *po, float *mo, float *vo, long n,
		float b1, float omb1, float b2, float omb2, float eps, float step_size, float bc2s, float shrink,
		float scale, float clip, float wd, int plain, int dec) {
	gt_adam k = {pp, g, m, v, po, mo, vo, n, b1, omb1, b2, omb2, eps, step_size, bc2s, shrink,
		scale, clip, wd, plain, dec};
	gt_pool_run(p, gt_adam_part, &k, p->nthreads);
}
// ---- MaxPool 2x2 stride 2, as poolMax2x2 computes it ----

typedef struct {
	const float *x;
	float *y;
	long long *ind; // or NULL
	long planes;
	int H, W;
} gt_mp;

// gt_fmax is Go's max(x, y) on float32: y if y is NaN or greater, else x
// (x when NaN), and +0 over -0.
static inline float gt_fmax(float x, float y) {
	if (y != y || y > x) return y;
	if (x != x || x > y || x != 0) return x;
	union { float f; unsigned u; } a = {x}, b = {y};
	a.u &= b.u;
	return a.f;
}

static inline unsigned gt_bits(float f) {
	union { float f; unsigned u; } a = {f};
	return a.u;
}

// gt_mprow says what one row of 2x2 pooling reads and writes: the two input
// rows r0 and r1 (W apart in the input), OW outputs to y and, when ind is
// set, their Indices (i0 is the Indices value of r0[0]) or, when taps is
// set, their taps (which of the window's positions, 0..3 row-major, the
// Indices would name).
typedef struct {
	const float *r0, *r1;
	float *y;
	long long *ind;
	unsigned char *taps;
	long i0;
	int W, OW;
} gt_mprow;

// gt_mp_scalar pools one row.
static void gt_mp_scalar(const gt_mprow *q) {
	for (int ow = 0; ow < q->OW; ow++) {
		float a = q->r0[2 * ow], b = q->r0[2 * ow + 1];
		float c = q->r1[2 * ow], d = q->r1[2 * ow + 1];
		float m = gt_fmax(gt_fmax(gt_fmax(a, b), c), d);
		q->y[ow] = m;
		unsigned mb = gt_bits(m);
		int tap = gt_bits(a) == mb ? 0 : gt_bits(b) == mb ? 1 : gt_bits(c) == mb ? 2 : 3;
		if (q->ind) q->ind[ow] = q->i0 + 2 * ow + (tap & 1) + (tap >> 1) * q->W;
		if (q->taps) q->taps[ow] = (unsigned char)tap;
	}
}

#if defined(__x86_64__)
// gt_vfmax is gt_fmax on eight lanes.
__attribute__((target("avx2")))
static inline __m256 gt_vfmax(__m256 x, __m256 y) {
	__m256 takey = _mm256_or_ps(_mm256_cmp_ps(y, y, _CMP_UNORD_Q), _mm256_cmp_ps(y, x, _CMP_GT_OQ));
	__m256 r = _mm256_blendv_ps(x, y, takey);
	__m256 zero = _mm256_setzero_ps();
	__m256 both0 = _mm256_and_ps(_mm256_cmp_ps(x, zero, _CMP_EQ_OQ), _mm256_cmp_ps(y, zero, _CMP_EQ_OQ));
	return _mm256_blendv_ps(r, _mm256_and_ps(x, y), both0);
}

// gt_store_n stores the first n lanes of v (n <= 0: none; n >= 8: all)
// with plain stores of 8, 4, 2 and 1 lanes: masked stores are slow on some
// CPUs, and a staging buffer copied out stalls store forwarding.
__attribute__((target("avx2")))
static inline void gt_store_n(float *d, __m256 v, int n) {
	if (n >= 8) {
		_mm256_storeu_ps(d, v);
		return;
	}
	__m128 x = _mm256_castps256_ps128(v);
	if (n >= 4) {
		_mm_storeu_ps(d, x);
		x = _mm256_extractf128_ps(v, 1);
		d += 4, n -= 4;
	}
	if (n >= 2) {
		_mm_storel_pi((__m64 *)d, x);
		x = _mm_movehl_ps(x, x);
		d += 2, n -= 2;
	}
	if (n >= 1) _mm_store_ss(d, x);
}

// gt_mp_taps loads the taps of outputs [ow, ow+t) (t <= 8; a short group
// through masked loads) as four vectors: a and b the even and odd columns
// of row r0, c and d those of r1. Lanes come out in the order 0 1 4 5 2 3
// 6 7; gt_mp_unshuffle puts a result right.
__attribute__((target("avx2")))
static inline void gt_mp_taps(const float *r0, const float *r1, int ow, int t, __m256 *a, __m256 *b, __m256 *c, __m256 *d) {
	const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
	__m256 l0, h0, l1, h1;
	if (t == 8) {
		l0 = _mm256_loadu_ps(p0), h0 = _mm256_loadu_ps(p0 + 8);
		l1 = _mm256_loadu_ps(p1), h1 = _mm256_loadu_ps(p1 + 8);
	} else {
		__m256i ml = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * t), iota);
		__m256i mh = _mm256_cmpgt_epi32(_mm256_set1_epi32(2 * t - 8), iota);
		l0 = _mm256_maskload_ps(p0, ml), h0 = _mm256_maskload_ps(p0 + 8, mh);
		l1 = _mm256_maskload_ps(p1, ml), h1 = _mm256_maskload_ps(p1 + 8, mh);
	}
	*a = _mm256_shuffle_ps(l0, h0, 0x88), *b = _mm256_shuffle_ps(l0, h0, 0xDD);
	*c = _mm256_shuffle_ps(l1, h1, 0x88), *d = _mm256_shuffle_ps(l1, h1, 0xDD);
}

__attribute__((target("avx2")))
static inline __m256 gt_mp_unshuffle(__m256 v) {
	return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8));
}

// gt_mp_first picks, per lane, v1, v2 or v3 for the first of the
// window's taps b, c, (d) whose bits equal the maximum mp's, or 0 for a:
// MaxPool's Indices name the first; in the taps' shuffled order, then put
// right as gt_mp_unshuffle puts the maximum.
__attribute__((target("avx2")))
static inline __m256i gt_mp_first(__m256 a, __m256 b, __m256 c, __m256 mp, __m256i v1, __m256i v2, __m256i v3) {
	__m256i mi = _mm256_castps_si256(mp), r = v3;
	r = _mm256_blendv_epi8(r, v2, _mm256_cmpeq_epi32(_mm256_castps_si256(c), mi));
	r = _mm256_blendv_epi8(r, v1, _mm256_cmpeq_epi32(_mm256_castps_si256(b), mi));
	r = _mm256_blendv_epi8(r, _mm256_setzero_si256(), _mm256_cmpeq_epi32(_mm256_castps_si256(a), mi));
	return _mm256_permute4x64_epi64(r, 0xD8);
}

// gt_mp_avx2 is gt_mp_scalar eight outputs at a time. A last short group
// is done again over the last eight outputs (the same results into the
// same places) when the row has eight; a row shorter than eight goes
// through masked loads and stores of exact size (gt_store_n).
__attribute__((target("avx2")))
static void gt_mp_avx2(const gt_mprow *q) {
	const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const __m256i o1 = _mm256_set1_epi32(1), oW = _mm256_set1_epi32(q->W), oW1 = _mm256_set1_epi32(q->W + 1);
	float *y = q->y;
	long long *ind = q->ind;
	for (int ow = 0; ow < q->OW; ow += 8) {
		int t = q->OW - ow < 8 ? q->OW - ow : 8;
		if (t < 8 && q->OW >= 8) ow = q->OW - 8, t = 8;
		__m256 a, b, c, d;
		gt_mp_taps(q->r0, q->r1, ow, t, &a, &b, &c, &d);
		__m256 mp = gt_vfmax(gt_vfmax(gt_vfmax(a, b), c), d);
		__m256 m = gt_mp_unshuffle(mp);
		gt_store_n(y + ow, m, t);
		if (q->taps) {
			__m256i tap = gt_mp_first(a, b, c, mp, o1, _mm256_set1_epi32(2), _mm256_set1_epi32(3));
			__m128i t16 = _mm_packus_epi32(_mm256_castsi256_si128(tap), _mm256_extracti128_si256(tap, 1));
			__m128i t8 = _mm_packus_epi16(t16, t16);
			if (t == 8) {
				_mm_storel_epi64((__m128i *)(q->taps + ow), t8);
			} else {
				unsigned long long u = (unsigned long long)_mm_cvtsi128_si64(t8);
				for (int l = 0; l < t; l++) q->taps[ow + l] = (unsigned char)(u >> (8 * l));
			}
		}
		if (!ind) continue;
		// The first tap's offset in the input, + 2*lane.
		__m256i off = gt_mp_first(a, b, c, mp, o1, oW, oW1);
		off = _mm256_add_epi32(off, _mm256_add_epi32(iota, iota));
		long long base = q->i0 + 2 * ow;
		__m256i lo = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(off)), _mm256_set1_epi64x(base));
		__m256i hi = _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(off, 1)), _mm256_set1_epi64x(base));
		if (t == 8) {
			_mm256_storeu_si256((__m256i *)(ind + ow), lo);
			_mm256_storeu_si256((__m256i *)(ind + ow + 4), hi);
		} else {
			long long tmp[8];
			_mm256_storeu_si256((__m256i *)tmp, lo);
			_mm256_storeu_si256((__m256i *)(tmp + 4), hi);
			for (int l = 0; l < t; l++) ind[ow + l] = tmp[l];
		}
	}
}
#endif

#if defined(__x86_64__)
// gt_zfmax is gt_fmax on sixteen lanes.
__attribute__((target("avx512f")))
static inline __m512 gt_zfmax(__m512 x, __m512 y) {
	__mmask16 takey = _mm512_cmp_ps_mask(y, y, _CMP_UNORD_Q) | _mm512_cmp_ps_mask(y, x, _CMP_GT_OQ);
	__m512 r = _mm512_mask_blend_ps(takey, x, y);
	__m512 zero = _mm512_setzero_ps();
	__mmask16 both0 = _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ) & _mm512_cmp_ps_mask(y, zero, _CMP_EQ_OQ);
	__m512 and = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_castps_si512(y)));
	return _mm512_mask_blend_ps(both0, r, and);
}

// gt_mp_avx512 is gt_mp_planes without Indices or taps (the fused Conv's
// pooling in inference), sixteen outputs at a time: a pooled row's inputs
// are read through lane masks (nothing past the row is touched) and split
// into the windows' even and odd columns by permutes, and its outputs are
// stored through a lane mask, fast on CPUs with AVX-512.
__attribute__((target("avx512f")))
static void gt_mp_avx512(const float *x, long inStride, long ldr, float *y, long p0, long p1, int H, int W) {
	int OH = H / 2, OW = W / 2;
	const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
	const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
	const __m512 zero = _mm512_setzero_ps();
	for (long p = p0; p < p1; p++) {
		for (int oh = 0; oh < OH; oh++) {
			const float *r0 = x + p * inStride + 2L * oh * ldr, *r1 = r0 + ldr;
			float *out = y + (p * OH + oh) * (long)OW;
			for (int ow = 0; ow < OW; ow += 16) {
				int t = OW - ow < 16 ? OW - ow : 16, in = 2 * t;
				__mmask16 mlo = in >= 16 ? 0xFFFF : (__mmask16)((1u << in) - 1);
				__m512 l0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ow), l1 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ow);
				__m512 h0 = zero, h1 = zero;
				if (in > 16) {
					__mmask16 mhi = in >= 32 ? 0xFFFF : (__mmask16)((1u << (in - 16)) - 1);
					h0 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ow + 16), h1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ow + 16);
				}
				__m512 a = _mm512_permutex2var_ps(l0, even, h0), b = _mm512_permutex2var_ps(l0, odd, h0);
				__m512 c = _mm512_permutex2var_ps(l1, even, h1), d = _mm512_permutex2var_ps(l1, odd, h1);
				__m512 m = gt_zfmax(gt_zfmax(gt_zfmax(a, b), c), d);
				_mm512_mask_storeu_ps(out + ow, t >= 16 ? 0xFFFF : (__mmask16)((1u << t) - 1), m);
			}
		}
	}
}
#endif

// gt_mp_planes pools planes [p0, p1) of H x W (inStride apart, rows ldr
// apart; Indices, which MaxPool alone asks for, assume ldr == W) into
// contiguous planes of H/2 x W/2 (and their Indices, ind set, or taps,
// taps set), as poolMax2x2 does.
static void gt_mp_planes(const float *x, long inStride, long ldr, float *y, long long *ind, unsigned char *taps, long p0, long p1,
		int H, int W) {
	int OH = H / 2, OW = W / 2;
#if defined(__x86_64__)
	if (gt_avx512 && !ind && !taps) {
		gt_mp_avx512(x, inStride, ldr, y, p0, p1, H, W);
		return;
	}
#endif
	for (long p = p0; p < p1; p++) {
		for (int oh = 0; oh < OH; oh++) {
			long out = (p * OH + oh) * OW;
			gt_mprow q = {x + p * inStride + 2L * oh * ldr, x + p * inStride + (2L * oh + 1) * ldr, y + out,
				ind ? ind + out : NULL, taps ? taps + out : NULL, p * inStride + 2L * oh * W, W, OW};
#if defined(__x86_64__)
			if (gt_avx2) {
				gt_mp_avx2(&q);
				continue;
			}
#endif
			gt_mp_scalar(&q);
		}
	}
}

static void gt_mp_part(const void *arg, int i, int parts) {
	const gt_mp *k = arg;
	gt_mp_planes(k->x, (long)k->H * k->W, k->W, k->y, k->ind, NULL, k->planes * i / parts, k->planes * (i + 1) / parts,
		k->H, k->W);
}

void gt_pool_maxpool2x2(gt_pool *p, const float *x, float *y, long long *ind, long planes, int H, int W) {
	gt_mp k = {x, y, ind, planes, H, W};
	gt_pool_run(p, gt_mp_part, &k, planes < p->nthreads ? (int)planes : p->nthreads);
}
// ---- MaxPoolGrad, as poolMaxGradKernel computes it ----

typedef struct {
	const float *dy, *x; // x: only with relu
	const long long *ind;
	float *dx;
	long planes, inPlane, outPlane;
	int relu;
	atomic_llong bad; // 1 + position of an index outside its plane, or 0
} gt_mpg;

static void gt_mpg_part(const void *arg, int i, int parts) {
	gt_mpg *k = (gt_mpg *)arg;
	long lo = k->planes * i / parts, hi = k->planes * (i + 1) / parts;
	for (long pl = lo; pl < hi; pl++) {
		float *xp = k->dx + pl * k->inPlane;
		memset(xp, 0, sizeof(float) * k->inPlane);
		long long base = (long long)pl * k->inPlane;
		for (long o = pl * k->outPlane; o < (pl + 1) * k->outPlane; o++) {
			long long idx = k->ind[o];
			if (idx == -1) continue; // MaxPool's mark of a window with no input tap
			long long j = idx - base;
			if (j < 0 || j >= k->inPlane) {
				long long zero = 0;
				atomic_compare_exchange_strong(&k->bad, &zero, (long long)o + 1);
				continue;
			}
			if (k->relu && !(k->x[base + j] > 0)) continue;
			xp[j] += k->dy[o];
		}
	}
}

long long gt_pool_maxpoolgrad(gt_pool *p, const float *dy, const long long *ind, const float *x, float *dx,
		long planes, long inPlane, long outPlane, int relu) {
	gt_mpg k = {dy, x, ind, dx, planes, inPlane, outPlane, relu};
	atomic_init(&k.bad, 0);
	gt_pool_run(p, gt_mpg_part, &k, planes < p->nthreads ? (int)planes : p->nthreads);
	return atomic_load(&k.bad);
}
// ---- im2col for 2-D, stride 1, undilated, unpadded convolutions ----

// gt_im2col_dense2d writes the c*kh*kw rows of OH runs of OW elements each
// (rows ld apart) from x (c planes of H x W), as im2colDense2D does.
#if defined(__x86_64__)
// gt_copy_runs_avx2 copies OH runs of OW floats (8 <= OW), run oh from
// src + oh*W to dst + oh*OW, in 8-float vectors, the last one ending at the
// run's end (overlapping the one before rather than overrunning): a call
// to memcpy per run cost more than the run.
__attribute__((target("avx2")))
static void gt_copy_runs_avx2(float *dst, const float *src, int OH, int OW, int W) {
	for (int oh = 0; oh < OH; oh++) {
		float *d = dst + (long)oh * OW;
		const float *s = src + (long)oh * W;
		int j = 0;
		for (; j + 8 <= OW; j += 8) _mm256_storeu_ps(d + j, _mm256_loadu_ps(s + j));
		if (j < OW) _mm256_storeu_ps(d + OW - 8, _mm256_loadu_ps(s + OW - 8));
	}
}
#endif

void gt_im2col_dense2d(const float *x, float *col, int c, int H, int W, int KH, int KW, int OH, int OW, long ld) {
#if defined(__x86_64__)
	if (gt_avx2 && OW >= 8) {
		long row = 0;
		for (int ch = 0; ch < c; ch++)
			for (int kh = 0; kh < KH; kh++)
				for (int kw = 0; kw < KW; kw++, row++)
					gt_copy_runs_avx2(col + row * ld, x + (long)ch * H * W + kh * W + kw, OH, OW, W);
		return;
	}
#endif
	long row = 0;
	for (int ch = 0; ch < c; ch++) {
		const float *xc = x + (long)ch * H * W;
		for (int kh = 0; kh < KH; kh++) {
			for (int kw = 0; kw < KW; kw++, row++) {
				float *dst = col + row * ld;
				const float *src = xc + kh * W + kw;
				for (int oh = 0; oh < OH; oh++) memcpy(dst + oh * OW, src + (long)oh * W, sizeof(float) * OW);
			}
		}
	}
}
#if defined(__x86_64__)
// gt_col2im3_avx2 does col2im's three-tap loop, xr[j] += r0[j] + r1[j-1] +
// r2[j-2] for j from 2, eight j at a time (the same sums in the same
// order), and returns the first j it left.
__attribute__((target("avx2")))
static int gt_col2im3_avx2(float *xr, const float *r0, const float *r1, const float *r2, int OW) {
	int j = 2;
	for (; j + 8 <= OW; j += 8) {
		__m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(r0 + j), _mm256_loadu_ps(r1 + j - 1)), _mm256_loadu_ps(r2 + j - 2));
		_mm256_storeu_ps(xr + j, _mm256_add_ps(_mm256_loadu_ps(xr + j), v));
	}
	return j;
}
#endif

// gt_col2im_dense2d adds the column rows back into x, as col2imDense2DGo
// does (same sums in the same order).
void gt_col2im_dense2d(const float *col, float *x, int c, int H, int W, int KH, int KW, int OH, int OW, long ld) {
	for (int ch = 0; ch < c; ch++) {
		float *xc = x + (long)ch * H * W;
		for (int kh = 0; kh < KH; kh++) {
			long row0 = ((long)ch * KH + kh) * KW;
			for (int oh = 0; oh < OH; oh++) {
				float *xr = xc + (long)(oh + kh) * W;
				if (KW == 3 && OW >= 2) {
					const float *r0 = col + row0 * ld + (long)oh * OW;
					const float *r1 = col + (row0 + 1) * ld + (long)oh * OW;
					const float *r2 = col + (row0 + 2) * ld + (long)oh * OW;
					xr[0] += r0[0];
					xr[1] += r0[1] + r1[0];
					int j = 2;
#if defined(__x86_64__)
					if (gt_avx2) j = gt_col2im3_avx2(xr, r0, r1, r2, OW);
#endif
					for (; j < OW; j++) xr[j] += r0[j] + r1[j - 1] + r2[j - 2];
					xr[OW] += r1[OW - 1] + r2[OW - 2];
					xr[OW + 1] += r2[OW - 1];
					continue;
				}
				for (int kw = 0; kw < KW; kw++) {
					const float *r = col + (row0 + kw) * ld + (long)oh * OW;
					float *d = xr + kw;
					for (int j = 0; j < OW; j++) d[j] += r[j];
				}
			}
		}
	}
}
// gt_maxpool2x2_planes is the fused Conv+MaxPool's pooling (convPoolGo).
void gt_maxpool2x2_planes(const float *x, long inStride, long ldr, float *y, unsigned char *taps, long planes, int H, int W) {
	gt_mp_planes(x, inStride, ldr, y, NULL, taps, 0, planes, H, W);
}

// ---- The gradient of a 2x2 pool spread back over its windows ----

// gt_unpool_scalar writes one pooled row's two full-size rows, as
// unpoolGo does: each window's tap gets (+0) + dy (nothing, with a mask
// ym whose value is not positive), its other positions +0.
static void gt_unpool_scalar(const float *dy, const unsigned char *taps, const float *ym, float *r0, float *r1, int OW) {
	for (int ow = 0; ow < OW; ow++) {
		float v = 0.0f;
		if (!ym || ym[ow] > 0) v = 0.0f + dy[ow];
		int t = taps[ow] & 3;
		r0[2 * ow] = t == 0 ? v : 0.0f;
		r0[2 * ow + 1] = t == 1 ? v : 0.0f;
		r1[2 * ow] = t == 2 ? v : 0.0f;
		r1[2 * ow + 1] = t == 3 ? v : 0.0f;
	}
}

#if defined(__x86_64__)
// gt_unpool_avx2 is gt_unpool_scalar eight pooled values at a time. A
// last short group is done again over the last eight values (the same
// results into the same places) when the row has eight; a row shorter
// than eight goes through masked loads and stores of exact size
// (gt_store_n).
__attribute__((target("avx2")))
static void gt_unpool_avx2(const float *dy, const unsigned char *taps, const float *ym, float *r0, float *r1, int OW) {
	const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const __m256 zero = _mm256_setzero_ps();
	for (int ow = 0; ow < OW; ow += 8) {
		int t = OW - ow < 8 ? OW - ow : 8;
		if (t < 8 && OW >= 8) ow = OW - 8, t = 8;
		__m256 d, y = zero;
		__m256i tap;
		if (t == 8) {
			d = _mm256_loadu_ps(dy + ow);
			if (ym) y = _mm256_loadu_ps(ym + ow);
			tap = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(taps + ow)));
		} else {
			__m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(t), iota);
			d = _mm256_maskload_ps(dy + ow, mask);
			if (ym) y = _mm256_maskload_ps(ym + ow, mask);
			unsigned long long u = 0;
			for (int l = 0; l < t; l++) u |= (unsigned long long)taps[ow + l] << (8 * l);
			tap = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)u));
		}
		tap = _mm256_and_si256(tap, _mm256_set1_epi32(3));
		__m256 v = _mm256_add_ps(zero, d);
		if (ym) v = _mm256_and_ps(v, _mm256_cmp_ps(y, zero, _CMP_GT_OQ));
		__m256 e0 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(tap, _mm256_setzero_si256())));
		__m256 e1 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(tap, _mm256_set1_epi32(1))));
		__m256 e2 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(tap, _mm256_set1_epi32(2))));
		__m256 e3 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(tap, _mm256_set1_epi32(3))));
		// Interleave: row 0 is e0[0] e1[0] e0[1] e1[1] ..., row 1 the same of e2, e3.
		__m256 lo0 = _mm256_unpacklo_ps(e0, e1), hi0 = _mm256_unpackhi_ps(e0, e1);
		__m256 lo1 = _mm256_unpacklo_ps(e2, e3), hi1 = _mm256_unpackhi_ps(e2, e3);
		__m256 a0 = _mm256_permute2f128_ps(lo0, hi0, 0x20), b0 = _mm256_permute2f128_ps(lo0, hi0, 0x31);
		__m256 a1 = _mm256_permute2f128_ps(lo1, hi1, 0x20), b1 = _mm256_permute2f128_ps(lo1, hi1, 0x31);
		if (t == 8) {
			_mm256_storeu_ps(r0 + 2 * ow, a0), _mm256_storeu_ps(r0 + 2 * ow + 8, b0);
			_mm256_storeu_ps(r1 + 2 * ow, a1), _mm256_storeu_ps(r1 + 2 * ow + 8, b1);
		} else {
			gt_store_n(r0 + 2 * ow, a0, 2 * t), gt_store_n(r0 + 2 * ow + 8, b0, 2 * t - 8);
			gt_store_n(r1 + 2 * ow, a1, 2 * t), gt_store_n(r1 + 2 * ow + 8, b1, 2 * t - 8);
		}
	}
}
#endif

// gt_unpool2x2_planes spreads planes of pooled gradient dy (OH x OW,
// contiguous; OH = H/2, OW = W/2) over full-size planes of H x W (ldd
// apart) through the taps, masked by ym > 0 when ym is set, as unpoolGo
// does; a last odd row or column is +0.
void gt_unpool2x2_planes(const float *dy, const unsigned char *taps, const float *ym, float *dst, long ldd,
		long planes, int H, int W) {
	int OH = H / 2, OW = W / 2;
	for (long p = 0; p < planes; p++) {
		float *d = dst + p * ldd;
		for (int oh = 0; oh < OH; oh++) {
			long in = (p * OH + oh) * OW;
			float *r0 = d + 2L * oh * W, *r1 = r0 + W;
			const float *y = ym ? ym + in : NULL;
#if defined(__x86_64__)
			if (gt_avx2) gt_unpool_avx2(dy + in, taps + in, y, r0, r1, OW);
			else
#endif
				gt_unpool_scalar(dy + in, taps + in, y, r0, r1, OW);
			if (W & 1) r0[W - 1] = r1[W - 1] = 0.0f;
		}
		if (H & 1) memset(d + (long)(H - 1) * W, 0, sizeof(float) * W);
	}
}
