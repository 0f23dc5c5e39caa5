package augment

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// specKey describes one key of the spec syntax: its canonical name, its
// aliases (Keras' argument names), and how it sets a Config.
type specKey struct {
	names []string
	// bare: the key may appear without a value (a flag).
	bare bool
	set  func(c *Config, key, val string) error
}

func outOfRange(key, val, want string) error {
	return fmt.Errorf("augment spec: %s=%s is out of range: expected %s", key, val, want)
}

func parseNum(key, val string) (float64, error) {
	// A fraction such as rescale=1/255 is accepted everywhere a number is.
	if num, den, ok := strings.Cut(val, "/"); ok {
		a, err1 := strconv.ParseFloat(strings.TrimSpace(num), 64)
		b, err2 := strconv.ParseFloat(strings.TrimSpace(den), 64)
		if err1 == nil && err2 == nil && b != 0 {
			return a / b, nil
		}
	} else if v, err := strconv.ParseFloat(val, 64); err == nil && finite(v) {
		return v, nil
	}
	return 0, fmt.Errorf("augment spec: %s=%q is not a number", key, val)
}

func numIn(key string, lo, hi float64, hiOpen bool, want string, dst func(*Config) *float64) func(*Config, string, string) error {
	return func(c *Config, key, val string) error {
		v, err := parseNum(key, val)
		if err != nil {
			return err
		}
		if v < lo || v > hi || (hiOpen && v == hi) {
			return outOfRange(key, val, want)
		}
		*dst(c) = v
		return nil
	}
}

func parseBool(key, val string) (bool, error) {
	switch strings.ToLower(val) {
	case "", "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("augment spec: %s=%q: expected a flag (no value, true or false)", key, val)
}

func flag(dst func(*Config) *bool) func(*Config, string, string) error {
	return func(c *Config, key, val string) error {
		b, err := parseBool(key, val)
		if err != nil {
			return err
		}
		*dst(c) = b
		return nil
	}
}

func intIn(key string, hi int, want string, dst func(*Config) *int) func(*Config, string, string) error {
	return func(c *Config, key, val string) error {
		v, err := strconv.Atoi(val)
		if err != nil {
			return fmt.Errorf("augment spec: %s=%q is not a whole number of pixels", key, val)
		}
		if v < 0 || v > hi {
			return outOfRange(key, val, want)
		}
		*dst(c) = v
		return nil
	}
}

// parseRange reads "lo:hi", or a single value v meaning [1-v, 1+v] (Keras'
// zoom_range float form).
func parseRange(key, val string) ([2]float64, error) {
	if a, b, ok := strings.Cut(val, ":"); ok {
		lo, err := parseNum(key, a)
		if err != nil {
			return [2]float64{}, err
		}
		hi, err := parseNum(key, b)
		if err != nil {
			return [2]float64{}, err
		}
		return [2]float64{lo, hi}, nil
	}
	v, err := parseNum(key, val)
	if err != nil {
		return [2]float64{}, err
	}
	if v < 0 || v >= 1 {
		return [2]float64{}, outOfRange(key, val, "a value in [0, 1) (meaning [1-v, 1+v]) or lo:hi")
	}
	return [2]float64{1 - v, 1 + v}, nil
}

var specKeys = []specKey{
	{names: []string{"rotation", "rotation_range"},
		set: numIn("rotation", 0, 180, false, "degrees in [0, 180]", func(c *Config) *float64 { return &c.RotationRange })},
	{names: []string{"shift"}, set: func(c *Config, key, val string) error {
		v, err := parseNum(key, val)
		if err != nil {
			return err
		}
		if v < 0 {
			return outOfRange(key, val, "a fraction in [0, 1) or pixels >= 1")
		}
		c.WidthShift, c.HeightShift = v, v
		return nil
	}},
	{names: []string{"width_shift", "width_shift_range", "wshift"},
		set: numIn("width_shift", 0, math.MaxFloat64, false, "a fraction in [0, 1) or pixels >= 1", func(c *Config) *float64 { return &c.WidthShift })},
	{names: []string{"height_shift", "height_shift_range", "hshift"},
		set: numIn("height_shift", 0, math.MaxFloat64, false, "a fraction in [0, 1) or pixels >= 1", func(c *Config) *float64 { return &c.HeightShift })},
	{names: []string{"shear", "shear_range"},
		set: numIn("shear", 0, 90, true, "degrees in [0, 90)", func(c *Config) *float64 { return &c.ShearRange })},
	{names: []string{"zoom", "zoom_range"}, set: func(c *Config, key, val string) error {
		r, err := parseRange(key, val)
		if err != nil {
			return err
		}
		if !(r[0] > 0 && r[0] <= r[1] && r[1] <= 10) {
			return outOfRange(key, val, "lo:hi with 0 < lo <= hi <= 10, or v in [0, 1)")
		}
		c.ZoomRange = r
		return nil
	}},
	{names: []string{"hflip", "horizontal_flip"}, bare: true, set: flag(func(c *Config) *bool { return &c.HorizontalFlip })},
	{names: []string{"vflip", "vertical_flip"}, bare: true, set: flag(func(c *Config) *bool { return &c.VerticalFlip })},
	{names: []string{"brightness", "brightness_range"}, set: func(c *Config, key, val string) error {
		r, err := parseRange(key, val)
		if err != nil {
			return err
		}
		if !(r[0] >= 0 && r[0] <= r[1]) {
			return outOfRange(key, val, "lo:hi with 0 <= lo <= hi, or v in [0, 1)")
		}
		c.BrightnessRange = r
		return nil
	}},
	{names: []string{"channel_shift", "channel_shift_range"},
		set: numIn("channel_shift", 0, math.MaxFloat64, false, "a value >= 0", func(c *Config) *float64 { return &c.ChannelShiftRange })},
	{names: []string{"fill", "fill_mode"}, set: func(c *Config, key, val string) error {
		m, err := ParseFillMode(val)
		if err != nil {
			return fmt.Errorf("augment spec: %s=%s: %v", key, val, err)
		}
		c.FillMode = m
		return nil
	}},
	{names: []string{"cval"}, set: numIn("cval", -math.MaxFloat64, math.MaxFloat64, false, "a finite number", func(c *Config) *float64 { return &c.Cval })},
	{names: []string{"rescale"}, set: numIn("rescale", -math.MaxFloat64, math.MaxFloat64, false, "a finite number", func(c *Config) *float64 { return &c.Rescale })},
	{names: []string{"samplewise_center"}, bare: true, set: flag(func(c *Config) *bool { return &c.SamplewiseCenter })},
	{names: []string{"samplewise_std", "samplewise_std_normalization"}, bare: true, set: flag(func(c *Config) *bool { return &c.SamplewiseStdNormalization })},
	{names: []string{"featurewise_center"}, bare: true, set: flag(func(c *Config) *bool { return &c.FeaturewiseCenter })},
	{names: []string{"featurewise_std", "featurewise_std_normalization"}, bare: true, set: flag(func(c *Config) *bool { return &c.FeaturewiseStdNormalization })},
	{names: []string{"crop", "crop_padding"}, set: intIn("crop", 1<<16, "pixels of padding in [0, 65536]", func(c *Config) *int { return &c.CropPadding })},
	{names: []string{"cutout"}, set: intIn("cutout", 1<<16, "pixels in [0, 65536]", func(c *Config) *int { return &c.CutoutSize })},
	{names: []string{"seed"}, set: func(c *Config, key, val string) error {
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("augment spec: %s=%q: expected an unsigned integer", key, val)
		}
		c.Seed = v
		return nil
	}},
}

