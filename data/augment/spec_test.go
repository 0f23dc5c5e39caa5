package augment

import (
	"reflect"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestParseSpec(t *testing.T) {
	cases := []struct {
		spec string
		want Config
	}{
		{"", Config{}},
		{"none", Config{}},
		{"rotation=20,shift=0.1,hflip,zoom=0.1", Config{RotationRange: 20, WidthShift: 0.1, HeightShift: 0.1, HorizontalFlip: true, ZoomRange: [2]float64{0.9, 1.1}}},
		{"crop=4, hflip , cutout=8,rescale=1/255", Config{CropPadding: 4, HorizontalFlip: true, CutoutSize: 8, Rescale: 1.0 / 255}},
		{"rotation_range=10,width_shift_range=3,height_shift_range=0.2,shear_range=5,zoom_range=0.5:2,horizontal_flip=false,vertical_flip",
			Config{RotationRange: 10, WidthShift: 3, HeightShift: 0.2, ShearRange: 5, ZoomRange: [2]float64{0.5, 2}, VerticalFlip: true}},
		{"brightness=0.5:1.5,channel_shift=20,fill=reflect,cval=3", Config{BrightnessRange: [2]float64{0.5, 1.5}, ChannelShiftRange: 20, FillMode: Reflect, Cval: 3}},
		{"brightness=0.2,fill_mode=wrap", Config{BrightnessRange: [2]float64{0.8, 1.2}, FillMode: Wrap}},
		{"samplewise_center,samplewise_std,featurewise_center,featurewise_std_normalization,seed=42",
			Config{SamplewiseCenter: true, SamplewiseStdNormalization: true, FeaturewiseCenter: true, FeaturewiseStdNormalization: true, Seed: 42}},
	}
	for _, tc := range cases {
		got, err := ParseSpec(tc.spec)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tc.spec, err)
			continue
		}
		// compare the zoom and brightness bounds with a tolerance (1-0.1 is not 0.9 exactly)
		if !approxConfig(got, tc.want) {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tc.spec, got, tc.want)
		}
		// String writes a spec that reads back to the same Config.
		again, err := ParseSpec(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q through %q: %+v, %v", tc.spec, got.String(), again, err)
		}
	}
}

func approxConfig(a, b Config) bool {
	near := func(x, y [2]float64) bool { return abs(x[0]-y[0]) < 1e-12 && abs(x[1]-y[1]) < 1e-12 }
	if !near(a.ZoomRange, b.ZoomRange) || !near(a.BrightnessRange, b.BrightnessRange) {
		return false
	}
	a.ZoomRange, a.BrightnessRange = b.ZoomRange, b.BrightnessRange
	return reflect.DeepEqual(a, b)
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestParseSpecErrors(t *testing.T) {
	cases := []struct {
		spec string
		want []string // substrings the error must contain
	}{
		{"rotaton=20", []string{`"rotaton"`, "unknown", "rotation"}},
		{"rotation=200", []string{"rotation=200", "[0, 180]"}},
		{"rotation=-1", []string{"rotation=-1", "[0, 180]"}},
		{"rotation=abc", []string{"rotation", "not a number"}},
		{"shear=90", []string{"shear=90", "[0, 90)"}},
		{"zoom=1.5", []string{"zoom=1.5", "[0, 1)"}},
		{"zoom=2:1", []string{"zoom=2:1", "lo <= hi"}},
		{"zoom=0:1", []string{"zoom=0:1", "0 < lo"}},
		{"brightness=-1:2", []string{"brightness=-1:2"}},
		{"shift=-0.1", []string{"shift=-0.1"}},
		{"fill=mirror", []string{"fill=mirror", "constant, nearest, reflect, wrap"}},
		{"crop=-1", []string{"crop=-1", "pixels"}},
		{"crop=2.5", []string{"crop", "whole number"}},
		{"cutout", []string{`"cutout"`, "needs a value"}},
		{"hflip=maybe", []string{"hflip", "flag"}},
		{"rotation=10,rotation_range=5", []string{"twice"}},
		{"rotation=10,,hflip", []string{"empty item"}},
		{"rescale=1/0", []string{"rescale", "not a number"}},
		{"cval=NaN", []string{"cval", "not a number"}},
		{"seed=-3", []string{"seed", "unsigned"}},
	}
	for _, tc := range cases {
		_, err := ParseSpec(tc.spec)
		if err == nil {
			t.Errorf("ParseSpec(%q) accepted bad input", tc.spec)
			continue
		}
		for _, w := range tc.want {
			if !contains(err.Error(), w) {
				t.Errorf("ParseSpec(%q) error %q does not mention %q", tc.spec, err, w)
			}
		}
	}
}
