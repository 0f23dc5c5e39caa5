package plan

import (
	"slices"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Attributes the fusions set on the nodes they fuse. They never leave the
// planner's private copy of the graph; a backend's kernels read them.
const (
	AttrFusedActivation = "gotrain_fused_activation" // on Conv and Gemm: "Relu"
	AttrFusedReluMask   = "gotrain_fused_relu_mask"  // on MaxPoolGrad: 1
	AttrFusedMaxPool    = "gotrain_fused_maxpool"    // on Conv: 1, a 2x2/2 MaxPool
	// On Conv: 1, a 2x2/2 MaxPool whose second output is the pool's taps:
	// uint8, for each pooled value which of its window's four positions
	// (row-major, 0..3) MaxPool's Indices would name.
	AttrFusedPoolTaps = "gotrain_fused_pool_taps"
	// On ConvGrad: 1, its dY is the gradient of the pooled output, and
	// inputs 3 and 4 are the taps and the pooled output of the Conv it
	// differentiates (with AttrFusedReluMask, taps whose pooled value is
	// not positive pass no gradient).
	AttrFusedUnpool = "gotrain_fused_unpool"
)

// A Fusion rewrites pairs of nodes that pass a large tensor from one to the
// other into one node, marked with an attribute, that a backend's kernel
// runs in one pass over memory. The values computed do not change. Which
// fusions apply is the backend's choice (Hooks.Fusions): a fusion exists
// only where the backend has a kernel for the fused node.
type Fusion struct {
	Name string
	// Rewrite returns a rewritten copy of g, or g itself when nothing
	// fuses. Values in keep (the executable's outputs) are never fused
	// away.
	Rewrite func(g *graph.Graph, keep map[string]bool) *graph.Graph
	// Infer, when set, corrects the types inferred for a node as if it
	// were unfused (outs) into the fused node's; it returns outs unchanged
	// for nodes the fusion did not touch.
	Infer func(n *graph.Node, outs []*graph.Type) ([]*graph.Type, error)
	// InferNode, when set, infers the output types of a node whose inputs
	// the fusion changed so that its op's own inference no longer applies
	// (handled true); it returns handled false for every other node.
	InferNode func(m *graph.Model, n *graph.Node, types graph.Types) (outs []*graph.Type, handled bool, err error)
}

// The fusions of this package. A backend lists those it has kernels for,
// in this order (FuseReluGradMask recognises a ReLU that FuseConvRelu or
// FuseGemmRelu folded; FuseConvMaxPool sees a Conv that already ends in
// its ReLU).
var (
	// FuseConvRelu: Conv followed by Relu, its output read by nothing else:
	// the Conv applies ReLU as it writes (AttrFusedActivation "Relu").
	FuseConvRelu = Fusion{Name: "Conv+Relu", Rewrite: func(g *graph.Graph, keep map[string]bool) *graph.Graph {
		return fuseActivation(g, keep, "Conv")
	}}
	// FuseGemmRelu: the same for Gemm.
	FuseGemmRelu = Fusion{Name: "Gemm+Relu", Rewrite: func(g *graph.Graph, keep map[string]bool) *graph.Graph {
		return fuseActivation(g, keep, "Gemm")
	}}
	// FuseReluGradMask: ReluGrad(MaxPoolGrad(dY, Indices, X), X) where X
	// is a ReLU's output becomes a MaxPoolGrad that passes the gradient
	// only through taps where X > 0 (AttrFusedReluMask); the taps it does
	// not reach are zero either way.
	FuseReluGradMask = Fusion{Name: "MaxPoolGrad+ReluGrad", Rewrite: fuseReluGradMask}
	// FuseConvMaxPool: a Conv (ReLU fused or not) followed by a 2-D
	// MaxPool with a 2x2 window, stride 2 and no padding whose Indices
	// nobody reads (inference): the Conv pools each image's output while
	// it is in cache and never writes the full-size tensor
	// (AttrFusedMaxPool); its output has the pooled shape.
	FuseConvMaxPool = Fusion{Name: "Conv+MaxPool", Rewrite: fuseConvMaxPool, Infer: inferConvMaxPool}
	// FuseConvPoolTrain: in a training graph, a Conv (ReLU fused or not)
	// whose output only a 2x2/2 MaxPool and that pool's MaxPoolGrad read
	// (with its ReluGrad folded in by FuseReluGradMask), the MaxPoolGrad's
	// result read only by the ConvGrad of a Conv. The Conv pools as it
	// writes and gives the pool's taps (AttrFusedPoolTaps) instead of
	// Indices; the ConvGrad takes the pooled gradient, the taps and the
	// pooled output (AttrFusedUnpool) and spreads the gradient back over
	// each image's window while it works on that image. Neither the
	// full-size activation nor its full-size gradient is ever written. A
	// ReLU mask by the full activation becomes a mask by the pooled value:
	// the tap MaxPool's Indices name holds the pooled value itself, so one
	// is positive exactly when the other is.
	FuseConvPoolTrain = Fusion{Name: "Conv+MaxPool, MaxPoolGrad+ConvGrad", Rewrite: fuseConvPoolTrain, Infer: inferPoolTaps, InferNode: inferUnpoolGrad}
)

// rewriter clones g on the first change and drops the nodes marked. Its
// decisions read g's indexes: a fusion pass edits only the nodes it fuses,
// so g and the clone agree on every other node.
type rewriter struct {
	g, out    *graph.Graph
	consumers map[string][]*graph.Node
	producers map[string]*graph.Node
	index     map[*graph.Node]int
	drop      map[int]bool
}

func newRewriter(g *graph.Graph) *rewriter {
	return &rewriter{g: g, consumers: g.Consumers(), producers: g.Producers(), drop: map[int]bool{}}
}

// single returns the only reader of v, nil when v is kept or read by
// other nodes too.
func (r *rewriter) single(v string, keep map[string]bool) *graph.Node {
	if keep[v] {
		return nil
	}
	if cs := r.consumers[v]; len(cs) == 1 {
		return cs[0]
	}
	return nil
}

// clone makes the graph's copy the first time.
func (r *rewriter) clone() {
	if r.out == nil {
		r.out = r.g.Clone()
		r.index = make(map[*graph.Node]int, len(r.g.Nodes))
		for i, m := range r.g.Nodes {
			r.index[m] = i
		}
	}
}

// fold makes the clone's copy of n (cloning g the first time) absorb
// next: it takes next's first output and attribute a; next is dropped.
func (r *rewriter) fold(n, next *graph.Node, a *graph.Attribute) {
	r.clone()
	cn := r.out.Nodes[r.index[n]]
	cn.SetAttr(a)
	cn.Outputs[0] = next.Outputs[0]
	r.drop[r.index[next]] = true
}

func (r *rewriter) result() *graph.Graph {
	if r.out == nil {
		return r.g
	}
	nodes := make([]*graph.Node, 0, len(r.out.Nodes)-len(r.drop))
	for i, n := range r.out.Nodes {
		if !r.drop[i] {
			nodes = append(nodes, n)
		}
	}
	r.out.Nodes = nodes
	return r.out
}

func isONNX(n *graph.Node, op string) bool {
	return n.OpType == op && graph.NormDomain(n.Domain) == graph.DomainONNX
}

// has reports whether g has a node of an op, so that a fusion that cannot
// apply costs no index of the graph.
func has(g *graph.Graph, domain, op string) bool {
	for _, n := range g.Nodes {
		if n.OpType == op && graph.NormDomain(n.Domain) == domain {
			return true
		}
	}
	return false
}

func fuseActivation(g *graph.Graph, keep map[string]bool, op string) *graph.Graph {
	if !has(g, graph.DomainONNX, op) || !has(g, graph.DomainONNX, "Relu") {
		return g
	}
	r := newRewriter(g)
	for _, n := range g.Nodes {
		if !isONNX(n, op) {
			continue
		}
		relu := r.single(n.Outputs[0], keep)
		if relu == nil || !isONNX(relu, "Relu") {
			continue
		}
		r.fold(n, relu, graph.AString(AttrFusedActivation, "Relu"))
	}
	return r.result()
}

func fuseReluGradMask(g *graph.Graph, keep map[string]bool) *graph.Graph {
	if !has(g, graph.DomainGotrain, "MaxPoolGrad") {
		return g
	}
	r := newRewriter(g)
	for _, n := range g.Nodes {
		if n.OpType != "MaxPoolGrad" || n.Domain != graph.DomainGotrain || len(n.Inputs) < 3 {
			continue
		}
		rg := r.single(n.Outputs[0], keep)
		if rg == nil || rg.OpType != "ReluGrad" || rg.Domain != graph.DomainGotrain || len(rg.Inputs) < 2 || rg.Inputs[0] != n.Outputs[0] {
			continue
		}
		// X of MaxPoolGrad must be the Relu output that ReluGrad masks by.
		x := n.Inputs[2]
		if rg.Inputs[1] != x {
			continue
		}
		if p := r.producers[x]; p == nil || (p.OpType != "Relu" && p.Attr(AttrFusedActivation) == nil) {
			continue
		}
		r.fold(n, rg, graph.AInt(AttrFusedReluMask, 1))
	}
	return r.result()
}

func fuseConvMaxPool(g *graph.Graph, keep map[string]bool) *graph.Graph {
	if !has(g, graph.DomainONNX, "Conv") || !has(g, graph.DomainONNX, "MaxPool") {
		return g
	}
	r := newRewriter(g)
	for _, n := range g.Nodes {
		if !isONNX(n, "Conv") || keep[n.Outputs[0]] {
			continue
		}
		cs := r.consumers[n.Outputs[0]]
		if len(cs) != 1 || !poolFusable(cs[0], r.consumers, keep) {
			continue
		}
		r.fold(n, cs[0], graph.AInt(AttrFusedMaxPool, 1))
	}
	return r.result()
}

// poolFusable reports whether n is a MaxPool that FuseConvMaxPool can fold
// into the Conv before it: a 2x2/2 window (pool2x2) and no Indices anyone
// reads.
func poolFusable(n *graph.Node, consumers map[string][]*graph.Node, keep map[string]bool) bool {
	if !pool2x2(n) {
		return false
	}
	return len(n.Outputs) < 2 || n.Outputs[1] == "" || (len(consumers[n.Outputs[1]]) == 0 && !keep[n.Outputs[1]])
}

// pool2x2 reports whether n is a 2-D MaxPool with window 2x2, stride 2,
// no padding or dilation, and floor rounding.
func pool2x2(n *graph.Node) bool {
	if !isONNX(n, "MaxPool") {
		return false
	}
	is := func(name string, def []int64, want ...int64) bool {
		return slices.Equal(n.AttrInts(name, def), want)
	}
	if !is("kernel_shape", nil, 2, 2) || !is("strides", []int64{1, 1}, 2, 2) ||
		!is("dilations", []int64{1, 1}, 1, 1) || !is("pads", []int64{0, 0, 0, 0}, 0, 0, 0, 0) {
		return false
	}
	if ap := n.AttrString("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "VALID" {
		return false
	}
	return n.AttrInt("ceil_mode", 0) == 0
}

// inferConvMaxPool gives a Conv that absorbed a 2x2/2 MaxPool the pooled
// output shape.
func inferConvMaxPool(n *graph.Node, outs []*graph.Type) ([]*graph.Type, error) {
	if n.AttrInt(AttrFusedMaxPool, 0) == 0 {
		return outs, nil
	}
	return poolOutputs(n, outs, false)
}

// poolOutputs gives a pooling Conv's output 0 the pooled shape, and with
// taps its output 1 the uint8 taps of that shape.
func poolOutputs(n *graph.Node, outs []*graph.Type, taps bool) ([]*graph.Type, error) {
	if len(outs) == 0 || outs[0] == nil {
		return outs, nil
	}
	pooled, err := pooledShape(n, outs[0])
	if err != nil {
		return nil, err
	}
	outs[0] = graph.NewType(outs[0].DType, pooled)
	if taps {
		outs[1] = graph.NewType(tensor.Uint8, pooled)
	}
	return outs, nil
}

func fuseConvPoolTrain(g *graph.Graph, keep map[string]bool) *graph.Graph {
	if !has(g, graph.DomainGotrain, "MaxPoolGrad") || !has(g, graph.DomainGotrain, "ConvGrad") {
		return g
	}
	r := newRewriter(g)
	is := func(n *graph.Node, op string) bool { return n.OpType == op && n.Domain == graph.DomainGotrain }
	for _, c := range g.Nodes {
		if !isONNX(c, "Conv") || len(c.Outputs) != 1 || keep[c.Outputs[0]] {
			continue
		}
		x := c.Outputs[0]
		cs := r.consumers[x]
		if len(cs) != 2 {
			continue
		}
		pool, grad := cs[0], cs[1]
		if !isONNX(pool, "MaxPool") {
			pool, grad = grad, pool
		}
		if !pool2x2(pool) || len(pool.Outputs) != 2 || pool.Inputs[0] != x {
			continue
		}
		ind := pool.Outputs[1]
		if ind == "" || r.single(ind, keep) != grad {
			continue
		}
		if !is(grad, "MaxPoolGrad") || len(grad.Inputs) != 3 || len(grad.Outputs) != 1 ||
			grad.Inputs[0] == x || grad.Inputs[1] != ind || grad.Inputs[2] != x {
			continue
		}
		dx := grad.Outputs[0]
		cg := r.single(dx, keep)
		if cg == nil || !is(cg, "ConvGrad") || len(cg.Inputs) != 3 || cg.Inputs[0] != dx || cg.Inputs[1] == dx || cg.Inputs[2] == dx {
			continue
		}
		r.clone()
		nc, ncg := r.out.Nodes[r.index[c]], r.out.Nodes[r.index[cg]]
		nc.Outputs = []string{pool.Outputs[0], ind}
		nc.SetAttr(graph.AInt(AttrFusedPoolTaps, 1))
		ncg.Inputs = []string{grad.Inputs[0], cg.Inputs[1], cg.Inputs[2], ind, pool.Outputs[0]}
		ncg.SetAttr(graph.AInt(AttrFusedUnpool, 1))
		if grad.AttrInt(AttrFusedReluMask, 0) != 0 {
			ncg.SetAttr(graph.AInt(AttrFusedReluMask, 1))
		}
		r.drop[r.index[pool]] = true
		r.drop[r.index[grad]] = true
	}
	return r.result()
}

// pooledShape is a 4-D shape with its spatial dims halved (floor), or an
// error naming n when it is not 4-D or smaller than the window.
func pooledShape(n *graph.Node, y *graph.Type) (graph.Shape, error) {
	if !y.RankKnown || len(y.Shape) != 4 {
		return nil, graph.Errorf(n, "the 2x2 MaxPool fused into this node needs a 4-D output, got %v", y.Shape)
	}
	pooled := append(graph.Shape{}, y.Shape...)
	for i := 2; i < 4; i++ {
		d := y.Shape[i]
		if !d.Known() {
			pooled[i] = graph.Unknown
			continue
		}
		if d.Size < 2 {
			return nil, graph.Errorf(n, "output %v is smaller than the 2x2 window of the MaxPool fused into it", y.Shape)
		}
		pooled[i] = graph.D(d.Size / 2)
	}
	return pooled, nil
}

// inferPoolTaps gives a Conv that pools with taps its two outputs: the
// pooled output and the uint8 taps of the same shape.
func inferPoolTaps(n *graph.Node, outs []*graph.Type) ([]*graph.Type, error) {
	if n.AttrInt(AttrFusedPoolTaps, 0) == 0 || len(outs) < 2 {
		return outs, nil
	}
	return poolOutputs(n, outs, true)
}

// inferUnpoolGrad infers a ConvGrad that takes the pooled gradient: its
// outputs are ConvGrad's, and the pooled gradient, taps and pooled output
// must have the pooled shape of the Conv's output.
func inferUnpoolGrad(m *graph.Model, n *graph.Node, types graph.Types) ([]*graph.Type, bool, error) {
	if n.AttrInt(AttrFusedUnpool, 0) == 0 {
		return nil, false, nil
	}
	if len(n.Inputs) != 5 {
		return nil, true, graph.Errorf(n, "a ConvGrad fused with a MaxPoolGrad takes 5 inputs, has %d", len(n.Inputs))
	}
	in := make([]*graph.Type, 5)
	for i, name := range n.Inputs {
		t, ok := types[name]
		if name == "" || !ok {
			return nil, true, graph.Errorf(n, "input %d (%q) has no type", i, name)
		}
		in[i] = t
	}
	// ConvGrad's own inference, with the full-size dY left unknown.
	shadow := *n
	shadow.Inputs = []string{"dY", n.Inputs[1], n.Inputs[2]}
	outs, err := graph.InferNode(m, &shadow, graph.Types{"dY": {DType: in[1].DType}, n.Inputs[1]: in[1], n.Inputs[2]: in[2]})
	if err != nil {
		return nil, true, err
	}
	x, w := in[1], in[2]
	if !x.RankKnown || !w.RankKnown || len(x.Shape) != 4 || len(w.Shape) != 4 {
		return nil, true, graph.Errorf(n, "a ConvGrad fused with a MaxPoolGrad needs 4-D X and W, got %v and %v", x.Shape, w.Shape)
	}
	for i, what := range []string{0: "pooled dY", 3: "taps", 4: "pooled Y"} {
		if what == "" {
			continue
		}
		t, dt := in[i], x.DType
		if i == 3 {
			dt = tensor.Uint8
		}
		if t.DType != dt || !t.RankKnown || len(t.Shape) != 4 {
			return nil, true, graph.Errorf(n, "%s is %v; expected 4-D %v", what, t, dt)
		}
		if d := t.Shape[1]; d.Known() && w.Shape[0].Known() && d.Size != w.Shape[0].Size {
			return nil, true, graph.Errorf(n, "%s has %v channels; W has %v outputs", what, d, w.Shape[0])
		}
	}
	return outs, true, nil
}
