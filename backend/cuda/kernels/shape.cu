// Data movement: strided gathers and scatters (Transpose, Slice, Split,
// Concat, SliceGrad) and Pad. Typeless: entry points exist per element
// size (1, 4 and 8 bytes).

// sh_gather: y[i] = x[xbase + off(i)], y contiguous of the geo's dims.
template <typename T> __device__ void sh_gather(T* y, const T* x, const int* geo, int n, int xbase) {
	int rank = geo[0];
	const int* dims = geo + 1;
	const int* xs = dims + rank;
	GT_LOOP(i, n) { y[i] = x[xbase + gt_off(i, rank, dims, xs)]; }
}

// sh_scatter: y[ybase + off(i)] = x[i], x contiguous of the geo's dims.
template <typename T> __device__ void sh_scatter(T* y, const T* x, const int* geo, int n, int ybase) {
	int rank = geo[0];
	const int* dims = geo + 1;
	const int* ys = dims + rank;
	GT_LOOP(i, n) { y[ybase + gt_off(i, rank, dims, ys)] = x[i]; }
}

template <typename T> __device__ void sh_fill(T* y, const T* v, int n) {
	GT_LOOP(i, n) { y[i] = *v; }
}

// sh_pad: geo = rank, ydims, xdims, xstrides, pbegin. mode 0 constant
// (value: a device scalar), 1 edge, 2 reflect, 3 wrap.
template <typename T> __device__ void sh_pad(T* y, const T* x, const int* geo, int n, int mode, const T* value) {
	int rank = geo[0];
	const int* yd = geo + 1;
	const int* xd = yd + rank;
	const int* xs = xd + rank;
	const int* pb = xs + rank;
	GT_LOOP(i, n) {
		int rem = i, off = 0;
		bool inside = true;
		for (int a = rank - 1; a >= 0; a--) {
			int o = rem % yd[a];
			rem /= yd[a];
			int c = o - pb[a], d = xd[a];
			if (c < 0 || c >= d) {
				if (mode == 0) {
					inside = false;
					break;
				} else if (mode == 1) {
					c = c < 0 ? 0 : d - 1;
				} else if (mode == 3) {
					c = ((c % d) + d) % d;
				} else if (d == 1) {
					c = 0;
				} else {
					int period = 2 * (d - 1);
					c = ((c % period) + period) % period;
					if (c >= d) c = period - c;
				}
			}
			off += c * xs[a];
		}
		y[i] = inside ? x[off] : *value;
	}
}
