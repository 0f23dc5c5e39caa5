package cpu_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/ortcheck"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/tensor"
)

// TestAgainstONNXRuntime runs models in gotrain and in ONNX Runtime and
// requires the outputs to agree within 1e-5 (absolute, on logits of order
// 1: both compute in float32 with different summation orders, which moves
// results by a few ulps, ~1e-7, far below the bound). Models: the PyTorch
// exports of testdata/golden (and of shared/golden when it is beside the
// project) and the Go-built zoo.
func TestAgainstONNXRuntime(t *testing.T) {
	ortcheck.Require(t)
	dir := t.TempDir()
	type tc struct {
		name, path string
		input      []int
	}
	cases := []tc{
		{"golden-cnn", filepath.Join(testenv.Fixture(t, "testdata/golden/cnn"), "cnn.onnx"), []int{4, 3, 16, 16}},
		{"golden-mlp", filepath.Join(testenv.Fixture(t, "testdata/golden/mlp"), "mlp.onnx"), []int{4, 64}},
	}
	if g, ok := testenv.Shared(t, "golden"); ok {
		cases = append(cases, tc{"shared-cnn", filepath.Join(g, "cnn.onnx"), []int{4, 3, 32, 32}},
			tc{"shared-mlp", filepath.Join(g, "mlp.onnx"), []int{4, 784}})
	}
	for _, name := range models.Names() {
		m, err := models.Build(name, models.Options{Input: []int{3, 32, 32}, Classes: 10, Seed: 4, Softmax: name == "cnn"})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".onnx")
		if err := graph.Save(m, p); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{"zoo-" + name, p, []int{4, 3, 32, 32}})
	}
	b := cpu.New(cpu.Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := graph.Load(c.path)
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.New(tensor.Float32, c.input...)
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(rng.NormFloat64())
			}
			in := m.Graph.Inputs[0].Name
			out := m.Graph.Outputs[0].Name
			exe, err := b.Compile(m, b.Devices()[0], backend.CompileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := backend.RunHost(context.Background(), b, exe, b.Devices()[0], map[string]*tensor.Tensor{in: x})
			if err != nil {
				t.Fatal(err)
			}
			want, err := ortcheck.Run(c.path, map[string]*tensor.Tensor{in: x}, []string{in}, []string{out})
			if err != nil {
				t.Fatal(err)
			}
			g, w := got[out].Float32s(), want[out].Float32s()
			if len(g) != len(w) {
				t.Fatalf("%d outputs, ONNX Runtime gives %d", len(g), len(w))
			}
			worst := 0.0
			for i := range g {
				d := math.Abs(float64(g[i] - w[i]))
				if d > 1e-5 {
					t.Fatalf("element %d: gotrain %g, ONNX Runtime %g", i, g[i], w[i])
				}
				worst = math.Max(worst, d)
			}
			t.Logf("max abs difference %.2g over %d values", worst, len(g))
		})
	}
}
