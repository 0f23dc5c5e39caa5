//go:build cgo

package cuda_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/backend/cuda/internal/cudalib"
)

// TestPTX compiles every kernel module with NVRTC (which runs without a
// GPU) for the oldest and newest architectures the backend targets, and
// checks that every entry point is in the PTX. It skips when no NVRTC is
// found, unless GOTRAIN_REQUIRE_NVRTC=1 (make test-cuda-ptx sets it).
func TestPTX(t *testing.T) {
	nv, err := cudalib.LoadNVRTC()
	if err != nil {
		if os.Getenv("GOTRAIN_REQUIRE_NVRTC") == "1" || requireGPU() {
			t.Fatal(err)
		}
		t.Skipf("no NVRTC (make test-cuda-ptx fetches one): %v", err)
	}
	t.Logf("NVRTC %d.%d from %s", nv.Major, nv.Minor, nv.Path)
	funcs := 0
	for _, arch := range []string{"compute_75", "compute_90"} {
		for _, m := range cuda.Modules() {
			ptx, err := nv.Compile(m.Source(), m.Name+".cu", cuda.PTXOptions(arch))
			if err != nil {
				t.Fatalf("module %s for %s: %v", m.Name, arch, err)
			}
			s := string(ptx)
			if !strings.Contains(s, ".target sm_"+strings.TrimPrefix(arch, "compute_")) {
				t.Errorf("module %s: PTX does not target %s", m.Name, arch)
			}
			for _, f := range m.Funcs() {
				if !strings.Contains(s, fmt.Sprintf(".entry %s(", f.Name)) {
					t.Errorf("module %s: no entry %s in the PTX for %s", m.Name, f.Name, arch)
				}
				funcs++
			}
		}
	}
	if funcs != 2*cuda.NumFuncs() {
		t.Errorf("compiled %d entry points, want %d", funcs, 2*cuda.NumFuncs())
	}
	t.Logf("%d modules, %d entry points each for compute_75 and compute_90", len(cuda.Modules()), cuda.NumFuncs())
}

// TestLoadCUBLAS binds cuBLAS's entry points when a cuBLAS is found (make
// test-cuda-ptx fetches Debian's 11.x with CUDA_DEPS=--cublas; the GPU
// machine has 13.x in its Python wheels). Creating a handle needs a GPU, so
// this checks the loader only.
func TestLoadCUBLAS(t *testing.T) {
	lib, err := cudalib.LoadCUBLAS()
	if err != nil {
		if os.Getenv("GOTRAIN_REQUIRE_CUBLAS") == "1" || requireGPU() {
			t.Fatal(err)
		}
		t.Skipf("no cuBLAS: %v", err)
	}
	t.Logf("cuBLAS from %s: every entry point bound", lib.Path)
}
