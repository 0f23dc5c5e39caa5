package graph

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/tensor"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Loading converts an ONNX ModelProto into a Model. What the IR models
// (nodes, attributes, initializers, inputs, outputs, value types, opsets,
// metadata) is converted; the source messages are kept beside the IR so
// that Save writes back what the IR does not model (doc strings, unknown
// fields of newer ONNX versions, training_info, quantization annotations).
//
// Loading also normalises a few things so that the rest of gotrain sees one
// form of graph:
//   - calls to the model's local functions are inlined, with their
//     intermediate values renamed uniquely and attribute references resolved;
//   - sparse initializers become dense ones;
//   - graph inputs that are also initializers (IR < 4 style) are not graph
//     inputs in the IR; they are remembered so Save lists them again;
//   - the "ai.onnx" domain is written "".
//
// Values whose type is not a tensor (sequences, maps, optionals, sparse
// tensors) or whose element type gotrain cannot hold fail with an
// *UnsupportedTypeError.

// UnsupportedTypeError reports a value whose type gotrain cannot represent:
// a non-tensor type (sequence, map, optional, sparse_tensor) or a tensor
// of an element type gotrain does not support (float8, int4, complex).
type UnsupportedTypeError struct {
	Value string // the value's name
	Kind  string // "sequence", "map", "optional", "sparse_tensor", "tensor(float8e4m3fn)", ...
}

func (e *UnsupportedTypeError) Error() string {
	if strings.HasPrefix(e.Kind, "tensor(") {
		return fmt.Sprintf("value %q has type %s: unsupported element type", e.Value, e.Kind)
	}
	return fmt.Sprintf("value %q has type %s: unsupported (gotrain supports tensor inputs only)", e.Value, e.Kind)
}

// Limits that keep corrupt or hostile models from exhausting the stack or
// memory while loading.
const (
	maxGraphNesting = 256     // subgraphs inside subgraphs
	maxCallNesting  = 64      // function calls inside function bodies
	maxInlinedNodes = 1 << 22 // nodes created by inlining, in all
)

// Load reads an ONNX model file. External tensor data is resolved relative
// to the file's folder. Errors name the file.
func Load(path string) (*Model, error) {
	var data []byte
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
		// The file is held whole while it is parsed.
		if err := tensor.CheckAlloc(fmt.Sprintf("graph: %s: a %d-byte model file", path, st.Size()), st.Size(), 1); err != nil {
			return nil, err
		}
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
	} else if data, err = readBounded(path); err != nil {
		return nil, err
	}
	m, err := loadBytes(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", path, err)
	}
	return m, nil
}

// readBounded reads a path that is not a regular file (a pipe,
// /dev/stdin), which has no size to check before reading: up to the
// memory limit, and refused past it.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	defer f.Close()
	limit := tensor.MemoryLimit()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("graph: %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, &tensor.LimitError{What: fmt.Sprintf("graph: %s: a model read past %d bytes", path, limit), Bytes: int64(len(data)), Limit: limit}
	}
	return data, nil
}

// LoadBytes parses a serialized ONNX model. dir is the folder external
// tensor data is resolved in; "" refuses external data.
func LoadBytes(data []byte, dir string) (*Model, error) {
	m, err := loadBytes(data, dir)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return m, nil
}

func loadBytes(data []byte, dir string) (*Model, error) {
	if len(data) == 0 {
		return nil, errors.New("not an ONNX model: the file is empty")
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		return nil, wireError(data, err)
	}
	if mp.Graph == nil {
		return nil, fmt.Errorf("not an ONNX model: no graph (ir_version %d, %d bytes)", mp.GetIrVersion(), len(data))
	}
	return fromProto(mp, dir)
}

// wireError explains why bytes failed to parse: a file cut short fails
// inside its last top-level field, anything else is not a model at all.
func wireError(b []byte, err error) error {
	size := len(b)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			break
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			if typ == protowire.BytesType {
				if l, k := protowire.ConsumeVarint(b[n:]); k > 0 && l > uint64(len(b)-n-k) {
					return fmt.Errorf("truncated: field %d needs %d bytes but the data ends after %d (file is %d bytes)", num, l, len(b)-n-k, size)
				}
			}
			if errors.Is(protowire.ParseError(m), io.ErrUnexpectedEOF) {
				return fmt.Errorf("truncated: the data ends inside field %d (file is %d bytes)", num, size)
			}
			break
		}
		b = b[n+m:]
	}
	return fmt.Errorf("not an ONNX model: %v", err)
}

