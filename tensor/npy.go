package tensor

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

// NPY files (NumPy's format, version 1.0, 2.0 or 3.0) are a magic string, a
// version, a header that is a Python dict literal
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
//
// padded with spaces to a multiple of 64 bytes, then the raw elements. Read
// accepts little- and big-endian numeric and bool dtypes and Fortran order
// (transposed into row-major); Write produces version 1.0 (2.0 when the
// header needs it), little-endian, row-major, as numpy.save does.

const npyMagic = "\x93NUMPY"

// maxNPYHeader bounds the header a reader accepts; real headers are a few
// dozen bytes, and the bound keeps a corrupt length from exhausting memory.
const maxNPYHeader = 1 << 20

var npyKinds = map[string]DType{
	"f2": Float16, "f4": Float32, "f8": Float64,
	"i1": Int8, "i2": Int16, "i4": Int32, "i8": Int64,
	"u1": Uint8, "u2": Uint16, "u4": Uint32, "u8": Uint64,
	"b1": Bool,
}

// ReadNPY reads one .npy array. The element count its header declares is
// checked against the memory limit before the data is read, and the buffer
// grows only as data arrives.
func ReadNPY(r io.Reader) (*Tensor, error) {
	t, err := readNPY(r, -1)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return t, nil
}

// readNPY reads an array from r, which holds size bytes in all (-1:
// unknown). A known size is checked against what the header declares before
// anything is allocated.
func readNPY(r io.Reader, size int64) (*Tensor, error) {
	var pre [8]byte
	if n, err := io.ReadFull(r, pre[:]); err != nil {
		if n == 0 && errors.Is(err, io.EOF) {
			return nil, errors.New("empty input; expected the NPY magic \\x93NUMPY")
		}
		return nil, fmt.Errorf("truncated preamble: %d of 8 bytes", n)
	}
	if string(pre[:6]) != npyMagic {
		return nil, fmt.Errorf("not an NPY file: magic %q, expected %q", pre[:6], npyMagic)
	}
	major, minor := pre[6], pre[7]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, errors.New("truncated header length")
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, errors.New("truncated header length")
		}
		h := binary.LittleEndian.Uint32(b[:])
		if h > maxNPYHeader {
			return nil, fmt.Errorf("header length %d exceeds %d bytes", h, maxNPYHeader)
		}
		hlen = int(h)
	default:
		return nil, fmt.Errorf("unsupported NPY version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	hdr := make([]byte, hlen)
	if n, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("truncated header: %d of %d bytes", n, hlen)
	}
	descr, fortran, shape, err := parseNPYHeader(string(hdr))
	if err != nil {
		return nil, fmt.Errorf("header %q: %w", strings.TrimSpace(string(hdr)), err)
	}
	dt, order, err := npyDType(descr)
	if err != nil {
		return nil, err
	}
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	n, err := elemCount(dims)
	if err != nil {
		return nil, err
	}
	want := n * dt.Size()
	if size >= 0 {
		pre := int64(len(npyMagic)+2+len(hdr)) + 2
		if major != 1 {
			pre += 2
		}
		if have := size - pre; have < int64(want) {
			return nil, fmt.Errorf("truncated data: the header declares %s%v (%d bytes of data), but only %d bytes follow it", descr, shape, want, max(have, 0))
		}
	}
	// The raw bytes and the elements decoded from them are both held.
	if err := CheckAlloc(fmt.Sprintf("array %s%v", descr, shape), int64(want), 2); err != nil {
		return nil, err
	}
	if fortran && len(shape) > 1 {
		// Reordering holds a permutation and a copy besides.
		if err := CheckAlloc(fmt.Sprintf("Fortran-order array %s%v", descr, shape), int64(n), 8+int64(dt.Size())); err != nil {
			return nil, err
		}
	}
	var raw []byte
	if size >= 0 {
		raw = make([]byte, want)
		if k, err := io.ReadFull(r, raw); err != nil {
			return nil, fmt.Errorf("truncated data: %s%v needs %d bytes, got %d", descr, shape, want, k)
		}
	} else {
		// ReadAll over a limit grows the buffer as data arrives, so a
		// header that claims more than the input holds costs no more than
		// the input.
		raw, err = io.ReadAll(io.LimitReader(r, int64(want)))
		if err != nil {
			return nil, err
		}
		if len(raw) != want {
			return nil, fmt.Errorf("truncated data: %s%v needs %d bytes, got %d", descr, shape, want, len(raw))
		}
	}
	data := decodeBytes(dt, raw, n, order)
	if fortran && len(shape) > 1 {
		data = fortranToC(data, shape)
	}
	return &Tensor{dtype: dt, shape: shape, data: data}, nil
}

