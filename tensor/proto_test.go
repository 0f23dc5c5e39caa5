package tensor

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/internal/testenv"
	"google.golang.org/protobuf/proto"
)

func TestProtoRoundTrip(t *testing.T) {
	cases := []*Tensor{MustFromSlice([]string{"a", "", "héllo"}, 3), New(Float32, 0, 2)}
	for _, k := range npyKindList {
		cases = append(cases, expected(k, 2, 3, 4), expected(k))
	}
	bf, _ := FromRaw16(BFloat16, []uint16{0x3f80, 0xc000, 0x7f80}, 3)
	cases = append(cases, bf)
	for _, want := range cases {
		tp, err := ToProto(want, "w")
		if err != nil {
			t.Fatal(err)
		}
		if tp.GetName() != "w" || tp.GetDataType() != int32(want.DType()) {
			t.Errorf("%v: name %q, data_type %d", want, tp.GetName(), tp.GetDataType())
		}
		// Through the wire, as a file would carry it.
		b, err := proto.Marshal(tp)
		if err != nil {
			t.Fatal(err)
		}
		back := &onnxpb.TensorProto{}
		if err := proto.Unmarshal(b, back); err != nil {
			t.Fatal(err)
		}
		got, err := FromProto(back, "")
		if err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		if !sameTensor(got, want) {
			t.Errorf("round trip: got %v, want %v", got, want)
		}
	}
}

