package train_test

import (
	"bytes"
	"context"
	"path/filepath"
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

// TestInterruptMidEpochResumes interrupts training in the middle of an
// epoch, resumes from the state the interrupt wrote, and requires the
// final weights to equal an uninterrupted run bit for bit.
func TestInterruptMidEpochResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	trainSet, val := mnistSmall(t, 160, 64)
	path := filepath.Join(t.TempDir(), "state.ckpt")
	run := func(cbs []train.Callback, resume *train.State) *train.Result {
		m, err := models.Build("cnn", models.Options{Input: []int{1, 28, 28}, Classes: 10, Seed: 8, Dropout: 0.1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := train.Fit(context.Background(), m, trainSet, val, train.Config{Epochs: 2, BatchSize: 32, Seed: 2,
			Backend: cpu.New(cpu.Options{}), Optim: optim.Config{Name: "adam", LR: 1e-3}, Callbacks: cbs, Resume: resume,
			ModelHash: checkpoint.ModelHash(m)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	want := run(nil, nil)
	var out bytes.Buffer
	in := &checkpoint.Interrupt{Path: path, Out: &out, ResumeCommand: "gotrain train"}
	stopped := run([]train.Callback{&triggerAt{in: in, after: 7}, in}, nil) // epoch 2, batch 2 of 5
	in.Close()
	if !in.Interrupted() || stopped.Epochs != 1 {
		t.Fatalf("interrupted=%v after %d epochs, want an interrupt during epoch 2", in.Interrupted(), stopped.Epochs)
	}
	if !strings.Contains(out.String(), "--resume "+path) {
		t.Errorf("message %q does not say how to resume", out.String())
	}
	st, err := checkpoint.LoadState(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || st.BatchInEpoch != 2 {
		t.Fatalf("state at epoch %d batch %d, want epoch 1 (0-based) batch 2", st.Epoch, st.BatchInEpoch)
	}
	got := run(nil, st)
	if err := checkpoint.DiffTensors("weights", want.Weights, got.Weights); err != nil {
		t.Fatal(err)
	}
}
