package augment

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/internal/memtest"
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

func TestGridBounds(t *testing.T) {
	for _, rows := range []int{0, -3} {
		if err := CheckRows(rows); err == nil {
			t.Errorf("CheckRows(%d): no error", rows)
		}
	}
	if err := CheckRows(1); err != nil {
		t.Errorf("CheckRows(1): %v", err)
	}
	s := Shape{C: 1, H: 4, W: 4}
	x := make([]float32, 2*s.Size())
	a := mustNew(t, Config{HorizontalFlip: true}, s)
	cases := []struct {
		name string
		n    int
		o    GridOptions
		want string
	}{
		{"negative rows", 2, GridOptions{Rows: -3}, "expected counts >= 0"},
		{"more images than values", 3, GridOptions{}, "got 32 values for 3 images"},
		{"a picture too large to address", 2, GridOptions{Scale: 1 << 40}, "too large to draw"},
	}
	for _, c := range cases {
		_, err := Grid(x, c.n, a, c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error mentioning %q", c.name, err, c.want)
		}
	}
	// 7 copies and the original at scale 1024: a picture of 32792x8198
	// pixels, 1 GB.
	memtest.Refused(t, func() error { _, err := Grid(x, 2, a, GridOptions{Scale: 1 << 10}); return err }, "grid picture")
}
