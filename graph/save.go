package graph

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/tensor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Saving converts a Model back to a ModelProto. Each message starts from
// the one it was loaded from, where there is one, so that what the IR does
// not model survives (doc strings, unknown fields, training_info, local
// functions, quantization annotations, dim denotations); what the IR models
// (nodes, initializers, inputs, outputs, value types, opsets, metadata) is
// written from the IR. Initializers are written as raw_data, or to an
// external data file with SaveWith. Models built in Go save the same way.

// defaultIRVersion is written for models that do not state one.
const defaultIRVersion = 8

// SaveOptions control how Save lays out a model.
type SaveOptions struct {
	// ExternalDataFile, when set, is a file name relative to the model's
	// folder that receives the data of large initializers; the model then
	// refers to it (ONNX external data). "" keeps all data in the model.
	ExternalDataFile string
	// Threshold is the size in bytes from which an initializer goes to the
	// external file (0 means 1024, ONNX's usual choice).
	Threshold int
}

// Save writes m to path atomically: a failed save leaves an existing file
// unchanged.
func Save(m *Model, path string) error { return SaveWith(m, path, SaveOptions{}) }

// SaveWith is Save with options. With an external data file, both files
// are written to temporary files first and renamed into place together.
func SaveWith(m *Model, path string, o SaveOptions) error {
	if err := saveWith(m, path, o); err != nil {
		return fmt.Errorf("graph: save %s: %w", path, err)
	}
	return nil
}

func saveWith(m *Model, path string, o SaveOptions) error {
	dir := filepath.Dir(path)
	var ext *externalWriter
	if o.ExternalDataFile != "" {
		if !filepath.IsLocal(o.ExternalDataFile) {
			return fmt.Errorf("external data file %q must be a relative name inside the model's folder", o.ExternalDataFile)
		}
		extPath := filepath.Join(dir, o.ExternalDataFile)
		if filepath.Clean(extPath) == filepath.Clean(path) {
			return errors.New("the external data file cannot be the model file")
		}
		t, err := atomicfile.Create(extPath)
		if err != nil {
			return err
		}
		defer t.Discard()
		ext = &externalWriter{t: t, location: filepath.ToSlash(o.ExternalDataFile), threshold: o.Threshold}
		if ext.threshold <= 0 {
			ext.threshold = 1024
		}
	}
	mp, err := toProto(m, ext)
	if err != nil {
		return err
	}
	data, err := marshal(mp)
	if err != nil {
		return err
	}
	t, err := atomicfile.Create(path)
	if err != nil {
		return err
	}
	defer t.Discard()
	if _, err := t.Writer().Write(data); err != nil {
		return err
	}
	if err := t.Close(); err != nil {
		return err
	}
	// The data file first: the model that refers to it replaces the old
	// one only once it is in place.
	if ext != nil {
		if err := ext.t.Close(); err != nil {
			return err
		}
		if err := ext.t.Rename(); err != nil {
			return err
		}
	}
	return t.Rename()
}

// externalWriter appends initializer data to a temporary file.
type externalWriter struct {
	t         *atomicfile.Temp
	location  string
	threshold int
	off       int64
}

// externalAlign is the alignment of each tensor's data in the file, so that
// readers can map it and access elements aligned.
const externalAlign = 64

func (e *externalWriter) maybeStore(tp *onnxpb.TensorProto) error {
	if e == nil || len(tp.RawData) < e.threshold {
		return nil
	}
	if pad := (externalAlign - e.off%externalAlign) % externalAlign; pad > 0 {
		if _, err := e.t.Writer().Write(make([]byte, pad)); err != nil {
			return err
		}
		e.off += pad
	}
	if _, err := e.t.Writer().Write(tp.RawData); err != nil {
		return err
	}
	tp.ExternalData = []*onnxpb.StringStringEntryProto{
		{Key: proto.String("location"), Value: proto.String(e.location)},
		{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(e.off, 10))},
		{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(tp.RawData)))},
	}
	tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	e.off += int64(len(tp.RawData))
	tp.RawData = nil
	return nil
}

// Marshal serializes the model (all data inline), deterministically.
func (m *Model) Marshal() ([]byte, error) {
	mp, err := toProto(m, nil)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	data, err := marshal(mp)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return data, nil
}

func marshal(mp *onnxpb.ModelProto) ([]byte, error) {
	if size := proto.Size(mp); size > math.MaxInt32 {
		return nil, fmt.Errorf("the model is %d bytes, over protobuf's 2 GiB limit; save it with SaveWith and an ExternalDataFile", size)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(mp)
}

// ToProto converts the model to a ModelProto. Parts the IR does not model
// are shared with the messages the model was loaded from: clone the result
// before changing it.
func ToProto(m *Model) (*onnxpb.ModelProto, error) {
	mp, err := toProto(m, nil)
	if err != nil {
		return nil, fmt.Errorf("graph: %w", err)
	}
	return mp, nil
}

// copyExcept sets on dst every populated field of src except those named
// in skip, and src's unknown fields. Values are shared, not copied.
func copyExcept(dst, src proto.Message, skip ...protoreflect.Name) {
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	s.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if !slices.Contains(skip, fd.Name()) {
			d.Set(fd, v)
		}
		return true
	})
	if u := s.GetUnknown(); len(u) > 0 {
		d.SetUnknown(u)
	}
}

