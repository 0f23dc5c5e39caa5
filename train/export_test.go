package train_test

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/internal/ortcheck"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// TestExportMatchesRuntimes trains models with BatchNorm and Dropout for an
// epoch, exports them, and checks the file with onnx.checker and with ONNX
// Runtime, whose outputs must equal gotrain's evaluation within 1e-5 (the
// BatchNorm running statistics must therefore be in the file).
func TestExportMatchesRuntimes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	ortcheck.Require(t)
	py := testenv.Python(t, "onnx")
	trainSet, test := mnistSmall(t, 256, 64)
	for _, name := range []string{"vgg", "resnet20", "cnn"} {
		t.Run(name, func(t *testing.T) {
			m, err := models.Build(name, models.Options{Input: []int{1, 28, 28}, Classes: 10, Seed: 1, Dropout: 0.3})
			if err != nil {
				t.Fatal(err)
			}
			tr, err := train.NewTrainer(m, train.Config{Epochs: 1, BatchSize: 32, Seed: 1, Backend: cpu.New(cpu.Options{}),
				Optim: optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := tr.Fit(context.Background(), trainSet, nil)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "best_model.onnx")
			if err := checkpoint.Export(m, res.Weights, map[string]string{"test": name}, path); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(py, "-c", "import sys, onnx; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", path)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("onnx.checker: %v\n%s", err, out)
			}
			x, err := test.X.Reshaped(test.Len(), 1, 28, 28)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := tr.Strategy.Evaluate(context.Background(), strategy.Batch{Inputs: map[string]*tensor.Tensor{"input": x}, Labels: test.Y})
			if err != nil {
				t.Fatal(err)
			}
			want, err := ortcheck.Run(path, map[string]*tensor.Tensor{"input": x}, []string{"input"}, []string{m.Graph.Outputs[0].Name})
			if err != nil {
				t.Fatal(err)
			}
			g, w := ev.Output.Float32s(), want[m.Graph.Outputs[0].Name].Float32s()
			worst := 0.0
			for i := range w {
				d := math.Abs(float64(g[i] - w[i]))
				if d > 1e-5 {
					t.Fatalf("element %d: gotrain %g, ONNX Runtime %g", i, g[i], w[i])
				}
				worst = math.Max(worst, d)
			}
			t.Logf("exported %s: max abs difference to ONNX Runtime %.2g", name, worst)
		})
	}
}
