package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/gotrain/gotrain/tensor"
)

// openMaybeGzip opens path, transparently decompressing it when it starts
// with the gzip magic bytes (whatever its name). size is the file's length
// when it is not compressed, -1 otherwise.
func openMaybeGzip(path string) (r io.Reader, size int64, closer func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("data: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("data: %w", err)
	}
	r, size, err = maybeGzip(bufio.NewReaderSize(f, 1<<16), st.Size(), path)
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return r, size, func() { f.Close() }, nil
}

// maybeGzip returns br, or a decompressing reader when it starts with the
// gzip magic bytes; size becomes -1 (unknown) then.
func maybeGzip(br *bufio.Reader, size int64, path string) (io.Reader, int64, error) {
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, fmt.Errorf("data: %s: bad gzip header: %v", path, err)
		}
		return zr, -1, nil
	}
	return br, size, nil
}

// ReadIDX reads an IDX file (the format of MNIST and Fashion-MNIST),
// gzipped or not. The tensor has the file's element type (uint8, int8,
// int16, int32, float32 or float64) and its dims.
func ReadIDX(path string) (*tensor.Tensor, error) {
	r, size, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	return readIDX(r, size, path)
}

func readIDX(r io.Reader, size int64, name string) (*tensor.Tensor, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("data: %s: not an IDX file: too short for the 4-byte header (%v)", name, err)
	}
	if hdr[0] != 0 || hdr[1] != 0 {
		return nil, fmt.Errorf("data: %s: not an IDX file: magic bytes % x, expected 00 00 <type> <rank>", name, hdr[:])
	}
	var dt tensor.DType
	switch hdr[2] {
	case 0x08:
		dt = tensor.Uint8
	case 0x09:
		dt = tensor.Int8
	case 0x0B:
		dt = tensor.Int16
	case 0x0C:
		dt = tensor.Int32
	case 0x0D:
		dt = tensor.Float32
	case 0x0E:
		dt = tensor.Float64
	default:
		return nil, fmt.Errorf("data: %s: IDX element type 0x%02x is unknown: expected 08, 09, 0B, 0C, 0D or 0E", name, hdr[2])
	}
	rank := int(hdr[3])
	if rank == 0 {
		return nil, fmt.Errorf("data: %s: IDX rank 0: expected at least one dimension", name)
	}
	dimBytes := make([]byte, 4*rank)
	if _, err := io.ReadFull(r, dimBytes); err != nil {
		return nil, fmt.Errorf("data: %s: truncated IDX header: %d dims declared", name, rank)
	}
	shape := make([]int, rank)
	for i := range shape {
		d := binary.BigEndian.Uint32(dimBytes[4*i:])
		if d > math.MaxInt32 {
			return nil, fmt.Errorf("data: %s: IDX dim %d is %d: too large", name, i, d)
		}
		shape[i] = int(d)
	}
	count, ok := tensor.MulDims(shape)
	total, ok2 := tensor.MulDims([]int64{count, int64(dt.Size())})
	if !ok || !ok2 {
		return nil, fmt.Errorf("data: %s: IDX header declares %v %v: more than 2^63 bytes of data", name, dt, shape)
	}
	hdrLen := int64(4 + 4*rank)
	if size >= 0 && size != hdrLen+total {
		return nil, fmt.Errorf("data: %s: IDX header declares %v %v (%d bytes of data), but the file holds %d bytes after the header",
			name, dt, shape, total, size-hdrLen)
	}
	// The bytes read and the elements decoded from them (the same slice
	// for uint8).
	perElem := int64(dt.Size())
	if dt != tensor.Uint8 {
		perElem *= 2
	}
	if err := tensor.CheckAlloc(fmt.Sprintf("data: %s: IDX header declares %v %v", name, dt, shape), count, perElem); err != nil {
		return nil, err
	}
	// Read at most one byte more than declared, growing the buffer as data
	// arrives, so a lying header costs no more memory than the file.
	buf, err := io.ReadAll(io.LimitReader(r, total+1))
	if err != nil {
		return nil, fmt.Errorf("data: %s: %v", name, err)
	}
	if int64(len(buf)) < total {
		return nil, fmt.Errorf("data: %s: truncated: the IDX header declares %v %v (%d bytes of data), the file ends after %d",
			name, dt, shape, total, len(buf))
	}
	if int64(len(buf)) > total {
		return nil, fmt.Errorf("data: %s: the IDX header declares %v %v (%d bytes of data), but more data follows", name, dt, shape, total)
	}
	n := int(total) / dt.Size()
	var data any
	switch dt {
	case tensor.Uint8:
		data = buf
	case tensor.Int8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(buf[i])
		}
		data = v
	case tensor.Int16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(binary.BigEndian.Uint16(buf[2*i:]))
		}
		data = v
	case tensor.Int32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(binary.BigEndian.Uint32(buf[4*i:]))
		}
		data = v
	case tensor.Float32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.BigEndian.Uint32(buf[4*i:]))
		}
		data = v
	case tensor.Float64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(binary.BigEndian.Uint64(buf[8*i:]))
		}
		data = v
	}
	return tensor.FromSlice(data, shape...)
}

