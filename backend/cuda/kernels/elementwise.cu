// Elementwise kernels: unary math, broadcasting binary ops, comparisons,
// Where, Clip, Cast, the activation gradients, and the broadcasting copy
// that Expand and the variadic ops start from.
//
// Broadcast geometry comes in a small int array `geo` that the executor
// uploads once: rank, then the output dims, then per operand its element
// strides along those dims (0 where it repeats).
//
// Unary transcendental ops compute in double and round once, as the CPU
// backend does (its loops call math.Exp etc. in float64); the rest compute
// in the element type. NVRTC compiles these modules with --fmad=false, so
// a*b+c rounds twice, as in Go.

template <typename T> __device__ __forceinline__ T gt_relu(T x) { return (x > (T)0 || x != x) ? x : (T)0; }

struct UAbs { static __device__ __forceinline__ double f(double x) { return fabs(x); } };
struct USigmoid {
	static __device__ __forceinline__ double f(double x) {
		if (x >= 0) return 1 / (1 + exp(-x));
		double e = exp(x);
		return e / (1 + e);
	}
};
struct UTanh { static __device__ __forceinline__ double f(double x) { return tanh(x); } };
struct UErf { static __device__ __forceinline__ double f(double x) { return erf(x); } };
struct USqrt { static __device__ __forceinline__ double f(double x) { return sqrt(x); } };
struct UExp { static __device__ __forceinline__ double f(double x) { return exp(x); } };
struct ULog { static __device__ __forceinline__ double f(double x) { return log(x); } };
struct UGelu { static __device__ __forceinline__ double f(double x) { return 0.5 * x * (1 + erf(x / 1.4142135623730951)); } };
struct UGeluTanh {
	static __device__ __forceinline__ double f(double x) {
		return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
	}
};

// ew_unary_d: y = T(f(double(x))).
template <typename T, typename F> __device__ void ew_unary_d(T* y, const T* x, int n) {
	GT_LOOP(i, n) { y[i] = (T)F::f((double)x[i]); }
}

template <typename T> __device__ void ew_relu(T* y, const T* x, int n) {
	GT_LOOP(i, n) { y[i] = gt_relu(x[i]); }
}

template <typename T> __device__ void ew_leaky_relu(T* y, const T* x, int n, T alpha) {
	GT_LOOP(i, n) {
		T v = x[i];
		if (v < (T)0) v *= alpha;
		y[i] = v;
	}
}

template <typename T> __device__ void ew_neg(T* y, const T* x, int n) {
	GT_LOOP(i, n) { y[i] = -x[i]; }
}

template <typename T> __device__ void ew_reciprocal(T* y, const T* x, int n) {
	GT_LOOP(i, n) { y[i] = (T)1 / x[i]; }
}

// ---- binary ----

struct BAdd { template <typename T> static __device__ __forceinline__ T f(T a, T b) { return a + b; } };
struct BSub { template <typename T> static __device__ __forceinline__ T f(T a, T b) { return a - b; } };
struct BMul { template <typename T> static __device__ __forceinline__ T f(T a, T b) { return a * b; } };
struct BDiv { template <typename T> static __device__ __forceinline__ T f(T a, T b) { return a / b; } };
struct BPow { template <typename T> static __device__ __forceinline__ T f(T a, T b) { return (T)pow((double)a, (double)b); } };
struct BMax {
	template <typename T> static __device__ __forceinline__ T f(T a, T b) {
		if (a != a) return a;
		if (b != b) return b;
		return a > b ? a : b;
	}
};
struct BMin {
	template <typename T> static __device__ __forceinline__ T f(T a, T b) {
		if (a != a) return a;
		if (b != b) return b;
		return a < b ? a : b;
	}
};
struct CEq { template <typename T> static __device__ __forceinline__ u8 f(T a, T b) { return a == b; } };
struct CGt { template <typename T> static __device__ __forceinline__ u8 f(T a, T b) { return a > b; } };
struct CLt { template <typename T> static __device__ __forceinline__ u8 f(T a, T b) { return a < b; } };
struct CGe { template <typename T> static __device__ __forceinline__ u8 f(T a, T b) { return a >= b; } };
struct CLe { template <typename T> static __device__ __forceinline__ u8 f(T a, T b) { return a <= b; } };

