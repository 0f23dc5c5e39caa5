package cpu

import (
	"errors"
	"math"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Results that are exact by construction (bool, integer, rounding, index
// movement, Hardmax) are compared exactly. Float math computed in float64
// is compared with 1e-12 relative error against a reference that uses a
// different formula; float32 results carry one rounding to float32, so
// 1e-6 relative (about 8 ulp) bounds them.

func TestLogicalOpsBroadcast(t *testing.T) {
	a := tensor.MustFromSlice([]bool{true, true, false, false, true, false}, 2, 3)
	b := tensor.MustFromSlice([]bool{true, false, true}, 3)
	cases := []struct {
		op string
		f  func(x, y bool) bool
	}{
		{"And", func(x, y bool) bool { return x && y }},
		{"Or", func(x, y bool) bool { return x || y }},
		{"Xor", func(x, y bool) bool { return x != y }},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			got := ewMustRun(t, ewNode("", c.op, 2, 1), 7, a, b)[0]
			if !tensor.SameShape(got.Shape(), []int{2, 3}) {
				t.Fatalf("shape %v, want [2 3]", got.Shape())
			}
			for i, g := range got.Bools() {
				if w := c.f(a.Bools()[i], b.Bools()[i%3]); g != w {
					t.Errorf("element %d = %v, want %v", i, g, w)
				}
			}
		})
	}
	got := ewMustRun(t, ewNode("", "Not", 1, 1), 1, a)[0].Bools()
	for i, g := range got {
		if g == a.Bools()[i] {
			t.Errorf("Not element %d = %v", i, g)
		}
	}
}

func TestBitwiseAndShift(t *testing.T) {
	x16 := tensor.MustFromSlice([]int16{0x0f0f, -1, 0x1234, -32768}, 4)
	y16 := tensor.MustFromSlice([]int16{0x00ff, 0x5555, -0x1234, 1}, 4)
	for _, c := range []struct {
		op string
		f  func(a, b int16) int16
	}{
		{"BitwiseAnd", func(a, b int16) int16 { return a & b }},
		{"BitwiseOr", func(a, b int16) int16 { return a | b }},
		{"BitwiseXor", func(a, b int16) int16 { return a ^ b }},
	} {
		got := ewMustRun(t, ewNode("", c.op, 2, 1), 18, x16, y16)[0].Data().([]int16)
		for i, g := range got {
			if w := c.f(x16.Data().([]int16)[i], y16.Data().([]int16)[i]); g != w {
				t.Errorf("%s element %d = %#x, want %#x", c.op, i, g, w)
			}
		}
	}
	got := ewMustRun(t, ewNode("", "BitwiseNot", 1, 1), 18, tensor.MustFromSlice([]uint8{0, 0xf0, 0xff}, 3))[0].Uint8s()
	if got[0] != 0xff || got[1] != 0x0f || got[2] != 0 {
		t.Errorf("BitwiseNot = %v, want [255 15 0]", got)
	}
	// Shifting by the width or more moves every bit out.
	v := tensor.MustFromSlice([]uint8{0x81, 0x81, 0x81, 0x81}, 4)
	s := tensor.MustFromSlice([]uint8{1, 7, 8, 200}, 4)
	left := ewMustRun(t, ewNode("", "BitShift", 2, 1, graph.AString("direction", "LEFT")), 11, v, s)[0].Uint8s()
	right := ewMustRun(t, ewNode("", "BitShift", 2, 1, graph.AString("direction", "RIGHT")), 11, v, s)[0].Uint8s()
	wantL, wantR := []uint8{0x02, 0x80, 0, 0}, []uint8{0x40, 0x01, 0, 0}
	for i := range wantL {
		if left[i] != wantL[i] || right[i] != wantR[i] {
			t.Errorf("shift by %d: left %#x right %#x, want %#x %#x", s.Uint8s()[i], left[i], right[i], wantL[i], wantR[i])
		}
	}
	if _, err := ewRun(t, ewNode("", "BitShift", 2, 1, graph.AString("direction", "UP")), 11, v, s); err == nil {
		t.Error("BitShift with direction UP: no error")
	}
	if _, err := ewRun(t, ewNode("", "BitShift", 2, 1, graph.AString("direction", "LEFT")), 11, x16, y16); err == nil {
		t.Error("BitShift of int16: no error")
	}
}

