package cuda_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cuda"
)

// TestOpen: in the default build opening "cuda" says how to get a CUDA
// build; in the cuda build without a GPU it says no driver or device was
// found; with a GPU it opens and moves data both ways.
func TestOpen(t *testing.T) {
	b, err := backend.Open("cuda", nil)
	switch {
	case !cuda.Built:
		if err == nil || !strings.Contains(err.Error(), "built without CUDA: build it with `make build-cuda`") {
			t.Fatalf("default build: error %v", err)
		}
		return
	case err != nil:
		if requireGPU() {
			t.Fatalf("GOTRAIN_REQUIRE_GPU=1: %v", err)
		}
		if !errors.Is(err, cuda.ErrNoDevice) || !strings.Contains(err.Error(), "no CUDA driver or device found") {
			t.Fatalf("cuda build without a GPU: error %v, want one saying no CUDA driver or device was found", err)
		}
		t.Logf("as expected without a GPU: %v", err)
		return
	}
	// With a GPU: the transfers are tested in gpu_test.go.
	b.(interface{ Close() error }).Close()
}
