package conformance_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend/conformance"
	_ "github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

func TestOpen(t *testing.T) {
	b, err := conformance.Open("cpu")
	if err != nil || b.Name() != "cpu" {
		t.Fatalf("Open(cpu) = %v, %v", b, err)
	}
	_, err = conformance.Open("cuda")
	if err == nil || !strings.Contains(err.Error(), `"cuda" is not compiled into this program (available: cpu`) {
		t.Errorf("Open(cuda) without the CUDA backend: %v", err)
	}
}

func TestCompare(t *testing.T) {
	f32 := func(v ...float32) *tensor.Tensor { return tensor.MustFromSlice(v, len(v)) }
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name      string
		want, got *tensor.Tensor
		err       string
	}{
		{"equal", f32(1, 2), f32(1, 2), ""},
		{"within rtol", f32(1000, 0), f32(1000.9, 0), ""},
		{"beyond rtol", f32(1000, 0), f32(1001.2, 0), "element 0 is 1001.2"},
		{"nan matches nan", f32(nan), f32(nan), ""},
		{"nan vs number", f32(nan), f32(0), "element 0 is 0, expected NaN"},
		{"shape", f32(1, 2), tensor.MustFromSlice([]float32{1, 2}, 1, 2), "shape [1 2], expected [2]"},
		{"dtype", f32(1), tensor.MustFromSlice([]float64{1}, 1), "dtype float64"},
		{"missing", f32(1), nil, "missing"},
	} {
		err := conformance.Compare(tc.want, tc.got)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestFloorFiles(t *testing.T) {
	dir := t.TempDir()
	results := []conformance.Result{
		{Case: conformance.Case{Name: "test_b"}, Status: conformance.Pass},
		{Case: conformance.Case{Name: "test_a"}, Status: conformance.Pass},
		{Case: conformance.Case{Name: "test_c"}, Status: conformance.Unsupported},
		{Case: conformance.Case{Name: "test_d"}, Status: conformance.Fail},
	}
	if err := conformance.WriteFloor(filepath.Join(dir, "node.txt"), "node", "cpu", "make conformance-floor", results); err != nil {
		t.Fatal(err)
	}
	floors, err := conformance.ReadFloors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]map[string]bool{"node": {"test_a": true, "test_b": true}}; !reflect.DeepEqual(floors, want) {
		t.Fatalf("floor read back as %v, want %v", floors, want)
	}
	gone, more := conformance.CheckFloor(map[string]bool{"test_a": true, "test_gone": true}, results)
	if !reflect.DeepEqual(gone, []string{"test_gone"}) || !reflect.DeepEqual(more, []string{"test_b"}) {
		t.Errorf("CheckFloor: gone %v more %v, want [test_gone] [test_b]", gone, more)
	}
	for _, tc := range []struct{ file, text, err string }{
		{"node.txt", "test_a\ntest_a\n", "node.txt:2: test test_a is listed twice"},
		{"node.txt", "# c\n\ntest a\n", `node.txt:3: "test a" is not a test name`},
		{"nodes.txt", "test_a\n", `"nodes" is not a known suite`},
	} {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, tc.file), []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := conformance.ReadFloors(d); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err %v, want %q", tc.text, err, tc.err)
		}
	}
	if f, err := conformance.ReadFloors(filepath.Join(dir, "none")); err != nil || len(f) != 0 {
		t.Errorf("a missing floor folder: %v, %v", f, err)
	}
}

// TestRunCase runs one test folder made here: a model that passes, and
// the same model with an expected output it does not produce.
func TestRunCase(t *testing.T) {
	src := filepath.Join(testenv.DebianONNX(t, "node"), "test_relu")
	testenv.Require(t, filepath.Join(src, "model.onnx"), "Debian's libonnx-testdata")
	b, err := conformance.Open("cpu")
	if err != nil {
		t.Fatal(err)
	}
	cases, err := conformance.Cases(conformance.Suite{Name: "node", Dir: src})
	if err != nil || len(cases) != 1 {
		t.Fatalf("Cases of one folder: %v, %v", cases, err)
	}
	r := conformance.RunCase(context.Background(), b, cases[0])
	if r.Status != conformance.Pass || !reflect.DeepEqual(r.Ops, []string{"Relu"}) {
		t.Fatalf("test_relu: %v %v (%s)", r.Status, r.Ops, r.Reason)
	}
	bad := t.TempDir()
	model, err := os.ReadFile(filepath.Join(src, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	set := filepath.Join(bad, "test_data_set_0")
	if err := os.MkdirAll(set, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(bad, "model.onnx"), model, 0o644)
	in, _ := os.ReadFile(filepath.Join(src, "test_data_set_0", "input_0.pb"))
	os.WriteFile(filepath.Join(set, "input_0.pb"), in, 0o644)
	os.WriteFile(filepath.Join(set, "output_0.pb"), in, 0o644) // the input, negatives and all
	r = conformance.RunCase(context.Background(), b, conformance.Case{Suite: "x", Name: "relu_wrong", Dir: bad})
	if r.Status != conformance.Fail || !strings.Contains(r.Reason, `output "y"`) {
		t.Errorf("a wrong expected output: %v (%s)", r.Status, r.Reason)
	}
}
