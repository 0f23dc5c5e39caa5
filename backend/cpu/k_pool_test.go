package cpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// pnNode builds a node of op with inputs named in0.. and nOut outputs.
func pnNode(domain, op string, nIn, nOut int, attrs ...*graph.Attribute) *graph.Node {
	n := &graph.Node{Name: "t_" + op, OpType: op, Domain: domain, Attrs: map[string]*graph.Attribute{}}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, fmt.Sprintf("in%d", i))
	}
	for i := 0; i < nOut; i++ {
		n.Outputs = append(n.Outputs, fmt.Sprintf("out%d", i))
	}
	for _, a := range attrs {
		n.SetAttr(a)
	}
	return n
}

// pnRun infers, prepares and runs one node the way the executor does: the
// schema types the outputs, the factory prepares, the kernel fills freshly
// allocated outputs (pre-filled with NaN-like garbage where possible, so a
// kernel that leaves an element unwritten is caught).
func pnRun(n *graph.Node, opset int64, pool *Pool, in ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	s := graph.Lookup(n.Domain, n.OpType)
	if s == nil {
		return nil, fmt.Errorf("no schema for %s", n.OpType)
	}
	types := make([]*graph.Type, len(in))
	for i, t := range in {
		if t != nil {
			ty := graph.TypeOf(t)
			ty.Value = nil // as for a run-time feed
			types[i] = ty
		}
	}
	outT, err := s.Infer(n, types, opset)
	if err != nil {
		return nil, err
	}
	info, ok := kernels[kkey(n.Domain, n.OpType)]
	if !ok {
		return nil, fmt.Errorf("no kernel for %s", n.OpType)
	}
	outT = outT[:len(n.Outputs)]
	k, err := info.factory(&Prep{Node: n, In: types, Out: outT, Opset: opset, Pool: pool})
	if err != nil {
		return nil, err
	}
	out := make([]*tensor.Tensor, len(n.Outputs))
	for i, o := range n.Outputs {
		if o == "" {
			continue
		}
		shape, ok := outT[i].Concrete()
		if !ok {
			return nil, fmt.Errorf("output %d has no concrete shape: %v", i, outT[i])
		}
		out[i] = tensor.New(outT[i].DType, shape...)
		pnPoison(out[i])
	}
	if err := k(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func pnPoison(t *tensor.Tensor) {
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = float32(math.NaN())
		}
	case []float64:
		for i := range d {
			d[i] = math.NaN()
		}
	case []int64:
		for i := range d {
			d[i] = math.MinInt64
		}
	}
}

func pnRand64(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float64, shape...)
	for i := range t.Float64s() {
		t.Float64s()[i] = r.NormFloat64()
	}
	return t
}

func pnTo32(t *tensor.Tensor) *tensor.Tensor {
	o := tensor.New(tensor.Float32, t.Shape()...)
	for i, v := range t.Float64s() {
		o.Float32s()[i] = float32(v)
	}
	return o
}

// ---- a direct reference of the ONNX pooling definitions ----

type pnPoolCfg struct {
	k, s, d, pads []int // pads: begins then ends
	autoPad       string
	ceil          bool
	includePad    bool
}

// pnRefOut is the output size of one dim, from ONNX's formulas.
func pnRefOut(c pnPoolCfg, i, in int) (out, padBegin int) {
	sp := len(c.k)
	span := (c.k[i]-1)*c.d[i] + 1
	switch c.autoPad {
	case "SAME_UPPER", "SAME_LOWER":
		out = int(math.Ceil(float64(in) / float64(c.s[i])))
		total := max(0, (out-1)*c.s[i]+span-in)
		if c.autoPad == "SAME_UPPER" {
			return out, total / 2
		}
		return out, (total + 1) / 2
	}
	pb, pe := c.pads[i], c.pads[sp+i]
	f := float64(in+pb+pe-span)/float64(c.s[i]) + 1
	if c.ceil {
		out = int(math.Ceil(f))
		if (out-1)*c.s[i] >= in+pb {
			out--
		}
	} else {
		out = int(math.Floor(f))
	}
	return out, pb
}

