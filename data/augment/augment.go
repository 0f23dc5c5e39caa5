package augment

import (
	"fmt"
	"math"
)

// Shape is the shape of one image: C channels of H x W pixels, stored
// channel-major (C, H, W) or, with ChannelsLast, pixel-major (H, W, C).
type Shape struct {
	C, H, W      int
	ChannelsLast bool
}

// Size is the number of values of one image.
func (s Shape) Size() int { return s.C * s.H * s.W }

func (s Shape) String() string {
	if s.ChannelsLast {
		return fmt.Sprintf("%dx%dx%d (HWC)", s.H, s.W, s.C)
	}
	return fmt.Sprintf("%dx%dx%d (CHW)", s.C, s.H, s.W)
}

// Augmenter applies a Config to images of one Shape. It is immutable and
// safe for concurrent use.
type Augmenter struct {
	cfg   Config
	shape Shape
	geo   bool
	// featurewise scale and offset per channel: x*fwScale[c] + fwOff[c].
	fwScale, fwOff []float32
	shiftY, shiftX float64 // shift ranges in pixels
}

// New checks the Config against the image shape and returns its Augmenter.
func New(c Config, s Shape) (*Augmenter, error) {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return nil, fmt.Errorf("augment: image shape %dx%dx%d: expected positive channels, height and width", s.C, s.H, s.W)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a := &Augmenter{cfg: c, shape: s, geo: c.geometric()}
	a.cfg.Mean = append([]float64(nil), c.Mean...)
	a.cfg.Std = append([]float64(nil), c.Std...)
	a.shiftX = c.WidthShift
	if a.shiftX < 1 {
		a.shiftX *= float64(s.W)
	} else if a.shiftX > float64(s.W) {
		return nil, fmt.Errorf("augment: width_shift=%v pixels is larger than the image width %d", c.WidthShift, s.W)
	}
	a.shiftY = c.HeightShift
	if a.shiftY < 1 {
		a.shiftY *= float64(s.H)
	} else if a.shiftY > float64(s.H) {
		return nil, fmt.Errorf("augment: height_shift=%v pixels is larger than the image height %d", c.HeightShift, s.H)
	}
	if c.CropPadding > s.H || c.CropPadding > s.W {
		return nil, fmt.Errorf("augment: crop=%d pixels of padding is larger than the image (%dx%d)", c.CropPadding, s.H, s.W)
	}
	if c.CutoutSize > s.H || c.CutoutSize > s.W {
		return nil, fmt.Errorf("augment: cutout=%d is larger than the image (%dx%d)", c.CutoutSize, s.H, s.W)
	}
	if c.NeedsFit() {
		if len(c.Mean) != s.C || (c.FeaturewiseStdNormalization && len(c.Std) != s.C) {
			return nil, fmt.Errorf("augment: featurewise_center/featurewise_std need per-channel statistics of the training images "+
				"(%d channels; have %d means, %d stds): call Config.Fit first", s.C, len(c.Mean), len(c.Std))
		}
		a.fwScale = make([]float32, s.C)
		a.fwOff = make([]float32, s.C)
		for ch := range s.C {
			scale, off := 1.0, 0.0
			if c.FeaturewiseCenter {
				off = -c.Mean[ch]
			}
			if c.FeaturewiseStdNormalization {
				scale = 1 / (c.Std[ch] + featurewiseEps)
			}
			a.fwScale[ch] = float32(scale)
			a.fwOff[ch] = float32(off * scale)
		}
	}
	return a, nil
}

// Config returns the Augmenter's Config.
func (a *Augmenter) Config() Config { return a.cfg }

// Shape returns the image shape the Augmenter was made for.
func (a *Augmenter) Shape() Shape { return a.shape }

// Fit computes the per-channel mean and std that the featurewise steps use,
// from n training images in x (n*s.Size() values), after the rescale and
// samplewise steps, since that is where the featurewise steps apply. It
// sets c.Mean and c.Std.
func (c *Config) Fit(x []float32, n int, s Shape) error {
	if n <= 0 || len(x) != n*s.Size() {
		return fmt.Errorf("augment: Fit got %d values for %d images of %v", len(x), n, s)
	}
	pre := *c
	pre.FeaturewiseCenter, pre.FeaturewiseStdNormalization = false, false
	pre.clearRandom()
	a, err := New(pre, s)
	if err != nil {
		return err
	}
	sum := make([]float64, s.C)
	sq := make([]float64, s.C)
	buf := make([]float32, s.Size())
	sz := s.Size()
	for i := range n {
		img := x[i*sz : (i+1)*sz]
		if !pre.IsIdentity() {
			a.ApplyParams(buf, img, Params{})
			img = buf
		}
		for j, v := range img {
			ch := channelOf(j, s)
			sum[ch] += float64(v)
		}
	}
	cnt := float64(n * s.H * s.W)
	mean := make([]float64, s.C)
	for ch := range mean {
		mean[ch] = sum[ch] / cnt
	}
	for i := range n {
		img := x[i*sz : (i+1)*sz]
		if !pre.IsIdentity() {
			a.ApplyParams(buf, img, Params{})
			img = buf
		}
		for j, v := range img {
			ch := channelOf(j, s)
			d := float64(v) - mean[ch]
			sq[ch] += d * d
		}
	}
	std := make([]float64, s.C)
	for ch := range std {
		std[ch] = math.Sqrt(sq[ch] / cnt)
	}
	c.Mean, c.Std = mean, std
	return nil
}

