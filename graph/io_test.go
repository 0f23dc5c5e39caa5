package graph

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// goldenModel returns the committed PyTorch export of a seed model ("cnn"
// or "mlp", testdata/golden; scripts/make_goldens.py makes them) and the
// folder of its initial weights.
func goldenModel(t testing.TB, name string) (path, dir string) {
	t.Helper()
	dir = testenv.Fixture(t, "testdata/golden/"+name)
	return filepath.Join(dir, name+".onnx"), dir
}

func sameBits(a, b *tensor.Tensor) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.DType() != b.DType() || !tensor.SameShape(a.Shape(), b.Shape()) {
		return false
	}
	if a.DType() == tensor.String {
		return reflect.DeepEqual(a.Data(), b.Data())
	}
	return bytes.Equal(tensor.EncodeBytes(a, binary.LittleEndian), tensor.EncodeBytes(b, binary.LittleEndian))
}

// sameModel compares what the IR models of two models and returns the
// first difference.
func sameModel(a, b *Model) error {
	if !reflect.DeepEqual(a.Opsets, b.Opsets) {
		return fmt.Errorf("opsets %v vs %v", a.Opsets, b.Opsets)
	}
	if a.IRVersion != b.IRVersion || a.ProducerName != b.ProducerName || a.Doc != b.Doc {
		return fmt.Errorf("model fields differ: %d %q %q vs %d %q %q", a.IRVersion, a.ProducerName, a.Doc, b.IRVersion, b.ProducerName, b.Doc)
	}
	if !reflect.DeepEqual(a.Metadata, b.Metadata) {
		return fmt.Errorf("metadata %v vs %v", a.Metadata, b.Metadata)
	}
	return sameGraph(a.Graph, b.Graph)
}

func sameGraph(a, b *Graph) error {
	vis := func(v []*ValueInfo) string {
		var s []string
		for _, x := range v {
			s = append(s, x.Name+":"+x.Type.String())
		}
		return strings.Join(s, ",")
	}
	if vis(a.Inputs) != vis(b.Inputs) || vis(a.Outputs) != vis(b.Outputs) {
		return fmt.Errorf("graph %q: inputs/outputs %s -> %s vs %s -> %s", a.Name, vis(a.Inputs), vis(a.Outputs), vis(b.Inputs), vis(b.Outputs))
	}
	if !reflect.DeepEqual(a.InitializerNames(), b.InitializerNames()) {
		return fmt.Errorf("initializers %v vs %v", a.InitializerNames(), b.InitializerNames())
	}
	for _, name := range a.InitializerNames() {
		if !sameBits(a.Initializer(name), b.Initializer(name)) {
			return fmt.Errorf("initializer %q differs", name)
		}
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Errorf("%d nodes vs %d", len(a.Nodes), len(b.Nodes))
	}
	for i, n := range a.Nodes {
		m := b.Nodes[i]
		if n.Name != m.Name || n.OpType != m.OpType || n.Domain != m.Domain ||
			!reflect.DeepEqual(n.Inputs, m.Inputs) || !reflect.DeepEqual(n.Outputs, m.Outputs) || len(n.Attrs) != len(m.Attrs) {
			return fmt.Errorf("node %d: %v %v->%v vs %v %v->%v", i, n, n.Inputs, n.Outputs, m, m.Inputs, m.Outputs)
		}
		for k, x := range n.Attrs {
			y := m.Attrs[k]
			if y == nil || x.Type != y.Type || x.F != y.F || x.I != y.I || x.S != y.S || x.RefAttr != y.RefAttr ||
				!reflect.DeepEqual(x.Ints, y.Ints) || !reflect.DeepEqual(x.Floats, y.Floats) || !reflect.DeepEqual(x.Strings, y.Strings) ||
				!sameBits(x.T, y.T) || len(x.Graphs) != len(y.Graphs) || (x.G == nil) != (y.G == nil) {
				return fmt.Errorf("%v: attribute %q differs", n, k)
			}
			if x.G != nil {
				if err := sameGraph(x.G, y.G); err != nil {
					return fmt.Errorf("%v: attribute %q: %w", n, k, err)
				}
			}
		}
	}
	return nil
}