func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// ordered lists keys in the order of first (the order they had in the file),
// then the rest sorted.
func ordered(first []string, has func(string) bool, all []string) []string {
	out := make([]string, 0, len(all))
	seen := map[string]bool{}
	for _, k := range first {
		if has(k) && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	var rest []string
	for _, k := range all {
		if !seen[k] {
			seen[k] = true
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func toProto(m *Model, ext *externalWriter) (*onnxpb.ModelProto, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("the model has no graph")
	}
	mp := &onnxpb.ModelProto{}
	if m.src != nil {
		copyExcept(mp, m.src, "ir_version", "opset_import", "producer_name", "producer_version",
			"domain", "model_version", "doc_string", "graph", "metadata_props")
	}
	ir := m.IRVersion
	if ir == 0 {
		ir = defaultIRVersion
	}
	mp.IrVersion = proto.Int64(ir)
	mp.ProducerName = optStr(m.ProducerName)
	mp.ProducerVersion = optStr(m.ProducerVersion)
	mp.Domain = optStr(m.Domain)
	if m.ModelVersion != 0 {
		mp.ModelVersion = proto.Int64(m.ModelVersion)
	}
	mp.DocString = optStr(m.Doc)

	var srcDomains, srcKeys []string
	for _, op := range m.src.GetOpsetImport() {
		srcDomains = append(srcDomains, NormDomain(op.GetDomain()))
	}
	for _, kv := range m.src.GetMetadataProps() {
		srcKeys = append(srcKeys, kv.GetKey())
	}
	domains := make([]string, 0, len(m.Opsets))
	for d := range m.Opsets {
		domains = append(domains, d)
	}
	for _, d := range ordered(srcDomains, func(d string) bool { _, ok := m.Opsets[d]; return ok }, domains) {
		mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(d), Version: proto.Int64(m.Opsets[d])})
	}
	for _, k := range ordered(srcKeys, func(k string) bool { _, ok := m.Metadata[k]; return ok }, m.MetadataKeys()) {
		mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String(k), Value: proto.String(m.Metadata[k])})
	}
	g, err := graphToProto(m.Graph, ext)
	if err != nil {
		return nil, err
	}
	mp.Graph = g
	return mp, nil
}

func graphToProto(g *Graph, ext *externalWriter) (*onnxpb.GraphProto, error) {
	gp := &onnxpb.GraphProto{}
	if g.src != nil {
		copyExcept(gp, g.src, "node", "initializer", "sparse_initializer", "input", "output", "value_info", "name", "doc_string")
	}
	gp.Name = optStr(g.Name)
	gp.DocString = optStr(g.Doc)

	for _, name := range g.initNames {
		t := g.inits[name]
		tp, err := tensor.ToProto(t, name)
		if err != nil {
			return nil, fmt.Errorf("initializer %q: %w", name, err)
		}
		if src := g.initSrc[name]; src != nil {
			copyExcept(tp, src, "dims", "data_type", "segment", "float_data", "int32_data", "string_data", "int64_data",
				"name", "raw_data", "external_data", "data_location", "double_data", "uint64_data")
		}
		if err := ext.maybeStore(tp); err != nil {
			return nil, fmt.Errorf("initializer %q: external data: %w", name, err)
		}
		gp.Initializer = append(gp.Initializer, tp)
	}

	srcVI := map[string]*onnxpb.ValueInfoProto{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.src.GetValueInfo(), g.src.GetOutput(), g.src.GetInput()} {
		for _, vp := range list {
			srcVI[vp.GetName()] = vp
		}
	}
	emitted := map[string]bool{}
	emit := func(list *[]*onnxpb.ValueInfoProto, vi *ValueInfo) {
		emitted[vi.Name] = true
		*list = append(*list, valueInfoToProto(vi, srcVI[vi.Name]))
	}
	for _, vp := range g.src.GetInput() {
		name := vp.GetName()
		if emitted[name] {
			continue
		}
		if vi := g.Input(name); vi != nil {
			emit(&gp.Input, vi)
		} else if vi := g.initInputs[name]; vi != nil && g.inits[name] != nil {
			emit(&gp.Input, vi)
		}
	}
	for _, vi := range g.Inputs {
		if !emitted[vi.Name] {
			emit(&gp.Input, vi)
		}
	}
	for _, vi := range g.Outputs {
		gp.Output = append(gp.Output, valueInfoToProto(vi, srcVI[vi.Name]))
	}
	var srcNames, names []string
	for _, vp := range g.src.GetValueInfo() {
		srcNames = append(srcNames, vp.GetName())
	}
	for k := range g.ValueInfo {
		names = append(names, k)
	}
	for _, k := range ordered(srcNames, func(k string) bool { return g.ValueInfo[k] != nil }, names) {
		gp.ValueInfo = append(gp.ValueInfo, valueInfoToProto(g.ValueInfo[k], srcVI[k]))
	}

	for _, n := range g.Nodes {
		np, err := nodeToProto(n, ext)
		if err != nil {
			return nil, err
		}
		gp.Node = append(gp.Node, np)
	}
	return gp, nil
}

