package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Reductions: the ONNX ReduceX ops, ArgMax/ArgMin and gotrain's SumToShape
// (the adjoint of broadcasting).
//
// A reduction is broadcasting run backwards: the input is the "full" shape
// and the output, with reduced dims kept as 1, the operand that broadcasts
// to it. The same bcastPlan then walks the input in contiguous runs, each
// either folded into one output element (inner dims reduced) or
// accumulated into a run of outputs (inner dims kept).

func init() {
	for _, op := range graph.ReduceOps {
		Register(graph.DomainONNX, op, reduceFactory(op))
	}
	Register(graph.DomainONNX, "ArgMax", argFactory(true))
	Register(graph.DomainONNX, "ArgMin", argFactory(false))
	Register(graph.DomainGotrain, "SumToShape", newSumToShape)
}

type reduceKind int

const (
	rSum reduceKind = iota
	rMean
	rMax
	rMin
	rProd
	rSumSquare
	rL1
	rL2
	rLogSum
	rLogSumExp
)

var reduceKinds = map[string]reduceKind{
	"ReduceSum": rSum, "ReduceMean": rMean, "ReduceMax": rMax, "ReduceMin": rMin, "ReduceProd": rProd,
	"ReduceSumSquare": rSumSquare, "ReduceL1": rL1, "ReduceL2": rL2, "ReduceLogSum": rLogSum,
	"ReduceLogSumExp": rLogSumExp,
}

func reduceFactory(op string) Factory {
	kind := reduceKinds[op]
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		if err := needConcrete(p); err != nil {
			return nil, err
		}
		xs := p.InShape(0)
		axes, noop, known, err := graph.ReduceAxes(p.Node, p.In, len(xs))
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, Errorf(p, "input 1 (axes) must be known when the kernel is prepared")
		}
		keep := append([]int{}, xs...)
		if noop {
			axes = nil
		}
		for _, a := range axes {
			keep[a] = 1
		}
		if tensor.NumElements(keep) != tensor.NumElements(p.OutShape(0)) {
			return nil, Errorf(p, "output shape %v does not match input %v reduced over %v", p.OutShape(0), xs, axes)
		}
		if dt == tensor.Bool && (kind == rMax || kind == rMin) {
			return reduceBool(p, xs, keep, kind == rMax)
		}
		if !dt.IsFloat() {
			switch kind {
			case rL2, rLogSum, rLogSumExp:
				return nil, Unsupported(p, "%s of %v", op, dt)
			}
		}
		return reduceDispatch(p, dt, kind, xs, keep)
	}
	return self
}

func reduceDispatch(p *Prep, dt tensor.DType, kind reduceKind, xs, keep []int) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	f, ok := byNum(dt, reducer[float32], reducer[float64], reducer[int8],
		reducer[int16], reducer[int32], reducer[int64], reducer[uint8], reducer[uint16], reducer[uint32], reducer[uint64])
	if !ok {
		return nil, Unsupported(p, "%s of %v", p.Node.OpType, dt)
	}
	return f(p, kind, xs, keep)
}

// lowest and highest are the identities of max and min.
func lowest[T elemNum]() T {
	var z T
	switch any(z).(type) {
	case float32:
		return any(float32(math.Inf(-1))).(T)
	case float64:
		return any(math.Inf(-1)).(T)
	case int8:
		return any(int8(math.MinInt8)).(T)
	case int16:
		return any(int16(math.MinInt16)).(T)
	case int32:
		return any(int32(math.MinInt32)).(T)
	case int64:
		return any(int64(math.MinInt64)).(T)
	}
	return z // unsigned
}

func highest[T elemNum]() T {
	var z T
	switch any(z).(type) {
	case float32:
		return any(float32(math.Inf(1))).(T)
	case float64:
		return any(math.Inf(1)).(T)
	case int8:
		return any(int8(math.MaxInt8)).(T)
	case int16:
		return any(int16(math.MaxInt16)).(T)
	case int32:
		return any(int32(math.MaxInt32)).(T)
	case int64:
		return any(int64(math.MaxInt64)).(T)
	case uint8:
		return any(uint8(math.MaxUint8)).(T)
	case uint16:
		return any(uint16(math.MaxUint16)).(T)
	case uint32:
		return any(uint32(math.MaxUint32)).(T)
	case uint64:
		return any(uint64(math.MaxUint64)).(T)
	}
	return z
}

// foldRow folds xs into s.
func foldRow[T elemNum](kind reduceKind, s T, xs []T) T {
	switch kind {
	case rSum, rMean, rLogSum:
		for _, x := range xs {
			s += x
		}
	case rSumSquare, rL2:
		for _, x := range xs {
			s += x * x
		}
	case rL1:
		for _, x := range xs {
			if x < 0 {
				x = -x
			}
			s += x
		}
	case rProd:
		for _, x := range xs {
			s *= x
		}
	case rMax:
		for _, x := range xs {
			s = max(s, x)
		}
	case rMin:
		for _, x := range xs {
			s = min(s, x)
		}
	}
	return s
}