// roundTrip saves m into dir and loads it back.
func roundTrip(t *testing.T, m *Model, dir string) (*Model, []byte) {
	t.Helper()
	path := filepath.Join(dir, "rt.onnx")
	if err := Save(m, path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return back, data
}

func TestGoldenRoundTrip(t *testing.T) {
	for _, name := range []string{"cnn", "mlp"} {
		t.Run(name, func(t *testing.T) {
			path, goldenDir := goldenModel(t, name)
			m, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Graph.Nodes) == 0 || len(m.Graph.InitializerNames()) == 0 || m.Opset("") == 0 {
				t.Fatalf("loaded an empty model: %d nodes, %d initializers, opset %d", len(m.Graph.Nodes), len(m.Graph.InitializerNames()), m.Opset(""))
			}
			// The golden initial weights were exported beside the model.
			for _, w := range m.Graph.InitializerNames() {
				npy := filepath.Join(goldenDir, "init", w+".npy")
				want, err := tensor.ReadNPYFile(npy)
				if err != nil {
					t.Fatal(err)
				}
				if !sameBits(m.Graph.Initializer(w), want) {
					t.Errorf("initializer %s differs from %s", w, npy)
				}
			}
			dir := t.TempDir()
			back, first := roundTrip(t, m, dir)
			if err := sameModel(m, back); err != nil {
				t.Fatal(err)
			}
			// Saving the reloaded model gives the same bytes: the output is
			// deterministic and nothing is lost on the second pass.
			_, second := roundTrip(t, back, dir)
			if !bytes.Equal(first, second) {
				t.Errorf("second save differs from the first (%d vs %d bytes)", len(first), len(second))
			}
		})
	}
}

// addUnknown appends an unknown length-delimited field to a message.
func addUnknown(m proto.Message, num protowire.Number, v string) {
	r := m.ProtoReflect()
	u := protowire.AppendTag(r.GetUnknown(), num, protowire.BytesType)
	r.SetUnknown(protowire.AppendString(u, v))
}

func hasUnknown(m proto.Message, v string) bool {
	return bytes.Contains(m.ProtoReflect().GetUnknown(), []byte(v))
}

// TestUnmodelledFieldsSurvive injects unknown fields (as a newer ONNX
// version would write them) and fields the IR does not model into every
// level of a model and checks that Load then Save keeps them.
func TestUnmodelledFieldsSurvive(t *testing.T) {
	cnn, _ := goldenModel(t, "cnn")
	data, err := os.ReadFile(cnn)
	if err != nil {
		t.Fatal(err)
	}
	mp := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(data, mp); err != nil {
		t.Fatal(err)
	}
	g := mp.Graph
	addUnknown(mp, 900, "model-unknown")
	addUnknown(g, 901, "graph-unknown")
	addUnknown(g.Node[0], 9, "node-metadata") // NodeProto.metadata_props in IR 10
	addUnknown(g.Initializer[0], 16, "init-metadata")
	addUnknown(g.Input[0], 4, "input-metadata")
	g.Node[0].DocString = proto.String("first node")
	g.ValueInfo = append(g.ValueInfo, &onnxpb.ValueInfoProto{Name: proto.String(g.Node[0].Output[0]),
		Type: &onnxpb.TypeProto{Denotation: proto.String("TENSOR"), Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1)}}}})
	mp.TrainingInfo = []*onnxpb.TrainingInfoProto{{Algorithm: &onnxpb.GraphProto{Name: proto.String("train-algo")}}}
	mp.MetadataProps = append(mp.MetadataProps, &onnxpb.StringStringEntryProto{Key: proto.String("k"), Value: proto.String("v")})
	in, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadBytes(in, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Metadata["k"] != "v" {
		t.Errorf("metadata not loaded: %v", m.Metadata)
	}
	m.Metadata["added"] = "yes"
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(out, back); err != nil {
		t.Fatal(err)
	}
	bg := back.Graph
	checks := []struct {
		what string
		ok   bool
	}{
		{"model unknown field", hasUnknown(back, "model-unknown")},
		{"graph unknown field", hasUnknown(bg, "graph-unknown")},
		{"node unknown field", hasUnknown(bg.Node[0], "node-metadata")},
		{"initializer unknown field", hasUnknown(bg.Initializer[0], "init-metadata")},
		{"input unknown field", hasUnknown(bg.Input[0], "input-metadata")},
		{"node doc string", bg.Node[0].GetDocString() == "first node"},
		{"type denotation", len(bg.ValueInfo) > 0 && bg.ValueInfo[len(bg.ValueInfo)-1].GetType().GetDenotation() == "TENSOR"},
		{"training info", len(back.TrainingInfo) == 1 && back.TrainingInfo[0].GetAlgorithm().GetName() == "train-algo"},
		{"metadata", len(back.MetadataProps) >= 2 && back.MetadataProps[len(back.MetadataProps)-1].GetKey() == "added"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s lost in a round trip", c.what)
		}
	}
}