// FromProto converts a parsed ModelProto. dir resolves external tensor
// data ("" refuses it). The message is kept, not copied: do not change it
// while the Model is in use.
func FromProto(mp *onnxpb.ModelProto, dir string) (*Model, error) {
	m, err := fromProto(mp, dir)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return m, nil
}

// loader holds what converting one model needs.
type loader struct {
	dir     string
	model   *Model
	funcs   map[string]*function
	used    map[string]bool // every value name in the model, for fresh names
	next    map[string]int  // fresh: the first suffix not yet tried for a base
	inlined int
}

func fromProto(mp *onnxpb.ModelProto, dir string) (*Model, error) {
	if mp.GetGraph() == nil {
		return nil, errors.New("model has no graph")
	}
	m := &Model{
		IRVersion:       mp.GetIrVersion(),
		Opsets:          map[string]int64{},
		ProducerName:    mp.GetProducerName(),
		ProducerVersion: mp.GetProducerVersion(),
		Domain:          mp.GetDomain(),
		ModelVersion:    mp.GetModelVersion(),
		Doc:             mp.GetDocString(),
		Metadata:        map[string]string{},
		src:             mp,
	}
	for _, op := range mp.GetOpsetImport() {
		d := NormDomain(op.GetDomain())
		if v, dup := m.Opsets[d]; dup && v != op.GetVersion() {
			return nil, fmt.Errorf("opset_import lists domain %q twice, at versions %d and %d", op.GetDomain(), v, op.GetVersion())
		}
		m.Opsets[d] = op.GetVersion()
	}
	for _, kv := range mp.GetMetadataProps() {
		m.Metadata[kv.GetKey()] = kv.GetValue()
	}
	l := &loader{dir: dir, model: m, funcs: map[string]*function{}, used: map[string]bool{}, next: map[string]int{}}
	for _, fp := range mp.GetFunctions() {
		f, err := newFunction(fp)
		if err != nil {
			return nil, err
		}
		if _, dup := l.funcs[f.key]; dup {
			return nil, fmt.Errorf("function %s is defined twice", f)
		}
		l.funcs[f.key] = f
	}
	collectNames(mp.GetGraph(), l.used)
	g, err := l.graph(mp.GetGraph(), nil, 0)
	if err != nil {
		return nil, err
	}
	m.Graph = g
	return m, nil
}

// collectNames adds every value name of g and its subgraphs to used.
func collectNames(g *onnxpb.GraphProto, used map[string]bool) {
	for _, v := range g.GetInput() {
		used[v.GetName()] = true
	}
	for _, v := range g.GetOutput() {
		used[v.GetName()] = true
	}
	for _, v := range g.GetValueInfo() {
		used[v.GetName()] = true
	}
	for _, t := range g.GetInitializer() {
		used[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		used[t.GetValues().GetName()] = true
	}
	for _, n := range g.GetNode() {
		for _, s := range n.GetInput() {
			used[s] = true
		}
		for _, s := range n.GetOutput() {
			used[s] = true
		}
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				collectNames(a.GetG(), used)
			}
			for _, sg := range a.GetGraphs() {
				collectNames(sg, used)
			}
		}
	}
}

// fresh returns a value name not used anywhere in the model: base, or
// base_N for the smallest N free. The search for a base starts where the
// last one ended (every name before was taken, and names are never given
// back), so inlining many calls of one function stays linear.
func (l *loader) fresh(base string) string {
	name := base
	i := max(l.next[base], 1)
	for ; l.used[name]; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	l.next[base] = i
	l.used[name] = true
	return name
}

// scope holds the value names a graph defines; a subgraph's links to its
// enclosing graph's rather than copying them, so that loading stays linear
// in the model's size however many subgraphs it has (nesting is bounded).
type scope struct {
	names map[string]bool
	outer *scope
}

