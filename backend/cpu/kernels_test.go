package cpu

import (
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu/gemm"
)

// eachGEMM runs f once per implementation of float32 products this machine
// has: package gemm on each instruction path the CPU supports, and the
// build's BLAS (OpenBLAS or gonum). Kernels must be prepared inside f,
// since a Gemm packs its constant weights for the path active then.
func eachGEMM(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	own, prev := ownGEMM, gemm.Active()
	defer func() {
		ownGEMM = own
		if err := gemm.SetActive(prev); err != nil {
			t.Fatal(err)
		}
	}()
	for _, p := range gemm.Paths {
		if !p.Supported() {
			t.Logf("gemm path %v: not supported by this CPU, not run", p)
			continue
		}
		t.Run("gemm_"+p.String(), func(t *testing.T) {
			ownGEMM = true
			if err := gemm.SetActive(p); err != nil {
				t.Fatal(err)
			}
			f(t)
		})
	}
	t.Run(blasName, func(t *testing.T) {
		ownGEMM = false
		f(t)
	})
}

func TestChooseKernels(t *testing.T) {
	cases := []struct {
		env        string
		best       gemm.Path
		blas, core string
		own        bool
		path       gemm.Path
		warn       string // a substring of the warning ("" none)
	}{
		{"", gemm.AVX512, "openblas", "Prescott", true, gemm.AVX512, ""},
		{"auto", gemm.AVX2, "gonum", "", true, gemm.AVX2, ""},
		// A CPU without AVX2: OpenBLAS where the build has it.
		{"", gemm.Generic, "openblas", "Core2", false, gemm.Generic, ""},
		{"", gemm.Generic, "gonum", "", true, gemm.Generic, ""},
		{"avx2", gemm.AVX512, "openblas", "Haswell", true, gemm.AVX2, ""},
		{"GENERIC", gemm.AVX512, "openblas", "Haswell", true, gemm.Generic, ""},
		{"avx512", gemm.AVX2, "openblas", "Haswell", true, gemm.AVX2, "cannot run the avx512 path"},
		{"sse", gemm.AVX2, "gonum", "", true, gemm.AVX2, "unknown instruction path"},
		{"openblas", gemm.AVX512, "openblas", "SkylakeX", false, gemm.AVX512, ""},
		{"openblas", gemm.AVX512, "gonum", "", true, gemm.AVX512, "no OpenBLAS"},
		// The 5th-generation Xeon case: OpenBLAS falls back to Prescott.
		{"openblas", gemm.AVX512, "openblas", "Prescott", false, gemm.AVX512, "OpenBLAS runs its Prescott kernel on a CPU with avx512"},
	}
	for _, c := range cases {
		own, path, warn := chooseKernels(c.env, c.best, c.blas, c.core)
		if own != c.own || path != c.path || (c.warn == "") != (warn == "") || !strings.Contains(warn, c.warn) {
			t.Errorf("chooseKernels(%q, %v, %s, %s) = %v, %v, %q; want %v, %v, warning with %q",
				c.env, c.best, c.blas, c.core, own, path, warn, c.own, c.path, c.warn)
		}
	}
}

func TestKernelInfo(t *testing.T) {
	k := KernelInfo()
	if k.CPU == "" || k.Path == "" || k.GEMM == "" {
		t.Fatalf("incomplete: %+v", k)
	}
	if ownGEMM && (!strings.HasPrefix(k.GEMM, "gotrain ") || k.Path != gemm.Active().String()) {
		t.Errorf("own kernels in use, but %+v", k)
	}
	if s := k.String(); !strings.Contains(s, k.CPU) || !strings.Contains(s, k.GEMM) {
		t.Errorf("String() = %q", s)
	}
	t.Log(k)
}
