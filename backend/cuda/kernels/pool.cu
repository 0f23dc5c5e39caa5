// Pooling: MaxPool (with Indices), AveragePool, the global pools and the
// gradients, as backend/cpu/k_pool.go computes them. Windows are laid over
// three spatial dims (lower ranks have leading dims of size 1). geo holds
// per dim (z, y, x): in, out, kernel, stride, dilation, pad begin, pad end.

struct PoolG {
	int in[3], out[3], k[3], s[3], d[3], pb[3], pe[3];
	int inPlane, outPlane;
};

__device__ __forceinline__ void pool_load(PoolG* g, const int* geo) {
	for (int i = 0; i < 3; i++) {
		g->in[i] = geo[i];
		g->out[i] = geo[3 + i];
		g->k[i] = geo[6 + i];
		g->s[i] = geo[9 + i];
		g->d[i] = geo[12 + i];
		g->pb[i] = geo[15 + i];
		g->pe[i] = geo[18 + i];
	}
	g->inPlane = g->in[0] * g->in[1] * g->in[2];
	g->outPlane = g->out[0] * g->out[1] * g->out[2];
}

// pool_max: one thread per output. Indices (optional) as the CPU gives
// them: the flat input index of the first maximum (row-major, or
// column-major over the spatial dims with storage_order 1), -1 for an empty
// window.
// A plane is an image's channel (GT_PLANE).
template <typename T>
__device__ void pool_max(T* y, i64* ind, const T* x, const int* geo, int colMajor, int chunks) {
	PoolG g;
	pool_load(&g, geo);
	GT_PLANE(p, o, g.outPlane, chunks)
	{
		size_t i = (size_t)p * g.outPlane + o;
		int od, oh, ow;
		gt_split3(o, g.out[0], g.out[1], g.out[2], &od, &oh, &ow);
		const T* xp = x + (size_t)p * g.inPlane;
		T best = -GT_INF_F;
		int bz = -1, by = 0, bx = 0;
		for (int kz = 0; kz < g.k[0]; kz++) {
			int z = od * g.s[0] - g.pb[0] + kz * g.d[0];
			if (z < 0 || z >= g.in[0]) continue;
			for (int ky = 0; ky < g.k[1]; ky++) {
				int yy = oh * g.s[1] - g.pb[1] + ky * g.d[1];
				if (yy < 0 || yy >= g.in[1]) continue;
				for (int kx = 0; kx < g.k[2]; kx++) {
					int xx = ow * g.s[2] - g.pb[2] + kx * g.d[2];
					if (xx < 0 || xx >= g.in[2]) continue;
					T v = xp[(z * g.in[1] + yy) * g.in[2] + xx];
					if (bz < 0 || v > best) {
						best = v;
						bz = z;
						by = yy;
						bx = xx;
					}
				}
			}
		}
		y[i] = best;
		if (ind) {
			if (bz < 0) {
				ind[i] = -1;
			} else {
				i64 f = colMajor ? (i64)(bz + g.in[0] * (by + g.in[1] * bx)) : (i64)((bz * g.in[1] + by) * g.in[2] + bx);
				ind[i] = (i64)p * g.inPlane + f;
			}
		}
	}
}

// pool_outs: the outputs [lo, hi] along dim a whose windows' extent
// (before dilation gaps) covers input position x.
__device__ __forceinline__ void pool_outs(const PoolG* g, int a, int x, int* lo, int* hi) {
	int num = x + g->pb[a]; // o*s - pb <= x
	int first = num - (g->k[a] - 1) * g->d[a]; // x <= o*s - pb + (k-1)*d
	int s = g->s[a];
	int last;
	if (s == 1) {
		*lo = first <= 0 ? 0 : first;
		last = num;
	} else {
		*lo = first <= 0 ? 0 : (first + s - 1) / s;
		last = num / s;
	}
	*hi = last < g->out[a] - 1 ? last : g->out[a] - 1;
}

