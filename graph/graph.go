// Package graph is gotrain's intermediate representation of an ONNX model.
//
// A Graph is ONNX's model in Go form: named values flow between Nodes; graph
// inputs, initializers (the weights) and outputs are values with a dtype and a
// shape whose dims may be symbolic ("N" for the batch). Values are referred to
// by name, as in ONNX, so a graph loaded from a file, built in Go with a
// Builder, or extended into a training graph by autodiff are the same thing.
//
// Each op type has a Schema in a registry: its shape inference and, for
// differentiable ops, its gradient rule, kept together per op family
// (ops_*.go). Backends look ops up by (domain, type) in their own kernel
// registries; this package knows nothing of them.
//
// Load and Save convert between .onnx files and Models; the original protobuf
// messages are kept beside the IR so that fields gotrain does not model
// (doc strings, metadata, unknown fields) survive a round trip.
package graph

import (
	"fmt"
	"sort"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/tensor"
)

// Domains of the ops gotrain knows.
const (
	DomainONNX     = ""                         // ai.onnx
	DomainTraining = "ai.onnx.preview.training" // ONNX's Adam, Momentum, Adagrad
	DomainGotrain  = "ai.gotrain"               // gradient ops ONNX lacks
	DomainMS       = "com.microsoft"            // recognised only to name it in errors
	domainONNXAlt  = "ai.onnx"                  // an alias some exporters write
)

// NormDomain maps the "ai.onnx" alias to the empty default domain.
func NormDomain(d string) string {
	if d == domainONNXAlt {
		return DomainONNX
	}
	return d
}

// Dim is one dimension of a shape: a known size (Size >= 0) or a symbolic
// or unknown one (Size < 0, with Param naming it when it has a name).
type Dim struct {
	Size  int64
	Param string
}

// Known reports whether the dim has a concrete size.
func (d Dim) Known() bool { return d.Size >= 0 }

func (d Dim) String() string {
	if d.Size >= 0 {
		return fmt.Sprint(d.Size)
	}
	if d.Param != "" {
		return d.Param
	}
	return "?"
}

// D returns a known dim.
func D(n int64) Dim { return Dim{Size: n} }

// Sym returns a symbolic dim.
func Sym(name string) Dim { return Dim{Size: -1, Param: name} }

// Unknown is a dim with neither size nor name.
var Unknown = Dim{Size: -1}

// Shape is a list of dims; a nil Shape inside a Type with RankKnown false
// means even the rank is unknown.
type Shape []Dim

// ShapeOf turns concrete dims into a Shape.
func ShapeOf(dims ...int) Shape {
	s := make(Shape, len(dims))
	for i, d := range dims {
		s[i] = D(int64(d))
	}
	return s
}

// Concrete returns the dims as ints when all are known.
func (s Shape) Concrete() ([]int, bool) {
	out := make([]int, len(s))
	for i, d := range s {
		if !d.Known() {
			return nil, false
		}
		out[i] = int(d.Size)
	}
	return out, true
}

func (s Shape) String() string {
	b := []byte{'['}
	for i, d := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d.String()...)
	}
	return string(append(b, ']'))
}

// Type is what is known of a value: its dtype, its shape (when RankKnown),
// and, for constants and values folded from them, the value itself.
type Type struct {
	DType     tensor.DType
	Shape     Shape
	RankKnown bool
	Value     *tensor.Tensor // known value, or nil
}

// TypeOf describes a concrete tensor, value included.
func TypeOf(t *tensor.Tensor) *Type {
	return &Type{DType: t.DType(), Shape: ShapeOf(t.Shape()...), RankKnown: true, Value: t}
}

// NewType returns a type with a known rank.
func NewType(dt tensor.DType, s Shape) *Type {
	return &Type{DType: dt, Shape: s, RankKnown: true}
}

// Concrete returns the shape as ints when fully known.
func (t *Type) Concrete() ([]int, bool) {
	if t == nil || !t.RankKnown {
		return nil, false
	}
	return t.Shape.Concrete()
}

func (t *Type) String() string {
	if t == nil {
		return "<none>"
	}
	if !t.RankKnown {
		return t.DType.String() + "[...]"
	}
	return t.DType.String() + t.Shape.String()
}

