package graph_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestTrainingLosses builds the training graph of a linear model with a
// symbolic batch dim (as exported models have) for every loss TrainingGraph
// offers, on class labels (ClassLabels) and on float targets, with both
// reductions, and checks two things in float64:
//
//   - the loss value equals the definition computed here from the model's
//     output (PyTorch's cross_entropy, BCEWithLogitsLoss, MSELoss, L1Loss:
//     "mean" over every element for the last three, over the samples for
//     cross-entropy), within 1e-12 relative: the same float64 sums in
//     another order;
//   - every parameter's gradient equals the central difference of the loss
//     with h = 1e-6, within 1e-6*(1+|g|), the bound gradcheck_test.go
//     derives (truncation ~1e-12, rounding ~1e-9 for losses of order 1).
//     L1's kink is avoided: no output lies within 1e-3 of its target (the
//     case asserts it), far beyond h times the largest input.
func TestTrainingLosses(t *testing.T) {
	const n, feat = 6, 5
	type lossCase struct {
		loss    graph.Loss
		classes int  // output width: > 1 class scores, 1 a single score
		class   bool // ClassLabels
	}
	var cases []lossCase
	for _, l := range []graph.Loss{graph.CrossEntropy, graph.CrossEntropyOneHot, graph.BCEWithLogits, graph.MSE, graph.L1} {
		cases = append(cases, lossCase{l, 4, true})
		if l != graph.CrossEntropy {
			cases = append(cases, lossCase{l, 4, false})
		}
	}
	cases = append(cases, lossCase{graph.BCEWithLogits, 1, true}, lossCase{graph.MSE, 1, true}, lossCase{graph.L1, 1, true})
	for _, c := range cases {
		for _, red := range []string{"mean", "sum"} {
			name := fmt.Sprintf("%s/out%d/class=%v/%s", c.loss, c.classes, c.class, red)
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, uint64(len(name))))
				gen := func(shape ...int) *tensor.Tensor { return f64(shape, func(int) float64 { return rng.NormFloat64() }) }
				b := graph.NewBuilder("linear", 17)
				x := b.Input("x", tensor.Float64, graph.Sym("N"), graph.D(feat))
				y := b.Op("Gemm", x, b.Param("w", gen(c.classes, feat)), b.Param("b", gen(c.classes))).With(aI("transB", 1)).Out()
				b.Output(y)
				m, err := b.Model()
				if err != nil {
					t.Fatal(err)
				}
				tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: c.loss, Reduction: red, ClassLabels: c.class})
				if err != nil {
					t.Fatal(err)
				}
				// Labels: class indices, or float targets of the output's
				// shape (one-hot rows for cross_entropy_onehot, values in
				// [0, 1] for bce, any for mse and l1).
				labels := make([]int64, n)
				for i := range labels {
					labels[i] = int64(rng.IntN(max(c.classes, 2)))
				}
				targets := make([]float64, n*c.classes)
				for i := range targets {
					switch {
					case c.class && c.classes == 1:
						targets[i] = float64(labels[i])
					case c.class || c.loss == graph.CrossEntropyOneHot:
						if int64(i%c.classes) == labels[i/c.classes] {
							targets[i] = 1
						}
					case c.loss == graph.BCEWithLogits:
						targets[i] = rng.Float64()
					default:
						targets[i] = rng.NormFloat64()
					}
				}
				feeds := map[string]*tensor.Tensor{"x": gen(n, feat)}
				if c.class {
					feeds[tr.Label] = tensor.MustFromSlice(labels, n)
				} else {
					feeds[tr.Label] = tensor.MustFromSlice(targets, n, c.classes)
				}
				for _, p := range tr.Params {
					feeds[p] = m.Graph.Initializer(p)
				}
				be := cpu.New(cpu.Options{Threads: 1})
				dev := be.Devices()[0]
				compile := func(mm *graph.Model) backend.Executable {
					exe, err := be.Compile(mm, dev, backend.CompileOptions{})
					if err != nil {
						t.Fatal(err)
					}
					return exe
				}
				exe, eval := compile(tr.Model), compile(tr.Eval)
				run := func(exe backend.Executable, f map[string]*tensor.Tensor) map[string]*tensor.Tensor {
					res, err := backend.RunHost(context.Background(), be, exe, dev, f)
					if err != nil {
						t.Fatal(err)
					}
					return res
				}
				base := run(exe, feeds)
				out := run(eval, feeds)[y].Float64s()
				want := lossOf(c.loss, red, out, targets, labels, c.classes)
				if c.loss == graph.L1 {
					for i := range out {
						if math.Abs(out[i]-targets[i]) < 1e-3 {
							t.Fatalf("output %d is %g, within 1e-3 of its target %g: the case sits on L1's kink", i, out[i], targets[i])
						}
					}
				}
				got := base[tr.Loss].AsFloat64(0)
				if !(math.Abs(got-want) <= 1e-12*math.Max(1, math.Abs(want))) {
					t.Fatalf("loss %.15g, want %.15g", got, want)
				}
				if c.class && (c.classes > 1 || c.loss == graph.BCEWithLogits) {
					if tr.Correct == "" {
						t.Fatal("no accuracy output for a loss on class labels")
					}
					if got, want := base[tr.Correct].AsFloat64(0), correctOf(out, labels, c.classes); got != want {
						t.Errorf("correct %v, want %v", got, want)
					}
				}
				worst := paramGradCheck(t, tr, feeds, base, func(f map[string]*tensor.Tensor) float64 { return run(exe, f)[tr.Loss].AsFloat64(0) })
				t.Logf("loss %.6g; max |autodiff - finite difference| = %.3g", got, worst)
			})
		}
	}
}