// pnRefPool computes MaxPool (with flat row-major indices) or AveragePool
// in float64 by visiting every window tap of every output.
func pnRefPool(x *tensor.Tensor, c pnPoolCfg, isMax bool) (*tensor.Tensor, []int64) {
	xs := x.Shape()
	sp := len(xs) - 2
	outShape := []int{xs[0], xs[1]}
	begins := make([]int, sp)
	for i := 0; i < sp; i++ {
		o, pb := pnRefOut(c, i, xs[2+i])
		outShape = append(outShape, o)
		begins[i] = pb
	}
	ends := make([]int, sp)
	for i := 0; i < sp; i++ {
		span := (c.k[i]-1)*c.d[i] + 1
		ends[i] = max(0, (outShape[2+i]-1)*c.s[i]+span-xs[2+i]-begins[i])
		if c.autoPad == "" {
			ends[i] = c.pads[sp+i]
		}
	}
	y := tensor.New(tensor.Float64, outShape...)
	ind := make([]int64, y.Len())
	xStr, yStr := tensor.Strides(xs), tensor.Strides(outShape)
	xd := x.Float64s()
	for oi := range y.Float64s() {
		pos := make([]int, len(outShape))
		rem := oi
		for d := range outShape {
			pos[d] = rem / yStr[d]
			rem %= yStr[d]
		}
		best, bi := math.Inf(-1), int64(-1)
		sum, cnt, padCnt := 0.0, 0, 0
		taps := 1
		for _, k := range c.k {
			taps *= k
		}
		for t := 0; t < taps; t++ {
			tr := t
			flat := pos[0]*xStr[0] + pos[1]*xStr[1]
			in, inPad := true, true
			for i := sp - 1; i >= 0; i-- {
				kk := tr % c.k[i]
				tr /= c.k[i]
				p := pos[2+i]*c.s[i] - begins[i] + kk*c.d[i]
				if p < 0 || p >= xs[2+i] {
					in = false
				}
				if p < -begins[i] || p >= xs[2+i]+ends[i] {
					inPad = false
				}
				flat += p * xStr[2+i]
			}
			if inPad {
				padCnt++
			}
			if !in {
				continue
			}
			v := xd[flat]
			cnt++
			sum += v
			if bi < 0 || v > best {
				best, bi = v, int64(flat)
			}
		}
		if isMax {
			y.Float64s()[oi] = best
			ind[oi] = bi
		} else if c.includePad {
			y.Float64s()[oi] = sum / float64(padCnt)
		} else {
			y.Float64s()[oi] = sum / float64(cnt)
		}
	}
	return y, ind
}

func (c pnPoolCfg) attrs() []*graph.Attribute {
	toI := func(v []int) []int64 {
		o := make([]int64, len(v))
		for i, x := range v {
			o[i] = int64(x)
		}
		return o
	}
	a := []*graph.Attribute{graph.AInts("kernel_shape", toI(c.k)...), graph.AInts("strides", toI(c.s)...),
		graph.AInts("dilations", toI(c.d)...)}
	if c.autoPad != "" {
		a = append(a, graph.AString("auto_pad", c.autoPad))
	} else {
		a = append(a, graph.AInts("pads", toI(c.pads)...))
	}
	if c.ceil {
		a = append(a, graph.AInt("ceil_mode", 1))
	}
	if c.includePad {
		a = append(a, graph.AInt("count_include_pad", 1))
	}
	return a
}

