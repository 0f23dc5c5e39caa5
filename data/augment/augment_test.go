package augment

import (
	"fmt"
	"math"
	"sync"
	"testing"
)

// img builds an image whose value at (ch, r, c) is f(ch, r, c), stored in
// the layout of s.
func img(s Shape, f func(ch, r, c int) float32) []float32 {
	x := make([]float32, s.Size())
	for ch := range s.C {
		for r := range s.H {
			for c := range s.W {
				x[at(s, ch, r, c)] = f(ch, r, c)
			}
		}
	}
	return x
}

func at(s Shape, ch, r, c int) int {
	if s.ChannelsLast {
		return (r*s.W+c)*s.C + ch
	}
	return (ch*s.H+r)*s.W + c
}

// distinct gives every pixel of every channel its own value.
func distinct(ch, r, c int) float32 { return float32(100*ch + 10*r + c + 1) }

func layouts(c, h, w int) []Shape {
	return []Shape{{C: c, H: h, W: w}, {C: c, H: h, W: w, ChannelsLast: true}}
}

func mustNew(t testing.TB, c Config, s Shape) *Augmenter {
	t.Helper()
	a, err := New(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestExactGeometry checks transforms that land on the pixel grid: the
// output must equal the hand-computed permutation of the input exactly.
func TestExactGeometry(t *testing.T) {
	cases := []struct {
		name string
		h, w int
		p    Params
		// src returns the source pixel of output (r, c).
		src func(r, c, h, w int) (int, int)
	}{
		{"hflip", 3, 4, Params{FlipH: true}, func(r, c, h, w int) (int, int) { return r, w - 1 - c }},
		{"vflip", 3, 4, Params{FlipV: true}, func(r, c, h, w int) (int, int) { return h - 1 - r, c }},
		{"both flips", 5, 4, Params{FlipH: true, FlipV: true}, func(r, c, h, w int) (int, int) { return h - 1 - r, w - 1 - c }},
		// NumPy's rot90: the transpose with its rows reversed.
		{"rot90 odd", 5, 5, Params{Rotation: 90}, func(r, c, h, w int) (int, int) { return c, w - 1 - r }},
		{"rot90 even", 4, 4, Params{Rotation: 90}, func(r, c, h, w int) (int, int) { return c, w - 1 - r }},
		{"rot-90", 4, 4, Params{Rotation: -90}, func(r, c, h, w int) (int, int) { return h - 1 - c, r }},
		{"rot180", 3, 6, Params{Rotation: 180}, func(r, c, h, w int) (int, int) { return h - 1 - r, w - 1 - c }},
		{"rot90+hflip", 4, 4, Params{Rotation: 90, FlipH: true}, func(r, c, h, w int) (int, int) { return w - 1 - c, w - 1 - r }},
	}
	for _, tc := range cases {
		for _, s := range layouts(2, tc.h, tc.w) {
			t.Run(fmt.Sprintf("%s/%v", tc.name, s), func(t *testing.T) {
				a := mustNew(t, Config{HorizontalFlip: true, RotationRange: 180}, s)
				x := img(s, distinct)
				got := make([]float32, s.Size())
				a.ApplyParams(got, x, tc.p)
				want := img(s, func(ch, r, c int) float32 {
					sr, sc := tc.src(r, c, tc.h, tc.w)
					return distinct(ch, sr, sc)
				})
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("value %d: got %v, want %v (all: %v)", i, got[i], want[i], got)
					}
				}
			})
		}
	}
}

