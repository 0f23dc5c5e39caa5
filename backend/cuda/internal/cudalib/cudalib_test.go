//go:build cgo

package cudalib

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCandidates: the folders named in GOTRAIN_CUDA_LIB_PATH come first, a
// site-packages folder is searched in the wheels' layout, a file is taken
// as it is, and the bare SONAMEs (newest first) follow.
func TestCandidates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "custom", "libcublas.so.12.9")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvPath, file+":"+dir)
	c := candidates(cublasNames, cublasWheel, "libcublas")
	idx := func(s string) int {
		for i, v := range c {
			if v == s {
				return i
			}
		}
		t.Fatalf("%s is not a candidate: %v", s, c[:min(len(c), 20)])
		return -1
	}
	a, b := idx(file), idx(filepath.Join(dir, "libcublas.so.13"))
	w := idx(filepath.Join(dir, "nvidia/cublas/lib/libcublas.so.12"))
	s13, s11 := idx("libcublas.so.13"), idx("libcublas.so.11")
	if !(a < b && b < w && w < s13 && s13 < s11) {
		t.Fatalf("order: file %d, folder %d, wheel %d, SONAME 13 %d, SONAME 11 %d", a, b, w, s13, s11)
	}
	// A candidate that is not a library is passed over with its reason.
	_, _, err := open("cuBLAS", []string{file}, "")
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), EnvPath) {
		t.Fatalf("error %v, want one naming the file that failed and %s", err, EnvPath)
	}
}
