package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/train"
)

// TestFitMirroredEqualsSingle trains two epochs through the whole fit loop
// (shuffling, augmentation, Dropout, L2 weight decay, early stopping and
// ReduceLROnPlateau callbacks, validation) on one device and on 2 and 3
// mirrored replicas, and requires every weight tensor to agree within 1e-6
// relative (L2 norm of the difference over the norm; see strategy's
// equivalence test for why the norm) and the per-epoch logs within 1e-5.
func TestFitMirroredEqualsSingle(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	trainSet, val := mnistSmall(t, 200, 100)
	ac, err := augment.ParseSpec("rotation=15,shift=0.1,zoom=0.1")
	if err != nil {
		t.Fatal(err)
	}
	ac.Seed = 11
	aug, err := augment.New(ac, trainSet.SampleShape())
	if err != nil {
		t.Fatal(err)
	}
	fit := func(strategy string, replicas int) *train.Result {
		m, err := models.Build("cnn", models.Options{Input: []int{1, 28, 28}, Classes: 10, Seed: 4, Dropout: 0.25})
		if err != nil {
			t.Fatal(err)
		}
		cbs := []train.Callback{checkpoint.NewEarlyStopping("val_loss", 3), checkpoint.NewReduceLROnPlateau()}
		res, err := train.Fit(context.Background(), m, trainSet, val, train.Config{Epochs: 2, BatchSize: 30, Seed: 5,
			Strategy: strategy, Replicas: replicas, Backend: cpu.New(cpu.Options{Devices: max(replicas, 1)}),
			Transform: aug, Callbacks: cbs,
			Optim: optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := fit("single", 0)
	for _, r := range []int{2, 3} {
		got := fit("mirrored", r)
		for name, w := range want.Weights {
			g := got.Weights[name]
			var d2, n2 float64
			for i := 0; i < w.Len(); i++ {
				d := w.AsFloat64(i) - g.AsFloat64(i)
				d2 += d * d
				n2 += w.AsFloat64(i) * w.AsFloat64(i)
			}
			if rel := math.Sqrt(d2 / n2); !(rel <= 1e-6) {
				t.Errorf("replicas %d: %s differs by %.3g relative", r, name, rel)
			}
		}
		for e := range want.History {
			for k, v := range want.History[e] {
				if d := math.Abs(got.History[e][k] - v); !(d <= 1e-5*math.Max(1, math.Abs(v))) {
					t.Errorf("replicas %d, epoch %d: %s = %v, single device %v", r, e+1, k, got.History[e][k], v)
				}
			}
		}
	}
}
