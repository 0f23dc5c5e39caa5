package cpu

import (
	"fmt"
	"unsafe"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Shape and data-movement kernels: Transpose, Concat, Split, Slice, Expand,
// Tile, Trilu, Shape, Size, the views (Reshape, Flatten, Squeeze, Unsqueeze,
// Identity), and SliceGrad.
//
// Moving data does not depend on what the elements mean, only on their
// size, so these kernels see every tensor as a slice of one of five storage
// types: uint8 (int8, uint8, bool), uint16 (float16, bfloat16, int16,
// uint16), uint32 (float32, int32, uint32), uint64 (float64, int64, uint64)
// or string. moveData reinterprets the typed slice in place (no copy), so
// one generic kernel serves every dtype. Only element bit patterns are ever
// copied, never computed, so the reinterpretation cannot create invalid
// values (a bool is only ever 0 or 1 bytes copied from another bool).
//
// Most of the kernels reduce to one primitive, stridedCopy: a walk over an
// index space whose destination and source offsets are linear in the
// coordinates. Slice, Transpose, Expand (stride 0), Tile (each dim split in
// repeat x size), Concat and Split (one copy per part) and constant Pad are
// all strided copies; the plan merges dims that are contiguous on both sides
// so that the inner loop is a copy() of a long run wherever possible.

// moveElem is a storage type.
type moveElem interface {
	uint8 | uint16 | uint32 | uint64 | string
}

func reinterpret[S, T any](s []S) []T {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&s[0])), len(s))
}

// moveData returns t's elements as storage type T, which must be the one
// storageOf picks for t's dtype.
func moveData[T moveElem](t *tensor.Tensor) []T {
	switch d := t.Data().(type) {
	case []uint8:
		return reinterpret[uint8, T](d)
	case []int8:
		return reinterpret[int8, T](d)
	case []bool:
		return reinterpret[bool, T](d)
	case []uint16:
		return reinterpret[uint16, T](d)
	case []int16:
		return reinterpret[int16, T](d)
	case []float32:
		return reinterpret[float32, T](d)
	case []int32:
		return reinterpret[int32, T](d)
	case []uint32:
		return reinterpret[uint32, T](d)
	case []float64:
		return reinterpret[float64, T](d)
	case []int64:
		return reinterpret[int64, T](d)
	case []uint64:
		return reinterpret[uint64, T](d)
	case []string:
		return any(d).([]T)
	}
	return nil
}

// bySize picks the instantiation of a generic function for dtype dt's
// storage type; ok is false for dtypes without one.
func bySize[F any](dt tensor.DType, f8, f16, f32, f64, fs F) (f F, ok bool) {
	if dt == tensor.String {
		return fs, true
	}
	if !dt.Supported() {
		return f, false
	}
	switch dt.Size() {
	case 1:
		return f8, true
	case 2:
		return f16, true
	case 4:
		return f32, true
	case 8:
		return f64, true
	}
	return f, false
}

// ---- the strided copy ----

// stridedCopy copies, for every coordinate c of dims,
// dst[dbase + c.ds] = src[sbase + c.ss]. Strides may be 0 (broadcast) or
// negative (reversed slices).
type stridedCopy struct {
	dims         []int
	ds, ss       []int
	dbase, sbase int
	n            int
	// blocked: the last two dims are walked in tiles so that a transpose
	// (src contiguous along dims[r-2], dst along dims[r-1]) stays in cache.
	blocked bool
	job     any // *stridedJob[T] of the storage type it runs with
}

const (
	moveGrain = 32 << 10 // elements below which a copy is not split across workers
	moveTile  = 32       // tile edge of blocked transposes
)

