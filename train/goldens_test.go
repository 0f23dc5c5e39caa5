package train_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// PyTorch goldens for three architectures beyond the seed CNN, made by
// scripts/make_goldens.py (see its doc for what each file holds):
//
//   - resnet_bn: Conv + BatchNormalization (training mode) + Relu, a
//     residual Add, AveragePool, Flatten, a Gemm head; cross-entropy.
//   - dropout_matmul: MatMul + Add (Linear on a sequence) + Tanh, a Dropout
//     of ratio 0 (PyTorch cannot draw gotrain's masks; ratio 0 keeps
//     TrainingGraph's DropoutTrain rewrite in the step but deterministic, as
//     evaluation-mode dropout), GELU (Erf), a Sigmoid gate, ReduceMean, a
//     MatMul head and a final Sigmoid that the bce loss unwraps.
//   - layernorm_mlp: Gemm + LayerNormalization + Relu/GELU; cross-entropy
//     with label smoothing 0.1.
//
// Tolerances (shared/golden/README.md, float32 against float32 PyTorch with
// another summation order): loss 1e-5 abs, gradients 1e-6 abs + 1e-4 rel,
// weights and BatchNorm running statistics after 3 steps 1e-5 abs.
//
// Mirrored: with two replicas a net without BatchNorm computes the same
// step as one device, so it is compared with the same goldens. BatchNorm
// normalises each replica's half batch with that half's statistics and
// averages the replicas' running statistics (after every step, which for
// the linear running update equals averaging at the end); the script
// reproduces that in PyTorch (mirrored2_* files), and the BatchNorm net is
// compared with those.

type goldenManifest struct {
	Arch           string                  `json:"arch"`
	Loss           string                  `json:"loss"`
	LabelSmoothing float64                 `json:"label_smoothing"`
	Steps          int                     `json:"steps"`
	Optimizers     map[string]optim.Config `json:"optimizers"`
	Mirrored       bool                    `json:"mirrored_goldens"`
	Files          map[string]string       `json:"files"`
	Buffers        []string                `json:"buffers"`
}

type goldenArch struct {
	dir string
	man goldenManifest
	m   *graph.Model
}

var goldenArchNames = []string{"resnet_bn", "dropout_matmul", "layernorm_mlp"}

func loadGoldenArch(t *testing.T, name string) *goldenArch {
	t.Helper()
	dir := filepath.Join("testdata", "goldens", name)
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("golden %s: %v (regenerate with /usr/bin/python3 scripts/make_goldens.py)", name, err)
	}
	a := &goldenArch{dir: dir}
	if err := json.Unmarshal(raw, &a.man); err != nil {
		t.Fatalf("golden %s: manifest.json: %v", name, err)
	}
	if a.m, err = graph.Load(filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	return a
}

// tensors reads sub/<file>.npy for every initializer of the model.
func (a *goldenArch) tensors(t *testing.T, sub string) map[string]*tensor.Tensor {
	t.Helper()
	out := map[string]*tensor.Tensor{}
	for _, name := range a.m.Graph.InitializerNames() {
		f, ok := a.man.Files[name]
		if !ok {
			if a.m.Graph.Initializer(name).DType().IsFloat() {
				t.Fatalf("golden %s: the manifest has no file for initializer %q", a.man.Arch, name)
			}
			continue
		}
		out[name] = readNPY(t, filepath.Join(a.dir, sub, f+".npy"))
	}
	return out
}

// trainingOptions are the golden's loss and label smoothing.
func (a *goldenArch) trainingOptions() graph.TrainingOptions {
	loss := graph.CrossEntropy
	if a.man.Loss == "bce" {
		loss = graph.BCEWithLogits
	}
	return graph.TrainingOptions{Loss: loss, LabelSmoothing: a.man.LabelSmoothing}
}

func (a *goldenArch) training(t *testing.T) *graph.Training {
	t.Helper()
	tr, err := graph.TrainingGraph(a.m, a.trainingOptions())
	if err != nil {
		t.Fatal(err)
	}
	a.checkBuffers(t, tr)
	return tr
}

// checkBuffers requires the training graph to update the buffers the
// golden has.
func (a *goldenArch) checkBuffers(t *testing.T, tr *graph.Training) {
	t.Helper()
	if len(tr.Buffers) != len(a.man.Buffers) {
		t.Fatalf("the training graph updates buffers %v; the golden has %v", tr.Buffers, a.man.Buffers)
	}
}