func TestModSignConventions(t *testing.T) {
	a := tensor.MustFromSlice([]int32{7, -7, 7, -7, 5, math.MinInt32}, 6)
	b := tensor.MustFromSlice([]int32{3, 3, -3, -3, 0, -1}, 6)
	// Without fmod the result has the divisor's sign; with it the
	// dividend's. A zero divisor gives 0; MinInt32 mod -1 is 0.
	floored := ewMustRun(t, ewNode("", "Mod", 2, 1), 13, a, b)[0].Int32s()
	trunc := ewMustRun(t, ewNode("", "Mod", 2, 1, graph.AInt("fmod", 1)), 13, a, b)[0].Int32s()
	wantF, wantT := []int32{1, 2, -2, -1, 0, 0}, []int32{1, -1, 1, -1, 0, 0}
	for i := range wantF {
		if floored[i] != wantF[i] || trunc[i] != wantT[i] {
			t.Errorf("%d mod %d = %d (fmod %d), want %d (%d)", a.Int32s()[i], b.Int32s()[i], floored[i], trunc[i], wantF[i], wantT[i])
		}
	}
	fa := tensor.MustFromSlice([]float64{5.5, -5.5, 5.5, -5.5}, 4)
	fb := tensor.MustFromSlice([]float64{2, 2, -2, -2}, 4)
	got := ewMustRun(t, ewNode("", "Mod", 2, 1, graph.AInt("fmod", 1)), 13, fa, fb)[0]
	ewCheckClose(t, "float fmod", got, []float64{1.5, -1.5, 1.5, -1.5}, 0, 0)
	got = ewMustRun(t, ewNode("", "Mod", 2, 1), 13, fa, fb)[0]
	ewCheckClose(t, "float floored mod", got, []float64{1.5, 0.5, -0.5, -1.5}, 0, 0)
	h, _ := tensor.FromRaw16(tensor.Float16, []uint16{tensor.Float32ToHalf(-4.5), tensor.Float32ToHalf(7)}, 2)
	d, _ := tensor.FromRaw16(tensor.Float16, []uint16{tensor.Float32ToHalf(2)}, 1)
	got = ewMustRun(t, ewNode("", "Mod", 2, 1, graph.AInt("fmod", 1)), 13, h, d)[0]
	if got.DType() != tensor.Float16 {
		t.Fatalf("float16 Mod has dtype %v", got.DType())
	}
	ewCheckClose(t, "float16 fmod", got, []float64{-0.5, 1}, 0, 0)
}