// Activation gradients: (dy, v) -> dx, v the activation's output (Relu,
// Sigmoid, Tanh) or input (LeakyRelu, Gelu).
struct GRelu { template <typename T> static __device__ __forceinline__ T f(T dy, T y) { return y > (T)0 ? dy : (T)0; } };
struct GSigmoid { template <typename T> static __device__ __forceinline__ T f(T dy, T y) { return dy * y * ((T)1 - y); } };
struct GTanh { template <typename T> static __device__ __forceinline__ T f(T dy, T y) { return dy * ((T)1 - y * y); } };
struct GGelu {
	template <typename T> static __device__ __forceinline__ T f(T dy, T xv) {
		double x = (double)xv;
		double cdf = 0.5 * (1 + erf(x / 1.4142135623730951));
		double pdf = exp(-0.5 * x * x) / 2.5066282746310002;
		return (T)((double)dy * (cdf + x * pdf));
	}
};
struct GGeluTanh {
	template <typename T> static __device__ __forceinline__ T f(T dy, T xv) {
		double x = (double)xv;
		const double c = 0.044715, k = 0.7978845608028654;
		double u = k * (x + c * x * x * x);
		double t = tanh(u);
		return (T)((double)dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * c * x * x)));
	}
};

template <typename T, typename Y, typename F>
__device__ void ew_binary(Y* y, const T* a, const T* b, const int* geo, int n) {
	int rank = geo[0];
	const int* dims = geo + 1;
	const int* sa = dims + rank;
	const int* sb = sa + rank;
	GT_LOOP(i, n) { y[i] = F::f(a[gt_off(i, rank, dims, sa)], b[gt_off(i, rank, dims, sb)]); }
}

template <typename T>
__device__ void ew_leaky_relu_grad(T* y, const T* dy, const T* x, const int* geo, int n, T alpha) {
	int rank = geo[0];
	const int* dims = geo + 1;
	const int* sa = dims + rank;
	const int* sb = sa + rank;
	GT_LOOP(i, n) {
		T d = dy[gt_off(i, rank, dims, sa)];
		y[i] = x[gt_off(i, rank, dims, sb)] > (T)0 ? d : alpha * d;
	}
}

// ew_where: y = cond ? a : b, three broadcast operands.
template <typename T>
__device__ void ew_where(T* y, const u8* c, const T* a, const T* b, const int* geo, int n) {
	int rank = geo[0];
	const int* dims = geo + 1;
	const int* sc = dims + rank;
	const int* sa = sc + rank;
	const int* sb = sa + rank;
	GT_LOOP(i, n) {
		y[i] = c[gt_off(i, rank, dims, sc)] ? a[gt_off(i, rank, dims, sa)] : b[gt_off(i, rank, dims, sb)];
	}
}

// ew_clip: y = min(max(x, lo), hi), lo and hi device scalars (0: absent).
template <typename T> __device__ void ew_clip(T* y, const T* x, const T* lo, const T* hi, int n) {
	GT_LOOP(i, n) {
		T v = x[i];
		if (lo && v < *lo) v = *lo;
		if (hi && v > *hi) v = *hi;
		y[i] = v;
	}
}

// ew_bcast copies x broadcast to the output (Expand, and the first operand
// of the variadic ops).
template <typename T> __device__ void ew_bcast(T* y, const T* x, const int* geo, int n) {
	int rank = geo[0];
	const int* dims = geo + 1;
	const int* sx = dims + rank;
	GT_LOOP(i, n) { y[i] = x[gt_off(i, rank, dims, sx)]; }
}

template <typename T> __device__ void ew_scale(T* y, int n, T s) {
	GT_LOOP(i, n) { y[i] /= s; }
}

// Casts. Float to bool is x != 0; float to int truncates (Go's conversion;
// NaN and out-of-range values give what the device's conversion gives).
template <typename S, typename D> __device__ void ew_cast(D* y, const S* x, int n) {
	GT_LOOP(i, n) { y[i] = (D)x[i]; }
}
template <typename S> __device__ void ew_cast_bool(u8* y, const S* x, int n) {
	GT_LOOP(i, n) { y[i] = x[i] != (S)0; }
}

__device__ void ew_not(u8* y, const u8* x, int n) {
	GT_LOOP(i, n) { y[i] = !x[i]; }
}
