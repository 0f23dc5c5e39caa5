package train_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/train"
)

// triggerAt fires an Interrupt after a given global batch, as a SIGINT
// arriving during that batch would.
type triggerAt struct {
	train.NopCallback
	in    *checkpoint.Interrupt
	after int
	seen  int
}

func (c *triggerAt) OnBatchEnd(*train.Context, int, train.Logs) error {
	c.seen++
	if c.seen == c.after {
		c.in.Trigger()
	}
	return nil
}

// batchLosses records the loss of every batch and the batch numbers.
type batchLosses struct {
	train.NopCallback
	losses  []float64
	numbers []int
}

func (c *batchLosses) OnBatchEnd(_ *train.Context, batch int, logs train.Logs) error {
	c.losses = append(c.losses, logs["loss"])
	c.numbers = append(c.numbers, batch)
	return nil
}

// sameLogs compares two histories bit for bit.
func sameLogs(a, b []train.Logs) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d vs %d epochs", len(a), len(b))
	}
	for e := range a {
		if len(a[e]) != len(b[e]) {
			return fmt.Errorf("epoch %d: %v vs %v", e+1, a[e], b[e])
		}
		for k, v := range a[e] {
			if w, ok := b[e][k]; !ok || math.Float64bits(v) != math.Float64bits(w) {
				return fmt.Errorf("epoch %d %s: %v vs %v", e+1, k, v, w)
			}
		}
	}
	return nil
}

// TestInterruptMidEpochResumes interrupts training in the middle of an
// epoch (and after an epoch's last batch, before its end), resumes from the
// state the interrupt wrote, and requires the final weights and every
// history row, the interrupted epoch's included, to equal an uninterrupted
// run's bit for bit. Resumed with another batch size, the run trains
// exactly the samples the epoch had left, and the epoch's loss averages
// all of its samples.
func TestInterruptMidEpochResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	trainSet, val := mnistSmall(t, 160, 64)
	run := func(cbs []train.Callback, resume *train.State, bs int) *train.Result {
		m, err := models.Build("cnn", models.Options{Input: []int{1, 28, 28}, Classes: 10, Seed: 8, Dropout: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := train.Fit(context.Background(), m, trainSet, val, train.Config{Epochs: 2, BatchSize: bs, Seed: 2,
			Backend: cpu.New(cpu.Options{}), Optim: optim.Config{Name: "adam", LR: 1e-3}, Callbacks: cbs, Resume: resume,
			ModelHash: checkpoint.ModelHash(m)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := run(nil, nil, 32)
	cases := []struct {
		after      int // global batch after which the signal arrives
		epoch      int // the state's epoch (0-based) and batches done in it
		batch      int
		resumeBS   int
		resumeRuns []int // batch numbers the resumed run runs
	}{
		{7, 1, 2, 32, []int{2, 3, 4}},       // epoch 2, batch 2 of 5
		{5, 0, 5, 32, []int{0, 1, 2, 3, 4}}, // after epoch 1's last batch, before its end; then epoch 2
		{7, 1, 2, 16, []int{2, 3, 4, 5, 6, 7}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("after%d-bs%d", tc.after, tc.resumeBS), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.ckpt")
			var out bytes.Buffer
			in := &checkpoint.Interrupt{Path: path, Out: &out, ResumeCommand: "gotrain train"}
			stopped := run([]train.Callback{&triggerAt{in: in, after: tc.after}, in}, nil, 32)
			in.Close()
			if !in.Interrupted() || stopped.Epochs != tc.epoch && stopped.Epochs != tc.epoch+1 {
				t.Fatalf("interrupted=%v after %d epochs, want an interrupt during epoch %d", in.Interrupted(), stopped.Epochs, tc.epoch+1)
			}
			if !strings.Contains(out.String(), "--resume "+path) {
				t.Errorf("message %q does not say how to resume", out.String())
			}
			st, err := checkpoint.LoadState(path, "")
			if err != nil {
				t.Fatal(err)
			}
			if st.Epoch != tc.epoch || st.BatchInEpoch != tc.batch || st.Partial == nil || st.Partial.Samples != int64(32*tc.batch) {
				t.Fatalf("state at epoch %d batch %d (%+v), want epoch %d (0-based) batch %d", st.Epoch, st.BatchInEpoch, st.Partial, tc.epoch, tc.batch)
			}
			rec := &batchLosses{}
			got := run([]train.Callback{rec}, st, tc.resumeBS)
			if !slices.Equal(rec.numbers, tc.resumeRuns) {
				t.Fatalf("the resumed run ran batches %v, want %v", rec.numbers, tc.resumeRuns)
			}
			if tc.resumeBS == 32 {
				if err := checkpoint.DiffTensors("weights", want.Weights, got.Weights); err != nil {
					t.Fatal(err)
				}
				if err := sameLogs(want.History, got.History); err != nil {
					t.Fatalf("history of the resumed run: %v", err)
				}
				return
			}
			// Another batch size: 160-64 samples left in batches of 16.
			sum := st.Partial.Loss
			for _, l := range rec.losses {
				sum += l * float64(tc.resumeBS)
			}
			if l := got.History[tc.epoch]["loss"]; math.Float64bits(l) != math.Float64bits(sum/160) {
				t.Errorf("the resumed epoch's loss is %v, want the mean over its 160 samples %v", l, sum/160)
			}
			if err := sameLogs(want.History[:tc.epoch], got.History[:tc.epoch]); err != nil {
				t.Errorf("history before the resume: %v", err)
			}
		})
	}
}
