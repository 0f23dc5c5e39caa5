package cuda

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Data movement (kernels/shape.cu): Transpose, Concat, Split, Slice,
// SliceGrad and Pad as strided gathers and scatters over 1, 4 or 8-byte
// elements. View ops (Reshape, Flatten, ...) are aliases: no kernel.

var shMod = newModule("shape", "shape.cu")

var shFuncs = map[string]*Func{}

var sizeTypes = map[int]string{1: "u8", 4: "unsigned int", 8: "u64"}

func init() {
	for size, t := range sizeTypes {
		k := fmt.Sprint(size)
		shFuncs["gather/"+k] = shMod.Def("sh_gather_"+k, fmt.Sprintf("%s* y, const %s* x, const int* geo, int n, int xbase", t, t),
			fmt.Sprintf("sh_gather<%s>(y, x, geo, n, xbase);", t))
		shFuncs["scatter/"+k] = shMod.Def("sh_scatter_"+k, fmt.Sprintf("%s* y, const %s* x, const int* geo, int n, int ybase", t, t),
			fmt.Sprintf("sh_scatter<%s>(y, x, geo, n, ybase);", t))
		shFuncs["fill/"+k] = shMod.Def("sh_fill_"+k, fmt.Sprintf("%s* y, const %s* v, int n", t, t), fmt.Sprintf("sh_fill<%s>(y, v, n);", t))
		shFuncs["pad/"+k] = shMod.Def("sh_pad_"+k, fmt.Sprintf("%s* y, const %s* x, const int* geo, int n, int mode, const %s* value", t, t, t),
			fmt.Sprintf("sh_pad<%s>(y, x, geo, n, mode, value);", t))
	}
	Register(graph.DomainONNX, "Transpose", transposeFactory)
	Register(graph.DomainONNX, "Concat", concatFactory)
	Register(graph.DomainONNX, "Split", splitFactory)
	Register(graph.DomainONNX, "Slice", sliceFactory)
	Register(graph.DomainGotrain, "SliceGrad", sliceGradFactory)
	Register(graph.DomainONNX, "Pad", padFactory)
}

// moveFunc picks the entry point for dt's element size.
func moveFunc(p *Prep, kind string, dt tensor.DType) (*Func, error) {
	if _, ok := suffixOf(dt); !ok {
		return nil, Unsupported(p, "%s of %v", p.Node.OpType, dt)
	}
	f := shFuncs[kind+"/"+fmt.Sprint(dt.Size())]
	if f == nil {
		return nil, Unsupported(p, "%s of %v", p.Node.OpType, dt)
	}
	return f, nil
}

// move is one strided gather or scatter of a kernel.
type move struct {
	f     *Func
	n     int
	base  int
	in    int // which input (gather source or scatter source)
	out   int // which output
	konst int // index of its geometry in Kernel.Consts
}

func (m *move) run(c *Call) error {
	if m.n == 0 {
		return nil
	}
	return c.S.Launch(m.f, grid1(m.n), block1, 0, c.A(P(c.Out[m.out]), P(c.In[m.in]), P(c.Consts[m.konst]), I(m.n), I(m.base)))
}

func transposeFactory(p *Prep) (*Kernel, error) {
	is, os := p.InShape(0), p.OutShape(0)
	perm, err := graph.TransposePerm(p.Node, len(is))
	if err != nil {
		return nil, err
	}
	f, err := moveFunc(p, "gather", p.In[0].DType)
	if err != nil {
		return nil, err
	}
	n, err := numel(p, os, "output 0")
	if err != nil {
		return nil, err
	}
	ist := contiguousStrides(is)
	xs := make([]int, len(perm))
	for d, a := range perm {
		xs[d] = ist[a]
	}
	m := &move{f: f, n: n}
	return &Kernel{Consts: [][]int32{stridedGeo(os, xs)}, Run: m.run}, nil
}

// sliceGeo maps a dense tensor of the ranges' lengths onto the strided
// positions of a tensor of shape full: the geometry and base offset.
func sliceGeo(full []int, rs []graph.SliceRange) ([]int32, int, int) {
	fst := contiguousStrides(full)
	dims := make([]int, len(rs))
	fs := make([]int, len(rs))
	base := 0
	for i, r := range rs {
		dims[i] = r.Len
		fs[i] = fst[i] * r.Step
		base += r.Start * fst[i]
	}
	return stridedGeo(dims, fs), base, tensor.NumElements(dims)
}

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

func sliceFactory(p *Prep) (*Kernel, error) {
	is, os := p.InShape(0), p.OutShape(0)
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
	f, err := moveFunc(p, "gather", p.In[0].DType)
	if err != nil {
		return nil, err
	}
	if _, err := numel(p, is, "input 0"); err != nil {
		return nil, err
	}
	geo, base, n := sliceGeo(is, rs)
	m := &move{f: f, n: n, base: base}
	return &Kernel{Consts: [][]int32{geo}, Run: m.run}, nil
}

// sliceGradFactory: SliceGrad(dY, shape, starts, ends, axes?, steps?) is
// zeros of shape with dY written where Slice (opset 13) read.
func sliceGradFactory(p *Prep) (*Kernel, error) {
	ys, xs := p.InShape(0), p.OutShape(0)
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
		if i >= len(ys) || r.Len != ys[i] {
			return nil, Errorf(p, "dY has shape %v; the slice of %v has other lengths", ys, xs)
		}
	}
	f, err := moveFunc(p, "scatter", p.In[0].DType)
	if err != nil {
		return nil, err
	}
	total, err := numel(p, xs, "output 0")
	if err != nil {
		return nil, err
	}
	geo, base, n := sliceGeo(xs, rs)
	m := &move{f: f, n: n, base: base}
	bytes := int64(total) * dtypeSize(p.In[0].DType)
	return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
		if err := zero(c, c.Out[0], bytes); err != nil {
			return err
		}
		return m.run(c)
	}}, nil
}

