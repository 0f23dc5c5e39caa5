package cpu

import (
	"math"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// naiveSumTo sums x over the dims where shape (right-aligned) has 1 or is absent.
func naiveSumTo(x *tensor.Tensor, shape []int) []float64 {
	xs := x.Shape()
	out := make([]float64, tensor.NumElements(shape))
	for i := 0; i < x.Len(); i++ {
		// Unravel i in xs, ravel into shape with broadcast dims at 0.
		rem, off, stride := i, 0, 1
		idx := make([]int, len(xs))
		for d := len(xs) - 1; d >= 0; d-- {
			idx[d] = rem % xs[d]
			rem /= xs[d]
		}
		for d := len(shape) - 1; d >= 0; d-- {
			xd := d + len(xs) - len(shape)
			if shape[d] != 1 {
				off += idx[xd] * stride
			}
			stride *= shape[d]
		}
		out[off] += x.AsFloat64(i)
	}
	return out
}

func TestSumToShapeMatchesDirectSums(t *testing.T) {
	cases := []struct {
		x, shape []int
	}{
		{[]int{4, 3}, []int{3}},             // bias of a dense layer
		{[]int{4, 3}, []int{4, 1}},          // column sums
		{[]int{2, 3, 4, 5}, []int{3, 1, 1}}, // per-channel bias
		{[]int{2, 3, 4}, []int{}},           // scalar
		{[]int{2, 3, 4}, []int{2, 3, 4}},    // identity
		{[]int{2, 3, 4}, []int{1, 3, 1}},
		{[]int{64, 300}, []int{300}}, // large enough to split across workers
	}
	r := rand.New(rand.NewSource(4))
	for _, c := range cases {
		x := ewRandF64(r, c.x...)
		sh := make([]int64, len(c.shape))
		for i, d := range c.shape {
			sh[i] = int64(d)
		}
		got := ewMustRun(t, ewNode(graph.DomainGotrain, "SumToShape", 2, 1), 1, x, tensor.MustFromSlice(sh, len(sh)))[0]
		if !tensor.SameShape(got.Shape(), c.shape) {
			t.Errorf("%v -> %v: output shape %v", c.x, c.shape, got.Shape())
			continue
		}
		ewCheckClose(t, "SumToShape", got, naiveSumTo(x, c.shape), 1e-12, 1e-12)
	}
	bad := tensor.MustFromSlice([]int64{5}, 1)
	if _, err := ewRun(t, ewNode(graph.DomainGotrain, "SumToShape", 2, 1), 1, ewRandF64(r, 4, 3), bad); err == nil {
		t.Error("SumToShape of [4 3] to [5] succeeded")
	}
}

func TestReduceKinds(t *testing.T) {
	x := tensor.MustFromSlice([]float64{1, -2, 3, 4, 5, -6}, 2, 3)
	axes := graph.AInts("axes", 1)
	cases := []struct {
		op   string
		want []float64
	}{
		{"ReduceSum", []float64{2, 3}},
		{"ReduceMean", []float64{2.0 / 3, 1}},
		{"ReduceMax", []float64{3, 5}},
		{"ReduceMin", []float64{-2, -6}},
		{"ReduceProd", []float64{-6, -120}},
		{"ReduceSumSquare", []float64{14, 77}},
		{"ReduceL1", []float64{6, 15}},
		{"ReduceL2", []float64{math.Sqrt(14), math.Sqrt(77)}},
		{"ReduceLogSumExp", []float64{math.Log(math.Exp(1) + math.Exp(-2) + math.Exp(3)), math.Log(math.Exp(4) + math.Exp(5) + math.Exp(-6))}},
	}
	for _, c := range cases {
		// Opset 11: axes is an attribute for every op.
		got := ewMustRun(t, ewNode("", c.op, 1, 1, axes), 11, x)[0]
		if !tensor.SameShape(got.Shape(), []int{2, 1}) {
			t.Errorf("%s: shape %v, want [2 1]", c.op, got.Shape())
		}
		ewCheckClose(t, c.op, got, c.want, 1e-14, 0)
	}
	// Opset 18: axes is an input; keepdims=0; over the leading axis.
	got := ewMustRun(t, ewNode("", "ReduceMax", 2, 1, graph.AInt("keepdims", 0)), 18, x, tensor.MustFromSlice([]int64{-2}, 1))[0]
	if !tensor.SameShape(got.Shape(), []int{3}) {
		t.Errorf("ReduceMax over axis -2: shape %v, want [3]", got.Shape())
	}
	ewCheckClose(t, "ReduceMax axis 0", got, []float64{4, 5, 3}, 0, 0)
}

func TestArgMaxSelectLast(t *testing.T) {
	x := tensor.MustFromSlice([]float32{2, 7, 7, 1, 0, 0}, 2, 3)
	first := ewMustRun(t, ewNode("", "ArgMax", 1, 1, graph.AInt("axis", 1)), 13, x)[0]
	ewCheckClose(t, "first", first, []float64{1, 0}, 0, 0)
	last := ewMustRun(t, ewNode("", "ArgMin", 1, 1, graph.AInt("axis", 1), graph.AInt("select_last_index", 1), graph.AInt("keepdims", 0)), 13, x)[0]
	if !tensor.SameShape(last.Shape(), []int{2}) {
		t.Errorf("ArgMin keepdims=0: shape %v", last.Shape())
	}
	ewCheckClose(t, "last", last, []float64{0, 2}, 0, 0)
}

func TestSoftmaxGradsMatchFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, axis := range []int64{-1, 1, 0} {
		for _, pair := range [][2]string{{"Softmax", "SoftmaxGrad"}, {"LogSoftmax", "LogSoftmaxGrad"}} {
			x, dy := ewRandF64(r, 2, 3, 4), ewRandF64(r, 2, 3, 4)
			fwd := ewNode("", pair[0], 1, 1, graph.AInt("axis", axis))
			L := func() float64 { return ewDot(dy, ewMustRun(t, fwd, 13, x)[0]) }
			want := ewNumGrad(x, L)
			y := ewMustRun(t, fwd, 13, x)[0]
			got := ewMustRun(t, ewNode(graph.DomainGotrain, pair[1], 2, 1, graph.AInt("axis", axis)), 1, dy, y)[0]
			ewCheckClose(t, pair[1], got, want, fdRtol, fdAtol)
		}
	}
}

func TestSoftmaxOldOpsetCoercesTo2D(t *testing.T) {
	// Opset 11, axis 1 on [2,2,2]: each row of 4 sums to 1.
	x := tensor.MustFromSlice([]float32{0, 1, 2, 3, 1, 1, 1, 1}, 2, 2, 2)
	y := ewMustRun(t, ewNode("", "Softmax", 1, 1), 11, x)[0]
	e := []float64{1, math.E, math.E * math.E, math.E * math.E * math.E}
	s := e[0] + e[1] + e[2] + e[3]
	ewCheckClose(t, "softmax", y, []float64{e[0] / s, e[1] / s, e[2] / s, e[3] / s, .25, .25, .25, .25}, 1e-6, 0)
}
