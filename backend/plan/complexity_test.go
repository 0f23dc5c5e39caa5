package plan

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Graphs whose planning went quadratic once: a long chain of views (each
// view's storage was found by walking the chain back to its root), and a
// wide graph whose values die in turn (each allocation scanned the whole
// free list; with an in-place output, each step of the ordering sorted the
// whole list of ready nodes).

func identityChain(tb testing.TB, n int) (*graph.Model, Options) {
	b := graph.NewBuilder("chain", 17)
	v := b.Op("Relu", b.Input("x", tensor.Float32, graph.D(4), graph.D(8))).Out()
	for i := 0; i < n; i++ {
		v = b.Op("Identity", v).Out()
	}
	b.Output(b.Op("Relu", v).Out())
	return mustModel(tb, b), Options{}
}

func reshapeChain(tb testing.TB, n int) (*graph.Model, Options) {
	b := graph.NewBuilder("chain", 17)
	v := b.Op("Relu", b.Input("x", tensor.Float32, graph.D(4), graph.D(8))).Out()
	shapes := [2]string{b.Param("s0", tensor.MustFromSlice([]int64{8, 4}, 2)), b.Param("s1", tensor.MustFromSlice([]int64{4, 8}, 2))}
	for i := 0; i < n; i++ {
		v = b.Op("Reshape", v, shapes[i%2]).Out()
	}
	b.Output(b.Op("Relu", v).Out())
	return mustModel(tb, b), Options{}
}

// fan is n products x*w, all live at once, then summed in a chain, and w
// overwritten in place by the sum: every product reads w, so all are ready
// together and precede the writer; the sums take the blocks the products
// free.
func fan(tb testing.TB, n int) (*graph.Model, Options) {
	b := graph.NewBuilder("fan", 17)
	x := b.Input("x", tensor.Float32, graph.D(16))
	w := b.Input("w", tensor.Float32, graph.D(16))
	prods := make([]string, n)
	for i := range prods {
		prods[i] = b.Op("Mul", x, w).Out()
	}
	s := prods[0]
	for _, p := range prods[1:] {
		s = b.Op("Add", s, p).Out()
	}
	out := b.Op("Add", w, s).Out()
	b.Output(out)
	return mustModel(tb, b), Options{InPlace: map[string]string{out: w}}
}

// planWork plans a graph and returns the planner's operation count.
func planWork(t *testing.T, m *graph.Model, o Options) int64 {
	p, pl := mustPlan(t, m, hostHooks(), o)
	if len(pl.Steps) < len(m.Graph.Nodes)/2 {
		t.Fatalf("%d steps planned for %d nodes", len(pl.Steps), len(m.Graph.Nodes))
	}
	return p.w.n
}

// TestPlanningGrowsLinearly plans each graph at three sizes, ten times
// apart, and requires the planner's count of elementary operations (loop
// iterations over nodes, values and edges, and every comparison in its
// free lists and ready heap) to grow at most 15 times per tenfold: linear
// up to the logarithm of the ordered structures (the fan's count grows
// about 12.5 times), where a quadratic step would multiply it by 100.
func TestPlanningGrowsLinearly(t *testing.T) {
	sizes := []int{500, 5_000, 50_000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, tc := range []struct {
		name  string
		build func(testing.TB, int) (*graph.Model, Options)
	}{
		{"identity chain", identityChain},
		{"reshape chain", reshapeChain},
		{"fan with in-place output", fan},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prev int64
			for i, n := range sizes {
				m, o := tc.build(t, n)
				w := planWork(t, m, o)
				t.Logf("%d nodes: %d operations (%.1f per node)", len(m.Graph.Nodes), w, float64(w)/float64(len(m.Graph.Nodes)))
				if i > 0 && w > 15*prev {
					t.Errorf("%d nodes: %d operations, %.1f times the %d of a graph ten times smaller", n, w, float64(w)/float64(prev), prev)
				}
				prev = w
			}
		})
	}
}