var pnPoolCases = []struct {
	name  string
	shape []int
	cfg   pnPoolCfg
}{
	{"1d", []int{2, 3, 11}, pnPoolCfg{k: []int{3}, s: []int{2}, d: []int{1}, pads: []int{1, 0}}},
	{"1d_dil_ceil", []int{1, 2, 12}, pnPoolCfg{k: []int{3}, s: []int{2}, d: []int{2}, pads: []int{2, 1}, ceil: true}},
	{"2d_2x2s2", []int{3, 4, 8, 8}, pnPoolCfg{k: []int{2, 2}, s: []int{2, 2}, d: []int{1, 1}, pads: []int{0, 0, 0, 0}}},
	{"2d_2x2s2_odd", []int{2, 5, 13, 13}, pnPoolCfg{k: []int{2, 2}, s: []int{2, 2}, d: []int{1, 1}, pads: []int{0, 0, 0, 0}}},
	{"2d_2x2s2_odd_ceil", []int{2, 2, 7, 5}, pnPoolCfg{k: []int{2, 2}, s: []int{2, 2}, d: []int{1, 1}, pads: []int{0, 0, 0, 0}, ceil: true}},
	{"2d_pads_incl", []int{1, 2, 6, 7}, pnPoolCfg{k: []int{3, 3}, s: []int{2, 1}, d: []int{1, 1}, pads: []int{1, 2, 2, 1}, includePad: true}},
	{"2d_same_upper", []int{2, 1, 7, 6}, pnPoolCfg{k: []int{3, 2}, s: []int{2, 2}, d: []int{1, 1}, autoPad: "SAME_UPPER"}},
	{"2d_same_lower", []int{2, 1, 7, 6}, pnPoolCfg{k: []int{3, 2}, s: []int{2, 3}, d: []int{1, 1}, autoPad: "SAME_LOWER"}},
	{"2d_dil_pad_ceil_incl", []int{1, 3, 9, 10}, pnPoolCfg{k: []int{3, 2}, s: []int{2, 3}, d: []int{2, 3}, pads: []int{1, 1, 2, 0}, ceil: true, includePad: true}},
	{"3d", []int{2, 2, 5, 6, 4}, pnPoolCfg{k: []int{2, 3, 2}, s: []int{1, 2, 2}, d: []int{1, 1, 2}, pads: []int{0, 1, 1, 1, 0, 1}}},
	{"3d_ceil_incl", []int{1, 1, 7, 7, 7}, pnPoolCfg{k: []int{3, 3, 3}, s: []int{3, 3, 3}, d: []int{1, 1, 1}, pads: []int{1, 1, 1, 1, 1, 1}, ceil: true, includePad: true}},
}

// TestPoolForward compares MaxPool (values and indices) and AveragePool with
// the direct reference, in float64 (exact up to summation order: 1e-12) and
// float32 (rounding of the input and of a window sum: 1e-5 relative).
func TestPoolForward(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, tc := range pnPoolCases {
		x := pnRand64(r, tc.shape...)
		for _, isMax := range []bool{true, false} {
			op := "AveragePool"
			nOut := 1
			if isMax {
				op, nOut = "MaxPool", 2
			}
			want, wantInd := pnRefPool(x, tc.cfg, isMax)
			for _, dt := range []tensor.DType{tensor.Float64, tensor.Float32} {
				t.Run(fmt.Sprintf("%s/%s/%v", op, tc.name, dt), func(t *testing.T) {
					in, tol := x, 1e-12
					if dt == tensor.Float32 {
						in, tol = pnTo32(x), 1e-5
					}
					out, err := pnRun(pnNode("", op, 1, nOut, tc.cfg.attrs()...), 22, pool, in)
					if err != nil {
						t.Fatal(err)
					}
					if !tensor.SameShape(out[0].Shape(), want.Shape()) {
						t.Fatalf("shape %v, want %v", out[0].Shape(), want.Shape())
					}
					for i, w := range want.Float64s() {
						if g := out[0].AsFloat64(i); math.Abs(g-w) > tol*(1+math.Abs(w)) {
							t.Fatalf("element %d: got %g, want %g", i, g, w)
						}
					}
					if isMax {
						for i, w := range wantInd {
							if g := out[1].Int64s()[i]; g != w {
								t.Fatalf("index %d: got %d, want %d", i, g, w)
							}
						}
					}
				})
			}
		}
	}
}