func newStridedCopy(dims, ds, ss []int, dbase, sbase int) *stridedCopy {
	c := &stridedCopy{dbase: dbase, sbase: sbase, n: 1}
	for i, d := range dims {
		c.n *= d
		if d == 1 {
			continue
		}
		c.dims = append(c.dims, d)
		c.ds = append(c.ds, ds[i])
		c.ss = append(c.ss, ss[i])
	}
	if c.n == 0 {
		return c
	}
	// Merge a dim into the next one when both sides walk them as one.
	for i := len(c.dims) - 2; i >= 0; i-- {
		j := i + 1
		if c.ds[i] == c.ds[j]*c.dims[j] && c.ss[i] == c.ss[j]*c.dims[j] {
			c.dims[j] *= c.dims[i]
			c.dims = append(c.dims[:i], c.dims[i+1:]...)
			c.ds = append(c.ds[:i], c.ds[i+1:]...)
			c.ss = append(c.ss[:i], c.ss[i+1:]...)
		}
	}
	if len(c.dims) == 0 {
		c.dims, c.ds, c.ss = []int{1}, []int{1}, []int{1}
	}
	r := len(c.dims)
	if r >= 2 && c.ds[r-1] == 1 && c.ss[r-1] != 1 && c.ss[r-1] != 0 && c.dims[r-1] >= moveTile/2 {
		// Find the dim along which src is contiguous and walk it second to last.
		for k := 0; k < r-1; k++ {
			if c.ss[k] == 1 && c.dims[k] >= moveTile/2 {
				for _, s := range [][]int{c.dims, c.ds, c.ss} {
					v := s[k]
					copy(s[k:], s[k+1:r-1])
					s[r-2] = v
				}
				c.blocked = true
				break
			}
		}
	}
	return c
}

// run performs the copy on pool (nil: on the caller).
func runStrided[T moveElem](c *stridedCopy, pool *Pool, dst, src []T) {
	if c.n == 0 {
		return
	}
	// The chunk functions are bound to the copy on its first run and read
	// the call's slices through the job, so later runs allocate nothing.
	j, ok := c.job.(*stridedJob[T])
	if !ok {
		j = &stridedJob[T]{c: c}
		j.flatFn, j.blockedFn = j.flat, j.blocked
		c.job = j
	}
	j.dst, j.src = dst, src
	r := len(c.dims)
	var outer, grain int
	fn := j.flatFn
	if c.blocked {
		nk, nj := c.dims[r-2], c.dims[r-1]
		tilesK := (nk + moveTile - 1) / moveTile
		outer, grain = c.n/(nk*nj)*tilesK, max(1, moveGrain/(moveTile*nj))
		fn = j.blockedFn
	} else {
		inner := c.dims[r-1]
		outer, grain = c.n/inner, max(1, moveGrain/inner)
	}
	if pool == nil {
		fn(0, outer)
	} else {
		pool.For(outer, grain, fn)
	}
	j.dst, j.src = nil, nil
}

// stridedJob is a stridedCopy run for storage type T: the current call's
// slices and the chunk functions bound to them.
type stridedJob[T moveElem] struct {
	c                 *stridedCopy
	dst, src          []T
	flatFn, blockedFn func(lo, hi int)
}

// flat copies runs [lo, hi) of the innermost dim.
func (job *stridedJob[T]) flat(lo, hi int) {
	c, dst, src := job.c, job.dst, job.src
	r := len(c.dims)
	inner := c.dims[r-1]
	dsi, ssi := c.ds[r-1], c.ss[r-1]
	var buf [16]int
	coord := buf[:0]
	if r-1 > len(buf) {
		coord = make([]int, 0, r-1)
	}
	coord = coord[:r-1]
	d, s := c.dbase, c.sbase
	rem := lo
	for k := r - 2; k >= 0; k-- {
		coord[k] = rem % c.dims[k]
		rem /= c.dims[k]
		d += coord[k] * c.ds[k]
		s += coord[k] * c.ss[k]
	}
	for o := lo; o < hi; o++ {
		switch {
		case dsi == 1 && ssi == 1:
			copy(dst[d:d+inner], src[s:s+inner])
		case ssi == 0:
			v := src[s]
			for i, p := 0, d; i < inner; i, p = i+1, p+dsi {
				dst[p] = v
			}
		default:
			for i, p, q := 0, d, s; i < inner; i, p, q = i+1, p+dsi, q+ssi {
				dst[p] = src[q]
			}
		}
		for k := r - 2; k >= 0; k-- {
			coord[k]++
			d += c.ds[k]
			s += c.ss[k]
			if coord[k] < c.dims[k] {
				break
			}
			d -= c.dims[k] * c.ds[k]
			s -= c.dims[k] * c.ss[k]
			coord[k] = 0
		}
	}
}

