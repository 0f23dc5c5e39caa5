package augment

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"

	"github.com/gotrain/gotrain/tensor"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

// GridOptions shape the picture that Grid draws.
type GridOptions struct {
	Rows     int // originals shown, one per row (default 8, at most the images given)
	Variants int // augmented copies beside each original (default 7)
	Scale    int // each pixel is drawn as Scale x Scale (default: cells of at least 64 pixels)
	Epoch    int // copy v of a row is augmented as in epoch Epoch+v
}

// Grid draws the first Rows of n images (n*a.Shape().Size() values in x),
// each followed by Variants augmented copies; image i is augmented as
// sample i. One channel is drawn in gray, three or more as RGB (the first
// three), two as the first in gray. Values are mapped to gray levels
// linearly over the row's range, so brightness and channel shifts remain
// visible; when the Config rescales or standardises, the augmented images
// are in other units and each is mapped over its own range.
func Grid(x []float32, n int, a *Augmenter, o GridOptions) (*image.RGBA, error) {
	s := a.Shape()
	sz := s.Size()
	if n <= 0 || len(x)/sz < n {
		return nil, fmt.Errorf("augment: Grid got %d values for %d images of %v", len(x), n, s)
	}
	if o.Rows < 0 || o.Variants < 0 || o.Scale < 0 {
		return nil, fmt.Errorf("augment: grid of %d rows, %d variants at scale %d: expected counts >= 0 (0 for the defaults)", o.Rows, o.Variants, o.Scale)
	}
	if o.Rows == 0 {
		o.Rows = 8
	}
	o.Rows = min(o.Rows, n)
	if o.Variants == 0 {
		o.Variants = 7
	}
	if o.Scale == 0 {
		o.Scale = max(1, (64+max(s.H, s.W)-1)/max(s.H, s.W))
	}
	const gap, sep = 2, 8 // pixels between cells; between the originals and the copies
	// The picture's size, checked against overflow and the memory limit
	// before it is allocated: cells of H*Scale x W*Scale pixels.
	cw, okW := tensor.MulDims([]int{s.W, o.Scale})
	ch, okH := tensor.MulDims([]int{s.H, o.Scale})
	width, okX := tensor.MulDims([]int64{int64(o.Variants), cw + gap})
	height, okY := tensor.MulDims([]int64{int64(o.Rows), ch + gap})
	if !okW || !okH || !okX || !okY || width > math.MaxInt32 || height > math.MaxInt32 || cw > math.MaxInt32 {
		return nil, fmt.Errorf("augment: a grid of %d rows and %d variants of %v images at scale %d is too large to draw", o.Rows, o.Variants, s, o.Scale)
	}
	width, height = width+gap+cw+sep, height+gap
	if width > math.MaxInt32 || height > math.MaxInt32 {
		return nil, fmt.Errorf("augment: a grid of %d rows and %d variants of %v images at scale %d is too large to draw", o.Rows, o.Variants, s, o.Scale)
	}
	if err := tensor.CheckAlloc(fmt.Sprintf("augment: grid picture of %dx%d pixels", width, height), width*height, 4); err != nil {
		return nil, err
	}
	if err := tensor.CheckShape(fmt.Sprintf("augment: %d augmented copies of %v", o.Variants, s), tensor.Float32, []int{o.Variants, sz}); err != nil {
		return nil, err
	}
	img := image.NewRGBA(image.Rect(0, 0, int(width), int(height)))
	bg := color.RGBA{40, 40, 48, 255}
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = bg.R, bg.G, bg.B, bg.A
	}
	cfg := a.Config()
	sameUnits := (cfg.Rescale == 0 || cfg.Rescale == 1) && !cfg.SamplewiseCenter && !cfg.SamplewiseStdNormalization && !cfg.NeedsFit()
	aug := make([][]float32, o.Variants)
	for v := range aug {
		aug[v] = make([]float32, sz)
	}
	for r := range o.Rows {
		src := x[r*sz : (r+1)*sz]
		for v := range aug {
			if err := a.Apply(aug[v], src, o.Epoch+v, r); err != nil {
				return nil, err
			}
		}
		lo, hi := valueRange(src)
		if sameUnits {
			for _, t := range aug {
				l, h := valueRange(t)
				lo, hi = math.Min(lo, l), math.Max(hi, h)
			}
		}
		y := gap + r*int(ch+gap)
		drawCell(img, gap, y, src, s, o.Scale, lo, hi)
		for v, t := range aug {
			l, h := lo, hi
			if !sameUnits {
				l, h = valueRange(t)
			}
			drawCell(img, gap+int(cw)+sep+v*int(cw+gap), y, t, s, o.Scale, l, h)
		}
	}
	return img, nil
}

func valueRange(x []float32) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range x {
		f := float64(v)
		if f < lo {
			lo = f
		}
		if f > hi {
			hi = f
		}
	}
	return lo, hi
}

func drawCell(img *image.RGBA, x0, y0 int, t []float32, s Shape, scale int, lo, hi float64) {
	level := func(v float32) uint8 {
		if !(hi > lo) {
			return 128
		}
		f := (float64(v) - lo) / (hi - lo) * 255
		return uint8(math.Round(math.Min(math.Max(f, 0), 255)))
	}
	at := func(ch, r, c int) float32 {
		if s.ChannelsLast {
			return t[(r*s.W+c)*s.C+ch]
		}
		return t[(ch*s.H+r)*s.W+c]
	}
	for r := range s.H {
		for c := range s.W {
			var px color.RGBA
			if s.C >= 3 {
				px = color.RGBA{level(at(0, r, c)), level(at(1, r, c)), level(at(2, r, c)), 255}
			} else {
				g := level(at(0, r, c))
				px = color.RGBA{g, g, g, 255}
			}
			for dy := range scale {
				for dx := range scale {
					img.SetRGBA(x0+c*scale+dx, y0+r*scale+dy, px)
				}
			}
		}
	}
}

// CheckRows checks a count of grid rows given by a user: at least one.
func CheckRows(rows int) error {
	if rows < 1 {
		return fmt.Errorf("%d rows: expected at least 1 original image to show", rows)
	}
	return nil
}

// WriteGrid draws Grid and writes it to path as a PNG, atomically: the
// file appears complete or not at all.
func WriteGrid(path string, x []float32, n int, a *Augmenter, o GridOptions) error {
	img, err := Grid(x, n, a, o)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("augment: encoding %s: %w", path, err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err }); err != nil {
		return fmt.Errorf("augment: %w", err)
	}
	return nil
}
