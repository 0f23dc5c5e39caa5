package strategy_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// spec describes a strategy over a zoo model on 1x12x12 input, 5 classes.
type spec struct {
	model         string
	dropout       float64
	oc            optim.Config
	replicas      int // 0: single device
	sync          bool
	deterministic bool
	shard         int
}

// build makes the strategy a spec describes.
func (s spec) build(t *testing.T) (strategy.Strategy, error) {
	t.Helper()
	m, err := models.Build(s.model, models.Options{Input: []int{1, 12, 12}, Classes: 5, Seed: 3, Dropout: s.dropout})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy, SyncBatchNorm: s.sync})
	if err != nil {
		t.Fatal(err)
	}
	up, err := optim.BuildUpdate(s.oc, train.ParamsOf(m, tr))
	if err != nil {
		t.Fatal(err)
	}
	init := map[string]*tensor.Tensor{}
	for _, n := range append(append([]string{}, tr.Params...), tr.Buffers...) {
		init[n] = m.Graph.Initializer(n)
	}
	devices := max(s.replicas, 1)
	sc := strategy.Config{Backend: cpu.New(cpu.Options{Devices: devices, Threads: max(devices, 2)}), Training: tr, Update: up,
		Init: init, CheckReplicas: true, Replicas: s.replicas, Deterministic: s.deterministic, ShardSize: s.shard}
	if s.replicas == 0 {
		return strategy.NewSingleDevice(sc)
	}
	return strategy.NewMirrored(sc)
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

// relL2 returns the largest ||a-b||/||a|| over the tensors, and its name.
func relL2(a, b map[string]*tensor.Tensor) (worst float64, which string) {
	for name, w := range a {
		var d2, n2 float64
		for i := 0; i < w.Len(); i++ {
			d := w.AsFloat64(i) - b[name].AsFloat64(i)
			d2 += d * d
			n2 += w.AsFloat64(i) * w.AsFloat64(i)
		}
		if r := math.Sqrt(d2 / math.Max(n2, 1e-30)); r > worst || which == "" {
			worst, which = r, name
		}
	}
	return worst, which
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

// TestMirroredEqualsSingle runs the same steps (uneven last batch
// included) on one device and on 2, 3 and 4 mirrored replicas and requires
// every weight tensor to agree within 1e-6 relative, measured as
// ||w_mirrored - w_single|| / ||w_single||: replicas only change the order
// in which per-sample gradients are summed, a float32 rounding effect of
// ~1e-7 relative per step. (Elementwise, Adam can turn such rounding in a
// near-zero gradient into a larger relative change of one weight, so the
// tensor norm is the meaningful measure.) Dropout masks are a function of
// the global sample index, so they agree exactly.
func TestMirroredEqualsSingle(t *testing.T) {
	cases := []struct {
		name    string
		model   string
		dropout float64
		oc      optim.Config
	}{
		{"adam", "cnn", 0, optim.Config{Name: "adam", LR: 1e-3}},
		{"sgd-momentum-l2", "cnn", 0, optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4}},
		{"adamw-dropout", "cnn", 0.3, optim.Config{Name: "adamw", LR: 1e-3, WeightDecay: 0.01, DecayMode: optim.DecayDecoupled}},
		{"nesterov-mlp", "mlp", 0, optim.Config{Name: "nesterov", LR: 0.05, Momentum: 0.9, ClipNorm: 1}},
	}
	sizes := []int{12, 12, 12, 7} // the last batch does not divide evenly
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run := func(replicas int) (map[string]*tensor.Tensor, []float64) {
				st := spec{model: c.model, dropout: c.dropout, oc: c.oc, replicas: replicas}.mustBuild(t)
				var losses []float64
				for i, n := range sizes {
					r, err := st.Step(context.Background(), batch(n, uint64(i)), c.oc.LR, int64(i+1), int64(100+i))
					if err != nil {
						t.Fatalf("replicas %d step %d: %v", replicas, i+1, err)
					}
					losses = append(losses, r.Loss)
				}
				w, err := st.Weights()
				if err != nil {
					t.Fatal(err)
				}
				return w, losses
			}
			want, wantLoss := run(0)
			for _, r := range []int{2, 3, 4} {
				got, loss := run(r)
				for i := range loss {
					if !(math.Abs(loss[i]-wantLoss[i]) <= 1e-6*math.Abs(wantLoss[i])) {
						t.Errorf("replicas %d: loss of step %d is %v, single device %v", r, i+1, loss[i], wantLoss[i])
					}
				}
				worst, name := relL2(want, got)
				if !(worst <= 1e-6) {
					t.Fatalf("replicas %d: %s differs from single device by %.3g relative (L2)", r, name, worst)
				}
				t.Logf("replicas %d: worst relative (L2) weight difference to single device %.2g (%s)", r, worst, name)
			}
		})
	}
}

