package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// mmPrepare infers a node's output types with its schema, prepares its CPU
// kernel on pool and allocates its outputs (NaN-filled, so that garbage
// in an output cannot leak into a result). A nil input is an omitted
// optional one.
func mmPrepare(t testing.TB, n *graph.Node, pool *Pool, in ...*tensor.Tensor) (Kernel, []*tensor.Tensor) {
	t.Helper()
	types := make([]*graph.Type, len(in))
	n.Inputs = make([]string, len(in))
	for i, x := range in {
		if x != nil {
			types[i] = graph.TypeOf(x)
			types[i].Value = nil
			n.Inputs[i] = fmt.Sprintf("in%d", i)
		}
	}
	s := graph.Lookup(n.Domain, n.OpType)
	if s == nil {
		t.Fatalf("no schema for %s", n.OpType)
	}
	outTypes, err := s.Infer(n, types, 17)
	if err != nil {
		t.Fatalf("infer: %v", err)
	}
	k, err := kernels[kkey(n.Domain, n.OpType)].factory(&Prep{Node: n, In: types, Out: outTypes[:len(n.Outputs)], Opset: 17, Pool: pool})
	if err != nil {
		t.Fatalf("factory: %v", err)
	}
	out := make([]*tensor.Tensor, len(n.Outputs))
	for i, o := range n.Outputs {
		if o == "" {
			continue
		}
		shape, ok := outTypes[i].Concrete()
		if !ok {
			t.Fatalf("output %d has no concrete shape: %v", i, outTypes[i])
		}
		out[i] = tensor.New(outTypes[i].DType, shape...)
		mmFillNaN(out[i])
	}
	return k, out
}

// mmRunNode prepares a node's kernel on a pool of the given size and runs
// it once.
func mmRunNode(t testing.TB, n *graph.Node, threads int, in ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	pool := NewPool(threads)
	defer pool.Close()
	k, out := mmPrepare(t, n, pool, in...)
	if err := k(in, out); err != nil {
		t.Fatalf("kernel: %v", err)
	}
	return out
}

func mmFillNaN(t *tensor.Tensor) {
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = float32(math.NaN())
		}
	case []float64:
		for i := range d {
			d[i] = math.NaN()
		}
	}
}

func mmRandT(rng *rand.Rand, dt tensor.DType, shape ...int) *tensor.Tensor {
	t := tensor.New(dt, shape...)
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = float32(rng.Float64()*2 - 1)
		}
	case []float64:
		for i := range d {
			d[i] = rng.Float64()*2 - 1
		}
	}
	return t
}

func mmF64(t *tensor.Tensor) []float64 {
	if t == nil {
		return nil
	}
	out := make([]float64, t.Len())
	for i := range out {
		out[i] = t.AsFloat64(i)
	}
	return out
}

// mmClose compares got with want elementwise: |got-want| <= atol + rtol*|want|.
func mmClose(t *testing.T, what string, got *tensor.Tensor, want []float64, shape []int, atol, rtol float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), shape)
	}
	g := mmF64(got)
	for i := range want {
		if d := math.Abs(g[i] - want[i]); !(d <= atol+rtol*math.Abs(want[i])) {
			t.Fatalf("%s: element %d is %g, want %g (diff %g)", what, i, g[i], want[i], d)
		}
	}
}

// convCase is one convolution configuration. pads is what auto_pad should
// resolve to (begin..., end...), which the reference uses directly.
type convCase struct {
	name               string
	x, w               []int // X [N C spatial...], W as ONNX lays it out
	group              int
	strides, dil, pads []int
	autoPad            string
	bias               bool
	outPad, outShape   []int // ConvTranspose only
	refPads            []int // pads the reference uses (nil: pads)
}

