package cpu

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Indexed data movement: Gather, GatherElements, ScatterElements, OneHot,
// CumSum, and GatherGrad (Gather's gradient: a scatter-add).
//
// Indices arrive at run time, so every kernel checks them against the axis
// before moving anything: a bad index is an error naming it, never a panic
// or a write out of bounds. Negative indices count from the end.

func init() {
	Register(graph.DomainONNX, "Gather", gatherFactory)
	Register(graph.DomainONNX, "GatherElements", gatherElementsFactory)
	Register(graph.DomainONNX, "ScatterElements", scatterElementsFactory)
	Register(graph.DomainONNX, "OneHot", oneHotFactory)
	Register(graph.DomainONNX, "CumSum", cumSumFactory)
	Register(graph.DomainGotrain, "GatherGrad", gatherGradFactory)
}

// normIndices reads int32 or int64 indices into dst (len must match),
// normalising negatives against size and checking the range.
func normIndices(dst []int, t *tensor.Tensor, size int) error {
	check := func(i int, v int64) error {
		if v < -int64(size) || v >= int64(size) {
			return fmt.Errorf("index %d (element %d of indices) is out of range for an axis of size %d", v, i, size)
		}
		if v < 0 {
			v += int64(size)
		}
		dst[i] = int(v)
		return nil
	}
	switch d := t.Data().(type) {
	case []int64:
		for i, v := range d {
			if err := check(i, v); err != nil {
				return err
			}
		}
	case []int32:
		for i, v := range d {
			if err := check(i, int64(v)); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("indices must be int32 or int64, not %v", t.DType())
	}
	return nil
}

// gatherGeom splits data of shape ds around axis: [outer, axisDim, inner].
func gatherGeom(ds []int, axis int) (outer, size, inner int) {
	outer, inner = 1, 1
	for i := 0; i < axis; i++ {
		outer *= ds[i]
	}
	for i := axis + 1; i < len(ds); i++ {
		inner *= ds[i]
	}
	return outer, ds[axis], inner
}

func gatherT[T moveElem](pool *Pool, out, data *tensor.Tensor, idx []int, outer, size, inner int) {
	dst, src := moveData[T](out), moveData[T](data)
	k := len(idx)
	pool.For(outer*k, max(1, moveGrain/max(inner, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, j := r/k, r%k
			s := (o*size + idx[j]) * inner
			copy(dst[r*inner:(r+1)*inner], src[s:s+inner])
		}
	})
}

func gatherFactory(p *Prep) (Kernel, error) {
	ds, _, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(ds))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	outer, size, inner := gatherGeom(ds, axis)
	is, ok := p.In[1].Concrete()
	if !ok {
		return nil, Errorf(p, "indices have no concrete shape")
	}
	idx := make([]int, tensor.NumElements(is))
	f, ok := bySize(p.In[0].DType, gatherT[uint8], gatherT[uint16], gatherT[uint32], gatherT[uint64], gatherT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", p.In[0].DType)
	}
	pool := p.Pool
	return func(in, out []*tensor.Tensor) error {
		if err := normIndices(idx, in[1], size); err != nil {
			return err
		}
		f(pool, out[0], in[0], idx, outer, size, inner)
		return nil
	}, nil
}

// elementsGeom walks the coordinates of an indices tensor of shape is and
// gives, for each flat position, the offset into a tensor of shape ds with
// the axis coordinate left out (the index supplies it).
func elementsOffsets(is, ds []int, axis int) ([]int, error) {
	if len(is) != len(ds) {
		return nil, fmt.Errorf("indices have rank %d but data rank %d", len(is), len(ds))
	}
	for i := range is {
		if i != axis && is[i] > ds[i] {
			return nil, fmt.Errorf("indices shape %v exceeds data shape %v on axis %d", is, ds, i)
		}
	}
	dst := tensor.Strides(ds)
	n := tensor.NumElements(is)
	off := make([]int, n)
	coord := make([]int, len(is))
	for i := 0; i < n; i++ {
		o := 0
		for a, c := range coord {
			if a != axis {
				o += c * dst[a]
			}
		}
		off[i] = o
		for a := len(coord) - 1; a >= 0; a-- {
			coord[a]++
			if coord[a] < is[a] {
				break
			}
			coord[a] = 0
		}
	}
	return off, nil
}

func gatherElementsT[T moveElem](out, data *tensor.Tensor, off, idx []int, stride int) {
	dst, src := moveData[T](out), moveData[T](data)
	for i, o := range off {
		dst[i] = src[o+idx[i]*stride]
	}
}