// TestShiftMovesMarkedPixel: a single 1 in a zero image moves by the shift;
// a half-pixel shift splits it into two halves (exact in binary).
func TestShiftMovesMarkedPixel(t *testing.T) {
	cases := []struct {
		name string
		p    Params
		want map[[2]int]float32
	}{
		{"down 2 left 1", Params{ShiftY: 2, ShiftX: -1}, map[[2]int]float32{{4, 2}: 1}},
		{"up 1", Params{ShiftY: -1}, map[[2]int]float32{{1, 3}: 1}},
		{"crop offset", Params{CropY: -2, CropX: 3}, map[[2]int]float32{{0, 6}: 1}},
		{"right half", Params{ShiftX: 0.5}, map[[2]int]float32{{2, 3}: 0.5, {2, 4}: 0.5}},
		{"off the image", Params{ShiftY: 5}, map[[2]int]float32{}},
	}
	for _, tc := range cases {
		for _, s := range layouts(3, 7, 9) {
			t.Run(fmt.Sprintf("%s/%v", tc.name, s), func(t *testing.T) {
				a := mustNew(t, Config{WidthShift: 0.2, HeightShift: 0.2, CropPadding: 3}, s)
				x := img(s, func(ch, r, c int) float32 {
					if r == 2 && c == 3 {
						return 1
					}
					return 0
				})
				got := make([]float32, s.Size())
				a.ApplyParams(got, x, tc.p)
				want := img(s, func(ch, r, c int) float32 { return tc.want[[2]int{r, c}] })
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("value %d: got %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestFillModes shifts the row a b c d (= 1 2 3 4) and checks the filled
// positions against each mode's documented pattern.
func TestFillModes(t *testing.T) {
	const k = -7 // cval
	cases := []struct {
		mode  FillMode
		shift float64 // content moves right by shift: out[c] = in[c-shift]
		want  [4]float32
	}{
		{Constant, 2, [4]float32{k, k, 1, 2}},
		{Constant, -1, [4]float32{2, 3, 4, k}},
		{Nearest, 2, [4]float32{1, 1, 1, 2}},
		{Nearest, -2, [4]float32{3, 4, 4, 4}},
		{Reflect, 2, [4]float32{2, 1, 1, 2}},  // ba|abcd
		{Reflect, -2, [4]float32{3, 4, 4, 3}}, // abcd|dc
		{Reflect, 6, [4]float32{3, 4, 4, 3}},  // period 8: positions -6..-3
		{Wrap, 2, [4]float32{3, 4, 1, 2}},     // cd|abcd
		{Wrap, -3, [4]float32{4, 1, 2, 3}},    // abcd|abc
		{Wrap, 5, [4]float32{4, 1, 2, 3}},     // period 4
	}
	for _, tc := range cases {
		for _, s := range layouts(2, 3, 4) {
			t.Run(fmt.Sprintf("%v/%v/%v", tc.mode, tc.shift, s), func(t *testing.T) {
				a := mustNew(t, Config{WidthShift: 0.5, FillMode: tc.mode, Cval: k}, s)
				x := img(s, func(ch, r, c int) float32 { return float32(c + 1) })
				got := make([]float32, s.Size())
				a.ApplyParams(got, x, Params{ShiftX: tc.shift})
				want := img(s, func(ch, r, c int) float32 { return tc.want[c] })
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("value %d: got %v, want %v", i, got[i], want[i])
					}
				}
			})
		}
	}
}

// TestBilinearRotation checks a 45-degree rotation against bilinear
// interpolation of a linear ramp, which bilinear sampling reproduces
// exactly up to float32 rounding (tolerance 1e-4 on values up to ~20).
func TestBilinearRotation(t *testing.T) {
	for _, s := range layouts(1, 9, 9) {
		a := mustNew(t, Config{RotationRange: 45, FillMode: Nearest}, s)
		x := img(s, func(_, r, c int) float32 { return float32(2*r + c) })
		got := make([]float32, s.Size())
		a.ApplyParams(got, x, Params{Rotation: 45})
		th := math.Pi / 4
		for r := range 9 {
			for c := range 9 {
				y, xx := float64(r)-4, float64(c)-4
				sy := math.Cos(th)*y + math.Sin(th)*xx + 4
				sx := -math.Sin(th)*y + math.Cos(th)*xx + 4
				// nearest fill clamps the position, and the ramp is linear in it
				sy, sx = math.Min(math.Max(sy, 0), 8), math.Min(math.Max(sx, 0), 8)
				want := 2*sy + sx
				if d := math.Abs(float64(got[at(s, 0, r, c)]) - want); d > 1e-4 {
					t.Fatalf("%v (%d,%d): got %v, want %v", s, r, c, got[at(s, 0, r, c)], want)
				}
			}
		}
	}
}

func TestPhotometric(t *testing.T) {
	s := Shape{C: 2, H: 2, W: 2}
	x := []float32{0, 1, 2, 3, 4, 5, 6, 7}
	cases := []struct {
		name string
		cfg  Config
		p    Params
		want []float32
	}{
		// one offset for all channels, clipped to the image's [0, 7]
		{"channel shift", Config{ChannelShiftRange: 5}, Params{ChannelShift: 2}, []float32{2, 3, 4, 5, 6, 7, 7, 7}},
		{"channel shift down", Config{ChannelShiftRange: 5}, Params{ChannelShift: -3}, []float32{0, 0, 0, 0, 1, 2, 3, 4}},
		{"brightness", Config{BrightnessRange: [2]float64{0.5, 1.5}}, Params{Brightness: 0.5}, []float32{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5}},
		{"rescale", Config{Rescale: 0.25}, Params{}, []float32{0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75}},
		// mean 3.5, std sqrt(5.25)
		{"samplewise", Config{SamplewiseCenter: true, SamplewiseStdNormalization: true}, Params{},
			scaled(x, -3.5, 1/(math.Sqrt(5.25)+1e-6))},
		{"featurewise", Config{FeaturewiseCenter: true, FeaturewiseStdNormalization: true, Mean: []float64{1, 5}, Std: []float64{2, 4}}, Params{},
			[]float32{-0.5, 0, 0.5, 1, -0.25, 0, 0.25, 0.5}},
		{"cutout corner", Config{CutoutSize: 2}, Params{Cutout: true, CutoutY: 0, CutoutX: 0}, []float32{0, 1, 2, 3, 0, 5, 6, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := mustNew(t, tc.cfg, s)
			got := make([]float32, 8)
			a.ApplyParams(got, x, tc.p)
			for i := range got {
				// float32 arithmetic on values below 10: 1e-5 absolute
				if math.Abs(float64(got[i]-tc.want[i])) > 1e-5 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func scaled(x []float32, off, k float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32((float64(v) + off) * k)
	}
	return out
}

// TestFit: after Fit, the featurewise steps give each channel mean 0 and
// std 1 over the training set.
func TestFit(t *testing.T) {
	for _, s := range layouts(3, 4, 5) {
		n := 6
		x := make([]float32, n*s.Size())
		for i := range x {
			x[i] = float32((i*7919)%251) + float32(40*(i%3))
		}
		c := Config{FeaturewiseCenter: true, FeaturewiseStdNormalization: true, Rescale: 1.0 / 255}
		if _, err := New(c, s); err == nil {
			t.Fatal("New accepted featurewise steps without statistics")
		}
		if err := c.Fit(x, n, s); err != nil {
			t.Fatal(err)
		}
		a := mustNew(t, c, s)
		sum, sq := make([]float64, 3), make([]float64, 3)
		out := make([]float32, s.Size())
		for i := range n {
			a.ApplyParams(out, x[i*s.Size():(i+1)*s.Size()], Params{})
			for j, v := range out {
				sum[channelOf(j, s)] += float64(v)
				sq[channelOf(j, s)] += float64(v) * float64(v)
			}
		}
		m := float64(n * s.H * s.W)
		for ch := range 3 {
			mean, v := sum[ch]/m, sq[ch]/m
			// float32 outputs: mean within 1e-5, variance within 1e-4
			if math.Abs(mean) > 1e-5 || math.Abs(v-1) > 1e-4 {
				t.Fatalf("%v channel %d: mean %v, variance %v after featurewise steps", s, ch, mean, v)
			}
		}
	}
}

// TestDrawRanges: every drawn parameter stays in its range, and the flip
// rate is near 1/2 (10,000 draws: the binomial sd is 0.005; allow 0.03).
func TestDrawRanges(t *testing.T) {
	c, err := ParseSpec("rotation=20,shift=0.25,shear=10,zoom=0.8:1.1,hflip,brightness=0.5:1.5,channel_shift=3,crop=2,cutout=4,seed=9")
	if err != nil {
		t.Fatal(err)
	}
	s := Shape{C: 3, H: 8, W: 12}
	a := mustNew(t, c, s)
	flips := 0
	crops := map[int]bool{}
	const n = 10000
	for i := range n {
		p := a.Draw(i%3, i)
		in := func(v, lo, hi float64) bool { return v >= lo && v <= hi }
		if !in(p.Rotation, -20, 20) || !in(p.ShiftY, -2, 2) || !in(p.ShiftX, -3, 3) || !in(p.Shear, -10, 10) ||
			!in(p.ZoomY, 0.8, 1.1) || !in(p.ZoomX, 0.8, 1.1) || !in(p.Brightness, 0.5, 1.5) || !in(p.ChannelShift, -3, 3) ||
			p.CropY < -2 || p.CropY > 2 || p.CropX < -2 || p.CropX > 2 || !p.Cutout || p.CutoutY < 0 || p.CutoutY >= 8 ||
			p.CutoutX < 0 || p.CutoutX >= 12 || p.FlipV {
			t.Fatalf("draw %d out of range: %+v", i, p)
		}
		if p.FlipH {
			flips++
		}
		crops[p.CropX] = true
	}
	if r := float64(flips) / n; r < 0.47 || r > 0.53 {
		t.Errorf("flip rate %v, want about 0.5", r)
	}
	if len(crops) != 5 {
		t.Errorf("crop offsets drawn: %v, want all of -2..2", crops)
	}
	if a.Draw(0, 5) != a.Draw(0, 5) || a.Draw(0, 5) == a.Draw(1, 5) || a.Draw(0, 5) == a.Draw(0, 6) {
		t.Error("draws are not a function of (epoch, index) alone")
	}
	// enabling another transform leaves the rotation drawn unchanged
	c2 := c
	c2.VerticalFlip = true
	if a2 := mustNew(t, c2, s); a2.Draw(3, 7).Rotation != a.Draw(3, 7).Rotation {
		t.Error("enabling vflip changed the rotation drawn")
	}
}

// TestConcurrentApply: results do not depend on the goroutine or order.
func TestConcurrentApply(t *testing.T) {
	c, _ := ParseSpec("rotation=30,shift=0.1,zoom=0.2,hflip,channel_shift=10,cutout=3")
	s := Shape{C: 3, H: 10, W: 10}
	a := mustNew(t, c, s)
	const n = 64
	x := make([]float32, n*s.Size())
	for i := range x {
		x[i] = float32(i % 97)
	}
	run := func(workers int) []float32 {
		out := make([]float32, len(x))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := n - 1 - w; i >= 0; i -= workers {
					sz := s.Size()
					if err := a.Apply(out[i*sz:(i+1)*sz], x[i*sz:(i+1)*sz], 2, i); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		return out
	}
	one, four := run(1), run(4)
	for i := range one {
		if one[i] != four[i] {
			t.Fatalf("value %d differs: %v with 1 goroutine, %v with 4", i, one[i], four[i])
		}
	}
}

func TestNewErrors(t *testing.T) {
	s := Shape{C: 1, H: 8, W: 8}
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{CropPadding: 9}, "crop=9"},
		{Config{CutoutSize: 9}, "cutout=9"},
		{Config{WidthShift: 12}, "width_shift=12"},
		{Config{RotationRange: 200}, "rotation=200"},
		{Config{FeaturewiseCenter: true}, "Fit"},
		{Config{FillMode: 9}, "fill"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg, s)
		if err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %q", tc.cfg, err, tc.want)
		}
	}
	if _, err := New(Config{}, Shape{C: 1, H: 0, W: 3}); err == nil {
		t.Error("New accepted an empty image")
	}
	a := mustNew(t, Config{}, s)
	if err := a.Apply(make([]float32, 64), make([]float32, 63), 0, 4); err == nil || !contains(err.Error(), "sample 4") {
		t.Errorf("Apply of a short image: %v", err)
	}
}