// pool_avg_div: the divisor of an output position (0 for an empty window).
__device__ __forceinline__ int pool_avg_div(const PoolG* g, int od, int oh, int ow, int includePad) {
	int o3[3] = {od, oh, ow};
	int n = 1;
	for (int a = 0; a < 3; a++) {
		int cnt = 0;
		for (int t = 0; t < g->k[a]; t++) {
			int pos = o3[a] * g->s[a] - g->pb[a] + t * g->d[a];
			if (includePad ? (pos >= -g->pb[a] && pos < g->in[a] + g->pe[a]) : (pos >= 0 && pos < g->in[a])) cnt++;
		}
		n *= cnt;
	}
	return n;
}

template <typename T>
__device__ void pool_avg(T* y, const T* x, const int* geo, int n, int includePad) {
	PoolG g;
	pool_load(&g, geo);
	GT_LOOP(i, n) {
		int p = i / g.outPlane, o = i % g.outPlane;
		int ow = o % g.out[2], oh = (o / g.out[2]) % g.out[1], od = o / (g.out[2] * g.out[1]);
		const T* xp = x + (size_t)p * g.inPlane;
		double sum = 0;
		for (int kz = 0; kz < g.k[0]; kz++) {
			int z = od * g.s[0] - g.pb[0] + kz * g.d[0];
			if (z < 0 || z >= g.in[0]) continue;
			for (int ky = 0; ky < g.k[1]; ky++) {
				int yy = oh * g.s[1] - g.pb[1] + ky * g.d[1];
				if (yy < 0 || yy >= g.in[1]) continue;
				for (int kx = 0; kx < g.k[2]; kx++) {
					int xx = ow * g.s[2] - g.pb[2] + kx * g.d[2];
					if (xx < 0 || xx >= g.in[2]) continue;
					sum += (double)xp[(z * g.in[1] + yy) * g.in[2] + xx];
				}
			}
		}
		int dv = pool_avg_div(&g, od, oh, ow, includePad);
		y[i] = dv == 0 ? (T)0 : (T)(sum * (1 / (double)dv));
	}
}

// pool_avg_grad: one thread per input element, gathering the outputs whose
// windows hold it in output order: the order in which the CPU's scatter
// adds into that element, so the float sums are the same.
template <typename T>
__device__ void pool_avg_grad(T* dx, const T* dy, const int* geo, int n, int includePad) {
	PoolG g;
	pool_load(&g, geo);
	GT_LOOP(i, n) {
		int p = i / g.inPlane, e = i % g.inPlane;
		int xx = e % g.in[2], yy = (e / g.in[2]) % g.in[1], z = e / (g.in[2] * g.in[1]);
		const T* yp = dy + (size_t)p * g.outPlane;
		T acc = (T)0;
		int lz, hz, ly, hy, lx, hx;
		pool_outs(&g, 0, z, &lz, &hz);
		pool_outs(&g, 1, yy, &ly, &hy);
		pool_outs(&g, 2, xx, &lx, &hx);
		for (int od = lz; od <= hz; od++) {
			int tz = z - (od * g.s[0] - g.pb[0]);
			if (tz < 0 || tz % g.d[0] != 0 || tz / g.d[0] >= g.k[0]) continue;
			for (int oh = ly; oh <= hy; oh++) {
				int ty = yy - (oh * g.s[1] - g.pb[1]);
				if (ty < 0 || ty % g.d[1] != 0 || ty / g.d[1] >= g.k[1]) continue;
				for (int ow = lx; ow <= hx; ow++) {
					int tx = xx - (ow * g.s[2] - g.pb[2]);
					if (tx < 0 || tx % g.d[2] != 0 || tx / g.d[2] >= g.k[2]) continue;
					int dv = pool_avg_div(&g, od, oh, ow, includePad);
					if (dv == 0) continue;
					T v = (T)((double)yp[(od * g.out[1] + oh) * g.out[2] + ow] * (1 / (double)dv));
					acc += v;
				}
			}
		}
		dx[i] = acc;
	}
}

