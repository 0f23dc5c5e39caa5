//go:build cgo

package cuda_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/backend/cuda/cudaemu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// Whole training runs on the CUDA backend: on emulated devices everywhere,
// and on the GPU too in the cuda build when one is present (gpu_test.go
// adds it to backendGetters).

type namedBackend struct {
	name string
	open func(t *testing.T, o openOptions) *cuda.Backend
}

// openOptions are what the tests vary: the device count (several are
// streams of one GPU) and whether executables may capture graphs.
type openOptions struct {
	devices  int
	noGraphs bool
}

var backendGetters = []func(t *testing.T) (namedBackend, string){
	func(t *testing.T) (namedBackend, string) {
		if _, err := cudaemu.Emulator(); err != nil {
			return namedBackend{}, err.Error()
		}
		return namedBackend{"emu", func(t *testing.T, o openOptions) *cuda.Backend {
			return emuBackend(t, cudaemu.Options{Devices: o.devices, NoGraphs: o.noGraphs})
		}}, ""
	},
}

// forBackends runs f on the emulated backend and, where there is one, the
// GPU.
func forBackends(t *testing.T, f func(t *testing.T, nb namedBackend)) {
	t.Helper()
	ran := 0
	var why []string
	for _, get := range backendGetters {
		nb, reason := get(t)
		if nb.open == nil {
			why = append(why, reason)
			continue
		}
		ran++
		t.Run(nb.name, func(t *testing.T) { f(t, nb) })
	}
	if ran == 0 {
		t.Skipf("no CUDA backend to run on: %v", why)
	}
}

// smallRun builds a training run of the seed CNN (with Dropout) on b.
func smallRun(t *testing.T, b backend.Backend, replicas int, deterministic bool, oc optim.Config) (strategy.Strategy, strategy.Batch) {
	t.Helper()
	m, err := models.Build("cnn", models.Options{Input: []int{1, 16, 16}, Classes: 4, Dropout: 0.25, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	kind := "single"
	if replicas > 1 {
		kind = "mirrored"
	}
	su, err := strategy.Build(m, strategy.BuildConfig{Strategy: kind, Backend: b, Replicas: replicas, CheckReplicas: true,
		Deterministic: deterministic, ShardSize: 4, Training: graph.TrainingOptions{Loss: graph.CrossEntropy}, Optim: oc})
	if err != nil {
		t.Fatal(err)
	}
	r := rng(5)
	batch := strategy.Batch{Inputs: map[string]*tensor.Tensor{su.Training.Data[0]: randF32(r, 12, 1, 16, 16)}, Labels: randInt(r, 4, 12)}
	return su.Strategy, batch
}

func trainSteps(t *testing.T, st strategy.Strategy, batch strategy.Batch, steps int, lr float64) (map[string]*tensor.Tensor, []float64) {
	t.Helper()
	var losses []float64
	for s := 1; s <= steps; s++ {
		res, err := st.Step(context.Background(), batch, lr, int64(s), int64(100+s))
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, res.Loss)
	}
	w, err := st.Weights()
	if err != nil {
		t.Fatal(err)
	}
	return w, losses
}

// TestMirroredEqualsSingle: on the CUDA backend, mirrored replicas (each
// on its own device: a stream of one GPU, or an emulated device) train as
// one device does. In deterministic mode (micro-shards reduced in order)
// the weights are bit-identical for 1, 2 and 3 replicas; in the default
// mode two replicas split the batch and agree with one device to float32
// rounding of the gradients' sums (1e-5 of the largest weight after three
// steps of SGD with momentum; an indexing or reduction error moves weights
// by the size of the update, 1e-2 here).
func TestMirroredEqualsSingle(t *testing.T) {
	forBackends(t, func(t *testing.T, nb namedBackend) {
		oc := optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9}
		for _, det := range []bool{true, false} {
			st, batch := smallRun(t, nb.open(t, openOptions{devices: 1}), 1, det, oc)
			want, wantLoss := trainSteps(t, st, batch, 3, oc.LR)
			for _, replicas := range []int{2, 3} {
				if !det && replicas == 3 {
					continue
				}
				st, batch := smallRun(t, nb.open(t, openOptions{devices: replicas}), replicas, det, oc)
				got, loss := trainSteps(t, st, batch, 3, oc.LR)
				what := fmt.Sprintf("deterministic=%v, %d replicas", det, replicas)
				for name, w := range want {
					if det {
						for i, v := range w.Float32s() {
							if math.Float32bits(v) != math.Float32bits(got[name].Float32s()[i]) {
								t.Fatalf("%s: %s[%d] = %v, one device %v (not bit-identical)", what, name, i, got[name].Float32s()[i], v)
							}
						}
						continue
					}
					closeRel(t, what+": "+name, w, got[name], 1e-5)
				}
				for i := range loss {
					if d := math.Abs(loss[i] - wantLoss[i]); (det && d != 0) || d > 1e-5*math.Abs(wantLoss[i]) {
						t.Errorf("%s: loss of step %d is %v, one device %v", what, i+1, loss[i], wantLoss[i])
					}
				}
			}
		}
	})
}