func TestFloatUnaryOps(t *testing.T) {
	wide := []float64{-3, -1.25, -0.5, 0, 0.3, 1, 2.75}
	unit := []float64{-0.9, -0.5, 0, 0.25, 0.8}
	cases := []struct {
		op    string
		attrs []*graph.Attribute
		x     []float64
		ref   func(float64) float64
	}{
		{"Ceil", nil, wide, func(x float64) float64 { return -math.Floor(-x) }},
		{"Floor", nil, wide, func(x float64) float64 { return -math.Ceil(-x) }},
		{"Sin", nil, wide, func(x float64) float64 { return math.Cos(math.Pi/2 - x) }},
		{"Cos", nil, wide, func(x float64) float64 { return math.Sin(math.Pi/2 - x) }},
		{"Tan", nil, wide, func(x float64) float64 { return math.Sin(x) / math.Cos(x) }},
		{"Asin", nil, unit, func(x float64) float64 { return math.Atan(x / math.Sqrt(1-x*x)) }},
		{"Acos", nil, unit, func(x float64) float64 { return math.Pi/2 - math.Asin(x) }},
		{"Atan", nil, wide, func(x float64) float64 { return math.Asin(x / math.Sqrt(1+x*x)) }},
		{"Sinh", nil, wide, func(x float64) float64 { return (math.Exp(x) - math.Exp(-x)) / 2 }},
		{"Cosh", nil, wide, func(x float64) float64 { return (math.Exp(x) + math.Exp(-x)) / 2 }},
		{"Asinh", nil, wide, func(x float64) float64 { return math.Copysign(math.Log(math.Abs(x)+math.Sqrt(x*x+1)), x) }},
		{"Acosh", nil, []float64{1, 1.5, 3, 10}, func(x float64) float64 { return math.Log(x + math.Sqrt(x*x-1)) }},
		{"Atanh", nil, unit, func(x float64) float64 { return 0.5 * math.Log((1+x)/(1-x)) }},
		{"Softplus", nil, wide, func(x float64) float64 { return math.Log(1 + math.Exp(x)) }},
		{"Softsign", nil, wide, func(x float64) float64 { return x / (1 + math.Abs(x)) }},
		{"Elu", nil, wide, func(x float64) float64 { return math.Max(x, 0) + math.Min(math.Exp(x)-1, 0) }},
		{"Elu", []*graph.Attribute{graph.AFloat("alpha", 2)}, wide, func(x float64) float64 { return math.Max(x, 0) + 2*math.Min(math.Exp(x)-1, 0) }},
		{"Selu", nil, wide, func(x float64) float64 {
			const alpha, gamma = 1.67326319217681884765625, 1.05070102214813232421875
			return gamma * (math.Max(x, 0) + alpha*math.Min(math.Exp(x)-1, 0))
		}},
		{"Celu", []*graph.Attribute{graph.AFloat("alpha", 2)}, wide, func(x float64) float64 { return math.Max(x, 0) + math.Min(0, 2*(math.Exp(x/2)-1)) }},
		{"HardSigmoid", []*graph.Attribute{graph.AFloat("alpha", 0.5), graph.AFloat("beta", 0.625)}, wide, func(x float64) float64 {
			return math.Max(0, math.Min(1, 0.5*x+0.625))
		}},
		{"HardSwish", nil, []float64{-4, -3, -1, 0, 1, 3, 4}, func(x float64) float64 { return x * math.Max(0, math.Min(1, (x+3)/6)) }},
		{"ThresholdedRelu", []*graph.Attribute{graph.AFloat("alpha", 0.3)}, wide, func(x float64) float64 {
			if x > 0.3 {
				return x
			}
			return 0
		}},
		{"Mish", nil, wide, func(x float64) float64 {
			e := math.Exp(x)
			return x * ((1+e)*(1+e) - 1) / ((1+e)*(1+e) + 1) // tanh(log(1+e^x))
		}},
	}
	for _, c := range cases {
		t.Run(c.op, func(t *testing.T) {
			want := make([]float64, len(c.x))
			for i, v := range c.x {
				want[i] = c.ref(v)
			}
			x64 := tensor.MustFromSlice(append([]float64(nil), c.x...), len(c.x))
			got := ewMustRun(t, ewNode("", c.op, 1, 1, c.attrs...), 18, x64)[0]
			ewCheckClose(t, c.op+" float64", got, want, 1e-12, 1e-15)
			x32 := tensor.New(tensor.Float32, len(c.x))
			for i, v := range c.x {
				x32.Float32s()[i] = float32(v) // every input is exact in float32
			}
			got = ewMustRun(t, ewNode("", c.op, 1, 1, c.attrs...), 18, x32)[0]
			ewCheckClose(t, c.op+" float32", got, want, 1e-6, 1e-7)
		})
	}
	if _, err := ewRun(t, ewNode("", "Sin", 1, 1), 18, tensor.MustFromSlice([]int32{1}, 1)); err == nil {
		t.Error("Sin of int32: no error")
	}
}

func TestRoundHalfToEven(t *testing.T) {
	x := tensor.MustFromSlice([]float32{0.5, 1.5, 2.5, -0.5, -2.5, 2.4, -2.6, 3}, 8)
	got := ewMustRun(t, ewNode("", "Round", 1, 1), 11, x)[0]
	ewCheckClose(t, "Round", got, []float64{0, 2, 2, 0, -2, 2, -3, 3}, 0, 0)
}

func TestIsNaNIsInf(t *testing.T) {
	inf := math.Inf(1)
	x := tensor.MustFromSlice([]float32{1, float32(math.NaN()), float32(inf), float32(-inf), 0}, 5)
	cases := []struct {
		op    string
		attrs []*graph.Attribute
		want  []bool
	}{
		{"IsNaN", nil, []bool{false, true, false, false, false}},
		{"IsInf", nil, []bool{false, false, true, true, false}},
		{"IsInf", []*graph.Attribute{graph.AInt("detect_negative", 0)}, []bool{false, false, true, false, false}},
		{"IsInf", []*graph.Attribute{graph.AInt("detect_positive", 0)}, []bool{false, false, false, true, false}},
	}
	for _, c := range cases {
		got := ewMustRun(t, ewNode("", c.op, 1, 1, c.attrs...), 20, x)[0]
		if got.DType() != tensor.Bool {
			t.Fatalf("%s has dtype %v", c.op, got.DType())
		}
		for i, g := range got.Bools() {
			if g != c.want[i] {
				t.Errorf("%s %v element %d = %v, want %v", c.op, c.attrs, i, g, c.want[i])
			}
		}
	}
}