// pool_max_grad: one thread per plane, scattering dY at the Indices in
// output order (the CPU's order). An index outside its plane sets the
// status word to 1 + its position. relu != 0: taps whose X is not positive
// pass nothing (the CPU's fused ReluGrad).
template <typename T>
__device__ void pool_max_grad(T* dx, const T* dy, const i64* ind, const T* x, int planes, int inPlane, int outPlane,
		int relu, int* status) {
	GT_LOOP(pl, planes) {
		T* xp = dx + (size_t)pl * inPlane;
		for (int e = 0; e < inPlane; e++) xp[e] = (T)0;
		i64 base = (i64)pl * inPlane;
		for (int o = pl * outPlane; o < (pl + 1) * outPlane; o++) {
			if (ind[o] == -1) continue;
			i64 k = ind[o] - base;
			if (k < 0 || k >= inPlane) {
				*status = o + 1;
				continue;
			}
			if (relu && !(x[base + k] > (T)0)) continue;
			xp[k] += dy[o];
		}
	}
}

// pool_max_grad_gather: one thread per input element, summing in output
// order the dY of the windows that hold it whose Index names it: the CPU's
// scatter, element by element (the same float sums), in parallel over the
// whole input. Needs the window (geo); relu as in pool_max_grad.
template <typename T>
__device__ void pool_max_grad_gather(T* dx, const T* dy, const i64* ind, const T* x, const int* geo, int relu, int chunks) {
	PoolG g;
	pool_load(&g, geo);
	GT_PLANE(p, e, g.inPlane, chunks)
	size_t i = (size_t)p * g.inPlane + e;
	T acc = (T)0;
	if (!relu || x[i] > (T)0) {
		int z, yy, xx;
		gt_split3(e, g.in[0], g.in[1], g.in[2], &z, &yy, &xx);
		const T* yp = dy + (size_t)p * g.outPlane;
		const i64* ip = ind + (size_t)p * g.outPlane;
		i64 want = (i64)p * g.inPlane + e;
		int lz, hz, ly, hy, lx, hx;
		pool_outs(&g, 0, z, &lz, &hz);
		pool_outs(&g, 1, yy, &ly, &hy);
		pool_outs(&g, 2, xx, &lx, &hx);
		for (int od = lz; od <= hz; od++) {
			for (int oh = ly; oh <= hy; oh++) {
				for (int ow = lx; ow <= hx; ow++) {
					// The Index names this element only if this window's
					// taps reach it; comparing the Index is that check.
					int o = (od * g.out[1] + oh) * g.out[2] + ow;
					if (ip[o] == want) acc += yp[o];
				}
			}
		}
	}
	dx[i] = acc;
}

// pool_ind_check: the status word gets 1 + the position of an Index
// outside its plane (what the gather cannot see).
__device__ void pool_ind_check(const i64* ind, int n, int inPlane, int outPlane, int* status) {
	GT_LOOP(o, n) {
		i64 v = ind[o];
		i64 base = (i64)(o / outPlane) * inPlane;
		if (v != -1 && (v < base || v >= base + inPlane)) *status = o + 1;
	}
}

// pool_global: one thread per plane; max, or the mean in double.
template <typename T> __device__ void pool_global(T* y, const T* x, int planes, int inner, int isMax) {
	GT_LOOP(pl, planes) {
		const T* row = x + (size_t)pl * inner;
		if (isMax) {
			T best = -GT_INF_F;
			for (int j = 0; j < inner; j++)
				if (row[j] > best) best = row[j];
			y[pl] = best;
		} else {
			double sum = 0;
			for (int j = 0; j < inner; j++) sum += (double)row[j];
			y[pl] = (T)(sum / (double)inner);
		}
	}
}