// Helpers to build ModelProtos by hand.

func tinfo(name string, elem int32, dims ...any) *onnxpb.ValueInfoProto {
	sh := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		switch v := d.(type) {
		case int:
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}})
		case string:
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: v}})
		case nil:
			sh.Dim = append(sh.Dim, &onnxpb.TensorShapeProto_Dimension{})
		}
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(elem), Shape: sh}}}}
}

func node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: out, Name: proto.String(op + "_" + strings.Join(out, "_")), Attribute: attrs}
}

func aint(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func aref(name, ref string, typ onnxpb.AttributeProto_AttributeType) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), RefAttrName: proto.String(ref), Type: typ.Enum()}
}

func agraph(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

func initf(name string, v ...float32) *onnxpb.TensorProto {
	tp, err := tensor.ToProto(tensor.MustFromSlice(v, len(v)), name)
	if err != nil {
		panic(err)
	}
	return tp
}

func model(g *onnxpb.GraphProto, funcs ...*onnxpb.FunctionProto) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g, Functions: funcs,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}}}
}

func TestLoadConversions(t *testing.T) {
	// IR < 4 style: an initializer also listed as a graph input.
	g := &onnxpb.GraphProto{Name: proto.String("g"),
		Input:       []*onnxpb.ValueInfoProto{tinfo("x", 1, "N", 3), tinfo("w", 1, 3), tinfo("y", 7), {Name: proto.String("untyped")}},
		Initializer: []*onnxpb.TensorProto{initf("w", 1, 2, 3)},
		Output:      []*onnxpb.ValueInfoProto{tinfo("z", 1, "N", nil), {Name: proto.String("u"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(1)}}}}},
		Node:        []*onnxpb.NodeProto{node("Add", []string{"x", "w"}, []string{"z"}), node("Identity", []string{"untyped"}, []string{"u"})},
	}
	mp := model(g)
	mp.OpsetImport = append(mp.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String("ai.onnx"), Version: proto.Int64(17)},
		&onnxpb.OperatorSetIdProto{Domain: proto.String("com.example"), Version: proto.Int64(2)})
	m, err := FromProto(mp, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := len(m.Graph.Inputs); got != 3 || m.Graph.Input("w") != nil {
		t.Errorf("inputs %v: the initializer w must not be a graph input", m.Graph.Inputs)
	}
	if m.Graph.Initializer("w") == nil {
		t.Error("initializer w missing")
	}
	checks := []struct {
		what string
		got  string
		want string
	}{
		{"symbolic dim", m.Graph.Input("x").Type.String(), "float32[N,3]"},
		{"scalar-less rank", m.Graph.Input("y").Type.String(), "int64[]"},
		{"missing dim", m.Graph.Outputs[0].Type.String(), "float32[N,?]"},
		{"missing shape", m.Graph.Outputs[1].Type.String(), "float32[...]"},
		{"untyped input", fmt.Sprint(m.Graph.Input("untyped").DType, m.Graph.Input("untyped").RankKnown), "dtype(0) false"},
		{"opsets", fmt.Sprint(m.Opsets), "map[:17 com.example:2]"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %s, want %s", c.what, c.got, c.want)
		}
	}
	// Save lists the initializer as an input again, in its original place.
	out, err := ToProto(m)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range out.Graph.Input {
		names = append(names, in.GetName())
	}
	if strings.Join(names, ",") != "x,w,y,untyped" {
		t.Errorf("saved inputs %v, want x,w,y,untyped", names)
	}
	back, err := FromProto(out, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := sameModel(m, back); err != nil {
		t.Error(err)
	}
}

func TestLoadSubgraphsAndSparse(t *testing.T) {
	then := &onnxpb.GraphProto{Name: proto.String("then"), Output: []*onnxpb.ValueInfoProto{tinfo("t", 1, 2)},
		Node: []*onnxpb.NodeProto{node("Add", []string{"x", "outer"}, []string{"t"})}} // x and outer come from the enclosing graph
	els := &onnxpb.GraphProto{Name: proto.String("else"), Output: []*onnxpb.ValueInfoProto{tinfo("x", 1, 2)}}
	dense := &onnxpb.TensorProto{Name: proto.String("sp"), DataType: proto.Int32(1), Dims: []int64{2}, FloatData: []float32{5, 7}}
	idx := &onnxpb.TensorProto{DataType: proto.Int32(7), Dims: []int64{2}, Int64Data: []int64{1, 4}}
	g := &onnxpb.GraphProto{
		Input:             []*onnxpb.ValueInfoProto{tinfo("x", 1, 2), tinfo("c", 9)},
		SparseInitializer: []*onnxpb.SparseTensorProto{{Values: dense, Indices: idx, Dims: []int64{2, 3}}},
		Initializer:       []*onnxpb.TensorProto{initf("outer", 1, 1)},
		Output:            []*onnxpb.ValueInfoProto{tinfo("y", 1, 2)},
		Node: []*onnxpb.NodeProto{node("If", []string{"c"}, []string{"y"}, agraph("then_branch", then), agraph("else_branch", els)),
			// An attribute without a type, as early IR versions wrote them.
			{OpType: proto.String("Identity"), Input: []string{"sp"}, Output: []string{"sp2"}, Attribute: []*onnxpb.AttributeProto{{Name: proto.String("old"), I: proto.Int64(4)}}}},
	}
	m, err := FromProto(model(g), "")
	if err != nil {
		t.Fatal(err)
	}
	ifn := m.Graph.Nodes[0]
	if a := ifn.Attr("then_branch"); a == nil || a.G == nil || len(a.G.Nodes) != 1 || a.G.Nodes[0].OpType != "Add" {
		t.Fatalf("then_branch not converted: %+v", a)
	}
	if a := m.Graph.Nodes[1].Attr("old"); a == nil || a.Type != AttrInt || a.I != 4 {
		t.Errorf("untyped attribute: %+v", a)
	}
	want := tensor.MustFromSlice([]float32{0, 5, 0, 0, 7, 0}, 2, 3)
	if got := m.Graph.Initializer("sp"); !sameBits(got, want) {
		t.Errorf("sparse initializer: got %v, want %v", got, want)
	}
	back, _ := roundTrip(t, m, t.TempDir())
	if err := sameModel(m, back); err != nil {
		t.Error(err)
	}
}

func TestLoadErrors(t *testing.T) {
	seq := &onnxpb.ValueInfoProto{Name: proto.String("s"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SequenceType{SequenceType: &onnxpb.TypeProto_Sequence{}}}}
	mapT := &onnxpb.ValueInfoProto{Name: proto.String("m"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_MapType{MapType: &onnxpb.TypeProto_Map{}}}}
	opt := &onnxpb.ValueInfoProto{Name: proto.String("o"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_OptionalType{OptionalType: &onnxpb.TypeProto_Optional{}}}}
	sparse := &onnxpb.ValueInfoProto{Name: proto.String("sp"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_SparseTensorType{SparseTensorType: &onnxpb.TypeProto_SparseTensor{}}}}
	cases := []struct {
		name        string
		g           *onnxpb.GraphProto
		unsupported bool
		want        string
	}{
		{"sequence input", &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{seq}}, true, `value "s" has type sequence`},
		{"map input", &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{mapT}}, true, `value "m" has type map`},
		{"optional output", &onnxpb.GraphProto{Output: []*onnxpb.ValueInfoProto{opt}}, true, `value "o" has type optional`},
		{"sparse value info", &onnxpb.GraphProto{ValueInfo: []*onnxpb.ValueInfoProto{sparse}}, true, `value "sp" has type sparse_tensor`},
		{"float8 input", &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{tinfo("q", 17, 2)}}, true, `value "q" has type tensor(float8e4m3fn)`},
		{"missing input", &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{tinfo("x", 1)}, Node: []*onnxpb.NodeProto{node("Add", []string{"x", "nope"}, []string{"y"})}},
			false, `node "Add_y" (Add): input "nope" is not a graph input`},
		{"missing output", &onnxpb.GraphProto{Output: []*onnxpb.ValueInfoProto{tinfo("y", 1)}}, false, `graph output "y" is not`},
		{"subgraph missing", &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{tinfo("c", 9)}, Node: []*onnxpb.NodeProto{node("If", []string{"c"}, []string{"y"},
			agraph("then_branch", &onnxpb.GraphProto{Name: proto.String("then"), Node: []*onnxpb.NodeProto{node("Neg", []string{"ghost"}, []string{"t"})}}))}},
			false, `subgraph "then": node "Neg_t" (Neg): input "ghost"`},
		{"duplicate initializer", &onnxpb.GraphProto{Initializer: []*onnxpb.TensorProto{initf("w", 1), initf("w", 2)}}, false, `initializer "w" appears twice`},
		{"bad initializer", &onnxpb.GraphProto{Initializer: []*onnxpb.TensorProto{{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{4}, FloatData: []float32{1}}}},
			false, `initializer: tensor "w": float_data has 1 elements`},
		{"no op type", &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{{Name: proto.String("n0")}}}, false, `node 0 ("n0") has no op_type`},
		{"type proto attribute", &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{node("Optional", nil, []string{"o"},
			&onnxpb.AttributeProto{Name: proto.String("type"), Type: onnxpb.AttributeProto_TYPE_PROTO.Enum(), Tp: &onnxpb.TypeProto{}})}}, false, "unsupported: attribute \"type\" has type TYPE_PROTO"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromProto(model(c.g), "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			var ue *UnsupportedTypeError
			if errors.As(err, &ue) != c.unsupported {
				t.Errorf("errors.As(UnsupportedTypeError) = %v, want %v", !c.unsupported, c.unsupported)
			}
		})
	}
}

