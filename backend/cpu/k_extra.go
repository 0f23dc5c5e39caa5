package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Kernels of the ops in graph/ops_extra.go: logical and bitwise ops, Mod,
// BitShift, float unary math and activations, Sign, Shrink, PRelu,
// IsNaN/IsInf, Hardmax, GatherND and the normalisations
// InstanceNormalization, LpNormalization and MeanVarianceNormalization,
// and Einsum.
//
// They reuse the elementwise machinery (binaryKernel, mapKernel, the
// bcastPlan, viaFloat32 for float16/bfloat16) and the softmax geometry.
// Float math runs in float64 and rounds once to the element type.

func init() {
	for _, op := range []string{"And", "Or", "Xor"} {
		Register(graph.DomainONNX, op, logicalFactory(op))
	}
	Register(graph.DomainONNX, "Not", newNot)
	for _, op := range []string{"BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "BitShift"} {
		Register(graph.DomainONNX, op, bitwiseFactory(op))
	}
	Register(graph.DomainONNX, "Mod", newMod)
	for _, op := range graph.FloatUnaryOps {
		Register(graph.DomainONNX, op, floatUnaryFactory(op))
	}
	Register(graph.DomainONNX, "IsNaN", floatPredicateFactory("IsNaN"))
	Register(graph.DomainONNX, "IsInf", floatPredicateFactory("IsInf"))
	Register(graph.DomainONNX, "Sign", numUnaryFactory("Sign"))
	Register(graph.DomainONNX, "Shrink", numUnaryFactory("Shrink"))
	Register(graph.DomainONNX, "PRelu", newPRelu)
	Register(graph.DomainONNX, "Hardmax", newHardmax)
	Register(graph.DomainONNX, "GatherND", newGatherND)
	Register(graph.DomainONNX, "InstanceNormalization", newInstanceNorm)
	Register(graph.DomainONNX, "LpNormalization", newLpNorm)
	Register(graph.DomainONNX, "MeanVarianceNormalization", newMVN)
	Register(graph.DomainONNX, "Einsum", newEinsum)
}

// byNum picks the instantiation of a generic function for a numeric dtype;
// ok is false for the others.
func byNum[F any](dt tensor.DType, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64 F) (f F, ok bool) {
	switch dt {
	case tensor.Float32:
		return f32, true
	case tensor.Float64:
		return f64, true
	case tensor.Int8:
		return i8, true
	case tensor.Int16:
		return i16, true
	case tensor.Int32:
		return i32, true
	case tensor.Int64:
		return i64, true
	case tensor.Uint8:
		return u8, true
	case tensor.Uint16:
		return u16, true
	case tensor.Uint32:
		return u32, true
	case tensor.Uint64:
		return u64, true
	}
	return f, false
}

// byInt is byNum for the integer dtypes.
func byInt[F any](dt tensor.DType, i8, i16, i32, i64, u8, u16, u32, u64 F) (f F, ok bool) {
	if !dt.IsInt() {
		return f, false
	}
	return byNum(dt, f, f, i8, i16, i32, i64, u8, u16, u32, u64)
}

// ---- logical ----

func logicalFactory(op string) Factory {
	return func(p *Prep) (Kernel, error) {
		if p.In[0].DType != tensor.Bool || p.In[1].DType != tensor.Bool {
			return nil, Unsupported(p, "%s of %v and %v", op, p.In[0].DType, p.In[1].DType)
		}
		switch op {
		case "And":
			return binaryKernel(p, funcLoop(func(a, b bool) bool { return a && b }))
		case "Or":
			return binaryKernel(p, funcLoop(func(a, b bool) bool { return a || b }))
		}
		return binaryKernel(p, funcLoop(func(a, b bool) bool { return a != b }))
	}
}

func newNot(p *Prep) (Kernel, error) {
	if p.In[0].DType != tensor.Bool {
		return nil, Unsupported(p, "Not of %v", p.In[0].DType)
	}
	return mapKernel(p, ewGrain, func(dst, src []bool) {
		src = src[:len(dst)]
		for i, x := range src {
			dst[i] = !x
		}
	}), nil
}

// ---- bitwise ----