// LoadIDX reads an image file ([N, H, W], or [N, H, W, C]) and a label file
// ([N]) in IDX format into a dataset in NCHW layout. classes is the class
// count (0: one more than the largest label).
func LoadIDX(images, labels string, classes int) (*Dataset, error) {
	xt, err := ReadIDX(images)
	if err != nil {
		return nil, err
	}
	yt, err := ReadIDX(labels)
	if err != nil {
		return nil, err
	}
	var n, c, h, w int
	layout := NCHW
	switch s := xt.Shape(); len(s) {
	case 3:
		n, c, h, w = s[0], 1, s[1], s[2]
	case 4:
		n, h, w, c = s[0], s[1], s[2], s[3]
		layout = NHWC
	default:
		return nil, fmt.Errorf("data: %s: IDX images have dims %v: expected [N, H, W] or [N, H, W, C]", images, s)
	}
	if yt.Rank() != 1 {
		return nil, fmt.Errorf("data: %s: IDX labels have dims %v: expected [N]", labels, yt.Shape())
	}
	if yt.Len() != n {
		return nil, fmt.Errorf("data: %s has %d labels but %s has %d images", labels, yt.Len(), images, n)
	}
	if !yt.DType().IsInt() {
		return nil, fmt.Errorf("data: %s: IDX labels are %v: expected integers", labels, yt.DType())
	}
	x, err := toFloat32(xt, images)
	if err != nil {
		return nil, err
	}
	y, err := yt.AsInt64s()
	if err != nil {
		return nil, fmt.Errorf("data: %s: %v", labels, err)
	}
	d, err := newChecked(x, y, n, c, h, w, layout, classes, images, labels)
	if err != nil {
		return nil, err
	}
	d.Raw = RawKindOf(xt)
	return d.WithLayout(NCHW), nil
}

// newChecked builds a dataset, inferring the class count when classes is
// 0, and names the label file in a label error.
func newChecked(x []float32, y []int64, n, c, h, w int, layout Layout, classes int, source, labelSource string) (*Dataset, error) {
	if classes == 0 {
		for _, v := range y {
			classes = max(classes, int(min(v, math.MaxInt32))+1)
		}
		classes = max(classes, 1)
		if err := tensor.CheckAlloc(fmt.Sprintf("data: %s: %d classes (one more than the largest label)", labelSource, classes), int64(classes), 24); err != nil {
			return nil, err
		}
	}
	for i, v := range y {
		if v < 0 || v >= int64(classes) {
			return nil, fmt.Errorf("data: %s: label %d of sample %d is outside the %d classes [0, %d)", labelSource, v, i, classes, classes)
		}
	}
	d, err := NewDataset(x, y, n, c, h, w, layout, classes, source)
	if err != nil {
		return nil, err
	}
	if labelSource != source {
		d.LabelSource = labelSource
	}
	return d, nil
}

// toFloat32 converts a numeric tensor's values to float32; the copy is
// checked against the memory limit (name names the source in the error).
func toFloat32(t *tensor.Tensor, name string) ([]float32, error) {
	if d, ok := t.Data().([]float32); ok {
		return d, nil
	}
	if err := tensor.CheckAlloc(fmt.Sprintf("data: %s: %v%v as float32", name, t.DType(), t.Shape()), int64(t.Len()), 4); err != nil {
		return nil, err
	}
	if d, ok := t.Data().([]uint8); ok {
		out := make([]float32, len(d))
		for i, v := range d {
			out[i] = float32(v)
		}
		return out, nil
	}
	out := make([]float32, t.Len())
	for i := range out {
		out[i] = float32(t.AsFloat64(i))
	}
	return out, nil
}

var errNotFound = errors.New("not found")