func npyDType(descr string) (DType, binary.ByteOrder, error) {
	if len(descr) != 3 {
		return 0, nil, fmt.Errorf("unsupported dtype %q (want a numeric or bool dtype such as '<f4')", descr)
	}
	dt, ok := npyKinds[descr[1:]]
	if !ok {
		return 0, nil, fmt.Errorf("unsupported dtype %q (want f2/f4/f8, i1-i8, u1-u8 or b1)", descr)
	}
	switch descr[0] {
	case '<', '=': // numpy writes '=' for no platform; native means little-endian here
		return dt, binary.LittleEndian, nil
	case '>':
		return dt, binary.BigEndian, nil
	case '|':
		if dt.Size() == 1 {
			return dt, binary.LittleEndian, nil
		}
	}
	return 0, nil, fmt.Errorf("unsupported byte order in dtype %q", descr)
}

// fortranToC reorders column-major elements into row-major order.
func fortranToC(data any, shape []int) any {
	n := NumElements(shape)
	// perm[c] is the column-major position of the element at row-major position c.
	perm := make([]int, n)
	idx := make([]int, len(shape))
	fstride := make([]int, len(shape))
	acc := 1
	for i := range shape {
		fstride[i] = acc
		acc *= shape[i]
	}
	for c := 0; c < n; c++ {
		f := 0
		for i, v := range idx {
			f += v * fstride[i]
		}
		perm[c] = f
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	switch d := data.(type) {
	case []float32:
		return permute(d, perm)
	case []float64:
		return permute(d, perm)
	case []int64:
		return permute(d, perm)
	case []uint64:
		return permute(d, perm)
	case []int32:
		return permute(d, perm)
	case []uint32:
		return permute(d, perm)
	case []int16:
		return permute(d, perm)
	case []uint16:
		return permute(d, perm)
	case []int8:
		return permute(d, perm)
	case []uint8:
		return permute(d, perm)
	case []bool:
		return permute(d, perm)
	}
	return data
}

func permute[T any](src []T, perm []int) []T {
	out := make([]T, len(src))
	for c, f := range perm {
		out[c] = src[f]
	}
	return out
}

// parseNPYHeader reads the dict literal of an NPY header. It accepts the
// three keys in any order, single or double quotes, and Python's tuple
// syntax for the shape.
func parseNPYHeader(h string) (descr string, fortran bool, shape []int, err error) {
	p := &pyLexer{s: strings.TrimRight(h, " \n\x00")}
	if !p.eat('{') {
		return "", false, nil, errors.New("expected a dict literal")
	}
	seen := map[string]bool{}
	for {
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok || !p.eat(':') {
			return "", false, nil, fmt.Errorf("expected 'key': at offset %d", p.i)
		}
		switch key {
		case "descr":
			if descr, ok = p.str(); !ok {
				return "", false, nil, errors.New("descr is not a string (structured dtypes are not supported)")
			}
		case "fortran_order":
			switch {
			case p.word("True"):
				fortran = true
			case p.word("False"):
				fortran = false
			default:
				return "", false, nil, errors.New("fortran_order is not True or False")
			}
		case "shape":
			if shape, ok = p.tuple(); !ok {
				return "", false, nil, errors.New("shape is not a tuple of non-negative ints")
			}
		default:
			return "", false, nil, fmt.Errorf("unexpected key %q", key)
		}
		seen[key] = true
		if !p.eat(',') {
			if !p.eat('}') {
				return "", false, nil, fmt.Errorf("expected ',' or '}' at offset %d", p.i)
			}
			break
		}
	}
	p.skip()
	if p.i != len(p.s) {
		return "", false, nil, fmt.Errorf("trailing text at offset %d", p.i)
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return "", false, nil, fmt.Errorf("missing key %q", k)
		}
	}
	return descr, fortran, shape, nil
}

type pyLexer struct {
	s string
	i int
}