func bitwiseFactory(op string) Factory {
	return func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		f, ok := byInt(dt, bitwiseK[int8], bitwiseK[int16], bitwiseK[int32], bitwiseK[int64],
			bitwiseK[uint8], bitwiseK[uint16], bitwiseK[uint32], bitwiseK[uint64])
		if !ok || (op == "BitShift" && !isUnsignedDT(dt)) {
			return nil, Unsupported(p, "%s of %v", op, dt)
		}
		return f(p, op)
	}
}

func isUnsignedDT(dt tensor.DType) bool {
	return dt == tensor.Uint8 || dt == tensor.Uint16 || dt == tensor.Uint32 || dt == tensor.Uint64
}

func bitwiseK[T elemInt](p *Prep, op string) (Kernel, error) {
	switch op {
	case "BitwiseAnd":
		return binaryKernel(p, funcLoop(func(a, b T) T { return a & b }))
	case "BitwiseOr":
		return binaryKernel(p, funcLoop(func(a, b T) T { return a | b }))
	case "BitwiseXor":
		return binaryKernel(p, funcLoop(func(a, b T) T { return a ^ b }))
	case "BitwiseNot":
		return mapKernel(p, ewGrain, func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				dst[i] = ^x
			}
		}), nil
	case "BitShift":
		// Shifting an unsigned value by its width or more gives 0 in Go,
		// which is what the shift of every bit out means.
		switch d := p.Node.AttrString("direction", ""); d {
		case "LEFT":
			return binaryKernel(p, funcLoop(func(a, b T) T { return a << b }))
		case "RIGHT":
			return binaryKernel(p, funcLoop(func(a, b T) T { return a >> b }))
		default:
			return nil, Errorf(p, "attribute direction is %q; want \"LEFT\" or \"RIGHT\"", d)
		}
	}
	return nil, Unsupported(p, "%s", op)
}

// ---- Mod ----

func newMod(p *Prep) (Kernel, error) {
	if isHalf(p.In[0].DType) {
		return viaFloat32(p, newMod)
	}
	f, ok := byNum(p.In[0].DType, modFloatK[float32], modFloatK[float64], modIntK[int8], modIntK[int16],
		modIntK[int32], modIntK[int64], modIntK[uint8], modIntK[uint16], modIntK[uint32], modIntK[uint64])
	if !ok {
		return nil, Unsupported(p, "Mod of %v", p.In[0].DType)
	}
	return f(p, p.Node.AttrInt("fmod", 0) != 0)
}

// modIntK: with fmod the remainder takes the dividend's sign (C's %),
// without it the divisor's (Python's %). A zero divisor gives 0, as numpy
// does, instead of trapping.
func modIntK[T elemInt](p *Prep, fmod bool) (Kernel, error) {
	if fmod {
		return binaryKernel(p, funcLoop(func(a, b T) T {
			if b == 0 {
				return 0
			}
			return a % b
		}))
	}
	return binaryKernel(p, funcLoop(func(a, b T) T {
		if b == 0 {
			return 0
		}
		r := a % b
		if r != 0 && (r < 0) != (b < 0) {
			r += b
		}
		return r
	}))
}

// modFloatK: fmod is math.Mod; the floored form adds the divisor when the
// signs differ (numpy's mod). A zero divisor gives NaN either way.
func modFloatK[T elemFloat](p *Prep, fmod bool) (Kernel, error) {
	if fmod {
		return binaryKernel(p, funcLoop(func(a, b T) T { return T(math.Mod(float64(a), float64(b))) }))
	}
	return binaryKernel(p, funcLoop(func(a, b T) T {
		r := math.Mod(float64(a), float64(b))
		if r != 0 && (r < 0) != (b < 0) {
			r += float64(b)
		}
		return T(r)
	}))
}

// ---- float unary math and activations ----

func softplus(x float64) float64 { return max(x, 0) + math.Log1p(math.Exp(-math.Abs(x))) }