// fn builds a FunctionProto; defaults go into attribute_proto, a field
// newer than the generated code, as a newer ONNX writer would put it.
func fn(domain, name string, in, out, attrs []string, nodes []*onnxpb.NodeProto, defaults ...*onnxpb.AttributeProto) *onnxpb.FunctionProto {
	f := &onnxpb.FunctionProto{Domain: proto.String(domain), Name: proto.String(name), Input: in, Output: out, Attribute: attrs, Node: nodes,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}}}
	for _, d := range defaults {
		b, err := proto.Marshal(d)
		if err != nil {
			panic(err)
		}
		r := f.ProtoReflect()
		u := protowire.AppendTag(r.GetUnknown(), fieldFunctionAttributeProto, protowire.BytesType)
		r.SetUnknown(protowire.AppendBytes(u, b))
	}
	return f
}

func call(domain, op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := node(op, in, out, attrs...)
	n.Domain = proto.String(domain)
	return n
}

// describe prints a graph's nodes as "op(in)->out{attr=v}" for comparison.
func describe(g *Graph) string {
	var s []string
	for _, n := range g.Nodes {
		d := fmt.Sprintf("%s(%s)->%s", n.OpType, strings.Join(n.Inputs, ","), strings.Join(n.Outputs, ","))
		for _, k := range []string{"alpha", "axis", "to"} {
			if a := n.Attr(k); a != nil {
				d += fmt.Sprintf("{%s=%d}", k, a.I)
			}
		}
		if a := n.Attr("then_branch"); a != nil {
			d += "{then:" + describe(a.G) + "}"
		}
		s = append(s, d)
	}
	return strings.Join(s, " ")
}