// blocked copies tiles [lo, hi) of a blocked transpose.
func (job *stridedJob[T]) blocked(lo, hi int) {
	c, dst, src := job.c, job.dst, job.src
	r := len(c.dims)
	nk, nj := c.dims[r-2], c.dims[r-1]
	dk, sk, dj, sj := c.ds[r-2], c.ss[r-2], c.ds[r-1], c.ss[r-1]
	tilesK := (nk + moveTile - 1) / moveTile
	for o := lo; o < hi; o++ {
		t := o % tilesK
		rem := o / tilesK
		d, s := c.dbase, c.sbase
		for k := r - 3; k >= 0; k-- {
			x := rem % c.dims[k]
			rem /= c.dims[k]
			d += x * c.ds[k]
			s += x * c.ss[k]
		}
		k0, k1 := t*moveTile, min(t*moveTile+moveTile, nk)
		for j0 := 0; j0 < nj; j0 += moveTile {
			j1 := min(j0+moveTile, nj)
			for k := k0; k < k1; k++ {
				p, q := d+k*dk+j0*dj, s+k*sk+j0*sj
				for j := j0; j < j1; j, p, q = j+1, p+dj, q+sj {
					dst[p] = src[q]
				}
			}
		}
	}
}

// copyPart is one strided copy from input `in` into output `out`.
type copyPart struct {
	c       *stridedCopy
	in, out int
	zeroOut bool // zero the output first (when the copy covers only part of it)
}

func copyPartsT[T moveElem](parts []copyPart, pool *Pool, in, out []*tensor.Tensor) {
	for _, p := range parts {
		dst := moveData[T](out[p.out])
		if p.zeroOut {
			clear(dst)
		}
		runStrided(p.c, pool, dst, moveData[T](in[p.in]))
	}
}

// copyKernel returns the kernel running parts for dtype dt.
func copyKernel(p *Prep, dt tensor.DType, parts []copyPart) (Kernel, error) {
	f, ok := bySize(dt, copyPartsT[uint8], copyPartsT[uint16], copyPartsT[uint32], copyPartsT[uint64], copyPartsT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", dt)
	}
	pool := p.Pool
	return func(in, out []*tensor.Tensor) error {
		f(parts, pool, in, out)
		return nil
	}, nil
}

func init() {
	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"} {
		RegisterAlias(graph.DomainONNX, op)
	}
	Register(graph.DomainONNX, "Transpose", transposeFactory)
	Register(graph.DomainONNX, "Concat", concatFactory)
	Register(graph.DomainONNX, "Split", splitFactory)
	Register(graph.DomainONNX, "Slice", sliceFactory)
	Register(graph.DomainONNX, "Expand", expandFactory)
	Register(graph.DomainONNX, "Tile", tileFactory)
	Register(graph.DomainONNX, "Shape", shapeFactory)
	Register(graph.DomainONNX, "Size", sizeFactory)
	Register(graph.DomainONNX, "Trilu", triluFactory)
	Register(graph.DomainGotrain, "SliceGrad", sliceGradFactory)
}

// concreteIO returns input 0's and output 0's shapes, which the executor
// makes concrete before calling a factory.
func concreteIO(p *Prep) (in, out []int, err error) {
	in, ok := p.In[0].Concrete()
	if !ok {
		return nil, nil, Errorf(p, "input 0 has no concrete shape")
	}
	out, ok = p.Out[0].Concrete()
	if !ok {
		return nil, nil, Errorf(p, "output 0 has no concrete shape")
	}
	return in, out, nil
}

func transposeFactory(p *Prep) (Kernel, error) {
	is, os, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	perm, err := graph.TransposePerm(p.Node, len(is))
	if err != nil {
		return nil, err
	}
	ist := tensor.Strides(is)
	ss := make([]int, len(perm))
	for i, a := range perm {
		ss[i] = ist[a]
	}
	c := newStridedCopy(os, tensor.Strides(os), ss, 0, 0)
	return copyKernel(p, p.In[0].DType, []copyPart{{c: c}})
}

func concatFactory(p *Prep) (Kernel, error) {
	os, ok := p.Out[0].Concrete()
	if !ok {
		return nil, Errorf(p, "output has no concrete shape")
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(os))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	ost := tensor.Strides(os)
	var parts []copyPart
	off := 0
	for i := range p.In {
		is := p.InShape(i)
		if len(is) != len(os) {
			return nil, Errorf(p, "input %d has shape %v, output %v", i, is, os)
		}
		c := newStridedCopy(is, ost, tensor.Strides(is), off*ost[axis], 0)
		parts = append(parts, copyPart{c: c, in: i})
		off += is[axis]
	}
	return copyKernel(p, p.Out[0].DType, parts)
}