// TestMaxPoolTiesAndStorageOrder checks that ties resolve to the first tap
// in row-major order (on the 2x2 fast path and the general one) and that
// storage_order 1 numbers positions column-major within a plane.
func TestMaxPoolTiesAndStorageOrder(t *testing.T) {
	pool := NewPool(1)
	x := tensor.New(tensor.Float32, 1, 2, 4, 4) // all zero: every tap ties
	for _, tc := range []struct {
		name  string
		attrs []*graph.Attribute
		want  []int64
	}{
		{"fast_2x2", []*graph.Attribute{graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2)},
			[]int64{0, 2, 8, 10, 16, 18, 24, 26}},
		{"general_3x3", []*graph.Attribute{graph.AInts("kernel_shape", 3, 3), graph.AInts("strides", 1, 1)},
			[]int64{0, 1, 4, 5, 16, 17, 20, 21}},
		{"col_major", []*graph.Attribute{graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2),
			graph.AInt("storage_order", 1)}, []int64{0, 8, 2, 10, 16, 24, 18, 26}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := pnRun(pnNode("", "MaxPool", 1, 2, tc.attrs...), 12, pool, x)
			if err != nil {
				t.Fatal(err)
			}
			if got := out[1].Int64s(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("indices %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMaxPoolInts checks int8 and uint8 MaxPool against the float64
// reference (exact: max selects an input value).
func TestMaxPoolInts(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(3, 4))
	cfg := pnPoolCfg{k: []int{3, 3}, s: []int{2, 2}, d: []int{1, 1}, pads: []int{1, 1, 1, 1}}
	x64 := tensor.New(tensor.Float64, 2, 3, 7, 7)
	i8 := make([]int8, x64.Len())
	u8 := make([]uint8, x64.Len())
	for i := range i8 {
		v := r.IntN(256) - 128
		i8[i] = int8(v)
		x64.Float64s()[i] = float64(v)
	}
	want, _ := pnRefPool(x64, cfg, true)
	out, err := pnRun(pnNode("", "MaxPool", 1, 1, cfg.attrs()...), 12, pool, tensor.MustFromSlice(i8, 2, 3, 7, 7))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want.Float64s() {
		if g := out[0].AsFloat64(i); g != w {
			t.Fatalf("int8 element %d: got %g, want %g", i, g, w)
		}
	}
	for i := range u8 {
		u8[i] = uint8(r.IntN(256))
		x64.Float64s()[i] = float64(u8[i])
	}
	want, _ = pnRefPool(x64, cfg, true)
	out, err = pnRun(pnNode("", "MaxPool", 1, 1, cfg.attrs()...), 12, pool, tensor.MustFromSlice(u8, 2, 3, 7, 7))
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want.Float64s() {
		if g := out[0].AsFloat64(i); g != w {
			t.Fatalf("uint8 element %d: got %g, want %g", i, g, w)
		}
	}
}

// TestGlobalPools compares the global pools with sums and maxima computed
// here (float64: 1e-12 relative).
func TestGlobalPools(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(5, 6))
	x := pnRand64(r, 3, 4, 5, 6)
	for _, op := range []string{"GlobalAveragePool", "GlobalMaxPool"} {
		out, err := pnRun(pnNode("", op, 1, 1), 22, pool, x)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(out[0].Shape()) != "[3 4 1 1]" {
			t.Fatalf("%s: shape %v", op, out[0].Shape())
		}
		for pl := 0; pl < 12; pl++ {
			sum, best := 0.0, math.Inf(-1)
			for _, v := range x.Float64s()[pl*30 : (pl+1)*30] {
				sum += v
				best = math.Max(best, v)
			}
			want := sum / 30
			if op == "GlobalMaxPool" {
				want = best
			}
			if g := out[0].Float64s()[pl]; math.Abs(g-want) > 1e-12*(1+math.Abs(want)) {
				t.Fatalf("%s plane %d: got %g, want %g", op, pl, g, want)
			}
		}
	}
}

// pnCheckGrad compares an analytic gradient with central differences of
// f(x) = sum(forward(x) * w), all in float64. A step of 1e-6 keeps both the
// truncation error (zero for the piecewise-linear pools, O(h^2) otherwise)
// and the rounding error (~1e-16/1e-6 relative) near 1e-9; 1e-6 relative
// tolerance leaves a wide margin.
func pnCheckGrad(t *testing.T, name string, x *tensor.Tensor, w []float64, forward func(x *tensor.Tensor) []float64, grad []float64) {
	t.Helper()
	const h = 1e-6
	xd := x.Float64s()
	for i := range xd {
		orig := xd[i]
		xd[i] = orig + h
		fp := pnDot(forward(x), w)
		xd[i] = orig - h
		fm := pnDot(forward(x), w)
		xd[i] = orig
		num := (fp - fm) / (2 * h)
		if math.Abs(num-grad[i]) > 1e-6*(1+math.Abs(num)) {
			t.Fatalf("%s: d/dx[%d]: analytic %.10g, numeric %.10g", name, i, grad[i], num)
		}
	}
}

func pnDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// TestPoolGrads checks MaxPoolGrad and AveragePoolGrad against central
// differences of the forward ops on every reference configuration.
func TestPoolGrads(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(7, 8))
	for _, tc := range pnPoolCases {
		x := pnRand64(r, tc.shape...)
		for _, op := range []string{"MaxPool", "AveragePool"} {
			t.Run(op+"/"+tc.name, func(t *testing.T) {
				nOut := 1
				if op == "MaxPool" {
					nOut = 2
				}
				fwdNode := pnNode("", op, 1, nOut, tc.cfg.attrs()...)
				fwd, err := pnRun(fwdNode, 22, pool, x)
				if err != nil {
					t.Fatal(err)
				}
				dy := pnRand64(r, fwd[0].Shape()...)
				var dx []*tensor.Tensor
				if op == "MaxPool" {
					dx, err = pnRun(pnNode(graph.DomainGotrain, "MaxPoolGrad", 3, 1), 1, pool, dy, fwd[1], x)
				} else {
					dx, err = pnRun(pnNode(graph.DomainGotrain, "AveragePoolGrad", 2, 1, tc.cfg.attrs()...), 1, pool, dy, x)
				}
				if err != nil {
					t.Fatal(err)
				}
				pnCheckGrad(t, op, x, dy.Float64s(), func(x *tensor.Tensor) []float64 {
					o, err := pnRun(fwdNode, 22, pool, x)
					if err != nil {
						t.Fatal(err)
					}
					return o[0].Float64s()
				}, dx[0].Float64s())
			})
		}
	}
}

