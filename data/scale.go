package data

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/tensor"
)

// Input scaling. A model sees its inputs multiplied by one factor, the
// input scale, decided once per training run and applied the same way
// wherever the model meets data (training, validation, evaluation,
// prediction). A scale is written as
//
//	auto    decided by what the loader read (Dataset.Raw): 8-bit pixels
//	        (IDX and CIFAR files, PNG/JPEG/GIF images, integer arrays
//	        within 0..255) are scaled by 1/255, scikit-learn's digits
//	        (0..16) by 1/16, float arrays are taken as they are; integer
//	        arrays with values outside 0..255 have no automatic scale
//	none    the values as they are (the same as 1)
//	1/D     divided by D, e.g. 1/255
//	D       a number above 1 is a divisor too: 255 is 1/255
//	F       a number in (0, 1] is the factor itself, e.g. 0.5
//
// Scaling up (a factor above 1) is not offered: no pixel source needs it,
// and "255" meaning "multiply by 255" would silently ruin a run.

// RawKind says what values a loader read, before any scaling; an "auto"
// input scale is decided by it.
type RawKind uint8

// The raw kinds. The zero value, RawFloat, is also what a Dataset built
// in code has.
const (
	RawFloat  RawKind = iota // float values, taken as they are
	RawBytes                 // 8-bit pixels, 0..255
	RawDigits                // scikit-learn's digits, 0..16
	RawInts                  // integers outside 0..255: no automatic scale
)

func (k RawKind) String() string {
	switch k {
	case RawBytes:
		return "8-bit pixel values (0..255)"
	case RawDigits:
		return "scikit-learn digits (values 0..16)"
	case RawInts:
		return "integer values outside 0..255"
	}
	return "float values"
}

// RawKindOf classifies the values of an array a loader read, or one read
// from a file as a loader would (a sample given to predict, say).
func RawKindOf(t *tensor.Tensor) RawKind {
	switch {
	case t.DType() == tensor.Uint8:
		return RawBytes
	case t.DType().IsInt():
		for i := range t.Len() {
			if v := t.AsFloat64(i); v < 0 || v > 255 {
				return RawInts
			}
		}
		return RawBytes
	}
	return RawFloat // floats and booleans
}

// Scale is an input scale: "auto", or a factor.
type Scale struct {
	auto bool
	div  float64 // the factor is 1/div when div > 0
	mul  float64 // else mul
}

// ScaleAuto is the scale decided by the data.
var ScaleAuto = Scale{auto: true}

// ScaleNone leaves values as they are.
var ScaleNone = Scale{div: 1}

// ParseScale reads a scale in one of the forms the package comment lists.
func ParseScale(s string) (Scale, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	switch t {
	case "auto":
		return ScaleAuto, nil
	case "none", "1":
		return ScaleNone, nil
	}
	bad := func() (Scale, error) {
		return Scale{}, fmt.Errorf("input scale %q: expected auto, none, 1/D (e.g. 1/255), a divisor D > 1 (255 is 1/255) or a factor in (0, 1]", s)
	}
	if d, ok := strings.CutPrefix(t, "1/"); ok {
		v, err := strconv.ParseFloat(d, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return bad()
		}
		return Scale{div: v}, nil
	}
	v, err := strconv.ParseFloat(t, 64)
	switch {
	case err != nil || !(v > 0) || math.IsInf(v, 0):
		return bad()
	case v > 1:
		return Scale{div: v}, nil
	}
	return Scale{mul: v}, nil
}

// Auto says whether the scale is left to the data.
func (s Scale) Auto() bool { return s.auto }

// IsZero says whether s is the zero Scale (no scale given).
func (s Scale) IsZero() bool { return s == Scale{} }

// Factor is what values are multiplied by (1 for auto: resolve it first).
// A divisor D is 1/float32(D): the reciprocal rounded once when D is a
// float32 (as every whole divisor up to 2^24 is).
func (s Scale) Factor() float32 {
	switch {
	case s.auto || s.IsZero():
		return 1
	case s.div > 0:
		return 1 / float32(s.div)
	}
	return float32(s.mul)
}

// String writes s in a form ParseScale reads back to the same scale.
func (s Scale) String() string {
	switch {
	case s.auto:
		return "auto"
	case s.IsZero() || s.div == 1:
		return "1"
	case s.div > 0:
		return "1/" + strconv.FormatFloat(s.div, 'g', -1, 64)
	}
	return strconv.FormatFloat(s.mul, 'g', -1, 64)
}

// ForRaw resolves s for data of kind k: s itself unless it is auto. The
// second result says why, for the line a command prints.
func (s Scale) ForRaw(k RawKind) (Scale, string, error) {
	if !s.auto {
		return s, "given", nil
	}
	switch k {
	case RawBytes:
		return Scale{div: 255}, "auto: " + k.String(), nil
	case RawDigits:
		return Scale{div: 16}, "auto: " + k.String(), nil
	case RawInts:
		return Scale{}, "", fmt.Errorf("input scale auto: the data holds %s, which have no automatic scale: give one (e.g. 1/65535)", k)
	}
	return ScaleNone, "auto: " + k.String() + ", taken as they are", nil
}

// Resolve is ForRaw for a dataset, naming it in an error.
func (s Scale) Resolve(d *Dataset) (Scale, string, error) {
	r, why, err := s.ForRaw(d.Raw)
	if err != nil {
		return r, why, fmt.Errorf("data: %s: %w", d.Source, err)
	}
	return r, why, nil
}

// Apply multiplies every value of d by the resolved scale s, in place.
func (d *Dataset) Apply(s Scale) {
	if f := s.Factor(); f != 1 {
		d.Rescale(f)
	}
}
