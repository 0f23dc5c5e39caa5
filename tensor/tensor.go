// Package tensor holds host tensors: a dtype, a shape and a flat, row-major
// slice of elements.
//
// A Tensor's data is a typed Go slice ([]float32, []int64, ...) chosen by its
// DType; kernels reach it through the typed accessors (Float32s, Int64s, ...)
// and never through reflection. Shapes are plain []int; a scalar has an empty
// shape and one element. Float16 and BFloat16 are stored as their raw 16-bit
// patterns ([]uint16) and converted where an op computes with them.
//
// The package also converts to and from ONNX TensorProto messages and reads and
// writes NumPy .npy files, the two ways tensors enter and leave gotrain.
package tensor

import (
	"fmt"
	"strings"
)

// DType is an element type. Its values are those of ONNX's
// TensorProto.DataType enum, so conversion is the identity.
type DType int32

// The element types. Their numbers are ONNX's.
const (
	Invalid  DType = 0
	Float32  DType = 1
	Uint8    DType = 2
	Int8     DType = 3
	Uint16   DType = 4
	Int16    DType = 5
	Int32    DType = 6
	Int64    DType = 7
	String   DType = 8
	Bool     DType = 9
	Float16  DType = 10
	Float64  DType = 11
	Uint32   DType = 12
	Uint64   DType = 13
	BFloat16 DType = 16
)

var dtypeNames = map[DType]string{
	Float32: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16", Int16: "int16",
	Int32: "int32", Int64: "int64", String: "string", Bool: "bool", Float16: "float16",
	Float64: "float64", Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16",
}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int32(d))
}

// Supported reports whether tensors of this dtype can be created.
func (d DType) Supported() bool { _, ok := dtypeNames[d]; return ok }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float32 || d == Float64 || d == Float16 || d == BFloat16
}

// IsInt reports whether d is a signed or unsigned integer type.
func (d DType) IsInt() bool {
	switch d {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64:
		return true
	}
	return false
}

// Size is the number of bytes of one element (0 for strings).
func (d DType) Size() int {
	switch d {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Float32, Int32, Uint32:
		return 4
	case Float64, Int64, Uint64:
		return 8
	}
	return 0
}

// Tensor is a dense, row-major host tensor.
type Tensor struct {
	dtype DType
	shape []int
	data  any
}

