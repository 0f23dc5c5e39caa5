package tensor

import (
	"math"
	"testing"
)

// halfValue is the value of a binary16 pattern computed from the format's
// definition in float64, independently of HalfToFloat32.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1024+mant, exp-25)
}

func isHalfNaN(h uint16) bool { return h&0x7c00 == 0x7c00 && h&0x3ff != 0 }

// TestHalfExhaustive converts all 65536 patterns to float32 and back: every
// value must be exact, and every non-NaN pattern must come back unchanged
// (NaNs stay NaN; their payload is not kept).
func TestHalfExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := HalfToFloat32(h)
		want := halfValue(h)
		if isHalfNaN(h) {
			if f == f {
				t.Fatalf("%#04x: want NaN, got %g", h, f)
			}
			if back := Float32ToHalf(f); !isHalfNaN(back) {
				t.Fatalf("%#04x: NaN converts back to non-NaN %#04x", h, back)
			}
			continue
		}
		if float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
			t.Fatalf("%#04x: HalfToFloat32 = %g, want %g", h, f, want)
		}
		if back := Float32ToHalf(f); back != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
}

// TestHalfRounding checks round-to-nearest-even between every pair of
// adjacent finite positive halves: the midpoint (exact in float32, which has
// 13 more mantissa bits) goes to the even neighbour, and one float32 ulp
// either side goes to the nearer one.
func TestHalfRounding(t *testing.T) {
	for h := uint16(0); h < 0x7bff; h++ {
		lo, hi := HalfToFloat32(h), HalfToFloat32(h+1)
		mid := float32((float64(lo) + float64(hi)) / 2)
		even := h
		if h&1 == 1 {
			even = h + 1
		}
		cases := []struct {
			f    float32
			want uint16
		}{
			{mid, even},
			{math.Nextafter32(mid, 0), h},
			{math.Nextafter32(mid, float32(math.Inf(1))), h + 1},
		}
		for _, c := range cases {
			if got := Float32ToHalf(c.f); got != c.want {
				t.Fatalf("Float32ToHalf(%g) between %#04x and %#04x = %#04x, want %#04x", c.f, h, h+1, got, c.want)
			}
			if got := Float32ToHalf(-c.f); got != c.want|0x8000 {
				t.Fatalf("Float32ToHalf(%g) = %#04x, want %#04x", -c.f, got, c.want|0x8000)
			}
		}
	}
	// Overflow: the largest half is 65504; from the midpoint to the next
	// (absent) value, 65520, everything rounds to infinity.
	overflow := []struct {
		f    float32
		want uint16
	}{
		{65504, 0x7bff},
		{math.Nextafter32(65520, 0), 0x7bff},
		{65520, 0x7c00},
		{1e10, 0x7c00},
		{-1e10, 0xfc00},
		{float32(math.Inf(1)), 0x7c00},
		{math.SmallestNonzeroFloat32, 0},        // far below the smallest subnormal half
		{float32(math.Ldexp(1, -25)), 0},        // half the smallest subnormal: ties to even (0)
		{float32(math.Ldexp(1.5, -25)), 0x0001}, // above the tie
	}
	for _, c := range overflow {
		if got := Float32ToHalf(c.f); got != c.want {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
}

// TestBFloat16Exhaustive: bfloat16 is the top half of a float32, so every
// pattern converts exactly and every non-NaN pattern comes back unchanged.
func TestBFloat16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		f := BFloat16ToFloat32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("%#04x: BFloat16ToFloat32 bits %#08x", h, math.Float32bits(f))
		}
		back := Float32ToBFloat16(f)
		if f != f {
			if b := BFloat16ToFloat32(back); b == b {
				t.Fatalf("%#04x: NaN converts back to non-NaN %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("%#04x -> %g -> %#04x", h, f, back)
		}
	}
	// Rounding at the midpoint (low 16 bits 0x8000) goes to even; a float32
	// NaN whose payload lies only in the low bits must stay NaN.
	cases := []struct {
		bits uint32
		want uint16
	}{
		{0x3f808000, 0x3f80}, // tie, even stays
		{0x3f818000, 0x3f82}, // tie, odd rounds up
		{0x3f808001, 0x3f81}, // above the tie
		{0x3f807fff, 0x3f80}, // below the tie
		{0x7f800001, 0x7fc0}, // NaN with a low payload
		{0x7f7fffff, 0x7f80}, // max float32 rounds to +Inf
	}
	for _, c := range cases {
		got := Float32ToBFloat16(math.Float32frombits(c.bits))
		if c.bits&0x7fffffff > 0x7f800000 {
			if got&0x7f80 != 0x7f80 || got&0x7f == 0 {
				t.Errorf("Float32ToBFloat16(%#08x) = %#04x, want a NaN", c.bits, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("Float32ToBFloat16(%#08x) = %#04x, want %#04x", c.bits, got, c.want)
		}
	}
}