func TestFunctionInlining(t *testing.T) {
	// ScaledNeg(x) = Neg(Mul(x, x)) with an attribute "axis" passed through.
	scaled := fn("local", "Sq", []string{"a"}, []string{"b"}, []string{"axis"}, []*onnxpb.NodeProto{
		node("Mul", []string{"a", "a"}, []string{"t"}),
		node("Neg", []string{"t"}, []string{"b"}, aref("axis", "axis", onnxpb.AttributeProto_INT)),
	}, aint("axis", 3))
	// Outer calls Sq twice (nested call) and has an unused second output.
	outer := fn("local", "Outer", []string{"p"}, []string{"q", "r"}, nil, []*onnxpb.NodeProto{
		call("local", "Sq", []string{"p"}, []string{"m"}, aint("axis", 5)),
		call("local", "Sq", []string{"m"}, []string{"q"}),
		node("Identity", []string{"m"}, []string{"r"}),
	})
	// Branchy uses an If whose branch reads a function intermediate.
	branchy := fn("local", "Branchy", []string{"c", "v"}, []string{"w"}, nil, []*onnxpb.NodeProto{
		node("Abs", []string{"v"}, []string{"av"}),
		node("If", []string{"c"}, []string{"w"},
			agraph("then_branch", &onnxpb.GraphProto{Output: []*onnxpb.ValueInfoProto{tinfo("o", 1)}, Node: []*onnxpb.NodeProto{node("Neg", []string{"av"}, []string{"o"})}}),
			agraph("else_branch", &onnxpb.GraphProto{Output: []*onnxpb.ValueInfoProto{tinfo("av", 1)}})),
	})
	loop := fn("local", "Loop1", []string{"x"}, []string{"y"}, nil, []*onnxpb.NodeProto{call("local", "Loop1", []string{"x"}, []string{"y"})})
	passthrough := fn("local", "Pass", []string{"x"}, []string{"x"}, nil, nil)

	cases := []struct {
		name  string
		funcs []*onnxpb.FunctionProto
		nodes []*onnxpb.NodeProto
		want  string // describe() of the result, or an error substring
		err   bool
	}{
		{"call with attribute", []*onnxpb.FunctionProto{scaled},
			[]*onnxpb.NodeProto{call("local", "Sq", []string{"x"}, []string{"y"}, aint("axis", 2))},
			"Mul(x,x)->Sq_y/t Neg(Sq_y/t)->y{axis=2}", false},
		{"default attribute", []*onnxpb.FunctionProto{scaled},
			[]*onnxpb.NodeProto{call("local", "Sq", []string{"x"}, []string{"y"})},
			"Mul(x,x)->Sq_y/t Neg(Sq_y/t)->y{axis=3}", false},
		{"two calls get distinct names", []*onnxpb.FunctionProto{scaled},
			[]*onnxpb.NodeProto{call("local", "Sq", []string{"x"}, []string{"y1"}), call("local", "Sq", []string{"y1"}, []string{"y"})},
			"Mul(x,x)->Sq_y1/t Neg(Sq_y1/t)->y1{axis=3} Mul(y1,y1)->Sq_y/t Neg(Sq_y/t)->y{axis=3}", false},
		{"nested calls and unused output", []*onnxpb.FunctionProto{scaled, outer},
			[]*onnxpb.NodeProto{call("local", "Outer", []string{"x"}, []string{"y"})},
			// The inner calls are named after the outer call plus their own
			// node names ("Sq_m", "Sq_q" in Outer's body).
			"Mul(x,x)->Outer_y/Sq_m/t Neg(Outer_y/Sq_m/t)->Outer_y/m{axis=5} " +
				"Mul(Outer_y/m,Outer_y/m)->Outer_y/Sq_q/t Neg(Outer_y/Sq_q/t)->y{axis=3} Identity(Outer_y/m)->Outer_y/r", false},
		{"subgraph in body", []*onnxpb.FunctionProto{branchy},
			[]*onnxpb.NodeProto{call("local", "Branchy", []string{"c", "x"}, []string{"y"})},
			"Abs(x)->Branchy_y/av If(c)->y{then:Neg(Branchy_y/av)->Branchy_y/o}", false},
		{"input passed through", []*onnxpb.FunctionProto{passthrough},
			[]*onnxpb.NodeProto{call("local", "Pass", []string{"x"}, []string{"y"})},
			"Identity(x)->y", false},
		{"recursion", []*onnxpb.FunctionProto{loop},
			[]*onnxpb.NodeProto{call("local", "Loop1", []string{"x"}, []string{"y"})},
			"function calls nest deeper than", true},
		{"too many inputs", []*onnxpb.FunctionProto{scaled},
			[]*onnxpb.NodeProto{call("local", "Sq", []string{"x", "x"}, []string{"y"})},
			"2 inputs and 1 outputs; the function has 1 and 1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &onnxpb.GraphProto{Input: []*onnxpb.ValueInfoProto{tinfo("x", 1), tinfo("c", 9)}, Output: []*onnxpb.ValueInfoProto{tinfo("y", 1)}, Node: c.nodes}
			m, err := FromProto(model(g, c.funcs...), "")
			if c.err {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("got %v, want an error containing %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := describe(m.Graph); got != c.want {
				t.Errorf("inlined graph\n got  %s\n want %s", got, c.want)
			}
			if _, ok := m.Opsets["local"]; ok {
				t.Error("the function domain became an opset import")
			}
			back, _ := roundTrip(t, m, t.TempDir())
			if got := describe(back.Graph); got != c.want {
				t.Errorf("after a round trip: %s", got)
			}
		})
	}
}