func TestSignAndShrink(t *testing.T) {
	got := ewMustRun(t, ewNode("", "Sign", 1, 1), 13, tensor.MustFromSlice([]int8{-128, -3, 0, 5}, 4))[0].Data().([]int8)
	for i, w := range []int8{-1, -1, 0, 1} {
		if got[i] != w {
			t.Errorf("Sign int8 element %d = %d, want %d", i, got[i], w)
		}
	}
	f := ewMustRun(t, ewNode("", "Sign", 1, 1), 13, tensor.MustFromSlice([]float64{-0.1, 0, 7}, 3))[0]
	ewCheckClose(t, "Sign float64", f, []float64{-1, 0, 1}, 0, 0)
	u := ewMustRun(t, ewNode("", "Sign", 1, 1), 13, tensor.MustFromSlice([]uint32{0, 9}, 2))[0].Data().([]uint32)
	if u[0] != 0 || u[1] != 1 {
		t.Errorf("Sign uint32 = %v, want [0 1]", u)
	}
	shrink := ewNode("", "Shrink", 1, 1, graph.AFloat("lambd", 1.5), graph.AFloat("bias", 0.5))
	f = ewMustRun(t, shrink, 9, tensor.MustFromSlice([]float32{-3, -1.5, -1, 0, 1.5, 2}, 6))[0]
	ewCheckClose(t, "Shrink float32", f, []float64{-2.5, 0, 0, 0, 0, 1.5}, 0, 0)
	shrinkInt := ewNode("", "Shrink", 1, 1, graph.AFloat("lambd", 1.5), graph.AFloat("bias", 1))
	i := ewMustRun(t, shrinkInt, 9, tensor.MustFromSlice([]int32{-3, -1, 1, 2}, 4))[0].Int32s()
	for k, w := range []int32{-2, 0, 0, 1} {
		if i[k] != w {
			t.Errorf("Shrink int32 element %d = %d, want %d", k, i[k], w)
		}
	}
}

func TestPReluSlopeBroadcast(t *testing.T) {
	x := tensor.MustFromSlice([]float32{-1, 2, -3, 4, -5, 6, -1, -2, -3, -4, -5, -6}, 2, 3, 2)
	// Opset 16: a slope of shape [3, 1] broadcasts per channel of axis 1.
	slope := tensor.MustFromSlice([]float32{0.5, 2, -1}, 3, 1)
	got := ewMustRun(t, ewNode("", "PRelu", 2, 1), 16, x, slope)[0]
	want := []float64{-0.5, 2, -6, 4, 5, 6, -0.5, -1, -6, -8, 5, 6}
	ewCheckClose(t, "PRelu [3,1]", got, want, 0, 0)
	// Opset 6: a slope of shape [3] is one value per channel of axis 1.
	flat := tensor.MustFromSlice([]float32{0.5, 2, -1}, 3)
	got = ewMustRun(t, ewNode("", "PRelu", 2, 1), 6, x, flat)[0]
	ewCheckClose(t, "PRelu legacy [3]", got, want, 0, 0)
	// From opset 7 the same slope broadcasts from the right, which fails
	// against a trailing dim of 2.
	if _, err := ewRun(t, ewNode("", "PRelu", 2, 1), 7, x, flat); err == nil {
		t.Error("PRelu opset 7 with slope [3] against [2,3,2]: no error")
	}
	xi := tensor.MustFromSlice([]int64{-4, 4}, 2)
	gi := ewMustRun(t, ewNode("", "PRelu", 2, 1), 16, xi, tensor.MustFromSlice([]int64{3}, 1))[0].Int64s()
	if gi[0] != -12 || gi[1] != 4 {
		t.Errorf("PRelu int64 = %v, want [-12 4]", gi)
	}
}

