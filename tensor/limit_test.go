package tensor_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/tensor"
	"google.golang.org/protobuf/proto"
)

func TestParseBytes(t *testing.T) {
	cases := []struct {
		in   string
		want int64 // 0: an error
	}{
		{"8GiB", 8 << 30},
		{"8 gib", 8 << 30},
		{"8Gi", 8 << 30},
		{"1.5GiB", 3 << 29},
		{"512MiB", 512 << 20},
		{"8GB", 8e9},
		{"8G", 8e9},
		{"2000000000", 2e9},
		{"1e9", 1e9},
		{"", 0},
		{"0", 0},
		{"-1GiB", 0},
		{"0.5", 0},
		{"lots", 0},
		{"8 gigs", 0},
		{"1e30", 0},
	}
	for _, c := range cases {
		got, err := tensor.ParseBytes(c.in)
		switch {
		case c.want == 0 && err == nil:
			t.Errorf("ParseBytes(%q) = %d, want an error", c.in, got)
		case c.want == 0 && !strings.Contains(err.Error(), "8GiB"):
			t.Errorf("ParseBytes(%q): error %q does not show an example", c.in, err)
		case c.want != 0 && (err != nil || got != c.want):
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

func TestMemoryLimitSettings(t *testing.T) {
	t.Cleanup(func() { tensor.SetMemoryLimit(0) }) // runs after the variable is restored
	t.Setenv(tensor.MemoryLimitEnv, "3GiB")
	tensor.SetMemoryLimit(0)
	if got := tensor.MemoryLimit(); got != 3<<30 {
		t.Errorf("with %s=3GiB the limit is %d", tensor.MemoryLimitEnv, got)
	}
	if prev := tensor.SetMemoryLimit(1 << 20); prev != 3<<30 {
		t.Errorf("SetMemoryLimit returned %d, want the previous 3GiB", prev)
	}
	if got := tensor.MemoryLimit(); got != 1<<20 {
		t.Errorf("after SetMemoryLimit(1MiB) the limit is %d", got)
	}
	if err := tensor.SetMemoryLimitString("2MiB"); err != nil || tensor.MemoryLimit() != 2<<20 {
		t.Errorf("SetMemoryLimitString(2MiB): %v, limit %d", err, tensor.MemoryLimit())
	}
	if err := tensor.SetMemoryLimitString("2 megs"); err == nil || tensor.MemoryLimit() != 2<<20 {
		t.Errorf("SetMemoryLimitString(2 megs): %v, limit %d; want an error and the limit unchanged", err, tensor.MemoryLimit())
	}

	// A variable that does not parse makes every check fail, naming it,
	// rather than quietly using a limit nobody chose.
	t.Setenv(tensor.MemoryLimitEnv, "lots")
	tensor.SetMemoryLimit(0)
	_, err := tensor.NewChecked(tensor.Float32, []int{2})
	if err == nil || !strings.Contains(err.Error(), tensor.MemoryLimitEnv) || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("with %s=lots: %v; want an error naming the variable and its value", tensor.MemoryLimitEnv, err)
	}
	tensor.SetMemoryLimit(1 << 20) // an explicit limit overrides the variable
	if _, err := tensor.NewChecked(tensor.Float32, []int{2}); err != nil {
		t.Errorf("explicit limit with a bad variable: %v", err)
	}
}

func TestMemoryLimitDefault(t *testing.T) {
	if _, set := os.LookupEnv(tensor.MemoryLimitEnv); set {
		t.Skipf("%s is set in this environment", tensor.MemoryLimitEnv)
	}
	tensor.SetMemoryLimit(0)
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skip("no /proc/meminfo")
	}
	var kb int64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "MemTotal:") {
			fmt.Sscan(strings.TrimPrefix(l, "MemTotal:"), &kb)
		}
	}
	got := tensor.MemoryLimit()
	// Half of MemTotal, or less under a cgroup limit.
	if got <= 0 || got > kb*1024/2 {
		t.Errorf("default limit %d; MemTotal is %d kB, so at most %d expected", got, kb, kb*1024/2)
	}
}

func TestNewCheckedRefuses(t *testing.T) {
	cases := []struct {
		name  string
		dt    tensor.DType
		shape []int
		want  string
	}{
		{"over the limit", tensor.Float32, []int{1 << 15, 1 << 15}, "float32[32768 32768]: needs 4.0 GiB"},
		{"overflow", tensor.Float64, []int{1 << 40, 1 << 40}, "overflows"},
		{"overflow in bytes", tensor.Float64, []int{1 << 31, 1 << 31}, "overflows"},
		{"strings count their headers", tensor.String, []int{1 << 23}, "needs 128 MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			memtest.Refused(t, func() error {
				_, err := tensor.NewChecked(c.dt, c.shape)
				return err
			}, c.want)
		})
	}
	if _, err := tensor.NewChecked(tensor.Float32, []int{2, -1}); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("negative dim: %v", err)
	}
	if _, err := tensor.NewChecked(tensor.Float32, []int{1 << 10}); err != nil {
		t.Errorf("a small tensor: %v", err)
	}
}

