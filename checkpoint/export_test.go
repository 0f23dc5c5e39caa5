package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

// goldenCNN is the committed PyTorch export of the seed CNN's layers
// (testdata/golden; scripts/make_goldens.py).
func goldenCNN(t testing.TB) string {
	return testenv.Fixture(t, "testdata/golden/cnn/cnn.onnx")
}

// onnxPython returns Debian's python3 when it can import onnx.
func onnxPython(t *testing.T) string {
	t.Helper()
	return testenv.Python(t, "onnx")
}

// checkONNX runs onnx.checker on path (full check, shape inference
// included) and returns, per initializer, the SHA-256 of its elements as
// little-endian bytes, as numpy reads them: an independent reading of what
// Export wrote.
func checkONNX(t *testing.T, path string) map[string]string {
	t.Helper()
	py := onnxPython(t)
	script := `
import sys, hashlib, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
for i in m.graph.initializer:
    a = numpy_helper.to_array(i)
    print(i.name, hashlib.sha256(a.astype(a.dtype.newbyteorder('<')).tobytes()).hexdigest())
`
	out, err := exec.Command(py, "-c", script, path).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx.checker on %s: %v\n%s", path, err, out)
	}
	h := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if name, sum, ok := strings.Cut(line, " "); ok {
			h[name] = sum
		}
	}
	return h
}

func float32Hash(t *tensor.Tensor) string {
	b := make([]byte, 4*t.Len())
	for i, v := range t.Float32s() {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestExportGoldenCNN(t *testing.T) {
	m, err := graph.Load(goldenCNN(t))
	if err != nil {
		t.Fatal(err)
	}
	hashBefore := ModelHash(m)
	orig := map[string]*tensor.Tensor{}
	weights := map[string]*tensor.Tensor{}
	for _, name := range m.Graph.InitializerNames() {
		w := m.Graph.Initializer(name)
		orig[name] = w.Clone()
		nw := w.Clone()
		for i, v := range nw.Float32s() {
			nw.Float32s()[i] = v*1.5 + 0.25
		}
		weights[name] = nw
	}
	meta := map[string]string{"gotrain.config": `{"epochs":3,"lr":0.01}`, "gotrain.metric.val_loss": "0.5"}
	path := filepath.Join(t.TempDir(), "best_model.onnx")
	if err := Export(m, weights, meta, path); err != nil {
		t.Fatal(err)
	}

	// The input model is untouched.
	if err := DiffTensors("initializer", orig, initializers(m)); err != nil {
		t.Errorf("Export changed the input model: %v", err)
	}

	back, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := DiffTensors("initializer", weights, initializers(back)); err != nil {
		t.Errorf("exported weights differ: %v", err)
	}
	if ModelHash(back) != hashBefore {
		t.Error("the exported model's structure differs from the input's")
	}
	if back.Opset("") != m.Opset("") || back.IRVersion != m.IRVersion {
		t.Errorf("opset %d ir %d, want %d %d", back.Opset(""), back.IRVersion, m.Opset(""), m.IRVersion)
	}
	if !slices.Equal(valueNames(back.Graph.Inputs), valueNames(m.Graph.Inputs)) || !slices.Equal(valueNames(back.Graph.Outputs), valueNames(m.Graph.Outputs)) {
		t.Errorf("inputs/outputs %v %v, want %v %v", valueNames(back.Graph.Inputs), valueNames(back.Graph.Outputs), valueNames(m.Graph.Inputs), valueNames(m.Graph.Outputs))
	}
	for k, v := range meta {
		if back.Metadata[k] != v {
			t.Errorf("metadata %q = %q, want %q", k, back.Metadata[k], v)
		}
	}

	sums := checkONNX(t, path)
	for name, w := range weights {
		if sums[name] != float32Hash(w) {
			t.Errorf("initializer %q as onnx reads it differs from the exported weight", name)
		}
	}
}

func initializers(m *graph.Model) map[string]*tensor.Tensor {
	out := map[string]*tensor.Tensor{}
	for _, n := range m.Graph.InitializerNames() {
		out[n] = m.Graph.Initializer(n)
	}
	return out
}

func valueNames(vs []*graph.ValueInfo) []string {
	var n []string
	for _, v := range vs {
		n = append(n, v.Name)
	}
	return n
}

func TestExportGoDefinedModel(t *testing.T) {
	m := tinyModel(t)
	w := map[string]*tensor.Tensor{"w": tensor.MustFromSlice([]float32{1, 2, 3, 4}, 2, 2)}
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := Export(m, w, map[string]string{"k": "v"}, path); err != nil {
		t.Fatal(err)
	}
	sums := checkONNX(t, path)
	if sums["w"] != float32Hash(w["w"]) || sums["b"] != float32Hash(m.Graph.Initializer("b")) {
		t.Errorf("initializers as onnx reads them: %v", sums)
	}
}

func TestExportErrors(t *testing.T) {
	m := tinyModel(t)
	dir := t.TempDir()
	tests := []struct {
		name    string
		weights map[string]*tensor.Tensor
		path    string
		want    string
	}{
		{"unknown weight", map[string]*tensor.Tensor{"fc.weight": tensor.New(tensor.Float32, 2)}, "a.onnx", `weight "fc.weight" is not an initializer`},
		{"shape", map[string]*tensor.Tensor{"w": tensor.New(tensor.Float32, 4)}, "a.onnx", `weight "w" is float32[4], the model's initializer is float32[2 2]`},
		{"dtype", map[string]*tensor.Tensor{"b": tensor.New(tensor.Float64, 2)}, "a.onnx", `weight "b" is float64[2]`},
		{"missing folder", nil, "missing/a.onnx", "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.path)
			err := Export(m, tc.weights, nil, p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, p, tc.want)
			}
			if _, err := os.Stat(p); err == nil {
				t.Error("a failed export left a file")
			}
		})
	}
}

