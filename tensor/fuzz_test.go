package tensor_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/tensor"
)

// FuzzReadNPZ feeds arbitrary archives to ReadNPZ under a small memory
// limit: it may refuse them but must never panic or allocate past the
// limit, and what it reads must write and read back the same.
func FuzzReadNPZ(f *testing.F) {
	defer tensor.SetMemoryLimit(tensor.SetMemoryLimit(memtest.Limit))
	dir := f.TempDir()
	good := filepath.Join(dir, "good.npz")
	if err := tensor.WriteNPZ(good, map[string]*tensor.Tensor{
		"x": tensor.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"y": tensor.MustFromSlice([]int64{0, 1}, 2),
	}); err != nil {
		f.Fatal(err)
	}
	if b, err := os.ReadFile(good); err == nil {
		f.Add(b)
	}
	// The reported crasher, scaled down: a small member that inflates to
	// four times the limit, as its NPY header declares.
	hdr := npyHeader("<f4", "(67108864,)")
	stream, crc := memtest.DeflatedZeros(hdr, 256<<20)
	f.Add(memtest.Zip("x.npy", stream, uint64(len(hdr))+256<<20, crc))
	f.Add(memtest.Zip("x.npy", stream, 1000, crc))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := tensor.ReadNPZFrom(bytes.NewReader(in), int64(len(in)), "in.npz")
		if err != nil {
			return
		}
		// Each array must write and read back the same (in memory: the
		// atomic file writes of WriteNPZ sync to disk, slow for fuzzing).
		for k, x := range m {
			var b bytes.Buffer
			if err := tensor.WriteNPY(&b, x); err != nil {
				t.Fatalf("read %q as %v but cannot write it: %v", k, x, err)
			}
			y, err := tensor.ReadNPY(&b)
			if err != nil || y.DType() != x.DType() || !tensor.SameShape(y.Shape(), x.Shape()) {
				t.Fatalf("rewrite of %q (%v): %v, %v", k, x, y, err)
			}
		}
	})
}