func TestHardmaxAxisSemantics(t *testing.T) {
	// Ties resolve to the first largest element (the pair 4, 4).
	x := tensor.MustFromSlice([]float64{1, 3, 0, 5, 2, 9, 4, 4}, 2, 2, 2)
	cases := []struct {
		opset int64
		attrs []*graph.Attribute
		want  []float64
	}{
		{13, nil, []float64{0, 1, 0, 1, 0, 1, 1, 0}}, // default axis -1
		{13, []*graph.Attribute{graph.AInt("axis", 1)}, []float64{1, 0, 0, 1, 0, 1, 1, 0}},
		{13, []*graph.Attribute{graph.AInt("axis", 0)}, []float64{0, 0, 0, 1, 1, 1, 1, 0}},
		// Before opset 13, axis 1 (the default) makes each sample's four
		// trailing values one row.
		{11, nil, []float64{0, 0, 0, 1, 0, 1, 0, 0}},
	}
	for _, c := range cases {
		got := ewMustRun(t, ewNode("", "Hardmax", 1, 1, c.attrs...), c.opset, x)[0]
		ewCheckClose(t, "Hardmax", got, c.want, 0, 0)
	}
}

func TestGatherNDBatchDims(t *testing.T) {
	data := tensor.MustFromSlice([]int32{0, 1, 2, 3, 4, 5, 6, 7}, 2, 2, 2)
	cases := []struct {
		name      string
		batchDims int64
		idx       *tensor.Tensor
		shape     []int
		want      []int32
	}{
		{"full tuples", 0, tensor.MustFromSlice([]int64{0, 1, 1, 1, 0, 0}, 2, 3), []int{2}, []int32{3, 4}},
		{"slices", 0, tensor.MustFromSlice([]int64{1, -2}, 2, 1), []int{2, 2, 2}, []int32{4, 5, 6, 7, 0, 1, 2, 3}},
		{"pairs", 0, tensor.MustFromSlice([]int64{0, 1, 1, 0}, 2, 2), []int{2, 2}, []int32{2, 3, 4, 5}},
		{"batch 1", 1, tensor.MustFromSlice([]int64{1, 0}, 2, 1), []int{2, 2}, []int32{2, 3, 4, 5}},
		{"batch 1 tuples", 1, tensor.MustFromSlice([]int32{1, 0, 0, 1}, 2, 1, 2), []int{2, 1}, []int32{2, 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := ewNode("", "GatherND", 2, 1, graph.AInt("batch_dims", c.batchDims))
			got := ewMustRun(t, n, 13, data, c.idx)[0]
			if !tensor.SameShape(got.Shape(), c.shape) {
				t.Fatalf("shape %v, want %v", got.Shape(), c.shape)
			}
			for i, g := range got.Int32s() {
				if g != c.want[i] {
					t.Errorf("element %d = %d, want %d", i, g, c.want[i])
				}
			}
		})
	}
	bad := tensor.MustFromSlice([]int64{0, 2}, 1, 2)
	if _, err := ewRun(t, ewNode("", "GatherND", 2, 1), 13, data, bad); err == nil {
		t.Error("GatherND with index 2 on a dim of 2: no error")
	}
	long := tensor.MustFromSlice([]int64{0, 0, 0, 0}, 1, 4)
	var ne *graph.NodeError
	if _, err := ewRun(t, ewNode("", "GatherND", 2, 1), 13, data, long); !errors.As(err, &ne) {
		t.Errorf("GatherND with 4-tuples into rank 3: err %v, want a node error", err)
	}
}

func TestInstanceNormalization(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	const n, c, s = 2, 3, 5
	x := ewRandF64(r, n, c, s)
	scale := tensor.MustFromSlice([]float64{1, -2, 0.5}, c)
	bias := tensor.MustFromSlice([]float64{0, 1, -3}, c)
	const eps = 1e-3
	got := ewMustRun(t, ewNode("", "InstanceNormalization", 3, 1, graph.AFloat("epsilon", eps)), 6, x, scale, bias)[0]
	want := make([]float64, n*c*s)
	xv := x.Float64s()
	for g := 0; g < n*c; g++ {
		plane := xv[g*s : (g+1)*s]
		var mean, sq float64
		for _, v := range plane {
			mean += v / s
		}
		for _, v := range plane {
			sq += (v - mean) * (v - mean) / s
		}
		for j, v := range plane {
			want[g*s+j] = scale.Float64s()[g%c]*(v-mean)/math.Sqrt(sq+float64(float32(eps))) + bias.Float64s()[g%c]
		}
	}
	ewCheckClose(t, "InstanceNormalization", got, want, 1e-12, 1e-12)
}