// goModel builds a small model in Go, without any source messages.
func goModel() *Model {
	g := NewGraph("go")
	g.Inputs = []*ValueInfo{{Name: "x", Type: *NewType(tensor.Float32, Shape{Sym("N"), D(4)})}}
	g.SetInitializer("w", tensor.MustFromSlice(make([]float32, 4*300), 4, 300))
	g.SetInitializer("b", tensor.MustFromSlice([]float32{1, 2, 3}, 3))
	g.SetInitializer("shape", tensor.MustFromSlice([]int64{-1, 3}, 2))
	g.Nodes = []*Node{
		{Name: "mm", OpType: "MatMul", Inputs: []string{"x", "w"}, Outputs: []string{"h"}},
		{Name: "act", OpType: "LeakyRelu", Inputs: []string{"h"}, Outputs: []string{"y"}, Attrs: map[string]*Attribute{"alpha": AFloat("alpha", 0.1)}},
	}
	g.Outputs = []*ValueInfo{{Name: "y", Type: *NewType(tensor.Float32, Shape{Sym("N"), D(300)})}}
	g.ValueInfo["h"] = &ValueInfo{Name: "h", Type: *NewType(tensor.Float32, Shape{Sym("N"), Unknown})}
	for i := range g.Initializer("w").Float32s() {
		g.Initializer("w").Float32s()[i] = float32(i) * 0.5
	}
	m := NewModel(g, 17)
	m.Metadata["author"] = "test"
	return m
}

