package graph_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func node(name, op string, in []string, out ...string) *graph.Node {
	return &graph.Node{Name: name, OpType: op, Inputs: in, Outputs: out, Attrs: map[string]*graph.Attribute{}}
}

// TestValidateErrors builds broken graphs and checks each error names the
// node and what is wrong.
func TestValidateErrors(t *testing.T) {
	f32 := func(dims ...int) graph.Type { return *graph.NewType(tensor.Float32, graph.ShapeOf(dims...)) }
	cases := []struct {
		name  string
		build func(g *graph.Graph)
		want  []string
	}{
		{"unknown op", func(g *graph.Graph) {
			g.Nodes = []*graph.Node{node("n1", "FancyOp", []string{"x"}, "y")}
		}, []string{`"n1"`, "unsupported op FancyOp"}},
		{"missing input", func(g *graph.Graph) {
			g.Nodes = []*graph.Node{node("n1", "Relu", []string{"nowhere"}, "y")}
		}, []string{`"n1"`, `"nowhere"`, "not a graph input"}},
		{"cycle", func(g *graph.Graph) {
			g.Nodes = []*graph.Node{
				node("a", "Add", []string{"x", "c"}, "b"),
				node("b", "Relu", []string{"b"}, "c"),
			}
		}, []string{"cycle"}},
		{"shape mismatch", func(g *graph.Graph) {
			g.Inputs = append(g.Inputs, &graph.ValueInfo{Name: "z", Type: f32(4)})
			g.Nodes = []*graph.Node{node("add", "Add", []string{"x", "z"}, "y")}
		}, []string{`"add"`, "broadcast"}},
		{"dtype mismatch", func(g *graph.Graph) {
			g.Inputs = append(g.Inputs, &graph.ValueInfo{Name: "z", Type: *graph.NewType(tensor.Int64, graph.ShapeOf(2, 3))})
			g.Nodes = []*graph.Node{node("add", "Add", []string{"x", "z"}, "y")}
		}, []string{`"add"`, "int64"}},
		{"duplicate output", func(g *graph.Graph) {
			g.Nodes = []*graph.Node{node("a", "Relu", []string{"x"}, "y"), node("b", "Relu", []string{"x"}, "y")}
		}, []string{`"y"`, "also produced"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := graph.NewGraph("g")
			g.Inputs = []*graph.ValueInfo{{Name: "x", Type: f32(2, 3)}}
			c.build(g)
			g.Outputs = []*graph.ValueInfo{{Name: "y"}}
			err := graph.Validate(graph.NewModel(g, 17))
			if err == nil {
				t.Fatal("Validate accepted the graph")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestTopoSortOrder checks that nodes listed out of order are sorted so
// that every producer precedes its consumers.
func TestTopoSortOrder(t *testing.T) {
	g := graph.NewGraph("g")
	g.Inputs = []*graph.ValueInfo{{Name: "x", Type: *graph.NewType(tensor.Float32, graph.ShapeOf(2))}}
	g.Nodes = []*graph.Node{
		node("c", "Add", []string{"a", "b"}, "c"),
		node("b", "Neg", []string{"a"}, "b"),
		node("a", "Relu", []string{"x"}, "a"),
	}
	order, err := g.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, n := range order {
		pos[n.Name] = i
	}
	if !(pos["a"] < pos["b"] && pos["b"] < pos["c"]) {
		t.Errorf("order %v", []string{order[0].Name, order[1].Name, order[2].Name})
	}
}

// TestGradientErrors checks autodiff's errors: an op without a gradient
// rule on the path to a parameter names both; a non-scalar loss is refused.
func TestGradientErrors(t *testing.T) {
	b := graph.NewBuilder("g", 17)
	x := b.Input("x", tensor.Float32, graph.D(4))
	w := b.Param("w", tensor.MustFromSlice([]float32{1, 2, 3, 4}, 4))
	y := b.Op("Mul", x, w).Out()
	h := b.Op("Hardmax", y).Out() // no gradient rule
	loss := b.Op("ReduceSum", h).With(graph.AInt("keepdims", 0)).Out()
	b.Output(loss, y)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	_, err = graph.Gradients(m, loss, []string{"w"})
	var ge *graph.GradientError
	if !errors.As(err, &ge) || !strings.Contains(err.Error(), "Hardmax") || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("error %v, want a GradientError naming Hardmax and w", err)
	}
	if _, err := graph.Gradients(m, y, []string{"w"}); err == nil || !strings.Contains(err.Error(), "scalar") {
		t.Errorf("non-scalar loss: error %v", err)
	}
}