func valueInfoToProto(vi *ValueInfo, src *onnxpb.ValueInfoProto) *onnxpb.ValueInfoProto {
	vp := &onnxpb.ValueInfoProto{}
	if src != nil {
		copyExcept(vp, src, "name", "type", "doc_string")
	}
	vp.Name = proto.String(vi.Name)
	vp.DocString = optStr(vi.Doc)
	if st := src.GetType(); st != nil {
		if sv, err := valueInfo(&onnxpb.ValueInfoProto{Type: st}); err == nil && sameType(&sv.Type, &vi.Type) {
			vp.Type = st // unchanged: keep denotations and unknown fields
			return vp
		}
	}
	if vi.DType == tensor.Invalid && !vi.RankKnown {
		return vp
	}
	tt := &onnxpb.TypeProto_Tensor{}
	if vi.DType != tensor.Invalid {
		tt.ElemType = proto.Int32(int32(vi.DType))
	}
	if vi.RankKnown {
		tt.Shape = &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, len(vi.Shape))}
		for i, d := range vi.Shape {
			pd := &onnxpb.TensorShapeProto_Dimension{}
			switch {
			case d.Known():
				pd.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Size}
			case d.Param != "":
				pd.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
			}
			tt.Shape.Dim[i] = pd
		}
	}
	vp.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
	return vp
}

func sameType(a, b *Type) bool {
	if a.DType != b.DType || a.RankKnown != b.RankKnown || len(a.Shape) != len(b.Shape) {
		return false
	}
	for i := range a.Shape {
		if a.Shape[i] != b.Shape[i] {
			return false
		}
	}
	return true
}

func nodeToProto(n *Node, ext *externalWriter) (*onnxpb.NodeProto, error) {
	np := &onnxpb.NodeProto{}
	if n.src != nil {
		copyExcept(np, n.src, "input", "output", "name", "op_type", "domain", "attribute", "doc_string")
	}
	np.Input = append([]string{}, n.Inputs...)
	np.Output = append([]string{}, n.Outputs...)
	np.Name = optStr(n.Name)
	np.OpType = proto.String(n.OpType)
	np.Domain = optStr(n.Domain)
	np.DocString = optStr(n.Doc)
	var srcNames, names []string
	for _, a := range n.src.GetAttribute() {
		srcNames = append(srcNames, a.GetName())
	}
	for k := range n.Attrs {
		names = append(names, k)
	}
	for _, k := range ordered(srcNames, func(k string) bool { return n.Attrs[k] != nil }, names) {
		ap, err := attrToProto(n.Attrs[k], ext)
		if err != nil {
			return nil, Errorf(n, "attribute %q: %v", k, err)
		}
		np.Attribute = append(np.Attribute, ap)
	}
	return np, nil
}

func attrToProto(a *Attribute, ext *externalWriter) (*onnxpb.AttributeProto, error) {
	ap := &onnxpb.AttributeProto{Name: proto.String(a.Name), Type: onnxpb.AttributeProto_AttributeType(a.Type).Enum()}
	if a.RefAttr != "" {
		ap.RefAttrName = proto.String(a.RefAttr)
		return ap, nil
	}
	var err error
	switch a.Type {
	case AttrFloat:
		ap.F = proto.Float32(a.F)
	case AttrInt:
		ap.I = proto.Int64(a.I)
	case AttrString:
		ap.S = []byte(a.S)
	case AttrFloats:
		ap.Floats = append([]float32{}, a.Floats...)
	case AttrInts:
		ap.Ints = append([]int64{}, a.Ints...)
	case AttrStrings:
		for _, s := range a.Strings {
			ap.Strings = append(ap.Strings, []byte(s))
		}
	case AttrTensor:
		if ap.T, err = tensor.ToProto(a.T, ""); err != nil {
			return nil, err
		}
	case AttrTensors:
		for _, t := range a.Tensors {
			tp, err := tensor.ToProto(t, "")
			if err != nil {
				return nil, err
			}
			ap.Tensors = append(ap.Tensors, tp)
		}
	case AttrGraph:
		if a.G == nil {
			return nil, errors.New("graph attribute without a graph")
		}
		if ap.G, err = graphToProto(a.G, ext); err != nil {
			return nil, err
		}
	case AttrGraphs:
		for _, g := range a.Graphs {
			gp, err := graphToProto(g, ext)
			if err != nil {
				return nil, err
			}
			ap.Graphs = append(ap.Graphs, gp)
		}
	default:
		return nil, fmt.Errorf("unknown attribute type %d", a.Type)
	}
	return ap, nil
}