// TestFromProtoTypedFields covers the repeated-field storage forms.
func TestFromProtoTypedFields(t *testing.T) {
	dt := func(d DType) *int32 { v := int32(d); return &v }
	cases := []struct {
		name string
		tp   *onnxpb.TensorProto
		want *Tensor
	}{
		{"float_data", &onnxpb.TensorProto{DataType: dt(Float32), Dims: []int64{2}, FloatData: []float32{1.5, -2}}, MustFromSlice([]float32{1.5, -2}, 2)},
		{"double_data", &onnxpb.TensorProto{DataType: dt(Float64), Dims: []int64{1}, DoubleData: []float64{3.25}}, MustFromSlice([]float64{3.25}, 1)},
		{"int64_data", &onnxpb.TensorProto{DataType: dt(Int64), Dims: []int64{}, Int64Data: []int64{-9}}, MustFromSlice([]int64{-9})},
		{"int32_data int32", &onnxpb.TensorProto{DataType: dt(Int32), Dims: []int64{2}, Int32Data: []int32{7, -7}}, MustFromSlice([]int32{7, -7}, 2)},
		{"int32_data int8", &onnxpb.TensorProto{DataType: dt(Int8), Dims: []int64{2}, Int32Data: []int32{-128, 127}}, MustFromSlice([]int8{-128, 127}, 2)},
		{"int32_data int16", &onnxpb.TensorProto{DataType: dt(Int16), Dims: []int64{1}, Int32Data: []int32{-300}}, MustFromSlice([]int16{-300}, 1)},
		{"int32_data uint8", &onnxpb.TensorProto{DataType: dt(Uint8), Dims: []int64{2}, Int32Data: []int32{0, 255}}, MustFromSlice([]uint8{0, 255}, 2)},
		{"int32_data uint16", &onnxpb.TensorProto{DataType: dt(Uint16), Dims: []int64{1}, Int32Data: []int32{65535}}, MustFromSlice([]uint16{65535}, 1)},
		{"int32_data bool", &onnxpb.TensorProto{DataType: dt(Bool), Dims: []int64{3}, Int32Data: []int32{1, 0, 1}}, MustFromSlice([]bool{true, false, true}, 3)},
		{"int32_data float16", &onnxpb.TensorProto{DataType: dt(Float16), Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xc000}}, mustRaw16(Float16, 0x3c00, 0xc000)},
		{"int32_data bfloat16", &onnxpb.TensorProto{DataType: dt(BFloat16), Dims: []int64{2}, Int32Data: []int32{0x3f80, 0x4000}}, mustRaw16(BFloat16, 0x3f80, 0x4000)},
		{"uint64_data uint32", &onnxpb.TensorProto{DataType: dt(Uint32), Dims: []int64{1}, Uint64Data: []uint64{4000000000}}, MustFromSlice([]uint32{4000000000}, 1)},
		{"uint64_data uint64", &onnxpb.TensorProto{DataType: dt(Uint64), Dims: []int64{1}, Uint64Data: []uint64{1 << 63}}, MustFromSlice([]uint64{1 << 63}, 1)},
		{"string_data", &onnxpb.TensorProto{DataType: dt(String), Dims: []int64{2}, StringData: [][]byte{[]byte("x"), nil}}, MustFromSlice([]string{"x", ""}, 2)},
		{"raw int16", &onnxpb.TensorProto{DataType: dt(Int16), Dims: []int64{2}, RawData: []byte{0x01, 0x02, 0xff, 0xff}}, MustFromSlice([]int16{0x0201, -1}, 2)},
		{"empty", &onnxpb.TensorProto{DataType: dt(Float32), Dims: []int64{0, 4}}, New(Float32, 0, 4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromProto(c.tp, "")
			if err != nil {
				t.Fatal(err)
			}
			if !sameTensor(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func mustRaw16(dt DType, v ...uint16) *Tensor {
	t, err := FromRaw16(dt, v, len(v))
	if err != nil {
		panic(err)
	}
	return t
}

func TestFromProtoErrors(t *testing.T) {
	dt := func(d int32) *int32 { return &d }
	cases := []struct {
		name string
		tp   *onnxpb.TensorProto
		want string
	}{
		{"count", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(1), Dims: []int64{3}, FloatData: []float32{1}}, `tensor "w": float_data has 1 elements; dims [3] need 3`},
		{"raw length", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(1), Dims: []int64{2}, RawData: []byte{1, 2, 3}}, "raw_data has 3 bytes"},
		{"float8", &onnxpb.TensorProto{Name: proto.String("q"), DataType: dt(17), Dims: []int64{1}, RawData: []byte{1}}, `tensor "q": unsupported dtype float8e4m3fn`},
		{"int4", &onnxpb.TensorProto{Name: proto.String("q"), DataType: dt(22)}, "unsupported dtype int4"},
		{"complex", &onnxpb.TensorProto{Name: proto.String("c"), DataType: dt(14)}, "unsupported dtype complex64"},
		{"undefined", &onnxpb.TensorProto{Name: proto.String("u")}, "unsupported dtype undefined"},
		{"segment", &onnxpb.TensorProto{Name: proto.String("s"), DataType: dt(1), Segment: &onnxpb.TensorProto_Segment{}}, "segmented"},
		{"negative dim", &onnxpb.TensorProto{Name: proto.String("n"), DataType: dt(1), Dims: []int64{-1}}, "negative dimension"},
		{"huge dims", &onnxpb.TensorProto{Name: proto.String("h"), DataType: dt(1), Dims: []int64{1 << 30, 1 << 30}}, "too many elements"},
		{"external without folder", &onnxpb.TensorProto{Name: proto.String("e"), DataType: dt(1), Dims: []int64{1},
			DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(), ExternalData: ext("w.bin", "", "")}, "no folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromProto(c.tp, "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func ext(location, offset, length string) []*onnxpb.StringStringEntryProto {
	kv := []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(location)}}
	if offset != "" {
		kv = append(kv, &onnxpb.StringStringEntryProto{Key: proto.String("offset"), Value: proto.String(offset)})
	}
	if length != "" {
		kv = append(kv, &onnxpb.StringStringEntryProto{Key: proto.String("length"), Value: proto.String(length)})
	}
	return kv
}

func TestFromProtoExternal(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "model")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := MustFromSlice([]float32{1, 2, 3}, 3)
	raw := EncodeBytes(want, binary.LittleEndian)
	blob := append(append([]byte("HEADER.."), raw...), "tail"...)
	for _, p := range []string{filepath.Join(dir, "w.bin"), filepath.Join(dir, "sub", "w.bin"), filepath.Join(root, "secret.bin")} {
		if err := os.WriteFile(p, blob, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(root, "secret.bin"), filepath.Join(dir, "link.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "w.bin"), filepath.Join(dir, "inside.bin")); err != nil {
		t.Fatal(err)
	}
	tp := func(kv []*onnxpb.StringStringEntryProto) *onnxpb.TensorProto {
		return &onnxpb.TensorProto{Name: proto.String("w"), DataType: proto.Int32(1), Dims: []int64{3},
			DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(), ExternalData: kv}
	}
	good := []struct {
		name string
		kv   []*onnxpb.StringStringEntryProto
	}{
		{"offset and length", ext("w.bin", "8", "12")},
		{"no length", ext("w.bin", "8", "")},
		{"subfolder", ext("sub/w.bin", "8", "12")},
		{"cleaned inside", ext("sub/../w.bin", "8", "12")},
		{"symlink inside", ext("inside.bin", "8", "12")},
	}
	for _, c := range good {
		t.Run(c.name, func(t *testing.T) {
			got, err := FromProto(tp(c.kv), dir)
			if err != nil {
				t.Fatal(err)
			}
			if !sameTensor(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	bad := []struct {
		name string
		kv   []*onnxpb.StringStringEntryProto
		want string
	}{
		{"parent", ext("../secret.bin", "8", "12"), "leaves the model's folder"},
		{"absolute", ext(filepath.Join(root, "secret.bin"), "8", "12"), "absolute"},
		{"symlink out", ext("link.bin", "8", "12"), "outside the model's folder"},
		{"missing", ext("nope.bin", "0", "12"), "no such file"},
		{"length mismatch", ext("w.bin", "8", "16"), "length 16"},
		{"past end", ext("w.bin", "20", "12"), "run past the end"},
		{"bad offset", ext("w.bin", "-4", "12"), "bad value"},
		{"no location", ext("", "0", "12"), "no location"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := FromProto(tp(c.kv), dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if !strings.Contains(err.Error(), `tensor "w"`) {
				t.Errorf("error %q does not name the tensor", err)
			}
		})
	}
}

// TestFromProtoWrittenByONNX reads TensorProtos written by the onnx Python
// package in both its raw and its typed-field forms.
func TestFromProtoWrittenByONNX(t *testing.T) {
	testenv.Python(t, "onnx", "numpy")
	dir := t.TempDir()
	runPython(t, pySequences+`
import sys, os, onnx
from onnx import helper, numpy_helper, mapping
d = sys.argv[1]
def save(t, name):
    with open(os.path.join(d, name + '.pb'), 'wb') as f:
        f.write(t.SerializeToString())
for k in KINDS:
    a = values(k, 6).astype(k).reshape(2, 3)
    save(numpy_helper.from_array(a, k), k + '_raw')
    dt = mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(k)]
    save(helper.make_tensor(k, dt, [2, 3], a.flatten().tolist()), k + '_typed')
save(helper.make_tensor('bf', onnx.TensorProto.BFLOAT16, [2, 3], values('f4', 6).astype('f4').tolist()), 'bf16_typed')
save(helper.make_tensor('s', onnx.TensorProto.STRING, [2], [b'ab', b'']), 'string_typed')
`, dir)
	bf := expected("f4", 2, 3)
	bfRaw := make([]uint16, 6)
	for i, v := range bf.Float32s() {
		bfRaw[i] = Float32ToBFloat16(v)
	}
	bf16, _ := FromRaw16(BFloat16, bfRaw, 2, 3)
	cases := map[string]*Tensor{"bf16_typed": bf16, "string_typed": MustFromSlice([]string{"ab", ""}, 2)}
	for _, k := range npyKindList {
		cases[k+"_raw"] = expected(k, 2, 3)
		cases[k+"_typed"] = expected(k, 2, 3)
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(dir, name+".pb"))
			if err != nil {
				t.Fatal(err)
			}
			tp := &onnxpb.TensorProto{}
			if err := proto.Unmarshal(b, tp); err != nil {
				t.Fatal(err)
			}
			got, err := FromProto(tp, "")
			if err != nil {
				t.Fatal(err)
			}
			if !sameTensor(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}
