package train_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/backend/cuda/cudaemu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// goldenRun is a strategy a golden test runs: one device, or mirrored
// replicas on the CPU backend with shared or private memory (the path of
// devices that do not share memory, weights copied to each replica), and
// the same on the CUDA backend: on emulated devices (cuda-emu: the CUDA
// executor, allocator and kernels on the host emulator) and, in a build
// with CUDA, on the GPU (two replicas are two streams of one GPU); private
// memory both, with copies through backend.Copier.
type goldenRun struct {
	replicas int
	private  bool
	backend  string // "" is the CPU
}

var goldenRuns = func() []goldenRun {
	var runs []goldenRun
	for _, be := range goldenBackends {
		if be == "cpu" {
			runs = append(runs, goldenRun{1, false, ""}, goldenRun{2, false, ""}, goldenRun{2, true, ""})
			continue
		}
		runs = append(runs, goldenRun{1, false, be}, goldenRun{2, false, be})
	}
	return runs
}()

func (r goldenRun) name() string {
	s := fmt.Sprintf("replicas=%d", r.replicas)
	if r.private {
		s += ",private"
	}
	if r.backend != "" {
		s = r.backend + "/" + s
	}
	return s
}

// config is the strategy.BuildConfig of this run, with the replicas'
// copies of the weights checked against the master copy at every step.
func (r goldenRun) config(t *testing.T, to graph.TrainingOptions, oc optim.Config, init map[string]*tensor.Tensor) strategy.BuildConfig {
	var b backend.Backend = cpu.New(cpu.Options{Devices: r.replicas, PrivateMemory: r.private})
	if r.backend != "" {
		b = openBackend(t, r.backend, r.replicas)
	}
	c := strategy.BuildConfig{Strategy: "single", Backend: b, Training: to, Optim: oc, Init: init, CheckReplicas: true}
	if r.replicas > 1 {
		c.Strategy = "mirrored"
	}
	return c
}

// goldenBackends are the backends the goldens run on: the CPU, the CUDA
// backend on emulated devices, and in a build with CUDA the GPU.
// GOTRAIN_TEST_BACKENDS (a comma-separated list) keeps only those it names:
// the GPU check runs the goldens on "cuda" alone.
var goldenBackends = func() []string {
	all := []string{"cpu", cudaemu.Name}
	if cuda.Built {
		all = append(all, "cuda")
	}
	env := os.Getenv("GOTRAIN_TEST_BACKENDS")
	if env == "" {
		return all
	}
	var keep []string
	for _, be := range all {
		if slices.Contains(strings.Split(env, ","), be) {
			keep = append(keep, be)
		}
	}
	return keep
}()

// openBackend opens a registered backend with devices devices, skipping
// the test when it cannot run here: the emulated CUDA backend needs cgo
// (a CGO_ENABLED=0 build skips it, as it cannot have it) and a C++
// compiler (under CI=true its absence is a failure); the GPU needs a GPU
// (its absence is a failure with GOTRAIN_REQUIRE_GPU=1).
func openBackend(t *testing.T, name string, devices int) backend.Backend {
	t.Helper()
	if name == "cpu" {
		return cpu.New(cpu.Options{Devices: devices})
	}
	if name == cudaemu.Name && !cudaemu.Built {
		t.Skip("no device to run kernels on: the host emulator needs cgo (this build has CGO_ENABLED=0)")
	}
	b, err := backend.Open(name, map[string]string{"devices": fmt.Sprint(devices)})
	if err != nil {
		if name == "cuda" && os.Getenv("GOTRAIN_REQUIRE_GPU") != "1" {
			t.Skipf("no GPU here: %v", err)
		}
		testenv.Missing(t, "backend %s: %v", name, err)
	}
	if c, ok := b.(interface{ Close() error }); ok {
		t.Cleanup(func() { c.Close() })
	}
	return b
}

// goldenSet is a PyTorch golden set of the seed models' layout
// (testdata/golden/README.md): a model, a batch, the loss and gradients at
// the start, and the weights after 1 and 5 optimizer steps.
type goldenSet struct {
	name, dir, model string
}

// goldenSets are the committed sets (the seed CNN's and MLP's layers at
// small widths, from scripts/make_goldens.py) and, when the project's
// shared data is beside it, the full-size seed CNN's set there.
func goldenSets(t *testing.T) []goldenSet {
	var sets []goldenSet
	for _, model := range []string{"cnn", "mlp"} {
		for i, dir := range testenv.SeedGoldens(t, model) {
			name := model
			if i > 0 {
				name = "shared-" + model
			}
			sets = append(sets, goldenSet{name, dir, model + ".onnx"})
		}
	}
	return sets
}

