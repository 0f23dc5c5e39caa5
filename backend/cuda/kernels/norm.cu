// Normalisation: BatchNormalization (inference), BatchNormTrain,
// BatchNormGrad, LayerNormalization, LayerNormGrad; semantics in
// graph/ops_norm.go, arithmetic as backend/cpu/k_norm.go: statistics in
// double (batch statistics shifted by the channel's first element), the
// affine maps in float. Batch norm runs one block per channel, layer norm
// one block per row; their sums are fixed trees over the block's threads,
// so they are deterministic but not in the CPU's order (both in double).

// bn_coef: per channel a = scale/sqrt(var+eps), b = bias - mean*a, as floats.
__device__ void bn_coef(float* coef, const float* scale, const float* bias, const float* mean, const float* var, int c, double eps) {
	GT_LOOP(ch, c) {
		double a = (double)scale[ch] / sqrt((double)var[ch] + eps);
		double b = (double)bias[ch] - (double)mean[ch] * a;
		coef[2 * ch] = (float)a;
		coef[2 * ch + 1] = (float)b;
	}
}

__device__ void bn_apply(float* y, const float* x, const float* coef, int n, int c, int s) {
	GT_LOOP(i, n) {
		int ch = (i / s) % c;
		y[i] = x[i] * coef[2 * ch] + coef[2 * ch + 1];
	}
}

// bn_train: one block per channel (grid = C).
__device__ void bn_train(float* y, float* rm, float* rv, float* sm, float* si, const float* x, const float* scale,
		const float* bias, const float* rmIn, const float* rvIn, int n, int c, int s, double eps, double momentum) {
	__shared__ double sh[GT_BLOCK];
	int ch = blockIdx.x;
	int total = n * s;
	double shift = (double)x[ch * s];
	double sum = 0, sq = 0;
	for (int e = threadIdx.x; e < total; e += GT_BLOCK) {
		double d = (double)x[((e / s) * c + ch) * s + e % s] - shift;
		sum += d;
		sq += d * d;
	}
	sum = gt_block_sum_d(sum, sh);
	sq = gt_block_sum_d(sq, sh);
	double m = (double)total;
	double ds = sum / m;
	double var = sq / m - ds * ds;
	if (var < 0) var = 0;
	double mean = shift + ds;
	double inv = 1 / sqrt(var + eps);
	if (threadIdx.x == 0) {
		if (rm) rm[ch] = (float)((double)rmIn[ch] * momentum + mean * (1 - momentum));
		if (rv) rv[ch] = (float)((double)rvIn[ch] * momentum + var * m / (m - 1) * (1 - momentum));
		if (sm) sm[ch] = (float)mean;
		if (si) si[ch] = (float)inv;
	}
	if (!y) return;
	double a = (double)scale[ch] * inv;
	float af = (float)a, bf = (float)((double)bias[ch] - mean * a);
	for (int e = threadIdx.x; e < total; e += GT_BLOCK) {
		int i = ((e / s) * c + ch) * s + e % s;
		y[i] = x[i] * af + bf;
	}
}

// bn_grad: one block per channel.
__device__ void bn_grad(float* dx, float* dscale, float* dbias, const float* dy, const float* x, const float* scale,
		const float* mean, const float* invStd, int n, int c, int s) {
	__shared__ double sh[GT_BLOCK];
	int ch = blockIdx.x;
	int total = n * s;
	double mu = (double)mean[ch], inv = (double)invStd[ch];
	double sdy = 0, sdx = 0;
	for (int e = threadIdx.x; e < total; e += GT_BLOCK) {
		int i = ((e / s) * c + ch) * s + e % s;
		double g = (double)dy[i];
		sdy += g;
		sdx += g * ((double)x[i] - mu);
	}
	sdy = gt_block_sum_d(sdy, sh);
	sdx = gt_block_sum_d(sdx, sh);
	double db = sdy, ds = sdx * inv;
	if (threadIdx.x == 0) {
		if (dscale) dscale[ch] = (float)ds;
		if (dbias) dbias[ch] = (float)db;
	}
	if (!dx) return;
	double m = (double)total;
	double k1 = (double)scale[ch] * inv;
	double k2 = -k1 * inv * ds / m;
	double k3 = -k1 * db / m - k2 * mu;
	float a = (float)k1, b = (float)k2, d = (float)k3;
	for (int e = threadIdx.x; e < total; e += GT_BLOCK) {
		int i = ((e / s) * c + ch) * s + e % s;
		dx[i] = a * dy[i] + b * x[i] + d;
	}
}

