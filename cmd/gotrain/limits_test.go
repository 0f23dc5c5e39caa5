package main

import (
	"path/filepath"
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