func TestExportBatchNormInferenceForm(t *testing.T) {
	g := graph.NewGraph("bn")
	g.Inputs = []*graph.ValueInfo{{Name: "x", Type: *graph.NewType(tensor.Float32, graph.Shape{graph.Sym("N"), graph.D(2)})}}
	for _, n := range []string{"scale", "bias", "mean", "var"} {
		g.SetInitializer(n, tensor.MustFromSlice([]float32{1, 1}, 2))
	}
	g.Nodes = []*graph.Node{{OpType: "BatchNormalization", Inputs: []string{"x", "scale", "bias", "mean", "var"},
		Outputs: []string{"y", "running_mean", "running_var"}, Attrs: map[string]*graph.Attribute{"training_mode": graph.AInt("training_mode", 1)}}}
	g.Outputs = []*graph.ValueInfo{{Name: "y", Type: *graph.NewType(tensor.Float32, graph.Shape{graph.Sym("N"), graph.D(2)})}}
	m := graph.NewModel(g, 15)
	stats := map[string]*tensor.Tensor{"mean": tensor.MustFromSlice([]float32{0.5, -0.5}, 2), "var": tensor.MustFromSlice([]float32{2, 3}, 2)}
	out, err := ExportModel(m, stats, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := out.Graph.Nodes[0]
	if n.AttrInt("training_mode", 0) != 0 || len(n.Outputs) != 1 {
		t.Errorf("exported BatchNormalization: training_mode %d, outputs %v", n.AttrInt("training_mode", 0), n.Outputs)
	}
	if m.Graph.Nodes[0].AttrInt("training_mode", 0) != 1 || len(m.Graph.Nodes[0].Outputs) != 3 {
		t.Error("the input model was changed")
	}
	if err := DiffTensors("statistic", stats, map[string]*tensor.Tensor{"mean": out.Graph.Initializer("mean"), "var": out.Graph.Initializer("var")}); err != nil {
		t.Error(err)
	}
	path := filepath.Join(t.TempDir(), "bn.onnx")
	if err := graph.Save(out, path); err != nil {
		t.Fatal(err)
	}
	checkONNX(t, path)
}

func TestModelHash(t *testing.T) {
	a, b := tinyModel(t), tinyModel(t)
	if ModelHash(a) != ModelHash(b) {
		t.Fatal("two builds of the same model hash differently")
	}
	b.Graph.SetInitializer("w", tensor.MustFromSlice([]float32{9, 9, 9, 9}, 2, 2))
	if ModelHash(a) != ModelHash(b) {
		t.Error("new weight values changed the hash")
	}
	c := tinyModel(t)
	c.Graph.SetInitializer("w", tensor.New(tensor.Float32, 2, 3))
	d := tinyModel(t)
	d.Graph.Nodes[0].OpType = "Sub"
	e := tinyModel(t)
	e.Opsets[""] = 13
	for name, m := range map[string]*graph.Model{"initializer shape": c, "op type": d, "opset": e} {
		if ModelHash(m) == ModelHash(a) {
			t.Errorf("changing the %s kept the hash", name)
		}
	}
}