// floatUnaryFunc returns the scalar function of op with the node's
// attributes bound.
func floatUnaryFunc(p *Prep, op string) (func(float64) float64, error) {
	attr := func(name string, def float32) float64 { return float64(p.Node.AttrFloat(name, def)) }
	switch op {
	case "Ceil":
		return math.Ceil, nil
	case "Floor":
		return math.Floor, nil
	case "Round":
		return math.RoundToEven, nil
	case "Sin":
		return math.Sin, nil
	case "Cos":
		return math.Cos, nil
	case "Tan":
		return math.Tan, nil
	case "Asin":
		return math.Asin, nil
	case "Acos":
		return math.Acos, nil
	case "Atan":
		return math.Atan, nil
	case "Sinh":
		return math.Sinh, nil
	case "Cosh":
		return math.Cosh, nil
	case "Asinh":
		return math.Asinh, nil
	case "Acosh":
		return math.Acosh, nil
	case "Atanh":
		return math.Atanh, nil
	case "Softplus":
		return softplus, nil
	case "Softsign":
		return func(x float64) float64 { return x / (1 + math.Abs(x)) }, nil
	case "Elu":
		alpha := attr("alpha", 1)
		return func(x float64) float64 {
			if x < 0 {
				return alpha * math.Expm1(x)
			}
			return x
		}, nil
	case "Selu":
		alpha, gamma := attr("alpha", 1.67326319217681884765625), attr("gamma", 1.05070102214813232421875)
		return func(x float64) float64 {
			if x <= 0 {
				return gamma * alpha * math.Expm1(x)
			}
			return gamma * x
		}, nil
	case "Celu":
		alpha := attr("alpha", 1)
		if alpha == 0 {
			return nil, Errorf(p, "attribute alpha is 0; Celu divides by it")
		}
		return func(x float64) float64 { return max(0, x) + min(0, alpha*math.Expm1(x/alpha)) }, nil
	case "HardSigmoid":
		alpha, beta := attr("alpha", 0.2), attr("beta", 0.5)
		return func(x float64) float64 { return max(0, min(1, alpha*x+beta)) }, nil
	case "HardSwish":
		return func(x float64) float64 { return x * max(0, min(1, x/6+0.5)) }, nil
	case "ThresholdedRelu":
		alpha := attr("alpha", 1)
		return func(x float64) float64 {
			if x > alpha {
				return x
			}
			return 0
		}, nil
	case "Mish":
		return func(x float64) float64 { return x * math.Tanh(softplus(x)) }, nil
	}
	return nil, Unsupported(p, "%s", op)
}

func floatUnaryFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		f, err := floatUnaryFunc(p, op)
		if err != nil {
			return nil, err
		}
		switch dt {
		case tensor.Float32:
			return mapKernel(p, ewGrain/4, mapLoop[float32](f)), nil
		case tensor.Float64:
			return mapKernel(p, ewGrain/4, mapLoop[float64](f)), nil
		}
		return nil, Unsupported(p, "%s of %v", op, dt)
	}
	return self
}

func floatPredicateFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		f := math.IsNaN
		if op == "IsInf" {
			pos, neg := p.Node.AttrInt("detect_positive", 1) != 0, p.Node.AttrInt("detect_negative", 1) != 0
			f = func(x float64) bool { return (pos && math.IsInf(x, 1)) || (neg && math.IsInf(x, -1)) }
		}
		switch dt {
		case tensor.Float32:
			return predicateK[float32](p, f), nil
		case tensor.Float64:
			return predicateK[float64](p, f), nil
		}
		return nil, Unsupported(p, "%s of %v", op, dt)
	}
	return self
}

func predicateK[T elemFloat](p *Prep, f func(float64) bool) Kernel {
	return mapKernel(p, ewGrain, func(dst []bool, src []T) {
		src = src[:len(dst)]
		for i, x := range src {
			dst[i] = f(float64(x))
		}
	})
}

// ---- Sign and Shrink (every numeric dtype) ----

func numUnaryFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		f, ok := byNum(dt, numUnaryK[float32], numUnaryK[float64], numUnaryK[int8], numUnaryK[int16],
			numUnaryK[int32], numUnaryK[int64], numUnaryK[uint8], numUnaryK[uint16], numUnaryK[uint32], numUnaryK[uint64])
		if !ok {
			return nil, Unsupported(p, "%s of %v", op, dt)
		}
		return f(p, op)
	}
	return self
}

