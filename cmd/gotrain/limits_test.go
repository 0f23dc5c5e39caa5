package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

// Flags that size allocations are checked, and --max-memory sets the limit
// they are checked against.
func TestSizeFlags(t *testing.T) {
	t.Cleanup(func() { tensor.SetMemoryLimit(0) })
	out := filepath.Join(t.TempDir(), "m.onnx")
	gotrain(t, "augment", "--rows", "-3").expect(t, 2, "--rows", "-3 rows: expected at least 1")
	gotrain(t, "models", "export", "cnn", "--classes", "1000000000", "-o", out).
		expect(t, 1, "1000000000 classes", "fc.weight [1000000000 1600]", "over the memory limit")
	gotrain(t, "models", "export", "mlp", "--input", "1x100000x100000", "-o", out).
		expect(t, 1, "input [1 100000 100000]", "over the memory limit")
	gotrain(t, "models", "export", "cnn", "--max-memory", "8 gigs", "-o", out).expect(t, 2, "-max-memory", `"8 gigs"`)
	gotrain(t, "models", "export", "cnn", "--max-memory", "1MiB", "--classes", "1000", "-o", out).
		expect(t, 1, "over the memory limit of 1.0 MiB")
	gotrain(t, "models", "export", "cnn", "--max-memory", "1GiB", "-o", out).expect(t, 0)
}

// --max-memory is a flag of gotrain itself: it may come before the
// command, as cobra's persistent flags do, in either spelling; and each
// run starts from the default, whatever an earlier run in the process set.
func TestMaxMemoryBeforeCommand(t *testing.T) {
	t.Cleanup(func() { tensor.SetMemoryLimit(0) })
	out := filepath.Join(t.TempDir(), "m.onnx")
	for _, args := range [][]string{
		{"--max-memory", "1MiB", "models", "export", "cnn", "--classes", "1000", "-o", out},
		{"--max-memory=1MiB", "models", "export", "cnn", "--classes", "1000", "-o", out},
		{"-max-memory", "1MiB", "models", "export", "cnn", "--classes", "1000", "-o", out},
	} {
		gotrain(t, args...).expect(t, 1, "over the memory limit of 1.0 MiB")
	}
	gotrain(t, "models", "export", "cnn", "--classes", "1000", "-o", out).expect(t, 0)
	r := gotrain(t, "--max-memory", "1GiB", "version")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "go:") {
		t.Errorf("version output:\n%s", r.stdout)
	}
	// The default command still trains when --max-memory comes first.
	gotrain(t, "--max-memory", "1GiB", "--model", "mlp", "--epochs", "0").expect(t, 2, "--epochs 0")
}

// An invalid GOTRAIN_MAX_MEMORY is a usage error before any work, naming
// the variable; --max-memory, which replaces it, makes it harmless.
func TestMaxMemoryEnv(t *testing.T) {
	t.Setenv(tensor.MemoryLimitEnv, "lots")
	t.Cleanup(func() { tensor.SetMemoryLimit(0) })
	out := filepath.Join(t.TempDir(), "m.onnx")
	gotrain(t, "models", "export", "cnn", "-o", out).expect(t, 2, tensor.MemoryLimitEnv, `"lots"`)
	gotrain(t, "models", "export", "cnn", "--max-memory", "1GiB", "-o", out).expect(t, 0)
	// Set but empty is invalid too, and said as early.
	t.Setenv(tensor.MemoryLimitEnv, "")
	gotrain(t, "models", "export", "cnn", "-o", out).expect(t, 2, tensor.MemoryLimitEnv)
}
