// Shared by every kernel module: types, index helpers and the Dropout hash.
// The same text compiles with NVRTC for a device and with a host C++
// compiler for the emulator that tests run without a GPU (internal/emu), so
// it uses only what both understand: no warp intrinsics, no atomics,
// fixed-size __shared__ arrays, and __syncthreads.

typedef long long i64;
typedef unsigned long long u64;
typedef unsigned char u8;

#ifdef __CUDACC_RTC__
#define GT_INF_F __int_as_float(0x7f800000)
#define GT_INF_D __longlong_as_double(0x7ff0000000000000LL)
#define GT_NAN_F __int_as_float(0x7fc00000)
#define GT_NAN_D __longlong_as_double(0x7ff8000000000000LL)
#endif

// Block size of every launch that uses shared memory (the Go side launches
// with exactly this many threads).
#define GT_BLOCK 256

// A grid-stride loop over [0, n).
#define GT_LOOP(i, n) for (int i = (int)(blockIdx.x * blockDim.x + threadIdx.x); i < (n); i += (int)(blockDim.x * gridDim.x))

// GT_PLANE: for a launch of planes*chunks blocks over planes of inner
// elements each (chunks = ceil(inner / blockDim.x), see planeGrid in
// geom.go), this thread's plane p and element e of it; threads past the
// plane's end return. The plane comes from the block index, so a thread
// divides once, by a value the whole block shares, where a flat index
// would cost a division per dim. (Not for kernels with barriers.)
#define GT_PLANE(p, e, inner, chunks) \
	int p = (int)blockIdx.x / (chunks); \
	int e = ((int)blockIdx.x - p * (chunks)) * (int)blockDim.x + (int)threadIdx.x; \
	if (e >= (inner)) return;

// gt_split3 splits a flat index e of a [d0][d1][d2] volume into z, y, x
// (one division fewer when d0 is 1, the 2-D case).
__device__ __forceinline__ void gt_split3(int e, int d0, int d1, int d2, int* z, int* y, int* x) {
	*x = e % d2;
	int rest = e / d2;
	*y = rest;
	*z = 0;
	if (d0 > 1) {
		*y = rest % d1;
		*z = rest / d1;
	}
}

// gt_tap_out: the output position whose tap k (of dilation d, stride s,
// begin padding pb) reads input position i, or -1 when none does. Stride 1
// (the common case) needs no division.
__device__ __forceinline__ int gt_tap_out(int i, int k, int d, int s, int pb, int out) {
	int t = i + pb - k * d;
	if (t < 0) return -1;
	if (s != 1) {
		if (t % s != 0) return -1;
		t /= s;
	}
	return t < out ? t : -1;
}

// gt_off maps a row-major index of an output of shape dims[0..rank) to the
// element offset of an operand with the given strides (0 on broadcast dims).
__device__ __forceinline__ int gt_off(int i, int rank, const int* dims, const int* strides) {
	int off = 0;
	for (int d = rank - 1; d >= 0; d--) {
		int c = i % dims[d];
		i /= dims[d];
		off += c * strides[d];
	}
	return off;
}

// gt_sum_d reduces v over the block into thread 0's return value, in a fixed
// tree order (deterministic). Every thread of the block must call it.
__device__ __forceinline__ double gt_block_sum_d(double v, double* sh) {
	int t = threadIdx.x;
	sh[t] = v;
	__syncthreads();
	for (int s = GT_BLOCK / 2; s > 0; s >>= 1) {
		if (t < s) sh[t] += sh[t + s];
		__syncthreads();
	}
	double r = sh[0];
	__syncthreads();
	return r;
}

// ---- Dropout's mask hash (graph.DropoutRowKey, DropoutBits) ----
// splitmix64's finaliser; see graph/ops_norm.go for the specification.

#define GT_GOLDEN 0x9e3779b97f4a7c15ULL

__device__ __forceinline__ u64 gt_mix(u64 z) {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

__device__ __forceinline__ u64 gt_dropout_row_key(i64 seed, i64 sample) {
	return gt_mix(((u64)seed) * GT_GOLDEN ^ gt_mix((u64)sample + GT_GOLDEN));
}

__device__ __forceinline__ u64 gt_dropout_bits(u64 key, i64 j) {
	return gt_mix(key + ((u64)(j + 1)) * GT_GOLDEN);
}
