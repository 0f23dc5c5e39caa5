// DropoutTrain: keep-masks from the counter-based hash of common.cuh, a
// pure function of (seed, offset + sample, element), bit-identical to the
// CPU backend's (graph.DropoutBits). ratio, seed and offset are device
// scalars; a ratio outside [0, 1] sets the status word.

template <typename T>
__device__ void dr_train(T* y, u8* mask, const T* x, const float* ratio, const i64* seed, const i64* offset,
		int rows, int per, int* status) {
	float rf = *ratio;
	double r = (double)rf;
	if (!(r >= 0 && r <= 1)) {
		*status = 1;
		return;
	}
	u64 thresh;
	if (r <= 0) {
		thresh = 0;
	} else if (r >= 1) {
		thresh = 1ULL << 24;
	} else {
		thresh = (u64)(r * 16777216.0);
	}
	T scale = r == 1 ? (T)0 : (T)(1 / (1 - r));
	i64 s = *seed, off = *offset;
	int n = rows * per;
	GT_LOOP(i, n) {
		int row = i / per, j = i % per;
		u64 key = gt_dropout_row_key(s, off + row);
		bool keep = (gt_dropout_bits(key, j) >> 40) >= thresh;
		y[i] = keep ? x[i] * scale : (T)0;
		if (mask) mask[i] = keep;
	}
}

// dr_bits writes the raw 64-bit hash of n elements of one sample (tests
// compare it with graph.DropoutBits).
__device__ void dr_bits(u64* out, i64 seed, i64 sample, int n) {
	GT_LOOP(j, n) { out[j] = gt_dropout_bits(gt_dropout_row_key(seed, sample), j); }
}

// dr_identity: inference-mode Dropout, y = x and an all-true mask.
template <typename T> __device__ void dr_identity(T* y, u8* mask, const T* x, int n) {
	GT_LOOP(i, n) {
		y[i] = x[i];
		if (mask) mask[i] = 1;
	}
}
