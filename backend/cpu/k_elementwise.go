package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Elementwise kernels: activations and unary math, broadcasting arithmetic
// and comparisons, variadic Max/Min/Sum/Mean, Where, Clip and the
// activation gradients of the gotrain domain.
//
// Loops are generic over the element type and written per op, so the Go
// compiler emits a direct loop for each (op, dtype) pair; float16 and
// bfloat16 compute in float32 through viaFloat32.

func init() {
	for _, op := range []string{"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Erf", "Sqrt", "Exp",
		"Log", "Neg", "Abs", "Reciprocal"} {
		Register(graph.DomainONNX, op, unaryFactory(op))
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		Register(graph.DomainONNX, op, arithFactory(op))
	}
	Register(graph.DomainONNX, "Pow", newPow)
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"} {
		Register(graph.DomainONNX, op, compareFactory(op))
	}
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		Register(graph.DomainONNX, op, variadicFactory(op))
	}
	Register(graph.DomainONNX, "Where", newWhere)
	Register(graph.DomainONNX, "Clip", newClip)
	for _, op := range []string{"ReluGrad", "SigmoidGrad", "TanhGrad", "LeakyReluGrad", "GeluGrad"} {
		Register(graph.DomainGotrain, op, actGradFactory(op))
	}
}

// dataOf returns a tensor's elements as []T, or an error naming the operand
// when its dtype is not the one the kernel was prepared for.
func dataOf[T any](p *Prep, t *tensor.Tensor, what string) ([]T, error) {
	if t == nil {
		return nil, Errorf(p, "%s is missing", what)
	}
	d, ok := t.Data().([]T)
	if !ok {
		return nil, Errorf(p, "%s has dtype %v, not the dtype the kernel was prepared for", what, t.DType())
	}
	return d, nil
}

// inOutData is dataOf for input 0 and output 0, the pair most kernels read
// and write.
func inOutData[X, Y any](p *Prep, in, out []*tensor.Tensor) ([]X, []Y, error) {
	x, err := dataOf[X](p, in[0], "input 0")
	if err != nil {
		return nil, nil, err
	}
	y, err := dataOf[Y](p, out[0], "output 0")
	return x, y, err
}

// ---- unary ----

func unaryFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		f, ok := byNum(dt, unaryFloat[float32], unaryFloat[float64], unaryInt[int8], unaryInt[int16],
			unaryInt[int32], unaryInt[int64], unaryInt[uint8], unaryInt[uint16], unaryInt[uint32], unaryInt[uint64])
		if !ok {
			return nil, Unsupported(p, "%s of %v", op, dt)
		}
		return f(p, op)
	}
	return self
}

// mapLoop applies f (computed in float64) elementwise.
func mapLoop[T elemFloat](f func(float64) float64) func(dst, src []T) {
	return func(dst, src []T) {
		src = src[:len(dst)]
		for i, x := range src {
			dst[i] = T(f(float64(x)))
		}
	}
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

const sqrt2OverPi = 0.7978845608028654 // sqrt(2/pi)

func geluExact(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

func geluTanh(x float64) float64 {
	return 0.5 * x * (1 + math.Tanh(sqrt2OverPi*(x+0.044715*x*x*x)))
}

func unaryFloat[T elemFloat](p *Prep, op string) (Kernel, error) {
	var loop func(dst, src []T)
	grain := ewGrain / 4 // transcendental ops cost more per element
	switch op {
	case "Relu":
		loop, grain = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				dst[i] = max(x, 0)
			}
		}, ewGrain
	case "LeakyRelu":
		alpha := T(p.Node.AttrFloat("alpha", 0.01))
		loop, grain = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				if x < 0 {
					x *= alpha
				}
				dst[i] = x
			}
		}, ewGrain
	case "Neg":
		loop, grain = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				dst[i] = -x
			}
		}, ewGrain
	case "Abs":
		loop, grain = mapLoop[T](math.Abs), ewGrain
	case "Reciprocal":
		loop, grain = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				dst[i] = 1 / x
			}
		}, ewGrain
	case "Sigmoid":
		loop = mapLoop[T](sigmoid)
	case "Tanh":
		loop = mapLoop[T](math.Tanh)
	case "Erf":
		loop = mapLoop[T](math.Erf)
	case "Sqrt":
		loop = mapLoop[T](math.Sqrt)
	case "Exp":
		loop = mapLoop[T](math.Exp)
	case "Log":
		loop = mapLoop[T](math.Log)
	case "Gelu":
		switch a := p.Node.AttrString("approximate", "none"); a {
		case "none":
			loop = mapLoop[T](geluExact)
		case "tanh":
			loop = mapLoop[T](geluTanh)
		default:
			return nil, Errorf(p, "attribute approximate is %q; want \"none\" or \"tanh\"", a)
		}
	default:
		return nil, Unsupported(p, "%s", op)
	}
	return mapKernel(p, grain, loop), nil
}