func TestBadConfigurations(t *testing.T) {
	m, err := models.Build("mlp", models.Options{Input: []int{1, 4, 4}, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := graph.TrainingGraph(m, graph.TrainingOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := optim.BuildUpdate(optim.Config{Name: "sgd", LR: 0.1}, train.ParamsOf(m, tr))
	if err != nil {
		t.Fatal(err)
	}
	init := map[string]*tensor.Tensor{}
	for _, n := range tr.Params {
		init[n] = m.Graph.Initializer(n)
	}
	for _, c := range []struct {
		replicas, devices int
		want              string
	}{
		{-1, 2, "need at least 1"},
		{3, 2, "has 2 devices"},
	} {
		_, err := strategy.NewMirrored(strategy.Config{Backend: cpu.New(cpu.Options{Devices: c.devices}), Training: tr, Update: up, Init: init, Replicas: c.replicas})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("replicas %d on %d devices: error %v, want one containing %q", c.replicas, c.devices, err, c.want)
		}
	}
	st, err := strategy.NewMirrored(strategy.Config{Backend: cpu.New(cpu.Options{Devices: 4}), Training: tr, Update: up, Init: init, Replicas: 4})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.New(tensor.Float32, 3, 1, 4, 4)
	y := tensor.New(tensor.Int64, 3)
	_, err = st.Step(context.Background(), strategy.Batch{Inputs: map[string]*tensor.Tensor{"input": x}, Labels: y}, 0.1, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "cannot be split over 4 replicas") {
		t.Errorf("3 samples on 4 replicas: error %v", err)
	}
}

// TestReplicaFailure makes one replica's share invalid (a label out of
// range) and checks the error names the replica, the others stop, and the
// weights are untouched (no update ran).
func TestReplicaFailure(t *testing.T) {
	st := spec{model: "mlp", oc: optim.Config{Name: "sgd", LR: 0.1}, replicas: 2}.mustBuild(t)
	before, err := st.Weights()
	if err != nil {
		t.Fatal(err)
	}
	b := batch(8, 1)
	b.Labels.Int64s()[6] = 99 // in replica 1's half
	_, err = st.Step(context.Background(), b, 0.1, 1, 0)
	if err == nil || !strings.Contains(err.Error(), "replica 1") {
		t.Fatalf("error %v, want one naming replica 1", err)
	}
	after, err := st.Weights()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range before {
		if fmt.Sprint(w.Float32s()) != fmt.Sprint(after[name].Float32s()) {
			t.Fatalf("%s changed although the step failed", name)
		}
	}
}

// TestDeterministicMode requires bit-identical weights from one device
// and from 2 and 3 mirrored replicas in deterministic mode (micro-shards
// reduced in shard order), with Dropout and uneven batches.
func TestDeterministicMode(t *testing.T) {
	oc := optim.Config{Name: "adam", LR: 1e-3}
	run := func(replicas int) map[string]*tensor.Tensor {
		st := spec{model: "cnn", dropout: 0.2, oc: oc, replicas: replicas, deterministic: true, shard: 3}.mustBuild(t)
		return steps(t, st, oc.LR, 13, 12, 7)
	}
	want := run(0)
	for _, r := range []int{2, 3} {
		got := run(r)
		for name, w := range want {
			a, b := w.Float32s(), got[name].Float32s()
			for i := range a {
				if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
					t.Fatalf("replicas %d: %s[%d] = %v, single device %v (not bit-identical)", r, name, i, b[i], a[i])
				}
			}
		}
	}
	// BatchNorm is refused.
	_, err := spec{model: "vgg", oc: oc, deterministic: true}.build(t)
	if err == nil || !strings.Contains(err.Error(), "BatchNorm") {
		t.Errorf("deterministic mode with BatchNorm: error %v", err)
	}
}

// TestSyncBatchNorm checks that mirrored training with sync BatchNorm
// (statistics all-reduced over the replicas) matches single-device
// training, BatchNorm running statistics included, within 1e-5 relative
// (L2 per tensor): the sync form computes the variance as E[x²]-mean²
// from all-reduced sums, single-device BatchNorm in two passes, which
// differ by float32 rounding. Without sync, per-replica statistics make
// the results differ far more, which the test also checks so that it
// could not pass by accident. Batches of 9 split unevenly.
func TestSyncBatchNorm(t *testing.T) {
	oc := optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9}
	run := func(replicas int, sync bool) map[string]*tensor.Tensor {
		return steps(t, spec{model: "vgg", oc: oc, replicas: replicas, sync: sync}.mustBuild(t), oc.LR, 12, 12, 9)
	}
	want := run(0, false)
	for _, r := range []int{2, 3} {
		if d, name := relL2(want, run(r, true)); !(d <= 1e-5) {
			t.Errorf("sync BatchNorm, %d replicas: %s differs by %.3g relative", r, name, d)
		} else {
			t.Logf("sync BatchNorm, %d replicas: worst relative difference %.2g (%s)", r, d, name)
		}
	}
	if d, _ := relL2(want, run(2, false)); d < 1e-4 {
		t.Errorf("per-replica BatchNorm differs from single device by only %.3g: the comparison cannot tell sync from not", d)
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