func numUnaryK[T elemNum](p *Prep, op string) (Kernel, error) {
	switch op {
	case "Sign":
		return mapKernel(p, ewGrain, func(dst, src []T) {
			src = src[:len(dst)]
			var one T = 1
			for i, x := range src {
				switch {
				case x > 0:
					dst[i] = one
				case x < 0:
					dst[i] = -one
				default:
					dst[i] = x // 0 stays 0, NaN stays NaN
				}
			}
		}), nil
	case "Shrink":
		// The threshold compares in float64 so that a fractional lambd
		// applies to integers as written; the bias is applied in float64
		// and converted back once.
		lambd, bias := float64(p.Node.AttrFloat("lambd", 0.5)), float64(p.Node.AttrFloat("bias", 0))
		return mapKernel(p, ewGrain, func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				v := float64(x)
				switch {
				case v < -lambd:
					dst[i] = T(v + bias)
				case v > lambd:
					dst[i] = T(v - bias)
				default:
					dst[i] = 0
				}
			}
		}), nil
	}
	return nil, Unsupported(p, "%s", op)
}

// ---- PRelu ----

func newPRelu(p *Prep) (Kernel, error) {
	if anyHalf(p) {
		return viaFloat32(p, newPRelu)
	}
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	if p.In[1].DType != p.In[0].DType {
		return nil, Errorf(p, "slope has dtype %v but X has %v", p.In[1].DType, p.In[0].DType)
	}
	xs := p.InShape(0)
	if graph.PReluLegacySlope(p.Opset, p.In[0].Shape, p.In[1].Shape) {
		// One slope per channel of axis 1: view it as [C, 1, ..., 1].
		q := *p
		q.In = append([]*graph.Type(nil), p.In...)
		s := make([]int, len(xs)-1)
		for i := range s {
			s[i] = 1
		}
		s[0] = xs[1]
		q.In[1] = graph.NewType(p.In[1].DType, graph.ShapeOf(s...))
		p = &q
	}
	f, ok := byNum(p.In[0].DType, preluK[float32], preluK[float64], preluK[int8], preluK[int16],
		preluK[int32], preluK[int64], preluK[uint8], preluK[uint16], preluK[uint32], preluK[uint64])
	if !ok {
		return nil, Unsupported(p, "PRelu of %v", p.In[0].DType)
	}
	return f(p)
}

func preluK[T elemNum](p *Prep) (Kernel, error) {
	return binaryKernel(p, func(r, x []T, sx int, s []T, ss int) {
		if sx == 1 && ss == 0 {
			v, x := s[0], x[:len(r)]
			for i, a := range x {
				if a < 0 {
					a *= v
				}
				r[i] = a
			}
			return
		}
		for i := range r {
			a := x[i*sx]
			if a < 0 {
				a *= s[i*ss]
			}
			r[i] = a
		}
	})
}

// ---- Hardmax ----

var newHardmax = floatFactory(hardmaxK[float32], hardmaxK[float64])

// hardmaxK sets the first largest element of each group to 1 and the rest
// to 0; groups are Softmax's (the flattened trailing dims before opset 13).
func hardmaxK[T elemFloat](p *Prep) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	coerce := p.Opset > 0 && p.Opset < 13
	outer, n, inner, err := softmaxGeometry(p, p.InShape(0), coerce, p.Node.AttrInt("axis", graph.SoftmaxAxisDefault(p.Opset)))
	if err != nil {
		return nil, err
	}
	return func(in, out []*tensor.Tensor) error {
		x, y, err := inOutData[T, T](p, in, out)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		p.Pool.For(outer*inner, max(1, ewGrain/n), func(lo, hi int) {
			for j := lo; j < hi; j++ {
				base := (j/inner)*n*inner + j%inner
				best := 0
				for k := 1; k < n; k++ {
					if x[base+k*inner] > x[base+best*inner] {
						best = k
					}
				}
				for k := 0; k < n; k++ {
					y[base+k*inner] = 0
				}
				y[base+best*inner] = 1
			}
		})
		return nil
	}, nil
}

// ---- GatherND ----