// ValueInfo names a value and what is declared about it.
type ValueInfo struct {
	Name string
	Type
	Doc string
}

// AttrType mirrors ONNX's AttributeProto.AttributeType.
type AttrType int32

// Attribute types, numbered as in ONNX.
const (
	AttrFloat   AttrType = 1
	AttrInt     AttrType = 2
	AttrString  AttrType = 3
	AttrTensor  AttrType = 4
	AttrGraph   AttrType = 5
	AttrFloats  AttrType = 6
	AttrInts    AttrType = 7
	AttrStrings AttrType = 8
	AttrTensors AttrType = 9
	AttrGraphs  AttrType = 10
)

// Attribute is a typed node attribute. Only the field of its Type is set.
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       string
	T       *tensor.Tensor
	G       *Graph
	Floats  []float32
	Ints    []int64
	Strings []string
	Tensors []*tensor.Tensor
	Graphs  []*Graph
	RefAttr string // set when the attribute refers to an enclosing function's attribute
}

// Node is one op application.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string // "" marks an omitted optional input
	Outputs []string
	Attrs   map[string]*Attribute
	Doc     string
	// Opset, when non-zero, is the version of the node's domain it follows
	// instead of the model's import: nodes that autodiff adds to a model of
	// an older opset use current forms (Unsqueeze with an axes input, ...).
	Opset int64

	src *onnxpb.NodeProto // the loaded message, for fields the IR does not model
}

// String names the node for error messages: its name and op type.
func (n *Node) String() string {
	name := n.Name
	if name == "" && len(n.Outputs) > 0 {
		name = "->" + n.Outputs[0]
	}
	op := n.OpType
	if n.Domain != "" {
		op = n.Domain + "." + op
	}
	return fmt.Sprintf("node %q (%s)", name, op)
}

// Input returns the i-th input name, or "" when absent.
func (n *Node) Input(i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// Attr returns an attribute or nil.
func (n *Node) Attr(name string) *Attribute {
	if n.Attrs == nil {
		return nil
	}
	return n.Attrs[name]
}

// AttrInt returns an int attribute or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.I
	}
	return def
}

// AttrFloat returns a float attribute or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.F
	}
	return def
}

// AttrString returns a string attribute or def when absent.
func (n *Node) AttrString(name string, def string) string {
	if a := n.Attr(name); a != nil {
		return a.S
	}
	return def
}

// AttrInts returns an ints attribute or def when absent.
func (n *Node) AttrInts(name string, def []int64) []int64 {
	if a := n.Attr(name); a != nil {
		return a.Ints
	}
	return def
}

// AttrFloats returns a floats attribute or def when absent.
func (n *Node) AttrFloats(name string, def []float32) []float32 {
	if a := n.Attr(name); a != nil {
		return a.Floats
	}
	return def
}

// SetAttr sets (or replaces) an attribute; it returns n for chaining.
func (n *Node) SetAttr(a *Attribute) *Node {
	if n.Attrs == nil {
		n.Attrs = map[string]*Attribute{}
	}
	n.Attrs[a.Name] = a
	return n
}

// Graph is a computation graph.
type Graph struct {
	Name       string
	Doc        string
	Inputs     []*ValueInfo // graph inputs that are not initializers
	Outputs    []*ValueInfo
	Nodes      []*Node
	ValueInfo  map[string]*ValueInfo // declared types of intermediate values
	initNames  []string
	inits      map[string]*tensor.Tensor
	initSrc    map[string]*onnxpb.TensorProto
	initInputs map[string]*ValueInfo // initializers that were also listed as inputs (IR < 4 style)
	src        *onnxpb.GraphProto
}

// NewGraph returns an empty graph.
func NewGraph(name string) *Graph {
	return &Graph{Name: name, ValueInfo: map[string]*ValueInfo{}, inits: map[string]*tensor.Tensor{}}
}

// Initializer returns the named initializer or nil.
func (g *Graph) Initializer(name string) *tensor.Tensor { return g.inits[name] }

// InitializerNames lists initializers in file order.
func (g *Graph) InitializerNames() []string { return g.initNames }