func (c convCase) node(op string) *graph.Node {
	n := &graph.Node{Name: c.name, OpType: op, Outputs: []string{"y"}}
	ints := func(name string, v []int) {
		if v == nil {
			return
		}
		a := make([]int64, len(v))
		for i, x := range v {
			a[i] = int64(x)
		}
		n.SetAttr(graph.AInts(name, a...))
	}
	if c.group != 0 {
		n.SetAttr(graph.AInt("group", int64(c.group)))
	}
	ints("strides", c.strides)
	ints("dilations", c.dil)
	ints("pads", c.pads)
	ints("output_padding", c.outPad)
	ints("output_shape", c.outShape)
	if c.autoPad != "" {
		n.SetAttr(graph.AString("auto_pad", c.autoPad))
	}
	return n
}

func (c convCase) geom() (r int, strides, dil, pb []int, group int) {
	r = len(c.x) - 2
	strides, dil, pb = make([]int, r), make([]int, r), make([]int, r)
	pads := c.refPads
	if pads == nil {
		pads = c.pads
	}
	for i := 0; i < r; i++ {
		strides[i], dil[i] = 1, 1
		if c.strides != nil {
			strides[i] = c.strides[i]
		}
		if c.dil != nil {
			dil[i] = c.dil[i]
		}
		if pads != nil {
			pb[i] = pads[i]
		}
	}
	group = max(c.group, 1)
	return
}

// mmIndex iterates over all multi-indices of shape.
func mmIndex(shape []int, fn func(idx []int)) {
	idx := make([]int, len(shape))
	total := tensor.NumElements(shape)
	for f := 0; f < total; f++ {
		rem := f
		for i := len(shape) - 1; i >= 0; i-- {
			idx[i] = rem % shape[i]
			rem /= shape[i]
		}
		fn(idx)
	}
}

func mmOffset(shape []int, idx ...[]int) int {
	off := 0
	k := 0
	for _, part := range idx {
		for _, v := range part {
			off = off*shape[k] + v
			k++
		}
	}
	return off
}

// refConv is a direct loop convolution in float64; pads come from the case.
func refConv(c convCase, x, w, b []float64, yShape []int) []float64 {
	r, strides, dil, pb, group := c.geom()
	cg, mg := c.w[1], c.w[0]/group
	y := make([]float64, tensor.NumElements(yShape))
	mmIndex(yShape, func(o []int) {
		n, m, os := o[0], o[1], o[2:]
		g := m / mg
		s := 0.0
		if b != nil {
			s = b[m]
		}
		for ci := 0; ci < cg; ci++ {
			mmIndex(c.w[2:], func(k []int) {
				pos := make([]int, r)
				for d := 0; d < r; d++ {
					pos[d] = os[d]*strides[d] - pb[d] + k[d]*dil[d]
					if pos[d] < 0 || pos[d] >= c.x[2+d] {
						return
					}
				}
				s += x[mmOffset(c.x, []int{n, g*cg + ci}, pos)] * w[mmOffset(c.w, []int{m, ci}, k)]
			})
		}
		y[mmOffset(yShape, o)] = s
	})
	return y
}

// refConvTranspose scatters every input element through the kernel.
func refConvTranspose(c convCase, x, w, b []float64, yShape []int) []float64 {
	r, strides, dil, pb, group := c.geom()
	cg, mg := c.x[1]/group, c.w[1]
	y := make([]float64, tensor.NumElements(yShape))
	if b != nil {
		mmIndex(yShape, func(o []int) { y[mmOffset(yShape, o)] = b[o[1]] })
	}
	mmIndex(c.x, func(i []int) {
		n, ci, is := i[0], i[1], i[2:]
		g := ci / cg
		for m := 0; m < mg; m++ {
			mmIndex(c.w[2:], func(k []int) {
				pos := make([]int, r)
				for d := 0; d < r; d++ {
					pos[d] = is[d]*strides[d] - pb[d] + k[d]*dil[d]
					if pos[d] < 0 || pos[d] >= yShape[2+d] {
						return
					}
				}
				y[mmOffset(yShape, []int{n, g*mg + m}, pos)] += x[mmOffset(c.x, i)] * w[mmOffset(c.w, []int{ci, m}, k)]
			})
		}
	})
	return y
}