// mapKernel runs a same-shape loop from input 0 to output 0 in parallel.
func mapKernel[S, D any](p *Prep, grain int, loop func(dst []D, src []S)) Kernel {
	// The chunk function is made once and reads the call's slices through
	// these variables, so a run allocates nothing.
	var src []S
	var dst []D
	chunk := func(lo, hi int) { loop(dst[lo:hi], src[lo:hi]) }
	return func(in, out []*tensor.Tensor) error {
		s, d, err := inOutData[S, D](p, in, out)
		if err != nil {
			return err
		}
		src, dst = s, d
		p.Pool.For(len(dst), grain, chunk)
		src, dst = nil, nil
		return nil
	}
}

func unaryInt[T elemInt](p *Prep, op string) (Kernel, error) {
	var loop func(dst, src []T)
	switch op {
	case "Relu":
		loop = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				dst[i] = max(x, 0)
			}
		}
	case "Neg":
		loop = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				dst[i] = -x
			}
		}
	case "Abs":
		loop = func(dst, src []T) {
			src = src[:len(dst)]
			for i, x := range src {
				if x < 0 {
					x = -x
				}
				dst[i] = x
			}
		}
	default:
		return nil, Unsupported(p, "%s of %v", op, p.In[0].DType)
	}
	return mapKernel(p, ewGrain, loop), nil
}

// ---- binary with broadcasting ----

// binLoop computes r from a and b; sa and sb are 1 when the operand has one
// element per output element and 0 when its first element repeats.
type binLoop[A, B, R any] func(r []R, a []A, sa int, b []B, sb int)

// binaryKernel runs loop over the broadcast of inputs ia and ib into output 0.
func binaryKernel[A, B, R any](p *Prep, loop binLoop[A, B, R]) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	pl, err := newBcastPlan(p.OutShape(0), p.InShape(0), p.InShape(1))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	// As in mapKernel: one chunk function, reading the call's slices.
	var a []A
	var b []B
	var r []R
	chunk := func(o, n int, off [3]int) {
		loop(r[o:o+n], a[off[0]:], pl.step[0], b[off[1]:], pl.step[1])
	}
	return func(in, out []*tensor.Tensor) error {
		av, err := dataOf[A](p, in[0], "input 0")
		if err != nil {
			return err
		}
		bv, err := dataOf[B](p, in[1], "input 1")
		if err != nil {
			return err
		}
		rv, err := dataOf[R](p, out[0], "output 0")
		if err != nil {
			return err
		}
		a, b, r = av, bv, rv
		pl.run(p.Pool, chunk)
		a, b, r = nil, nil, nil
		return nil
	}, nil
}

// funcLoop makes a binLoop from a per-element function (for ops where a
// call per element does not matter: pow, string and bool comparisons).
func funcLoop[A, B, R any](f func(A, B) R) binLoop[A, B, R] {
	return func(r []R, a []A, sa int, b []B, sb int) {
		for i := range r {
			r[i] = f(a[i*sa], b[i*sb])
		}
	}
}

func addLoop[T elemNum](r, a []T, sa int, b []T, sb int) {
	switch sa<<1 | sb {
	case 3:
		a, b = a[:len(r)], b[:len(r)]
		for i := range r {
			r[i] = a[i] + b[i]
		}
	case 2:
		v, a := b[0], a[:len(r)]
		for i := range r {
			r[i] = a[i] + v
		}
	case 1:
		v, b := a[0], b[:len(r)]
		for i := range r {
			r[i] = v + b[i]
		}
	default:
		fill(r, a[0]+b[0])
	}
}

