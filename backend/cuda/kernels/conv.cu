// Convolution helpers around cuBLAS products (im2col + GEMM, as the CPU
// backend does it; see k_conv.go): im2col into a column buffer, col2im as a
// gather (each input element sums its taps in kernel order, no atomics),
// the bias fill, and the bias gradient in the CPU's order (a float sum per
// image plane, those added in double in image order).
//
// geo: per spatial dim (z, y, x; leading dims of size 1): in, out, kernel,
// stride, dilation, pad begin.

struct ConvG {
	int in[3], out[3], k[3], s[3], d[3], pb[3];
	int inVol, outVol, kvol;
};

__device__ __forceinline__ void conv_load(ConvG* g, const int* geo) {
	for (int i = 0; i < 3; i++) {
		g->in[i] = geo[i];
		g->out[i] = geo[3 + i];
		g->k[i] = geo[6 + i];
		g->s[i] = geo[9 + i];
		g->d[i] = geo[12 + i];
		g->pb[i] = geo[15 + i];
	}
	g->inVol = g->in[0] * g->in[1] * g->in[2];
	g->outVol = g->out[0] * g->out[1] * g->out[2];
	g->kvol = g->k[0] * g->k[1] * g->k[2];
}

// conv_im2col: col[nl][r][s] for images n0+nl (nl < nb), r over the cg
// channels of group g times the kernel taps, s over output positions. A
// plane is a row (nl, r) of the column buffer (GT_PLANE).
__device__ void conv_im2col(float* col, const float* x, const int* geo, int n0, int nb, int c, int cg, int g, int chunks) {
	ConvG G;
	conv_load(&G, geo);
	int K = cg * G.kvol, S = G.outVol;
	GT_PLANE(row, s, S, chunks)
	int r = row % K, nl = row / K;
	int ch = g * cg + r / G.kvol, kk = r % G.kvol;
	int kx = kk % G.k[2], ky = (kk / G.k[2]) % G.k[1], kz = kk / (G.k[2] * G.k[1]);
	int oz, oy, ox;
	gt_split3(s, G.out[0], G.out[1], G.out[2], &oz, &oy, &ox);
	int iz = oz * G.s[0] - G.pb[0] + kz * G.d[0];
	int iy = oy * G.s[1] - G.pb[1] + ky * G.d[1];
	int ix = ox * G.s[2] - G.pb[2] + kx * G.d[2];
	float v = 0;
	if (iz >= 0 && iz < G.in[0] && iy >= 0 && iy < G.in[1] && ix >= 0 && ix < G.in[2])
		v = x[((size_t)(n0 + nl) * c + ch) * G.inVol + (iz * G.in[1] + iy) * G.in[2] + ix];
	col[(size_t)row * S + s] = v;
}

// conv_col2im: dx[n0+nl][g*cg + cl][pos] = sum of col[nl][cl*kvol + tap][s]
// over the taps (in kernel order) whose output position s reads pos. A
// plane is an image's channel (nl, cl) (GT_PLANE).
__device__ void conv_col2im(float* dx, const float* col, const int* geo, int n0, int nb, int c, int cg, int g, int chunks) {
	ConvG G;
	conv_load(&G, geo);
	int K = cg * G.kvol, S = G.outVol;
	GT_PLANE(plane, pos, G.inVol, chunks)
	int cl = plane % cg, nl = plane / cg;
	int iz, iy, ix;
	gt_split3(pos, G.in[0], G.in[1], G.in[2], &iz, &iy, &ix);
	const float* cp = col + (size_t)nl * K * S + (size_t)cl * G.kvol * S;
	float acc = 0;
	for (int kz = 0; kz < G.k[0]; kz++) {
		int oz = gt_tap_out(iz, kz, G.d[0], G.s[0], G.pb[0], G.out[0]);
		if (oz < 0) continue;
		for (int ky = 0; ky < G.k[1]; ky++) {
			int oy = gt_tap_out(iy, ky, G.d[1], G.s[1], G.pb[1], G.out[1]);
			if (oy < 0) continue;
			for (int kx = 0; kx < G.k[2]; kx++) {
				int ox = gt_tap_out(ix, kx, G.d[2], G.s[2], G.pb[2], G.out[2]);
				if (ox < 0) continue;
				int r = (kz * G.k[1] + ky) * G.k[2] + kx;
				acc += cp[(size_t)r * S + (oz * G.out[1] + oy) * G.out[2] + ox];
			}
		}
	}
	dx[((size_t)(n0 + nl) * c + g * cg + cl) * G.inVol + pos] = acc;
}

// conv_epilogue: y[n][m][s] = act(y + b[m]) in place after the product
// (bias optional; relu != 0 applies a fused ReLU); a plane is (n, m).
__device__ void conv_epilogue(float* y, const float* b, int m, int s, int relu, int chunks) {
	GT_PLANE(plane, e, s, chunks)
	size_t i = (size_t)plane * s + e;
	float v = y[i];
	if (b) v = v + b[plane % m];
	if (relu && !(v > 0)) v = 0;
	y[i] = v;
}

// conv_wsum: dw[j] (+)= the float sum over images i, in order, of
// part[i][j] (the per-image products of the weight gradient).
__device__ void conv_wsum(float* dw, const float* part, int nb, int mk, int accumulate) {
	GT_LOOP(j, mk) {
		float t = accumulate ? dw[j] : 0;
		for (int i = 0; i < nb; i++) t += part[(size_t)i * mk + j];
		dw[j] = t;
	}
}

// conv_bias_grad_planes: part[p] = float sum of dY's plane p, in order.
__device__ void conv_bias_grad_planes(float* part, const float* dy, int planes, int vol) {
	GT_LOOP(p, planes) {
		const float* row = dy + (size_t)p * vol;
		float t = 0;
		for (int j = 0; j < vol; j++) t += row[j];
		part[p] = t;
	}
}

// conv_bias_grad_sum: db[ch] = sum over images of part[n*m + ch], in double.
__device__ void conv_bias_grad_sum(float* db, const float* part, int n, int m) {
	GT_LOOP(ch, m) {
		double s = 0;
		for (int i = 0; i < n; i++) s += (double)part[i * m + ch];
		db[ch] = (float)s;
	}
}