func TestGoBuiltModelSaves(t *testing.T) {
	m := goModel()
	back, _ := roundTrip(t, m, t.TempDir())
	if err := sameModel(m, back); err != nil {
		t.Fatal(err)
	}
	if got := back.Graph.ValueInfo["h"]; got == nil || got.Type.String() != "float32[N,?]" {
		t.Errorf("value_info h: %+v", got)
	}
}

func TestExternalData(t *testing.T) {
	dir := t.TempDir()
	m := goModel()
	path := filepath.Join(dir, "m.onnx")
	if err := SaveWith(m, path, SaveOptions{ExternalDataFile: "m.data", Threshold: 100}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "m.data"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 4*300*4 {
		t.Errorf("external file has %d bytes; w alone has %d", st.Size(), 4*300*4)
	}
	mst, _ := os.Stat(path)
	if mst.Size() > 2000 {
		t.Errorf("model file is %d bytes; the weights should be outside it", mst.Size())
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameModel(m, back); err != nil {
		t.Fatal(err)
	}
	// The model loads from another folder only with its data file.
	data, _ := os.ReadFile(path)
	if _, err := LoadBytes(data, ""); err == nil || !strings.Contains(err.Error(), "no folder") {
		t.Errorf("LoadBytes without a folder: %v", err)
	}
	// A data file outside the model's folder: above it, or absolute.
	for _, bad := range []string{"../x.data", filepath.Join(t.TempDir(), "x.data")} {
		if err := SaveWith(m, path, SaveOptions{ExternalDataFile: bad}); err == nil {
			t.Errorf("SaveWith(ExternalDataFile %q) succeeded", bad)
		}
	}
	// The onnx package reads the same weights.
	out, err := exec.Command(testenv.Python(t, "onnx"), "-c", `
import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
for t in m.graph.initializer:
    a = numpy_helper.to_array(t)
    print(t.name, a.dtype, a.shape, repr(float(a.astype('float64').sum())))
`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.load: %v\n%s", err, out)
	}
	want := "w float32 (4, 300) 359700.0\nb float32 (3,) 6.0\nshape int64 (2,) 2.0\n"
	if string(out) != want {
		t.Errorf("onnx read\n%s\nwant\n%s", out, want)
	}
}

func TestExternalDataEscapes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "model")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(root, "secret.bin"), make([]byte, 16), 0o644)
	os.Symlink(filepath.Join(root, "secret.bin"), filepath.Join(dir, "link.bin"))
	for _, c := range []struct{ loc, want string }{
		{"../secret.bin", "leaves the model's folder"},
		{filepath.Join(root, "secret.bin"), "absolute"},
		{"link.bin", "outside the model's folder"},
	} {
		tp := &onnxpb.TensorProto{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{4},
			DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
			ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(c.loc)}}}
		data, _ := proto.Marshal(model(&onnxpb.GraphProto{Initializer: []*onnxpb.TensorProto{tp}}))
		path := filepath.Join(dir, "m.onnx")
		os.WriteFile(path, data, 0o644)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `tensor "w"`) {
			t.Errorf("location %q: got %v; want an error naming the file and tensor, containing %q", c.loc, err, c.want)
		}
	}
}

