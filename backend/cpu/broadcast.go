package cpu

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Broadcasting, shared by elementwise ops and reductions.
//
// A bcastPlan maps a contiguous output of n elements onto up to three inputs
// under numpy broadcasting. The factory builds it once: dims of size 1 are
// dropped and neighbouring dims that every input walks the same way are
// merged, so the work becomes `rows` contiguous runs of `inner` output
// elements. Along a run, input k advances by step[k] (1: it has that run;
// 0: it repeats one element). off[k][r] is where input k's run r starts
// (nil when rows == 1). Same-shape operands, a scalar, a bias [C] over
// [N,C,H,W] (rows N*C of H*W against one bias value) and a row vector all
// reduce to a few long runs, so the inner loops carry no index arithmetic.

// ewGrain is the number of elements below which elementwise work is not
// split across workers.
const ewGrain = 16 << 10

type bcastPlan struct {
	n, inner, rows int
	step           [3]int
	off            [3][]int32
	// disjoint[k]: distinct runs start at distinct offsets of input k, so
	// runs may be processed in parallel when input k is written (reductions).
	disjoint [3]bool
	// The current run's function and the chunk functions bound to the plan.
	fn             func(o, n int, off [3]int)
	flatFn, rowsFn func(lo, hi int)
}

// newBcastPlan plans out (the full shape) against ins, each of which must
// broadcast to out.
func newBcastPlan(out []int, ins ...[]int) (*bcastPlan, error) {
	if len(ins) > 3 {
		return nil, fmt.Errorf("broadcast plan of %d inputs", len(ins))
	}
	rank := len(out)
	k := len(ins)
	// strides[k][d]: element stride of input k along out dim d (0: broadcast).
	var strides [3][]int
	for j, s := range ins {
		if len(s) > rank {
			return nil, fmt.Errorf("shape %v does not broadcast to %v", s, out)
		}
		st := make([]int, rank)
		acc := 1
		for d := rank - 1; d >= 0; d-- {
			i := d - (rank - len(s))
			if i < 0 {
				continue
			}
			switch {
			case s[i] == out[d]:
				if s[i] != 1 {
					st[d] = acc
				}
			case s[i] == 1:
			default:
				return nil, fmt.Errorf("shape %v does not broadcast to %v", s, out)
			}
			acc *= s[i]
		}
		strides[j] = st
	}
	p := &bcastPlan{n: tensor.NumElements(out)}
	// Keep dims of size > 1, merging a dim into the one after it when every
	// input's stride pattern continues.
	var dims []int
	var ds [3][]int
	for d := 0; d < rank; d++ {
		if out[d] == 1 {
			continue
		}
		if m := len(dims) - 1; m >= 0 {
			merge := true
			for j := 0; j < k; j++ {
				prev, cur := ds[j][m], strides[j][d]
				if !(prev == 0 && cur == 0) && !(cur != 0 && prev == cur*out[d]) {
					merge = false
					break
				}
			}
			if merge {
				dims[m] *= out[d]
				for j := 0; j < k; j++ {
					ds[j][m] = strides[j][d]
				}
				continue
			}
		}
		dims = append(dims, out[d])
		for j := 0; j < k; j++ {
			ds[j] = append(ds[j], strides[j][d])
		}
	}
	if len(dims) == 0 {
		p.inner, p.rows = 1, p.n
		for j := 0; j < k; j++ {
			p.disjoint[j] = true
		}
		return p, nil
	}
	last := len(dims) - 1
	p.inner = dims[last]
	p.rows = 0
	if p.inner > 0 {
		p.rows = p.n / p.inner
	}
	for j := 0; j < k; j++ {
		if ds[j][last] != 0 {
			p.step[j] = 1
		}
		p.disjoint[j] = true
		for d := 0; d < last; d++ {
			if ds[j][d] == 0 {
				p.disjoint[j] = false
			}
		}
	}
	if p.rows <= 1 {
		return p, nil
	}
	outer := dims[:last]
	idx := make([]int, len(outer))
	for j := 0; j < k; j++ {
		p.off[j] = make([]int32, p.rows)
	}
	var cur [3]int
	for r := 0; r < p.rows; r++ {
		for j := 0; j < k; j++ {
			if cur[j] > 1<<31-1 {
				return nil, fmt.Errorf("shape %v is too large to broadcast", out)
			}
			p.off[j][r] = int32(cur[j])
		}
		for d := len(outer) - 1; d >= 0; d-- {
			idx[d]++
			for j := 0; j < k; j++ {
				cur[j] += ds[j][d]
			}
			if idx[d] < outer[d] {
				break
			}
			for j := 0; j < k; j++ {
				cur[j] -= ds[j][d] * outer[d]
			}
			idx[d] = 0
		}
	}
	return p, nil
}

// run calls fn for pieces of the output: output elements [o, o+n) read
// input k from off[k] on with step[k]. Pieces run in parallel on pool.
func (p *bcastPlan) run(pool *Pool, fn func(o, n int, off [3]int)) {
	if p.n == 0 {
		return
	}
	// The chunk functions are bound to the plan once (see flatChunk); the
	// call's function is passed through p.fn, so a run allocates nothing.
	if p.flatFn == nil {
		p.flatFn, p.rowsFn = p.flatChunk, p.rowsChunk
	}
	p.fn = fn
	if p.rows == 1 {
		pool.For(p.inner, ewGrain, p.flatFn)
	} else {
		pool.For(p.rows, max(1, ewGrain/p.inner), p.rowsFn)
	}
	p.fn = nil
}

func (p *bcastPlan) flatChunk(lo, hi int) {
	var off [3]int
	for j := range off {
		off[j] = lo * p.step[j]
	}
	p.fn(lo, hi-lo, off)
}