func splitFactory(p *Prep) (Kernel, error) {
	is, ok := p.In[0].Concrete()
	if !ok {
		return nil, Errorf(p, "input has no concrete shape")
	}
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(is))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	ist := tensor.Strides(is)
	var parts []copyPart
	off := 0
	for i := range p.Out {
		if p.Out[i] == nil {
			continue
		}
		os, ok := p.Out[i].Concrete()
		if !ok || len(os) != len(is) {
			return nil, Errorf(p, "output %d has no concrete shape of rank %d", i, len(is))
		}
		c := newStridedCopy(os, tensor.Strides(os), ist, 0, off*ist[axis])
		if p.Node.Outputs[i] != "" {
			parts = append(parts, copyPart{c: c, out: i})
		}
		off += os[axis]
	}
	if off != is[axis] {
		return nil, Errorf(p, "outputs cover %d of axis %d's %d elements", off, axis, is[axis])
	}
	return copyKernel(p, p.In[0].DType, parts)
}

// slicePlan resolves a slice of shape is into per-axis ranges.
func sliceRanges(is []int, starts, ends []int64, axes []int, steps []int64) []graph.SliceRange {
	rs := make([]graph.SliceRange, len(is))
	for i, d := range is {
		rs[i] = graph.SliceRange{Start: 0, Step: 1, Len: d}
	}
	for i, a := range axes {
		rs[a] = graph.ResolveSlice(starts[i], ends[i], steps[i], int64(is[a]))
	}
	return rs
}

// sliceCopy maps a dense tensor of the ranges' lengths onto the strided
// positions of a tensor of shape full.
func sliceCopy(full []int, rs []graph.SliceRange, sliceIsDst bool) *stridedCopy {
	fst := tensor.Strides(full)
	dims := make([]int, len(rs))
	fs := make([]int, len(rs))
	base := 0
	for i, r := range rs {
		dims[i] = r.Len
		fs[i] = fst[i] * r.Step
		base += r.Start * fst[i]
	}
	dense := tensor.Strides(dims)
	if sliceIsDst {
		return newStridedCopy(dims, dense, fs, 0, base)
	}
	return newStridedCopy(dims, fs, dense, base, 0)
}

func sliceFactory(p *Prep) (Kernel, error) {
	is, os, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	starts, ends, axes, steps, known, err := graph.SliceParams(p.Node, p.In, p.Opset, len(is))
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, Errorf(p, "starts, ends, axes and steps must be known when the kernel is prepared")
	}
	rs := sliceRanges(is, starts, ends, axes, steps)
	for i, r := range rs {
		if r.Len != os[i] {
			return nil, Errorf(p, "slice of %v gives dim %d = %d, output has %v", is, i, r.Len, os)
		}
	}
	return copyKernel(p, p.In[0].DType, []copyPart{{c: sliceCopy(is, rs, true)}})
}

// sliceGradFactory: SliceGrad(dY, shape, starts, ends, axes?, steps?) is
// zeros of shape with dY written where Slice (opset 13) read.
func sliceGradFactory(p *Prep) (Kernel, error) {
	ys, ok := p.In[0].Concrete()
	if !ok {
		return nil, Errorf(p, "dY has no concrete shape")
	}
	xs, ok := p.Out[0].Concrete()
	if !ok {
		return nil, Errorf(p, "output has no concrete shape")
	}
	// Reuse Slice's parameter reading on the inputs shifted by one.
	sin := append([]*graph.Type{p.In[0]}, p.In[2:]...)
	starts, ends, axes, steps, known, err := graph.SliceParams(p.Node, sin, 13, len(xs))
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, Errorf(p, "starts, ends, axes and steps must be known when the kernel is prepared")
	}
	rs := sliceRanges(xs, starts, ends, axes, steps)
	for i, r := range rs {
		if r.Len != ys[i] {
			return nil, Errorf(p, "slicing %v gives dim %d = %d, but dY has shape %v", xs, i, r.Len, ys)
		}
	}
	return copyKernel(p, p.In[0].DType, []copyPart{{c: sliceCopy(xs, rs, false), zeroOut: true}})
}

