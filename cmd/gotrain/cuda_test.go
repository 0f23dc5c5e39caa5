//go:build cgo

package main

import (
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cuda/cudaemu"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/internal/testenv"
)

// The CLI on the CUDA backend, on emulated devices (cuda-emu, registered
// by this test's import of cudaemu; the gotrain command itself offers
// "cuda" only, which needs a GPU). scripts/gpu-check.sh runs the same
// commands with --backend cuda on a GPU.

func needEmu(t *testing.T) {
	t.Helper()
	if _, err := backend.Open(cudaemu.Name, nil); err != nil {
		testenv.Missing(t, "the emulated CUDA backend: %v", err)
	}
}

// TestTrainCUDA trains the seed CNN for an epoch with Adam and Dropout on
// 600 MNIST images on the emulated CUDA backend and on the CPU, with the
// same flags: the losses agree to float32 rounding and the validation
// accuracy to a sample (a prediction near a tie may go either way when the
// weights differ in their last bits).
func TestTrainCUDA(t *testing.T) {
	needEmu(t)
	if _, err := data.Locate("mnist"); err != nil {
		testenv.Missing(t, "the mnist dataset: %v", err)
	}
	set := testSet{"mnist", []string{"--subset", "600"}, "1x28x28", 0.3}
	dir := t.TempDir()
	model := exportModel(t, dir, "cnn", "--input", set.shape, "--dropout", "0.25")
	hist := map[string][]map[string]float64{}
	for _, be := range []string{"cpu", cudaemu.Name} {
		out := filepath.Join(dir, be)
		r := gotrain(t, append([]string{"train", "--model", model, "--data", set.name, "--backend", be, "--epochs", "1",
			"--batch-size", "64", "--optimizer", "adam", "--lr", "0.003", "--seed", "3", "--val-split", "0.2", "--out", out}, set.subset...)...)
		r.expect(t, 0)
		h, _ := readHistory(t, out)
		for _, row := range h {
			hist[be] = append(hist[be], row)
		}
	}
	cpuH, cudaH := hist["cpu"], hist[cudaemu.Name]
	if len(cpuH) != 1 || len(cudaH) != 1 {
		t.Fatalf("history: cpu %v, cuda %v", cpuH, cudaH)
	}
	t.Logf("CPU: %v", cpuH[0])
	t.Logf("CUDA (emulated): %v", cudaH[0])
	for _, k := range []string{"loss", "val_loss"} {
		if a, b := cpuH[0][k], cudaH[0][k]; !(math.Abs(a-b) <= 1e-3*math.Abs(a)) {
			t.Errorf("%s: CPU %v, CUDA %v", k, a, b)
		}
	}
	if a, b := cpuH[0]["val_accuracy"], cudaH[0]["val_accuracy"]; !(math.Abs(a-b) <= 1.0/120) {
		t.Errorf("val_accuracy: CPU %v, CUDA %v", a, b)
	}
	if acc := cudaH[0]["val_accuracy"]; acc < set.minAcc {
		t.Errorf("val_accuracy on CUDA %v, want at least %v", acc, set.minAcc)
	}
}

// TestConformanceCUDA runs a suite with --backend and --floor: every test
// of the CUDA backend's floor passes, and the per-suite line is printed.
func TestConformanceCUDA(t *testing.T) {
	needEmu(t)
	dir := testenv.DebianONNX(t, "pytorch-operator")
	r := gotrain(t, "conformance", "--backend", cudaemu.Name, "--data", dir, "--floor", "../../backend/cuda/testdata/conformance")
	r.expect(t, 0)
	m := regexp.MustCompile(`(?m)^suite pytorch-operator: (\d+) passed, 0 failed, (\d+) unsupported`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no suite line:\n%s", r.stdout)
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("nothing passed:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^floor \S+: 0 tests below it$`).MatchString(r.stdout) {
		t.Errorf("no floor line:\n%s", r.stdout)
	}
}