func subLoop[T elemNum](r, a []T, sa int, b []T, sb int) {
	switch sa<<1 | sb {
	case 3:
		a, b = a[:len(r)], b[:len(r)]
		for i := range r {
			r[i] = a[i] - b[i]
		}
	case 2:
		v, a := b[0], a[:len(r)]
		for i := range r {
			r[i] = a[i] - v
		}
	case 1:
		v, b := a[0], b[:len(r)]
		for i := range r {
			r[i] = v - b[i]
		}
	default:
		fill(r, a[0]-b[0])
	}
}

func mulLoop[T elemNum](r, a []T, sa int, b []T, sb int) {
	switch sa<<1 | sb {
	case 3:
		a, b = a[:len(r)], b[:len(r)]
		for i := range r {
			r[i] = a[i] * b[i]
		}
	case 2:
		v, a := b[0], a[:len(r)]
		for i := range r {
			r[i] = a[i] * v
		}
	case 1:
		v, b := a[0], b[:len(r)]
		for i := range r {
			r[i] = v * b[i]
		}
	default:
		fill(r, a[0]*b[0])
	}
}

func divLoop[T elemFloat](r, a []T, sa int, b []T, sb int) {
	switch sa<<1 | sb {
	case 3:
		a, b = a[:len(r)], b[:len(r)]
		for i := range r {
			r[i] = a[i] / b[i]
		}
	case 2:
		v, a := 1/b[0], a[:len(r)]
		if 1/v != b[0] { // the reciprocal is inexact: divide
			v = b[0]
			for i := range r {
				r[i] = a[i] / v
			}
			return
		}
		for i := range r {
			r[i] = a[i] * v
		}
	case 1:
		v, b := a[0], b[:len(r)]
		for i := range r {
			r[i] = v / b[i]
		}
	default:
		fill(r, a[0]/b[0])
	}
}

// intDiv truncates toward zero, as C and numpy's integer division of the
// ONNX test data do; division by zero gives 0 instead of trapping.
func intDiv[T elemInt](a, b T) T {
	if b == 0 {
		return 0
	}
	return a / b
}

func maxLoop[T elemNum](r, a []T, sa int, b []T, sb int) {
	if sa == 1 && sb == 1 {
		a, b = a[:len(r)], b[:len(r)]
		for i := range r {
			r[i] = max(a[i], b[i])
		}
		return
	}
	for i := range r {
		r[i] = max(a[i*sa], b[i*sb])
	}
}

func minLoop[T elemNum](r, a []T, sa int, b []T, sb int) {
	if sa == 1 && sb == 1 {
		a, b = a[:len(r)], b[:len(r)]
		for i := range r {
			r[i] = min(a[i], b[i])
		}
		return
	}
	for i := range r {
		r[i] = min(a[i*sa], b[i*sb])
	}
}

func fill[T any](r []T, v T) {
	for i := range r {
		r[i] = v
	}
}

// numLoop returns the loop of an arithmetic or Max/Min op for T.
func numLoop[T elemNum](op string) binLoop[T, T, T] {
	switch op {
	case "Add", "Sum", "Mean":
		return addLoop[T]
	case "Sub":
		return subLoop[T]
	case "Mul":
		return mulLoop[T]
	case "Max":
		return maxLoop[T]
	case "Min":
		return minLoop[T]
	}
	return nil
}

func arithFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		if op != "Div" {
			return numKernel(p, dt, op)
		}
		switch dt {
		case tensor.Float32:
			return binaryKernel(p, divLoop[float32])
		case tensor.Float64:
			return binaryKernel(p, divLoop[float64])
		case tensor.Int8:
			return binaryKernel(p, funcLoop(intDiv[int8]))
		case tensor.Int16:
			return binaryKernel(p, funcLoop(intDiv[int16]))
		case tensor.Int32:
			return binaryKernel(p, funcLoop(intDiv[int32]))
		case tensor.Int64:
			return binaryKernel(p, funcLoop(intDiv[int64]))
		case tensor.Uint8:
			return binaryKernel(p, funcLoop(intDiv[uint8]))
		case tensor.Uint16:
			return binaryKernel(p, funcLoop(intDiv[uint16]))
		case tensor.Uint32:
			return binaryKernel(p, funcLoop(intDiv[uint32]))
		case tensor.Uint64:
			return binaryKernel(p, funcLoop(intDiv[uint64]))
		}
		return nil, Unsupported(p, "Div of %v", dt)
	}
	return self
}

