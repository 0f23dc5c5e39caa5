package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

// idxBytes encodes a uint8 IDX file with the given dims and data.
func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func write(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadIDX(t *testing.T) {
	dir := t.TempDir()
	pix := make([]byte, 3*2*4)
	for i := range pix {
		pix[i] = byte(10 * i)
	}
	labels := []byte{2, 0, 1}
	for _, zip := range []bool{false, true} {
		enc := func(b []byte) []byte {
			if zip {
				return gz(b)
			}
			return b
		}
		x := write(t, dir, "x"+map[bool]string{true: ".gz"}[zip], enc(idxBytes([]int{3, 2, 4}, pix)))
		y := write(t, dir, "y"+map[bool]string{true: ".gz"}[zip], enc(idxBytes([]int{3}, labels)))
		d, err := LoadIDX(x, y, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Classes != 3 || d.Len() != 3 || d.SampleShape().C != 1 || d.SampleShape().H != 2 || d.SampleShape().W != 4 {
			t.Fatalf("gzip=%v: got %d samples of %v, %d classes", zip, d.Len(), d.SampleShape(), d.Classes)
		}
		if got := d.Sample(1)[3]; got != 10*(8+3) {
			t.Errorf("sample 1 pixel 3 = %v, want %v", got, 10*(8+3))
		}
		if d.Label(0) != 2 {
			t.Errorf("label 0 = %d, want 2", d.Label(0))
		}
	}
}

func TestIDXErrors(t *testing.T) {
	dir := t.TempDir()
	good := idxBytes([]int{2, 3, 3}, make([]byte, 18))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated.idx", good[:len(good)-5], "holds 13 bytes"},
		{"truncated.gz", gz(good[:len(good)-5]), "truncated"},
		{"lies.idx", idxBytes([]int{60000, 28, 28}, make([]byte, 18)), "60000"},
		{"lies.gz", gz(idxBytes([]int{60000, 28, 28}, make([]byte, 18))), "truncated"},
		{"extra.gz", gz(append(append([]byte{}, good...), 1, 2)), "more data follows"},
		{"huge.gz", gz(idxBytes([]int{1 << 30, 1 << 30}, nil)), "over the memory limit"},
		{"magic.idx", []byte("P5\n28 28\n255\n"), "magic"},
		{"type.idx", []byte{0, 0, 0x07, 1, 0, 0, 0, 1, 0}, "element type 0x07"},
		{"short", []byte{0, 0}, "too short"},
		{"hdr.idx", []byte{0, 0, 8, 3, 0, 0}, "truncated IDX header"},
	}
	for _, tc := range cases {
		p := write(t, dir, tc.name, tc.data)
		_, err := ReadIDX(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v, want an error naming the file and %q", tc.name, err, tc.want)
		}
	}
	x := write(t, dir, "x", good)
	y := write(t, dir, "y", idxBytes([]int{3}, []byte{0, 1, 2}))
	if _, err := LoadIDX(x, y, 0); err == nil || !strings.Contains(err.Error(), "3 labels") {
		t.Errorf("label count mismatch: %v", err)
	}
	y2 := write(t, dir, "y2", idxBytes([]int{2}, []byte{0, 12}))
	if _, err := LoadIDX(x, y2, 10); err == nil || !strings.Contains(err.Error(), "label 12") || !strings.Contains(err.Error(), y2) {
		t.Errorf("label outside the classes: %v", err)
	}
}

func TestBuiltinMNIST(t *testing.T) {
	train, test, err := Builtin("mnist")
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 60000 || test.Len() != 10000 || train.SampleShape().H != 28 || train.Classes != 10 {
		t.Fatalf("mnist: %d train, %d test of %v", train.Len(), test.Len(), train.SampleShape())
	}
	// The first training digit of MNIST is a 5, the first test digit a 7.
	if train.Label(0) != 5 || test.Label(0) != 7 {
		t.Errorf("first labels %d, %d; want 5, 7", train.Label(0), test.Label(0))
	}
	lo, hi := float32(1e9), float32(-1e9)
	for _, v := range train.Sample(0) {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 255 || train.Raw != RawBytes || test.Raw != RawBytes {
		t.Errorf("pixel range [%v, %v], raw %v, %v; want [0, 255] of 8-bit pixels", lo, hi, train.Raw, test.Raw)
	}
}

func TestBuiltinOthers(t *testing.T) {
	for _, tc := range []struct {
		name string
		n, h int
		raw  RawKind
		test int
	}{
		{"fashion-mnist", 60000, 28, RawBytes, 10000},
		{"digits", 1797, 8, RawDigits, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Locate(tc.name); err != nil {
				testenv.Missing(t, "%v", err)
			}
			train, test, err := Builtin(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if train.Len() != tc.n || train.SampleShape().H != tc.h || (test == nil) != (tc.test == 0) || train.Raw != tc.raw {
				t.Fatalf("%d samples of %v (%v), test %v", train.Len(), train.SampleShape(), train.Raw, test)
			}
			counts := make([]int, 10)
			for _, y := range train.Labels() {
				counts[y]++
			}
			for c, k := range counts {
				if k < tc.n/20 {
					t.Errorf("class %d has %d samples", c, k)
				}
			}
		})
	}
}

func TestLocateMissing(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(DataDirEnv, empty)
	// the override wins when it holds the files
	src, err := Locate("digits")
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	b, _ := os.ReadFile(filepath.Join(src, "digits.csv.gz"))
	write(t, empty, "digits/digits.csv.gz", b)
	if got, err := Locate("digits"); err != nil || got != filepath.Join(empty, "digits") {
		t.Errorf("Locate with %s set: %q, %v", DataDirEnv, got, err)
	}
	if _, err := Locate("cifar-7"); err == nil || !strings.Contains(err.Error(), "mnist") {
		t.Errorf("unknown name: %v", err)
	}
	b2 := builtins["fashion-mnist"]
	b2.dirs = func() []string { return []string{filepath.Join(empty, "nowhere")} }
	builtins["test-missing"] = b2
	defer delete(builtins, "test-missing")
	if _, err := Locate("test-missing"); err == nil || !strings.Contains(err.Error(), "apt-get install dataset-fashion-mnist") {
		t.Errorf("missing dataset: %v, want the install command", err)
	}
}

func TestCIFAR(t *testing.T) {
	dir := t.TempDir()
	var rec []byte
	for i := range 3 {
		rec = append(rec, byte(i*3)) // labels 0, 3, 6
		for p := range 3072 {
			rec = append(rec, byte((p/1024)*50+i)) // plane value 50*channel + record
		}
	}
	write(t, dir, "data_batch_1.bin", rec)
	write(t, dir, "test_batch.bin", rec[:3073])
	write(t, dir, "batches.meta.txt", []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"))
	train, test, err := LoadCIFARDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 3 || test.Len() != 1 || train.Names[3] != "d" {
		t.Fatalf("train %d, test %d, names %v", train.Len(), test.Len(), train.Names)
	}
	s := train.Sample(2)
	if train.Label(2) != 6 || s[0] != 2 || s[1024] != 52 || s[3071] != 102 {
		t.Errorf("record 2: label %d, pixels %v %v %v", train.Label(2), s[0], s[1024], s[3071])
	}
	short := write(t, dir, "short.bin", rec[:5000])
	if _, err := LoadCIFAR10(short); err == nil || !strings.Contains(err.Error(), "short.bin") || !strings.Contains(err.Error(), "3073") {
		t.Errorf("truncated CIFAR file: %v", err)
	}
	bad := append([]byte{}, rec...)
	bad[3073] = 10
	p := write(t, dir, "bad.bin", bad)
	if _, err := LoadCIFAR10(p); err == nil || !strings.Contains(err.Error(), "label 10") {
		t.Errorf("label 10 in CIFAR-10: %v", err)
	}
	// CIFAR-100 records: coarse, fine, pixels
	rec100 := append([]byte{4, 77}, make([]byte, 3072)...)
	p100 := write(t, dir, "train100.bin", rec100)
	d, err := LoadCIFAR100(true, p100)
	if err != nil || d.Label(0) != 77 || d.Classes != 100 {
		t.Errorf("CIFAR-100 fine: %v %v", d, err)
	}
	if d, err := LoadCIFAR100(false, p100); err != nil || d.Label(0) != 4 || d.Classes != 20 {
		t.Errorf("CIFAR-100 coarse: %v %v", d, err)
	}
}

func TestNPY(t *testing.T) {
	dir := t.TempDir()
	// 2 images of 2x3 pixels, 3 channels last (Keras' layout)
	px := make([]uint8, 2*2*3*3)
	for i := range px {
		px[i] = uint8(i)
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	if err := tensor.WriteNPYFile(xp, tensor.MustFromSlice(px, 2, 2, 3, 3)); err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNPYFile(yp, tensor.MustFromSlice([]int64{1, 4}, 2)); err != nil {
		t.Fatal(err)
	}
	d, err := LoadNPY(xp, yp, 5)
	if err != nil {
		t.Fatal(err)
	}
	if d.Layout != NHWC || d.Len() != 2 || d.SampleShape().C != 3 || d.Label(1) != 4 {
		t.Fatalf("got %v %v labels %v", d.Layout, d.SampleShape(), d.Labels())
	}
	// in NCHW, channel 1 of image 1 at (row 1, col 2) is element ((1*2+1)*3+2)*3+1
	c := d.WithLayout(NCHW)
	if got, want := c.Sample(1)[1*6+1*3+2], float32(((1*2+1)*3+2)*3+1); got != want {
		t.Errorf("NCHW pixel = %v, want %v", got, want)
	}
	// NPZ with Keras' key names and one-hot labels
	zp := filepath.Join(dir, "d.npz")
	err = tensor.WriteNPZ(zp, map[string]*tensor.Tensor{
		"x_train": tensor.MustFromSlice([]float32{1, 2, 3, 4, 5, 6}, 3, 2),
		"y_train": tensor.MustFromSlice([]float32{0, 0, 1, 1, 0, 0, 0, 1, 0}, 3, 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	z, err := LoadNPZ(zp, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if z.Classes != 3 || z.Label(0) != 2 || z.Label(2) != 1 || z.SampleShape().W != 2 {
		t.Errorf("npz: classes %d labels %v shape %v", z.Classes, z.Labels(), z.SampleShape())
	}
	// errors
	if err := tensor.WriteNPYFile(yp, tensor.MustFromSlice([]int64{1, 9}, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNPY(xp, yp, 5); err == nil || !strings.Contains(err.Error(), "label 9") || !strings.Contains(err.Error(), "y.npy") {
		t.Errorf("label outside the classes: %v", err)
	}
	if err := tensor.WriteNPYFile(yp, tensor.MustFromSlice([]float32{1, 0.5}, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNPY(xp, yp, 5); err == nil || !strings.Contains(err.Error(), "whole class index") {
		t.Errorf("fractional label: %v", err)
	}
	// A whole number too large to be a class is not called fractional.
	if err := tensor.WriteNPYFile(yp, tensor.MustFromSlice([]int64{1, 1 << 40}, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNPY(xp, yp, 0); err == nil || !strings.Contains(err.Error(), "label of sample 1 is 1099511627776") || strings.Contains(err.Error(), "whole") {
		t.Errorf("huge label: %v", err)
	}
	if _, err := LoadNPZ(zp, "images", "labels", 0); err == nil || !strings.Contains(err.Error(), "x_train") {
		t.Errorf("missing keys: %v", err)
	}
	junk := write(t, dir, "junk.npy", []byte("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'"))
	if _, err := LoadNPY(junk, yp, 5); err == nil || !strings.Contains(err.Error(), "junk.npy") {
		t.Errorf("truncated NPY: %v", err)
	}
}

func solid(w, h int, c color.Color) image.Image {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, c)
		}
	}
	return m
}

func encode(t *testing.T, format string, m image.Image) []byte {
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, m)
	case "jpg":
		err = jpeg.Encode(&b, m, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&b, m, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImageFolder(t *testing.T) {
	dir := t.TempDir()
	red, blue := color.RGBA{200, 10, 30, 255}, color.RGBA{0, 0, 255, 255}
	write(t, dir, "cat/a.png", encode(t, "png", solid(6, 4, red)))
	write(t, dir, "cat/b.jpg", encode(t, "jpg", solid(10, 10, red)))
	write(t, dir, "cat/notes.txt", []byte("not an image"))
	write(t, dir, "dog/c.gif", encode(t, "gif", solid(3, 3, blue)))
	d, err := LoadImageFolder(dir, FolderOptions{Height: 5, Width: 5})
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 3 || d.Classes != 2 || d.Names[1] != "dog" || d.Label(2) != 1 {
		t.Fatalf("%d images, %d classes %v, labels %v", d.Len(), d.Classes, d.Names, d.Labels())
	}
	// Resizing a solid image keeps its colour exactly (PNG, GIF are lossless);
	// JPEG's lossy coding of a flat block stays within 4 levels.
	cases := []struct {
		i    int
		want color.RGBA
		tol  float64
	}{{0, red, 0}, {1, red, 4}, {2, blue, 0}}
	for _, tc := range cases {
		s := d.Sample(tc.i)
		for ch, want := range []uint8{tc.want.R, tc.want.G, tc.want.B} {
			for p := range 25 {
				if math.Abs(float64(s[ch*25+p])-float64(want)) > tc.tol {
					t.Fatalf("image %d channel %d pixel %d = %v, want %v", tc.i, ch, p, s[ch*25+p], want)
				}
			}
		}
	}
	// grayscale, channels last: luma 0.299 R + 0.587 G + 0.114 B
	g, err := LoadImageFolder(dir, FolderOptions{Height: 2, Width: 3, Gray: true, Layout: NHWC})
	if err != nil {
		t.Fatal(err)
	}
	if want := 0.299*200 + 0.587*10 + 0.114*30; math.Abs(float64(g.Sample(0)[4])-want) > 1e-3 {
		t.Errorf("gray value %v, want %v", g.Sample(0)[4], want)
	}
	// mixed sizes without a resize
	if _, err := LoadImageFolder(dir, FolderOptions{}); err == nil || !strings.Contains(err.Error(), "set a resize size") {
		t.Errorf("mixed sizes: %v", err)
	}
	// a broken file with an image name
	bad := write(t, dir, "dog/broken.png", []byte("\x89PNG\r\n\x1a\nxx"))
	if _, err := LoadImageFolder(dir, FolderOptions{Height: 5, Width: 5}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("broken PNG: %v", err)
	}
	if _, err := LoadImageFolder(t.TempDir(), FolderOptions{}); err == nil || !strings.Contains(err.Error(), "no class subfolders") {
		t.Errorf("empty folder: %v", err)
	}
}

// TestReadImage checks that one file read alone equals the same file read
// through a folder, and that a missing size is refused.
func TestReadImage(t *testing.T) {
	dir := t.TempDir()
	cls := filepath.Join(dir, "a")
	if err := os.Mkdir(cls, 0o755); err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 7, 5))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 37)
	}
	path := filepath.Join(cls, "x.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, o := range []FolderOptions{{Height: 4, Width: 6}, {Height: 9, Width: 3, Gray: true}, {Height: 4, Width: 4, Layout: NHWC}} {
		ds, err := LoadImageFolder(dir, o)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadImage(path, o)
		if err != nil {
			t.Fatal(err)
		}
		want := ds.Sample(0)
		if len(got) != len(want) {
			t.Fatalf("%+v: %d values, want %d", o, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%+v: value %d is %v, the folder reader gives %v", o, i, got[i], want[i])
			}
		}
	}
	if _, err := ReadImage(path, FolderOptions{}); err == nil {
		t.Error("ReadImage without a size succeeded")
	}
}
