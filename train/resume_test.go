package train_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/train"
)

// tinySet is n 1x4x4 samples of 3 classes.
func tinySet(t *testing.T, n int) *data.Dataset {
	t.Helper()
	x := make([]float32, n*16)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.37))
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % 3)
	}
	d, err := data.NewDataset(x, y, n, 1, 4, 4, data.NCHW, 3, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// snapshotAt takes the training state after a given global batch.
type snapshotAt struct {
	train.NopCallback
	after, seen int
	state       *train.State
}

func (c *snapshotAt) OnBatchEnd(ctx *train.Context, _ int, _ train.Logs) error {
	c.seen++
	if c.seen == c.after {
		s, err := ctx.Snapshot()
		c.state = s
		return err
	}
	return nil
}

func tinyFit(t *testing.T, d *data.Dataset, dataHash string, resume *train.State, cbs ...train.Callback) (*train.Result, error) {
	t.Helper()
	m, err := models.Build("mlp", models.Options{Input: []int{1, 4, 4}, Classes: 3, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	return train.Fit(context.Background(), m, d, nil, train.Config{Epochs: 2, BatchSize: 4, Seed: 1,
		Backend: cpu.New(cpu.Options{}), Optim: optim.Config{Name: "sgd", LR: 0.1}, Callbacks: cbs, Resume: resume,
		ModelHash: checkpoint.ModelHash(m), DataHash: dataHash})
}

// A state records the training data's hash; resuming on other data is
// refused, naming both hashes.
func TestResumeRefusesOtherData(t *testing.T) {
	d := tinySet(t, 20)
	h, err := checkpoint.DataHash(d)
	if err != nil {
		t.Fatal(err)
	}
	snap := &snapshotAt{after: 3}
	if _, err := tinyFit(t, d, h, nil, snap); err != nil {
		t.Fatal(err)
	}
	if snap.state == nil || snap.state.DataHash != h {
		t.Fatalf("the state does not record the data hash %s: %+v", h, snap.state)
	}
	other := tinySet(t, 20)
	other.X.Float32s()[5] += 1e-3
	oh, _ := checkpoint.DataHash(other)
	_, err = tinyFit(t, other, oh, snap.state)
	if err == nil || !strings.Contains(err.Error(), "other training data") || !strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), oh) {
		t.Fatalf("resume on other data: %v", err)
	}
	if _, err := tinyFit(t, d, h, snap.state); err != nil {
		t.Fatalf("resume on the same data: %v", err)
	}
}

// A state without a position in samples (format version 1) resumes after
// BatchInEpoch batches of this run's size, as it did when it was written,
// and a position past the data's end is refused.
func TestResumeWithoutPartial(t *testing.T) {
	d := tinySet(t, 20)
	snap := &snapshotAt{after: 2}
	if _, err := tinyFit(t, d, "", nil, snap); err != nil {
		t.Fatal(err)
	}
	st := snap.state
	if st.Partial == nil || st.Partial.Samples != 8 || st.BatchInEpoch != 2 {
		t.Fatalf("state after 2 batches of 4: %+v, batch %d", st.Partial, st.BatchInEpoch)
	}
	legacy := *st
	legacy.Partial = nil
	rec := &batchLosses{}
	res, err := tinyFit(t, d, "", &legacy, rec)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 3, 4, 0, 1, 2, 3, 4}; !slices.Equal(rec.numbers, want) {
		t.Errorf("batches %v, want %v", rec.numbers, want)
	}
	// The sums of the first two batches are lost: epoch 1's loss is the
	// mean of its last three batches (4 samples each).
	want := (rec.losses[0]*4 + rec.losses[1]*4 + rec.losses[2]*4) / 12
	if got := res.History[0]["loss"]; math.Float64bits(got) != math.Float64bits(want) {
		t.Errorf("epoch 1 loss %v, want %v", got, want)
	}
	bad := *st
	bad.Partial = &train.PartialEpoch{Samples: 21, Counted: 21}
	if _, err := tinyFit(t, d, "", &bad); err == nil || !strings.Contains(err.Error(), "21 samples into epoch 1, but the training data has 20") {
		t.Errorf("position past the end: %v", err)
	}
}

func TestResumePoint(t *testing.T) {
	for _, tc := range []struct {
		s    train.State
		want string
	}{
		{train.State{Epoch: 2, Step: 40}, "epoch 3, step 40"},
		{train.State{Epoch: 1, Step: 27, BatchInEpoch: 7, Partial: &train.PartialEpoch{Samples: 224, Counted: 224}}, "epoch 2, step 27 (224 samples of epoch 2 done)"},
		{train.State{Epoch: 1, Step: 27, BatchInEpoch: 7}, "epoch 2, step 27 (7 batches of epoch 2 done; the state has no running sums, so epoch 2's loss"},
	} {
		if got := tc.s.ResumePoint(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("ResumePoint() = %q, want %q", got, tc.want)
		}
	}
}
