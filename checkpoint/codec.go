package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"

	"github.com/gotrain/gotrain/tensor"
)

// The body of a state file and the state of a callback are written with the
// same small binary encoding: unsigned varints for counts and sizes, signed
// varints for integers, IEEE-754 bits for floats, length-prefixed strings, and
// tensors as dtype, rank, dims and their elements in little-endian order.
// Maps are written in sorted key order, so equal values give equal bytes.

// encoder appends to an io.Writer and keeps the first error.
type encoder struct {
	w   io.Writer
	err error
	buf [binary.MaxVarintLen64]byte
}

func (e *encoder) write(p []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(p)
	}
}

func (e *encoder) uvarint(v uint64) { e.write(e.buf[:binary.PutUvarint(e.buf[:], v)]) }
func (e *encoder) varint(v int64)   { e.write(e.buf[:binary.PutVarint(e.buf[:], v)]) }
func (e *encoder) float64(v float64) {
	binary.LittleEndian.PutUint64(e.buf[:8], math.Float64bits(v))
	e.write(e.buf[:8])
}
func (e *encoder) bytes(b []byte) { e.uvarint(uint64(len(b))); e.write(b) }
func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	if e.err == nil {
		_, e.err = io.WriteString(e.w, s)
	}
}
func (e *encoder) bool(b bool) {
	if b {
		e.uvarint(1)
	} else {
		e.uvarint(0)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (e *encoder) bytesMap(m map[string][]byte) {
	e.uvarint(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.string(k)
		e.bytes(m[k])
	}
}

func (e *encoder) floatMap(m map[string]float64) {
	e.uvarint(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.string(k)
		e.float64(m[k])
	}
}

func (e *encoder) tensorMap(m map[string]*tensor.Tensor) {
	e.uvarint(uint64(len(m)))
	for _, k := range sortedKeys(m) {
		e.string(k)
		if m[k] == nil {
			e.fail(fmt.Errorf("tensor %q is nil", k))
			return
		}
		e.tensor(k, m[k])
	}
}

func (e *encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// chunk bounds the scratch buffer used to convert elements to bytes.
const chunk = 1 << 16

func (e *encoder) tensor(name string, t *tensor.Tensor) {
	dt := t.DType()
	if !dt.Supported() {
		e.fail(fmt.Errorf("tensor %q has unsupported dtype %v", name, dt))
		return
	}
	e.uvarint(uint64(dt))
	e.uvarint(uint64(t.Rank()))
	for _, d := range t.Shape() {
		e.uvarint(uint64(d))
	}
	if e.err != nil {
		return
	}
	if dt == tensor.String {
		d, _ := t.Data().([]string)
		for _, s := range d {
			e.string(s)
		}
		return
	}
	if d, ok := t.Data().([]bool); ok {
		b := make([]byte, len(d))
		for i, v := range d {
			if v {
				b[i] = 1
			}
		}
		e.write(b)
		return
	}
	size := dt.Size()
	n := t.Len()
	scratch := make([]byte, min(n, chunk)*size)
	for lo := 0; lo < n && e.err == nil; lo += chunk {
		hi := min(lo+chunk, n)
		b := scratch[:(hi-lo)*size]
		putElems(b, t.Data(), lo, hi)
		e.write(b)
	}
}

// putElems writes elements [lo,hi) of a numeric slice into b, little-endian.
func putElems(b []byte, data any, lo, hi int) {
	le := binary.LittleEndian
	switch d := data.(type) {
	case []float32:
		for i, v := range d[lo:hi] {
			le.PutUint32(b[4*i:], math.Float32bits(v))
		}
	case []float64:
		for i, v := range d[lo:hi] {
			le.PutUint64(b[8*i:], math.Float64bits(v))
		}
	case []int64:
		for i, v := range d[lo:hi] {
			le.PutUint64(b[8*i:], uint64(v))
		}
	case []uint64:
		for i, v := range d[lo:hi] {
			le.PutUint64(b[8*i:], v)
		}
	case []int32:
		for i, v := range d[lo:hi] {
			le.PutUint32(b[4*i:], uint32(v))
		}
	case []uint32:
		for i, v := range d[lo:hi] {
			le.PutUint32(b[4*i:], v)
		}
	case []int16:
		for i, v := range d[lo:hi] {
			le.PutUint16(b[2*i:], uint16(v))
		}
	case []uint16:
		for i, v := range d[lo:hi] {
			le.PutUint16(b[2*i:], v)
		}
	case []int8:
		for i, v := range d[lo:hi] {
			b[i] = byte(v)
		}
	case []uint8:
		copy(b, d[lo:hi])
	}
}

// errMalformed reports a body that does not decode; callers wrap it as
// ErrCorrupt with the file name.
var errMalformed = errors.New("malformed data")

// decoder reads from a byte slice; every length is checked against what is
// left, so a damaged count can never make it allocate more than the input.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
	}
}

// failWith records err, keeping it in the chain (a *tensor.LimitError).
func (d *decoder) failWith(err error) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %w", errMalformed, err)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad unsigned integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// length reads a count of items of at least minSize bytes each.
func (d *decoder) length(minSize int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)/max(minSize, 1)) {
		d.fail("count %d exceeds the %d bytes left", v, len(d.b))
		return 0
	}
	return int(v)
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.fail("needs %d bytes, %d left", n, len(d.b))
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) float64() float64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(p))
}