func TestLpNormalization(t *testing.T) {
	x := tensor.MustFromSlice([]float64{3, 4, 0, 0, -1, 1}, 3, 2)
	got := ewMustRun(t, ewNode("", "LpNormalization", 1, 1), 1, x)[0]
	s2 := 1 / math.Sqrt2
	// A zero vector has no direction and stays zero.
	ewCheckClose(t, "L2 axis -1", got, []float64{0.6, 0.8, 0, 0, -s2, s2}, 1e-15, 0)
	got = ewMustRun(t, ewNode("", "LpNormalization", 1, 1, graph.AInt("p", 1), graph.AInt("axis", 0)), 1, x)[0]
	ewCheckClose(t, "L1 axis 0", got, []float64{0.75, 0.8, 0, 0, -0.25, 0.2}, 1e-15, 0)
	if _, err := ewRun(t, ewNode("", "LpNormalization", 1, 1, graph.AInt("p", 3)), 1, x); err == nil {
		t.Error("LpNormalization with p=3: no error")
	}
}

func TestMeanVarianceNormalization(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	cases := []struct {
		axes  []int64
		shape []int
	}{
		{nil, []int{2, 3, 2, 2}},      // default axes [0, 2, 3]
		{[]int64{1}, []int{2, 3, 4}},  // inner dims kept
		{[]int64{-1}, []int{2, 3, 4}}, // the last dim only
		{[]int64{0, 1, 2}, []int{2, 3, 4}},
	}
	for _, c := range cases {
		var attrs []*graph.Attribute
		if c.axes != nil {
			attrs = append(attrs, graph.AInts("axes", c.axes...))
		}
		x := ewRandF64(r, c.shape...)
		got := ewMustRun(t, ewNode("", "MeanVarianceNormalization", 1, 1, attrs...), 13, x)[0]
		axes := c.axes
		if axes == nil {
			axes = []int64{0, 2, 3}
		}
		// Reference: group index of each element from its coordinates.
		red := make([]bool, len(c.shape))
		for _, a := range axes {
			red[(int(a)+len(c.shape))%len(c.shape)] = true
		}
		strides := tensor.Strides(c.shape)
		group := make([]int, x.Len())
		for i := range group {
			key := 0
			for d, st := range strides {
				if !red[d] {
					key = key*c.shape[d] + (i/st)%c.shape[d]
				}
			}
			group[i] = key
		}
		sum, sq, cnt := map[int]float64{}, map[int]float64{}, map[int]float64{}
		for i, v := range x.Float64s() {
			sum[group[i]] += v
			sq[group[i]] += v * v
			cnt[group[i]]++
		}
		want := make([]float64, x.Len())
		for i, v := range x.Float64s() {
			g := group[i]
			m := sum[g] / cnt[g]
			want[i] = (v - m) / (math.Sqrt(sq[g]/cnt[g]-m*m) + 1e-9)
		}
		ewCheckClose(t, "MVN", got, want, 1e-9, 1e-12)
	}
}

