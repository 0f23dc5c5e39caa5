package plan

import (
	"container/heap"
	"fmt"

	"github.com/gotrain/gotrain/graph"
)

// executionOrder returns the nodes needed for outputs in an order that
// respects data dependencies and, for in-place outputs, runs the writer after
// every other reader of the overwritten input. It is linear in the graph's
// size, up to the heap's logarithm when there are in-place outputs.
func executionOrder(g *graph.Graph, outputs []string, inPlace map[string]string, w *work) ([]*graph.Node, error) {
	all, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	producer := g.Producers()
	known := make(map[string]bool, len(g.Inputs)+len(g.InitializerNames()))
	for _, in := range g.Inputs {
		known[in.Name] = true
	}
	for _, name := range g.InitializerNames() {
		known[name] = true
	}
	need := make(map[*graph.Node]bool, len(all))
	var stack []string
	for _, o := range outputs {
		if _, ok := producer[o]; !ok && !known[o] {
			return nil, fmt.Errorf("output %q is not a value of graph %q", o, g.Name)
		}
		stack = append(stack, o)
	}
	for len(stack) > 0 {
		w.add(1)
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n, ok := producer[v]
		if !ok || need[n] {
			continue
		}
		need[n] = true
		for _, in := range n.Inputs {
			if in != "" {
				stack = append(stack, in)
			}
		}
	}
	order := make([]*graph.Node, 0, len(need))
	for _, n := range all {
		if need[n] {
			order = append(order, n)
		}
	}
	w.add(len(all))
	if len(inPlace) == 0 {
		return order, nil
	}
	// Kahn's algorithm over the needed nodes with extra edges: every other
	// reader of an overwritten input precedes the node writing it. Where
	// the order is free, the node earliest in the topological order goes
	// first (a heap of ready nodes), so the result is deterministic.
	index := make(map[*graph.Node]int, len(order))
	for i, n := range order {
		index[n] = i
	}
	succ := make([][]int, len(order))
	indeg := make([]int, len(order))
	edge := func(a, b int) {
		succ[a] = append(succ[a], b)
		indeg[b]++
	}
	readers := map[string][]int{}
	for i, n := range order {
		for _, in := range n.Inputs {
			w.add(1)
			if p, ok := producer[in]; ok && need[p] {
				edge(index[p], i)
			}
			readers[in] = append(readers[in], i)
		}
	}
	isInput := make(map[string]bool, len(g.Inputs))
	for _, in := range g.Inputs {
		isInput[in.Name] = true
	}
	// Map order does not matter here: edges only constrain.
	for out, in := range inPlace {
		wr, ok := producer[out]
		if !ok || !need[wr] {
			continue
		}
		if !isInput[in] {
			return nil, fmt.Errorf("in-place output %q: %q is not a graph input", out, in)
		}
		for _, r := range readers[in] {
			w.add(1)
			if r != index[wr] {
				edge(r, index[wr])
			}
		}
	}
	ready := &intHeap{w: w}
	for i := range order {
		if indeg[i] == 0 {
			ready.a = append(ready.a, i)
		}
	}
	heap.Init(ready)
	res := make([]*graph.Node, 0, len(order))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		res = append(res, order[i])
		for _, s := range succ[i] {
			w.add(1)
			if indeg[s]--; indeg[s] == 0 {
				heap.Push(ready, s)
			}
		}
	}
	if len(res) != len(order) {
		return nil, fmt.Errorf("in-place outputs %v cannot be ordered after the other readers of their inputs", inPlace)
	}
	return res, nil
}

// intHeap is a min-heap of node indexes; it counts its comparisons.
type intHeap struct {
	a []int
	w *work
}

func (h *intHeap) Len() int { return len(h.a) }
func (h *intHeap) Less(i, j int) bool {
	h.w.add(1)
	return h.a[i] < h.a[j]
}
func (h *intHeap) Swap(i, j int) { h.a[i], h.a[j] = h.a[j], h.a[i] }
func (h *intHeap) Push(x any)    { h.a = append(h.a, x.(int)) }
func (h *intHeap) Pop() any {
	x := h.a[len(h.a)-1]
	h.a = h.a[:len(h.a)-1]
	return x
}
