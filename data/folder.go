package data

import (
	"fmt"
	"image"
	"image/draw"
	_ "image/gif" // registers the decoders the folders may hold
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/tensor"
)

// FolderOptions say how images of a class folder become samples.
type FolderOptions struct {
	Height, Width int    // resize every image to this size (bilinear); 0, 0: keep sizes, which must then agree
	Gray          bool   // one channel (luma, ITU-R 601 as PIL's "L"); otherwise RGB
	Layout        Layout // of the samples
	Workers       int    // goroutines decoding in LoadImageFolder (0: GOMAXPROCS)
}

// ImageFolder is a dataset on disk: one subfolder per class (classes in
// name order) of PNG, JPEG or GIF files; other files are ignored. It is a
// Source that decodes a file each time a sample is read, so the Loader's
// workers decode in the background; LoadImageFolder reads it all into
// memory instead.
type ImageFolder struct {
	Dir     string
	Names   []string // class names: the subfolders
	Files   []string // the image files, by class then name
	labels  []int64
	opt     FolderOptions
	c, h, w int
}

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".gif": true}

// OpenImageFolder lists the images of dir and fixes the sample shape: the
// given size, or the size of the first image when none is given (every
// image is checked against it when read).
func OpenImageFolder(dir string, o FolderOptions) (*ImageFolder, error) {
	if o.Height < 0 || o.Width < 0 || (o.Height == 0) != (o.Width == 0) {
		return nil, fmt.Errorf("data: %s: resize to %dx%d: expected both sizes positive, or both 0 to keep the sizes", dir, o.Height, o.Width)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	f := &ImageFolder{Dir: dir, opt: o, c: 3, h: o.Height, w: o.Width}
	if o.Gray {
		f.c = 1
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		class := len(f.Names)
		f.Names = append(f.Names, e.Name())
		files, err := os.ReadDir(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
		var names []string
		for _, im := range files {
			if !im.IsDir() && imageExts[strings.ToLower(filepath.Ext(im.Name()))] {
				names = append(names, im.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			f.Files = append(f.Files, filepath.Join(dir, e.Name(), n))
			f.labels = append(f.labels, int64(class))
		}
	}
	if len(f.Names) == 0 {
		return nil, fmt.Errorf("data: %s: no class subfolders: expected one folder of images per class", dir)
	}
	if len(f.Files) == 0 {
		return nil, fmt.Errorf("data: %s: no PNG, JPEG or GIF files in the class folders %s", dir, strings.Join(f.Names, ", "))
	}
	if f.h == 0 {
		cfg, err := decodeConfig(f.Files[0])
		if err != nil {
			return nil, err
		}
		f.h, f.w = cfg.Height, cfg.Width
	}
	if err := tensor.CheckShape(fmt.Sprintf("data: %s: samples of %v", dir, f.SampleShape()), tensor.Float32, []int{f.c, f.h, f.w}); err != nil {
		return nil, err
	}
	return f, nil
}

func decodeConfig(path string) (image.Config, error) {
	r, err := os.Open(path)
	if err != nil {
		return image.Config{}, fmt.Errorf("data: %w", err)
	}
	defer r.Close()
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return image.Config{}, fmt.Errorf("data: %s: not a readable PNG, JPEG or GIF image: %v", path, err)
	}
	return cfg, nil
}

// Len is the number of images.
func (f *ImageFolder) Len() int { return len(f.Files) }

// Classes is the number of classes.
func (f *ImageFolder) Classes() int { return len(f.Names) }

// SampleShape is the shape of one sample.
func (f *ImageFolder) SampleShape() augment.Shape {
	return augment.Shape{C: f.c, H: f.h, W: f.w, ChannelsLast: f.opt.Layout == NHWC}
}

// Label is the class of sample i.
func (f *ImageFolder) Label(i int) int64 { return f.labels[i] }

// Read decodes image i into dst: pixel values 0..255, resized when the
// options say so. A file of another size when no size is set is an error.
func (f *ImageFolder) Read(i int, dst []float32) error {
	if i < 0 || i >= len(f.Files) {
		return fmt.Errorf("data: %s: sample %d out of range [0, %d)", f.Dir, i, len(f.Files))
	}
	s := f.SampleShape()
	if len(dst) != s.Size() {
		return fmt.Errorf("data: %s: buffer of %d values for an image of %v", f.Files[i], len(dst), s)
	}
	return decodeImage(f.Files[i], s, f.opt.Height == 0, dst)
}

// ReadImage decodes one PNG, JPEG or GIF file as the folder reader would
// (values 0..255, resized bilinearly to o.Height x o.Width, gray or RGB,
// laid out by o.Layout) into a new slice of C*H*W values.
func ReadImage(path string, o FolderOptions) ([]float32, error) {
	if o.Height <= 0 || o.Width <= 0 {
		return nil, fmt.Errorf("data: %s: a size to read the image at is needed, got %dx%d", path, o.Height, o.Width)
	}
	c := 3
	if o.Gray {
		c = 1
	}
	s := augment.Shape{C: c, H: o.Height, W: o.Width, ChannelsLast: o.Layout == NHWC}
	if err := tensor.CheckShape(fmt.Sprintf("data: %s: image read at %v", path, s), tensor.Float32, []int{c, o.Height, o.Width}); err != nil {
		return nil, err
	}
	dst := make([]float32, s.Size())
	return dst, decodeImage(path, s, false, dst)
}

// decodeImage decodes the file at path into dst, shaped s; with exact, an
// image whose size differs from s is an error instead of being resized.
func decodeImage(path string, s augment.Shape, exact bool, dst []float32) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	return decodeImageFrom(f, path, s, exact, dst)
}

// decodeImageFrom is decodeImage on an open file; path names it in errors.
func decodeImageFrom(r io.ReadSeeker, path string, s augment.Shape, exact bool, dst []float32) error {
	// The header says how large the canvas is; it is checked before the
	// pixels are decoded, since a small file may declare a huge canvas.
	cfg, _, err := image.DecodeConfig(r)
	if err != nil {
		return fmt.Errorf("data: %s: not a readable PNG, JPEG or GIF image: %v", path, err)
	}
	if exact && (cfg.Height != s.H || cfg.Width != s.W) {
		return fmt.Errorf("data: %s: image is %dx%d but the others are %dx%d (HxW): set a resize size to mix sizes",
			path, cfg.Height, cfg.Width, s.H, s.W)
	}
	if err := checkCanvas(path, cfg, s.C); err != nil {
		return err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return fmt.Errorf("data: %s: not a readable PNG, JPEG or GIF image: %v", path, err)
	}
	b := img.Bounds() // a GIF's first frame may be smaller than its canvas
	rgba := toRGBA(img)
	// planes of the source, 0..255, one per output channel
	sw, sh := b.Dx(), b.Dy()
	planes := make([][]float32, s.C)
	for ch := range planes {
		planes[ch] = make([]float32, sw*sh)
	}
	for y := range sh {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*sw]
		for x := range sw {
			r, g, bl := float32(row[4*x]), float32(row[4*x+1]), float32(row[4*x+2])
			if s.C == 1 {
				planes[0][y*sw+x] = r*0.299 + g*0.587 + bl*0.114
			} else {
				planes[0][y*sw+x], planes[1][y*sw+x], planes[2][y*sw+x] = r, g, bl
			}
		}
	}
	for ch, p := range planes {
		resizeBilinear(p, sh, sw, s.H, s.W, func(y, x int, v float32) {
			if s.ChannelsLast {
				dst[(y*s.W+x)*s.C+ch] = v
			} else {
				dst[(ch*s.H+y)*s.W+x] = v
			}
		})
	}
	return nil
}

// checkCanvas checks that decoding an image of cfg's size into c channels
// fits under the memory limit: per pixel, the decoded image (at most 8
// bytes, for 16-bit RGBA), its 8-bit RGBA copy and c float32 planes.
func checkCanvas(path string, cfg image.Config, c int) error {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("data: %s: image header declares %dx%d pixels: expected a positive size", path, cfg.Height, cfg.Width)
	}
	px, ok := tensor.MulDims([]int{cfg.Height, cfg.Width})
	if !ok {
		return fmt.Errorf("data: %s: image header declares %dx%d pixels: too many to address", path, cfg.Height, cfg.Width)
	}
	return tensor.CheckAlloc(fmt.Sprintf("data: %s: image header declares %dx%d pixels; decoding it", path, cfg.Height, cfg.Width), px, int64(8+4+4*c))
}

