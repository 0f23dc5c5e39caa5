package cpu

import (
	"math"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func castNode(to tensor.DType) *graph.Node {
	return ewNode("", "Cast", 1, 1, graph.AInt("to", int64(to)))
}

func TestCastNumbers(t *testing.T) {
	x := tensor.MustFromSlice([]float64{-2.7, -0.5, 0, 1.9, 300}, 5)
	cases := []struct {
		to   tensor.DType
		want []float64
	}{
		{tensor.Int32, []float64{-2, 0, 0, 1, 300}}, // truncation toward zero
		{tensor.Int64, []float64{-2, 0, 0, 1, 300}},
		{tensor.Bool, []float64{1, 1, 0, 1, 1}},
		{tensor.Float16, []float64{-2.69921875, -0.5, 0, 1.900390625, 300}},
		{tensor.BFloat16, []float64{-2.703125, -0.5, 0, 1.8984375, 300}},
	}
	for _, c := range cases {
		got := ewMustRun(t, castNode(c.to), 19, x)[0]
		if got.DType() != c.to {
			t.Fatalf("Cast to %v made %v", c.to, got.DType())
		}
		ewCheckClose(t, "Cast to "+c.to.String(), got, c.want, 0, 0)
	}
}

func TestCastStrings(t *testing.T) {
	s := tensor.MustFromSlice([]string{"0.5", "-3", "NaN", "INF", "-INF", "+INF", "1e-3"}, 7)
	got := ewMustRun(t, castNode(tensor.Float32), 19, s)[0]
	want := []float64{0.5, -3, math.NaN(), math.Inf(1), math.Inf(-1), math.Inf(1), float64(float32(1e-3))}
	ewCheckClose(t, "string to float", got, want, 0, 0)
	back := ewMustRun(t, castNode(tensor.String), 19, got)[0].Data().([]string)
	for i, w := range []string{"0.5", "-3", "NaN", "INF", "-INF", "INF", "0.001"} {
		if back[i] != w {
			t.Errorf("float %v to string = %q, want %q", got.AsFloat64(i), back[i], w)
		}
	}
	if _, err := ewRun(t, castNode(tensor.Float32), 19, tensor.MustFromSlice([]string{"x"}, 1)); err == nil {
		t.Error("Cast of \"x\" to float succeeded")
	}
}

func TestCastLikeAndUnsupported(t *testing.T) {
	x := tensor.MustFromSlice([]int64{1 << 53, -5}, 2)
	got := ewMustRun(t, ewNode("", "CastLike", 2, 1), 15, x, tensor.New(tensor.Float64, 1))[0]
	ewCheckClose(t, "CastLike", got, []float64{1 << 53, -5}, 0, 0)
	// float8e4m3fn (17) is not implemented: an unsupported-op error.
	_, err := ewRun(t, castNode(17), 19, tensor.New(tensor.Float32, 2))
	if _, ok := err.(*graph.UnsupportedOpError); !ok {
		t.Errorf("Cast to float8: error %v, want an UnsupportedOpError", err)
	}
}
