package cpu

import "github.com/gotrain/gotrain/graph"

// Attributes the fusion pass sets on the nodes it fuses. They never leave
// the executable's private copy of the graph.
const (
	fusedActivation = "gotrain_fused_activation" // on Conv and Gemm: "Relu"
	fusedReluMask   = "gotrain_fused_relu_mask"  // on MaxPoolGrad: 1
	fusedMaxPool    = "gotrain_fused_maxpool"    // on Conv: 1, a 2x2/2 MaxPool
)

// fuse rewrites a copy of the graph so that pairs of nodes that pass a
// large tensor from one to the other run as one kernel, saving a pass over
// memory; the values computed do not change:
//
//   - Conv or Gemm followed by Relu, its output read by nothing else:
//     the Conv or Gemm applies ReLU as it writes its output.
//   - ReluGrad(MaxPoolGrad(dY, Indices, X), X) where X is the Relu's output:
//     the gradient passes only through taps where X > 0, which MaxPoolGrad
//     checks as it scatters; the taps it does not reach are zero either way.
//   - Conv (ReLU fused or not) followed by a 2-D MaxPool with a 2x2 window,
//     stride 2 and no padding whose Indices nobody reads (inference): the
//     Conv pools each image's output while it is in cache and never writes
//     the full-size tensor.
//
// Values named in keep (the executable's outputs) are never fused away.
func fuse(g *graph.Graph, keep []string) *graph.Graph {
	kept := map[string]bool{}
	for _, k := range keep {
		kept[k] = true
	}
	consumers := g.Consumers()
	producers := g.Producers()
	single := func(v string) *graph.Node {
		if kept[v] {
			return nil
		}
		if cs := consumers[v]; len(cs) == 1 {
			return cs[0]
		}
		return nil
	}
	drop := map[*graph.Node]bool{}
	var out *graph.Graph
	clone := func() {
		if out == nil {
			out = g.Clone()
			// Re-index on the clone so the nodes edited below are its own.
			consumers = out.Consumers()
			producers = out.Producers()
		}
	}
	for i := range g.Nodes {
		n := g.Nodes[i]
		switch {
		case (n.OpType == "Conv" || n.OpType == "Gemm") && graph.NormDomain(n.Domain) == graph.DomainONNX:
			r := single(n.Outputs[0])
			if r == nil || r.OpType != "Relu" || graph.NormDomain(r.Domain) != graph.DomainONNX {
				continue
			}
			clone()
			cn := out.Nodes[i]
			r = consumers[cn.Outputs[0]][0]
			cn.SetAttr(graph.AString(fusedActivation, "Relu"))
			cn.Outputs[0] = r.Outputs[0]
			drop[r] = true
		case n.OpType == "MaxPoolGrad" && n.Domain == graph.DomainGotrain:
			rg := single(n.Outputs[0])
			if rg == nil || rg.OpType != "ReluGrad" || rg.Domain != graph.DomainGotrain || rg.Inputs[0] != n.Outputs[0] {
				continue
			}
			// X of MaxPoolGrad must be the Relu output that ReluGrad masks by.
			x := n.Inputs[2]
			if rg.Inputs[1] != x {
				continue
			}
			if p := producers[x]; p == nil || (p.OpType != "Relu" && p.Attr(fusedActivation) == nil) {
				continue
			}
			clone()
			mn := out.Nodes[i]
			rg = consumers[mn.Outputs[0]][0]
			mn.SetAttr(graph.AInt(fusedReluMask, 1))
			mn.Outputs[0] = rg.Outputs[0]
			drop[rg] = true
		}
	}
	if out != nil {
		nodes := out.Nodes[:0:0]
		for _, n := range out.Nodes {
			if !drop[n] {
				nodes = append(nodes, n)
			}
		}
		out.Nodes = nodes
		g = out
	}
	return fuseConvPool(g, kept)
}

// fuseConvPool is fuse's last rule, run after the ReLU fusion so that the
// Conv it sees already ends in its ReLU.
func fuseConvPool(g *graph.Graph, kept map[string]bool) *graph.Graph {
	consumers := g.Consumers()
	index := make(map[*graph.Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		index[n] = i
	}
	var out *graph.Graph
	drop := map[int]bool{}
	for i, n := range g.Nodes {
		if n.OpType != "Conv" || graph.NormDomain(n.Domain) != graph.DomainONNX || kept[n.Outputs[0]] {
			continue
		}
		cs := consumers[n.Outputs[0]]
		if len(cs) != 1 || !poolFusable(cs[0], consumers, kept) {
			continue
		}
		if out == nil {
			out = g.Clone()
		}
		j := index[cs[0]]
		cn := out.Nodes[i]
		cn.SetAttr(graph.AInt(fusedMaxPool, 1))
		cn.Outputs[0] = out.Nodes[j].Outputs[0]
		drop[j] = true
	}
	if out == nil {
		return g
	}
	nodes := out.Nodes[:0:0]
	for j, n := range out.Nodes {
		if !drop[j] {
			nodes = append(nodes, n)
		}
	}
	out.Nodes = nodes
	return out
}

// poolFusable reports whether n is a MaxPool that fuseConvPool can fold
// into the Conv before it: 2-D, window 2x2, stride 2, no padding or
// dilation, floor rounding, and no Indices anyone reads.
func poolFusable(n *graph.Node, consumers map[string][]*graph.Node, kept map[string]bool) bool {
	if n.OpType != "MaxPool" || graph.NormDomain(n.Domain) != graph.DomainONNX {
		return false
	}
	if len(n.Outputs) > 1 && n.Outputs[1] != "" && (len(consumers[n.Outputs[1]]) > 0 || kept[n.Outputs[1]]) {
		return false
	}
	ints := func(name string, def []int64) []int64 { return n.AttrInts(name, def) }
	is := func(v []int64, want ...int64) bool {
		if len(v) != len(want) {
			return false
		}
		for i := range v {
			if v[i] != want[i] {
				return false
			}
		}
		return true
	}
	if !is(ints("kernel_shape", nil), 2, 2) || !is(ints("strides", []int64{1, 1}), 2, 2) ||
		!is(ints("dilations", []int64{1, 1}), 1, 1) || !is(ints("pads", []int64{0, 0, 0, 0}), 0, 0, 0, 0) {
		return false
	}
	if ap := n.AttrString("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "VALID" {
		return false
	}
	return n.AttrInt("ceil_mode", 0) == 0
}
