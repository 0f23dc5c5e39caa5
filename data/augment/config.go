package augment

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// FillMode says how positions outside the source image are filled.
type FillMode int

// The fill modes; see the package documentation.
const (
	Constant FillMode = iota
	Nearest
	Reflect
	Wrap
)

var fillNames = [...]string{"constant", "nearest", "reflect", "wrap"}

func (m FillMode) String() string {
	if m >= 0 && int(m) < len(fillNames) {
		return fillNames[m]
	}
	return fmt.Sprintf("FillMode(%d)", int(m))
}

// ParseFillMode reads a fill mode by name.
func ParseFillMode(s string) (FillMode, error) {
	for i, n := range fillNames {
		if s == n {
			return FillMode(i), nil
		}
	}
	return 0, fmt.Errorf("fill mode %q is unknown: expected one of %s", s, strings.Join(fillNames[:], ", "))
}

// Config selects the transforms and their ranges. The zero Config is the
// identity. Field names follow Keras' ImageDataGenerator arguments.
type Config struct {
	RotationRange  float64    // degrees: the angle is drawn from [-r, r]; in [0, 180]
	WidthShift     float64    // horizontal shift range: a fraction of the width if < 1, else pixels
	HeightShift    float64    // vertical shift range: a fraction of the height if < 1, else pixels
	ShearRange     float64    // degrees: the shear angle is drawn from [-r, r]; in [0, 90)
	ZoomRange      [2]float64 // {lo, hi}: per-axis factors drawn from [lo, hi]; {0, 0} is none
	HorizontalFlip bool       // flip left-right with probability 1/2
	VerticalFlip   bool       // flip top-bottom with probability 1/2

	BrightnessRange   [2]float64 // {lo, hi}: multiply by a factor from [lo, hi]; {0, 0} is none
	ChannelShiftRange float64    // add one offset from [-r, r] to all channels, clip to [min, max]

	FillMode FillMode // how geometric transforms fill outside the image
	Cval     float64  // the fill value of the constant mode

	Rescale                     float64   // multiply by this factor (0: none), before standardisation
	SamplewiseCenter            bool      // subtract each sample's mean
	SamplewiseStdNormalization  bool      // divide each sample by its std (+1e-6)
	FeaturewiseCenter           bool      // subtract the per-channel Mean
	FeaturewiseStdNormalization bool      // divide by the per-channel Std (+1e-6)
	Mean, Std                   []float64 // per-channel statistics for the featurewise steps (Fit)

	CropPadding int // random crop with padding: shift by whole pixels drawn from [-p, p]
	CutoutSize  int // side of the square set to zero (0: none)

	Seed uint64 // the root of every per-sample seed
}

// featurewiseEps is Keras' epsilon in x /= (std + eps).
const featurewiseEps = 1e-6

func (c *Config) geometric() bool {
	return c.RotationRange != 0 || c.WidthShift != 0 || c.HeightShift != 0 || c.ShearRange != 0 ||
		c.zoom() || c.HorizontalFlip || c.VerticalFlip || c.CropPadding != 0
}

func (c *Config) zoom() bool {
	return !(c.ZoomRange == [2]float64{} || c.ZoomRange == [2]float64{1, 1})
}

func (c *Config) brightness() bool {
	return !(c.BrightnessRange == [2]float64{} || c.BrightnessRange == [2]float64{1, 1})
}

// IsIdentity reports whether the Config changes nothing.
func (c *Config) IsIdentity() bool {
	return !c.geometric() && !c.brightness() && c.ChannelShiftRange == 0 && (c.Rescale == 0 || c.Rescale == 1) &&
		!c.SamplewiseCenter && !c.SamplewiseStdNormalization && !c.FeaturewiseCenter &&
		!c.FeaturewiseStdNormalization && c.CutoutSize == 0
}

