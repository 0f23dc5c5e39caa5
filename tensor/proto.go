package tensor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"google.golang.org/protobuf/proto"
)

// onnxTypeNames names the ONNX element types gotrain cannot hold, so that
// errors about them say what the file asked for.
var onnxTypeNames = map[int32]string{
	0: "undefined", 14: "complex64", 15: "complex128",
	17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
	21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
}

// ONNXTypeName names an ONNX TensorProto.DataType number, including the
// types gotrain does not support.
func ONNXTypeName(dt int32) string {
	if d := DType(dt); d.Supported() {
		return d.String()
	}
	if s, ok := onnxTypeNames[dt]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", dt)
}

// elemCount multiplies dims, refusing negative dims and counts whose byte
// size overflows an int64 (the memory limit is checked where the elements
// are allocated, after the data has been found to match the dims).
func elemCount(dims []int64) (int, error) {
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in %v", dims)
		}
	}
	n, ok := MulDims(dims)
	if !ok || n > math.MaxInt64/16 {
		return 0, fmt.Errorf("dims %v hold too many elements to address", dims)
	}
	return int(n), nil
}

// FromProto converts an ONNX TensorProto into a tensor. The data may be in
// raw_data (little-endian), in the typed repeated field for its dtype, or in
// an external file (data_location EXTERNAL) named relative to dir; dir ""
// refuses external data. An external location must stay inside dir: an
// absolute path, one that leaves dir, or a symbolic link that points out of
// it is refused. The element count must match the dims.
func FromProto(tp *onnxpb.TensorProto, dir string) (*Tensor, error) {
	t, err := fromProto(tp, dir)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	return t, nil
}

func fromProto(tp *onnxpb.TensorProto, dir string) (*Tensor, error) {
	if tp == nil {
		return nil, errors.New("no tensor")
	}
	dt := DType(tp.GetDataType())
	if !dt.Supported() {
		return nil, fmt.Errorf("unsupported dtype %s (ONNX data_type %d)", ONNXTypeName(tp.GetDataType()), tp.GetDataType())
	}
	if tp.GetSegment() != nil {
		return nil, errors.New("segmented tensors are not supported")
	}
	n, err := elemCount(tp.GetDims())
	if err != nil {
		return nil, err
	}
	shape := make([]int, len(tp.GetDims()))
	for i, d := range tp.GetDims() {
		shape[i] = int(d)
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		if dt == String {
			return nil, errors.New("string tensors cannot be stored externally")
		}
		raw, err := readExternal(tp, dir, n*dt.Size(), shape)
		if err != nil {
			return nil, err
		}
		return &Tensor{dtype: dt, shape: shape, data: decodeBytes(dt, raw, n, binary.LittleEndian)}, nil
	}
	if raw := tp.GetRawData(); len(raw) > 0 && dt != String {
		if len(raw) != n*dt.Size() {
			return nil, fmt.Errorf("raw_data has %d bytes; %v%v needs %d", len(raw), dt, shape, n*dt.Size())
		}
		if err := CheckAlloc(fmt.Sprintf("%v%v", dt, shape), int64(n), ElemBytes(dt)); err != nil {
			return nil, err
		}
		return &Tensor{dtype: dt, shape: shape, data: decodeBytes(dt, raw, n, binary.LittleEndian)}, nil
	}
	// The typed fields are in memory already; the copy is checked once the
	// counts agree.
	count := func(field string, have int) error {
		if have != n {
			return fmt.Errorf("%s has %d elements; dims %v need %d", field, have, shape, n)
		}
		return CheckAlloc(fmt.Sprintf("%v%v", dt, shape), int64(n), ElemBytes(dt))
	}
	t := &Tensor{dtype: dt, shape: shape}
	switch dt {
	case Float32:
		src := tp.GetFloatData()
		if err := count("float_data", len(src)); err != nil {
			return nil, err
		}
		t.data = append([]float32{}, src...)
	case Float64:
		src := tp.GetDoubleData()
		if err := count("double_data", len(src)); err != nil {
			return nil, err
		}
		t.data = append([]float64{}, src...)
	case Int64:
		src := tp.GetInt64Data()
		if err := count("int64_data", len(src)); err != nil {
			return nil, err
		}
		t.data = append([]int64{}, src...)
	case Uint32, Uint64:
		src := tp.GetUint64Data()
		if err := count("uint64_data", len(src)); err != nil {
			return nil, err
		}
		if dt == Uint64 {
			t.data = append([]uint64{}, src...)
			break
		}
		d := make([]uint32, n)
		for i, v := range src {
			d[i] = uint32(v)
		}
		t.data = d
	case String:
		src := tp.GetStringData()
		if err := count("string_data", len(src)); err != nil {
			return nil, err
		}
		d := make([]string, n)
		for i, v := range src {
			d[i] = string(v)
		}
		t.data = d
	default: // the types ONNX stores in int32_data
		src := tp.GetInt32Data()
		if err := count("int32_data", len(src)); err != nil {
			return nil, err
		}
		t.data = fromInt32s(dt, src)
	}
	return t, nil
}