// numKernel dispatches an arithmetic or Max/Min binary op over the numeric dtypes.
func numKernel(p *Prep, dt tensor.DType, op string) (Kernel, error) {
	f, ok := byNum(dt, numKernelOf[float32], numKernelOf[float64], numKernelOf[int8], numKernelOf[int16],
		numKernelOf[int32], numKernelOf[int64], numKernelOf[uint8], numKernelOf[uint16], numKernelOf[uint32], numKernelOf[uint64])
	if !ok {
		return nil, Unsupported(p, "%s of %v", op, dt)
	}
	return f(p, op)
}

func numKernelOf[T elemNum](p *Prep, op string) (Kernel, error) {
	return binaryKernel(p, numLoop[T](op))
}

// ---- Pow: the exponent may have another dtype than the base ----

func newPow(p *Prep) (Kernel, error) {
	if anyHalf(p) {
		return viaFloat32(p, newPow)
	}
	switch p.In[0].DType {
	case tensor.Float32:
		return powBase[float32](p)
	case tensor.Float64:
		return powBase[float64](p)
	case tensor.Int32:
		return powBase[int32](p)
	case tensor.Int64:
		return powBase[int64](p)
	case tensor.Int8:
		return powBase[int8](p)
	case tensor.Int16:
		return powBase[int16](p)
	case tensor.Uint8:
		return powBase[uint8](p)
	case tensor.Uint16:
		return powBase[uint16](p)
	case tensor.Uint32:
		return powBase[uint32](p)
	case tensor.Uint64:
		return powBase[uint64](p)
	}
	return nil, Unsupported(p, "Pow with base %v", p.In[0].DType)
}

func powBase[A elemNum](p *Prep) (Kernel, error) {
	switch p.In[1].DType {
	case tensor.Float32:
		return binaryKernel(p, funcLoop(powOf[A, float32]))
	case tensor.Float64:
		return binaryKernel(p, funcLoop(powOf[A, float64]))
	case tensor.Int32:
		return binaryKernel(p, funcLoop(powOf[A, int32]))
	case tensor.Int64:
		return binaryKernel(p, funcLoop(powOf[A, int64]))
	case tensor.Int8:
		return binaryKernel(p, funcLoop(powOf[A, int8]))
	case tensor.Int16:
		return binaryKernel(p, funcLoop(powOf[A, int16]))
	case tensor.Uint8:
		return binaryKernel(p, funcLoop(powOf[A, uint8]))
	case tensor.Uint16:
		return binaryKernel(p, funcLoop(powOf[A, uint16]))
	case tensor.Uint32:
		return binaryKernel(p, funcLoop(powOf[A, uint32]))
	case tensor.Uint64:
		return binaryKernel(p, funcLoop(powOf[A, uint64]))
	}
	return nil, Unsupported(p, "Pow with exponent %v", p.In[1].DType)
}

// powOf is a**b in the base's type: exact repeated squaring when both are
// integers, math.Pow otherwise.
func powOf[A, B elemNum](a A, b B) A {
	if isIntValue(a) && isIntValue(b) {
		return A(ipow(int64(a), int64(b)))
	}
	return A(math.Pow(float64(a), float64(b)))
}

func isIntValue[T elemNum](v T) bool {
	switch any(v).(type) {
	case float32, float64:
		return false
	}
	return true
}

func ipow(a, b int64) int64 {
	if b < 0 {
		switch a {
		case 1:
			return 1
		case -1:
			if b%2 == 0 {
				return 1
			}
			return -1
		}
		return 0
	}
	r := int64(1)
	for b > 0 {
		if b&1 != 0 {
			r *= a
		}
		a *= a
		b >>= 1
	}
	return r
}

