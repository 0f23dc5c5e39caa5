//go:build cgo

package cuda_test

import (
	"flag"
	"testing"

	"github.com/gotrain/gotrain/backend/conformance"
	"github.com/gotrain/gotrain/backend/cuda/cudaemu"
)

var updateFloor = flag.Bool("update", false, "rewrite testdata/conformance/*.txt with the ONNX tests that pass now on the emulated CUDA backend")

// TestConformance runs every ONNX backend test found on this machine on
// the CUDA backend, on the host emulator: a test whose ops and dtypes the
// CUDA kernels support must pass, and every test of the floor
// (testdata/conformance/SUITE.txt, measured here) must pass. The GPU run
// (scripts/gpu-check.sh) runs the same suites with `gotrain conformance
// --backend cuda` and meets the same floor.
func TestConformance(t *testing.T) {
	b, err := cudaemu.Open(cudaemu.Options{})
	if err != nil {
		t.Skipf("no emulator here: %v", err)
	}
	defer b.Close()
	conformance.Test(t, b, conformance.Options{
		Floor:         "testdata/conformance",
		Update:        *updateFloor,
		UpdateCommand: "make conformance-floor-cuda",
	})
}
