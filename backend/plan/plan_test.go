package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// hostHooks is a backend for the planner's tests: every op with a schema
// is supported, a step's "kernel" is its op type, and Fold adds float32s
// (the only op these tests fold).
func hostHooks() Hooks {
	return Hooks{
		Backend:  "test",
		Supports: func(n *graph.Node) bool { return graph.Lookup(n.Domain, n.OpType) != nil },
		Prepare:  func(s *Step) (any, error) { return s.Node.OpType, nil },
		Fold: func(s *Step, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			if s.Node.OpType != "Add" {
				return nil, errors.New("test backend folds only Add")
			}
			a, b := in[0].Float32s(), in[1].Float32s()
			out := tensor.New(tensor.Float32, in[0].Shape()...)
			for i := range a {
				out.Float32s()[i] = a[i] + b[i]
			}
			return []*tensor.Tensor{out}, nil
		},
	}
}

func mustModel(t testing.TB, b *graph.Builder) *graph.Model {
	t.Helper()
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustPlan(t testing.TB, m *graph.Model, h Hooks, o Options) (*Planner, *Plan) {
	t.Helper()
	p, err := New(m, h, o)
	if err != nil {
		t.Fatal(err)
	}
	shapes, ok := p.StaticShapes(nil)
	if !ok {
		t.Fatal("input shapes are not all known")
	}
	pl, err := p.Plan(shapes, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p, pl
}

func valueNamed(t *testing.T, pl *Plan, name string) Value {
	t.Helper()
	for _, v := range pl.Values {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no value %q in the plan", name)
	return Value{}
}

// TestStorageReuse checks liveness-based reuse on a chain of three ReLUs:
// the second output cannot take the first's block (the first is read by
// the step that writes it) and the third can; the graph's output is never
// released.
func TestStorageReuse(t *testing.T) {
	b := graph.NewBuilder("chain", 17)
	x := b.Input("x", tensor.Float32, graph.D(2), graph.D(3))
	r1 := b.Op("Relu", x).Out()
	r2 := b.Op("Relu", r1).Out()
	r3 := b.Op("Relu", r2).Out()
	r4 := b.Op("Relu", r3).Out()
	b.Output(r4)
	_, pl := mustPlan(t, mustModel(t, b), hostHooks(), Options{})
	v1, v2, v3, v4 := valueNamed(t, pl, r1), valueNamed(t, pl, r2), valueNamed(t, pl, r3), valueNamed(t, pl, r4)
	if v1.Block == v2.Block || v2.Block == v3.Block || v3.Block == v4.Block {
		t.Errorf("a step's output shares its input's block: blocks %d %d %d %d", v1.Block, v2.Block, v3.Block, v4.Block)
	}
	if v3.Block != v1.Block || v4.Block != v2.Block {
		t.Errorf("blocks %d %d %d %d, want dead blocks reused (0 1 0 1)", v1.Block, v2.Block, v3.Block, v4.Block)
	}
	if len(pl.Blocks) != 2 {
		t.Errorf("%d blocks, want 2", len(pl.Blocks))
	}
	for _, blk := range pl.Blocks {
		if blk.DType != tensor.Float32 || blk.Size != 6 {
			t.Errorf("block %+v, want 6 float32 elements", blk)
		}
	}
	if got := valueNamed(t, pl, x); got.Kind != Feed || got.Block != -1 {
		t.Errorf("input: kind %v block %d, want a feed without a block", got.Kind, got.Block)
	}
	if k := pl.Steps[0].Kernel; k != "Relu" {
		t.Errorf("step 0's kernel is %v, want what Prepare returned", k)
	}
}

// TestViewsShareRootStorage checks that a chain of views aliases the
// value at its root (not the previous view), shares its block, and keeps
// it alive until the last view's reader.
func TestViewsShareRootStorage(t *testing.T) {
	b := graph.NewBuilder("views", 17)
	x := b.Input("x", tensor.Float32, graph.D(2), graph.D(3))
	r := b.Op("Relu", x).Out()
	v1 := b.Op("Identity", r).Out()
	v2 := b.Op("Reshape", v1, b.Param("shape", tensor.MustFromSlice([]int64{3, 2}, 2))).Out()
	v3 := b.Op("Flatten", v2).Out()
	y := b.Op("Relu", v3).Out()
	y2 := b.Op("Relu", y).Out()
	b.Output(y2)
	_, pl := mustPlan(t, mustModel(t, b), hostHooks(), Options{})
	root := valueNamed(t, pl, r)
	for _, name := range []string{v1, v2, v3} {
		v := valueNamed(t, pl, name)
		if pl.Values[v.Alias].Name != r || v.Block != root.Block {
			t.Errorf("view %s: alias %d block %d, want the root %s (block %d)", name, v.Alias, v.Block, r, root.Block)
		}
	}
	if valueNamed(t, pl, y).Block == root.Block {
		t.Error("the reader of the last view took the views' block while reading it")
	}
	if valueNamed(t, pl, y2).Block != root.Block {
		t.Error("the root's block was not reused after the last view's reader")
	}
	for _, st := range pl.Steps {
		if IsView(st.Node) != st.View || (st.View && st.Kernel != nil) {
			t.Errorf("%s: View %v, kernel %v", st.Node, st.View, st.Kernel)
		}
	}
}

// TestInPlace checks that an in-place output is bound to its feed and that
// its writer runs after the input's other readers, even when the file
// lists it first.
func TestInPlace(t *testing.T) {
	b := graph.NewBuilder("update", 17)
	w := b.Input("w", tensor.Float32, graph.D(4))
	g := b.Input("g", tensor.Float32, graph.D(4))
	wNew := b.Op("Sub", w, g).Out()
	norm := b.Op("Mul", w, w).Out()
	b.Output(wNew, norm)
	p, pl := mustPlan(t, mustModel(t, b), hostHooks(), Options{InPlace: map[string]string{wNew: w}})
	if v := valueNamed(t, pl, wNew); pl.Values[v.Bind].Name != w || v.Block != -1 {
		t.Errorf("in-place output: bind %d block %d, want the feed %q and no block", v.Bind, v.Block, w)
	}
	if ord := p.Order(); ord[0].OpType != "Mul" || ord[1].OpType != "Sub" {
		t.Errorf("order %v %v: the writer of %q must follow its other reader", ord[0], ord[1], w)
	}
	// A writer that must also precede a reader cannot be ordered.
	b = graph.NewBuilder("cycle", 17)
	w = b.Input("w", tensor.Float32, graph.D(4))
	wNew = b.Op("Neg", w).Out()
	after := b.Op("Add", w, wNew).Out()
	b.Output(wNew, after)
	if _, err := New(mustModel(t, b), hostHooks(), Options{InPlace: map[string]string{wNew: w}}); err == nil || !strings.Contains(err.Error(), "cannot be ordered") {
		t.Errorf("impossible in-place order: err %v", err)
	}
	if _, err := New(mustModel(t, b), hostHooks(), Options{InPlace: map[string]string{wNew: "nope"}}); err == nil || !strings.Contains(err.Error(), `"nope" is not a graph input`) {
		t.Errorf("in-place over a non-input: err %v", err)
	}
}

// TestUntypedStorage checks device-style storage: blocks in bytes,
// aligned, shared by values of different dtypes.
func TestUntypedStorage(t *testing.T) {
	b := graph.NewBuilder("mixed", 17)
	x := b.Input("x", tensor.Float32, graph.D(10))
	a := b.Op("Relu", x).Out()
	c := b.Op("Cast", a).With(graph.AInt("to", int64(tensor.Int64))).Out()
	d := b.Op("Cast", c).With(graph.AInt("to", int64(tensor.Float32))).Out()
	e := b.Op("Cast", d).With(graph.AInt("to", int64(tensor.Int32))).Out()
	b.Output(e)
	h := hostHooks()
	h.Storage = Storage{Untyped: true, Align: 64}
	_, pl := mustPlan(t, mustModel(t, b), h, Options{})
	va, vd := valueNamed(t, pl, a), valueNamed(t, pl, d)
	if va.Block != vd.Block {
		t.Errorf("float32 values %s and %s: blocks %d and %d, want the dead one reused", a, d, va.Block, vd.Block)
	}
	if ve := valueNamed(t, pl, e); ve.Block != valueNamed(t, pl, c).Block {
		t.Errorf("int32 %s did not reuse the int64 block of %s", e, c)
	}
	for _, blk := range pl.Blocks {
		if blk.DType != tensor.Invalid || blk.Size%64 != 0 {
			t.Errorf("block %+v: want untyped and a multiple of 64 bytes", blk)
		}
	}
	if got := pl.Blocks[valueNamed(t, pl, c).Block].Size; got != 128 {
		t.Errorf("10 int64s take a %d-byte block, want 128", got)
	}
}

// TestConstantsAndDynamicSteps checks folding through the Fold hook (and
// running instead when a backend has none), values inference knows, and a
// step whose output shape depends on its inputs' values.
func TestConstantsAndDynamicSteps(t *testing.T) {
	b := graph.NewBuilder("consts", 17)
	x := b.Input("x", tensor.Float32, graph.D(2))
	lim := b.Input("limit", tensor.Float32)
	c := b.Op("Add", b.Param("c1", tensor.MustFromSlice([]float32{1, 2}, 2)), b.Param("c2", tensor.MustFromSlice([]float32{10, 20}, 2))).Out()
	sh := b.Op("Shape", x).Out()
	y := b.Op("Mul", x, c).Out()
	r := b.Op("Range", b.Param("start", tensor.Scalar(float32(0))), lim, b.Param("delta", tensor.Scalar(float32(1)))).Out()
	rv := b.Op("Identity", r).Out()
	b.Output(y, sh, rv)
	m := mustModel(t, b)
	p, pl := mustPlan(t, m, hostHooks(), Options{})
	if v := valueNamed(t, pl, c); v.Kind != Const || v.Const.Float32s()[1] != 22 {
		t.Errorf("Add of constants: kind %v, want a folded constant [11 22]", v.Kind)
	}
	if v := valueNamed(t, pl, sh); v.Kind != Const || v.Const.Int64s()[0] != 2 {
		t.Errorf("Shape of a known shape: kind %v, want the constant [2]", v.Kind)
	}
	var dyn []*Step
	for _, st := range pl.Steps {
		if st.Dynamic {
			dyn = append(dyn, st)
		}
	}
	if len(dyn) != 2 || dyn[0].Node.OpType != "Range" || !dyn[1].View {
		t.Fatalf("dynamic steps %v, want Range and the Identity view of it", dyn)
	}
	if v := valueNamed(t, pl, rv); v.Kind != Dynamic || v.Alias != -1 || v.Block != -1 {
		t.Errorf("view of a dynamic value: %+v, want dynamic with no planned storage", v)
	}
	_, outs, err := p.InferStep(dyn[0], []*tensor.Tensor{tensor.Scalar(float32(0)), tensor.Scalar(float32(5)), tensor.Scalar(float32(1))})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := outs[0].Concrete(); !ok || len(s) != 1 || s[0] != 5 {
		t.Errorf("Range(0, 5, 1) infers %v, want [5]", outs[0])
	}
	h := hostHooks()
	h.Fold = nil
	_, pl = mustPlan(t, m, h, Options{})
	if v := valueNamed(t, pl, c); v.Kind != Static {
		t.Errorf("without a Fold hook the Add of constants is %v, want a static step", v.Kind)
	}
}

// TestNoKernel checks the error for an op the backend lacks, and that
// conformance can tell it from an unsupported configuration.
func TestNoKernel(t *testing.T) {
	b := graph.NewBuilder("g", 17)
	x := b.Input("x", tensor.Float32, graph.D(2))
	b.Output(b.Op("Sigmoid", b.Op("Relu", x).Out()).Out())
	h := hostHooks()
	h.Supports = func(n *graph.Node) bool { return n.OpType != "Sigmoid" }
	_, err := New(mustModel(t, b), h, Options{})
	var uo *graph.UnsupportedOpError
	if !errors.As(err, &uo) || !IsNoKernel(uo) || !strings.Contains(err.Error(), "no test kernel for Sigmoid") {
		t.Fatalf("err %v, want no test kernel for Sigmoid", err)
	}
	if IsNoKernel(&graph.UnsupportedOpError{Node: uo.Node, Reason: "dtype int8"}) {
		t.Error("an unsupported configuration reads as a missing kernel")
	}
}

// TestFusions checks each fusion's rewrite and that kept values block it.
func TestFusions(t *testing.T) {
	build := func(indices bool) (*graph.Model, map[string]string) {
		b := graph.NewBuilder("net", 17)
		x := b.Input("x", tensor.Float32, graph.D(1), graph.D(1), graph.D(6), graph.D(6))
		conv := b.Op("Conv", x, b.Param("w", tensor.New(tensor.Float32, 2, 1, 3, 3))).Out()
		relu := b.Op("Relu", conv).Out()
		var pool *graph.NodeRef
		if indices {
			pool = b.OpN(graph.DomainONNX, "MaxPool", 2, relu)
		} else {
			pool = b.Op("MaxPool", relu)
		}
		pool.With(graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2))
		fc := b.Op("Gemm", b.Op("Flatten", pool.Out()).Out(), b.Param("fw", tensor.New(tensor.Float32, 3, 8))).With(graph.AInt("transB", 1)).Out()
		out := b.Op("Relu", fc).Out()
		b.Output(out)
		if indices {
			b.Output(pool.Outs()[1])
		}
		return mustModel(t, b), map[string]string{"conv": conv, "relu": relu, "pool": pool.Out(), "fc": fc, "out": out}
	}
	ops := func(p *Planner) string {
		var s []string
		for _, n := range p.Order() {
			s = append(s, n.OpType)
		}
		return strings.Join(s, " ")
	}
	h := hostHooks()
	h.Fusions = []Fusion{FuseConvRelu, FuseGemmRelu, FuseReluGradMask, FuseConvMaxPool}
	for _, tc := range []struct {
		name    string
		indices bool
		keep    func(v map[string]string) []string
		want    string
	}{
		{"all", false, func(v map[string]string) []string { return []string{v["out"]} }, "Conv Flatten Gemm"},
		{"indices read", true, func(v map[string]string) []string { return nil }, "Conv MaxPool Flatten Gemm"},
		{"conv kept", false, func(v map[string]string) []string { return []string{v["out"], v["conv"]} }, "Conv Relu MaxPool Flatten Gemm"},
		{"relu kept", false, func(v map[string]string) []string { return []string{v["out"], v["relu"]} }, "Conv MaxPool Flatten Gemm"},
		{"gemm kept", false, func(v map[string]string) []string { return []string{v["out"], v["fc"]} }, "Conv Flatten Gemm Relu"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, v := build(tc.indices)
			p, pl := mustPlan(t, m, h, Options{Outputs: tc.keep(v)})
			if got := ops(p); got != tc.want {
				t.Errorf("nodes %q, want %q", got, tc.want)
			}
			if m.Graph.Nodes[0].Attr(AttrFusedActivation) != nil || len(m.Graph.Nodes) != 6 {
				t.Error("fusion changed the caller's graph")
			}
			if tc.name == "all" {
				conv := p.Order()[0]
				if conv.AttrString(AttrFusedActivation, "") != "Relu" || conv.AttrInt(AttrFusedMaxPool, 0) != 1 {
					t.Errorf("fused Conv has attributes %v", conv.Attrs)
				}
				if s, _ := pl.Steps[0].OutTypes[0].Concrete(); len(s) != 4 || s[2] != 2 || s[3] != 2 {
					t.Errorf("Conv+MaxPool output %v, want the pooled [1 2 2 2]", s)
				}
			}
		})
	}
}

// TestFuseConvPoolTrain checks the training fusion of Conv, MaxPool,
// MaxPoolGrad and ConvGrad: what it rewrites, the types it infers for the
// rewritten nodes, and that a kept activation, Indices or pooled gradient
// blocks it.
func TestFuseConvPoolTrain(t *testing.T) {
	b := graph.NewBuilder("net", 17)
	x := b.Input("x", tensor.Float32, graph.D(2), graph.D(1), graph.D(9), graph.D(9))
	conv := b.Op("Conv", x, b.Param("w", tensor.New(tensor.Float32, 2, 1, 3, 3))).Out()
	relu := b.Op("Relu", conv).Out()
	pool := b.Op("MaxPool", relu).With(graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2)).Out()
	b.Output(b.Op("Gemm", b.Op("Flatten", pool).Out(), b.Param("fw", tensor.New(tensor.Float32, 3, 18))).With(graph.AInt("transB", 1)).Out())
	tr, err := graph.TrainingGraph(mustModel(t, b), graph.TrainingOptions{Loss: graph.CrossEntropy})
	if err != nil {
		t.Fatal(err)
	}
	named := func(op string) *graph.Node {
		for _, n := range tr.Model.Graph.Nodes {
			if n.OpType == op {
				return n
			}
		}
		t.Fatalf("no %s in the training graph", op)
		return nil
	}
	ind, grad := named("MaxPool").Outputs[1], named("MaxPoolGrad").Outputs[0]
	h := hostHooks()
	h.Fusions = []Fusion{FuseConvRelu, FuseGemmRelu, FuseReluGradMask, FuseConvPoolTrain, FuseConvMaxPool}
	for _, tc := range []struct {
		name  string
		keep  []string
		fused bool
	}{
		{"all", nil, true},
		{"activation kept", []string{relu}, false},
		{"indices kept", []string{ind}, false},
		{"pooled gradient kept", []string{grad}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, pl := mustPlan(t, tr.Model, h, Options{Outputs: append(append([]string{tr.Loss}, tr.Grads...), tc.keep...)})
			var ops []string
			for _, n := range p.Order() {
				ops = append(ops, n.OpType)
			}
			has := strings.Contains(strings.Join(ops, " "), "MaxPool")
			if has == tc.fused {
				t.Fatalf("fused %v, nodes %v", !has, ops)
			}
			if !tc.fused {
				return
			}
			seen := map[string]int{}
			for _, s := range pl.Steps {
				seen[s.Node.OpType]++
				switch s.Node.OpType {
				case "Conv":
					if s.Node.AttrInt(AttrFusedPoolTaps, 0) != 1 || len(s.OutTypes) != 2 {
						t.Fatalf("fused Conv: attributes %v, %d outputs", s.Node.Attrs, len(s.OutTypes))
					}
					y, _ := s.OutTypes[0].Concrete()
					taps, _ := s.OutTypes[1].Concrete()
					if fmt.Sprint(y) != "[2 2 3 3]" || fmt.Sprint(taps) != "[2 2 3 3]" || s.OutTypes[1].DType != tensor.Uint8 {
						t.Errorf("fused Conv outputs %v and %v (%v), want the pooled [2 2 3 3], the taps uint8", y, taps, s.OutTypes[1].DType)
					}
				case "ConvGrad":
					if len(s.Node.Inputs) != 5 || s.Node.AttrInt(AttrFusedUnpool, 0) != 1 || s.Node.AttrInt(AttrFusedReluMask, 0) != 1 {
						t.Fatalf("fused ConvGrad: inputs %v, attributes %v", s.Node.Inputs, s.Node.Attrs)
					}
					if dw, _ := s.OutTypes[1].Concrete(); fmt.Sprint(dw) != "[2 1 3 3]" {
						t.Errorf("fused ConvGrad's dW has shape %v, want [2 1 3 3]", dw)
					}
				}
			}
			if seen["Conv"] != 1 || seen["ConvGrad"] != 1 {
				t.Errorf("the fused plan has %d Conv and %d ConvGrad steps, want one each", seen["Conv"], seen["ConvGrad"])
			}
		})
	}
}

func TestCache(t *testing.T) {
	c := NewCache[int](2)
	in := []*graph.ValueInfo{{Name: "x"}, {Name: "y"}}
	s1 := Signature(in, map[string][]int{"x": {2, 3}, "y": {4}})
	s2 := Signature(in, map[string][]int{"x": {2, 34}, "y": nil})
	s3 := Signature(in, map[string][]int{"x": {23}, "y": {4}})
	if s1 == s2 || s1 == s3 || s2 == s3 {
		t.Fatalf("signatures collide: %q %q %q", s1, s2, s3)
	}
	c.Put(s1, 1)
	c.Put(s2, 2)
	c.Put(s1, 11)
	if v, ok := c.Get(s1); !ok || v != 11 || c.Len() != 2 {
		t.Fatalf("Get(s1) = %v, %v with %d kept", v, ok, c.Len())
	}
	c.Put(s3, 3)
	if _, ok := c.Get(s1); ok || c.Len() != 1 {
		t.Errorf("a third plan in a cache of 2 kept %d plans", c.Len())
	}
}