// SetInitializer adds or replaces an initializer.
func (g *Graph) SetInitializer(name string, t *tensor.Tensor) {
	if g.inits == nil {
		g.inits = map[string]*tensor.Tensor{}
	}
	if _, ok := g.inits[name]; !ok {
		g.initNames = append(g.initNames, name)
	}
	g.inits[name] = t
}

// RemoveInitializer deletes an initializer.
func (g *Graph) RemoveInitializer(name string) {
	if _, ok := g.inits[name]; !ok {
		return
	}
	delete(g.inits, name)
	delete(g.initSrc, name)
	for i, n := range g.initNames {
		if n == name {
			g.initNames = append(g.initNames[:i:i], g.initNames[i+1:]...)
			break
		}
	}
}

// Input returns the graph input of that name or nil.
func (g *Graph) Input(name string) *ValueInfo {
	for _, v := range g.Inputs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Producers maps each value name to the node that outputs it.
func (g *Graph) Producers() map[string]*Node {
	m := make(map[string]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				m[o] = n
			}
		}
	}
	return m
}

// Consumers maps each value name to the nodes that read it.
func (g *Graph) Consumers() map[string][]*Node {
	m := map[string][]*Node{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				m[in] = append(m[in], n)
			}
		}
	}
	return m
}

// Clone returns a copy of the graph whose node list, value declarations and
// initializer table can be changed without touching g. Tensors are shared.
func (g *Graph) Clone() *Graph {
	c := *g
	c.Inputs = append([]*ValueInfo{}, g.Inputs...)
	c.Outputs = append([]*ValueInfo{}, g.Outputs...)
	c.Nodes = make([]*Node, len(g.Nodes))
	for i, n := range g.Nodes {
		nn := *n
		nn.Inputs = append([]string{}, n.Inputs...)
		nn.Outputs = append([]string{}, n.Outputs...)
		nn.Attrs = make(map[string]*Attribute, len(n.Attrs))
		for k, v := range n.Attrs {
			nn.Attrs[k] = v
		}
		c.Nodes[i] = &nn
	}
	c.ValueInfo = make(map[string]*ValueInfo, len(g.ValueInfo))
	for k, v := range g.ValueInfo {
		c.ValueInfo[k] = v
	}
	c.initNames = append([]string{}, g.initNames...)
	c.inits = make(map[string]*tensor.Tensor, len(g.inits))
	for k, v := range g.inits {
		c.inits[k] = v
	}
	c.initSrc = make(map[string]*onnxpb.TensorProto, len(g.initSrc))
	for k, v := range g.initSrc {
		c.initSrc[k] = v
	}
	c.initInputs = make(map[string]*ValueInfo, len(g.initInputs))
	for k, v := range g.initInputs {
		c.initInputs[k] = v
	}
	return &c
}

// Model is a graph with the model-level facts of an ONNX file.
type Model struct {
	Graph           *Graph
	IRVersion       int64
	Opsets          map[string]int64 // domain ("" for ai.onnx) -> version
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Metadata        map[string]string

	src *onnxpb.ModelProto
}

// Opset returns the imported version of a domain (0 when not imported).
func (m *Model) Opset(domain string) int64 { return m.Opsets[NormDomain(domain)] }

// OpsetOf returns the opset a node follows: its own when set, else the
// model's import of its domain (1 for gotrain's domain when not imported).
func (m *Model) OpsetOf(n *Node) int64 {
	if n.Opset != 0 {
		return n.Opset
	}
	if v := m.Opset(n.Domain); v != 0 {
		return v
	}
	if NormDomain(n.Domain) == DomainGotrain {
		return 1
	}
	return 0
}

// NewModel wraps a graph with the given ai.onnx opset and the current IR version.
func NewModel(g *Graph, opset int64) *Model {
	return &Model{Graph: g, IRVersion: 8, Opsets: map[string]int64{"": opset}, ProducerName: "gotrain", Metadata: map[string]string{}}
}

// MetadataKeys returns the metadata keys sorted, for stable output.
func (m *Model) MetadataKeys() []string {
	keys := make([]string, 0, len(m.Metadata))
	for k := range m.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
