package strategy_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// spec describes a strategy over a zoo model on 1x12x12 input, 5 classes.
type spec struct {
	model         string
	dropout       float64
	oc            optim.Config
	replicas      int  // 0: single device
	private       bool // devices that do not share memory
	sync          bool
	deterministic bool
	shard         int
	// smooth replaces ReLU with Tanh and max pooling with average pooling,
	// so that no rounding difference can flip a branch of the forward pass.
	smooth bool
	// world makes the strategy a worker of a multi-worker run, with
	// replicas local replicas (0: one).
	world strategy.World
	// threads is the backend's thread count (0: one per device, at least 2).
	threads int
	// seed draws the initial weights (0: 3).
	seed uint64
}

// build makes the strategy a spec describes, with the replicas' copies of
// the weights checked at every step.
func (s spec) build(t *testing.T) (strategy.Strategy, error) {
	t.Helper()
	return s.make()
}

// make is build for a process that is not a test (a worker under mpirun).
func (s spec) make() (strategy.Strategy, error) {
	seed := s.seed
	if seed == 0 {
		seed = 3
	}
	m, err := models.Build(s.model, models.Options{Input: []int{1, 12, 12}, Classes: 5, Seed: seed, Dropout: s.dropout})
	if err != nil {
		return nil, err
	}
	if s.smooth {
		for _, n := range m.Graph.Nodes {
			switch n.OpType {
			case "Relu":
				n.OpType = "Tanh"
			case "MaxPool":
				n.OpType = "AveragePool"
			}
		}
	}
	devices := max(s.replicas, 1)
	threads := s.threads
	if threads == 0 {
		threads = max(devices, 2)
	}
	bc := strategy.BuildConfig{Strategy: "single", Backend: cpu.New(cpu.Options{Devices: devices, Threads: threads, PrivateMemory: s.private}),
		Training: graph.TrainingOptions{Loss: graph.CrossEntropy, SyncBatchNorm: s.sync}, Optim: s.oc,
		CheckReplicas: true, Replicas: s.replicas, Deterministic: s.deterministic, ShardSize: s.shard}
	if s.replicas > 0 {
		bc.Strategy = "mirrored"
	}
	if s.world != nil {
		bc.Strategy, bc.World = "multiworker", s.world
	}
	su, err := strategy.Build(m, bc)
	if err != nil {
		return nil, err
	}
	return su.Strategy, nil
}