// foldVec folds xs into r elementwise.
func foldVec[T elemNum](kind reduceKind, r, xs []T) {
	xs = xs[:len(r)]
	switch kind {
	case rSum, rMean, rLogSum:
		for i, x := range xs {
			r[i] += x
		}
	case rSumSquare, rL2:
		for i, x := range xs {
			r[i] += x * x
		}
	case rL1:
		for i, x := range xs {
			if x < 0 {
				x = -x
			}
			r[i] += x
		}
	case rProd:
		for i, x := range xs {
			r[i] *= x
		}
	case rMax:
		for i, x := range xs {
			r[i] = max(r[i], x)
		}
	case rMin:
		for i, x := range xs {
			r[i] = min(r[i], x)
		}
	}
}

// reduction walks x (shape xs) into r (shape keep) with a plan chosen so
// that no two workers write one output element.
type reduction struct {
	pl    *bcastPlan
	pool  *Pool
	count int // input elements per output element
	// The current call's functions and the chunk functions bound to the
	// reduction once (as in bcastPlan), so a run allocates nothing.
	row, vec func(o, n, out int)
	rowFn    func(o, n int, off [3]int)
	colsFn   func(lo, hi int)
}

func newReduction(pool *Pool, xs, keep []int) (*reduction, error) {
	pl, err := newBcastPlan(xs, keep)
	if err != nil {
		return nil, err
	}
	count := 0
	if m := tensor.NumElements(keep); m > 0 {
		count = tensor.NumElements(xs) / m
	}
	rd := &reduction{pl: pl, pool: pool, count: count}
	rd.rowFn, rd.colsFn = rd.rowChunk, rd.colsChunk
	return rd, nil
}

// each calls row(o, n, out) for an input run [o, o+n) folded into the
// output element out, or vec(o, n, out) for a run accumulated into outputs
// [out, out+n). Work is split across workers only where their outputs are
// disjoint: by rows when every row has its own outputs, by columns when
// the inner dim is kept.
func (rd *reduction) each(row, vec func(o, n, out int)) {
	pl := rd.pl
	if pl.n == 0 {
		return
	}
	rd.row, rd.vec = row, vec
	switch {
	case pl.step[0] == 1:
		rd.pool.For(pl.inner, max(1, ewGrain/max(pl.rows, 1)), rd.colsFn)
	case pl.disjoint[0] && pl.rows > 1:
		pl.run(rd.pool, rd.rowFn)
	default:
		pl.runSerial(rd.rowFn)
	}
	rd.row, rd.vec = nil, nil
}

// colsChunk accumulates columns [lo, hi) of every row into the outputs.
func (rd *reduction) colsChunk(lo, hi int) {
	pl := rd.pl
	for r := 0; r < pl.rows; r++ {
		off := 0
		if pl.off[0] != nil {
			off = int(pl.off[0][r])
		}
		rd.vec(r*pl.inner+lo, hi-lo, off+lo)
	}
}

func (rd *reduction) rowChunk(o, n int, off [3]int) { rd.row(o, n, off[0]) }

func reducer[T elemNum](p *Prep, kind reduceKind, xs, keep []int) (Kernel, error) {
	rd, err := newReduction(p.Pool, xs, keep)
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	m := tensor.NumElements(keep)
	var init T
	switch kind {
	case rProd:
		init = 1
	case rMax:
		init = lowest[T]()
	case rMin:
		init = highest[T]()
	}
	var mx []T // running maxima of ReduceLogSumExp
	if kind == rLogSumExp {
		mx = make([]T, m)
	}
	// The fold functions are made once and read the call's slices through
	// these variables, so a run allocates nothing.
	var x, r []T
	foldRows := func(o, n, j int) { r[j] = foldRow(kind, r[j], x[o:o+n]) }
	foldVecs := func(o, n, j int) { foldVec(kind, r[j:j+n], x[o:o+n]) }
	maxRows := func(o, n, j int) { mx[j] = foldRow(rMax, mx[j], x[o:o+n]) }
	maxVecs := func(o, n, j int) { foldVec(rMax, mx[j:j+n], x[o:o+n]) }
	expRows := func(o, n, j int) {
		s, m := float64(r[j]), float64(mx[j])
		for _, v := range x[o : o+n] {
			s += math.Exp(float64(v) - m)
		}
		r[j] = T(s)
	}
	expVecs := func(o, n, j int) {
		rs, ms := r[j:j+n], mx[j:j+n]
		for i, v := range x[o : o+n] {
			rs[i] += T(math.Exp(float64(v) - float64(ms[i])))
		}
	}
	return func(in, out []*tensor.Tensor) error {
		xv, rv, err := inOutData[T, T](p, in, out)
		if err != nil {
			return err
		}
		x, r = xv, rv
		defer func() { x, r = nil, nil }()
		if kind == rLogSumExp {
			fill(mx, lowest[T]())
			rd.each(maxRows, maxVecs)
			fill(r, 0)
			rd.each(expRows, expVecs)
			for i := range r {
				if math.IsInf(float64(mx[i]), 0) {
					r[i] = mx[i] // all -inf (or empty): -inf; any +inf: +inf
					continue
				}
				r[i] = T(math.Log(float64(r[i])) + float64(mx[i]))
			}
			return nil
		}
		fill(r, init)
		rd.each(foldRows, foldVecs)
		switch kind {
		case rMean:
			if rd.count == 0 {
				for i := range r {
					r[i] = T(math.NaN())
				}
				break
			}
			c := T(rd.count)
			for i := range r {
				r[i] /= c
			}
		case rL2:
			for i := range r {
				r[i] = T(math.Sqrt(float64(r[i])))
			}
		case rLogSum:
			for i := range r {
				r[i] = T(math.Log(float64(r[i])))
			}
		}
		return nil
	}, nil
}