// toRGBA converts any image to 8-bit RGBA with its origin at (0, 0); for
// opaque images (and JPEG has no alpha) the values are the colours.
func toRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	if m, ok := img.(*image.RGBA); ok && b.Min == (image.Point{}) {
		return m
	}
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}

// resizeBilinear samples an sh x sw plane at dh x dw with bilinear
// interpolation at pixel centres (half-pixel offsets, edges clamped), and
// hands each output value to put. The same size is a copy.
func resizeBilinear(src []float32, sh, sw, dh, dw int, put func(y, x int, v float32)) {
	if sh == dh && sw == dw {
		for y := range dh {
			for x := range dw {
				put(y, x, src[y*sw+x])
			}
		}
		return
	}
	sy, sx := float64(sh)/float64(dh), float64(sw)/float64(dw)
	for y := range dh {
		fy := math.Max((float64(y)+0.5)*sy-0.5, 0)
		y0 := min(int(fy), sh-1)
		y1 := min(y0+1, sh-1)
		wy := float32(fy - float64(y0))
		for x := range dw {
			fx := math.Max((float64(x)+0.5)*sx-0.5, 0)
			x0 := min(int(fx), sw-1)
			x1 := min(x0+1, sw-1)
			wx := float32(fx - float64(x0))
			top := src[y0*sw+x0]*(1-wx) + src[y0*sw+x1]*wx
			bot := src[y1*sw+x0]*(1-wx) + src[y1*sw+x1]*wx
			put(y, x, top*(1-wy)+bot*wy)
		}
	}
}

// LoadImageFolder reads a whole ImageFolder into memory, decoding on
// several goroutines.
func LoadImageFolder(dir string, o FolderOptions) (*Dataset, error) {
	f, err := OpenImageFolder(dir, o)
	if err != nil {
		return nil, err
	}
	return f.Load()
}

// Load decodes every image into a Dataset.
func (f *ImageFolder) Load() (*Dataset, error) {
	s := f.SampleShape()
	n, sz := f.Len(), s.Size()
	if err := tensor.CheckShape(fmt.Sprintf("data: %s: %d images of %v", f.Dir, n, s), tensor.Float32, []int{n, sz}); err != nil {
		return nil, err
	}
	x := make([]float32, n*sz)
	workers := f.opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := g; i < n; i += workers {
				if err := f.Read(i, x[i*sz:(i+1)*sz]); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	d, err := NewDataset(x, append([]int64(nil), f.labels...), n, s.C, s.H, s.W, f.opt.Layout, len(f.Names), f.Dir)
	if err != nil {
		return nil, err
	}
	d.Names = f.Names
	d.Raw = RawBytes // decoded to 0..255 per channel
	return d, nil
}