// NumElements is the product of the dims (1 for a scalar).
func NumElements(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// New returns a zero-filled tensor. It panics on an unsupported dtype, a
// negative dim or a size that overflows, which are programming errors, and
// does not consult the memory limit; use NewChecked for sizes that come
// from input.
func New(dt DType, shape ...int) *Tensor {
	n, ok := MulDims(shape)
	if !ok {
		panic(fmt.Sprintf("tensor: shape %v is negative or overflows", shape))
	}
	data, err := makeSlice(dt, int(n))
	if err != nil {
		panic(err)
	}
	return &Tensor{dtype: dt, shape: append([]int{}, shape...), data: data}
}

// NewChecked is New for shapes that come from input: an unsupported dtype,
// a negative dim, a size that overflows or one over the memory limit (a
// *LimitError) is an error, and nothing is allocated.
func NewChecked(dt DType, shape []int) (*Tensor, error) {
	if !dt.Supported() {
		return nil, fmt.Errorf("tensor: unsupported dtype %v", dt)
	}
	if err := CheckShape("", dt, shape); err != nil {
		return nil, err
	}
	n, _ := MulDims(shape)
	data, err := makeSlice(dt, int(n))
	if err != nil {
		return nil, err
	}
	return &Tensor{dtype: dt, shape: append([]int{}, shape...), data: data}, nil
}

func makeSlice(dt DType, n int) (any, error) {
	switch dt {
	case Float32:
		return make([]float32, n), nil
	case Float64:
		return make([]float64, n), nil
	case Int64:
		return make([]int64, n), nil
	case Int32:
		return make([]int32, n), nil
	case Int16:
		return make([]int16, n), nil
	case Int8:
		return make([]int8, n), nil
	case Uint8:
		return make([]uint8, n), nil
	case Uint16, Float16, BFloat16:
		return make([]uint16, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Bool:
		return make([]bool, n), nil
	case String:
		return make([]string, n), nil
	}
	return nil, fmt.Errorf("tensor: unsupported dtype %v", dt)
}

// FromSlice wraps data (not copied) as a tensor of the given shape. The
// slice's Go type selects the dtype; use FromRaw16 for float16/bfloat16.
func FromSlice(data any, shape ...int) (*Tensor, error) {
	var dt DType
	var n int
	switch d := data.(type) {
	case []float32:
		dt, n = Float32, len(d)
	case []float64:
		dt, n = Float64, len(d)
	case []int64:
		dt, n = Int64, len(d)
	case []int32:
		dt, n = Int32, len(d)
	case []int16:
		dt, n = Int16, len(d)
	case []int8:
		dt, n = Int8, len(d)
	case []uint8:
		dt, n = Uint8, len(d)
	case []uint16:
		dt, n = Uint16, len(d)
	case []uint32:
		dt, n = Uint32, len(d)
	case []uint64:
		dt, n = Uint64, len(d)
	case []bool:
		dt, n = Bool, len(d)
	case []string:
		dt, n = String, len(d)
	default:
		return nil, fmt.Errorf("tensor: unsupported slice type %T", data)
	}
	if err := fitsShape(n, shape); err != nil {
		return nil, err
	}
	return &Tensor{dtype: dt, shape: append([]int{}, shape...), data: data}, nil
}

// fitsShape checks that n elements fill shape exactly. A product alone
// would let negative dims cancel ([-1, -1] for one element) or a product
// wrap around, and the tensor would then panic where it is cloned.
func fitsShape(n int, shape []int) error {
	if m, ok := MulDims(shape); !ok || m != int64(n) {
		return fmt.Errorf("tensor: %d elements do not fit shape %v", n, shape)
	}
	return nil
}

// MustFromSlice is FromSlice for literals in code and tests.
func MustFromSlice(data any, shape ...int) *Tensor {
	t, err := FromSlice(data, shape...)
	if err != nil {
		panic(err)
	}
	return t
}

// FromRaw16 wraps 16-bit patterns as a Float16, BFloat16 or Uint16 tensor.
func FromRaw16(dt DType, data []uint16, shape ...int) (*Tensor, error) {
	if dt != Float16 && dt != BFloat16 && dt != Uint16 {
		return nil, fmt.Errorf("tensor: FromRaw16 takes float16, bfloat16 or uint16, not %v", dt)
	}
	if err := fitsShape(len(data), shape); err != nil {
		return nil, err
	}
	return &Tensor{dtype: dt, shape: append([]int{}, shape...), data: data}, nil
}

// Scalar returns a 0-d tensor holding v (float32, float64, int64, int32 or bool).
func Scalar(v any) *Tensor {
	switch x := v.(type) {
	case float32:
		return MustFromSlice([]float32{x})
	case float64:
		return MustFromSlice([]float64{x})
	case int64:
		return MustFromSlice([]int64{x})
	case int32:
		return MustFromSlice([]int32{x})
	case int:
		return MustFromSlice([]int64{int64(x)})
	case bool:
		return MustFromSlice([]bool{x})
	}
	panic(fmt.Sprintf("tensor: Scalar of %T", v))
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns the dims. The caller must not modify the returned slice.
func (t *Tensor) Shape() []int { return t.shape }

// Rank is the number of dims.
func (t *Tensor) Rank() int { return len(t.shape) }

// Len is the number of elements.
func (t *Tensor) Len() int { return NumElements(t.shape) }

// Data returns the underlying typed slice.
func (t *Tensor) Data() any { return t.data }

// Float32s returns the data of a Float32 tensor (nil for another dtype).
func (t *Tensor) Float32s() []float32 { d, _ := t.data.([]float32); return d }

// Float64s returns the data of a Float64 tensor.
func (t *Tensor) Float64s() []float64 { d, _ := t.data.([]float64); return d }

// Int64s returns the data of an Int64 tensor.
func (t *Tensor) Int64s() []int64 { d, _ := t.data.([]int64); return d }

// Int32s returns the data of an Int32 tensor.
func (t *Tensor) Int32s() []int32 { d, _ := t.data.([]int32); return d }

// Uint8s returns the data of a Uint8 tensor.
func (t *Tensor) Uint8s() []uint8 { d, _ := t.data.([]uint8); return d }

// Bools returns the data of a Bool tensor.
func (t *Tensor) Bools() []bool { d, _ := t.data.([]bool); return d }

// Raw16 returns the 16-bit patterns of a Float16, BFloat16 or Uint16 tensor.
func (t *Tensor) Raw16() []uint16 { d, _ := t.data.([]uint16); return d }

// Reshaped returns a tensor sharing t's data with another shape of the same size.
func (t *Tensor) Reshaped(shape ...int) (*Tensor, error) {
	if NumElements(shape) != t.Len() {
		return nil, fmt.Errorf("tensor: cannot reshape %v to %v", t.shape, shape)
	}
	return &Tensor{dtype: t.dtype, shape: append([]int{}, shape...), data: t.data}, nil
}

// SetShape changes the shape in place, keeping the data; the element count
// must not change. Used by executors that reuse a buffer for a view.
func (t *Tensor) SetShape(shape []int) error {
	if NumElements(shape) != t.Len() {
		return fmt.Errorf("tensor: cannot reshape %v to %v", t.shape, shape)
	}
	t.shape = append(t.shape[:0], shape...)
	return nil
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := New(t.dtype, t.shape...)
	c.CopyFrom(t)
	return c
}

// CopyFrom copies src's elements into t; dtypes and element counts must match.
func (t *Tensor) CopyFrom(src *Tensor) {
	if src.dtype != t.dtype || src.Len() != t.Len() {
		panic(fmt.Sprintf("tensor: CopyFrom %v%v into %v%v", src.dtype, src.shape, t.dtype, t.shape))
	}
	switch d := t.data.(type) {
	case []float32:
		copy(d, src.data.([]float32))
	case []float64:
		copy(d, src.data.([]float64))
	case []int64:
		copy(d, src.data.([]int64))
	case []int32:
		copy(d, src.data.([]int32))
	case []int16:
		copy(d, src.data.([]int16))
	case []int8:
		copy(d, src.data.([]int8))
	case []uint8:
		copy(d, src.data.([]uint8))
	case []uint16:
		copy(d, src.data.([]uint16))
	case []uint32:
		copy(d, src.data.([]uint32))
	case []uint64:
		copy(d, src.data.([]uint64))
	case []bool:
		copy(d, src.data.([]bool))
	case []string:
		copy(d, src.data.([]string))
	}
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Strides returns the row-major element strides of shape.
func Strides(shape []int) []int {
	s := make([]int, len(shape))
	acc := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = acc
		acc *= shape[i]
	}
	return s
}

// AsFloat64 returns the element at flat index i as a float64, for any numeric dtype.
func (t *Tensor) AsFloat64(i int) float64 {
	switch d := t.data.(type) {
	case []float32:
		return float64(d[i])
	case []float64:
		return d[i]
	case []int64:
		return float64(d[i])
	case []int32:
		return float64(d[i])
	case []int16:
		return float64(d[i])
	case []int8:
		return float64(d[i])
	case []uint8:
		return float64(d[i])
	case []uint32:
		return float64(d[i])
	case []uint64:
		return float64(d[i])
	case []bool:
		if d[i] {
			return 1
		}
		return 0
	case []uint16:
		switch t.dtype {
		case Float16:
			return float64(HalfToFloat32(d[i]))
		case BFloat16:
			return float64(BFloat16ToFloat32(d[i]))
		}
		return float64(d[i])
	}
	return 0
}

// AsInt64s returns the elements of an integer tensor as int64s (a copy, or
// the data itself for Int64). Shape-like inputs of ops use it.
func (t *Tensor) AsInt64s() ([]int64, error) {
	switch d := t.data.(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, nil
	}
	if !t.dtype.IsInt() {
		return nil, fmt.Errorf("tensor: expected an integer tensor, got %v", t.dtype)
	}
	out := make([]int64, t.Len())
	for i := range out {
		out[i] = int64(t.AsFloat64(i))
	}
	return out, nil
}

// String prints the dtype, shape and up to 8 leading elements.
func (t *Tensor) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v%v[", t.dtype, t.shape)
	n := t.Len()
	for i := 0; i < n && i < 8; i++ {
		if i > 0 {
			b.WriteString(" ")
		}
		if t.dtype == String {
			fmt.Fprintf(&b, "%q", t.data.([]string)[i])
		} else {
			fmt.Fprintf(&b, "%g", t.AsFloat64(i))
		}
	}
	if n > 8 {
		b.WriteString(" ...")
	}
	b.WriteString("]")
	return b.String()
}

// View returns a tensor of the given shape over the first elements of
// src's data (shared, not copied). The executor uses it to place values in
// reused buffers.
func View(src *Tensor, shape []int) (*Tensor, error) {
	n := NumElements(shape)
	if n > src.Len() {
		return nil, fmt.Errorf("tensor: view %v needs %d elements, buffer has %d", shape, n, src.Len())
	}
	var data any
	switch d := src.data.(type) {
	case []float32:
		data = d[:n:n]
	case []float64:
		data = d[:n:n]
	case []int64:
		data = d[:n:n]
	case []int32:
		data = d[:n:n]
	case []int16:
		data = d[:n:n]
	case []int8:
		data = d[:n:n]
	case []uint8:
		data = d[:n:n]
	case []uint16:
		data = d[:n:n]
	case []uint32:
		data = d[:n:n]
	case []uint64:
		data = d[:n:n]
	case []bool:
		data = d[:n:n]
	case []string:
		data = d[:n:n]
	}
	return &Tensor{dtype: src.dtype, shape: append([]int{}, shape...), data: data}, nil
}

// ShareData makes t use src's data (same dtype and element count), keeping
// t's shape. It lets a preallocated view follow a buffer that changes from
// run to run without allocating.
func (t *Tensor) ShareData(src *Tensor) error {
	if src.dtype != t.dtype || src.Len() != t.Len() {
		return fmt.Errorf("tensor: cannot view %v%v as %v%v", src.dtype, src.shape, t.dtype, t.shape)
	}
	t.data = src.data
	return nil
}

// UnsupportedDTypeError reports an element type gotrain cannot hold (float8,
// int4, complex, ...), naming the tensor when known.
type UnsupportedDTypeError struct {
	Name  string
	DType string
}

func (e *UnsupportedDTypeError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("tensor %q: unsupported dtype %s", e.Name, e.DType)
	}
	return "unsupported dtype " + e.DType
}