func (p *pyLexer) skip() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *pyLexer) eat(c byte) bool {
	p.skip()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *pyLexer) word(w string) bool {
	p.skip()
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

func (p *pyLexer) str() (string, bool) {
	p.skip()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	p.i += end + 2
	return v, true
}

func (p *pyLexer) tuple() ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	shape := []int{}
	for {
		if p.eat(')') {
			return shape, true
		}
		p.skip()
		j := p.i
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		if j == p.i {
			return nil, false
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil || v > 1<<40 {
			return nil, false
		}
		// Python writes 3L for longs in old files.
		if j < len(p.s) && p.s[j] == 'L' {
			j++
		}
		p.i = j
		shape = append(shape, int(v))
		if !p.eat(',') {
			if p.eat(')') {
				return shape, true
			}
			return nil, false
		}
	}
}

// npyDescr is the dtype string numpy uses for t, little-endian.
func npyDescr(dt DType) (string, error) {
	for k, v := range npyKinds {
		if v == dt {
			if dt.Size() == 1 {
				return "|" + k, nil
			}
			return "<" + k, nil
		}
	}
	return "", fmt.Errorf("dtype %v has no NPY equivalent", dt)
}

// WriteNPY writes t as a little-endian, row-major .npy array.
func WriteNPY(w io.Writer, t *Tensor) error {
	descr, err := npyDescr(t.dtype)
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	var sb strings.Builder
	sb.WriteString("(")
	for i, d := range t.shape {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%d,", d)
	}
	shape := sb.String()
	if len(t.shape) > 1 {
		shape = shape[:len(shape)-1] // numpy writes (3, 4) but (3,)
	}
	shape += ")"
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	// Pad so that the data starts on a 64-byte boundary and the header ends
	// with a newline; version 2.0 only when the header outgrows 1.0's
	// 16-bit length.
	header := func(lenBytes int) string {
		total := len(npyMagic) + 2 + lenBytes + len(dict) + 1
		return dict + strings.Repeat(" ", (64-total%64)%64) + "\n"
	}
	major, hdr := byte(1), header(2)
	if len(hdr) > 65535 {
		major, hdr = 2, header(4)
	}
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(hdr)))
	}
	b.WriteString(hdr)
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if _, err := w.Write(EncodeBytes(t, binary.LittleEndian)); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// ReadNPYFile reads a .npy file.
func ReadNPYFile(path string) (*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := int64(-1)
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	t, err := readNPY(bufio.NewReaderSize(f, 1<<16), size)
	if err != nil {
		return nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return t, nil
}

// WriteNPYFile writes t to path atomically: a failed write leaves any
// existing file unchanged.
func WriteNPYFile(path string, t *Tensor) error {
	err := atomicfile.Write(path, func(w io.Writer) error { return WriteNPY(w, t) })
	if err != nil {
		return fmt.Errorf("npy %s: %w", path, err)
	}
	return nil
}

// ReadNPZ reads a .npz archive (a zip of .npy files, stored or deflated, as
// numpy.savez and numpy.savez_compressed write) into a map keyed by entry
// name without the ".npy" suffix.
func ReadNPZ(path string) (map[string]*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npz %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("npz %s: %w", path, err)
	}
	return readNPZ(f, st.Size(), path)
}

// readNPZ reads an archive of size bytes from r; path names it in errors.
func readNPZ(r io.ReaderAt, size int64, path string) (map[string]*Tensor, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("npz %s: %w", path, err)
	}
	out := map[string]*Tensor{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		key := strings.TrimSuffix(f.Name, ".npy")
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("npz %s: entry %q appears twice", path, f.Name)
		}
		// The declared uncompressed size is what the member may hold; the
		// inflated bytes are read through a limit of that size (and
		// archive/zip also fails a member that inflates past it).
		if f.UncompressedSize64 > math.MaxInt64 {
			return nil, fmt.Errorf("npz %s: entry %q declares %d bytes uncompressed", path, f.Name, f.UncompressedSize64)
		}
		declared := int64(f.UncompressedSize64)
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("npz %s: entry %q: %w", path, f.Name, err)
		}
		t, err := readNPY(bufio.NewReader(io.LimitReader(rc, declared)), declared)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("npz %s: entry %q: %w", path, f.Name, err)
		}
		out[key] = t
	}
	return out, nil
}

// WriteNPZ writes tensors as a .npz archive (stored, as numpy.savez does),
// entries in sorted key order, atomically.
func WriteNPZ(path string, tensors map[string]*Tensor) error {
	keys := make([]string, 0, len(tensors))
	for k := range tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	err := atomicfile.Write(path, func(w io.Writer) error {
		zw := zip.NewWriter(w)
		for _, k := range keys {
			fw, err := zw.CreateHeader(&zip.FileHeader{Name: k + ".npy", Method: zip.Store})
			if err != nil {
				return err
			}
			if err := WriteNPY(fw, tensors[k]); err != nil {
				return fmt.Errorf("entry %q: %w", k, err)
			}
		}
		return zw.Close()
	})
	if err != nil {
		return fmt.Errorf("npz %s: %w", path, err)
	}
	return nil
}
