package cpu

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func pnDropoutTrain(t *testing.T, pool *Pool, x *tensor.Tensor, ratio float32, seed, offset int64) (y, mask *tensor.Tensor) {
	t.Helper()
	out, err := pnRun(pnNode(graph.DomainGotrain, "DropoutTrain", 4, 2), 1, pool,
		x, tensor.Scalar(ratio), tensor.Scalar(seed), tensor.Scalar(offset))
	if err != nil {
		t.Fatal(err)
	}
	return out[0], out[1]
}

// pnRows returns rows [lo, hi) of a tensor as a new tensor.
func pnRows(x *tensor.Tensor, lo, hi int) *tensor.Tensor {
	sh := append([]int{hi - lo}, x.Shape()[1:]...)
	per := x.Len() / x.Shape()[0]
	return tensor.MustFromSlice(append([]float32{}, x.Float32s()[lo*per:hi*per]...), sh...)
}

// TestDropoutTrainSplit checks that the mask of a sample depends only on
// (seed, offset+i, j): running the batch whole or split in pieces, each
// with the offset of its first sample, gives the same masks and outputs,
// and that a different seed gives a different mask.
func TestDropoutTrainSplit(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	x := pnTo32(pnRand64(rand.New(rand.NewPCG(21, 22)), 10, 3, 7))
	const seed, offset = 42, 1000
	y, mask := pnDropoutTrain(t, pool, x, 0.4, seed, offset)
	per := x.Len() / 10
	for _, split := range [][]int{{0, 3, 10}, {0, 1, 2, 9, 10}, {0, 5, 10}} {
		for s := 0; s+1 < len(split); s++ {
			lo, hi := split[s], split[s+1]
			ys, ms := pnDropoutTrain(t, pool, pnRows(x, lo, hi), 0.4, seed, offset+int64(lo))
			for j := range ms.Bools() {
				if ms.Bools()[j] != mask.Bools()[lo*per+j] || ys.Float32s()[j] != y.Float32s()[lo*per+j] {
					t.Fatalf("split %v, piece [%d,%d), element %d differs from the whole batch", split, lo, hi, j)
				}
			}
		}
	}
	_, other := pnDropoutTrain(t, pool, x, 0.4, seed+1, offset)
	same := 0
	for j, m := range other.Bools() {
		if m == mask.Bools()[j] {
			same++
		}
	}
	// Independent masks agree on about p^2+(1-p)^2 = 52% of 210 elements.
	if same == x.Len() {
		t.Fatal("seed+1 drew the same mask")
	}
}

// TestDropoutTrainRate checks the keep rate and the scaling: over 2^16
// elements the kept fraction of a Bernoulli(1-ratio) mask has a standard
// deviation below 0.002, so a 5-sigma bound of 0.01 fails by chance with
// probability under 1e-6. Kept elements are x/(1-ratio), dropped ones 0.
func TestDropoutTrainRate(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	x := tensor.New(tensor.Float32, 64, 1024)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(i%7) + 1
	}
	for _, ratio := range []float32{0, 0.1, 0.5, 0.9, 1} {
		y, mask := pnDropoutTrain(t, pool, x, ratio, 7, 0)
		kept := 0
		for i, m := range mask.Bools() {
			want := float32(0)
			if m {
				kept++
				want = x.Float32s()[i] / (1 - ratio)
			}
			if g := y.Float32s()[i]; math.Abs(float64(g-want)) > 1e-6*math.Abs(float64(want)) {
				t.Fatalf("ratio %g element %d: y %g, want %g (kept %v)", ratio, i, g, want, m)
			}
		}
		frac := float64(kept) / float64(x.Len())
		if math.Abs(frac-(1-float64(ratio))) > 0.01 {
			t.Fatalf("ratio %g: kept %.4f of the elements, want %.4f +- 0.01", ratio, frac, 1-ratio)
		}
	}
	if _, err := pnRun(pnNode(graph.DomainGotrain, "DropoutTrain", 4, 2), 1, pool,
		x, tensor.Scalar(float32(1.5)), tensor.Scalar(int64(0)), tensor.Scalar(int64(0))); err == nil || !strings.Contains(err.Error(), "ratio") {
		t.Fatalf("ratio 1.5: error %v, want one about the ratio", err)
	}
}

// TestDropoutONNX checks ONNX Dropout: the identity with an all-true mask
// in inference (every opset form), and in training mode NumPy's legacy
// generator: np.random.seed(0); np.random.uniform(0, 1, 4) gives
// 0.5488135, 0.71518937, 0.60276338, 0.54488318 (printed by NumPy), so with
// ratio 0.6 elements 1 and 2 are kept and 0 and 3 dropped.
func TestDropoutONNX(t *testing.T) {
	pool := NewPool(1)
	x := tensor.MustFromSlice([]float32{1, 2, 3, 4}, 4)
	for _, tc := range []struct {
		name  string
		opset int64
		node  *graph.Node
		in    []*tensor.Tensor
		y     []float32
		mask  []bool
	}{
		{"opset7_ratio_attr", 7, pnNode("", "Dropout", 1, 1, graph.AFloat("ratio", 0.3)), []*tensor.Tensor{x}, []float32{1, 2, 3, 4}, nil},
		{"opset13_default", 13, pnNode("", "Dropout", 1, 2), []*tensor.Tensor{x}, []float32{1, 2, 3, 4}, []bool{true, true, true, true}},
		{"opset13_not_training", 13, pnNode("", "Dropout", 3, 2), []*tensor.Tensor{x, tensor.Scalar(float32(0.6)), tensor.Scalar(false)},
			[]float32{1, 2, 3, 4}, []bool{true, true, true, true}},
		{"opset13_training", 13, pnNode("", "Dropout", 3, 2, graph.AInt("seed", 0)), []*tensor.Tensor{x, tensor.Scalar(float32(0.6)), tensor.Scalar(true)},
			[]float32{0, 2 / float32(0.4), 3 / float32(0.4), 0}, []bool{false, true, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := pnRun(tc.node, tc.opset, pool, tc.in...)
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.y {
				if g := out[0].Float32s()[i]; math.Abs(float64(g-w)) > 1e-6*math.Abs(float64(w)) {
					t.Fatalf("y[%d] = %g, want %g", i, g, w)
				}
			}
			for i, w := range tc.mask {
				if g := out[1].Bools()[i]; g != w {
					t.Fatalf("mask[%d] = %v, want %v", i, g, w)
				}
			}
		})
	}
}

// TestDropoutMT19937 checks the generator against NumPy's
// np.random.seed(7); np.random.uniform(0, 1, 3) (printed by NumPy; 1e-8 is
// the precision of the printed digits).
func TestDropoutMT19937(t *testing.T) {
	var g dropoutMT19937
	g.seed(7)
	for i, want := range []float64{0.07630829, 0.77991879, 0.43840923} {
		if got := g.float64(); math.Abs(got-want) > 1e-8 {
			t.Fatalf("draw %d: %.10f, want %.8f", i, got, want)
		}
	}
}
