package cpu

import "github.com/gotrain/gotrain/graph"

// Attributes the fusion pass sets on the nodes it fuses. They never leave
// the executable's private copy of the graph.
const (
	fusedActivation = "gotrain_fused_activation" // on Conv and Gemm: "Relu"
	fusedReluMask   = "gotrain_fused_relu_mask"  // on MaxPoolGrad: 1
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
	if out == nil {
		return g
	}
	nodes := out.Nodes[:0:0]
	for _, n := range out.Nodes {
		if !drop[n] {
			nodes = append(nodes, n)
		}
	}
	out.Nodes = nodes
	return out
}