func TestLoadTestModels(t *testing.T) {
	var folders []string
	for _, s := range []string{"node", "pytorch-converted", "pytorch-operator", "simple"} {
		folders = append(folders, testenv.DebianONNX(t, s))
	}
	if d, ok := testenv.Shared(t, "onnx-node-tests/v1.22.0"); ok {
		folders = append(folders, d)
	} else {
		t.Log("shared/onnx-node-tests/v1.22.0 is not beside the project: Debian's suites only")
	}
	for _, folder := range folders {
		files, _ := filepath.Glob(filepath.Join(folder, "*", "model.onnx"))
		if len(files) == 0 {
			t.Errorf("%s holds no */model.onnx", folder)
			continue
		}
		loaded, unsupported := 0, 0
		for _, f := range files {
			m, err := Load(f)
			var ue *UnsupportedTypeError
			switch {
			case err == nil:
				loaded++
				// Save and reload: what the IR models must come back equal.
				data, err := m.Marshal()
				if err != nil {
					t.Errorf("%s: %v", f, err)
					continue
				}
				back, err := LoadBytes(data, filepath.Dir(f))
				if err != nil {
					t.Errorf("%s: reloading the saved model: %v", f, err)
					continue
				}
				if err := sameModel(m, back); err != nil {
					t.Errorf("%s: round trip: %v", f, err)
				}
			case errors.As(err, &ue):
				unsupported++
			default:
				t.Errorf("%v", err)
			}
		}
		t.Logf("%s: %d models, %d loaded, %d with unsupported value types", folder, len(files), loaded, unsupported)
	}
}

func TestCorruptFiles(t *testing.T) {
	cnn, _ := goldenModel(t, "cnn")
	good, err := os.ReadFile(cnn)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not an ONNX model: the file is empty"},
		{"text", []byte("this is not a model at all, just some text\n"), "not an ONNX model"},
		{"npy", []byte("\x93NUMPY\x01\x00v\x00{'descr': '<f4'}"), "not an ONNX model"},
		{"truncated at 90%", good[:len(good)*9/10], "truncated"},
		{"truncated at half", good[:len(good)/2], "truncated"},
		{"truncated at 10 bytes", good[:10], "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".onnx")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v; want an error naming %s and containing %q", err, path, c.want)
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.onnx")); err == nil || !strings.Contains(err.Error(), "missing.onnx") {
		t.Errorf("missing file: %v", err)
	}
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := Save(goModel(), path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	broken := goModel()
	broken.Graph.SetInitializer("bad", &tensor.Tensor{}) // a zero tensor has no valid dtype
	if err := SaveWith(broken, path, SaveOptions{ExternalDataFile: "m.data", Threshold: 1}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("saving a broken model: %v; want an error naming %s", err, path)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("a failed save changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files left behind: %v", names)
	}
	if err := Save(goModel(), filepath.Join(dir, "no", "m.onnx")); err == nil {
		t.Error("saving into a missing folder succeeded")
	}
}

// TestLoadDeepSubgraphs: subgraphs nested past the limit are refused with
// one short line naming the limit, not one line per level (a 3,000-deep
// nest once gave a 30 KB message).
func TestLoadDeepSubgraphs(t *testing.T) {
	const depth = 3000
	leaf := &onnxpb.GraphProto{Name: proto.String("leaf"), Output: []*onnxpb.ValueInfoProto{tinfo("x", 1, 2)}}
	g := leaf
	for i := range depth {
		out := fmt.Sprintf("o%d", i)
		g = &onnxpb.GraphProto{Name: proto.String(fmt.Sprintf("level%d", i)), Output: []*onnxpb.ValueInfoProto{tinfo(out, 1, 2)},
			Node: []*onnxpb.NodeProto{node("If", []string{"c"}, []string{out}, agraph("then_branch", g), agraph("else_branch", leaf))}}
	}
	g.Input = []*onnxpb.ValueInfoProto{tinfo("x", 1, 2), tinfo("c", 9)}
	_, err := FromProto(model(g), "")
	if err == nil || !strings.Contains(err.Error(), "nest deeper than") {
		t.Fatalf("a %d-deep nest of subgraphs: %v", depth, err)
	}
	if len(err.Error()) > 300 {
		t.Errorf("the error is %d bytes long: %.300s...", len(err.Error()), err)
	}
}