func halves(t *testing.T, x *tensor.Tensor) [2]*tensor.Tensor {
	t.Helper()
	n := x.Shape()[0]
	inner := x.Len() / n
	var out [2]*tensor.Tensor
	for h := range out {
		shape := append([]int{n / 2}, x.Shape()[1:]...)
		var err error
		switch d := x.Data().(type) {
		case []float32:
			out[h], err = tensor.FromSlice(append([]float32{}, d[h*n/2*inner:(h+1)*n/2*inner]...), shape...)
		case []int64:
			out[h], err = tensor.FromSlice(append([]int64{}, d[h*n/2*inner:(h+1)*n/2*inner]...), shape...)
		default:
			t.Fatalf("cannot split a %v batch", x.DType())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestGoldenArchGradients compares gotrain's loss and every parameter
// gradient at the initial weights with PyTorch's, for each architecture; the
// BatchNorm net also as the mean over two half-batch replicas.
func TestGoldenArchGradients(t *testing.T) {
	for _, name := range goldenArchNames {
		for _, be := range goldenBackends {
			t.Run(name+"/"+be, func(t *testing.T) { goldenArchGradients(t, name, be) })
		}
	}
}

func goldenArchGradients(t *testing.T, name, be string) {
	a := loadGoldenArch(t, name)
	tr := a.training(t)
	b := openBackend(t, be, 1)
	dev := b.Devices()[0]
	exe, err := b.Compile(tr.Model, dev, backend.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := readNPY(t, filepath.Join(a.dir, "x.npy"))
	y := readNPY(t, filepath.Join(a.dir, "y.npy"))
	init := a.tensors(t, "init")
	run := func(x, y *tensor.Tensor, offset int64) map[string]*tensor.Tensor {
		feeds := map[string]*tensor.Tensor{tr.Data[0]: x, tr.Label: y}
		for _, p := range append(append([]string{}, tr.Params...), tr.Buffers...) {
			feeds[p] = init[p]
		}
		if tr.Seed != "" {
			feeds[tr.Seed], feeds[tr.Offset] = tensor.Scalar(int64(17)), tensor.Scalar(offset)
		}
		out, err := backend.RunHost(context.Background(), b, exe, dev, feeds)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if len(tr.Params)+len(tr.Buffers) != len(a.man.Files) {
		t.Fatalf("training graph: %d parameters and %d buffers; the golden has %d tensors", len(tr.Params), len(tr.Buffers), len(a.man.Files))
	}
	out := run(x, y, 0)
	closeTo(t, "loss", readNPY(t, filepath.Join(a.dir, "loss.npy")), out[tr.Loss], 1e-5, 0)
	for i, p := range tr.Params {
		closeTo(t, "grad "+p, readNPY(t, filepath.Join(a.dir, "grad", a.man.Files[p]+".npy")), out[tr.Grads[i]], 1e-6, 1e-4)
	}
	if !a.man.Mirrored {
		return
	}
	// Two replicas, each normalising its own half batch: the
	// strategy's gradient is the mean of the halves' gradients.
	xs, ys := halves(t, x), halves(t, y)
	var parts [2]map[string]*tensor.Tensor
	for h := range parts {
		parts[h] = run(xs[h], ys[h], int64(h*x.Shape()[0]/2))
	}
	mean := func(v string) *tensor.Tensor {
		s := parts[0][v].Clone()
		d, e := s.Float32s(), parts[1][v].Float32s()
		for i := range d {
			d[i] = (d[i] + e[i]) / 2
		}
		return s
	}
	closeTo(t, "mirrored loss", readNPY(t, filepath.Join(a.dir, "mirrored2_loss.npy")), mean(tr.Loss), 1e-5, 0)
	for i, p := range tr.Params {
		closeTo(t, "mirrored grad "+p, readNPY(t, filepath.Join(a.dir, "mirrored2_grad", a.man.Files[p]+".npy")), mean(tr.Grads[i]), 1e-6, 1e-4)
	}
}

// TestGoldenArchSteps runs 3 steps of SGD with momentum and L2 decay and of
// AdamW on the golden batch, on one device and on two mirrored replicas,
// and compares the loss before each step, the parameters and the BatchNorm
// running statistics after the steps with PyTorch's.
func TestGoldenArchSteps(t *testing.T) {
	for _, name := range goldenArchNames {
		a := loadGoldenArch(t, name)
		opts := make([]string, 0, len(a.man.Optimizers))
		for k := range a.man.Optimizers {
			opts = append(opts, k)
		}
		sort.Strings(opts)
		for _, key := range opts {
			for _, run := range goldenRuns {
				t.Run(fmt.Sprintf("%s/%s/%s", name, key, run.name()), func(t *testing.T) {
					cfg := a.man.Optimizers[key]
					// torch.optim decays every parameter it is given.
					cfg.DecayBiasNorm = true
					su, err := strategy.Build(a.m, run.config(t, a.trainingOptions(), cfg, a.tensors(t, "init")))
					if err != nil {
						t.Fatal(err)
					}
					tr, st := su.Training, su.Strategy
					a.checkBuffers(t, tr)
					prefix := ""
					if run.replicas == 2 && a.man.Mirrored {
						prefix = "mirrored2_"
					}
					batch := strategy.Batch{Inputs: map[string]*tensor.Tensor{tr.Data[0]: readNPY(t, filepath.Join(a.dir, "x.npy"))},
						Labels: readNPY(t, filepath.Join(a.dir, "y.npy"))}
					wantLoss := readNPY(t, filepath.Join(a.dir, prefix+key+"_loss.npy"))
					if wantLoss.Len() != a.man.Steps {
						t.Fatalf("%s_loss.npy has %d values, want %d", key, wantLoss.Len(), a.man.Steps)
					}
					losses := make([]float32, a.man.Steps)
					for step := 1; step <= a.man.Steps; step++ {
						res, err := st.Step(context.Background(), batch, cfg.LR, int64(step), 17)
						if err != nil {
							t.Fatal(err)
						}
						losses[step-1] = float32(res.Loss)
					}
					closeTo(t, "losses", wantLoss, tensor.MustFromSlice(losses, len(losses)), 1e-5, 0)
					w, err := st.Weights()
					if err != nil {
						t.Fatal(err)
					}
					want := a.tensors(t, fmt.Sprintf("%s%s_%d", prefix, key, a.man.Steps))
					if len(w) != len(want) {
						t.Fatalf("the strategy holds %d weights, the golden %d", len(w), len(want))
					}
					for n, wt := range want {
						closeTo(t, n, wt, w[n], 1e-5, 0)
					}
				})
			}
		}
	}
}