func gatherElementsFactory(p *Prep) (Kernel, error) {
	ds, _, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(ds))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	is, _ := p.In[1].Concrete()
	off, err := elementsOffsets(is, ds, axis)
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	idx := make([]int, len(off))
	stride := tensor.Strides(ds)[axis]
	f, ok := bySize(p.In[0].DType, gatherElementsT[uint8], gatherElementsT[uint16], gatherElementsT[uint32], gatherElementsT[uint64], gatherElementsT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", p.In[0].DType)
	}
	return func(in, out []*tensor.Tensor) error {
		if err := normIndices(idx, in[1], ds[axis]); err != nil {
			return err
		}
		f(out[0], in[0], off, idx, stride)
		return nil
	}, nil
}

// scatterNum are the dtypes ScatterElements reduces and CumSum and
// GatherGrad sum.
type scatterNum interface {
	~float32 | ~float64 | ~int32 | ~int64 | ~uint32 | ~uint64 | ~int8 | ~uint8 | ~int16
}

func scatterReduceT[T scatterNum](dst, upd []T, off, idx []int, stride int, red string) {
	for i, o := range off {
		p := o + idx[i]*stride
		switch red {
		case "add":
			dst[p] += upd[i]
		case "mul":
			dst[p] *= upd[i]
		case "max":
			dst[p] = max(dst[p], upd[i])
		case "min":
			dst[p] = min(dst[p], upd[i])
		default:
			dst[p] = upd[i]
		}
	}
}

func scatterMoveT[T moveElem](out, data, upd *tensor.Tensor, off, idx []int, stride int) {
	dst, u := moveData[T](out), moveData[T](upd)
	copy(dst, moveData[T](data))
	for i, o := range off {
		dst[o+idx[i]*stride] = u[i]
	}
}

func scatterElementsFactory(p *Prep) (Kernel, error) {
	ds, _, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(ds))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	is, _ := p.In[1].Concrete()
	us, _ := p.In[2].Concrete()
	if !tensor.SameShape(is, us) {
		return nil, Errorf(p, "indices %v and updates %v differ in shape", is, us)
	}
	off, err := elementsOffsets(is, ds, axis)
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	idx := make([]int, len(off))
	stride := tensor.Strides(ds)[axis]
	dt := p.In[0].DType
	red := p.Node.AttrString("reduction", "none")
	switch red {
	case "none":
		f, ok := bySize(dt, scatterMoveT[uint8], scatterMoveT[uint16], scatterMoveT[uint32], scatterMoveT[uint64], scatterMoveT[string])
		if !ok {
			return nil, Unsupported(p, "dtype %v", dt)
		}
		return func(in, out []*tensor.Tensor) error {
			if err := normIndices(idx, in[1], ds[axis]); err != nil {
				return err
			}
			f(out[0], in[0], in[2], off, idx, stride)
			return nil
		}, nil
	case "add", "mul", "max", "min":
	default:
		return nil, Errorf(p, "reduction %q is not one of none, add, mul, max, min", red)
	}
	if !numericDType(dt) {
		return nil, Unsupported(p, "reduction %s on %v", red, dt)
	}
	return func(in, out []*tensor.Tensor) error {
		if err := normIndices(idx, in[1], ds[axis]); err != nil {
			return err
		}
		out[0].CopyFrom(in[0])
		switch d := out[0].Data().(type) {
		case []float32:
			scatterReduceT(d, in[2].Float32s(), off, idx, stride, red)
		case []float64:
			scatterReduceT(d, in[2].Float64s(), off, idx, stride, red)
		case []int32:
			scatterReduceT(d, in[2].Int32s(), off, idx, stride, red)
		case []int64:
			scatterReduceT(d, in[2].Int64s(), off, idx, stride, red)
		}
		return nil
	}, nil
}

// numericDType: the dtypes the summing kernels here compute in directly.
func numericDType(dt tensor.DType) bool {
	switch dt {
	case tensor.Float32, tensor.Float64, tensor.Int32, tensor.Int64:
		return true
	}
	return false
}

// ---- GatherGrad ----

func gatherGradT[T scatterNum](pool *Pool, dx, dy []T, idx []int, outer, size, inner int) {
	k := len(idx)
	// Each outer slice of dX is written by one worker only, so the sums
	// (repeated indices accumulate) are race-free and in a fixed order.
	pool.For(outer, max(1, moveGrain/max(k*inner, 1)), func(lo, hi int) {
		for o := lo; o < hi; o++ {
			d := dx[o*size*inner : (o+1)*size*inner]
			clear(d)
			for j, ix := range idx {
				row := d[ix*inner : (ix+1)*inner]
				src := dy[(o*k+j)*inner : (o*k+j+1)*inner]
				for i, v := range src {
					row[i] += v
				}
			}
		}
	})
}