func expandFactory(p *Prep) (Kernel, error) {
	is, os, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	if len(is) > len(os) {
		return nil, Errorf(p, "input %v has more dims than output %v", is, os)
	}
	ist := tensor.Strides(is)
	ss := make([]int, len(os))
	off := len(os) - len(is)
	for i, d := range is {
		switch d {
		case os[off+i]:
			if d != 1 {
				ss[off+i] = ist[i]
			}
		case 1:
		default:
			return nil, Errorf(p, "input %v does not broadcast to %v", is, os)
		}
	}
	c := newStridedCopy(os, tensor.Strides(os), ss, 0, 0)
	return copyKernel(p, p.In[0].DType, []copyPart{{c: c}})
}

func tileFactory(p *Prep) (Kernel, error) {
	is, os, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	if len(is) != len(os) {
		return nil, Errorf(p, "input %v and output %v differ in rank", is, os)
	}
	// Output coordinate a*d+b along a dim of size d tiled r times is the
	// pair (a, b) in row-major order: a strided copy of rank 2*rank.
	ist, ost := tensor.Strides(is), tensor.Strides(os)
	var dims, ds, ss []int
	for i, d := range is {
		if d == 0 {
			if os[i] != 0 {
				return nil, Errorf(p, "cannot tile an empty dim %d to %d", i, os[i])
			}
			return func(in, out []*tensor.Tensor) error { return nil }, nil
		}
		if os[i]%d != 0 {
			return nil, Errorf(p, "output dim %d = %d is not a multiple of input dim %d", i, os[i], d)
		}
		dims = append(dims, os[i]/d, d)
		ds = append(ds, d*ost[i], ost[i])
		ss = append(ss, 0, ist[i])
	}
	c := newStridedCopy(dims, ds, ss, 0, 0)
	return copyKernel(p, p.In[0].DType, []copyPart{{c: c}})
}

func shapeFactory(p *Prep) (Kernel, error) {
	os, ok := p.Out[0].Concrete()
	if !ok || len(os) != 1 {
		return nil, Errorf(p, "output has no concrete 1-D shape")
	}
	r := int64(len(p.In[0].Shape))
	start := p.Node.AttrInt("start", 0)
	if start < 0 {
		start += r
	}
	start = max(0, min(start, r))
	n := os[0]
	return func(in, out []*tensor.Tensor) error {
		s := in[0].Shape()
		if int(start)+n > len(s) {
			return fmt.Errorf("input has shape %v, which has no dims %d..%d", s, start, int(start)+n)
		}
		v := out[0].Int64s()
		for i := range v {
			v[i] = int64(s[int(start)+i])
		}
		return nil
	}, nil
}

func sizeFactory(p *Prep) (Kernel, error) {
	return func(in, out []*tensor.Tensor) error {
		out[0].Int64s()[0] = int64(in[0].Len())
		return nil
	}, nil
}

func triluT[T moveElem](pool *Pool, out, in *tensor.Tensor, rows, cols int, k int64, upper bool) {
	dst, src := moveData[T](out), moveData[T](in)
	mat := rows * cols
	var zero T
	pool.For(len(dst)/max(mat, 1)*rows, max(1, moveGrain/max(cols, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			i := r % rows
			row := dst[r*cols : (r+1)*cols]
			copy(row, src[r*cols:(r+1)*cols])
			// upper keeps j >= i+k; lower keeps j <= i+k.
			lim := int64(i) + k
			if upper {
				clear0(row[:max(0, min(lim, int64(cols)))], zero)
			} else {
				clear0(row[max(0, min(lim+1, int64(cols))):], zero)
			}
		}
	})
}

func clear0[T any](s []T, zero T) {
	for i := range s {
		s[i] = zero
	}
}

func triluFactory(p *Prep) (Kernel, error) {
	is, _, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	if len(is) < 2 {
		return nil, Errorf(p, "input must have rank >= 2, has shape %v", is)
	}
	rows, cols := is[len(is)-2], is[len(is)-1]
	upper := p.Node.AttrInt("upper", 1) != 0
	f, ok := bySize(p.In[0].DType, triluT[uint8], triluT[uint16], triluT[uint32], triluT[uint64], triluT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", p.In[0].DType)
	}
	pool := p.Pool
	return func(in, out []*tensor.Tensor) error {
		k := int64(0)
		if len(in) > 1 && in[1] != nil {
			v, err := in[1].AsInt64s()
			if err != nil || len(v) != 1 {
				return fmt.Errorf("input k must be an integer scalar")
			}
			k = v[0]
		}
		f(pool, out[0], in[0], rows, cols, k, upper)
		return nil
	}, nil
}
