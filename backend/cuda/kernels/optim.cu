// The fused optimizer updates and GlobalNormScale; formulas in
// backend/cpu/k_optim.go. Per element float32, with the step's scalars (bias
// corrections, decayed rates) computed in double from the device's lr and
// step, as the CPU computes them in float64 on the host. Updates read every
// input of an index before writing its outputs, so they may run in place.
// A step below 1 sets the status word and leaves the outputs unwritten.

struct OptPrep {
	float scale, clip, wd;
	__device__ __forceinline__ float apply(float g, float p) const {
		g *= scale;
		if (clip > 0) {
			if (g > clip) g = clip;
			else if (g < -clip) g = -clip;
		}
		if (wd != 0) g += wd * p;
		return g;
	}
};

__device__ __forceinline__ bool opt_scalars(const float* lr_in, const i64* step_in, const float* gscale, double lr_scale,
		float clip, float wd, double* lr, i64* step, OptPrep* prep, int* status) {
	*lr = (double)*lr_in * lr_scale;
	*step = *step_in;
	if (*step < 1) {
		*status = 1;
		return false;
	}
	prep->scale = gscale ? *gscale : 1.0f;
	prep->clip = clip;
	prep->wd = wd;
	return true;
}

__device__ __forceinline__ float opt_sqrt(float x) { return (float)sqrt((double)x); }

__device__ void opt_sgd(float* po, float* bo, const float* p, const float* g, const float* b, const float* lr_in,
		const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd, double dec_wd,
		float momentum, float dampening, int nesterov, int* status) {
	double lr;
	i64 step;
	OptPrep prep;
	if (!opt_scalars(lr_in, step_in, gscale, lr_scale, clip, wd, &lr, &step, &prep, status)) return;
	float lrf = (float)lr, shrink = (float)(1 - lr * dec_wd), damp1 = 1 - dampening;
	bool first = step == 1;
	GT_LOOP(i, n) {
		float pv = p[i];
		float gv = prep.apply(g[i], pv);
		if (dec_wd != 0) pv *= shrink;
		if (momentum != 0) {
			float bv = gv;
			if (!first) bv = momentum * b[i] + damp1 * gv;
			if (nesterov) gv += momentum * bv;
			else gv = bv;
			bo[i] = bv;
		}
		po[i] = pv - lrf * gv;
	}
}

__device__ void opt_adam(float* po, float* mo, float* vo, const float* p, const float* g, const float* m, const float* v,
		const float* lr_in, const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd,
		double dec_wd, float b1, float b2, float omb1, float omb2, float eps, int keras, int* status) {
	double lr;
	i64 step;
	OptPrep prep;
	if (!opt_scalars(lr_in, step_in, gscale, lr_scale, clip, wd, &lr, &step, &prep, status)) return;
	double bc1 = 1 - pow((double)b1, (double)step);
	double bc2 = 1 - pow((double)b2, (double)step);
	float stepSize, bc2s;
	if (keras) {
		stepSize = (float)(lr * sqrt(bc2) / bc1);
		bc2s = 1;
	} else {
		stepSize = (float)(lr / bc1);
		bc2s = (float)sqrt(bc2);
	}
	float shrink = (float)(1 - lr * dec_wd);
	bool plain = prep.scale == 1 && prep.clip == 0 && prep.wd == 0;
	GT_LOOP(i, n) {
		float pv = p[i], gv = g[i];
		if (!plain) gv = prep.apply(gv, pv);
		if (dec_wd != 0) pv *= shrink;
		float mv = m[i] * b1 + gv * omb1;
		float vv = v[i] * b2 + omb2 * gv * gv;
		float denom = opt_sqrt(vv) / bc2s + eps;
		po[i] = pv - stepSize * (mv / denom);
		mo[i] = mv;
		vo[i] = vv;
	}
}

__device__ void opt_rmsprop(float* po, float* sqo, float* bo, float* gao, const float* p, const float* g, const float* sq,
		const float* b, const float* ga, const float* lr_in, const i64* step_in, const float* gscale, int n,
		double lr_scale, float clip, float wd, double dec_wd, float alpha, float oma, float eps, float momentum,
		int centered, int* status) {
	double lr;
	i64 step;
	OptPrep prep;
	if (!opt_scalars(lr_in, step_in, gscale, lr_scale, clip, wd, &lr, &step, &prep, status)) return;
	float lrf = (float)lr, shrink = (float)(1 - lr * dec_wd);
	GT_LOOP(i, n) {
		float pv = p[i], s = sq[i];
		float gv = prep.apply(g[i], pv);
		if (dec_wd != 0) pv *= shrink;
		s = s * alpha + oma * gv * gv;
		float avg;
		if (centered) {
			float a = ga[i] * alpha + oma * gv;
			float d = s - a * a;
			avg = opt_sqrt(d > 0 ? d : 0) + eps;
			gao[i] = a;
		} else {
			avg = opt_sqrt(s) + eps;
		}
		if (momentum > 0) {
			float bv = b[i] * momentum + gv / avg;
			bo[i] = bv;
			pv -= lrf * bv;
		} else {
			pv -= lrf * (gv / avg);
		}
		po[i] = pv;
		sqo[i] = s;
	}
}

__device__ void opt_adagrad(float* po, float* so, const float* p, const float* g, const float* sum, const float* lr_in,
		const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd, double dec_wd,
		double lr_decay, float eps, int* status) {
	double lr;
	i64 step;
	OptPrep prep;
	if (!opt_scalars(lr_in, step_in, gscale, lr_scale, clip, wd, &lr, &step, &prep, status)) return;
	float clr = (float)(lr / (1 + (double)(step - 1) * lr_decay));
	float shrink = (float)(1 - lr * dec_wd);
	GT_LOOP(i, n) {
		float pv = p[i];
		float gv = prep.apply(g[i], pv);
		if (dec_wd != 0) pv *= shrink;
		float s = sum[i] + gv * gv;
		po[i] = pv - clr * (gv / (opt_sqrt(s) + eps));
		so[i] = s;
	}
}

// GlobalNormScale: each block of 16384 elements of one input sums its
// squares in double (one CUDA block per block, a fixed tree), then one
// thread adds the blocks in order.
#define NORM_BLOCK 16384

__device__ void norm_partial(double* partial, const float* x, int n, int first) {
	__shared__ double sh[GT_BLOCK];
	int b = blockIdx.x;
	int lo = b * NORM_BLOCK, hi = lo + NORM_BLOCK;
	if (hi > n) hi = n;
	double s = 0;
	for (int i = lo + threadIdx.x; i < hi; i += GT_BLOCK) s += (double)x[i] * (double)x[i];
	s = gt_block_sum_d(s, sh);
	if (threadIdx.x == 0) partial[first + b] = s;
}

__device__ void norm_finish(float* scale, float* norm, const double* partial, int nblocks, double max_norm) {
	if (blockIdx.x != 0 || threadIdx.x != 0) return;
	double sum = 0;
	for (int b = 0; b < nblocks; b++) sum += partial[b];
	double total = sqrt(sum);
	double s = max_norm / (total + 1e-6);
	scale[0] = (float)(s < 1 ? s : 1);
	if (norm) norm[0] = (float)total;
}