func (s *scope) has(name string) bool {
	for ; s != nil; s = s.outer {
		if s.names[name] {
			return true
		}
	}
	return false
}

// graph converts a graph; outer holds the names visible from enclosing
// graphs (nil for the main graph).
func (l *loader) graph(gp *onnxpb.GraphProto, outer *scope, level int) (*Graph, error) {
	if level > maxGraphNesting {
		return nil, &nestingError{graph: gp.GetName()}
	}
	g, err := l.graphBody(gp, outer, level)
	var ne *nestingError
	if err != nil {
		if level == 0 || gp.GetName() == "" || errors.As(err, &ne) {
			return nil, err
		}
		return nil, fmt.Errorf("subgraph %q: %w", gp.GetName(), err)
	}
	return g, nil
}

// nestingError is subgraphs nested past maxGraphNesting. It goes up
// unwrapped: the path down to it would repeat a node and a subgraph
// name for each of the hundreds of levels.
type nestingError struct{ graph string }

func (e *nestingError) Error() string {
	return fmt.Sprintf("subgraphs nest deeper than %d levels (graph %q is below that)", maxGraphNesting, e.graph)
}

func (l *loader) graphBody(gp *onnxpb.GraphProto, outer *scope, level int) (*Graph, error) {
	g := NewGraph(gp.GetName())
	g.Doc = gp.GetDocString()
	g.src = gp
	g.initSrc = map[string]*onnxpb.TensorProto{}
	g.initInputs = map[string]*ValueInfo{}
	addInit := func(name string, t *tensor.Tensor, what string, i int) error {
		if name == "" {
			return fmt.Errorf("%s %d has no name", what, i)
		}
		if g.inits[name] != nil {
			return fmt.Errorf("initializer %q appears twice", name)
		}
		g.SetInitializer(name, t)
		return nil
	}
	for i, tp := range gp.GetInitializer() {
		t, err := tensor.FromProto(tp, l.dir)
		if err != nil {
			return nil, fmt.Errorf("initializer: %w", err)
		}
		if err := addInit(tp.GetName(), t, "initializer", i); err != nil {
			return nil, err
		}
		g.initSrc[tp.GetName()] = tp
	}
	for i, sp := range gp.GetSparseInitializer() {
		t, err := densify(sp, l.dir)
		if err != nil {
			return nil, fmt.Errorf("sparse initializer %q: %w", sp.GetValues().GetName(), err)
		}
		if err := addInit(sp.GetValues().GetName(), t, "sparse initializer", i); err != nil {
			return nil, err
		}
	}
	seenInput := map[string]bool{}
	for i, vp := range gp.GetInput() {
		vi, err := valueInfo(vp)
		if err != nil {
			return nil, err
		}
		if vi.Name == "" {
			return nil, fmt.Errorf("input %d has no name", i)
		}
		if seenInput[vi.Name] {
			return nil, fmt.Errorf("input %q is listed twice", vi.Name)
		}
		seenInput[vi.Name] = true
		if g.inits[vi.Name] != nil {
			g.initInputs[vi.Name] = vi
		} else {
			g.Inputs = append(g.Inputs, vi)
		}
	}
	for i, vp := range gp.GetOutput() {
		vi, err := valueInfo(vp)
		if err != nil {
			return nil, err
		}
		if vi.Name == "" {
			return nil, fmt.Errorf("output %d has no name", i)
		}
		g.Outputs = append(g.Outputs, vi)
	}
	for _, vp := range gp.GetValueInfo() {
		vi, err := valueInfo(vp)
		if err != nil {
			return nil, err
		}
		g.ValueInfo[vi.Name] = vi
	}

	// Inline function calls first, so that the scope seen by subgraphs
	// includes the values the inlined bodies compute.
	var flat []*onnxpb.NodeProto
	for _, np := range gp.GetNode() {
		nodes, err := l.expand(np, 0)
		if err != nil {
			return nil, err
		}
		flat = append(flat, nodes...)
	}
	sc := &scope{names: make(map[string]bool, len(flat)+len(gp.GetInput())+len(g.inits)), outer: outer}
	for _, v := range gp.GetInput() {
		sc.names[v.GetName()] = true
	}
	for name := range g.inits {
		sc.names[name] = true
	}
	for _, np := range flat {
		for _, o := range np.GetOutput() {
			if o != "" {
				sc.names[o] = true
			}
		}
	}
	g.Nodes = make([]*Node, 0, len(flat))
	for i, np := range flat {
		n, err := l.node(np, i, sc, level)
		if err != nil {
			return nil, err
		}
		for _, in := range n.Inputs {
			if in != "" && !sc.has(in) {
				return nil, Errorf(n, "input %q is not a graph input, an initializer or any node's output", in)
			}
		}
		g.Nodes = append(g.Nodes, n)
	}
	for _, o := range g.Outputs {
		if !sc.has(o.Name) {
			return nil, fmt.Errorf("graph output %q is not a graph input, an initializer or any node's output", o.Name)
		}
	}
	return g, nil
}

