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

func concatFactory(p *Prep) (*Kernel, error) {
	os := p.OutShape(0)
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(os))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	f, err := moveFunc(p, "scatter", p.Out[0].DType)
	if err != nil {
		return nil, err
	}
	if _, err := numel(p, os, "output 0"); err != nil {
		return nil, err
	}
	ost := contiguousStrides(os)
	k := &Kernel{}
	var moves []*move
	at := 0
	for i := range p.In {
		if !p.hasIn(i) {
			continue
		}
		is := p.InShape(i)
		if len(is) != len(os) {
			return nil, Errorf(p, "input %d has shape %v; output is %v", i, is, os)
		}
		k.Consts = append(k.Consts, stridedGeo(is, ost))
		moves = append(moves, &move{f: f, n: tensor.NumElements(is), base: at * ost[axis], in: i, konst: len(k.Consts) - 1})
		at += is[axis]
	}
	if at != os[axis] {
		return nil, Errorf(p, "inputs give %d along axis %d; output has %d", at, axis, os[axis])
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

func splitFactory(p *Prep) (*Kernel, error) {
	is := p.InShape(0)
	axis, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(is))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	f, err := moveFunc(p, "gather", p.In[0].DType)
	if err != nil {
		return nil, err
	}
	if _, err := numel(p, is, "input 0"); err != nil {
		return nil, err
	}
	ist := contiguousStrides(is)
	k := &Kernel{}
	var moves []*move
	at := 0
	for i := range p.Node.Outputs {
		if i >= len(p.Out) || p.Out[i] == nil {
			return nil, Errorf(p, "output %d has no type", i)
		}
		os, _ := p.Out[i].Concrete()
		if len(os) != len(is) {
			return nil, Errorf(p, "output %d has shape %v; input is %v", i, os, is)
		}
		if p.Node.Outputs[i] != "" {
			k.Consts = append(k.Consts, stridedGeo(os, ist))
			moves = append(moves, &move{f: f, n: tensor.NumElements(os), base: at * ist[axis], out: i, konst: len(k.Consts) - 1})
		}
		at += os[axis]
	}
	if at != is[axis] {
		return nil, Errorf(p, "outputs take %d along axis %d; input has %d", at, axis, is[axis])
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
