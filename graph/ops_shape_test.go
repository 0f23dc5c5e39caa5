package graph

import (
	"fmt"
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

// TestShapeChainFolds builds the shape arithmetic PyTorch exports for
// x.view(x.size(0), -1) and checks that inference turns it into a constant
// and gives Reshape an exact shape once the batch size is known, and keeps
// the symbolic batch dim where it is not.
func TestShapeChainFolds(t *testing.T) {
	b := NewBuilder("chain", 13)
	x := b.Input("x", tensor.Float32, Sym("N"), D(3), D(4), D(4))
	s := b.Op("Shape", x).Out()
	g := b.Op("Gather", s, b.Const(tensor.Scalar(int64(0)))).Out()
	u := b.Op("Unsqueeze", g, b.Const(tensor.MustFromSlice([]int64{0}, 1))).Out()
	c := b.Op("Concat", u, b.Const(tensor.MustFromSlice([]int64{-1}, 1))).With(AInt("axis", 0)).Out()
	r := b.Op("Reshape", x, c).Out()
	f := b.Op("Flatten", x).Out()
	z := b.Op("Reshape", x, b.Const(tensor.MustFromSlice([]int64{0, -1}, 2))).Out()
	sl := b.Op("Slice", x, b.Const(tensor.MustFromSlice([]int64{0, 1}, 2)), b.Const(tensor.MustFromSlice([]int64{1 << 62, 3}, 2)), b.Const(tensor.MustFromSlice([]int64{0, 1}, 2))).Out()
	b.Output(r, f, z, sl)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	types, err := InferShapes(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{f: "float32[N,48]", z: "float32[N,48]", sl: "float32[N,2,4,4]", r: "float32[?,?]"} {
		if got := types[name].String(); got != want {
			t.Errorf("symbolic batch: %s is %s, want %s", name, got, want)
		}
	}
	types, err = InferShapes(m, map[string]*Type{"x": NewType(tensor.Float32, ShapeOf(2, 3, 4, 4))})
	if err != nil {
		t.Fatal(err)
	}
	if v := types[c].Value; v == nil || fmt.Sprint(v.Int64s()) != "[2 -1]" {
		t.Errorf("the shape chain did not fold: Concat value %v", v)
	}
	if got := types[r].String(); got != "float32[2,48]" {
		t.Errorf("Reshape is %s, want float32[2,48]", got)
	}
}

func TestShapeInferErrors(t *testing.T) {
	x := TypeOf(tensor.New(tensor.Float32, 2, 3))
	ints := func(v ...int64) *Type { return TypeOf(tensor.MustFromSlice(v, len(v))) }
	n := func(op string, attrs ...*Attribute) *Node {
		nd := &Node{Name: "bad", OpType: op, Outputs: []string{"y"}, Attrs: map[string]*Attribute{}}
		for _, a := range attrs {
			nd.SetAttr(a)
		}
		return nd
	}
	cases := []struct {
		name  string
		node  *Node
		opset int64
		in    []*Type
	}{
		{"reshape count", n("Reshape"), 13, []*Type{x, ints(4, 2)}},
		{"reshape two -1", n("Reshape"), 13, []*Type{x, ints(-1, -1)}},
		{"transpose perm", n("Transpose", AInts("perm", 0, 0)), 13, []*Type{x}},
		{"squeeze non-1", n("Squeeze"), 13, []*Type{x, ints(0)}},
		{"concat rank", n("Concat", AInt("axis", 0)), 13, []*Type{x, TypeOf(tensor.New(tensor.Float32, 2))}},
		{"gather axis", n("Gather", AInt("axis", 2)), 13, []*Type{x, ints(0)}},
		{"gather index", n("Gather"), 13, []*Type{TypeOf(tensor.MustFromSlice([]int64{1, 2}, 2)), ints(2)}},
		{"pad length", n("Pad"), 13, []*Type{x, ints(1, 1)}},
		{"pad mode", n("Pad", AString("mode", "mirror")), 13, []*Type{x, ints(0, 0, 0, 0)}},
		{"split sum", &Node{Name: "bad", OpType: "Split", Outputs: []string{"a", "b"}}, 13, []*Type{x, ints(1, 2)}},
		{"expand", n("Expand"), 13, []*Type{x, ints(4, 3)}},
		{"flatten axis", n("Flatten", AInt("axis", 3)), 13, []*Type{x}},
	}
	for _, c := range cases {
		_, err := Lookup("", c.node.OpType).Infer(c.node, c.in, c.opset)
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}
		var ne *NodeError
		if !asNodeError(err, &ne) {
			t.Errorf("%s: error %q does not name the node", c.name, err)
		}
	}
}

func asNodeError(err error, ne **NodeError) bool {
	e, ok := err.(*NodeError)
	*ne = e
	return ok
}