// ln_forward: one block per row of `inner` elements; scale and bias have
// the row's shape (bias may be absent).
__device__ void ln_forward(float* y, float* meanOut, float* invOut, const float* x, const float* scale, const float* bias,
		int inner, double eps) {
	__shared__ double sh[GT_BLOCK];
	int r = blockIdx.x;
	const float* row = x + (size_t)r * inner;
	double sum = 0;
	for (int j = threadIdx.x; j < inner; j += GT_BLOCK) sum += (double)row[j];
	sum = gt_block_sum_d(sum, sh);
	double mean = sum / (double)inner;
	double ss = 0;
	for (int j = threadIdx.x; j < inner; j += GT_BLOCK) {
		double d = (double)row[j] - mean;
		ss += d * d;
	}
	ss = gt_block_sum_d(ss, sh);
	double inv = 1 / sqrt(ss / (double)inner + eps);
	if (threadIdx.x == 0) {
		if (meanOut) meanOut[r] = (float)mean;
		if (invOut) invOut[r] = (float)inv;
	}
	if (!y) return;
	float mf = (float)mean, invf = (float)inv;
	float* yr = y + (size_t)r * inner;
	for (int j = threadIdx.x; j < inner; j += GT_BLOCK) {
		float o = (row[j] - mf) * invf * scale[j];
		if (bias) o = o + bias[j];
		yr[j] = o;
	}
}

// ln_grad_x: one block per row.
__device__ void ln_grad_x(float* dx, const float* dy, const float* x, const float* scale, const float* mean,
		const float* invStd, int inner) {
	__shared__ double sh[GT_BLOCK];
	int r = blockIdx.x;
	double mu = (double)mean[r], inv = (double)invStd[r];
	const float* g = dy + (size_t)r * inner;
	const float* xr = x + (size_t)r * inner;
	double sg = 0, sgx = 0;
	for (int j = threadIdx.x; j < inner; j += GT_BLOCK) {
		double gv = (double)g[j] * (double)scale[j];
		sg += gv;
		sgx += gv * ((double)xr[j] - mu) * inv;
	}
	sg = gt_block_sum_d(sg, sh);
	sgx = gt_block_sum_d(sgx, sh);
	double mg = sg / (double)inner, mgx = sgx / (double)inner;
	for (int j = threadIdx.x; j < inner; j += GT_BLOCK) {
		double gv = (double)g[j] * (double)scale[j];
		double xh = ((double)xr[j] - mu) * inv;
		dx[(size_t)r * inner + j] = (float)(inv * (gv - mg - xh * mgx));
	}
}

// ln_grad_params: one thread per column, rows in order (the CPU's order).
__device__ void ln_grad_params(float* dscale, float* dbias, const float* dy, const float* x, const float* mean,
		const float* invStd, int rows, int inner) {
	GT_LOOP(j, inner) {
		double cs = 0, cb = 0;
		for (int r = 0; r < rows; r++) {
			double mu = (double)mean[r], inv = (double)invStd[r];
			double gv = (double)dy[(size_t)r * inner + j];
			cs += gv * ((double)x[(size_t)r * inner + j] - mu) * inv;
			cb += gv;
		}
		if (dscale) dscale[j] = (float)(0 + cs);
		if (dbias) dbias[j] = (float)(0 + cb);
	}
}