// newGatherND gathers slices of data addressed by the last dim of indices:
// for batch bi and index tuple t, the slice data[bi][t...] of `inner`
// elements. Offsets are computed from the indices at run time and checked.
func newGatherND(p *Prep) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	ds, is := p.InShape(0), p.InShape(1)
	b := int(graph.GatherNDBatchDims(p.Node))
	q, r := len(is), len(ds)
	if q < 1 || b < 0 || b >= min(q, r) {
		return nil, Errorf(p, "batch_dims %d is invalid for data of rank %d and indices of rank %d", b, r, q)
	}
	k := is[q-1]
	if k < 1 || k > r-b {
		return nil, Errorf(p, "indices' last dim is %d; want 1..%d", k, r-b)
	}
	batch := tensor.NumElements(ds[:b])
	tuples := tensor.NumElements(is[b : q-1])
	inner := tensor.NumElements(ds[b+k:])
	batchStride := tensor.NumElements(ds[b:])
	strides := make([]int, k)
	for t := range strides {
		strides[t] = tensor.NumElements(ds[b+t+1:])
	}
	offs := make([]int, batch*tuples)
	move, ok := bySize(p.In[0].DType, gatherNDT[uint8], gatherNDT[uint16], gatherNDT[uint32], gatherNDT[uint64], gatherNDT[string])
	if !ok {
		return nil, Unsupported(p, "GatherND of %v", p.In[0].DType)
	}
	return func(in, out []*tensor.Tensor) error {
		var get func(i int) int64
		switch d := in[1].Data().(type) {
		case []int64:
			get = func(i int) int64 { return d[i] }
		case []int32:
			get = func(i int) int64 { return int64(d[i]) }
		default:
			return Errorf(p, "indices have dtype %v; want int64", in[1].DType())
		}
		for j := range offs {
			o := (j / max(tuples, 1)) * batchStride
			for t := 0; t < k; t++ {
				v, size := get(j*k+t), int64(ds[b+t])
				if v < -size || v >= size {
					return Errorf(p, "index %d (element %d of indices) is out of range for data dim %d of size %d", v, j*k+t, b+t, size)
				}
				if v < 0 {
					v += size
				}
				o += int(v) * strides[t]
			}
			offs[j] = o
		}
		move(p.Pool, out[0], in[0], offs, inner)
		return nil
	}, nil
}

func gatherNDT[T moveElem](pool *Pool, out, data *tensor.Tensor, offs []int, inner int) {
	dst, src := moveData[T](out), moveData[T](data)
	pool.For(len(offs), max(1, moveGrain/max(inner, 1)), func(lo, hi int) {
		for j := lo; j < hi; j++ {
			copy(dst[j*inner:(j+1)*inner], src[offs[j]:offs[j]+inner])
		}
	})
}

// ---- InstanceNormalization ----

