package graph

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/internal/onnxdata"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
	"google.golang.org/protobuf/proto"
)

// hostileModels are the reported kinds of model whose shapes come out
// huge, as files: a Range of 2^40 elements, a OneHot of 10^12 classes, a
// ConstantOfShape of 2^40 elements, a Pad by 2^40, and attributes of the
// wrong type.
func hostileModels(tb testing.TB) [][]byte {
	i64 := func(v ...int64) *tensor.Tensor { return tensor.MustFromSlice(v, len(v)) }
	model := func(inits map[string]*tensor.Tensor, nodes ...*Node) []byte {
		g := NewGraph("hostile")
		g.Inputs = []*ValueInfo{{Name: "x", Type: *NewType(tensor.Float32, Shape{D(2), D(3)})}}
		for _, k := range []string{"a", "b", "c"} {
			if t := inits[k]; t != nil {
				g.SetInitializer(k, t)
			}
		}
		g.Nodes = nodes
		last := nodes[len(nodes)-1]
		g.Outputs = []*ValueInfo{{Name: last.Outputs[0]}}
		b, err := NewModel(g, 17).Marshal()
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	n := func(op string, in []string, attrs ...*Attribute) *Node {
		nd := &Node{Name: "n", OpType: op, Inputs: in, Outputs: []string{"y"}, Attrs: map[string]*Attribute{}}
		for _, a := range attrs {
			nd.Attrs[a.Name] = a
		}
		return nd
	}
	return [][]byte{
		model(map[string]*tensor.Tensor{"a": tensor.Scalar(int64(0)), "b": tensor.Scalar(int64(1 << 40)), "c": tensor.Scalar(int64(1))},
			n("Range", []string{"a", "b", "c"})),
		model(map[string]*tensor.Tensor{"a": i64(0, 1), "b": tensor.Scalar(int64(1e12)), "c": tensor.MustFromSlice([]float32{0, 1}, 2)},
			n("OneHot", []string{"a", "b", "c"})),
		model(map[string]*tensor.Tensor{"a": i64(1<<20, 1<<20)}, n("ConstantOfShape", []string{"a"})),
		model(map[string]*tensor.Tensor{"a": i64(0, 1<<40, 0, 0)}, n("Pad", []string{"x", "a"})),
		model(nil, n("Flatten", []string{"x"}, AString("axis", "1"))),
		model(nil, n("Softmax", []string{"x"}, AFloat("axis", 1))),
	}
}

// FuzzLoadBytes feeds arbitrary bytes to the loader, and what loads to
// shape inference, under a small memory limit: they may refuse them but
// must never panic, hang or allocate past the limit, and whatever loads
// must save and load again.
func FuzzLoadBytes(f *testing.F) {
	defer tensor.SetMemoryLimit(tensor.SetMemoryLimit(memtest.Limit))
	var seeds []string
	for _, name := range []string{"cnn", "mlp"} {
		p, _ := goldenModel(f, name)
		seeds = append(seeds, p)
	}
	// Node tests' models as seeds: v1.22's beside the project, else
	// Debian's (a seed missing from both is left out).
	nodeTests, ok := testenv.Shared(f, "onnx-node-tests/v1.22.0")
	if !ok {
		nodeTests = filepath.Join(onnxdata.Debian, "node")
	}
	for _, test := range []string{"test_if", "test_loop11", "test_conv_with_strides_padding", "test_constant", "test_gemm_default_vector_bias",
		"test_sequence_insert_at_back", "test_range_int32_type_negative_delta", "test_onehot_with_axis", "test_constantofshape_int_zeros",
		"test_reflect_pad", "test_tile", "test_expand_dim_changed", "test_reshape_negative_dim"} {
		seeds = append(seeds, filepath.Join(nodeTests, test, "model.onnx"))
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // a node test this suite lacks: the other seeds remain
		}
		f.Add(data)
		f.Add(data[:len(data)/2])
		flipped := append([]byte{}, data...)
		flipped[len(flipped)/3] ^= 0x40
		f.Add(flipped)
	}
	if data, err := goModel().Marshal(); err == nil {
		f.Add(data)
	}
	for _, m := range hostileModels(f) {
		f.Add(m)
	}
	// A tensor whose dims declare 2^40 elements over 4 bytes of raw_data.
	huge, _ := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: &onnxpb.GraphProto{
		Initializer: []*onnxpb.TensorProto{{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{1 << 20, 1 << 20}, RawData: make([]byte, 4)}}}})
	f.Add(huge)
	f.Add([]byte{})
	f.Add([]byte("\x08\x07\x3a\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadBytes(data, "")
		if err != nil {
			return
		}
		// Inference must refuse what it cannot size, not crash on it.
		_ = Validate(m)
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("loaded but cannot save: %v", err)
		}
		if _, err := LoadBytes(out, ""); err != nil {
			t.Fatalf("saved model does not load: %v", err)
		}
	})
}

// The reported models are refused with an error, not a crash.
func TestHostileModels(t *testing.T) {
	for _, data := range hostileModels(t) {
		memtest.Refused(t, func() error {
			m, err := LoadBytes(data, "")
			if err != nil {
				return err
			}
			return Validate(m)
		}, `node "n"`)
	}
}