// TestDropoutMasksInTraining: through a whole training graph (the seed CNN
// with Dropout before its classifier), the masks DropoutTrain draws on the
// CUDA backend are the CPU backend's, bit for bit, and so are the outputs
// they multiply.
func TestDropoutMasksInTraining(t *testing.T) {
	m, tr := training(t, "cnn", models.Options{Input: []int{1, 16, 16}, Classes: 4, Dropout: 0.4, Seed: 9})
	var masks []string
	for _, n := range tr.Model.Graph.Nodes {
		if n.OpType == "DropoutTrain" {
			masks = append(masks, n.Outputs...)
		}
	}
	if len(masks) == 0 {
		t.Fatal("the training graph has no DropoutTrain")
	}
	outs := append([]string{tr.Loss}, masks...)
	feeds := trainingFeeds(m, tr, 6, 4, 11)
	run := func(b backend.Backend) map[string]*tensor.Tensor {
		d := b.Devices()[0]
		exe, err := b.Compile(tr.Model, d, backend.CompileOptions{Outputs: outs})
		if err != nil {
			t.Fatal(err)
		}
		res, err := backend.RunHost(context.Background(), b, exe, d, feeds)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := run(cpu.New(cpu.Options{Threads: 1}))
	forBackends(t, func(t *testing.T, nb namedBackend) {
		got := run(nb.open(t, openOptions{devices: 1}))
		kept := 0
		for _, name := range masks {
			w, g := want[name], got[name]
			if w.DType() == tensor.Bool {
				for i, v := range w.Bools() {
					if g.Bools()[i] != v {
						t.Fatalf("mask %s[%d] = %v, the CPU's %v", name, i, g.Bools()[i], v)
					}
					if v {
						kept++
					}
				}
				continue
			}
			// The dropped-out activations: the product of the same mask
			// and the same inputs up to the products' rounding.
			closeRel(t, name, w, g, 1e-5)
		}
		if kept == 0 {
			t.Fatal("the masks keep nothing: the check compared nothing")
		}
	})
}

// TestSyncBatchNormRefused: sync BatchNorm's collective is not implemented
// on CUDA; a mirrored run that asks for it is refused before it starts,
// with an error that says why, while one device (no collective) trains.
func TestSyncBatchNormRefused(t *testing.T) {
	b := emuBackend(t, cudaemu.Options{Devices: 2})
	m, err := models.Build("vgg", models.Options{Input: []int{1, 8, 8}, Classes: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	bc := strategy.BuildConfig{Strategy: "mirrored", Backend: b, Replicas: 2, Optim: optim.Config{Name: "sgd", LR: 0.1},
		Training: graph.TrainingOptions{Loss: graph.CrossEntropy, SyncBatchNorm: true}}
	if _, err := strategy.Build(m, bc); err == nil || !strings.Contains(err.Error(), "sync BatchNorm needs a backend with collectives; cuda-emu has none") {
		t.Fatalf("mirrored with sync BatchNorm: error %v", err)
	}
	bc.Strategy, bc.Replicas = "single", 1
	if _, err := strategy.Build(m, bc); err != nil {
		t.Fatalf("one device with sync BatchNorm asked for: %v", err)
	}
}

// TestWarmStepAllocatesNoDeviceMemory: once a training run has taken its
// steps' memory, further steps (upload of the batch, the training graph,
// the gradients' reduction and copies between devices, the update, the
// broadcast, the loss read back) take none from the device, on one device
// and on two.
func TestWarmStepAllocatesNoDeviceMemory(t *testing.T) {
	forBackends(t, func(t *testing.T, nb namedBackend) {
		for _, replicas := range []int{1, 2} {
			b := nb.open(t, openOptions{devices: replicas})
			st, batch := smallRun(t, b, replicas, false, optim.Config{Name: "adam", LR: 1e-3})
			raw := func() int {
				n := 0
				for _, d := range b.Devices() {
					n += d.(*cuda.Device).Stats().RawAllocs
				}
				return n
			}
			trainSteps(t, st, batch, 3, 1e-3)
			before := raw()
			trainSteps(t, st, batch, 3, 1e-3)
			if n := raw() - before; n != 0 {
				t.Errorf("%d replicas: 3 warm steps took memory from the device %d times", replicas, n)
			}
		}
	})
}
