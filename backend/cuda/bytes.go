package cuda

import (
	"fmt"
	"unsafe"

	"github.com/gotrain/gotrain/tensor"
)

// HostBytes is t's data as bytes, without a copy: what an upload sends. bool
// is one byte per element (0 or 1), as the kernels read it; float16 and
// bfloat16 are their 16-bit patterns.
func HostBytes(t *tensor.Tensor) ([]byte, error) {
	n := t.Len()
	if n == 0 {
		return nil, nil
	}
	var p unsafe.Pointer
	switch d := t.Data().(type) {
	case []float32:
		p = unsafe.Pointer(&d[0])
	case []float64:
		p = unsafe.Pointer(&d[0])
	case []int64:
		p = unsafe.Pointer(&d[0])
	case []int32:
		p = unsafe.Pointer(&d[0])
	case []uint8:
		p = unsafe.Pointer(&d[0])
	case []int8:
		p = unsafe.Pointer(&d[0])
	case []bool:
		p = unsafe.Pointer(&d[0])
	case []uint16:
		p = unsafe.Pointer(&d[0])
	case []int16:
		p = unsafe.Pointer(&d[0])
	case []uint32:
		p = unsafe.Pointer(&d[0])
	case []uint64:
		p = unsafe.Pointer(&d[0])
	default:
		return nil, fmt.Errorf("cuda: tensors of %v cannot live on a device", t.DType())
	}
	return unsafe.Slice((*byte)(p), n*t.DType().Size()), nil
}

// FromHostBytes makes a tensor of dtype dt and shape from raw device bytes
// (copied). Bytes of a bool tensor other than 0 read as true.
func FromHostBytes(dt tensor.DType, shape []int, raw []byte) (*tensor.Tensor, error) {
	t, err := tensor.NewChecked(dt, shape)
	if err != nil {
		return nil, err
	}
	if want := t.Len() * dt.Size(); len(raw) != want {
		return nil, fmt.Errorf("cuda: %d bytes for a %v %v tensor of %d bytes", len(raw), dt, shape, want)
	}
	if b := t.Bools(); b != nil {
		for i, v := range raw {
			b[i] = v != 0
		}
		return t, nil
	}
	dst, err := HostBytes(t)
	if err != nil {
		return nil, err
	}
	copy(dst, raw)
	return t, nil
}
