package data

import (
	"image/color"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

func TestParseScale(t *testing.T) {
	for _, c := range []struct {
		in     string
		want   string  // String() of the result: ParseScale reads it back to the same scale
		factor float32 // Factor()
	}{
		{"auto", "auto", 1},
		{"none", "1", 1},
		{"1", "1", 1},
		{"1/255", "1/255", float32(1) / 255},
		{"255", "1/255", float32(1) / 255}, // a number above 1 divides
		{" 1/16 ", "1/16", 1.0 / 16},
		{"0.5", "0.5", 0.5},
		{"1/2.5", "1/2.5", 0.4},
	} {
		s, err := ParseScale(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if s.String() != c.want || s.Factor() != c.factor {
			t.Errorf("%q: %s (factor %g), want %s (factor %g)", c.in, s, s.Factor(), c.want, c.factor)
		}
		if back, err := ParseScale(s.String()); err != nil || back != s {
			t.Errorf("%q: %s reads back as %v, %v", c.in, s, back, err)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1/0", "1/-3", "x255", "nan", "inf", "1/inf", "1/"} {
		if _, err := ParseScale(bad); err == nil || !strings.Contains(err.Error(), "1/255") {
			t.Errorf("%q: error %v; want one listing the forms", bad, err)
		}
	}
}

// TestAutoScale: auto follows what the loader read, and each loader says
// what it read.
func TestAutoScale(t *testing.T) {
	for _, c := range []struct {
		raw  RawKind
		want string // "" is an error
	}{
		{RawFloat, "1"}, {RawBytes, "1/255"}, {RawDigits, "1/16"}, {RawInts, ""},
	} {
		s, why, err := ScaleAuto.ForRaw(c.raw)
		switch {
		case c.want == "" && (err == nil || !strings.Contains(err.Error(), "give one")):
			t.Errorf("%v: %v, %v; want an error asking for a scale", c.raw, s, err)
		case c.want != "" && (err != nil || s.String() != c.want || !strings.Contains(why, "auto")):
			t.Errorf("%v: %v (%s), %v; want %s", c.raw, s, why, err, c.want)
		}
		if g, _, err := ScaleNone.ForRaw(c.raw); err != nil || g != ScaleNone {
			t.Errorf("%v: a given scale changed to %v, %v", c.raw, g, err)
		}
	}

	dir := t.TempDir()
	labels := filepath.Join(dir, "y.npy")
	if err := tensor.WriteNPYFile(labels, tensor.MustFromSlice([]int64{0, 1}, 2)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		x    *tensor.Tensor
		want RawKind
	}{
		{"uint8", tensor.MustFromSlice([]uint8{0, 255, 3, 4}, 2, 2), RawBytes},
		{"int64 0..255", tensor.MustFromSlice([]int64{0, 255, 3, 4}, 2, 2), RawBytes},
		{"int64 above 255", tensor.MustFromSlice([]int64{0, 256, 3, 4}, 2, 2), RawInts},
		{"int16 negative", tensor.MustFromSlice([]int16{0, -1, 3, 4}, 2, 2), RawInts},
		{"float32 above 1", tensor.MustFromSlice([]float32{0, 255, 3, 4}, 2, 2), RawFloat},
		{"float64", tensor.MustFromSlice([]float64{0, 0.5, 0.25, 1}, 2, 2), RawFloat},
	} {
		xp := filepath.Join(dir, "x.npy")
		if err := tensor.WriteNPYFile(xp, c.x); err != nil {
			t.Fatal(err)
		}
		d, err := LoadNPY(xp, labels, 0)
		if err != nil {
			t.Fatal(err)
		}
		if d.Raw != c.want {
			t.Errorf("%s: raw %v, want %v", c.name, d.Raw, c.want)
		}
		// Subsets and splits keep it.
		if h, _ := d.Head(1); h.Raw != c.want || h.WithLayout(NHWC).Raw != c.want {
			t.Errorf("%s: a subset's raw kind is %v", c.name, h.Raw)
		}
	}

	idx := write(t, dir, "i.idx", idxBytes([]int{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 255}))
	lab := write(t, dir, "l.idx", []byte{0, 0, 0x08, 1, 0, 0, 0, 2, 1, 0})
	d, err := LoadIDX(idx, lab, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Raw != RawBytes {
		t.Errorf("IDX: raw %v, want 8-bit", d.Raw)
	}
	write(t, dir, "folder/a/1.png", encode(t, "png", solid(3, 2, color.Gray{200})))
	f, err := LoadImageFolder(filepath.Join(dir, "folder"), FolderOptions{Gray: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.Raw != RawBytes || f.Sample(0)[0] != 200 {
		t.Errorf("image folder: raw %v, first value %v; want 8-bit, 200", f.Raw, f.Sample(0)[0])
	}

	// Apply multiplies by the factor, as Rescale.
	d.Apply(Scale{div: 255})
	if got := d.Sample(1)[3]; got != 255*(float32(1)/255) {
		t.Errorf("255 scaled by 1/255: %v", got)
	}
}

func TestSetClasses(t *testing.T) {
	d := synth(t, 6, 1, 2, 2, 3)
	d.Names = []string{"a", "b", "c"}
	if err := d.SetClasses(5); err != nil {
		t.Fatal(err)
	}
	if d.Classes != 5 || strings.Join(d.Names, ",") != "a,b,c,3,4" || d.Validate() != nil {
		t.Errorf("5 classes: %d, names %v, %v", d.Classes, d.Names, d.Validate())
	}
	err := d.SetClasses(2)
	if err == nil || !strings.Contains(err.Error(), "label 2 of sample 2 is out of range for 2 classes") {
		t.Errorf("labels beyond the count: %v", err)
	}
	if d.Classes != 5 {
		t.Errorf("a refused count changed the dataset: %d classes", d.Classes)
	}
	if i := d.FirstLabelFrom(2); i != 2 {
		t.Errorf("FirstLabelFrom(2) = %d, want 2", i)
	}
	if i := d.FirstLabelFrom(3); i != -1 {
		t.Errorf("FirstLabelFrom(3) = %d, want -1", i)
	}
}
