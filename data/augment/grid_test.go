package augment

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteGrid(t *testing.T) {
	s := Shape{C: 1, H: 4, W: 4}
	n := 3
	x := make([]float32, n*s.Size())
	for i := range n {
		for p := range 16 {
			x[i*16+p] = float32(p * 17) // 0..255 ramp
		}
	}
	a := mustNew(t, Config{HorizontalFlip: true, RotationRange: 10}, s)
	path := filepath.Join(t.TempDir(), "grid.png")
	o := GridOptions{Rows: 2, Variants: 3, Scale: 2}
	if err := WriteGrid(path, x, n, a, o); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// gap 2 + cell 8 + separator 8 + 3*(8+2) wide; gap 2 + 2*(8+2) high
	if b := img.Bounds(); b.Dx() != 2+8+8+3*10 || b.Dy() != 2+2*10 {
		t.Fatalf("grid is %v", b)
	}
	// The original's pixel (r, c) = (1, 2) has value 6*17 = 102; the row's range
	// is [0, 255] (augmented values stay within it), so it is drawn as 102.
	r, g, bl, _ := img.At(2+2*2, 2+1*2).RGBA()
	if r>>8 != 102 || g>>8 != 102 || bl>>8 != 102 {
		t.Errorf("original pixel drawn as %d %d %d, want 102", r>>8, g>>8, bl>>8)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the grid: %v", entries)
	}
	if err := WriteGrid(filepath.Join(t.TempDir(), "no", "such", "dir", "g.png"), x, n, a, o); err == nil {
		t.Error("WriteGrid into a missing directory succeeded")
	}
	if _, err := Grid(x[:10], 1, a, o); err == nil {
		t.Error("Grid accepted a short image")
	}
}