func newInstanceNorm(p *Prep) (Kernel, error) {
	if anyHalf(p) {
		return viaFloat32(p, newInstanceNorm)
	}
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	if err := normFloatIn(p, 0, "X"); err != nil {
		return nil, err
	}
	n, c, s, err := normNCS(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	if err := normCheckVec(p, c, 1, "scale", "B"); err != nil {
		return nil, err
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	if p.In[0].DType == tensor.Float32 {
		return instanceNormK[float32](p, n, c, s, eps), nil
	}
	return instanceNormK[float64](p, n, c, s, eps), nil
}

// instanceNormK normalises each (sample, channel) plane by its own mean and
// biased variance, then applies the channel's scale and bias.
func instanceNormK[T elemFloat](p *Prep, n, c, s int, eps float64) Kernel {
	return func(in, out []*tensor.Tensor) error {
		x, err := dataOf[T](p, in[0], "input X")
		if err != nil {
			return err
		}
		y, err := dataOf[T](p, out[0], "output Y")
		if err != nil {
			return err
		}
		scale, bias := in[1], in[2]
		p.Pool.For(n*c, max(1, ewGrain/max(s, 1)), func(lo, hi int) {
			for g := lo; g < hi; g++ {
				plane := x[g*s : (g+1)*s]
				mean, variance := normMoments(plane, 1, 1, s, 0)
				a := normGet(scale, g%c) / math.Sqrt(variance+eps)
				normAffine(plane, y[g*s:(g+1)*s], 1, 1, s, 0, a, normGet(bias, g%c)-mean*a)
			}
		})
		return nil
	}
}

// ---- LpNormalization ----

var newLpNorm = floatFactory(lpNormK[float32], lpNormK[float64])

// lpNormK divides each vector along axis by its L1 or L2 norm; a vector of
// zeros (norm 0) stays zero rather than becoming NaN.
func lpNormK[T elemFloat](p *Prep) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	order := p.Node.AttrInt("p", 2)
	if order != 1 && order != 2 {
		return nil, Errorf(p, "attribute p is %d; want 1 or 2", order)
	}
	outer, n, inner, err := softmaxGeometry(p, p.InShape(0), false, p.Node.AttrInt("axis", -1))
	if err != nil {
		return nil, err
	}
	return func(in, out []*tensor.Tensor) error {
		x, y, err := inOutData[T, T](p, in, out)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		p.Pool.For(outer*inner, max(1, ewGrain/n), func(lo, hi int) {
			for j := lo; j < hi; j++ {
				base := (j/inner)*n*inner + j%inner
				var norm float64
				for k := 0; k < n; k++ {
					v := float64(x[base+k*inner])
					if order == 1 {
						norm += math.Abs(v)
					} else {
						norm += v * v
					}
				}
				if order == 2 {
					norm = math.Sqrt(norm)
				}
				inv := 0.0
				if norm != 0 {
					inv = 1 / norm
				}
				for k := 0; k < n; k++ {
					y[base+k*inner] = T(float64(x[base+k*inner]) * inv)
				}
			}
		})
		return nil
	}, nil
}

// ---- MeanVarianceNormalization ----

var newMVN = floatFactory(mvnK[float32], mvnK[float64])

// mvnEpsilon is what ONNX's definition of the op adds to the standard
// deviation (not the variance) before dividing.
const mvnEpsilon = 1e-9

// mvnK computes y = (x - mean) / (std + 1e-9) with the mean and the biased
// standard deviation over the axes. The statistics are kept per element of
// the reduced shape (axes set to 1) and accumulated in float64 in two
// passes (mean, then squared deviations) so that the variance cannot come
// out negative.
func mvnK[T elemFloat](p *Prep) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	xs := p.InShape(0)
	axes, err := graph.MVNAxes(p.Node, len(xs))
	if err != nil {
		return nil, Errorf(p, "axes: %v", err)
	}
	keep := append([]int(nil), xs...)
	for _, a := range axes {
		keep[a] = 1
	}
	pl, err := newBcastPlan(xs, xs, keep)
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	m := tensor.NumElements(keep)
	count := 0.0
	if m > 0 {
		count = float64(tensor.NumElements(xs) / m)
	}
	mean := make([]float64, m)
	scale := make([]float64, m)
	return func(in, out []*tensor.Tensor) error {
		x, y, err := inOutData[T, T](p, in, out)
		if err != nil {
			return err
		}
		clear(mean)
		clear(scale)
		ss := pl.step[1]
		pl.runSerial(func(o, n int, off [3]int) {
			for i, v := range x[o : o+n] {
				mean[off[1]+i*ss] += float64(v)
			}
		})
		for i := range mean {
			mean[i] /= count
		}
		pl.runSerial(func(o, n int, off [3]int) {
			for i, v := range x[o : o+n] {
				d := float64(v) - mean[off[1]+i*ss]
				scale[off[1]+i*ss] += d * d
			}
		})
		for i, q := range scale {
			scale[i] = 1 / (math.Sqrt(q/count) + mvnEpsilon)
		}
		pl.run(p.Pool, func(o, n int, off [3]int) {
			for i, v := range x[o : o+n] {
				j := off[1] + i*ss
				y[o+i] = T((float64(v) - mean[j]) * scale[j])
			}
		})
		return nil
	}, nil
}

// ---- Einsum ----

