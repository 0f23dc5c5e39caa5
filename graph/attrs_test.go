package graph

import (
	"errors"
	"sort"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/tensor"
	"google.golang.org/protobuf/proto"
)

// onnxModel is a one-node model file: input X [1, 3, 8, 8], initializers
// given, output Y, the node's attributes as written.
func onnxModel(t *testing.T, op string, inputs []string, inits map[string]*tensor.Tensor, attrs ...*onnxpb.AttributeProto) []byte {
	t.Helper()
	dim := func(v int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	x := &onnxpb.ValueInfoProto{Name: proto.String("X"), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(tensor.Float32)),
			Shape: &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{dim(1), dim(3), dim(8), dim(8)}}}}}}
	g := &onnxpb.GraphProto{Name: proto.String("g"), Input: []*onnxpb.ValueInfoProto{x},
		Output: []*onnxpb.ValueInfoProto{{Name: proto.String("Y")}},
		Node:   []*onnxpb.NodeProto{{Name: proto.String("the_" + strings.ToLower(op)), OpType: proto.String(op), Input: inputs, Output: []string{"Y"}, Attribute: attrs}}}
	names := make([]string, 0, len(inits))
	for k := range inits {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		tp, err := tensor.ToProto(inits[k], k)
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func attrProto(name string, typ onnxpb.AttributeProto_AttributeType, set func(*onnxpb.AttributeProto)) *onnxpb.AttributeProto {
	a := &onnxpb.AttributeProto{Name: proto.String(name), Type: typ.Enum()}
	set(a)
	return a
}

// The reported cases: each wrong type read as 0 and the op misbehaved.
func TestWrongAttributeTypesAreErrors(t *testing.T) {
	w := tensor.New(tensor.Float32, 4, 3, 3, 3)
	gemmW := tensor.New(tensor.Float32, 5, 192)
	str := func(s string) func(*onnxpb.AttributeProto) { return func(a *onnxpb.AttributeProto) { a.S = []byte(s) } }
	flt := func(f float32) func(*onnxpb.AttributeProto) {
		return func(a *onnxpb.AttributeProto) { a.F = proto.Float32(f) }
	}
	cases := []struct {
		op     string
		inputs []string
		inits  map[string]*tensor.Tensor
		attr   *onnxpb.AttributeProto
		want   string
	}{
		{"Flatten", []string{"X"}, nil, attrProto("axis", onnxpb.AttributeProto_STRING, str("2")),
			`node "the_flatten" (Flatten): attribute "axis" is a string; Flatten expects an int`},
		{"Softmax", []string{"X"}, nil, attrProto("axis", onnxpb.AttributeProto_FLOAT, flt(1)),
			`node "the_softmax" (Softmax): attribute "axis" is a float; Softmax expects an int`},
		{"Conv", []string{"X", "W"}, map[string]*tensor.Tensor{"W": w}, attrProto("strides", onnxpb.AttributeProto_STRING, str("2,2")),
			`node "the_conv" (Conv): attribute "strides" is a string; Conv expects a list of ints`},
		{"Conv", []string{"X", "W"}, map[string]*tensor.Tensor{"W": w},
			attrProto("strides", onnxpb.AttributeProto_INT, func(a *onnxpb.AttributeProto) { a.I = proto.Int64(2) }),
			`attribute "strides" is an int; Conv expects a list of ints`},
		{"Gemm", []string{"X", "W"}, map[string]*tensor.Tensor{"W": gemmW}, attrProto("transB", onnxpb.AttributeProto_FLOAT, flt(1)),
			`node "the_gemm" (Gemm): attribute "transB" is a float; Gemm expects an int`},
	}
	for _, c := range cases {
		t.Run(c.op+"."+c.attr.GetName(), func(t *testing.T) {
			_, err := LoadBytes(onnxModel(t, c.op, c.inputs, c.inits, c.attr), "")
			var ae *AttrTypeError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("load: %v; want an *AttrTypeError saying %q", err, c.want)
			}
		})
	}
	// The same attributes with the right types load (the reported ops are
	// not refused for some other reason).
	ok := []struct {
		op     string
		inputs []string
		inits  map[string]*tensor.Tensor
		attr   *onnxpb.AttributeProto
	}{
		{"Flatten", []string{"X"}, nil, attrProto("axis", onnxpb.AttributeProto_INT, func(a *onnxpb.AttributeProto) { a.I = proto.Int64(2) })},
		{"Conv", []string{"X", "W"}, map[string]*tensor.Tensor{"W": w},
			attrProto("strides", onnxpb.AttributeProto_INTS, func(a *onnxpb.AttributeProto) { a.Ints = []int64{2, 2} })},
	}
	for _, c := range ok {
		m, err := LoadBytes(onnxModel(t, c.op, c.inputs, c.inits, c.attr), "")
		if err != nil {
			t.Fatalf("%s with a well-typed %s: %v", c.op, c.attr.GetName(), err)
		}
		if _, err := InferShapes(m, nil); err != nil {
			t.Errorf("%s with a well-typed %s: %v", c.op, c.attr.GetName(), err)
		}
	}
}