func gatherGradFactory(p *Prep) (Kernel, error) {
	xs, ok := p.Out[0].Concrete()
	if !ok {
		return nil, Errorf(p, "output has no concrete shape")
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(xs))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	outer, size, inner := gatherGeom(xs, axis)
	is, _ := p.In[1].Concrete()
	ys, _ := p.In[0].Concrete()
	k := tensor.NumElements(is)
	if tensor.NumElements(ys) != outer*k*inner {
		return nil, Errorf(p, "dY %v does not match a Gather of %v along axis %d with indices %v", ys, xs, axis, is)
	}
	idx := make([]int, k)
	dt := p.In[0].DType
	if !numericDType(dt) {
		return nil, Unsupported(p, "dtype %v", dt)
	}
	pool := p.Pool
	return func(in, out []*tensor.Tensor) error {
		if err := normIndices(idx, in[1], size); err != nil {
			return err
		}
		switch d := out[0].Data().(type) {
		case []float32:
			gatherGradT(pool, d, in[0].Float32s(), idx, outer, size, inner)
		case []float64:
			gatherGradT(pool, d, in[0].Float64s(), idx, outer, size, inner)
		case []int32:
			gatherGradT(pool, d, in[0].Int32s(), idx, outer, size, inner)
		case []int64:
			gatherGradT(pool, d, in[0].Int64s(), idx, outer, size, inner)
		}
		return nil
	}, nil
}

// ---- OneHot ----

func oneHotT[T moveElem](out, values *tensor.Tensor, idx []float64, outer, depth, inner int) {
	dst, v := moveData[T](out), moveData[T](values)
	off, on := v[0], v[1]
	for i := range dst {
		dst[i] = off
	}
	for j, x := range idx {
		if x < 0 {
			x += float64(depth)
		}
		if x < 0 || x >= float64(depth) {
			continue // out of range: the row stays off
		}
		o, i := j/inner, j%inner
		dst[(o*depth+int(x))*inner+i] = on
	}
}

func oneHotFactory(p *Prep) (Kernel, error) {
	is, ok := p.In[0].Concrete()
	if !ok {
		return nil, Errorf(p, "indices have no concrete shape")
	}
	os, ok := p.Out[0].Concrete()
	if !ok {
		return nil, Errorf(p, "output has no concrete shape")
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", -1), len(is)+1)
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	depth := os[axis]
	outer, inner := 1, 1
	for i := 0; i < axis; i++ {
		outer *= is[i]
	}
	for i := axis; i < len(is); i++ {
		inner *= is[i]
	}
	if vs, _ := p.In[2].Concrete(); tensor.NumElements(vs) != 2 {
		return nil, Errorf(p, "values must have 2 elements (off, on), has shape %v", vs)
	}
	if p.In[0].DType == tensor.String || p.In[0].DType == tensor.Bool {
		return nil, Unsupported(p, "indices of dtype %v", p.In[0].DType)
	}
	idx := make([]float64, tensor.NumElements(is))
	f, ok := bySize(p.Out[0].DType, oneHotT[uint8], oneHotT[uint16], oneHotT[uint32], oneHotT[uint64], oneHotT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", p.Out[0].DType)
	}
	return func(in, out []*tensor.Tensor) error {
		for i := range idx {
			idx[i] = in[0].AsFloat64(i)
		}
		f(out[0], in[2], idx, outer, depth, inner)
		return nil
	}, nil
}

// ---- CumSum ----

func cumSumT[T scatterNum](dst, src []T, outer, size, inner int, exclusive, reverse bool) {
	for o := 0; o < outer; o++ {
		base := o * size * inner
		for i := 0; i < inner; i++ {
			var acc T
			for k := 0; k < size; k++ {
				kk := k
				if reverse {
					kk = size - 1 - k
				}
				p := base + kk*inner + i
				v := src[p]
				if exclusive {
					dst[p] = acc
					acc += v
				} else {
					acc += v
					dst[p] = acc
				}
			}
		}
	}
}

func cumSumFactory(p *Prep) (Kernel, error) {
	xs, _, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	dt := p.In[0].DType
	if !numericDType(dt) {
		return nil, Unsupported(p, "dtype %v", dt)
	}
	exclusive := p.Node.AttrInt("exclusive", 0) != 0
	reverse := p.Node.AttrInt("reverse", 0) != 0
	return func(in, out []*tensor.Tensor) error {
		a, err := in[1].AsInt64s()
		if err != nil || len(a) != 1 {
			return fmt.Errorf("axis must be an integer scalar")
		}
		axis, err := graph.NormAxis(a[0], len(xs))
		if err != nil {
			return err
		}
		outer, size, inner := gatherGeom(xs, axis)
		switch d := out[0].Data().(type) {
		case []float32:
			cumSumT(d, in[0].Float32s(), outer, size, inner, exclusive, reverse)
		case []float64:
			cumSumT(d, in[0].Float64s(), outer, size, inner, exclusive, reverse)
		case []int32:
			cumSumT(d, in[0].Int32s(), outer, size, inner, exclusive, reverse)
		case []int64:
			cumSumT(d, in[0].Int64s(), outer, size, inner, exclusive, reverse)
		}
		return nil
	}, nil
}
