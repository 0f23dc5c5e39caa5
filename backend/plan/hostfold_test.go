package plan_test

import (
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestHostFold folds constants for a backend without host memory through
// the CPU backend: a Gemm of two constants (with an attribute and the
// node's opset honoured) and a Split with two outputs.
func TestHostFold(t *testing.T) {
	b := graph.NewBuilder("fold", 17)
	x := b.Input("x", tensor.Float32, graph.D(2), graph.D(2))
	a := b.Param("a", tensor.MustFromSlice([]float32{1, 2, 3, 4}, 2, 2))
	w := b.Param("w", tensor.MustFromSlice([]float32{1, 0, 1, 1}, 2, 2))
	c := b.Op("Gemm", a, w).With(graph.AInt("transB", 1), graph.AFloat("alpha", 2)).Out()
	top := b.OpN(graph.DomainONNX, "Split", 2, b.Param("v", tensor.MustFromSlice([]int64{3, 9, 1, 4}, 4)))
	b.Output(b.Op("Add", x, c).Out(), top.Outs()[0], top.Outs()[1])
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	h := plan.Hooks{
		Backend:  "device",
		Supports: func(n *graph.Node) bool { return true },
		Prepare:  func(s *plan.Step) (any, error) { return nil, nil },
		Fold:     plan.HostFold(cpu.New(cpu.Options{Threads: 1})),
		Storage:  plan.Storage{Untyped: true},
	}
	p, err := plan.New(m, h, plan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	shapes, _ := p.StaticShapes(nil)
	pl, err := p.Plan(shapes, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{c: {2, 6, 6, 14}, top.Outs()[0]: {3, 9}, top.Outs()[1]: {1, 4}}
	for _, v := range pl.Values {
		exp, ok := want[v.Name]
		if !ok {
			continue
		}
		delete(want, v.Name)
		if v.Kind != plan.Const {
			t.Errorf("%s: kind %v, want a folded constant", v.Name, v.Kind)
			continue
		}
		for i, e := range exp {
			if got := v.Const.AsFloat64(i); got != e {
				t.Errorf("%s[%d] = %v, want %v", v.Name, i, got, e)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("not in the plan: %v", want)
	}
	if len(pl.Steps) != 1 || pl.Steps[0].Node.OpType != "Add" {
		t.Errorf("%d steps, want the Add alone", len(pl.Steps))
	}
}
