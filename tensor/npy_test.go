package tensor

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/internal/testenv"
)

// The NPY tests compare against files written by numpy itself where
// /usr/bin/python3 with numpy exists. Both sides fill arrays from the same
// closed-form sequences (pySequences below and expected here), so a
// reader that misplaces bytes, order or sign cannot agree with numpy by
// accident.

const python = testenv.DebianPython

// needNumpy skips the test (fails it under CI) when python3 with numpy is
// not installed.
func needNumpy(t *testing.T) {
	t.Helper()
	testenv.Python(t, "numpy")
}

// runPython runs a script with args and fails the test on error.
func runPython(t *testing.T, script string, args ...string) string {
	t.Helper()
	out, err := exec.Command(python, append([]string{"-c", script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

// pySequences defines, in Python, the values that expected computes in Go.
const pySequences = `
import numpy as np
def values(kind, n):
    i = np.arange(n)
    if kind[0] == 'f':
        return ((i * 7) % 23 - 11) + 0.25 * i
    if kind[0] == 'b':
        return i % 3 == 0
    size = int(kind[1])
    mult = 2 ** (8 * size - 8) + (1 if size > 1 else 0)
    v = [((k * 37) % 251) * mult for k in range(n)] if kind[0] == 'u' else [((k * 37) % 251 - 125) * mult for k in range(n)]
    return np.array(v, dtype=object)
KINDS = ['f2', 'f4', 'f8', 'i1', 'i2', 'i4', 'i8', 'u1', 'u2', 'u4', 'u8', 'b1']
`

var npyKindList = []string{"f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"}

// expected builds the tensor that pySequences' values(kind, n) describes.
func expected(kind string, shape ...int) *Tensor {
	dt := npyKinds[kind]
	x := New(dt, shape...)
	n := x.Len()
	size := dt.Size()
	mult := int64(1)<<(8*size-8) + 0
	if size > 1 {
		mult++
	}
	for i := range n {
		f := float64((i*7)%23-11) + 0.25*float64(i)
		s := (int64(i*37)%251 - 125) * mult
		u := uint64(int64(i*37)%251) * uint64(mult)
		switch d := x.data.(type) {
		case []float32:
			d[i] = float32(f)
		case []float64:
			d[i] = f
		case []uint16:
			if dt == Float16 {
				d[i] = Float32ToHalf(float32(f))
			} else {
				d[i] = uint16(u)
			}
		case []int8:
			d[i] = int8(s)
		case []int16:
			d[i] = int16(s)
		case []int32:
			d[i] = int32(s)
		case []int64:
			d[i] = s
		case []uint8:
			d[i] = uint8(u)
		case []uint32:
			d[i] = uint32(u)
		case []uint64:
			d[i] = u
		case []bool:
			d[i] = i%3 == 0
		}
	}
	return x
}

// sameTensor compares dtype, shape and element bits.
func sameTensor(a, b *Tensor) bool {
	if a.DType() != b.DType() || !SameShape(a.Shape(), b.Shape()) {
		return false
	}
	if a.DType() == String {
		return reflect.DeepEqual(a.Data(), b.Data())
	}
	return bytes.Equal(EncodeBytes(a, binary.LittleEndian), EncodeBytes(b, binary.LittleEndian))
}

func TestReadNPYFromNumpy(t *testing.T) {
	needNumpy(t)
	dir := t.TempDir()
	runPython(t, pySequences+`
import sys, os
d = sys.argv[1]
for k in KINDS:
    base = values(k, 24).astype(np.dtype('<' + k) if k[1] != '1' else k).reshape(2, 3, 4)
    orders = ['<', '>'] if k[1] != '1' else ['|']
    for o in orders:
        a = base.astype(np.dtype(o + k))
        np.save(os.path.join(d, k + o.replace('<', 'le').replace('>', 'be').replace('|', 'na') + '.npy'), a)
    np.save(os.path.join(d, k + '_fortran.npy'), np.asfortranarray(base))
    for v in [(2, 0), (3, 0)]:
        with open(os.path.join(d, k + '_v%d.npy' % v[0]), 'wb') as f:
            np.lib.format.write_array(f, base, version=v)
np.save(os.path.join(d, 'scalar.npy'), np.float32(2.5))
np.save(os.path.join(d, 'empty.npy'), np.zeros((0, 3), dtype='<i8'))
np.save(os.path.join(d, 'vector.npy'), values('f8', 5))
np.savez(os.path.join(d, 'stored.npz'), a=values('f4', 6).astype('<f4').reshape(2, 3), b=values('i8', 4).astype('<i8'))
np.savez_compressed(os.path.join(d, 'deflated.npz'), a=values('f4', 6).astype('<f4').reshape(2, 3), b=values('i8', 4).astype('<i8'))
`, dir)

	type tc struct {
		file string
		want *Tensor
	}
	var cases []tc
	for _, k := range npyKindList {
		want := expected(k, 2, 3, 4)
		if k[1] == '1' {
			cases = append(cases, tc{k + "na.npy", want})
		} else {
			cases = append(cases, tc{k + "le.npy", want}, tc{k + "be.npy", want})
		}
		cases = append(cases, tc{k + "_fortran.npy", want}, tc{k + "_v2.npy", want}, tc{k + "_v3.npy", want})
	}
	cases = append(cases,
		tc{"scalar.npy", Scalar(float32(2.5))},
		tc{"empty.npy", New(Int64, 0, 3)},
		tc{"vector.npy", expected("f8", 5)},
	)
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := ReadNPYFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if !sameTensor(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	for _, npz := range []string{"stored.npz", "deflated.npz"} {
		t.Run(npz, func(t *testing.T) {
			m, err := ReadNPZ(filepath.Join(dir, npz))
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]*Tensor{"a": expected("f4", 2, 3), "b": expected("i8", 4)}
			if len(m) != len(want) {
				t.Fatalf("got keys %v, want a and b", reflect.ValueOf(m).MapKeys())
			}
			for k, w := range want {
				if m[k] == nil || !sameTensor(m[k], w) {
					t.Errorf("%s: got %v, want %v", k, m[k], w)
				}
			}
		})
	}
}

// TestWriteNPYReadByNumpy writes every dtype from Go and checks, in numpy,
// dtype, shape and values.
func TestWriteNPYReadByNumpy(t *testing.T) {
	needNumpy(t)
	dir := t.TempDir()
	for _, k := range npyKindList {
		if err := WriteNPYFile(filepath.Join(dir, k+".npy"), expected(k, 2, 3, 4)); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteNPYFile(filepath.Join(dir, "scalar.npy"), Scalar(int64(-7))); err != nil {
		t.Fatal(err)
	}
	if err := WriteNPZ(filepath.Join(dir, "both.npz"), map[string]*Tensor{"x": expected("f4", 3), "y": expected("u8", 2, 2)}); err != nil {
		t.Fatal(err)
	}
	out := runPython(t, pySequences+`
import sys, os
d = sys.argv[1]
for k in KINDS:
    a = np.load(os.path.join(d, k + '.npy'))
    want = values(k, 24).astype(np.dtype(k)).reshape(2, 3, 4)
    assert a.dtype == np.dtype(k) and a.shape == (2, 3, 4), (k, a.dtype, a.shape)
    assert (a == want).all(), (k, a, want)
s = np.load(os.path.join(d, 'scalar.npy'))
assert s.shape == () and s.dtype == np.int64 and s == -7
z = np.load(os.path.join(d, 'both.npz'))
assert sorted(z.files) == ['x', 'y']
assert (z['x'] == values('f4', 3).astype('f4')).all() and (z['y'] == values('u8', 4).astype('u8').reshape(2, 2)).all()
print('numpy agrees')
`, dir)
	if !strings.Contains(out, "numpy agrees") {
		t.Fatalf("python output: %s", out)
	}
}

func TestNPYRoundTrip(t *testing.T) {
	var cases []*Tensor
	for _, k := range npyKindList {
		cases = append(cases, expected(k, 2, 3, 4), expected(k), expected(k, 0, 5), expected(k, 7))
	}
	nan := New(Float32, 3)
	copy(nan.Float32s(), []float32{float32(math.NaN()), float32(math.Inf(-1)), float32(math.Copysign(0, -1))})
	cases = append(cases, nan)
	for _, want := range cases {
		var b bytes.Buffer
		if err := WriteNPY(&b, want); err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		if nl := bytes.IndexByte(b.Bytes(), '\n'); nl < 0 || (nl+1)%64 != 0 {
			t.Errorf("%v: header ends at byte %d, not on a 64-byte boundary", want, nl+1)
		}
		got, err := ReadNPY(&b)
		if err != nil {
			t.Fatalf("%v: %v", want, err)
		}
		if !sameTensor(got, want) {
			t.Errorf("round trip: got %v, want %v", got, want)
		}
	}
	for _, bad := range []*Tensor{New(BFloat16, 2), MustFromSlice([]string{"a"}, 1)} {
		if err := WriteNPY(&bytes.Buffer{}, bad); err == nil {
			t.Errorf("WriteNPY(%v) succeeded; numpy has no such dtype", bad)
		}
	}
}

// npyBytes builds an NPY stream by hand, for malformed inputs.
func npyBytes(major byte, header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString(npyMagic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

func TestReadNPYErrors(t *testing.T) {
	hdr := "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n"
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty input"},
		{"bad magic", []byte("PK\x03\x04junkjunk"), "not an NPY file"},
		{"short preamble", []byte("\x93NUM"), "truncated preamble"},
		{"version 4", npyBytes(4, hdr, nil), "unsupported NPY version 4.0"},
		{"short header", npyBytes(1, hdr, nil)[:30], "truncated header"},
		{"truncated data", npyBytes(1, hdr, make([]byte, 20)), "needs 24 bytes, got 20"},
		{"structured dtype", npyBytes(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", nil), "structured"},
		{"string dtype", npyBytes(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", nil), "unsupported dtype"},
		{"object dtype", npyBytes(1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", nil), "unsupported dtype"},
		{"missing shape", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, }", nil), `missing key "shape"`},
		{"negative dim", npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", nil), "shape is not a tuple"},
		{"huge shape", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", nil), "too many elements"},
		{"short v2 header", append([]byte(npyMagic+"\x02\x00\x64\x00\x00\x00"), "{'de"...), "truncated header: 4 of 100"},
		{"wide bool order", npyBytes(1, "{'descr': '|i4', 'fortran_order': False, 'shape': (1,), }", make([]byte, 4)), "byte order"},
		{"not a dict", npyBytes(1, "descr", nil), "dict literal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadNPY(bytes.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
	// The huge-length v2 header is refused before any allocation.
	big := append([]byte(npyMagic), 2, 0, 0xff, 0xff, 0xff, 0x7f)
	if _, err := ReadNPY(bytes.NewReader(big)); err == nil || !strings.Contains(err.Error(), "header length") {
		t.Errorf("huge header length: got %v", err)
	}
}

func TestNPYFileErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cut.npy")
	var b bytes.Buffer
	if err := WriteNPY(&b, expected("f4", 10)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes()[:b.Len()-3], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadNPYFile(path)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "truncated data") {
		t.Errorf("ReadNPYFile: %v; want a truncation error naming %s", err, path)
	}
	if _, err := ReadNPZ(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("ReadNPZ of a non-zip: %v; want an error naming %s", err, path)
	}
	// A write into a missing folder fails and names the file.
	missing := filepath.Join(dir, "no", "x.npy")
	if err := WriteNPYFile(missing, expected("f4", 2)); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("WriteNPYFile: %v; want an error naming %s", err, missing)
	}
	// A failed write (unsupported dtype) leaves the existing file as it was
	// and no temporary file behind.
	good := filepath.Join(dir, "good.npy")
	if err := WriteNPYFile(good, expected("i4", 3)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(good)
	if err := WriteNPYFile(good, New(BFloat16, 2)); err == nil {
		t.Fatal("writing bfloat16 succeeded")
	}
	after, _ := os.ReadFile(good)
	if !bytes.Equal(before, after) {
		t.Error("a failed write changed the existing file")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestFortranOrder checks the transposition on a hand-made 2x3 array.
func TestFortranOrder(t *testing.T) {
	data := make([]byte, 0, 24)
	for _, v := range []float32{1, 4, 2, 5, 3, 6} { // column-major [[1 2 3] [4 5 6]]
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
	}
	in := npyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data)
	got, err := ReadNPY(bytes.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if !sameTensor(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func FuzzReadNPY(f *testing.F) {
	for _, k := range npyKindList {
		var b bytes.Buffer
		WriteNPY(&b, expected(k, 2, 3))
		f.Add(b.Bytes())
	}
	f.Add(npyBytes(1, "{'descr': '>i8', 'fortran_order': True, 'shape': (2, 2), }", make([]byte, 32)))
	f.Add(npyBytes(3, "{'descr': '<f2', 'fortran_order': False, 'shape': (), }", make([]byte, 2)))
	// Headers declaring far more than the input holds or the limit allows.
	f.Add(npyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", make([]byte, 16)))
	f.Add(npyBytes(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (65536, 65536), }", make([]byte, 16)))
	defer SetMemoryLimit(SetMemoryLimit(64 << 20))
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := ReadNPY(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever reads must write and read back the same.
		var b bytes.Buffer
		if err := WriteNPY(&b, x); err != nil {
			t.Fatalf("read %v but cannot write it: %v", x, err)
		}
		y, err := ReadNPY(&b)
		if err != nil || !sameTensor(x, y) {
			t.Fatalf("rewrite of %v: %v, %v", x, y, err)
		}
	})
}