func TestExtraSchemas(t *testing.T) {
	b := graph.NewType(tensor.Bool, graph.Shape{graph.Sym("N"), graph.D(3)})
	f := graph.NewType(tensor.Float32, graph.Shape{graph.Sym("N"), graph.D(3)})
	i64 := func(s ...graph.Dim) *graph.Type { return graph.NewType(tensor.Int64, s) }
	f3 := func(s ...graph.Dim) *graph.Type { return graph.NewType(tensor.Float32, s) }
	cases := []struct {
		name  string
		node  *graph.Node
		opset int64
		in    []*graph.Type
		want  string // output type, "" when inference must fail
	}{
		{"And symbolic", ewNode("", "And", 2, 1), 7, []*graph.Type{b, graph.NewType(tensor.Bool, graph.Shape{graph.D(3)})}, "bool[N,3]"},
		{"And float", ewNode("", "And", 2, 1), 7, []*graph.Type{f, b}, ""},
		{"Not float", ewNode("", "Not", 1, 1), 1, []*graph.Type{f}, ""},
		{"IsNaN", ewNode("", "IsNaN", 1, 1), 9, []*graph.Type{f}, "bool[N,3]"},
		{"Sin int", ewNode("", "Sin", 1, 1), 7, []*graph.Type{i64(graph.D(2))}, ""},
		{"Mod mixed", ewNode("", "Mod", 2, 1), 13, []*graph.Type{f, i64(graph.D(3))}, ""},
		{"BitShift int64", ewNode("", "BitShift", 2, 1, graph.AString("direction", "LEFT")), 11, []*graph.Type{i64(graph.D(2)), i64(graph.D(2))}, ""},
		{"PRelu slope", ewNode("", "PRelu", 2, 1), 16, []*graph.Type{f, graph.NewType(tensor.Float32, graph.Shape{graph.D(1), graph.D(3)})}, "float32[N,3]"},
		{"PRelu bad slope", ewNode("", "PRelu", 2, 1), 16, []*graph.Type{f, graph.NewType(tensor.Float32, graph.Shape{graph.D(2), graph.D(3), graph.D(3)})}, ""},
		{"GatherND", ewNode("", "GatherND", 2, 1), 13, []*graph.Type{graph.NewType(tensor.Float32, graph.Shape{graph.Sym("A"), graph.D(4), graph.D(5)}), i64(graph.Sym("K"), graph.D(2))}, "float32[K,5]"},
		{"GatherND batch", ewNode("", "GatherND", 2, 1, graph.AInt("batch_dims", 1)), 13, []*graph.Type{graph.NewType(tensor.Float32, graph.Shape{graph.D(2), graph.D(4), graph.D(5)}), i64(graph.D(2), graph.D(7), graph.D(1))}, "float32[2,7,5]"},
		{"GatherND unknown k", ewNode("", "GatherND", 2, 1), 13, []*graph.Type{f, i64(graph.D(2), graph.Unknown)}, "float32[...]"},
		{"GatherND k too big", ewNode("", "GatherND", 2, 1), 13, []*graph.Type{f, i64(graph.D(3))}, ""},
		{"InstanceNorm", ewNode("", "InstanceNormalization", 3, 1), 6, []*graph.Type{graph.NewType(tensor.Float32, graph.Shape{graph.Sym("N"), graph.D(3), graph.D(8)}), graph.NewType(tensor.Float32, graph.Shape{graph.D(3)}), graph.NewType(tensor.Float32, graph.Shape{graph.D(3)})}, "float32[N,3,8]"},
		{"InstanceNorm channels", ewNode("", "InstanceNormalization", 3, 1), 6, []*graph.Type{graph.NewType(tensor.Float32, graph.Shape{graph.Sym("N"), graph.D(3), graph.D(8)}), graph.NewType(tensor.Float32, graph.Shape{graph.D(4)}), graph.NewType(tensor.Float32, graph.Shape{graph.D(4)})}, ""},
		{"MVN bad axis", ewNode("", "MeanVarianceNormalization", 1, 1, graph.AInts("axes", 5)), 13, []*graph.Type{f}, ""},
		{"Einsum symbolic", ewNode("", "Einsum", 2, 1, graph.AString("equation", "bij,bjk->bik")), 12, []*graph.Type{f3(graph.Sym("N"), graph.D(3), graph.D(4)), f3(graph.Sym("N"), graph.D(4), graph.D(5))}, "float32[N,3,5]"},
		{"Einsum ellipsis broadcast", ewNode("", "Einsum", 2, 1, graph.AString("equation", "...ij,...jk")), 12, []*graph.Type{f3(graph.D(7), graph.D(1), graph.D(3), graph.D(4)), f3(graph.D(2), graph.D(4), graph.D(5))}, "float32[7,2,3,5]"},
		{"Einsum mismatch", ewNode("", "Einsum", 2, 1, graph.AString("equation", "ij,jk->ik")), 12, []*graph.Type{f3(graph.D(3), graph.D(4)), f3(graph.D(6), graph.D(5))}, ""},
		{"Hardmax bad axis", ewNode("", "Hardmax", 1, 1, graph.AInt("axis", 2)), 13, []*graph.Type{f}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := graph.Lookup("", c.node.OpType).Infer(c.node, c.in, c.opset)
			if c.want == "" {
				var ne *graph.NodeError
				if !errors.As(err, &ne) {
					t.Fatalf("got %v, %v; want a node error", out, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := out[0].String(); got != c.want {
				t.Errorf("output %s, want %s", got, c.want)
			}
		})
	}
}

func TestEinsumAgainstLoops(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	a := ewRandF64(r, 2, 3, 4) // b i j
	b := ewRandF64(r, 2, 4, 5) // b j k
	sq := ewRandF64(r, 2, 3, 3)
	av, bv, sv := a.Float64s(), b.Float64s(), sq.Float64s()
	at := func(x []float64, s []int, idx ...int) float64 {
		o := 0
		for d, i := range idx {
			o = o*s[d] + i
		}
		return x[o]
	}
	matmul := make([]float64, 2*3*5)
	for bb := 0; bb < 2; bb++ {
		for i := 0; i < 3; i++ {
			for k := 0; k < 5; k++ {
				for j := 0; j < 4; j++ {
					matmul[(bb*3+i)*5+k] += at(av, []int{2, 3, 4}, bb, i, j) * at(bv, []int{2, 4, 5}, bb, j, k)
				}
			}
		}
	}
	batchSum := make([]float64, 3*5)
	for o, v := range matmul {
		batchSum[o%15] += v
	}
	transposed := make([]float64, 4*3*2) // "bij->jib"
	sumAll := 0.0
	for bb := 0; bb < 2; bb++ {
		for i := 0; i < 3; i++ {
			for j := 0; j < 4; j++ {
				v := at(av, []int{2, 3, 4}, bb, i, j)
				transposed[(j*3+i)*2+bb] = v
				sumAll += v
			}
		}
	}
	diag := make([]float64, 2*3) // "...ii->...i"
	trace := make([]float64, 2)  // "bii" implicit -> "b"
	for bb := 0; bb < 2; bb++ {
		for i := 0; i < 3; i++ {
			v := at(sv, []int{2, 3, 3}, bb, i, i)
			diag[bb*3+i] = v
			trace[bb] += v
		}
	}
	cases := []struct {
		eq    string
		in    []*tensor.Tensor
		shape []int
		want  []float64
	}{
		{"bij, bjk -> bik", []*tensor.Tensor{a, b}, []int{2, 3, 5}, matmul},
		// Implicit output: the letters that occur once (i, k); b is summed too.
		{"bij,bjk", []*tensor.Tensor{a, b}, []int{3, 5}, batchSum},
		{"...ij,...jk->...ik", []*tensor.Tensor{a, b}, []int{2, 3, 5}, matmul},
		{"bij->jib", []*tensor.Tensor{a}, []int{4, 3, 2}, transposed},
		{"bij->", []*tensor.Tensor{a}, []int{}, []float64{sumAll}},
		{"...ii ->...i", []*tensor.Tensor{sq}, []int{2, 3}, diag},
		{"bii->b", []*tensor.Tensor{sq}, []int{2}, trace},
	}
	for _, c := range cases {
		t.Run(c.eq, func(t *testing.T) {
			n := ewNode("", "Einsum", len(c.in), 1, graph.AString("equation", c.eq))
			got := ewMustRun(t, n, 12, c.in...)[0]
			if !tensor.SameShape(got.Shape(), c.shape) {
				t.Fatalf("shape %v, want %v", got.Shape(), c.shape)
			}
			ewCheckClose(t, c.eq, got, c.want, 1e-12, 1e-12)
		})
	}
	// Integer operands: an exact inner product.
	x := tensor.MustFromSlice([]int32{1, -2, 3}, 3)
	y := tensor.MustFromSlice([]int32{4, 5, -6}, 3)
	if got := ewMustRun(t, ewNode("", "Einsum", 2, 1, graph.AString("equation", "i,i")), 12, x, y)[0].Int32s(); got[0] != -24 {
		t.Errorf("i,i = %d, want -24", got[0])
	}
	// Each bad equation is applied to one input of shape [2, 3] (the last
	// one to the rank-3 a), so that only the named fault can make it fail.
	m := ewRandF64(r, 2, 3)
	for _, c := range []struct {
		eq string
		x  *tensor.Tensor
	}{
		{"ij,jk->ik", m}, // two terms, one input
		{"ij->ii", m},    // repeated output subscript
		{"i.j->ij", m},   // not a letter
		{"ij->k", m},     // output subscript in no input
		{"ij->i", a},     // rank 3 against two subscripts
	} {
		var ne *graph.NodeError
		if _, err := ewRun(t, ewNode("", "Einsum", 1, 1, graph.AString("equation", c.eq)), 12, c.x); !errors.As(err, &ne) {
			t.Errorf("equation %q on shape %v: err %v, want a node error", c.eq, c.x.Shape(), err)
		}
	}
}