// NeedsFit reports whether the featurewise steps are enabled, which need
// per-channel statistics of the training set (Fit).
func (c *Config) NeedsFit() bool { return c.FeaturewiseCenter || c.FeaturewiseStdNormalization }

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Validate checks every field against its valid range, independent of the
// image size (New checks what depends on it). Errors name the spec key.
func (c *Config) Validate() error {
	check := func(key string, ok bool, v any, want string) error {
		if ok {
			return nil
		}
		return fmt.Errorf("augment: %s=%v is out of range: expected %s", key, v, want)
	}
	type rule struct {
		key  string
		ok   bool
		v    any
		want string
	}
	zr, br := c.ZoomRange, c.BrightnessRange
	rules := []rule{
		{"rotation", finite(c.RotationRange) && c.RotationRange >= 0 && c.RotationRange <= 180, c.RotationRange, "degrees in [0, 180]"},
		{"width_shift", finite(c.WidthShift) && c.WidthShift >= 0, c.WidthShift, "a fraction in [0, 1) or pixels >= 1"},
		{"height_shift", finite(c.HeightShift) && c.HeightShift >= 0, c.HeightShift, "a fraction in [0, 1) or pixels >= 1"},
		{"shear", finite(c.ShearRange) && c.ShearRange >= 0 && c.ShearRange < 90, c.ShearRange, "degrees in [0, 90)"},
		{"zoom", !c.zoom() || (finite(zr[0]) && finite(zr[1]) && zr[0] > 0 && zr[0] <= zr[1] && zr[1] <= 10), formatRange(zr), "lo:hi with 0 < lo <= hi <= 10"},
		{"brightness", !c.brightness() || (finite(br[0]) && finite(br[1]) && br[0] >= 0 && br[0] <= br[1]), formatRange(br), "lo:hi with 0 <= lo <= hi"},
		{"channel_shift", finite(c.ChannelShiftRange) && c.ChannelShiftRange >= 0, c.ChannelShiftRange, "a value >= 0"},
		{"fill", c.FillMode >= Constant && c.FillMode <= Wrap, c.FillMode, "one of " + strings.Join(fillNames[:], ", ")},
		{"cval", finite(c.Cval), c.Cval, "a finite number"},
		{"rescale", finite(c.Rescale), c.Rescale, "a finite number"},
		{"crop", c.CropPadding >= 0, c.CropPadding, "pixels >= 0"},
		{"cutout", c.CutoutSize >= 0, c.CutoutSize, "pixels >= 0"},
	}
	for _, r := range rules {
		if err := check(r.key, r.ok, r.v, r.want); err != nil {
			return err
		}
	}
	for i, m := range c.Mean {
		if !finite(m) {
			return fmt.Errorf("augment: featurewise mean of channel %d is %v: expected a finite number", i, m)
		}
	}
	for i, s := range c.Std {
		if !finite(s) || s < 0 {
			return fmt.Errorf("augment: featurewise std of channel %d is %v: expected a finite number >= 0", i, s)
		}
	}
	return nil
}

func formatRange(r [2]float64) string { return fmtNum(r[0]) + ":" + fmtNum(r[1]) }

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// String writes the Config in the spec syntax that ParseSpec reads; the
// featurewise statistics are not part of it. The identity prints as "none".
func (c Config) String() string {
	var parts []string
	add := func(s string) { parts = append(parts, s) }
	num := func(k string, v float64) {
		if v != 0 {
			add(k + "=" + fmtNum(v))
		}
	}
	num("rotation", c.RotationRange)
	if c.WidthShift == c.HeightShift {
		num("shift", c.WidthShift)
	} else {
		num("width_shift", c.WidthShift)
		num("height_shift", c.HeightShift)
	}
	num("shear", c.ShearRange)
	if c.zoom() {
		add("zoom=" + formatRange(c.ZoomRange))
	}
	if c.HorizontalFlip {
		add("hflip")
	}
	if c.VerticalFlip {
		add("vflip")
	}
	if c.brightness() {
		add("brightness=" + formatRange(c.BrightnessRange))
	}
	num("channel_shift", c.ChannelShiftRange)
	if c.FillMode != Constant {
		add("fill=" + c.FillMode.String())
	}
	num("cval", c.Cval)
	num("rescale", c.Rescale)
	flags := []struct {
		on   bool
		name string
	}{
		{c.SamplewiseCenter, "samplewise_center"},
		{c.SamplewiseStdNormalization, "samplewise_std"},
		{c.FeaturewiseCenter, "featurewise_center"},
		{c.FeaturewiseStdNormalization, "featurewise_std"},
	}
	for _, f := range flags {
		if f.on {
			add(f.name)
		}
	}
	if c.CropPadding != 0 {
		add("crop=" + strconv.Itoa(c.CropPadding))
	}
	if c.CutoutSize != 0 {
		add("cutout=" + strconv.Itoa(c.CutoutSize))
	}
	if c.Seed != 0 {
		add("seed=" + strconv.FormatUint(c.Seed, 10))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}