// clearRandom disables every random transform, keeping the deterministic
// standardisation steps.
func (c *Config) clearRandom() {
	*c = Config{
		Rescale:                     c.Rescale,
		SamplewiseCenter:            c.SamplewiseCenter,
		SamplewiseStdNormalization:  c.SamplewiseStdNormalization,
		FeaturewiseCenter:           c.FeaturewiseCenter,
		FeaturewiseStdNormalization: c.FeaturewiseStdNormalization,
		Mean:                        c.Mean,
		Std:                         c.Std,
	}
}

func channelOf(j int, s Shape) int {
	if s.ChannelsLast {
		return j % s.C
	}
	return j / (s.H * s.W)
}

// Params are the random choices for one sample. The zero Params (with
// Zoom factors 0, read as 1) is the identity.
type Params struct {
	Rotation       float64 // degrees, counter-clockwise as displayed
	ShiftY, ShiftX float64 // pixels the content moves down and right
	Shear          float64 // degrees
	ZoomY, ZoomX   float64 // sampling-grid scale per axis (0 means 1)
	FlipH, FlipV   bool
	CropY, CropX   int     // whole-pixel offsets of the random crop
	ChannelShift   float64 // offset added to every channel
	Brightness     float64 // factor (0 means 1)
	Cutout         bool    // whether a cutout square is drawn
	CutoutY        int     // its centre row
	CutoutX        int     // its centre column
}

// Keys of the independent draws of a sample; each parameter has its own so
// that enabling one transform leaves the others' values unchanged.
const (
	kRot = iota + 1
	kShiftY
	kShiftX
	kShear
	kZoomY
	kZoomX
	kFlipH
	kFlipV
	kChan
	kBright
	kCropY
	kCropX
	kCutY
	kCutX
)

// Mix is SplitMix64's finaliser: a bijective hash with good avalanche.
// Every seeded stage of gotrain (data order, augmentation, Dropout seeds)
// derives its randomness from it, so none depends on goroutine scheduling.
func Mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// SampleSeed is the seed of sample index in epoch: a hash of the three, so
// it is the same whichever goroutine or device processes the sample.
func SampleSeed(seed uint64, epoch, index int) uint64 {
	return Mix(Mix(Mix(seed)^uint64(int64(epoch))) ^ uint64(int64(index)))
}

// unit is the k-th uniform draw in [0, 1) of a sample seed.
func unit(s uint64, k uint64) float64 {
	return float64(Mix(s^(k*0xd1b54a32d192ed03))>>11) / (1 << 53)
}

func between(s uint64, k uint64, lo, hi float64) float64 { return lo + (hi-lo)*unit(s, k) }

func drawInt(s uint64, k uint64, lo, hi int) int { // uniform in [lo, hi]
	return lo + int(unit(s, k)*float64(hi-lo+1))
}

// Draw returns the random choices for sample index in epoch.
func (a *Augmenter) Draw(epoch, index int) Params {
	c := &a.cfg
	s := SampleSeed(c.Seed, epoch, index)
	var p Params
	if c.RotationRange != 0 {
		p.Rotation = between(s, kRot, -c.RotationRange, c.RotationRange)
	}
	if a.shiftY != 0 {
		p.ShiftY = between(s, kShiftY, -a.shiftY, a.shiftY)
	}
	if a.shiftX != 0 {
		p.ShiftX = between(s, kShiftX, -a.shiftX, a.shiftX)
	}
	if c.ShearRange != 0 {
		p.Shear = between(s, kShear, -c.ShearRange, c.ShearRange)
	}
	if c.zoom() {
		p.ZoomY = between(s, kZoomY, c.ZoomRange[0], c.ZoomRange[1])
		p.ZoomX = between(s, kZoomX, c.ZoomRange[0], c.ZoomRange[1])
	}
	p.FlipH = c.HorizontalFlip && unit(s, kFlipH) < 0.5
	p.FlipV = c.VerticalFlip && unit(s, kFlipV) < 0.5
	if c.CropPadding != 0 {
		p.CropY = drawInt(s, kCropY, -c.CropPadding, c.CropPadding)
		p.CropX = drawInt(s, kCropX, -c.CropPadding, c.CropPadding)
	}
	if c.ChannelShiftRange != 0 {
		p.ChannelShift = between(s, kChan, -c.ChannelShiftRange, c.ChannelShiftRange)
	}
	if c.brightness() {
		p.Brightness = between(s, kBright, c.BrightnessRange[0], c.BrightnessRange[1])
	}
	if c.CutoutSize != 0 {
		p.Cutout = true
		p.CutoutY = drawInt(s, kCutY, 0, a.shape.H-1)
		p.CutoutX = drawInt(s, kCutX, 0, a.shape.W-1)
	}
	return p
}