func npyHeader(descr, shape string) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	return b.Bytes()
}

func TestNPYHugeDeclarations(t *testing.T) {
	dir := t.TempDir()
	// A header declaring 4 TiB, then 16 bytes.
	huge := append(npyHeader("<f4", "(1099511627776,)"), make([]byte, 16)...)
	path := filepath.Join(dir, "huge.npy")
	if err := os.WriteFile(path, huge, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("file", func(t *testing.T) {
		// A file's size is known: the declaration is checked against it first.
		memtest.Refused(t, func() error { _, err := tensor.ReadNPYFile(path); return err },
			path, "the header declares <f4[1099511627776]", "only 16 bytes follow")
	})
	t.Run("stream", func(t *testing.T) {
		// A stream's size is not: the declaration meets the memory limit.
		memtest.Refused(t, func() error { _, err := tensor.ReadNPY(bytes.NewReader(huge)); return err })
	})
	t.Run("under the limit but more than the file", func(t *testing.T) {
		p := filepath.Join(dir, "lies.npy")
		os.WriteFile(p, append(npyHeader("<f8", "(1000000,)"), make([]byte, 800)...), 0o644)
		memtest.Refused(t, func() error { _, err := tensor.ReadNPYFile(p); return err }, "truncated data", "only 800 bytes")
	})
}

func TestNPZInflatingMember(t *testing.T) {
	dir := t.TempDir()
	// A 5 MB member that inflates to 4 GiB, as its NPY header says.
	hdr := npyHeader("<f4", "(1073741824,)")
	stream, crc := memtest.DeflatedZeros(hdr, 4<<30)
	honest := filepath.Join(dir, "honest.npz")
	if err := os.WriteFile(honest, memtest.Zip("x.npy", stream, uint64(len(hdr))+4<<30, crc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("declared size over the limit", func(t *testing.T) {
		err := memtest.Refused(t, func() error { _, err := tensor.ReadNPZ(honest); return err })
		if err != nil && !strings.Contains(err.Error(), `entry "x.npy"`) {
			t.Errorf("error %q does not name the entry", err)
		}
	})
	t.Run("member inflating past its declared size", func(t *testing.T) {
		// The zip header claims 1000 bytes; the NPY header inside claims
		// 4 GiB, and the deflated data would give them.
		liar := filepath.Join(dir, "liar.npz")
		os.WriteFile(liar, memtest.Zip("x.npy", stream, 1000, crc), 0o644)
		memtest.Refused(t, func() error { _, err := tensor.ReadNPZ(liar); return err }, liar, `entry "x.npy"`, "truncated data")
	})
}

func TestProtoDimsAgainstData(t *testing.T) {
	f32 := proto.Int32(int32(tensor.Float32))
	big := []int64{1 << 20, 1 << 20}
	cases := []struct {
		name string
		tp   *onnxpb.TensorProto
		want string
	}{
		{"raw_data shorter than dims", &onnxpb.TensorProto{Name: proto.String("w"), DataType: f32, Dims: big, RawData: make([]byte, 16)},
			"raw_data has 16 bytes"},
		{"no data for huge dims", &onnxpb.TensorProto{Name: proto.String("w"), DataType: f32, Dims: big},
			"float_data has 0 elements"},
		{"dims that overflow", &onnxpb.TensorProto{Name: proto.String("w"), DataType: f32, Dims: []int64{1 << 40, 1 << 40}, RawData: make([]byte, 4)},
			"too many elements"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			memtest.Refused(t, func() error { _, err := tensor.FromProto(c.tp, ""); return err }, `tensor "w"`, c.want)
		})
	}
}

func TestExternalDataOverLimit(t *testing.T) {
	dir := t.TempDir()
	// A sparse 1 GiB file: the data is there as far as the file system
	// says, but reading it (bytes, then elements) would take 32 times
	// the limit.
	f, err := os.Create(filepath.Join(dir, "w.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	f.Close()
	tp := &onnxpb.TensorProto{Name: proto.String("w"), DataType: proto.Int32(int32(tensor.Float32)), Dims: []int64{1 << 28},
		DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("w.bin")}}}
	err = memtest.Refused(t, func() error { _, err := tensor.FromProto(tp, dir); return err })
	if err != nil && !strings.Contains(err.Error(), `external data "w.bin"`) {
		t.Errorf("error %q does not name the file", err)
	}
	var le *tensor.LimitError
	if !errors.As(err, &le) || le.Bytes != 2<<30 {
		t.Errorf("error %v: want a *LimitError for the 2 GiB the bytes and their elements take", err)
	}
}
