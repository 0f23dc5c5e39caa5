package graph

import (
	"fmt"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Model-local functions (ModelProto.functions) are inlined when a model is
// loaded: a node whose (domain, op_type, overload) names a local function is
// replaced by a copy of the function's body in which
//   - formal inputs and outputs become the call's actual values,
//   - every value the body computes gets a name unused anywhere in the
//     model (call name + "/" + original name),
//   - attributes that refer to the function's attributes (ref_attr_name)
//     take the call's value, else the function's default, else are dropped,
//     as ONNX specifies.
//
// Calls inside bodies are inlined in turn, so the IR holds primitive ops
// only. The function's opset imports are added to the model's where the
// model lacks the domain.

// Fields of newer ONNX versions than the generated code, read from the
// unknown fields of the messages.
const (
	fieldFunctionAttributeProto = 11 // FunctionProto.attribute_proto: attributes with defaults (IR 9)
	fieldFunctionOverload       = 13 // FunctionProto.overload (IR 10)
	fieldNodeOverload           = 8  // NodeProto.overload (IR 10)
)

type function struct {
	fp       *onnxpb.FunctionProto
	key      string
	overload string
	defaults map[string]*onnxpb.AttributeProto
}

func (f *function) String() string {
	s := f.fp.GetName()
	if d := f.fp.GetDomain(); d != "" {
		s = d + "." + s
	}
	if f.overload != "" {
		s += ":" + f.overload
	}
	return fmt.Sprintf("%q", s)
}

func funcKey(domain, name, overload string) string {
	return NormDomain(domain) + "\x00" + name + "\x00" + overload
}

// unknownBytesFields calls fn for each length-delimited unknown field of m.
func unknownBytesFields(m proto.Message, fn func(num protowire.Number, v []byte) error) error {
	b := m.ProtoReflect().GetUnknown()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := fn(num, v); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

func newFunction(fp *onnxpb.FunctionProto) (*function, error) {
	f := &function{fp: fp, defaults: map[string]*onnxpb.AttributeProto{}}
	err := unknownBytesFields(fp, func(num protowire.Number, v []byte) error {
		switch num {
		case fieldFunctionOverload:
			f.overload = string(v)
		case fieldFunctionAttributeProto:
			ap := &onnxpb.AttributeProto{}
			if err := proto.Unmarshal(v, ap); err != nil {
				return fmt.Errorf("attribute default: %w", err)
			}
			f.defaults[ap.GetName()] = ap
		}
		return nil
	})
	f.key = funcKey(fp.GetDomain(), fp.GetName(), f.overload)
	if err != nil {
		return nil, fmt.Errorf("function %s: %w", f, err)
	}
	if fp.GetName() == "" {
		return nil, fmt.Errorf("a local function has no name")
	}
	return f, nil
}

func nodeOverload(np *onnxpb.NodeProto) string {
	var o string
	unknownBytesFields(np, func(num protowire.Number, v []byte) error {
		if num == fieldNodeOverload {
			o = string(v)
		}
		return nil
	})
	return o
}

// expand returns np, or the inlined body when np calls a local function.
func (l *loader) expand(np *onnxpb.NodeProto, depth int) ([]*onnxpb.NodeProto, error) {
	if len(l.funcs) == 0 {
		return []*onnxpb.NodeProto{np}, nil
	}
	f := l.funcs[funcKey(np.GetDomain(), np.GetOpType(), nodeOverload(np))]
	if f == nil {
		return []*onnxpb.NodeProto{np}, nil
	}
	if depth >= maxCallNesting {
		return nil, fmt.Errorf("function calls nest deeper than %d levels at %s (a function that calls itself?)", maxCallNesting, f)
	}
	body, err := l.instantiate(f, np)
	if err != nil {
		return nil, err
	}
	var out []*onnxpb.NodeProto
	for _, b := range body {
		sub, err := l.expand(b, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// instantiate copies f's body for one call.
func (l *loader) instantiate(f *function, call *onnxpb.NodeProto) ([]*onnxpb.NodeProto, error) {
	fp := f.fp
	callName := call.GetName()
	if callName == "" {
		for _, o := range call.GetOutput() {
			if o != "" {
				callName = o
				break
			}
		}
	}
	if callName == "" {
		callName = fp.GetName()
	}
	where := fmt.Sprintf("node %q calling function %s", callName, f)
	if len(call.GetInput()) > len(fp.GetInput()) || len(call.GetOutput()) > len(fp.GetOutput()) {
		return nil, fmt.Errorf("%s: %d inputs and %d outputs; the function has %d and %d",
			where, len(call.GetInput()), len(call.GetOutput()), len(fp.GetInput()), len(fp.GetOutput()))
	}
	l.inlined += len(fp.GetNode())
	if l.inlined > maxInlinedNodes {
		return nil, fmt.Errorf("%s: inlining functions creates more than %d nodes", where, maxInlinedNodes)
	}
	for _, op := range fp.GetOpsetImport() {
		d := NormDomain(op.GetDomain())
		if _, ok := l.model.Opsets[d]; !ok {
			l.model.Opsets[d] = op.GetVersion()
		}
	}

	rename := map[string]string{}
	for i, formal := range fp.GetInput() {
		actual := ""
		if i < len(call.GetInput()) {
			actual = call.GetInput()[i]
		}
		rename[formal] = actual
	}
	var tail []*onnxpb.NodeProto
	for j, formal := range fp.GetOutput() {
		actual := ""
		if j < len(call.GetOutput()) {
			actual = call.GetOutput()[j]
		}
		if actual == "" {
			actual = l.fresh(callName + "/" + formal)
		}
		if in, isInput := rename[formal]; isInput {
			// The function passes an input straight through.
			tail = append(tail, &onnxpb.NodeProto{OpType: proto.String("Identity"), Input: []string{in}, Output: []string{actual}})
			continue
		}
		rename[formal] = actual
	}
	body := make([]*onnxpb.NodeProto, len(fp.GetNode()))
	for i, np := range fp.GetNode() {
		body[i] = proto.Clone(np).(*onnxpb.NodeProto)
		l.defineNode(body[i], callName, rename)
	}
	callAttrs := map[string]*onnxpb.AttributeProto{}
	for _, a := range call.GetAttribute() {
		callAttrs[a.GetName()] = a
	}
	r := &rewriter{l: l, where: where, rename: rename, callAttrs: callAttrs, defaults: f.defaults}
	for _, np := range body {
		if err := r.node(np); err != nil {
			return nil, err
		}
		if np.Name != nil && np.GetName() != "" {
			np.Name = proto.String(callName + "/" + np.GetName())
		}
	}
	return append(body, tail...), nil
}

// defineNode gives a fresh name to every value np (and its subgraphs)
// defines that has none yet.
func (l *loader) defineNode(np *onnxpb.NodeProto, prefix string, rename map[string]string) {
	def := func(name string) {
		if _, ok := rename[name]; !ok && name != "" {
			rename[name] = l.fresh(prefix + "/" + name)
		}
	}
	for _, o := range np.GetOutput() {
		def(o)
	}
	var graphs []*onnxpb.GraphProto
	for _, a := range np.GetAttribute() {
		if a.GetRefAttrName() != "" {
			continue
		}
		if a.G != nil {
			graphs = append(graphs, a.G)
		}
		graphs = append(graphs, a.Graphs...)
	}
	for _, g := range graphs {
		for _, v := range g.GetInput() {
			def(v.GetName())
		}
		for _, t := range g.GetInitializer() {
			def(t.GetName())
		}
		for _, t := range g.GetSparseInitializer() {
			def(t.GetValues().GetName())
		}
		for _, sn := range g.GetNode() {
			l.defineNode(sn, prefix, rename)
		}
	}
}

// rewriter renames values and resolves attribute references in a copy of a
// function body.
type rewriter struct {
	l         *loader
	where     string
	rename    map[string]string
	callAttrs map[string]*onnxpb.AttributeProto
	defaults  map[string]*onnxpb.AttributeProto
}

func (r *rewriter) ref(name, what string) (string, error) {
	if name == "" {
		return "", nil
	}
	v, ok := r.rename[name]
	if !ok {
		return "", fmt.Errorf("%s: %s %q is neither a function input nor computed in the function", r.where, what, name)
	}
	return v, nil
}

func (r *rewriter) node(np *onnxpb.NodeProto) error {
	var err error
	for i, in := range np.Input {
		if np.Input[i], err = r.ref(in, fmt.Sprintf("node %q reads", np.GetName())); err != nil {
			return err
		}
	}
	for i, o := range np.Output {
		if o != "" {
			np.Output[i] = r.rename[o]
		}
	}
	attrs := np.Attribute[:0]
	for _, a := range np.Attribute {
		if ref := a.GetRefAttrName(); ref != "" {
			src := r.callAttrs[ref]
			if src == nil {
				src = r.defaults[ref]
			}
			if src == nil {
				continue // not given and no default: the attribute is absent
			}
			c := proto.Clone(src).(*onnxpb.AttributeProto)
			c.Name = a.Name
			c.RefAttrName = nil
			attrs = append(attrs, c)
			continue
		}
		if a.G != nil {
			if err := r.graph(a.G); err != nil {
				return err
			}
		}
		for _, g := range a.Graphs {
			if err := r.graph(g); err != nil {
				return err
			}
		}
		attrs = append(attrs, a)
	}
	np.Attribute = attrs
	return nil
}

func (r *rewriter) graph(g *onnxpb.GraphProto) error {
	for _, v := range g.Input {
		v.Name = proto.String(r.rename[v.GetName()])
	}
	for _, t := range g.Initializer {
		t.Name = proto.String(r.rename[t.GetName()])
	}
	for _, t := range g.SparseInitializer {
		if t.Values != nil {
			t.Values.Name = proto.String(r.rename[t.Values.GetName()])
		}
	}
	for _, v := range g.ValueInfo {
		if nv, ok := r.rename[v.GetName()]; ok {
			v.Name = proto.String(nv)
		}
	}
	for _, n := range g.Node {
		if err := r.node(n); err != nil {
			return err
		}
	}
	for _, v := range g.Output {
		nv, err := r.ref(v.GetName(), "subgraph output")
		if err != nil {
			return err
		}
		v.Name = proto.String(nv)
	}
	return nil
}