// ---- comparisons ----

type elemOrdered interface{ elemNum | ~string }

func compareFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		switch dt {
		case tensor.Float32:
			return compareK[float32](p, op)
		case tensor.Float64:
			return compareK[float64](p, op)
		case tensor.Int8:
			return compareK[int8](p, op)
		case tensor.Int16:
			return compareK[int16](p, op)
		case tensor.Int32:
			return compareK[int32](p, op)
		case tensor.Int64:
			return compareK[int64](p, op)
		case tensor.Uint8:
			return compareK[uint8](p, op)
		case tensor.Uint16:
			return compareK[uint16](p, op)
		case tensor.Uint32:
			return compareK[uint32](p, op)
		case tensor.Uint64:
			return compareK[uint64](p, op)
		case tensor.String:
			return compareK[string](p, op)
		case tensor.Bool:
			if op == "Equal" {
				return binaryKernel(p, funcLoop(func(a, b bool) bool { return a == b }))
			}
		}
		return nil, Unsupported(p, "%s of %v", op, dt)
	}
	return self
}

func compareK[T elemOrdered](p *Prep, op string) (Kernel, error) {
	var f func(a, b T) bool
	switch op {
	case "Equal":
		f = func(a, b T) bool { return a == b }
	case "Greater":
		f = func(a, b T) bool { return a > b }
	case "Less":
		f = func(a, b T) bool { return a < b }
	case "GreaterOrEqual":
		f = func(a, b T) bool { return a >= b }
	case "LessOrEqual":
		f = func(a, b T) bool { return a <= b }
	default:
		return nil, Unsupported(p, "%s", op)
	}
	return binaryKernel(p, funcLoop(f))
}

// ---- variadic Max, Min, Sum, Mean ----

func variadicFactory(op string) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		if (op == "Sum" || op == "Mean") && !dt.IsFloat() {
			return nil, Unsupported(p, "%s of %v", op, dt)
		}
		f, ok := byNum(dt, variadicK[float32], variadicK[float64], variadicK[int8],
			variadicK[int16], variadicK[int32], variadicK[int64], variadicK[uint8], variadicK[uint16], variadicK[uint32], variadicK[uint64])
		if !ok {
			return nil, Unsupported(p, "%s of %v", op, dt)
		}
		return f(p, op)
	}
	return self
}

// variadicK broadcasts input 0 into the output, folds the other inputs in
// one by one, and divides by the count for Mean.
func variadicK[T elemNum](p *Prep, op string) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	out := p.OutShape(0)
	plans := make([]*bcastPlan, len(p.In))
	for i := range p.In {
		if p.In[i] == nil {
			return nil, Errorf(p, "input %d is missing", i)
		}
		var err error
		if i == 0 {
			plans[i], err = newBcastPlan(out, p.InShape(0))
		} else {
			plans[i], err = newBcastPlan(out, out, p.InShape(i))
		}
		if err != nil {
			return nil, Errorf(p, "input %d: %v", i, err)
		}
	}
	loop := numLoop[T](op)
	count := T(len(p.In))
	// The chunk functions are made once and read the call's slices (and the
	// plan of the input being folded in) through these variables, so a run
	// allocates nothing.
	var r, a []T
	var pl *bcastPlan
	first := func(o, n int, off [3]int) {
		if pl.step[0] == 1 {
			copy(r[o:o+n], a[off[0]:])
		} else {
			fill(r[o:o+n], a[off[0]])
		}
	}
	fold := func(o, n int, off [3]int) {
		loop(r[o:o+n], r[o:], 1, a[off[1]:], pl.step[1])
	}
	divide := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r[i] /= count
		}
	}
	return func(in, outs []*tensor.Tensor) error {
		rv, err := dataOf[T](p, outs[0], "output 0")
		if err != nil {
			return err
		}
		defer func() { r, a, pl = nil, nil, nil }()
		r = rv
		for i := range plans {
			if a, err = dataOf[T](p, in[i], "input"); err != nil {
				return err
			}
			pl = plans[i]
			if i == 0 {
				pl.run(p.Pool, first)
			} else {
				pl.run(p.Pool, fold)
			}
		}
		if op == "Mean" && count != 1 {
			p.Pool.For(len(r), ewGrain, divide)
		}
		return nil
	}, nil
}

