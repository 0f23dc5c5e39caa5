// Reductions, ArgMax/ArgMin, Softmax and its relatives, and the losses.
//
// A reduction runs one thread per output element, folding that element's
// inputs in row-major order in the element type: the CPU backend's order
// and precision, so results are bit-identical. Softmax and the losses run
// one thread per normalised group, accumulating in double as the CPU does.
// The loss totals are summed by one thread in position order (a handful of
// positions per batch).

#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2
#define R_MIN 3
#define R_PROD 4
#define R_SUMSQ 5
#define R_L1 6
#define R_L2 7

// geo: krank, kdims, kstrides (input strides of the kept dims), then rrank,
// rdims, rstrides (of the reduced dims).
template <typename T, int KIND>
__device__ void rd_reduce(T* y, const T* x, const int* geo, int m, int count) {
	int krank = geo[0];
	const int* kd = geo + 1;
	const int* ks = kd + krank;
	int rrank = ks[krank];
	const int* rdims = ks + krank + 1;
	const int* rs = rdims + rrank;
	GT_LOOP(j, m) {
		int base = gt_off(j, krank, kd, ks);
		T s = (T)0;
		if (KIND == R_PROD) s = (T)1;
		for (int r = 0; r < count; r++) {
			T v = x[base + gt_off(r, rrank, rdims, rs)];
			if (KIND == R_MAX) {
				if (r == 0 || v != v || (s == s && v > s)) s = v;
			} else if (KIND == R_MIN) {
				if (r == 0 || v != v || (s == s && v < s)) s = v;
			} else if (KIND == R_PROD) {
				s *= v;
			} else if (KIND == R_SUMSQ || KIND == R_L2) {
				s += v * v;
			} else if (KIND == R_L1) {
				s += v < (T)0 ? -v : v;
			} else {
				s += v;
			}
		}
		if (KIND == R_MEAN) s /= (T)count;
		if (KIND == R_L2) s = (T)sqrt((double)s);
		if ((KIND == R_MAX || KIND == R_MIN) && count == 0) s = KIND == R_MAX ? -GT_INF_F : GT_INF_F;
		y[j] = s;
	}
}

// rd_arg: the index of the first (or last) extreme along an axis of n
// elements spaced inner apart.
template <typename T>
__device__ void rd_arg(i64* y, const T* x, int groups, int n, int inner, int isMax, int last) {
	GT_LOOP(j, groups) {
		int base = (j / inner) * n * inner + j % inner;
		T best = x[base];
		int bi = 0;
		for (int k = 1; k < n; k++) {
			T v = x[base + k * inner];
			bool better = isMax ? v > best : v < best;
			if (better || (last && v == best)) {
				best = v;
				bi = k;
			}
		}
		y[j] = bi;
	}
}

// ---- Softmax family: groups of n values spaced inner apart ----

template <typename T> __device__ __forceinline__ T sm_max(const T* x, int n, int s) {
	T m = -GT_INF_F;
	for (int k = 0; k < n; k++) {
		T v = x[k * s];
		if (v != v || (m == m && v > m)) m = v;
	}
	return m;
}

template <typename T> __device__ __forceinline__ void sm_log_softmax_group(T* y, const T* x, int n, int s) {
	double m = (double)sm_max(x, n, s);
	double sum = 0;
	for (int k = 0; k < n; k++) sum += exp((double)x[k * s] - m);
	double c = m + log(sum);
	for (int k = 0; k < n; k++) y[k * s] = (T)((double)x[k * s] - c);
}

template <typename T> __device__ void sm_softmax(T* y, const T* x, int groups, int n, int inner) {
	GT_LOOP(j, groups) {
		int base = (j / inner) * n * inner + j % inner;
		double m = (double)sm_max(x + base, n, inner);
		double sum = 0;
		for (int k = 0; k < n; k++) {
			double e = exp((double)x[base + k * inner] - m);
			y[base + k * inner] = (T)e;
			sum += e;
		}
		double inv = 1 / sum;
		for (int k = 0; k < n; k++) y[base + k * inner] = (T)((double)y[base + k * inner] * inv);
	}
}