// Graphs built in Go are checked where their shapes are inferred.
func TestWrongAttributeTypeInBuiltGraph(t *testing.T) {
	b := NewBuilder("g", 17)
	x := b.Input("x", tensor.Float32, D(2), D(3))
	y := b.Op("Softmax", x).With(AFloat("axis", 1)).Out()
	b.Output(y)
	_, err := b.Model()
	var ae *AttrTypeError
	if !errors.As(err, &ae) || ae.Attr != "axis" || ae.Want != AttrInt || ae.Got != AttrFloat {
		t.Fatalf("got %v; want an *AttrTypeError for axis", err)
	}
}

// wrongType returns a type other than t with a value set.
func wrongType(t AttrType) *Attribute {
	if t == AttrString {
		return AInt("", 1)
	}
	return AString("", "1")
}

func rightType(t AttrType) *Attribute {
	a := &Attribute{Type: t}
	switch t {
	case AttrTensor:
		a.T = tensor.Scalar(float32(1))
	case AttrGraph:
		a.G = NewGraph("body")
	}
	return a
}

// Every attribute of every op gotrain has a schema for: the declared type
// passes, another type is an error naming the node, the attribute and the
// type expected.
func TestAttributeTypeTable(t *testing.T) {
	checked := 0
	for k, s := range registry {
		for _, opset := range []int64{7, 13, 17, 22} {
			for name, want := range AttrTypes(s.Domain, s.OpType, opset) {
				n := &Node{Name: "n", OpType: s.OpType, Domain: s.Domain, Outputs: []string{"y"}}
				a := rightType(want)
				a.Name = name
				n.Attrs = map[string]*Attribute{name: a}
				if err := CheckAttrs(n, opset); err != nil {
					t.Errorf("%s opset %d: %s as %v: %v", k, opset, name, want, err)
				}
				bad := wrongType(want)
				bad.Name = name
				n.Attrs = map[string]*Attribute{name: bad}
				err := CheckAttrs(n, opset)
				var ae *AttrTypeError
				if !errors.As(err, &ae) || ae.Attr != name || ae.Want != want || ae.Got != bad.Type ||
					!strings.Contains(err.Error(), `node "n"`) || !strings.Contains(err.Error(), want.String()) {
					t.Errorf("%s opset %d: %s as %v: %v; want an *AttrTypeError", k, opset, name, bad.Type, err)
				}
				checked++
			}
		}
	}
	if checked < 500 {
		t.Errorf("only %d attribute checks: the tables look empty", checked)
	}
}

// gotrain's own ops declare their attributes; ONNX's take them from the
// generated table, which must know every op registered here that has any.
func TestAttributeDeclarations(t *testing.T) {
	for k, s := range registry {
		if NormDomain(s.Domain) == DomainGotrain && s.Attrs == nil {
			t.Errorf("%s: a gotrain op without Attrs", k)
		}
		if s.Attrs != nil && NormDomain(s.Domain) != DomainGotrain {
			t.Errorf("%s: an ONNX op declares Attrs; its types come from ONNX's schemas", k)
		}
	}
	for _, op := range []string{"Conv", "Gemm", "Flatten", "Softmax", "MaxPool", "Cast", "Split", "Pad", "ReduceMax", "Dropout"} {
		if len(AttrTypes("", op, 22)) == 0 {
			t.Errorf("%s: no attribute types known", op)
		}
	}
}

// Attribute types that changed with the opset: Cast's to was a string
// before opset 6.
func TestAttributeTypeByOpset(t *testing.T) {
	n := &Node{Name: "c", OpType: "Cast", Attrs: map[string]*Attribute{"to": AString("to", "FLOAT")}}
	if err := CheckAttrs(n, 5); err != nil {
		t.Errorf("Cast-1 with a string to: %v", err)
	}
	if err := CheckAttrs(n, 13); err == nil {
		t.Error("Cast-13 with a string to: no error")
	}
	n.Attrs["to"] = AInt("to", int64(tensor.Float32))
	if err := CheckAttrs(n, 13); err != nil {
		t.Errorf("Cast-13 with an int to: %v", err)
	}
	// An attribute that refers to a function's attribute is resolved when
	// the function is inlined, not here.
	n.Attrs["to"] = &Attribute{Name: "to", Type: AttrString, RefAttr: "target"}
	if err := CheckAttrs(n, 13); err != nil {
		t.Errorf("a reference attribute: %v", err)
	}
}