// TestPoolErrors checks that bad attributes and indices give errors naming
// the node rather than panics.
func TestPoolErrors(t *testing.T) {
	pool := NewPool(1)
	x := tensor.New(tensor.Float32, 1, 1, 4, 4)
	for _, tc := range []struct {
		name  string
		node  *graph.Node
		in    []*tensor.Tensor
		match string
	}{
		{"no_kernel", pnNode("", "MaxPool", 1, 1), []*tensor.Tensor{x}, "kernel_shape is required"},
		{"kernel_rank", pnNode("", "AveragePool", 1, 1, graph.AInts("kernel_shape", 2)), []*tensor.Tensor{x}, "spatial dims"},
		{"too_big", pnNode("", "MaxPool", 1, 1, graph.AInts("kernel_shape", 5, 5)), []*tensor.Tensor{x}, "does not fit"},
		{"auto_pad", pnNode("", "MaxPool", 1, 1, graph.AInts("kernel_shape", 2, 2), graph.AString("auto_pad", "FULL")), []*tensor.Tensor{x}, "auto_pad"},
		{"rank2", pnNode("", "MaxPool", 1, 1, graph.AInts("kernel_shape", 2)), []*tensor.Tensor{tensor.New(tensor.Float32, 4, 4)}, "rank >= 3"},
		{"grad_index", pnNode(graph.DomainGotrain, "MaxPoolGrad", 3, 1), []*tensor.Tensor{
			tensor.New(tensor.Float32, 1, 2, 1, 1), tensor.MustFromSlice([]int64{3, 2}, 1, 2, 1, 1), tensor.New(tensor.Float32, 1, 2, 2, 2)},
			"outside its plane"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pnRun(tc.node, 22, pool, tc.in...)
			if err == nil || !strings.Contains(err.Error(), tc.match) {
				t.Fatalf("error %v, want one containing %q", err, tc.match)
			}
			var ne *graph.NodeError
			if !errors.As(err, &ne) {
				t.Fatalf("error %v does not name the node", err)
			}
		})
	}
}

