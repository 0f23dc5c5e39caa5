package cpu

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestFusedConvMaxPool checks the Conv+MaxPool fusion against the same
// graph run unfused (the Conv's output kept as an executable output, which
// the fusion pass leaves alone): equal bit for bit, through the batched
// (small feature maps) and per-image (large ones, grouped) paths, odd
// sizes whose last row and column the pool drops, with and without ReLU
// and bias, float32 and float64. It also checks that the fusion happened.
func TestFusedConvMaxPool(t *testing.T) {
	eachGEMM(t, func(t *testing.T) { bothCPaths(t, checkFusedConvMaxPool) })
}

func checkFusedConvMaxPool(t *testing.T) {
	cases := []struct {
		name             string
		dt               tensor.DType
		n, cin, cout, hw int
		k, group         int
		relu, bias       bool
		threads          int
	}{
		{"batched_relu_bias", tensor.Float32, 6, 4, 8, 15, 3, 1, true, true, 2},
		{"per_image_relu", tensor.Float32, 3, 3, 6, 32, 3, 1, true, false, 2},
		{"grouped_bias", tensor.Float32, 2, 4, 6, 24, 2, 2, false, true, 2},
		{"one_thread_odd", tensor.Float32, 5, 2, 3, 9, 2, 1, true, true, 1},
		{"no_bias_no_relu", tensor.Float32, 4, 3, 5, 14, 3, 1, false, false, 2},
		{"float64", tensor.Float64, 4, 3, 4, 12, 3, 1, true, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(17, 18))
			rnd := func(shape ...int) *tensor.Tensor {
				x := tensor.New(tc.dt, shape...)
				for i := 0; i < x.Len(); i++ {
					v := r.NormFloat64()
					if tc.dt == tensor.Float32 {
						x.Float32s()[i] = float32(v)
					} else {
						x.Float64s()[i] = v
					}
				}
				return x
			}
			b := graph.NewBuilder("convpool", 17)
			x := b.Input("x", tc.dt, graph.D(int64(tc.n)), graph.D(int64(tc.cin)), graph.D(int64(tc.hw)), graph.D(int64(tc.hw)))
			ins := []string{x, b.Param("w", rnd(tc.cout, tc.cin/tc.group, tc.k, tc.k))}
			if tc.bias {
				ins = append(ins, b.Param("b", rnd(tc.cout)))
			}
			y := b.Op("Conv", ins...).With(graph.AInt("group", int64(tc.group))).Out()
			if tc.relu {
				y = b.Op("Relu", y).Out()
			}
			p := b.Op("MaxPool", y).With(graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2)).Out()
			b.Output(p)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			be := New(Options{Threads: tc.threads})
			dev := be.Devices()[0]
			run := func(outputs []string) (*tensor.Tensor, *executable) {
				exe, err := be.Compile(m, dev, backend.CompileOptions{Outputs: outputs})
				if err != nil {
					t.Fatal(err)
				}
				out, err := backend.RunHost(context.Background(), be, exe, dev, map[string]*tensor.Tensor{"x": rnd(tc.n, tc.cin, tc.hw, tc.hw)})
				if err != nil {
					t.Fatal(err)
				}
				return out[p], exe.(*executable)
			}
			r = rand.New(rand.NewPCG(19, 20))
			fused, fe := run(nil)
			r = rand.New(rand.NewPCG(19, 20))
			plain, pe := run([]string{p, y})
			if countOps(fe, "MaxPool") != 0 || countOps(pe, "MaxPool") != 1 {
				t.Fatalf("MaxPool nodes: fused graph %d (want 0), kept graph %d (want 1)", countOps(fe, "MaxPool"), countOps(pe, "MaxPool"))
			}
			if !tensor.SameShape(fused.Shape(), plain.Shape()) {
				t.Fatalf("fused shape %v, unfused %v", fused.Shape(), plain.Shape())
			}
			for i := 0; i < fused.Len(); i++ {
				a, b := fmt.Sprint(elem(fused, i)), fmt.Sprint(elem(plain, i))
				if a != b {
					t.Fatalf("element %d: fused %s, unfused %s", i, a, b)
				}
			}
		})
	}
}

func countOps(e *executable, op string) int {
	n := 0
	for _, nd := range e.planner.Model().Graph.Nodes {
		if nd.OpType == op {
			n++
		}
	}
	return n
}

// elem returns element i's bits, so that equal means bit for bit.
func elem(t *tensor.Tensor, i int) uint64 {
	if t.DType() == tensor.Float32 {
		return uint64(math.Float32bits(t.Float32s()[i]))
	}
	return math.Float64bits(t.Float64s()[i])
}

// TestGemmConstantTransposedB checks that a Gemm whose B is a constant
// stored transposed (which the kernel transposes once at compile time)
// computes what the same Gemm computes with B fed at run time, for a
// product large enough to be split over threads and a small one.
func TestGemmConstantTransposedB(t *testing.T) { eachGEMM(t, checkGemmConstantTransposedB) }

func checkGemmConstantTransposedB(t *testing.T) {
	for _, sz := range [][3]int{{64, 96, 80}, {3, 5, 4}} {
		m, n, k := sz[0], sz[1], sz[2]
		r := rand.New(rand.NewPCG(21, 22))
		rnd := func(shape ...int) *tensor.Tensor {
			x := tensor.New(tensor.Float32, shape...)
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(r.NormFloat64())
			}
			return x
		}
		w, bias, x := rnd(n, k), rnd(n), rnd(m, k)
		build := func(constant bool) *graph.Model {
			b := graph.NewBuilder("gemm", 17)
			in := b.Input("x", tensor.Float32, graph.D(int64(m)), graph.D(int64(k)))
			var wn, bn string
			if constant {
				wn, bn = b.Param("w", w), b.Param("b", bias)
			} else {
				wn = b.Input("w", tensor.Float32, graph.D(int64(n)), graph.D(int64(k)))
				bn = b.Input("b", tensor.Float32, graph.D(int64(n)))
			}
			y := b.Op("Relu", b.Op("Gemm", in, wn, bn).With(graph.AInt("transB", 1)).Out()).Out()
			b.Output(y)
			mod, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			return mod
		}
		be := New(Options{Threads: 2})
		dev := be.Devices()[0]
		run := func(mod *graph.Model, feeds map[string]*tensor.Tensor) []float32 {
			exe, err := be.Compile(mod, dev, backend.CompileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out, err := backend.RunHost(context.Background(), be, exe, dev, feeds)
			if err != nil {
				t.Fatal(err)
			}
			return out[exe.Outputs()[0]].Float32s()
		}
		got := run(build(true), map[string]*tensor.Tensor{"x": x})
		want := run(build(false), map[string]*tensor.Tensor{"x": x, "w": w, "b": bias})
		for i := range want {
			// The two layouts may sum over k in different orders (gonum's
			// kernels do); float32 sums of k terms then differ by at most
			// about k * 2^-24 * sum|terms| (twice that as a margin).
			row, col := i/n, i%n
			var mag float64
			for q := 0; q < k; q++ {
				mag += math.Abs(float64(x.Float32s()[row*k+q]) * float64(w.Float32s()[col*k+q]))
			}
			mag += math.Abs(float64(bias.Float32s()[col]))
			if d := math.Abs(float64(got[i] - want[i])); d > 2*float64(k)*0x1p-24*mag {
				t.Fatalf("%v: y[%d]: constant B %v, fed B %v (bound %g)", sz, i, got[i], want[i], 2*float64(k)*0x1p-24*mag)
			}
		}
	}
}
