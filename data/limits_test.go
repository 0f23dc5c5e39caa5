package data

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/internal/memtest"
)

// Inputs that declare far more data than they hold, or inflate to far
// more than the memory limit, are refused with an error naming the file,
// before the allocation they ask for is made (memtest measures it).

// hugePNG returns a valid PNG of 1x1 pixels whose header is rewritten to
// declare h x w: a few dozen bytes declaring a canvas of any size.
func hugePNG(t testing.TB, h, w uint32) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 1, 1))
	img.Set(0, 0, color.RGBA{200, 100, 50, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	p := b.Bytes()
	// Signature (8), IHDR length (4), "IHDR" (4), width, height, ...,
	// then the CRC of type and data (13 bytes) at 29.
	binary.BigEndian.PutUint32(p[16:], w)
	binary.BigEndian.PutUint32(p[20:], h)
	binary.BigEndian.PutUint32(p[29:], crc32.ChecksumIEEE(p[12:29]))
	return p
}

func TestHugeCanvas(t *testing.T) {
	dir := t.TempDir()
	// Under 100 bytes declaring 100000 x 150000 pixels: 60 GB as RGBA
	// before it is resized.
	huge := write(t, dir, "cls/huge.png", hugePNG(t, 100000, 150000))
	t.Run("ReadImage", func(t *testing.T) {
		memtest.Refused(t, func() error {
			_, err := ReadImage(huge, FolderOptions{Height: 28, Width: 28})
			return err
		}, huge, "image header declares 100000x150000 pixels")
	})
	t.Run("a folder sized by its first image", func(t *testing.T) {
		memtest.Refused(t, func() error {
			_, err := OpenImageFolder(dir, FolderOptions{})
			return err
		}, dir)
	})
	t.Run("a folder that resizes", func(t *testing.T) {
		small := hugePNG(t, 1, 1)
		write(t, dir, "cls/a.png", small) // sorts before huge.png
		f, err := OpenImageFolder(dir, FolderOptions{Height: 8, Width: 8})
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]float32, 3*8*8)
		if err := f.Read(0, dst); err != nil {
			t.Fatalf("the 1x1 image: %v", err)
		}
		memtest.Refused(t, func() error { return f.Read(1, dst) }, huge)
		memtest.Refused(t, func() error { _, err := f.Load(); return err }, huge)
	})
}

func TestIDXHugeDeclarations(t *testing.T) {
	dir := t.TempDir()
	t.Run("gzip bomb", func(t *testing.T) {
		// 1.3 MB of gzip inflating to the 1 GiB its header declares.
		hdr := idxBytes([]int{1 << 14, 1 << 8, 1 << 8}, nil)
		p := write(t, dir, "bomb.gz", memtest.Gzip(hdr, 1<<30))
		memtest.Refused(t, func() error { _, err := ReadIDX(p); return err })
		memtest.Refused(t, func() error { _, err := LoadIDX(p, p, 0); return err }, p)
	})
	t.Run("header against the file size", func(t *testing.T) {
		p := write(t, dir, "lies.idx", idxBytes([]int{1 << 20, 1 << 20}, make([]byte, 64)))
		memtest.Refused(t, func() error { _, err := ReadIDX(p); return err }, p, "the file holds 64 bytes")
	})
	t.Run("float32 copy of a uint8 file", func(t *testing.T) {
		// 32 MiB of bytes fit under the limit; as float32 they do not.
		hdr := idxBytes([]int{1 << 15, 32, 32}, nil)
		p := write(t, dir, "x.gz", memtest.Gzip(hdr, 32<<20))
		y := write(t, dir, "y.idx", idxBytes([]int{1 << 15}, make([]byte, 1<<15)))
		memtest.Refused(t, func() error { _, err := LoadIDX(p, y, 0); return err }, p, "as float32")
	})
}

func TestCIFARHuge(t *testing.T) {
	dir := t.TempDir()
	t.Run("gzip bomb", func(t *testing.T) {
		// 1.3 MB inflating to 1 GiB of records.
		p := write(t, dir, "data_batch_1.bin", memtest.Gzip(nil, 3073*349525))
		memtest.Refused(t, func() error { _, err := LoadCIFAR10(p); return err }, p)
	})
	t.Run("sparse file", func(t *testing.T) {
		p := filepath.Join(dir, "test_batch.bin")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(3073 * 349525); err != nil {
			t.Skipf("cannot make a sparse file: %v", err)
		}
		f.Close()
		memtest.Refused(t, func() error { _, err := LoadCIFAR10(p); return err }, p, "349525 CIFAR records")
	})
}

func TestLoaderHugeBatch(t *testing.T) {
	d := synth(t, 4, 3, 32, 32, 2)
	l := &Loader{Source: d, BatchSize: 1 << 30}
	memtest.Refused(t, func() error { _, err := l.Epoch(t.Context(), 0, 0); return err }, "batch of 1073741824 samples")
}

func TestHugeInferredClassCount(t *testing.T) {
	dir := t.TempDir()
	x := write(t, dir, "x.idx", idxBytes([]int{2, 2, 2}, make([]byte, 8)))
	// Labels as int32 IDX: one of them is 2^31-1, so 2^31 classes.
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff})
	y := write(t, dir, "y.idx", b.Bytes())
	memtest.Refused(t, func() error { _, err := LoadIDX(x, y, 0); return err }, y, "2147483648 classes")
}