// ValidKeys lists the canonical spec keys, for help texts.
func ValidKeys() []string {
	var ks []string
	for _, k := range specKeys {
		ks = append(ks, k.names[0])
	}
	return ks
}

func lookupKey(name string) *specKey {
	for i := range specKeys {
		for _, n := range specKeys[i].names {
			if n == name {
				return &specKeys[i]
			}
		}
	}
	return nil
}

// ParseSpec reads the compact command-line form of a Config: comma-separated
// items, each key=value or a bare flag, e.g.
//
//	rotation=20,shift=0.1,hflip,zoom=0.1
//	crop=4,hflip,cutout=8,rescale=1/255
//
// Keys (Keras' argument names are accepted as aliases):
//
//	rotation=DEG        angle range in degrees, [0, 180]
//	shift=F             width and height shift: fraction < 1 or pixels >= 1
//	width_shift=F       horizontal shift only; height_shift=F vertical only
//	shear=DEG           shear angle range in degrees, [0, 90)
//	zoom=V | LO:HI      zoom factors from [1-V, 1+V] or [LO, HI]
//	hflip, vflip        random flips
//	brightness=V|LO:HI  brightness factor from [1-V, 1+V] or [LO, HI]
//	channel_shift=F     channel offset range
//	fill=MODE           constant (default), nearest, reflect or wrap
//	cval=F              fill value for fill=constant (default 0)
//	rescale=F           factor, e.g. 1/255
//	samplewise_center, samplewise_std, featurewise_center, featurewise_std
//	crop=P              random crop with P pixels of padding
//	cutout=S            zero a random SxS square
//	seed=N              the augmentation seed
//
// "" and "none" are the identity. A key may appear once. Errors name the key
// and what was expected.
func ParseSpec(spec string) (Config, error) {
	var c Config
	spec = strings.TrimSpace(spec)
	if spec == "" || spec == "none" {
		return c, nil
	}
	seen := map[*specKey]string{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return Config{}, fmt.Errorf("augment spec %q: empty item between commas", spec)
		}
		name, val, hasVal := strings.Cut(item, "=")
		name, val = strings.TrimSpace(name), strings.TrimSpace(val)
		k := lookupKey(name)
		if k == nil {
			keys := ValidKeys()
			sort.Strings(keys)
			return Config{}, fmt.Errorf("augment spec: key %q is unknown; valid keys: %s", name, strings.Join(keys, ", "))
		}
		if prev, dup := seen[k]; dup {
			return Config{}, fmt.Errorf("augment spec: key %q given twice (also as %q)", name, prev)
		}
		seen[k] = name
		if !hasVal && !k.bare {
			return Config{}, fmt.Errorf("augment spec: key %q needs a value (%s=...)", name, name)
		}
		if hasVal && val == "" {
			return Config{}, fmt.Errorf("augment spec: key %q has an empty value", name)
		}
		if err := k.set(&c, name, val); err != nil {
			return Config{}, err
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}