template <typename T> __device__ void sm_log_softmax(T* y, const T* x, int groups, int n, int inner) {
	GT_LOOP(j, groups) {
		int base = (j / inner) * n * inner + j % inner;
		sm_log_softmax_group(y + base, x + base, n, inner);
	}
}

// dX = Y * (dY - sum(dY*Y))
template <typename T> __device__ void sm_softmax_grad(T* dx, const T* dy, const T* y, int groups, int n, int inner) {
	GT_LOOP(j, groups) {
		int base = (j / inner) * n * inner + j % inner;
		double dot = 0;
		for (int k = 0; k < n; k++) dot += (double)dy[base + k * inner] * (double)y[base + k * inner];
		for (int k = 0; k < n; k++) {
			int i = base + k * inner;
			dx[i] = (T)((double)y[i] * ((double)dy[i] - dot));
		}
	}
}

// dX = dY - exp(Y) * sum(dY), Y the log-probabilities.
template <typename T> __device__ void sm_log_softmax_grad(T* dx, const T* dy, const T* y, int groups, int n, int inner) {
	GT_LOOP(j, groups) {
		int base = (j / inner) * n * inner + j % inner;
		double sum = 0;
		for (int k = 0; k < n; k++) sum += (double)dy[base + k * inner];
		for (int k = 0; k < n; k++) {
			int i = base + k * inner;
			dx[i] = (T)((double)dy[i] - exp((double)y[i]) * sum);
		}
	}
}

// ---- SoftmaxCrossEntropy (see backend/cpu/k_loss.go for the formulas) ----
// Scores [N, C, D...] as positions j in [0, N*D) of C classes spaced d
// apart. labels are int64 or int32 class indices (L), or soft targets shaped
// like the scores (soft != 0, read through q). The status word gets 1 + the
// position of a label outside [0, C) (not the ignored index).

template <typename T, typename L>
__device__ void ce_forward(T* lp, double* per, double* wden, T* loss_none, const T* x, const L* labels, const T* q,
		const T* w, int positions, int c, int d, double e, int hasIgnore, i64 ignore, int* status) {
	GT_LOOP(j, positions) {
		int base = (j / d) * c * d + j % d;
		sm_log_softmax_group(lp + base, x + base, c, d);
		double l;
		double wd;
		if (q) {
			double s = 0;
			for (int k = 0; k < c; k++) {
				double t = (1 - e) * (double)q[base + k * d] + e / (double)c;
				s -= (w ? (double)w[k] : 1.0) * t * (double)lp[base + k * d];
			}
			l = s;
			wd = 1;
		} else {
			i64 t = (i64)labels[j];
			if (hasIgnore && t == ignore) {
				l = 0;
				wd = 0;
			} else if (t < 0 || t >= c) {
				*status = j + 1;
				l = GT_NAN_D;
				wd = 0;
			} else {
				double wt = w ? (double)w[t] : 1.0;
				l = -wt * (double)lp[base + (int)t * d];
				if (e != 0) {
					double smooth = 0;
					for (int k = 0; k < c; k++) smooth -= (w ? (double)w[k] : 1.0) * (double)lp[base + k * d];
					l = (1 - e) * l + e / (double)c * smooth;
				}
				wd = wt;
			}
		}
		if (loss_none) loss_none[j] = (T)l;
		per[j] = l;
		wden[j] = wd;
	}
}

// ce_total: loss[0] = sum(per) (/ sum(wden) for mean), in position order.
template <typename T> __device__ void ce_total(T* loss, const double* per, const double* wden, int positions, int mean) {
	if (blockIdx.x != 0 || threadIdx.x != 0) return;
	double s = 0, den = 0;
	for (int j = 0; j < positions; j++) s += per[j];
	for (int j = 0; j < positions; j++) den += wden[j];
	if (mean) s /= den;
	loss[0] = (T)s;
}