// fromInt32s narrows int32_data to the tensor's element type. Float16 and
// BFloat16 arrive as their bit patterns in the low 16 bits.
func fromInt32s(dt DType, src []int32) any {
	switch dt {
	case Int32:
		return append([]int32{}, src...)
	case Int16:
		d := make([]int16, len(src))
		for i, v := range src {
			d[i] = int16(v)
		}
		return d
	case Int8:
		d := make([]int8, len(src))
		for i, v := range src {
			d[i] = int8(v)
		}
		return d
	case Uint8:
		d := make([]uint8, len(src))
		for i, v := range src {
			d[i] = uint8(v)
		}
		return d
	case Bool:
		d := make([]bool, len(src))
		for i, v := range src {
			d[i] = v != 0
		}
		return d
	default: // Uint16, Float16, BFloat16
		d := make([]uint16, len(src))
		for i, v := range src {
			d[i] = uint16(v)
		}
		return d
	}
}

// readExternal reads the bytes of an externally stored tensor.
func readExternal(tp *onnxpb.TensorProto, dir string, want int, shape []int) ([]byte, error) {
	var location string
	offset, length := int64(0), int64(-1)
	for _, kv := range tp.GetExternalData() {
		var err error
		switch kv.GetKey() {
		case "location":
			location = kv.GetValue()
		case "offset":
			offset, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		case "length":
			length, err = strconv.ParseInt(kv.GetValue(), 10, 64)
		}
		if err != nil || offset < 0 || length < -1 {
			return nil, fmt.Errorf("external data key %q has a bad value %q", kv.GetKey(), kv.GetValue())
		}
	}
	if location == "" {
		return nil, errors.New("external data has no location")
	}
	if dir == "" {
		return nil, fmt.Errorf("external data %q: no folder to resolve it in (load the model from a file)", location)
	}
	path, err := SafeJoin(dir, location)
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	if length >= 0 && length != int64(want) {
		return nil, fmt.Errorf("external data %q: length %d; the dims need %d bytes", location, length, want)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("external data: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("external data %q is not a regular file", location)
	}
	if offset > st.Size() || st.Size()-offset < int64(want) {
		return nil, fmt.Errorf("external data %q: %d bytes at offset %d run past the end of the %d-byte file", location, want, offset, st.Size())
	}
	// Twice: the bytes read, then the elements decoded from them.
	if err := CheckAlloc(fmt.Sprintf("external data %q (%v%v)", location, DType(tp.GetDataType()), shape), int64(want), 2); err != nil {
		return nil, err
	}
	buf := make([]byte, want)
	if _, err := f.ReadAt(buf, offset); err != nil && !(errors.Is(err, io.EOF) && want == 0) {
		return nil, fmt.Errorf("external data %q: %w", location, err)
	}
	return buf, nil
}

// SafeJoin joins a relative name to dir and checks that the result, after
// cleaning and resolving symbolic links, lies inside dir. Files named by
// models (external data) go through it so that a model cannot read outside
// its own folder.
func SafeJoin(dir, name string) (string, error) {
	if filepath.IsAbs(name) || strings.HasPrefix(name, "/") || strings.HasPrefix(name, `\`) {
		return "", fmt.Errorf("location %q is absolute; it must be relative to the model's folder", name)
	}
	if !filepath.IsLocal(name) {
		return "", fmt.Errorf("location %q leaves the model's folder", name)
	}
	path := filepath.Join(dir, name)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	realPath, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(realDir, realPath)
	if err != nil || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("location %q resolves to %s, outside the model's folder", name, realPath)
	}
	return path, nil
}

// ToProto converts a tensor into a TensorProto: raw_data (little-endian) for
// numeric and bool tensors, string_data for strings.
func ToProto(t *Tensor, name string) (*onnxpb.TensorProto, error) {
	if t == nil {
		return nil, fmt.Errorf("tensor %q: nil tensor", name)
	}
	if !t.dtype.Supported() {
		return nil, fmt.Errorf("tensor %q: unsupported dtype %v", name, t.dtype)
	}
	dims := make([]int64, len(t.shape))
	for i, d := range t.shape {
		dims[i] = int64(d)
	}
	tp := &onnxpb.TensorProto{Dims: dims, DataType: proto.Int32(int32(t.dtype)), Name: proto.String(name)}
	if t.dtype == String {
		for _, s := range t.data.([]string) {
			tp.StringData = append(tp.StringData, []byte(s))
		}
		return tp, nil
	}
	tp.RawData = EncodeBytes(t, binary.LittleEndian)
	return tp, nil
}

// decodeBytes converts n elements of dtype dt from b (which holds exactly
// n*dt.Size() bytes) in the given byte order.
func decodeBytes(dt DType, b []byte, n int, o binary.ByteOrder) any {
	switch dt {
	case Float32:
		d := make([]float32, n)
		for i := range d {
			d[i] = math.Float32frombits(o.Uint32(b[4*i:]))
		}
		return d
	case Float64:
		d := make([]float64, n)
		for i := range d {
			d[i] = math.Float64frombits(o.Uint64(b[8*i:]))
		}
		return d
	case Int64:
		d := make([]int64, n)
		for i := range d {
			d[i] = int64(o.Uint64(b[8*i:]))
		}
		return d
	case Uint64:
		d := make([]uint64, n)
		for i := range d {
			d[i] = o.Uint64(b[8*i:])
		}
		return d
	case Int32:
		d := make([]int32, n)
		for i := range d {
			d[i] = int32(o.Uint32(b[4*i:]))
		}
		return d
	case Uint32:
		d := make([]uint32, n)
		for i := range d {
			d[i] = o.Uint32(b[4*i:])
		}
		return d
	case Int16:
		d := make([]int16, n)
		for i := range d {
			d[i] = int16(o.Uint16(b[2*i:]))
		}
		return d
	case Uint16, Float16, BFloat16:
		d := make([]uint16, n)
		for i := range d {
			d[i] = o.Uint16(b[2*i:])
		}
		return d
	case Int8:
		d := make([]int8, n)
		for i := range d {
			d[i] = int8(b[i])
		}
		return d
	case Uint8:
		return append([]uint8{}, b[:n]...)
	case Bool:
		d := make([]bool, n)
		for i := range d {
			d[i] = b[i] != 0
		}
		return d
	}
	return nil
}

// EncodeBytes returns the elements of a numeric or bool tensor as bytes in
// the given order (bools as 0 or 1). It returns nil for string tensors.
func EncodeBytes(t *Tensor, o binary.ByteOrder) []byte {
	b := make([]byte, t.Len()*t.dtype.Size())
	switch d := t.data.(type) {
	case []float32:
		for i, v := range d {
			o.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d {
			o.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case []int64:
		for i, v := range d {
			o.PutUint64(b[8*i:], uint64(v))
		}
	case []uint64:
		for i, v := range d {
			o.PutUint64(b[8*i:], v)
		}
	case []int32:
		for i, v := range d {
			o.PutUint32(b[4*i:], uint32(v))
		}
	case []uint32:
		for i, v := range d {
			o.PutUint32(b[4*i:], v)
		}
	case []int16:
		for i, v := range d {
			o.PutUint16(b[2*i:], uint16(v))
		}
	case []uint16:
		for i, v := range d {
			o.PutUint16(b[2*i:], v)
		}
	case []int8:
		for i, v := range d {
			b[i] = byte(v)
		}
	case []uint8:
		copy(b, d)
	case []bool:
		for i, v := range d {
			if v {
				b[i] = 1
			}
		}
	default:
		return nil
	}
	return b
}