// BenchmarkMaxPool2x2 times the seed CNN's pooling layers (batch 32) with
// the Indices output that training needs.
func BenchmarkMaxPool2x2(b *testing.B) {
	pool := NewPool(0)
	defer pool.Close()
	for _, shape := range [][]int{{32, 32, 30, 30}, {32, 64, 13, 13}} {
		b.Run(fmt.Sprint(shape), func(b *testing.B) {
			x := pnTo32(pnRand64(rand.New(rand.NewPCG(1, 1)), shape...))
			n := pnNode("", "MaxPool", 1, 2, graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2))
			types := []*graph.Type{graph.NewType(tensor.Float32, graph.ShapeOf(shape...))}
			outT, err := graph.Lookup("", "MaxPool").Infer(n, types, 22)
			if err != nil {
				b.Fatal(err)
			}
			k, err := poolMaxFactory(&Prep{Node: n, In: types, Out: outT, Opset: 22, Pool: pool})
			if err != nil {
				b.Fatal(err)
			}
			ys, _ := outT[0].Concrete()
			out := []*tensor.Tensor{tensor.New(tensor.Float32, ys...), tensor.New(tensor.Int64, ys...)}
			in := []*tensor.Tensor{x}
			b.SetBytes(int64(x.Len() * 4))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := k(in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestPoolNormInfer checks the schemas' shape inference with a symbolic
// batch dim and unknown spatial dims: known dims are computed, the batch
// name carries through, and what cannot be known is left unknown.
func TestPoolNormInfer(t *testing.T) {
	N, U := graph.Sym("N"), graph.Unknown
	f32 := func(dims ...graph.Dim) *graph.Type { return graph.NewType(tensor.Float32, dims) }
	for _, tc := range []struct {
		name  string
		node  *graph.Node
		in    []*graph.Type
		opset int64
		want  []string
	}{
		{"maxpool", pnNode("", "MaxPool", 1, 2, graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2)),
			[]*graph.Type{f32(N, graph.D(32), graph.D(30), U)}, 22, []string{"float32[N,32,15,?]", "int64[N,32,15,?]"}},
		{"avgpool_same", pnNode("", "AveragePool", 1, 1, graph.AInts("kernel_shape", 3), graph.AString("auto_pad", "SAME_UPPER"), graph.AInts("strides", 2)),
			[]*graph.Type{f32(N, graph.D(3), graph.D(7))}, 19, []string{"float32[N,3,4]"}},
		{"global", pnNode("", "GlobalAveragePool", 1, 1), []*graph.Type{f32(N, graph.D(64), U, U)}, 22, []string{"float32[N,64,1,1]"}},
		{"layernorm", pnNode("", "LayerNormalization", 2, 3, graph.AInt("axis", -2)), []*graph.Type{f32(N, graph.D(5), graph.D(8)), f32(graph.D(5), graph.D(8))},
			17, []string{"float32[N,5,8]", "float32[N,1,1]", "float32[N,1,1]"}},
		{"bn_train", pnNode(graph.DomainGotrain, "BatchNormTrain", 5, 5), []*graph.Type{f32(N, graph.D(4), U), f32(graph.D(4)), f32(graph.D(4)), f32(graph.D(4)), f32(graph.D(4))},
			1, []string{"float32[N,4,?]", "float32[4]", "float32[4]", "float32[4]", "float32[4]"}},
		{"dropout_train", pnNode(graph.DomainGotrain, "DropoutTrain", 4, 2), []*graph.Type{f32(N, graph.D(10)), f32(),
			graph.NewType(tensor.Int64, nil), graph.NewType(tensor.Int64, nil)}, 1, []string{"float32[N,10]", "bool[N,10]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := graph.Lookup(tc.node.Domain, tc.node.OpType).Infer(tc.node, tc.in, tc.opset)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				if g := out[i].String(); g != w {
					t.Fatalf("output %d: %s, want %s", i, g, w)
				}
			}
		})
	}
}