// refConvGrad computes dX, dW, dB of Conv by direct loops.
func refConvGrad(c convCase, dy, x, w []float64, yShape []int) (dx, dw, db []float64) {
	r, strides, dil, pb, group := c.geom()
	cg, mg := c.w[1], c.w[0]/group
	dx = make([]float64, tensor.NumElements(c.x))
	dw = make([]float64, tensor.NumElements(c.w))
	db = make([]float64, c.w[0])
	mmIndex(yShape, func(o []int) {
		n, m, os := o[0], o[1], o[2:]
		g := m / mg
		d := dy[mmOffset(yShape, o)]
		db[m] += d
		for ci := 0; ci < cg; ci++ {
			mmIndex(c.w[2:], func(k []int) {
				pos := make([]int, r)
				for j := 0; j < r; j++ {
					pos[j] = os[j]*strides[j] - pb[j] + k[j]*dil[j]
					if pos[j] < 0 || pos[j] >= c.x[2+j] {
						return
					}
				}
				xi, wi := mmOffset(c.x, []int{n, g*cg + ci}, pos), mmOffset(c.w, []int{m, ci}, k)
				dx[xi] += w[wi] * d
				dw[wi] += x[xi] * d
			})
		}
	})
	return
}

var convCases = []convCase{
	{name: "2d_3x3", x: []int{2, 3, 7, 6}, w: []int{4, 3, 3, 3}, bias: true},
	{name: "2d_asym_pads_strides_dil", x: []int{3, 2, 9, 8}, w: []int{3, 2, 3, 2}, strides: []int{2, 1}, dil: []int{1, 2}, pads: []int{1, 0, 2, 1}, bias: true},
	{name: "2d_group2", x: []int{2, 4, 6, 6}, w: []int{6, 2, 3, 3}, group: 2, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "2d_depthwise", x: []int{3, 4, 5, 7}, w: []int{8, 1, 3, 3}, group: 4, strides: []int{2, 2}, pads: []int{1, 1, 1, 1}},
	{name: "2d_1x1_identity", x: []int{3, 5, 4, 4}, w: []int{6, 5, 1, 1}, bias: true},
	{name: "2d_1x1_stride2", x: []int{2, 3, 5, 5}, w: []int{4, 3, 1, 1}, strides: []int{2, 2}},
	{name: "2d_batch1", x: []int{1, 3, 8, 8}, w: []int{5, 3, 3, 3}, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "2d_batch5", x: []int{5, 2, 6, 5}, w: []int{3, 2, 2, 3}, strides: []int{1, 2}},
	// Small maps: Conv and ConvGrad multiply several images at once; 6 and 7
	// images leave a short last group (batched products of 4 images).
	{name: "2d_batched_uneven", x: []int{6, 3, 12, 12}, w: []int{4, 3, 3, 3}, pads: []int{1, 1, 1, 1}, bias: true},
	{name: "2d_batched_uneven7", x: []int{7, 2, 10, 10}, w: []int{5, 2, 3, 3}, bias: true},
	{name: "2d_kernel_exceeds_no_valid_cols", x: []int{2, 1, 3, 3}, w: []int{2, 1, 3, 3}, pads: []int{2, 2, 2, 2}, strides: []int{3, 3}},
	{name: "1d", x: []int{2, 3, 11}, w: []int{4, 3, 3}, strides: []int{2}, dil: []int{2}, pads: []int{2, 1}, bias: true},
	{name: "1d_group3", x: []int{3, 6, 9}, w: []int{3, 2, 2}, group: 3},
	{name: "3d", x: []int{2, 2, 5, 4, 6}, w: []int{3, 2, 2, 3, 2}, strides: []int{1, 2, 2}, pads: []int{1, 0, 1, 0, 1, 1}, bias: true},
	{name: "3d_dilated_group", x: []int{2, 4, 6, 5, 5}, w: []int{4, 2, 2, 2, 2}, group: 2, dil: []int{2, 1, 2}},
	{name: "same_upper", x: []int{2, 2, 7, 6}, w: []int{3, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_UPPER", refPads: []int{1, 0, 1, 1}},
	{name: "same_lower", x: []int{2, 2, 7, 6}, w: []int{3, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_LOWER", refPads: []int{1, 1, 1, 0}},
	{name: "same_upper_even_kernel", x: []int{1, 2, 6, 6}, w: []int{2, 2, 2, 2}, autoPad: "SAME_UPPER", refPads: []int{0, 0, 1, 1}},
	{name: "valid_ignores_pads", x: []int{2, 2, 6, 6}, w: []int{2, 2, 3, 3}, autoPad: "VALID", refPads: []int{0, 0, 0, 0}},
}

func convInputs(rng *rand.Rand, c convCase, dt tensor.DType, biasLen int) []*tensor.Tensor {
	in := []*tensor.Tensor{mmRandT(rng, dt, c.x...), mmRandT(rng, dt, c.w...)}
	if c.bias {
		in = append(in, mmRandT(rng, dt, biasLen))
	}
	return in
}

// float32 results against a float64 reference: with inputs in [-1, 1] and
// at most ~50 products per output, float32 rounding stays near 1e-6; the
// 1e-4 tolerances leave room and still catch any misplaced element.
const convAtol32, convRtol32 = 1e-4, 1e-4

func TestConvMatchesReference(t *testing.T) { eachGEMM(t, checkConvMatchesReference) }

func checkConvMatchesReference(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		for _, c := range convCases {
			for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64} {
				t.Run(fmt.Sprintf("%s/threads%d/%v", c.name, threads, dt), func(t *testing.T) {
					rng := rand.New(rand.NewSource(1))
					in := convInputs(rng, c, dt, c.w[0])
					y := mmRunNode(t, c.node("Conv"), threads, in...)[0]
					var b []float64
					if c.bias {
						b = mmF64(in[2])
					}
					want := refConv(c, mmF64(in[0]), mmF64(in[1]), b, y.Shape())
					// The output shape is checked independently of the kernel: it
					// must match floor((in+pads-extent)/stride)+1 from the case.
					r, strides, dil, pb, _ := c.geom()
					shape := []int{c.x[0], c.w[0]}
					pads := c.refPads
					if pads == nil {
						pads = c.pads
					}
					for d := 0; d < r; d++ {
						pe := 0
						if pads != nil {
							pe = pads[r+d]
						}
						shape = append(shape, (c.x[2+d]+pb[d]+pe-(c.w[2+d]-1)*dil[d]-1)/strides[d]+1)
					}
					atol, rtol := convAtol32, convRtol32
					if dt == tensor.Float64 {
						atol, rtol = 1e-12, 1e-12
					}
					mmClose(t, "Y", y, want, shape, atol, rtol)
				})
			}
		}
	}
}

var convTransposeCases = []convCase{
	{name: "2d", x: []int{2, 3, 4, 5}, w: []int{3, 2, 3, 3}, bias: true},
	{name: "2d_strides_pads_outpad", x: []int{2, 2, 3, 4}, w: []int{2, 3, 3, 2}, strides: []int{3, 2}, pads: []int{1, 0, 0, 1}, outPad: []int{1, 1}},
	{name: "2d_dilations", x: []int{1, 2, 4, 4}, w: []int{2, 2, 2, 3}, dil: []int{2, 2}, bias: true},
	{name: "2d_group2", x: []int{3, 4, 3, 3}, w: []int{4, 3, 3, 3}, group: 2, strides: []int{2, 2}},
	{name: "2d_1x1_identity", x: []int{2, 3, 4, 4}, w: []int{3, 5, 1, 1}, bias: true},
	{name: "1d", x: []int{2, 2, 5}, w: []int{2, 3, 3}, strides: []int{2}, pads: []int{1, 1}},
	{name: "3d", x: []int{1, 2, 3, 3, 2}, w: []int{2, 2, 2, 3, 2}, strides: []int{2, 1, 2}, bias: true},
	{name: "output_shape", x: []int{1, 1, 3, 3}, w: []int{1, 2, 3, 3}, strides: []int{3, 2}, outShape: []int{10, 8}, refPads: []int{0, 0, -1, -1}},
	{name: "same_upper", x: []int{1, 2, 3, 3}, w: []int{2, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_UPPER", refPads: []int{0, 0, 1, 1}},
	{name: "same_lower", x: []int{1, 2, 3, 3}, w: []int{2, 2, 3, 3}, strides: []int{2, 2}, autoPad: "SAME_LOWER", refPads: []int{1, 1, 0, 0}},
}

func TestConvTransposeMatchesReference(t *testing.T) { eachGEMM(t, checkConvTransposeMatchesReference) }

func checkConvTransposeMatchesReference(t *testing.T) {
	for _, threads := range []int{1, 2} {
		for _, c := range convTransposeCases {
			t.Run(fmt.Sprintf("%s/threads%d", c.name, threads), func(t *testing.T) {
				rng := rand.New(rand.NewSource(2))
				group := max(c.group, 1)
				in := convInputs(rng, c, tensor.Float32, c.w[1]*group)
				y := mmRunNode(t, c.node("ConvTranspose"), threads, in...)[0]
				var b []float64
				if c.bias {
					b = mmF64(in[2])
				}
				// Expected shape from the ONNX formula, independently of the kernel.
				r, strides, dil, pb, _ := c.geom()
				shape := []int{c.x[0], c.w[1] * group}
				pads := c.refPads
				if pads == nil {
					pads = c.pads
				}
				for d := 0; d < r; d++ {
					pe, op := 0, 0
					if pads != nil {
						pe = pads[r+d]
					}
					if c.outPad != nil {
						op = c.outPad[d]
					}
					shape = append(shape, strides[d]*(c.x[2+d]-1)+op+(c.w[2+d]-1)*dil[d]+1-pb[d]-pe)
				}
				want := refConvTranspose(c, mmF64(in[0]), mmF64(in[1]), b, shape)
				mmClose(t, "Y", y, want, shape, convAtol32, convRtol32)
			})
		}
	}
}

func convGradNode(c convCase, outs ...string) *graph.Node {
	n := c.node("ConvGrad")
	n.Domain = graph.DomainGotrain
	n.Outputs = outs
	return n
}

func TestConvGradMatchesReference(t *testing.T) { eachGEMM(t, checkConvGradMatchesReference) }

func checkConvGradMatchesReference(t *testing.T) {
	for _, threads := range []int{1, 2, 3} {
		for _, c := range convCases {
			t.Run(fmt.Sprintf("%s/threads%d", c.name, threads), func(t *testing.T) {
				rng := rand.New(rand.NewSource(3))
				x, w := mmRandT(rng, tensor.Float32, c.x...), mmRandT(rng, tensor.Float32, c.w...)
				yShape := mmRunNode(t, c.node("Conv"), 1, x, w)[0].Shape()
				dy := mmRandT(rng, tensor.Float32, yShape...)
				out := mmRunNode(t, convGradNode(c, "dx", "dw", "db"), threads, dy, x, w)
				dx, dw, db := refConvGrad(c, mmF64(dy), mmF64(x), mmF64(w), yShape)
				// dW and dB sum over the batch and spatial positions (up to a few
				// hundred terms), so their float32 error is larger than Y's.
				mmClose(t, "dX", out[0], dx, c.x, convAtol32, convRtol32)
				mmClose(t, "dW", out[1], dw, c.w, 1e-3, 1e-4)
				mmClose(t, "dB", out[2], db, []int{c.w[0]}, 1e-3, 1e-4)
			})
		}
	}
}

// Outputs not asked for are not written, and the others do not depend on
// which are asked for.
func TestConvGradOptionalOutputs(t *testing.T) {
	c := convCases[1]
	rng := rand.New(rand.NewSource(4))
	x, w := mmRandT(rng, tensor.Float32, c.x...), mmRandT(rng, tensor.Float32, c.w...)
	yShape := mmRunNode(t, c.node("Conv"), 1, x, w)[0].Shape()
	dy := mmRandT(rng, tensor.Float32, yShape...)
	all := mmRunNode(t, convGradNode(c, "dx", "dw", "db"), 2, dy, x, w)
	for _, outs := range [][]string{{"dx", "", ""}, {"", "dw", ""}, {"", "", "db"}, {"", "dw", "db"}, {"dx"}} {
		got := mmRunNode(t, convGradNode(c, outs...), 2, dy, x, w)
		for i, o := range outs {
			if o == "" {
				if got[i] != nil {
					t.Fatalf("outputs %q: output %d was allocated", outs, i)
				}
				continue
			}
			mmClose(t, fmt.Sprintf("outputs %q: output %d", outs, i), got[i], mmF64(all[i]), all[i].Shape(), 0, 0)
		}
	}
}

// Central finite differences of L = sum(Conv(X, W, B) * R) in float64
// against ConvGrad(R, X, W). Conv is linear in X and in W, so central
// differences are exact up to rounding: with h = 1e-3 and |L| ~ 10, the
// rounding error is about 1e-16*10/1e-3 = 1e-12; 1e-8 leaves a margin.
func TestConvGradFiniteDifferences(t *testing.T) {
	for _, c := range convCases {
		if tensor.NumElements(c.x) > 400 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(5))
			x, w := mmRandT(rng, tensor.Float64, c.x...), mmRandT(rng, tensor.Float64, c.w...)
			b := mmRandT(rng, tensor.Float64, c.w[0])
			conv := c.node("Conv")
			y := mmRunNode(t, conv, 2, x, w, b)[0]
			r := mmRandT(rng, tensor.Float64, y.Shape()...)
			loss := func() float64 {
				y := mmRunNode(t, conv, 2, x, w, b)[0].Float64s()
				s := 0.0
				for i, v := range y {
					s += v * r.Float64s()[i]
				}
				return s
			}
			g := mmRunNode(t, convGradNode(c, "dx", "dw", "db"), 2, r, x, w)
			const h = 1e-3
			for k, p := range []*tensor.Tensor{x, w, b} {
				d := p.Float64s()
				for i := range d {
					v := d[i]
					d[i] = v + h
					lp := loss()
					d[i] = v - h
					lm := loss()
					d[i] = v
					fd := (lp - lm) / (2 * h)
					if got := g[k].Float64s()[i]; math.Abs(got-fd) > 1e-8 {
						t.Fatalf("input %d element %d: ConvGrad %g, finite difference %g", k, i, got, fd)
					}
				}
			}
		})
	}
}

func TestConvRejectsBadShapes(t *testing.T) {
	cases := []struct {
		name string
		c    convCase
	}{
		{"channels", convCase{x: []int{1, 3, 5, 5}, w: []int{2, 2, 3, 3}}},
		{"group", convCase{x: []int{1, 4, 5, 5}, w: []int{3, 2, 3, 3}, group: 2}},
		{"kernel_too_big", convCase{x: []int{1, 1, 2, 2}, w: []int{1, 1, 3, 3}}},
		{"strides_len", convCase{x: []int{1, 1, 5, 5}, w: []int{1, 1, 3, 3}, strides: []int{1}}},
		{"rank", convCase{x: []int{1, 1, 5, 5}, w: []int{1, 1, 3}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.c.node("Conv")
			n.Inputs = []string{"x", "w"}
			types := []*graph.Type{graph.NewType(tensor.Float32, graph.ShapeOf(tc.c.x...)), graph.NewType(tensor.Float32, graph.ShapeOf(tc.c.w...))}
			if _, err := graph.Lookup("", "Conv").Infer(n, types, 17); err == nil {
				t.Fatalf("inference accepted X %v W %v", tc.c.x, tc.c.w)
			}
		})
	}
}

// Symbolic batch dims survive inference; unknown spatial dims become unknown.
func TestConvInferSymbolic(t *testing.T) {
	n := convCases[0].node("Conv")
	x := graph.NewType(tensor.Float32, graph.Shape{graph.Sym("N"), graph.D(3), graph.Unknown, graph.D(6)})
	w := graph.NewType(tensor.Float32, graph.ShapeOf(4, 3, 3, 3))
	out, err := graph.Lookup("", "Conv").Infer(n, []*graph.Type{x, w}, 17)
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Shape.String(); got != "[N,4,?,4]" {
		t.Fatalf("shape %s, want [N,4,?,4]", got)
	}
}