// valueInfo converts a declared value; only tensor types are accepted.
func valueInfo(vp *onnxpb.ValueInfoProto) (*ValueInfo, error) {
	vi := &ValueInfo{Name: vp.GetName(), Doc: vp.GetDocString()}
	tp := vp.GetType()
	if tp == nil {
		return vi, nil
	}
	switch v := tp.GetValue().(type) {
	case *onnxpb.TypeProto_TensorType:
		tt := v.TensorType
		dt := tt.GetElemType()
		if dt != 0 && !tensor.DType(dt).Supported() {
			return nil, &UnsupportedTypeError{Value: vi.Name, Kind: "tensor(" + tensor.ONNXTypeName(dt) + ")"}
		}
		vi.DType = tensor.DType(dt)
		if sp := tt.GetShape(); sp != nil {
			vi.RankKnown = true
			vi.Shape = make(Shape, len(sp.GetDim()))
			for i, d := range sp.GetDim() {
				vi.Shape[i] = Unknown
				switch dv := d.GetValue().(type) {
				case *onnxpb.TensorShapeProto_Dimension_DimValue:
					if dv.DimValue >= 0 {
						vi.Shape[i] = D(dv.DimValue)
					}
				case *onnxpb.TensorShapeProto_Dimension_DimParam:
					if dv.DimParam != "" {
						vi.Shape[i] = Sym(dv.DimParam)
					}
				}
			}
		}
	case *onnxpb.TypeProto_SequenceType:
		return nil, &UnsupportedTypeError{Value: vi.Name, Kind: "sequence"}
	case *onnxpb.TypeProto_MapType:
		return nil, &UnsupportedTypeError{Value: vi.Name, Kind: "map"}
	case *onnxpb.TypeProto_OptionalType:
		return nil, &UnsupportedTypeError{Value: vi.Name, Kind: "optional"}
	case *onnxpb.TypeProto_SparseTensorType:
		return nil, &UnsupportedTypeError{Value: vi.Name, Kind: "sparse_tensor"}
	default:
		if len(tp.ProtoReflect().GetUnknown()) > 0 {
			// A type newer than this reader (an opaque type, say).
			return nil, &UnsupportedTypeError{Value: vi.Name, Kind: "an unrecognised type"}
		}
	}
	return vi, nil
}

// node converts one (already inlined) node.
func (l *loader) node(np *onnxpb.NodeProto, index int, sc *scope, level int) (*Node, error) {
	n := &Node{
		Name:    np.GetName(),
		OpType:  np.GetOpType(),
		Domain:  NormDomain(np.GetDomain()),
		Inputs:  append([]string{}, np.GetInput()...),
		Outputs: append([]string{}, np.GetOutput()...),
		Attrs:   make(map[string]*Attribute, len(np.GetAttribute())),
		Doc:     np.GetDocString(),
		src:     np,
	}
	if n.OpType == "" {
		return nil, fmt.Errorf("node %d (%q) has no op_type", index, n.Name)
	}
	for _, ap := range np.GetAttribute() {
		a, err := l.attr(ap, n, sc, level)
		if err != nil {
			var ue *UnsupportedOpError
			var te *UnsupportedTypeError
			var ne *nestingError
			if errors.As(err, &ue) || errors.As(err, &te) || errors.As(err, &ne) {
				return nil, err
			}
			return nil, Errorf(n, "attribute %q: %v", ap.GetName(), err)
		}
		if n.Attrs[a.Name] != nil {
			return nil, Errorf(n, "attribute %q appears twice", a.Name)
		}
		n.Attrs[a.Name] = a
	}
	if err := CheckAttrs(n, l.model.OpsetOf(n)); err != nil {
		return nil, err
	}
	return n, nil
}