// ce_grad_scale: scale (1/denominator for mean, else 1) and the weight sum.
template <typename L, typename T>
__device__ void ce_grad_scale(double* out, const L* labels, const T* w, int positions, int c, int soft, int mean,
		int hasIgnore, i64 ignore, int* status) {
	if (blockIdx.x != 0 || threadIdx.x != 0) return;
	double denom = 0;
	if (soft) {
		denom = positions;
	} else {
		for (int j = 0; j < positions; j++) {
			i64 t = (i64)labels[j];
			if (hasIgnore && t == ignore) continue;
			if (t < 0 || t >= c) {
				*status = j + 1;
				continue;
			}
			denom += w ? (double)w[t] : 1.0;
		}
	}
	double wsum = 0;
	for (int k = 0; k < c; k++) wsum += w ? (double)w[k] : 1.0;
	out[0] = mean ? 1 / denom : 1.0;
	out[1] = wsum;
}

template <typename T, typename L>
__device__ void ce_grad(T* dx, const T* g, const T* lp, const L* labels, const T* q, const T* w, const double* sc,
		int positions, int c, int d, double e, int none, int hasIgnore, i64 ignore) {
	GT_LOOP(j, positions) {
		int base = (j / d) * c * d + j % d;
		double gj = sc[0] * (double)(none ? g[j] : g[0]);
		if (q) {
			double wq = 0;
			for (int k = 0; k < c; k++) wq += (w ? (double)w[k] : 1.0) * ((1 - e) * (double)q[base + k * d] + e / (double)c);
			for (int k = 0; k < c; k++) {
				int i = base + k * d;
				double qk = (1 - e) * (double)q[i] + e / (double)c;
				dx[i] = (T)(gj * (exp((double)lp[i]) * wq - (w ? (double)w[k] : 1.0) * qk));
			}
			continue;
		}
		i64 t = (i64)labels[j];
		if ((hasIgnore && t == ignore) || t < 0 || t >= c) {
			for (int k = 0; k < c; k++) dx[base + k * d] = 0;
			continue;
		}
		double wt = w ? (double)w[t] : 1.0;
		for (int k = 0; k < c; k++) {
			int i = base + k * d;
			double pk = exp((double)lp[i]);
			double hard = pk;
			if (k == (int)t) hard -= 1;
			double v = (1 - e) * wt * hard;
			if (e != 0) v += e / (double)c * (sc[1] * pk - (w ? (double)w[k] : 1.0));
			dx[i] = (T)(gj * v);
		}
	}
}

// ---- BCEWithLogits: loss = max(x,0) - x*t + log(1+exp(-|x|)) ----

template <typename T> __device__ __forceinline__ double bce_elem(T xv, T tv) {
	double v = (double)xv;
	double m = v > 0 ? v : 0;
	return m - v * (double)tv + log1p(exp(-fabs(v)));
}

template <typename T> __device__ void bce_none(T* r, const T* x, const T* t, int n) {
	GT_LOOP(i, n) { r[i] = (T)bce_elem(x[i], t[i]); }
}

// bce_total runs as one block: a fixed-order tree over per-thread sums.
template <typename T> __device__ void bce_total(T* r, const T* x, const T* t, int n, int mean) {
	__shared__ double sh[GT_BLOCK];
	double s = 0;
	for (int i = threadIdx.x; i < n; i += GT_BLOCK) s += bce_elem(x[i], t[i]);
	s = gt_block_sum_d(s, sh);
	if (threadIdx.x == 0) {
		if (mean) s /= (double)n;
		r[0] = (T)s;
	}
}

template <typename T> __device__ void bce_grad(T* r, const T* g, const T* x, const T* t, int n, int none, double scale) {
	GT_LOOP(i, n) {
		double gi = (double)(none ? g[i] : g[0]);
		double v = (double)x[i], sg;
		if (v >= 0) {
			sg = 1 / (1 + exp(-v));
		} else {
			double e = exp(v);
			sg = e / (1 + e);
		}
		r[i] = (T)(scale * gi * (sg - (double)t[i]));
	}
}