func (s spec) mustBuild(t *testing.T) strategy.Strategy {
	t.Helper()
	st, err := s.build(t)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// steps runs steps on batches of the given sizes and returns the weights.
func steps(t *testing.T, st strategy.Strategy, lr float64, sizes ...int) map[string]*tensor.Tensor {
	t.Helper()
	for i, n := range sizes {
		if _, err := st.Step(context.Background(), batch(n, uint64(i)), lr, int64(i+1), int64(100+i)); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
	w, err := st.Weights()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func batch(n int, seed uint64) strategy.Batch {
	r := rand.New(rand.NewPCG(seed, 9))
	x := tensor.New(tensor.Float32, n, 1, 12, 12)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(r.NormFloat64())
	}
	y := tensor.New(tensor.Int64, n)
	for i := range y.Int64s() {
		y.Int64s()[i] = int64(r.IntN(5))
	}
	return strategy.Batch{Inputs: map[string]*tensor.Tensor{"input": x}, Labels: y}
}

func TestBadConfigurations(t *testing.T) {
	m, err := models.Build("mlp", models.Options{Input: []int{1, 4, 4}, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strategy          string
		replicas, devices int
		want              string
	}{
		{"mirrored", -1, 2, "need at least 1"},
		{"mirrored", 3, 2, "has 2 devices"},
		{"ring", 2, 2, `unknown strategy "ring" (have `},
	} {
		_, err := strategy.Build(m, strategy.BuildConfig{Strategy: c.strategy, Backend: cpu.New(cpu.Options{Devices: c.devices}),
			Optim: optim.Config{Name: "sgd", LR: 0.1}, Replicas: c.replicas})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s, replicas %d on %d devices: error %v, want one containing %q", c.strategy, c.replicas, c.devices, err, c.want)
		}
	}
	su, err := strategy.Build(m, strategy.BuildConfig{Strategy: "mirrored", Backend: cpu.New(cpu.Options{Devices: 4}), Optim: optim.Config{Name: "sgd", LR: 0.1}})
	if err != nil {
		t.Fatal(err)
	}
	if r := su.Strategy.Replicas(); r != 4 {
		t.Errorf("mirrored without a replica count: %d replicas, want one per device (4)", r)
	}
	x := tensor.New(tensor.Float32, 0, 1, 4, 4)
	y := tensor.New(tensor.Int64, 0)
	_, err = su.Strategy.Step(context.Background(), strategy.Batch{Inputs: map[string]*tensor.Tensor{"input": x}, Labels: y}, 0.1, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "no samples") {
		t.Errorf("an empty batch: error %v", err)
	}
}

// TestRegister adds a strategy by name and builds it: a Kind whose
// replicas do not run as a group gets ordinary BatchNorm when sync
// BatchNorm is asked for.
func TestRegister(t *testing.T) {
	strategy.Register("test-alone", strategy.Kind{New: strategy.NewMirrored})
	if !slices.Contains(strategy.Names(), "test-alone") {
		t.Fatalf("Names() = %v, without the registered strategy", strategy.Names())
	}
	m, err := models.Build("vgg", models.Options{Input: []int{1, 12, 12}, Classes: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		sync bool
	}{{"test-alone", false}, {"mirrored", true}} {
		su, err := strategy.Build(m, strategy.BuildConfig{Strategy: c.name, Backend: cpu.New(cpu.Options{Devices: 2}),
			Training: graph.TrainingOptions{SyncBatchNorm: true}, Optim: optim.Config{Name: "sgd", LR: 0.1}})
		if err != nil {
			t.Fatal(err)
		}
		if su.Training.Collective != c.sync || su.Strategy.Replicas() != 2 {
			t.Errorf("%s: sync BatchNorm %v on %d replicas, want %v on 2", c.name, su.Training.Collective, su.Strategy.Replicas(), c.sync)
		}
	}
}

// TestReplicaFailure makes one replica's share invalid (a label out of
// range) and checks the error names the replica, the others stop, and the
// weights and BatchNorm statistics are as before (no update ran, and the
// statistics the other replica updated are put back), on shared and
// private memory; the next step then checks the replicas agree.
func TestReplicaFailure(t *testing.T) {
	for _, s := range []spec{{model: "mlp", replicas: 2}, {model: "vgg", replicas: 2}, {model: "vgg", replicas: 2, private: true}} {
		s.oc = optim.Config{Name: "sgd", LR: 0.1}
		st := s.mustBuild(t)
		before, err := st.Weights()
		if err != nil {
			t.Fatal(err)
		}
		b := batch(8, 1)
		b.Labels.Int64s()[6] = 99 // in replica 1's half
		_, err = st.Step(context.Background(), b, 0.1, 1, 0)
		if err == nil || !strings.Contains(err.Error(), "replica 1") {
			t.Fatalf("%s: error %v, want one naming replica 1", s.model, err)
		}
		after, err := st.Weights()
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range before {
			if fmt.Sprint(w.Float32s()) != fmt.Sprint(after[name].Float32s()) {
				t.Fatalf("%s: %s changed although the step failed", s.model, name)
			}
		}
		if _, err := st.Step(context.Background(), batch(8, 2), 0.1, 1, 0); err != nil {
			t.Fatalf("%s: the step after the failed one: %v", s.model, err)
		}
	}
}

// TestSyncBatchNormFailure makes one replica fail after the forward
// collectives; the other must not wait forever.
func TestSyncBatchNormFailure(t *testing.T) {
	st := spec{model: "vgg", oc: optim.Config{Name: "sgd", LR: 0.05}, replicas: 2, sync: true}.mustBuild(t)
	b := batch(8, 1)
	b.Labels.Int64s()[6] = 99
	done := make(chan error, 1)
	go func() {
		_, err := st.Step(context.Background(), b, 0.05, 1, 0)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "replica 1") {
			t.Fatalf("error %v, want one naming replica 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a failed replica left the other waiting")
	}
	// The group is usable again afterwards.
	if _, err := st.Step(context.Background(), batch(8, 2), 0.05, 1, 0); err != nil {
		t.Fatal(err)
	}
}
