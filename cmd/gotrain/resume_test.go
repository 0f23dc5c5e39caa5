package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// trainArgs are the settings of the resume tests: a small MLP on the test
// dataset, one thread.
func trainArgs(t *testing.T, out string, extra ...string) []string {
	set := dataset(t)
	args := append([]string{"train", "--model", "mlp", "--data", set.name, "--batch-size", "64", "--lr", "0.003", "--seed", "7",
		"--threads", "1", "--out", out}, set.subset...)
	return append(args, extra...)
}

// A resumed run lists only the files it wrote: resumed into a new folder
// with no epoch left to train, it writes no best model and no history, and
// says where the earlier ones are.
func TestResumeListsWhatItWrote(t *testing.T) {
	dir := t.TempDir()
	run1, run2 := filepath.Join(dir, "run1"), filepath.Join(dir, "run2")
	gotrain(t, trainArgs(t, run1, "--epochs", "2")...).expect(t, 0)
	r := gotrain(t, trainArgs(t, run2, "--epochs", "2", "--resume", filepath.Join(run1, "state.ckpt"))...)
	r.expect(t, 0)
	_, listing, _ := strings.Cut(r.stdout, "\ndone in ")
	for _, name := range []string{"best_model.onnx", "history.csv"} {
		if _, err := os.Stat(filepath.Join(run2, name)); err == nil {
			t.Errorf("%s was written though no epoch ran", name)
		}
		if strings.Contains(listing, filepath.Join(run2, name)) {
			t.Errorf("the listing names %s, which this run did not write:\n%s", filepath.Join(run2, name), r.stdout)
		}
	}
	for _, want := range []string{
		"best model: not written: no epoch improved on the best since the resume; that one (val_loss ",
		"is " + filepath.Join(run1, "best_model.onnx") + "\n",
		"history: not written",
		"last model: " + filepath.Join(run2, "last_model.onnx"),
		"earlier files (before the resume): " + run1,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output does not say %q:\n%s", want, r.stdout)
		}
	}
}