// ---- Where ----

func newWhere(p *Prep) (Kernel, error) {
	switch p.Out[0].DType {
	case tensor.Float32:
		return whereK[float32](p)
	case tensor.Float64:
		return whereK[float64](p)
	case tensor.Int8:
		return whereK[int8](p)
	case tensor.Int16:
		return whereK[int16](p)
	case tensor.Int32:
		return whereK[int32](p)
	case tensor.Int64:
		return whereK[int64](p)
	case tensor.Uint8:
		return whereK[uint8](p)
	case tensor.Uint16, tensor.Float16, tensor.BFloat16:
		return whereK[uint16](p) // selection copies the 16-bit patterns
	case tensor.Uint32:
		return whereK[uint32](p)
	case tensor.Uint64:
		return whereK[uint64](p)
	case tensor.Bool:
		return whereK[bool](p)
	case tensor.String:
		return whereK[string](p)
	}
	return nil, Unsupported(p, "Where of %v", p.Out[0].DType)
}

func whereK[T any](p *Prep) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	pl, err := newBcastPlan(p.OutShape(0), p.InShape(0), p.InShape(1), p.InShape(2))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	// As in binaryKernel: one chunk function, reading the call's slices.
	var cond []bool
	var xs, ys, rs []T
	sc, sx, sy := pl.step[0], pl.step[1], pl.step[2]
	chunk := func(o, n int, off [3]int) {
		c, x, y, r := cond[off[0]:], xs[off[1]:], ys[off[2]:], rs[o:o+n]
		for i := range r {
			if c[i*sc] {
				r[i] = x[i*sx]
			} else {
				r[i] = y[i*sy]
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		c, err := dataOf[bool](p, in[0], "input 0 (condition)")
		if err != nil {
			return err
		}
		x, err := dataOf[T](p, in[1], "input 1 (X)")
		if err != nil {
			return err
		}
		y, err := dataOf[T](p, in[2], "input 2 (Y)")
		if err != nil {
			return err
		}
		r, err := dataOf[T](p, out[0], "output 0")
		if err != nil {
			return err
		}
		cond, xs, ys, rs = c, x, y, r
		pl.run(p.Pool, chunk)
		cond, xs, ys, rs = nil, nil, nil, nil
		return nil
	}, nil
}

// ---- Clip ----

func newClip(p *Prep) (Kernel, error) {
	dt := p.In[0].DType
	if isHalf(dt) {
		return viaFloat32(p, newClip)
	}
	f, ok := byNum(dt, clipK[float32], clipK[float64], clipK[int8],
		clipK[int16], clipK[int32], clipK[int64], clipK[uint8], clipK[uint16], clipK[uint32], clipK[uint64])
	if !ok {
		return nil, Unsupported(p, "Clip of %v", dt)
	}
	return f(p)
}

// clipK computes min(max(x, lo), hi): the bounds come from the min and max
// attributes before opset 11 and from the optional inputs 1 and 2 after;
// an absent bound does not clip. With lo > hi every element becomes hi.
func clipK[T elemNum](p *Prep) (Kernel, error) {
	attrs := p.Opset > 0 && p.Opset < 11
	var aLo, aHi T
	var aHasLo, aHasHi bool
	if attrs {
		if a := p.Node.Attr("min"); a != nil {
			aLo, aHasLo = T(a.F), true
		}
		if a := p.Node.Attr("max"); a != nil {
			aHi, aHasHi = T(a.F), true
		}
	}
	// The chunk function is made once and reads the call's slices and
	// bounds through these variables, so a run allocates nothing.
	var x, r []T
	var lo, hi T
	var hasLo, hasHi bool
	chunk := func(a, b int) {
		for i := a; i < b; i++ {
			v := x[i]
			if hasLo && v < lo {
				v = lo
			}
			if hasHi && v > hi {
				v = hi
			}
			r[i] = v
		}
	}
	return func(in, out []*tensor.Tensor) error {
		lo, hi, hasLo, hasHi = aLo, aHi, aHasLo, aHasHi
		if !attrs {
			for i := 1; i <= 2; i++ {
				if len(in) <= i || in[i] == nil {
					continue
				}
				d, err := dataOf[T](p, in[i], [3]string{"", "input 1 (min)", "input 2 (max)"}[i])
				if err != nil {
					return err
				}
				if len(d) != 1 {
					return Errorf(p, "input %d must hold one value, has %d", i, len(d))
				}
				if i == 1 {
					lo, hasLo = d[0], true
				} else {
					hi, hasHi = d[0], true
				}
			}
		}
		xv, rv, err := inOutData[T, T](p, in, out)
		if err != nil {
			return err
		}
		x, r = xv, rv
		p.Pool.For(len(r), ewGrain, chunk)
		x, r = nil, nil
		return nil
	}, nil
}

// ---- activation gradients (gotrain domain) ----

func actGradFactory(op string) Factory {
	return floatFactory(func(p *Prep) (Kernel, error) { return actGradK[float32](p, op) },
		func(p *Prep) (Kernel, error) { return actGradK[float64](p, op) })
}

// geluGrad is d/dx of GELU at x, exact or with the tanh approximation.
func geluGrad(x float64, approx bool) float64 {
	if approx {
		const c = 0.044715
		u := sqrt2OverPi * (x + c*x*x*x)
		t := math.Tanh(u)
		return 0.5*(1+t) + 0.5*x*(1-t*t)*sqrt2OverPi*(1+3*c*x*x)
	}
	cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
	pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
	return cdf + x*pdf
}

// reluGradLoop is r[i] = dy[i] where y[i] > 0, else +0. The sign of y is
// random, so a branch mispredicts half the time; Go emits conditional
// moves for integers only, so the choice is made on the bits.
func reluGradLoop[T elemFloat](r, dy, y []T) {
	switch rv := any(r).(type) {
	case []float32:
		dy, y := any(dy).([]float32)[:len(rv)], any(y).([]float32)[:len(rv)]
		for i := range rv {
			v := math.Float32bits(dy[i])
			if !(y[i] > 0) {
				v = 0
			}
			rv[i] = math.Float32frombits(v)
		}
	case []float64:
		dy, y := any(dy).([]float64)[:len(rv)], any(y).([]float64)[:len(rv)]
		for i := range rv {
			v := math.Float64bits(dy[i])
			if !(y[i] > 0) {
				v = 0
			}
			rv[i] = math.Float64frombits(v)
		}
	default:
		for i := range r {
			v := dy[i]
			if !(y[i] > 0) {
				v = 0
			}
			r[i] = v
		}
	}
}

func actGradK[T elemFloat](p *Prep, op string) (Kernel, error) {
	switch op {
	case "ReluGrad":
		return binaryKernel(p, func(r, dy []T, sa int, y []T, sb int) {
			if sa&sb == 1 {
				reluGradLoop(r, dy[:len(r)], y[:len(r)])
				return
			}
			for i := range r {
				if y[i*sb] > 0 {
					r[i] = dy[i*sa]
				} else {
					r[i] = 0
				}
			}
		})
	case "SigmoidGrad":
		return binaryKernel(p, funcLoop(func(dy, y T) T { return dy * y * (1 - y) }))
	case "TanhGrad":
		return binaryKernel(p, funcLoop(func(dy, y T) T { return dy * (1 - y*y) }))
	case "LeakyReluGrad":
		alpha := T(p.Node.AttrFloat("alpha", 0.01))
		return binaryKernel(p, funcLoop(func(dy, x T) T {
			if x > 0 {
				return dy
			}
			return alpha * dy
		}))
	case "GeluGrad":
		var approx bool
		switch a := p.Node.AttrString("approximate", "none"); a {
		case "none":
		case "tanh":
			approx = true
		default:
			return nil, Errorf(p, "attribute approximate is %q; want \"none\" or \"tanh\"", a)
		}
		return binaryKernel(p, funcLoop(func(dy, x T) T { return T(float64(dy) * geluGrad(float64(x), approx)) }))
	}
	return nil, Unsupported(p, "%s", op)
}
