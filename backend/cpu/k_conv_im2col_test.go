package cpu

import (
	"fmt"
	"testing"

	"github.com/gotrain/gotrain/graph"
)

// BenchmarkIm2col times im2col alone on the seed CNN's two convolutions
// (one image).
func BenchmarkIm2col(b *testing.B) {
	for _, c := range []struct{ cin, hw int }{{3, 32}, {32, 15}} {
		b.Run(fmt.Sprintf("c%d_%dx%d", c.cin, c.hw, c.hw), func(b *testing.B) {
			cg := &graph.ConvGeom{Kernel: []int{3, 3}, Strides: []int{1, 1}, Dilations: []int{1, 1}, PadBegin: []int{0, 0}}
			g := newColGeom(c.cin, cg, []int{c.hw, c.hw}, []int{c.hw - 2, c.hw - 2})
			x := make([]float32, g.imageLen)
			col := make([]float32, g.colLen)
			for i := 0; i < b.N; i++ {
				im2col(g, x, col, g.colVol)
			}
		})
	}
}

// TestIm2colDense2D checks the unpadded stride-1 fast path against the
// general im2col, exactly (both only copy), for output widths on both
// sides of each block size and with several images' columns side by side
// (ld > colVol), where a block's overrun could reach a neighbour's columns.
// Cells outside the product are filled with a sentinel that must survive.
func TestIm2colDense2D(t *testing.T) {
	cases := []struct{ c, h, w, kh, kw, images int }{
		{3, 32, 32, 3, 3, 1},
		{32, 15, 15, 3, 3, 4},
		{2, 5, 5, 3, 3, 3},     // OW 3: no block (8 > 2*OW)
		{2, 6, 6, 3, 3, 2},     // OW 4: blocks of 8
		{2, 10, 11, 3, 3, 2},   // OW 9: blocks of 16
		{1, 20, 19, 5, 3, 3},   // OW 17: blocks of 32
		{2, 7, 40, 3, 3, 2},    // OW 38: copy
		{4, 1, 9, 1, 2, 2},     // one output row
		{1, 2, 8, 2, 1, 2},     // one output row, block reads past the run
		{1, 12, 12, 12, 12, 2}, // 1x1 output
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%dx%d_k%dx%d_n%d", c.c, c.h, c.w, c.kh, c.kw, c.images), func(t *testing.T) {
			cg := &graph.ConvGeom{Kernel: []int{c.kh, c.kw}, Strides: []int{1, 1}, Dilations: []int{1, 1}, PadBegin: []int{0, 0}}
			g := newColGeom(c.c, cg, []int{c.h, c.w}, []int{c.h - c.kh + 1, c.w - c.kw + 1})
			if !g.dense2D {
				t.Fatal("geometry not recognised as dense 2-D")
			}
			ld := c.images * g.colVol
			const sentinel = -7
			want, got := make([]float64, g.rows*ld+5), make([]float64, g.rows*ld+5)
			for i := range got {
				want[i], got[i] = sentinel, sentinel
			}
			for b := 0; b < c.images; b++ {
				x := make([]float64, g.imageLen)
				for i := range x {
					x[i] = float64(b*100000 + i + 1)
				}
				im2colDense2D(g, x, got[b*g.colVol:], ld)
				slow := *g
				slow.dense2D = false
				im2col(&slow, x, want[b*g.colVol:], ld)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("col[%d] (row %d, column %d) = %v, want %v", i, i/ld, i%ld, got[i], want[i])
				}
			}
		})
	}
}

// BenchmarkCol2im times col2im alone on the seed CNN's second convolution
// (one image).
func BenchmarkCol2im(b *testing.B) {
	cg := &graph.ConvGeom{Kernel: []int{3, 3}, Strides: []int{1, 1}, Dilations: []int{1, 1}, PadBegin: []int{0, 0}}
	g := newColGeom(32, cg, []int{15, 15}, []int{13, 13})
	x := make([]float32, g.imageLen)
	col := make([]float32, g.colLen)
	for i := 0; i < b.N; i++ {
		col2imLD(g, col, g.colVol, x)
	}
}

// TestCol2imDense2D checks the unpadded stride-1 col2im against the
// general one on the shapes of TestIm2colDense2D. The fast path sums a
// row's taps in another order, so the values are small integers, whose
// float64 sums are exact in any order: the results must match exactly.
func TestCol2imDense2D(t *testing.T) {
	cases := []struct{ c, h, w, kh, kw, images int }{
		{3, 32, 32, 3, 3, 1},
		{32, 15, 15, 3, 3, 4},
		{2, 5, 5, 3, 3, 3},
		{2, 4, 4, 3, 3, 2}, // OW 2: the 3-tap path's smallest width
		{2, 3, 3, 3, 3, 2}, // OW 1: the general per-tap path
		{1, 20, 19, 5, 3, 3},
		{2, 7, 40, 3, 2, 2},
		{4, 1, 9, 1, 2, 2},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%dx%d_k%dx%d_n%d", c.c, c.h, c.w, c.kh, c.kw, c.images), func(t *testing.T) {
			cg := &graph.ConvGeom{Kernel: []int{c.kh, c.kw}, Strides: []int{1, 1}, Dilations: []int{1, 1}, PadBegin: []int{0, 0}}
			g := newColGeom(c.c, cg, []int{c.h, c.w}, []int{c.h - c.kh + 1, c.w - c.kw + 1})
			if !g.dense2D {
				t.Fatal("geometry not recognised as dense 2-D")
			}
			slow := *g
			slow.dense2D = false
			ld := c.images * g.colVol
			col := make([]float64, g.rows*ld)
			for i := range col {
				col[i] = float64(i%13 - 6)
			}
			for b := 0; b < c.images; b++ {
				got, want := make([]float64, g.imageLen), make([]float64, g.imageLen)
				for i := range got {
					got[i], want[i] = float64(i%5), float64(i%5)
				}
				col2imLD(g, col[b*g.colVol:], ld, got)
				col2imLD(&slow, col[b*g.colVol:], ld, want)
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("image %d: x[%d] = %v, want %v", b, i, got[i], want[i])
					}
				}
			}
		})
	}
}