// lossOf is the loss by its definition: out [n, k] against targets of the
// same shape (the one-hot or value encoding of labels when those are class
// labels), or against labels for cross_entropy.
func lossOf(l graph.Loss, red string, out, targets []float64, labels []int64, k int) float64 {
	n := len(labels)
	sum, count := 0.0, float64(n*k)
	switch l {
	case graph.CrossEntropy, graph.CrossEntropyOneHot:
		count = float64(n)
		for i := range n {
			row := out[i*k : (i+1)*k]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, v)
			}
			lse := 0.0
			for _, v := range row {
				lse += math.Exp(v - mx)
			}
			lse = mx + math.Log(lse)
			for j, v := range row {
				tgt := targets[i*k+j]
				if l == graph.CrossEntropy && int64(j) == labels[i] {
					tgt = 1
				} else if l == graph.CrossEntropy {
					tgt = 0
				}
				sum += tgt * (lse - v)
			}
		}
	case graph.BCEWithLogits:
		for i, z := range out {
			y := targets[i]
			sum += math.Max(z, 0) - z*y + math.Log1p(math.Exp(-math.Abs(z)))
		}
	case graph.MSE:
		for i, z := range out {
			d := z - targets[i]
			sum += d * d
		}
	case graph.L1:
		for i, z := range out {
			sum += math.Abs(z - targets[i])
		}
	}
	if red == "sum" {
		return sum
	}
	return sum / count
}

// correctOf counts the samples whose predicted class is the label: the
// highest score, or a positive single logit for class 1.
func correctOf(out []float64, labels []int64, k int) float64 {
	c := 0.0
	for i, l := range labels {
		pred := int64(0)
		if k == 1 {
			if out[i] > 0 {
				pred = 1
			}
		} else {
			for j := 1; j < k; j++ {
				if out[i*k+j] > out[i*k+int(pred)] {
					pred = int64(j)
				}
			}
		}
		if pred == l {
			c++
		}
	}
	return c
}

// TestTrainingLabelSmoothing: label smoothing is a cross-entropy setting
// in [0, 1]; a NaN, a value outside, or smoothing asked of another loss
// (where it would be ignored) is an error naming it.
func TestTrainingLabelSmoothing(t *testing.T) {
	b := graph.NewBuilder("linear", 17)
	x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(5))
	b.Output(b.Op("Gemm", x, b.Param("w", tensor.New(tensor.Float32, 4, 5))).With(aI("transB", 1)).Out())
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		loss graph.Loss
		ls   float64
		ok   bool
	}{
		{graph.CrossEntropy, 0.1, true},
		{graph.CrossEntropyOneHot, 0.1, true},
		{graph.CrossEntropy, 0, true},
		{graph.MSE, 0, true},
		{graph.CrossEntropy, math.NaN(), false},
		{graph.CrossEntropy, -0.1, false},
		{graph.CrossEntropy, 1, true}, // PyTorch's range: [0, 1]
		{graph.CrossEntropy, 1.5, false},
		{graph.MSE, 0.1, false},
		{graph.L1, 0.1, false},
		{graph.BCEWithLogits, 0.1, false},
	} {
		_, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: c.loss, LabelSmoothing: c.ls, ClassLabels: true})
		if (err == nil) != c.ok {
			t.Errorf("loss %s, label smoothing %g: err %v, want ok=%v", c.loss, c.ls, err, c.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "label smoothing") {
			t.Errorf("loss %s, label smoothing %g: the error does not name it: %v", c.loss, c.ls, err)
		}
	}
}
