package cpu

import (
	"math"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Central differences with h = 1e-6 in float64 have truncation error
// O(h^2 * f”') and rounding error O(eps/h) ~ 1e-10 relative to the
// values here (|x| <~ 3), so 1e-6 absolute + 1e-6 relative is a safe but
// still sharp tolerance.
const fdRtol, fdAtol = 1e-6, 1e-6

func TestActivationGradsMatchFiniteDifferences(t *testing.T) {
	cases := []struct {
		fwd, grad string
		attrs     []*graph.Attribute
		useOutput bool // the grad op takes the forward output Y, not X
	}{
		{"Relu", "ReluGrad", nil, true},
		{"Sigmoid", "SigmoidGrad", nil, true},
		{"Tanh", "TanhGrad", nil, true},
		{"LeakyRelu", "LeakyReluGrad", []*graph.Attribute{graph.AFloat("alpha", 0.2)}, false},
		{"LeakyRelu", "LeakyReluGrad", nil, false},
		{"Gelu", "GeluGrad", nil, false},
		{"Gelu", "GeluGrad", []*graph.Attribute{graph.AString("approximate", "tanh")}, false},
	}
	r := rand.New(rand.NewSource(3))
	for _, c := range cases {
		t.Run(c.grad, func(t *testing.T) {
			x := ewRandF64(r, 3, 7)
			for i, v := range x.Float64s() { // keep away from Relu's kink
				if math.Abs(v) < 1e-3 {
					x.Float64s()[i] = 0.5
				}
			}
			dy := ewRandF64(r, 3, 7)
			fwd := ewNode("", c.fwd, 1, 1, c.attrs...)
			L := func() float64 { return ewDot(dy, ewMustRun(t, fwd, 20, x)[0]) }
			want := ewNumGrad(x, L)
			second := x
			if c.useOutput {
				second = ewMustRun(t, fwd, 20, x)[0]
			}
			got := ewMustRun(t, ewNode(graph.DomainGotrain, c.grad, 2, 1, c.attrs...), 1, dy, second)[0]
			ewCheckClose(t, c.grad, got, want, fdRtol, fdAtol)
		})
	}
}

func TestActivationGradFloat32(t *testing.T) {
	// The float32 kernels compute what the float64 ones do, to float32 precision.
	dy := tensor.MustFromSlice([]float32{1, -2, 3, 0.5}, 4)
	y := tensor.MustFromSlice([]float32{0.5, 0.25, -1, 2}, 4)
	got := ewMustRun(t, ewNode(graph.DomainGotrain, "SigmoidGrad", 2, 1), 1, dy, y)[0]
	ewCheckClose(t, "SigmoidGrad", got, []float64{0.25, -0.375, -6, -1}, 1e-7, 0)
	got = ewMustRun(t, ewNode(graph.DomainGotrain, "ReluGrad", 2, 1), 1, dy, y)[0]
	ewCheckClose(t, "ReluGrad", got, []float64{1, -2, 0, 0.5}, 0, 0)
}

func TestIntegerDivision(t *testing.T) {
	a := tensor.MustFromSlice([]int32{-7, 7, -7, 7, 5, math.MinInt32}, 6)
	b := tensor.MustFromSlice([]int32{2, 2, -2, -2, 0, -1}, 6)
	got := ewMustRun(t, ewNode("", "Div", 2, 1), 14, a, b)[0].Int32s()
	// Truncation toward zero; division by zero gives 0 rather than a trap;
	// MinInt32 / -1 wraps.
	want := []int32{-3, 3, 3, -3, 0, math.MinInt32}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d / %d = %d, want %d", a.Int32s()[i], b.Int32s()[i], got[i], want[i])
		}
	}
}

