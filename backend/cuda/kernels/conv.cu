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
// channels of group g times the kernel taps, s over output positions.
__device__ void conv_im2col(float* col, const float* x, const int* geo, int n0, int nb, int c, int cg, int g) {
	ConvG G;
	conv_load(&G, geo);
	int K = cg * G.kvol, S = G.outVol;
	int total = nb * K * S;
	GT_LOOP(i, total) {
		int s = i % S, r = (i / S) % K, nl = i / (S * K);
		int ch = g * cg + r / G.kvol, kk = r % G.kvol;
		int kx = kk % G.k[2], ky = (kk / G.k[2]) % G.k[1], kz = kk / (G.k[2] * G.k[1]);
		int ox = s % G.out[2], oy = (s / G.out[2]) % G.out[1], oz = s / (G.out[2] * G.out[1]);
		int iz = oz * G.s[0] - G.pb[0] + kz * G.d[0];
		int iy = oy * G.s[1] - G.pb[1] + ky * G.d[1];
		int ix = ox * G.s[2] - G.pb[2] + kx * G.d[2];
		float v = 0;
		if (iz >= 0 && iz < G.in[0] && iy >= 0 && iy < G.in[1] && ix >= 0 && ix < G.in[2])
			v = x[((size_t)(n0 + nl) * c + ch) * G.inVol + (iz * G.in[1] + iy) * G.in[2] + ix];
		col[i] = v;
	}
}

// conv_col2im: dx[n0+nl][g*cg + cl][pos] = sum of col[nl][cl*kvol + tap][s]
// over the taps (in kernel order) whose output position s reads pos.
__device__ void conv_col2im(float* dx, const float* col, const int* geo, int n0, int nb, int c, int cg, int g) {
	ConvG G;
	conv_load(&G, geo);
	int K = cg * G.kvol, S = G.outVol;
	int total = nb * cg * G.inVol;
	GT_LOOP(i, total) {
		int pos = i % G.inVol, cl = (i / G.inVol) % cg, nl = i / (G.inVol * cg);
		int ix = pos % G.in[2], iy = (pos / G.in[2]) % G.in[1], iz = pos / (G.in[2] * G.in[1]);
		const float* cp = col + (size_t)nl * K * S + (size_t)cl * G.kvol * S;
		float acc = 0;
		for (int kz = 0; kz < G.k[0]; kz++) {
			int tz = iz + G.pb[0] - kz * G.d[0];
			if (tz < 0 || tz % G.s[0] != 0) continue;
			int oz = tz / G.s[0];
			if (oz >= G.out[0]) continue;
			for (int ky = 0; ky < G.k[1]; ky++) {
				int ty = iy + G.pb[1] - ky * G.d[1];
				if (ty < 0 || ty % G.s[1] != 0) continue;
				int oy = ty / G.s[1];
				if (oy >= G.out[1]) continue;
				for (int kx = 0; kx < G.k[2]; kx++) {
					int tx = ix + G.pb[2] - kx * G.d[2];
					if (tx < 0 || tx % G.s[2] != 0) continue;
					int ox = tx / G.s[2];
					if (ox >= G.out[2]) continue;
					int r = (kz * G.k[1] + ky) * G.k[2] + kx;
					acc += cp[(size_t)r * S + (oz * G.out[1] + oy) * G.out[2] + ox];
				}
			}
		}
		dx[((size_t)(n0 + nl) * c + g * cg + cl) * G.inVol + pos] = acc;
	}
}

// conv_epilogue: y[n][m][s] = act(y + b[m]) in place after the product
// (bias optional; relu != 0 applies a fused ReLU).
__device__ void conv_epilogue(float* y, const float* b, int n, int m, int s, int relu) {
	int total = n * m * s;
	GT_LOOP(i, total) {
		float v = y[i];
		if (b) v = v + b[(i / s) % m];
		if (relu && !(v > 0)) v = 0;
		y[i] = v;
	}
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