// Apply writes the augmented image of sample index in epoch to dst. dst and
// src hold one image each (Shape().Size() values) and must not overlap.
func (a *Augmenter) Apply(dst, src []float32, epoch, index int) error {
	n := a.shape.Size()
	if len(dst) != n || len(src) != n {
		return fmt.Errorf("augment: sample %d has %d values (output %d): expected %d for %v", index, len(src), len(dst), n, a.shape)
	}
	a.ApplyParams(dst, src, a.Draw(epoch, index))
	return nil
}

// ApplyParams applies given choices to one image; Apply draws them. It
// panics if dst or src is not one image.
func (a *Augmenter) ApplyParams(dst, src []float32, p Params) {
	s := a.shape
	n := s.Size()
	dst, src = dst[:n], src[:n]
	c := &a.cfg
	if m, ok := a.matrix(p); ok {
		if s.ChannelsLast {
			warpHWC(dst, src, s, &m, c.FillMode, float32(c.Cval))
		} else {
			warpCHW(dst, src, s, &m, c.FillMode, float32(c.Cval))
		}
	} else {
		copy(dst, src)
	}
	if p.ChannelShift != 0 {
		lo, hi := dst[0], dst[0]
		for _, v := range dst {
			lo = min(lo, v)
			hi = max(hi, v)
		}
		d := float32(p.ChannelShift)
		for i, v := range dst {
			dst[i] = min(max(v+d, lo), hi)
		}
	}
	scale := float32(1)
	if p.Brightness != 0 {
		scale = float32(p.Brightness)
	}
	if c.Rescale != 0 {
		scale *= float32(c.Rescale)
	}
	if scale != 1 {
		for i := range dst {
			dst[i] *= scale
		}
	}
	if c.SamplewiseCenter || c.SamplewiseStdNormalization {
		var sum float64
		for _, v := range dst {
			sum += float64(v)
		}
		mean := sum / float64(n)
		off := 0.0
		if c.SamplewiseCenter {
			off = -mean
		}
		k := 1.0
		if c.SamplewiseStdNormalization {
			// Keras takes the std of the (already centred, if enabled) sample;
			// the std does not change with centring, so it is computed here.
			var sq float64
			for _, v := range dst {
				d := float64(v) - mean
				sq += d * d
			}
			k = 1 / (math.Sqrt(sq/float64(n)) + featurewiseEps)
		}
		ks, ko := float32(k), float32(off*k)
		for i, v := range dst {
			dst[i] = v*ks + ko
		}
	}
	if a.fwScale != nil {
		if s.ChannelsLast {
			for i := 0; i < n; i += s.C {
				for ch := range s.C {
					dst[i+ch] = dst[i+ch]*a.fwScale[ch] + a.fwOff[ch]
				}
			}
		} else {
			hw := s.H * s.W
			for ch := range s.C {
				ks, ko := a.fwScale[ch], a.fwOff[ch]
				plane := dst[ch*hw : (ch+1)*hw]
				for i, v := range plane {
					plane[i] = v*ks + ko
				}
			}
		}
	}
	if p.Cutout && c.CutoutSize > 0 {
		cutout(dst, s, p.CutoutY, p.CutoutX, c.CutoutSize)
	}
}

// cutout zeroes the size x size square centred at (cy, cx), clipped to the
// image (DeVries and Taylor's placement: the centre is anywhere in the
// image, so the square may hang over the border).
func cutout(dst []float32, s Shape, cy, cx, size int) {
	y0, x0 := cy-size/2, cx-size/2
	y1, x1 := min(y0+size, s.H), min(x0+size, s.W)
	y0, x0 = max(y0, 0), max(x0, 0)
	for y := y0; y < y1; y++ {
		if s.ChannelsLast {
			clear(dst[(y*s.W+x0)*s.C : (y*s.W+x1)*s.C])
			continue
		}
		for ch := range s.C {
			base := ch*s.H*s.W + y*s.W
			clear(dst[base+x0 : base+x1])
		}
	}
}