func TestPowMixedTypes(t *testing.T) {
	base := tensor.MustFromSlice([]int64{2, 3, -2, 5}, 4)
	exp := tensor.MustFromSlice([]int64{10, 3, 3, 0}, 4)
	got := ewMustRun(t, ewNode("", "Pow", 2, 1), 15, base, exp)[0]
	ewCheckClose(t, "int pow", got, []float64{1024, 27, -8, 1}, 0, 0)
	fb := tensor.MustFromSlice([]float32{4, 2, 9}, 3)
	fe := tensor.MustFromSlice([]int32{2}, 1)
	got = ewMustRun(t, ewNode("", "Pow", 2, 1), 15, fb, fe)[0]
	if got.DType() != tensor.Float32 {
		t.Fatalf("Pow(float32, int32) has dtype %v", got.DType())
	}
	ewCheckClose(t, "float^int", got, []float64{16, 4, 81}, 0, 0)
}

func TestClipAttributesAndInputs(t *testing.T) {
	x := tensor.MustFromSlice([]float32{-3, -1, 0, 2, 5}, 5)
	got := ewMustRun(t, ewNode("", "Clip", 1, 1, graph.AFloat("min", -1.5), graph.AFloat("max", 2.5)), 6, x)[0]
	ewCheckClose(t, "opset 6", got, []float64{-1.5, -1, 0, 2, 2.5}, 0, 0)
	n := ewNode("", "Clip", 3, 1)
	got = ewMustRun(t, n, 13, x, nil, tensor.MustFromSlice([]float32{1}))[0]
	ewCheckClose(t, "max only", got, []float64{-3, -1, 0, 1, 1}, 0, 0)
	xi := tensor.MustFromSlice([]int8{-100, 0, 100}, 3)
	got = ewMustRun(t, n, 13, xi, tensor.MustFromSlice([]int8{-5}), tensor.MustFromSlice([]int8{7}))[0]
	ewCheckClose(t, "int8", got, []float64{-5, 0, 7}, 0, 0)
}

func TestVariadicMeanBroadcasts(t *testing.T) {
	a := tensor.MustFromSlice([]float64{1, 2, 3, 4, 5, 6}, 2, 3)
	b := tensor.MustFromSlice([]float64{10, 20, 30}, 3)
	c := tensor.MustFromSlice([]float64{100, 200}, 2, 1)
	got := ewMustRun(t, ewNode("", "Mean", 3, 1), 13, a, b, c)[0]
	want := []float64{111.0 / 3, 122.0 / 3, 133.0 / 3, 214.0 / 3, 225.0 / 3, 236.0 / 3}
	ewCheckClose(t, "Mean", got, want, 1e-15, 0)
	got = ewMustRun(t, ewNode("", "Max", 3, 1), 13, a, b, c)[0]
	ewCheckClose(t, "Max", got, []float64{100, 100, 100, 200, 200, 200}, 0, 0)
}

func TestWhereStringsAndHalf(t *testing.T) {
	cond := tensor.MustFromSlice([]bool{true, false}, 2)
	x := tensor.MustFromSlice([]string{"a", "b"}, 2)
	y := tensor.MustFromSlice([]string{"z"}, 1)
	got := ewMustRun(t, ewNode("", "Where", 3, 1), 16, cond, x, y)[0].Data().([]string)
	if got[0] != "a" || got[1] != "z" {
		t.Errorf("Where = %v, want [a z]", got)
	}
	h, _ := tensor.FromRaw16(tensor.Float16, []uint16{tensor.Float32ToHalf(1.5), tensor.Float32ToHalf(-2)}, 2)
	g, _ := tensor.FromRaw16(tensor.Float16, []uint16{tensor.Float32ToHalf(0.25)}, 1)
	out := ewMustRun(t, ewNode("", "Where", 3, 1), 16, cond, h, g)[0]
	ewCheckClose(t, "Where float16", out, []float64{1.5, 0.25}, 0, 0)
	out = ewMustRun(t, ewNode("", "Add", 2, 1), 14, h, g)[0]
	ewCheckClose(t, "Add float16", out, []float64{1.75, -1.75}, 0, 0)
}