func readNPY(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	x, err := tensor.ReadNPYFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// closeTo checks |got-want| <= abs + rel*|want| elementwise; a NaN
// anywhere fails.
func closeTo(t *testing.T, what string, want, got *tensor.Tensor, abs, rel float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: no value", what)
	}
	if !tensor.SameShape(want.Shape(), got.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	worst := 0.0
	for i := 0; i < want.Len(); i++ {
		w, g := want.AsFloat64(i), got.AsFloat64(i)
		d := math.Abs(w - g)
		if !(d <= abs+rel*math.Abs(w)) {
			t.Fatalf("%s: element %d is %g, want %g (tolerance %g abs + %g rel)", what, i, g, w, abs, rel)
		}
		worst = math.Max(worst, d)
	}
	t.Logf("%s: max abs diff %.3g", what, worst)
}

func goldenParams(t *testing.T, dir string, m *graph.Model, sub string) map[string]*tensor.Tensor {
	out := map[string]*tensor.Tensor{}
	for _, name := range m.Graph.InitializerNames() {
		out[name] = readNPY(t, filepath.Join(dir, sub, name+".npy"))
	}
	return out
}

// TestGoldenGradients compares the loss and every parameter gradient of the
// seed models with PyTorch's (tolerances from the golden README: loss 1e-5
// abs, gradients 1e-6 abs + 1e-4 rel, float32 with a different summation
// order).
func TestGoldenGradients(t *testing.T) {
	for _, set := range goldenSets(t) {
		for _, be := range goldenBackends {
			t.Run(set.name+"/"+be, func(t *testing.T) { goldenGradients(t, set, be) })
		}
	}
}

func goldenGradients(t *testing.T, set goldenSet, be string) {
	dir := set.dir
	m, err := graph.Load(filepath.Join(dir, set.model))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy})
	if err != nil {
		t.Fatal(err)
	}
	b := openBackend(t, be, 1)
	dev := b.Devices()[0]
	exe, err := b.Compile(tr.Model, dev, backend.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	feeds := goldenParams(t, dir, m, "init")
	feeds[tr.Data[0]] = readNPY(t, filepath.Join(dir, "x.npy"))
	feeds[tr.Label] = readNPY(t, filepath.Join(dir, "y.npy"))
	out, err := backend.RunHost(context.Background(), b, exe, dev, feeds)
	if err != nil {
		t.Fatal(err)
	}
	closeTo(t, "loss", readNPY(t, filepath.Join(dir, "loss.npy")), out[tr.Loss], 1e-5, 0)
	for i, p := range tr.Params {
		closeTo(t, "grad "+p, readNPY(t, filepath.Join(dir, "grad", p+".npy")), out[tr.Grads[i]], 1e-6, 1e-4)
	}
}

// TestGoldenOptimizers runs 5 steps on the golden batch with each of the
// golden optimizers, on one device and on mirrored replicas, and compares
// the weights with PyTorch's (1e-6 abs after 5 steps, from the README;
// mirrored sums gradients in another order, hence the same tolerance).
func TestGoldenOptimizers(t *testing.T) {
	for _, set := range goldenSets(t) {
		t.Run(set.name, func(t *testing.T) { goldenOptimizers(t, set) })
	}
}

func goldenOptimizers(t *testing.T, set goldenSet) {
	dir := set.dir
	cases := []struct {
		name string
		cfg  optim.Config
		want string
	}{
		{"adam", optim.Config{Name: "adam", LR: 1e-3}, "adam_5"},
		{"adamw", optim.Config{Name: "adamw", LR: 1e-3, WeightDecay: 0.01, DecayMode: optim.DecayDecoupled, DecayBiasNorm: true}, "adamw_5"},
		{"sgd-momentum-l2", optim.Config{Name: "momentum", LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4, DecayMode: optim.DecayL2, DecayBiasNorm: true}, "sgdm_5"},
	}
	for _, c := range cases {
		for _, run := range goldenRuns {
			t.Run(c.name+"/"+run.name(), func(t *testing.T) {
				m, err := graph.Load(filepath.Join(dir, set.model))
				if err != nil {
					t.Fatal(err)
				}
				su, err := strategy.Build(m, run.config(t, graph.TrainingOptions{Loss: graph.CrossEntropy}, c.cfg, goldenParams(t, dir, m, "init")))
				if err != nil {
					t.Fatal(err)
				}
				tr, st := su.Training, su.Strategy
				batch := strategy.Batch{Inputs: map[string]*tensor.Tensor{tr.Data[0]: readNPY(t, filepath.Join(dir, "x.npy"))},
					Labels: readNPY(t, filepath.Join(dir, "y.npy"))}
				for step := int64(1); step <= 5; step++ {
					if _, err := st.Step(context.Background(), batch, c.cfg.LR, step, 0); err != nil {
						t.Fatal(err)
					}
				}
				w, err := st.Weights()
				if err != nil {
					t.Fatal(err)
				}
				want := goldenParams(t, dir, m, c.want)
				for name, wt := range want {
					closeTo(t, name, wt, w[name], 1e-6, 0)
				}
			})
		}
	}
}
