package graph

import (
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// Builder defines a graph in Go. Values are referred to by name; Op returns
// the name of the new node's output, so calls nest naturally:
//
//	b := graph.NewBuilder("mlp", 17)
//	x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(784))
//	h := b.Op("Relu", b.Op("Gemm", x, b.Param("fc1.weight", w1), b.Param("fc1.bias", b1)).With(graph.AInt("transB", 1)))
//
// Errors are kept and reported once by Model.
type Builder struct {
	// NodeOpset, when non-zero, is stamped on every ai.onnx node added
	// (see Node.Opset).
	NodeOpset int64
	model     *Model
	g         *Graph
	n         int
	err       error
	names     map[string]bool
}

// NewBuilder starts a graph importing ai.onnx at opset.
func NewBuilder(name string, opset int64) *Builder {
	g := NewGraph(name)
	return &Builder{model: NewModel(g, opset), g: g, names: map[string]bool{}}
}

// Graph returns the graph being built.
func (b *Builder) Graph() *Graph { return b.g }

// Opset returns the ai.onnx opset of the model being built.
func (b *Builder) Opset() int64 { return b.model.Opsets[""] }

func (b *Builder) claim(name string) string {
	if b.names[name] && b.err == nil {
		b.err = fmt.Errorf("graph builder: value %q defined twice", name)
	}
	b.names[name] = true
	return name
}

// Fresh returns an unused value name with the given prefix.
func (b *Builder) Fresh(prefix string) string {
	for {
		b.n++
		name := fmt.Sprintf("%s_%d", prefix, b.n)
		if !b.names[name] {
			b.names[name] = true
			return name
		}
	}
}

// Input declares a graph input.
func (b *Builder) Input(name string, dt tensor.DType, dims ...Dim) string {
	b.g.Inputs = append(b.g.Inputs, &ValueInfo{Name: b.claim(name), Type: *NewType(dt, dims)})
	return name
}

// Param adds an initializer (a weight, trainable when floating-point).
func (b *Builder) Param(name string, t *tensor.Tensor) string {
	b.g.SetInitializer(b.claim(name), t)
	return name
}

// Const adds a Constant node holding t (never trainable).
func (b *Builder) Const(t *tensor.Tensor) string {
	out := b.Fresh("const")
	b.g.Nodes = append(b.g.Nodes, &Node{Name: out, OpType: "Constant", Outputs: []string{out}, Opset: b.NodeOpset,
		Attrs: map[string]*Attribute{"value": {Name: "value", Type: AttrTensor, T: t}}})
	return out
}

// NodeRef is a node just added; With sets its attributes.
type NodeRef struct {
	b    *Builder
	node *Node
}

// Op adds a node of the default domain with one output and returns a
// reference whose Out (or String) is the output's name.
func (b *Builder) Op(op string, inputs ...string) *NodeRef {
	return b.OpN(DomainONNX, op, 1, inputs...)
}

// OpN adds a node of any domain with nOut outputs.
func (b *Builder) OpN(domain, op string, nOut int, inputs ...string) *NodeRef {
	name := b.Fresh(op)
	outs := make([]string, nOut)
	for i := range outs {
		if i == 0 {
			outs[i] = name
		} else {
			outs[i] = b.Fresh(op + "_out")
		}
	}
	n := &Node{Name: name, OpType: op, Domain: domain, Inputs: inputs, Outputs: outs, Attrs: map[string]*Attribute{}}
	if domain == DomainONNX {
		n.Opset = b.NodeOpset
	}
	b.g.Nodes = append(b.g.Nodes, n)
	return &NodeRef{b: b, node: n}
}

// With sets attributes and returns the same reference.
func (r *NodeRef) With(attrs ...*Attribute) *NodeRef {
	for _, a := range attrs {
		r.node.SetAttr(a)
	}
	return r
}

// Named renames the node's first output (and the node) to name.
func (r *NodeRef) Named(name string) *NodeRef {
	r.node.Outputs[0] = r.b.claim(name)
	r.node.Name = name
	return r
}

// Out is the name of the first output.
func (r *NodeRef) Out() string { return r.node.Outputs[0] }

// Outs are the names of all outputs.
func (r *NodeRef) Outs() []string { return r.node.Outputs }

// Node is the node added.
func (r *NodeRef) Node() *Node { return r.node }

func (r *NodeRef) String() string { return r.Out() }

// Output declares graph outputs; their types are inferred by Model.
func (b *Builder) Output(names ...string) {
	for _, n := range names {
		b.g.Outputs = append(b.g.Outputs, &ValueInfo{Name: n})
	}
}

// Model finishes the graph: it infers the outputs' types and validates.
func (b *Builder) Model() (*Model, error) {
	if b.err != nil {
		return nil, b.err
	}
	types, err := InferShapes(b.model, nil)
	if err != nil {
		return nil, err
	}
	for _, o := range b.g.Outputs {
		t, ok := types[o.Name]
		if !ok || t == nil {
			return nil, fmt.Errorf("graph builder: output %q is not computed by the graph", o.Name)
		}
		o.Type = *t
		o.Type.Value = nil
	}
	return b.model, nil
}

// Attribute constructors.

// AInt is an int attribute.
func AInt(name string, v int64) *Attribute { return &Attribute{Name: name, Type: AttrInt, I: v} }

// AFloat is a float attribute.
func AFloat(name string, v float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloat, F: v}
}

// AString is a string attribute.
func AString(name, v string) *Attribute { return &Attribute{Name: name, Type: AttrString, S: v} }

// AInts is an ints attribute.
func AInts(name string, v ...int64) *Attribute {
	return &Attribute{Name: name, Type: AttrInts, Ints: v}
}

// AFloats is a floats attribute.
func AFloats(name string, v ...float32) *Attribute {
	return &Attribute{Name: name, Type: AttrFloats, Floats: v}
}

// ATensor is a tensor attribute.
func ATensor(name string, t *tensor.Tensor) *Attribute {
	return &Attribute{Name: name, Type: AttrTensor, T: t}
}

// Extend returns a builder that appends to m's graph (in place): the
// autodiff and training rewrites use it. Fresh names avoid every existing value.
func Extend(m *Model) *Builder {
	b := &Builder{model: m, g: m.Graph, names: map[string]bool{}}
	for _, in := range m.Graph.Inputs {
		b.names[in.Name] = true
	}
	for _, name := range m.Graph.InitializerNames() {
		b.names[name] = true
	}
	for _, n := range m.Graph.Nodes {
		b.names[n.Name] = true
		for _, o := range n.Outputs {
			b.names[o] = true
		}
	}
	return b
}