// zero clears bytes at p by 32-bit words: device buffers are allocated in
// multiples of 8 bytes (see Call), so the last word never runs past one.
func zero(c *Call, p Ptr, bytes int64) error {
	if bytes == 0 {
		return nil
	}
	return c.S.Memset32(p, 0, int((bytes+3)/4))
}

// axisParts is Concat and Split: a whole tensor cut along axis into parts,
// each moved by one strided launch (a scatter into the whole for Concat, a
// gather from it for Split). parts[i] is nil for an omitted input; a part
// with skip[i] set takes its share of the axis but is not moved (an output
// nobody reads).
func axisParts(p *Prep, kind string, whole []int, parts [][]int, skip []bool, dt tensor.DType) (*Kernel, error) {
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(whole))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	f, err := moveFunc(p, kind, dt)
	if err != nil {
		return nil, err
	}
	if _, err := numel(p, whole, "the whole tensor"); err != nil {
		return nil, err
	}
	wst := contiguousStrides(whole)
	k := &Kernel{}
	var moves []*move
	at := 0
	for i, ps := range parts {
		if ps == nil {
			continue
		}
		if len(ps) != len(whole) {
			return nil, Errorf(p, "part %d has shape %v; the whole is %v", i, ps, whole)
		}
		if skip != nil && skip[i] {
			at += ps[axis]
			continue
		}
		k.Consts = append(k.Consts, stridedGeo(ps, wst))
		m := &move{f: f, n: tensor.NumElements(ps), base: at * wst[axis], konst: len(k.Consts) - 1}
		if kind == "scatter" {
			m.in = i
		} else {
			m.out = i
		}
		moves = append(moves, m)
		at += ps[axis]
	}
	if at != whole[axis] {
		return nil, Errorf(p, "the parts add up to %d along axis %d; the whole has %d", at, axis, whole[axis])
	}
	k.Run = func(c *Call) error {
		for _, m := range moves {
			if err := m.run(c); err != nil {
				return err
			}
		}
		return nil
	}
	return k, nil
}

func concatFactory(p *Prep) (*Kernel, error) {
	parts := make([][]int, len(p.In))
	for i := range p.In {
		if p.hasIn(i) {
			parts[i] = p.InShape(i)
		}
	}
	return axisParts(p, "scatter", p.OutShape(0), parts, nil, p.Out[0].DType)
}

// splitFactory: outputs that are not wanted still take their share of the
// axis.
func splitFactory(p *Prep) (*Kernel, error) {
	parts := make([][]int, len(p.Node.Outputs))
	skip := make([]bool, len(p.Node.Outputs))
	for i, o := range p.Node.Outputs {
		if i >= len(p.Out) || p.Out[i] == nil {
			return nil, Errorf(p, "output %d has no type", i)
		}
		parts[i], _ = p.Out[i].Concrete()
		skip[i] = o == ""
	}
	return axisParts(p, "gather", p.InShape(0), parts, skip, p.In[0].DType)
}

func padFactory(p *Prep) (*Kernel, error) {
	is, os := p.InShape(0), p.OutShape(0)
	r := len(is)
	pads, known, err := graph.PadParams(p.Node, p.In, p.Opset, r)
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, Errorf(p, "pads must be known when the kernel is prepared")
	}
	for i := range is {
		if is[i]+int(pads[i])+int(pads[r+i]) != os[i] {
			return nil, Errorf(p, "pads %v on %v do not give output %v", pads, is, os)
		}
	}
	modes := map[string]int{"constant": 0, "edge": 1, "reflect": 2, "wrap": 3}
	mode, ok := modes[p.Node.AttrString("mode", "constant")]
	if !ok {
		return nil, Errorf(p, "attribute mode is %q; want constant, edge, reflect or wrap", p.Node.AttrString("mode", "constant"))
	}
	dt := p.In[0].DType
	if mode != 0 {
		for i, d := range is {
			if d == 0 && os[i] > 0 {
				return nil, Errorf(p, "mode %s cannot pad axis %d of size 0", p.Node.AttrString("mode", ""), i)
			}
		}
	}
	f, err := moveFunc(p, "pad", dt)
	if err != nil {
		return nil, err
	}
	n, err := numel(p, os, "output 0")
	if err != nil {
		return nil, err
	}
	if _, err := numel(p, is, "input 0"); err != nil {
		return nil, err
	}
	if p.hasIn(2) && (p.In[2].DType != dt || tensor.NumElements(p.InShape(2)) != 1) {
		return nil, Errorf(p, "constant_value is %v; expected one %v", p.In[2], dt)
	}
	geo := []int32{int32(r)}
	for _, v := range [][]int{os, is, contiguousStrides(is)} {
		for _, d := range v {
			geo = append(geo, int32(d))
		}
	}
	for i := 0; i < r; i++ {
		geo = append(geo, int32(pads[i]))
	}
	// The constant comes from input 2 when given; else it is zero (the
	// value attribute of opset < 11 is refused unless 0), held in scratch.
	if p.Opset < 11 && p.Node.AttrFloat("value", 0) != 0 {
		return nil, Unsupported(p, "Pad before opset 11 with a non-zero value attribute")
	}
	return &Kernel{Consts: [][]int32{geo}, Scratch: []int64{8}, Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		v := optIn(c, 2)
		if v == 0 {
			if err := c.S.Memset32(c.Scratch[0], 0, 2); err != nil {
				return err
			}
			v = c.Scratch[0]
		}
		return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.Consts[0]), I(n), I(mode), P(v)))
	}}, nil
}