// attrType infers the type of an attribute that does not state it (files
// from early IR versions) from the field that is set.
func attrType(ap *onnxpb.AttributeProto) onnxpb.AttributeProto_AttributeType {
	if ap.Type != nil {
		return ap.GetType()
	}
	switch {
	case len(ap.Floats) > 0:
		return onnxpb.AttributeProto_FLOATS
	case len(ap.Ints) > 0:
		return onnxpb.AttributeProto_INTS
	case len(ap.Strings) > 0:
		return onnxpb.AttributeProto_STRINGS
	case len(ap.Tensors) > 0:
		return onnxpb.AttributeProto_TENSORS
	case len(ap.Graphs) > 0:
		return onnxpb.AttributeProto_GRAPHS
	case ap.T != nil:
		return onnxpb.AttributeProto_TENSOR
	case ap.G != nil:
		return onnxpb.AttributeProto_GRAPH
	case ap.SparseTensor != nil:
		return onnxpb.AttributeProto_SPARSE_TENSOR
	case ap.S != nil:
		return onnxpb.AttributeProto_STRING
	case ap.F != nil:
		return onnxpb.AttributeProto_FLOAT
	case ap.I != nil:
		return onnxpb.AttributeProto_INT
	}
	return onnxpb.AttributeProto_UNDEFINED
}

func (l *loader) attr(ap *onnxpb.AttributeProto, n *Node, sc *scope, level int) (*Attribute, error) {
	if ap.GetName() == "" {
		return nil, Errorf(n, "an attribute has no name")
	}
	typ := attrType(ap)
	a := &Attribute{Name: ap.GetName(), Type: AttrType(typ), RefAttr: ap.GetRefAttrName()}
	if a.RefAttr != "" {
		return a, nil
	}
	var err error
	switch typ {
	case onnxpb.AttributeProto_FLOAT:
		a.F = ap.GetF()
	case onnxpb.AttributeProto_INT:
		a.I = ap.GetI()
	case onnxpb.AttributeProto_STRING:
		a.S = string(ap.GetS())
	case onnxpb.AttributeProto_FLOATS:
		a.Floats = append([]float32{}, ap.GetFloats()...)
	case onnxpb.AttributeProto_INTS:
		a.Ints = append([]int64{}, ap.GetInts()...)
	case onnxpb.AttributeProto_STRINGS:
		a.Strings = make([]string, len(ap.GetStrings()))
		for i, s := range ap.GetStrings() {
			a.Strings[i] = string(s)
		}
	case onnxpb.AttributeProto_TENSOR:
		if ap.GetT() == nil {
			return nil, errors.New("tensor attribute without a tensor")
		}
		if a.T, err = tensor.FromProto(ap.GetT(), l.dir); err != nil {
			return nil, err
		}
	case onnxpb.AttributeProto_TENSORS:
		a.Tensors = make([]*tensor.Tensor, len(ap.GetTensors()))
		for i, tp := range ap.GetTensors() {
			if a.Tensors[i], err = tensor.FromProto(tp, l.dir); err != nil {
				return nil, err
			}
		}
	case onnxpb.AttributeProto_SPARSE_TENSOR:
		// Densified: kernels see one tensor form.
		a.Type = AttrTensor
		if a.T, err = densify(ap.GetSparseTensor(), l.dir); err != nil {
			return nil, err
		}
	case onnxpb.AttributeProto_GRAPH:
		if ap.GetG() == nil {
			return nil, errors.New("graph attribute without a graph")
		}
		if a.G, err = l.graph(ap.GetG(), sc, level+1); err != nil {
			return nil, err
		}
	case onnxpb.AttributeProto_GRAPHS:
		a.Graphs = make([]*Graph, len(ap.GetGraphs()))
		for i, gp := range ap.GetGraphs() {
			if a.Graphs[i], err = l.graph(gp, sc, level+1); err != nil {
				return nil, err
			}
		}
	case onnxpb.AttributeProto_SPARSE_TENSORS, onnxpb.AttributeProto_TYPE_PROTO, onnxpb.AttributeProto_TYPE_PROTOS:
		return nil, &UnsupportedOpError{Node: n, Reason: fmt.Sprintf("attribute %q has type %v", ap.GetName(), typ)}
	default:
		return nil, fmt.Errorf("unknown attribute type %d", int32(typ))
	}
	return a, nil
}