// newEinsum evaluates an Einsum equation directly: every label (a letter,
// or one dim of the ellipsis) has a size and, in each input, a stride (the
// sum of the strides of the dims it labels, which walks diagonals; 0 where
// the input broadcasts a dim of 1). Offset tables for the output's labels
// and for the summed labels are built here, so a run is, per output
// element, a sum over the summed combinations of the inputs' products.
// The cost is the product of all label sizes; no contraction is routed
// through BLAS.
func newEinsum(p *Prep) (Kernel, error) {
	if anyHalf(p) {
		return viaFloat32(p, newEinsum)
	}
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	terms, outTerm, err := graph.ParseEinsum(p.Node.AttrString("equation", ""))
	if err != nil {
		return nil, Errorf(p, "attribute equation: %v", err)
	}
	nIn := len(p.In)
	ranks := make([]int, nIn)
	for i := range p.In {
		if p.In[i] == nil {
			return nil, Errorf(p, "input %d is missing", i)
		}
		ranks[i] = len(p.InShape(i))
	}
	inL, outL, nl, err := graph.EinsumLabels(terms, outTerm, ranks)
	if err != nil {
		return nil, Errorf(p, "attribute equation: %v", err)
	}
	size := make([]int, nl)
	for l := range size {
		size[l] = 1
	}
	for i, ls := range inL {
		for k, l := range ls {
			d := p.InShape(i)[k]
			if d != 1 && size[l] != 1 && d != size[l] {
				return nil, Errorf(p, "input %d dim %d has size %d where its subscript has size %d elsewhere", i, k, d, size[l])
			}
			if d != 1 {
				size[l] = d
			}
		}
	}
	stride := make([][]int, nIn)
	for i, ls := range inL {
		stride[i] = make([]int, nl)
		es := tensor.Strides(p.InShape(i))
		for k, l := range ls {
			if p.InShape(i)[k] != 1 {
				stride[i][l] += es[k]
			}
		}
	}
	inOut := make([]bool, nl)
	want := make([]int, len(outL))
	for k, l := range outL {
		inOut[l] = true
		want[k] = size[l]
	}
	if !tensor.SameShape(want, p.OutShape(0)) {
		return nil, Errorf(p, "output has shape %v; the equation gives %v", p.OutShape(0), want)
	}
	var summed []int
	for l := 0; l < nl; l++ {
		if !inOut[l] {
			summed = append(summed, l)
		}
	}
	outOff := einsumOffsets(outL, size, stride)
	sumOff := einsumOffsets(summed, size, stride)
	f, ok := byNum(p.In[0].DType, einsumK[float32], einsumK[float64], einsumK[int8], einsumK[int16],
		einsumK[int32], einsumK[int64], einsumK[uint8], einsumK[uint16], einsumK[uint32], einsumK[uint64])
	if !ok {
		return nil, Unsupported(p, "Einsum of %v", p.In[0].DType)
	}
	return f(p, outOff, sumOff), nil
}

// einsumOffsets lists, for every combination of the labels' values in
// row-major order, each input's offset: entry j*nIn+i.
func einsumOffsets(labels, size []int, stride [][]int) []int {
	nIn := len(stride)
	total := 1
	for _, l := range labels {
		total *= size[l]
	}
	offs := make([]int, total*nIn)
	idx := make([]int, len(labels))
	cur := make([]int, nIn)
	for j := 0; j < total; j++ {
		copy(offs[j*nIn:], cur)
		for d := len(labels) - 1; d >= 0; d-- {
			l := labels[d]
			idx[d]++
			for i := range cur {
				cur[i] += stride[i][l]
			}
			if idx[d] < size[l] {
				break
			}
			for i := range cur {
				cur[i] -= stride[i][l] * size[l]
			}
			idx[d] = 0
		}
	}
	return offs
}

func einsumK[T elemNum](p *Prep, outOff, sumOff []int) Kernel {
	nIn := len(p.In)
	xs := make([][]T, nIn)
	nSum := len(sumOff) / nIn
	return func(in, out []*tensor.Tensor) error {
		for i := range xs {
			x, err := dataOf[T](p, in[i], "input")
			if err != nil {
				return err
			}
			xs[i] = x
		}
		y, err := dataOf[T](p, out[0], "output 0")
		if err != nil {
			return err
		}
		p.Pool.For(len(y), max(1, ewGrain/max(nSum*nIn, 1)), func(lo, hi int) {
			for j := lo; j < hi; j++ {
				base := outOff[j*nIn : (j+1)*nIn]
				var acc T
				for k := 0; k < nSum; k++ {
					so := sumOff[k*nIn : (k+1)*nIn]
					v := xs[0][base[0]+so[0]]
					for i := 1; i < nIn; i++ {
						v *= xs[i][base[i]+so[i]]
					}
					acc += v
				}
				y[j] = acc
			}
		})
		return nil
	}
}