func (d *decoder) bytes() []byte {
	p := d.take(d.length(1))
	if p == nil {
		return nil
	}
	return append([]byte{}, p...)
}

func (d *decoder) string() string { return string(d.take(d.length(1))) }

func (d *decoder) bool() bool { return d.uvarint() != 0 }

// maxMapHint caps the size hint of a decoded map: a count is checked only
// against the bytes left, and a map's entries cost more than their bytes.
const maxMapHint = 1024

func (d *decoder) bytesMap() map[string][]byte {
	n := d.length(2)
	m := make(map[string][]byte, min(n, maxMapHint))
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		m[k] = d.bytes()
	}
	return m
}

func (d *decoder) floatMap() map[string]float64 {
	n := d.length(9)
	m := make(map[string]float64, min(n, maxMapHint))
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		m[k] = d.float64()
	}
	return m
}

func (d *decoder) tensorMap() map[string]*tensor.Tensor {
	n := d.length(3)
	m := make(map[string]*tensor.Tensor, min(n, maxMapHint))
	for i := 0; i < n && d.err == nil; i++ {
		k := d.string()
		m[k] = d.tensor(k)
	}
	return m
}

func (d *decoder) tensor(name string) *tensor.Tensor {
	dt := tensor.DType(d.uvarint())
	rank := d.length(1)
	if d.err != nil {
		return nil
	}
	if !dt.Supported() {
		d.fail("tensor %q has unknown dtype %d", name, int32(dt))
		return nil
	}
	shape := make([]int, rank)
	n := uint64(1)
	for i := range shape {
		v := d.uvarint()
		if v > 1<<40 {
			d.fail("tensor %q has dim %d", name, v)
			return nil
		}
		shape[i] = int(v)
		if v != 0 && n > (1<<40)/v {
			d.fail("tensor %q shape is too large", name)
			return nil
		}
		n *= v
	}
	if d.err != nil {
		return nil
	}
	if dt == tensor.String {
		if n > uint64(len(d.b)) {
			d.fail("tensor %q of %d strings exceeds the %d bytes left", name, n, len(d.b))
			return nil
		}
		if err := tensor.CheckShape(fmt.Sprintf("tensor %q", name), dt, shape); err != nil {
			d.failWith(err)
			return nil
		}
		s := make([]string, n)
		for i := range s {
			s[i] = d.string()
		}
		t, _ := tensor.FromSlice(s, shape...)
		return t
	}
	size := uint64(dt.Size())
	if n*size > uint64(len(d.b)) {
		d.fail("tensor %q %v%v needs %d bytes, %d left", name, dt, shape, n*size, len(d.b))
		return nil
	}
	p := d.take(int(n * size))
	t, err := tensor.NewChecked(dt, shape)
	if err != nil {
		d.failWith(fmt.Errorf("tensor %q: %w", name, err))
		return nil
	}
	getElems(t.Data(), p)
	return t
}

// getElems fills a numeric (or bool) slice from little-endian bytes.
func getElems(data any, b []byte) {
	le := binary.LittleEndian
	switch d := data.(type) {
	case []float32:
		for i := range d {
			d[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
	case []float64:
		for i := range d {
			d[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case []int64:
		for i := range d {
			d[i] = int64(le.Uint64(b[8*i:]))
		}
	case []uint64:
		for i := range d {
			d[i] = le.Uint64(b[8*i:])
		}
	case []int32:
		for i := range d {
			d[i] = int32(le.Uint32(b[4*i:]))
		}
	case []uint32:
		for i := range d {
			d[i] = le.Uint32(b[4*i:])
		}
	case []int16:
		for i := range d {
			d[i] = int16(le.Uint16(b[2*i:]))
		}
	case []uint16:
		for i := range d {
			d[i] = le.Uint16(b[2*i:])
		}
	case []int8:
		for i := range d {
			d[i] = int8(b[i])
		}
	case []uint8:
		copy(d, b)
	case []bool:
		for i := range d {
			d[i] = b[i] != 0
		}
	}
}

// bytesBuffer is an io.Writer that appends to a byte slice.
type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}