func (p *bcastPlan) rowsChunk(r0, r1 int) { p.runRows(r0, r1, p.fn) }

// runSerial is run on the caller's goroutine, in order.
func (p *bcastPlan) runSerial(fn func(o, n int, off [3]int)) {
	if p.n == 0 {
		return
	}
	p.runRows(0, p.rows, fn)
}

func (p *bcastPlan) runRows(r0, r1 int, fn func(o, n int, off [3]int)) {
	var off [3]int
	for r := r0; r < r1; r++ {
		for j := range off {
			if p.off[j] != nil {
				off[j] = int(p.off[j][r])
			}
		}
		fn(r*p.inner, p.inner, off)
	}
}

// ---- element types ----

type elemInt interface {
	~int8 | ~int16 | ~int32 | ~int64 | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

type elemFloat interface{ ~float32 | ~float64 }

type elemNum interface{ elemInt | elemFloat }

// isHalf reports the 16-bit float dtypes, which kernels compute in float32.
func isHalf(dt tensor.DType) bool { return dt == tensor.Float16 || dt == tensor.BFloat16 }

// floatFactory makes the Factory of a kernel defined for float32 and
// float64 (f32 and f64 are its two instantiations): float16 and bfloat16
// run through the float32 one (viaFloat32), other dtypes are unsupported.
func floatFactory(f32, f64 Factory) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		switch dt := p.In[0].DType; {
		case isHalf(dt):
			return viaFloat32(p, self)
		case dt == tensor.Float32:
			return f32(p)
		case dt == tensor.Float64:
			return f64(p)
		}
		return nil, Unsupported(p, "%s of %v", p.Node.OpType, p.In[0].DType)
	}
	return self
}

// viaFloat32 runs a float32 kernel for a node whose float16/bfloat16 inputs
// and outputs are converted to and from float32 scratch tensors allocated
// here, once. build makes the float32 kernel from a Prep whose half types
// read float32.
func viaFloat32(p *Prep, build Factory) (Kernel, error) {
	q := *p
	q.In = make([]*graph.Type, len(p.In))
	q.Out = make([]*graph.Type, len(p.Out))
	inScratch := make([]*tensor.Tensor, len(p.In))
	outScratch := make([]*tensor.Tensor, len(p.Out))
	for i, t := range p.In {
		q.In[i] = t
		if t != nil && isHalf(t.DType) {
			c := *t
			c.DType = tensor.Float32
			if t.Value != nil {
				c.Value = tensor.New(tensor.Float32, t.Value.Shape()...)
				halfToF32(c.Value.Float32s(), t.Value)
			}
			q.In[i] = &c
			s, ok := t.Concrete()
			if !ok {
				return nil, Errorf(p, "input %d has no concrete shape", i)
			}
			inScratch[i] = tensor.New(tensor.Float32, s...)
		}
	}
	for i, t := range p.Out {
		q.Out[i] = t
		if t != nil && isHalf(t.DType) {
			c := *t
			c.DType = tensor.Float32
			q.Out[i] = &c
			s, ok := t.Concrete()
			if !ok {
				return nil, Errorf(p, "output %d has no concrete shape", i)
			}
			outScratch[i] = tensor.New(tensor.Float32, s...)
		}
	}
	k, err := build(&q)
	if err != nil {
		return nil, err
	}
	ins := make([]*tensor.Tensor, len(p.In))
	outs := make([]*tensor.Tensor, len(p.Out))
	return func(in, out []*tensor.Tensor) error {
		for i, t := range in {
			ins[i] = t
			if t != nil && inScratch[i] != nil {
				halfToF32(inScratch[i].Float32s(), t)
				ins[i] = inScratch[i]
			}
		}
		for i, t := range out {
			outs[i] = t
			if t != nil && outScratch[i] != nil {
				outs[i] = outScratch[i]
			}
		}
		if err := k(ins[:len(in)], outs[:len(out)]); err != nil {
			return err
		}
		for i, t := range out {
			if t != nil && outScratch[i] != nil {
				f32ToHalf(t, outScratch[i].Float32s())
			}
		}
		return nil
	}, nil
}

func halfToF32(dst []float32, src *tensor.Tensor) {
	s := src.Raw16()[:len(dst)]
	if src.DType() == tensor.BFloat16 {
		for i, h := range s {
			dst[i] = tensor.BFloat16ToFloat32(h)
		}
		return
	}
	for i, h := range s {
		dst[i] = tensor.HalfToFloat32(h)
	}
}

func f32ToHalf(dst *tensor.Tensor, src []float32) {
	d := dst.Raw16()[:len(src)]
	if dst.DType() == tensor.BFloat16 {
		for i, f := range src {
			d[i] = tensor.Float32ToBFloat16(f)
		}
		return
	}
	for i, f := range src {
		d[i] = tensor.Float32ToHalf(f)
	}
}

// anyHalf reports whether any present input or output of p is float16 or bfloat16.
func anyHalf(p *Prep) bool {
	for _, t := range p.In {
		if t != nil && isHalf(t.DType) {
			return true
		}
	}
	for _, t := range p.Out {
		if t != nil && isHalf(t.DType) {
			return true
		}
	}
	return false
}

// needConcrete fails unless every present input and output of p has a
// concrete shape, which kernels that precompute index plans need.
func needConcrete(p *Prep) error {
	for i, t := range p.In {
		if t != nil {
			if _, ok := t.Concrete(); !ok {
				return Errorf(p, "input %d has shape %v; the kernel needs concrete shapes", i, t)
			}
		}
	}
	for i, t := range p.Out {
		if t != nil {
			if _, ok := t.Concrete(); !ok {
				return Errorf(p, "output %d has shape %v; the kernel needs concrete shapes", i, t)
			}
		}
	}
	return nil
}
