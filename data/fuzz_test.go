package data

import (
	"bufio"
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/tensor"
)

// The loaders' fuzz targets run under a small memory limit: an input may be
// refused, but must never panic, hang or allocate past the limit. Each
// input is read as a file (its size known) and as a stream (size unknown,
// as after gzip), and gzip-compressed inputs go through the same path as
// files do.

// openBytes gives in as openMaybeGzip gives a file: buffered, with its size
// when known is set, or -1.
func openBytes(in []byte, known bool) (*bufio.Reader, int64) {
	size := int64(len(in))
	if !known {
		size = -1
	}
	return bufio.NewReader(bytes.NewReader(in)), size
}

func FuzzReadIDX(f *testing.F) {
	defer tensor.SetMemoryLimit(tensor.SetMemoryLimit(memtest.Limit))
	f.Add(idxBytes([]int{2, 3, 3}, make([]byte, 18)), true)
	f.Add(gz(idxBytes([]int{2, 2}, []byte{1, 2, 3, 4})), true)
	f.Add([]byte{0, 0, 0x0D, 1, 0, 0, 0, 2, 0x3f, 0x80, 0, 0, 0x40, 0, 0, 0}, false) // float32 [1, 2]
	// The reported kinds: a header declaring 2^60 bytes, and a gzip bomb
	// inflating to four times the limit, as its header declares.
	f.Add(idxBytes([]int{1 << 30, 1 << 30}, nil), false)
	f.Add(memtest.Gzip(idxBytes([]int{1 << 12, 1 << 8, 1 << 8}, nil), 256<<20), true)
	f.Fuzz(func(t *testing.T, in []byte, known bool) {
		br, size := openBytes(in, known)
		r, size, err := maybeGzip(br, size, "in")
		if err != nil {
			return
		}
		x, err := readIDX(r, size, "in")
		if err != nil {
			return
		}
		if n, ok := tensor.MulDims(x.Shape()); !ok || n != int64(x.Len()) {
			t.Fatalf("read %v: its shape does not hold its data", x)
		}
	})
}

func FuzzLoadCIFAR(f *testing.F) {
	defer tensor.SetMemoryLimit(tensor.SetMemoryLimit(memtest.Limit))
	rec := make([]byte, 2*(1+cifarPixels))
	rec[1+cifarPixels] = 9
	f.Add(rec, true, false)
	f.Add(gz(rec), true, true)
	f.Add(rec[:100], false, false)
	// The reported kind: a small gzip stream inflating to four times the
	// limit in whole records.
	f.Add(memtest.Gzip(nil, (1+cifarPixels)*87382), true, false)
	f.Fuzz(func(t *testing.T, in []byte, known, hundred bool) {
		br, size := openBytes(in, known)
		r, size, err := maybeGzip(br, size, "in")
		if err != nil {
			return
		}
		c := &cifarReader{labelBytes: 1, classes: 10}
		if hundred {
			c = &cifarReader{labelBytes: 2, labelAt: 1, classes: 100}
		}
		if err := c.read(r, size, "in"); err != nil {
			return
		}
		if len(c.x) != len(c.y)*cifarPixels {
			t.Fatalf("%d labels but %d pixel values", len(c.y), len(c.x))
		}
		for i, v := range c.y {
			if v < 0 || v >= int64(c.classes) {
				t.Fatalf("label %d of record %d is outside the %d classes", v, i, c.classes)
			}
		}
	})
}

func FuzzReadImage(f *testing.F) {
	defer tensor.SetMemoryLimit(tensor.SetMemoryLimit(memtest.Limit))
	img := image.NewNRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	f.Add(b.Bytes(), false)
	f.Add(b.Bytes(), true)
	gray := image.NewGray16(image.Rect(0, 0, 2, 2))
	gray.Set(1, 1, color.Gray16{Y: 60000})
	b.Reset()
	png.Encode(&b, gray)
	f.Add(b.Bytes(), false)
	// The reported kind: a few dozen bytes declaring a 60 GB canvas.
	f.Add(hugePNG(f, 100000, 150000), false)
	f.Add([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"), false)
	f.Fuzz(func(t *testing.T, in []byte, gray bool) {
		s := augment.Shape{C: 3, H: 4, W: 4}
		if gray {
			s.C = 1
		}
		dst := make([]float32, s.Size())
		if err := decodeImageFrom(bytes.NewReader(in), "in", s, false, dst); err != nil {
			return
		}
		// Luma and bilinear weights sum to 1 up to float32 rounding, a few
		// units in the last place of 255.
		for i, v := range dst {
			if !(v >= 0 && v <= 255.001) {
				t.Fatalf("value %d is %v: expected a pixel value in [0, 255]", i, v)
			}
		}
	})
}