// densify converts a sparse tensor (values and indices, COO) to a dense one.
func densify(sp *onnxpb.SparseTensorProto, dir string) (*tensor.Tensor, error) {
	if sp == nil || sp.GetValues() == nil || sp.GetIndices() == nil {
		return nil, errors.New("sparse tensor lacks values or indices")
	}
	vals, err := tensor.FromProto(sp.GetValues(), dir)
	if err != nil {
		return nil, err
	}
	idxT, err := tensor.FromProto(sp.GetIndices(), dir)
	if err != nil {
		return nil, err
	}
	if vals.Rank() != 1 {
		return nil, fmt.Errorf("values have shape %v; want 1-D", vals.Shape())
	}
	// The dense form is bounded like an inline initializer, by protobuf's
	// 2 GiB message limit; a larger one is surely a corrupt file.
	elem := max(vals.DType().Size(), 8)
	shape := make([]int, len(sp.GetDims()))
	total := int64(1)
	for i, d := range sp.GetDims() {
		if d < 0 || (d > 0 && total > (1<<31)/int64(elem)/d) {
			return nil, fmt.Errorf("dims %v are negative or exceed 2 GiB dense", sp.GetDims())
		}
		total *= d
		shape[i] = int(d)
	}
	nnz := vals.Len()
	idx, err := idxT.AsInt64s()
	if err != nil {
		return nil, fmt.Errorf("indices: %w", err)
	}
	pos := make([]int, nnz)
	strides := tensor.Strides(shape)
	switch {
	case idxT.Rank() == 1 && len(idx) == nnz:
		for k, v := range idx {
			if v < 0 || v >= total {
				return nil, fmt.Errorf("index %d out of range for %d elements", v, total)
			}
			pos[k] = int(v)
		}
	case idxT.Rank() == 2 && idxT.Shape()[0] == nnz && idxT.Shape()[1] == len(shape):
		r := len(shape)
		for k := range nnz {
			p := 0
			for j := range r {
				v := idx[k*r+j]
				if v < 0 || v >= int64(shape[j]) {
					return nil, fmt.Errorf("index %d out of range for dim %d of %v", v, j, shape)
				}
				p += int(v) * strides[j]
			}
			pos[k] = p
		}
	default:
		return nil, fmt.Errorf("indices have shape %v; want [%d] or [%d,%d]", idxT.Shape(), nnz, nnz, len(shape))
	}
	dense, err := tensor.NewChecked(vals.DType(), shape)
	if err != nil {
		return nil, err
	}
	switch d := dense.Data().(type) {
	case []float32:
		scatter(d, vals.Data().([]float32), pos)
	case []float64:
		scatter(d, vals.Data().([]float64), pos)
	case []int64:
		scatter(d, vals.Data().([]int64), pos)
	case []int32:
		scatter(d, vals.Data().([]int32), pos)
	case []int16:
		scatter(d, vals.Data().([]int16), pos)
	case []int8:
		scatter(d, vals.Data().([]int8), pos)
	case []uint8:
		scatter(d, vals.Data().([]uint8), pos)
	case []uint16:
		scatter(d, vals.Data().([]uint16), pos)
	case []uint32:
		scatter(d, vals.Data().([]uint32), pos)
	case []uint64:
		scatter(d, vals.Data().([]uint64), pos)
	case []bool:
		scatter(d, vals.Data().([]bool), pos)
	case []string:
		scatter(d, vals.Data().([]string), pos)
	}
	return dense, nil
}

func scatter[T any](dst, src []T, pos []int) {
	for k, p := range pos {
		dst[p] = src[k]
	}
}