// reduceBool is ReduceMax (any) and ReduceMin (all) of bool tensors.
func reduceBool(p *Prep, xs, keep []int, isMax bool) (Kernel, error) {
	rd, err := newReduction(p.Pool, xs, keep)
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	// As in reducer: fold functions made once, reading the call's slices.
	var x, r []bool
	foldRows := func(o, n, j int) {
		for _, v := range x[o : o+n] {
			if v == isMax {
				r[j] = isMax
			}
		}
	}
	foldVecs := func(o, n, j int) {
		rs := r[j : j+n]
		for i, v := range x[o : o+n] {
			if v == isMax {
				rs[i] = isMax
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		xv, rv, err := inOutData[bool, bool](p, in, out)
		if err != nil {
			return err
		}
		x, r = xv, rv
		fill(r, !isMax)
		rd.each(foldRows, foldVecs)
		x, r = nil, nil
		return nil
	}, nil
}

// ---- SumToShape ----

// newSumToShape sums X over the dims that broadcasting to X's shape would
// have expanded, giving the output shape (input 1's value, already in the
// inferred output type).
func newSumToShape(p *Prep) (Kernel, error) {
	dt := p.In[0].DType
	if isHalf(dt) {
		return viaFloat32(p, newSumToShape)
	}
	xs, ys := p.InShape(0), p.OutShape(0)
	if len(ys) > len(xs) {
		return nil, Errorf(p, "input 0 of shape %v cannot be summed to the higher-rank shape %v", xs, ys)
	}
	keep := make([]int, len(xs))
	for i := range keep {
		keep[i] = 1
	}
	copy(keep[len(xs)-len(ys):], ys)
	for i := range keep {
		if keep[i] != xs[i] && keep[i] != 1 {
			return nil, Errorf(p, "input 0 of shape %v cannot be summed to shape %v", xs, ys)
		}
	}
	return reduceDispatch(p, dt, rSum, xs, keep)
}

// ---- ArgMax, ArgMin ----

func argFactory(isMax bool) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		dt := p.In[0].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		f, ok := byNum(dt, argK[float32], argK[float64], argK[int8], argK[int16],
			argK[int32], argK[int64], argK[uint8], argK[uint16], argK[uint32], argK[uint64])
		if !ok {
			return nil, Unsupported(p, "%s of %v", p.Node.OpType, dt)
		}
		return f(p, isMax)
	}
	return self
}

// argK finds, along one axis, the index of the first (or, with
// select_last_index, the last) extreme element.
func argK[T elemNum](p *Prep, isMax bool) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	xs := p.InShape(0)
	ax, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(xs))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	last := p.Node.AttrInt("select_last_index", 0) != 0
	outer, n, inner := tensor.NumElements(xs[:ax]), xs[ax], tensor.NumElements(xs[ax+1:])
	if n == 0 && outer*inner > 0 {
		return nil, Errorf(p, "cannot take %s over an empty axis", p.Node.OpType)
	}
	// The chunk function is made once and reads the call's slices through
	// these variables, so a run allocates nothing.
	var x []T
	var r []int64
	chunk := func(lo, hi int) {
		for j := lo; j < hi; j++ {
			o, i := j/inner, j%inner
			base := o*n*inner + i
			best, bi := x[base], 0
			for k := 1; k < n; k++ {
				v := x[base+k*inner]
				better := v > best
				if !isMax {
					better = v < best
				}
				if better || (last && v == best) {
					best, bi = v, k
				}
			}
			r[j] = int64(bi)
		}
	}
	return func(in, out []*tensor.Tensor) error {
		xv, rv, err := inOutData[T, int64](p, in, out)
		if err != nil {
			return err
		}
		x, r = xv, rv
		p.Pool.For(outer*inner, max(1, ewGrain/max(n, 1)), chunk)
		x, r = nil, nil
		return nil
	}, nil
}
