package cpu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestFusedTrainingConvPool checks the training fusion of Conv, its 2x2
// MaxPool, that pool's MaxPoolGrad and the ConvGrad after it against the
// same training graph run unfused (the ReLU outputs kept as executable
// outputs, which the fusion pass leaves alone): every gradient and the
// loss equal bit for bit. The cases cover the batched (small feature maps)
// and per-image (large ones) paths, odd sizes whose last row and column
// the pool drops, short pooled rows (under eight values) and long ones,
// with and without ReLU (the mask) and bias, one and two threads, and
// float64. Integer-valued inputs make ties in the pool's windows common,
// so the taps must pick MaxPool's first maximum. It also checks that the
// fusion happened.
func TestFusedTrainingConvPool(t *testing.T) {
	eachGEMM(t, func(t *testing.T) { bothCPaths(t, checkFusedTrainingConvPool) })
}

func checkFusedTrainingConvPool(t *testing.T) {
	cases := []struct {
		name       string
		dt         tensor.DType
		n, cin, hw int
		c1, c2     int
		relu, bias bool
		ties       bool
		threads    int
	}{
		{"seed_like", tensor.Float32, 4, 3, 20, 8, 16, true, true, false, 2},
		{"large_maps_odd", tensor.Float32, 3, 2, 37, 4, 6, true, true, true, 2},
		{"ties_one_thread", tensor.Float32, 5, 2, 14, 3, 5, true, false, true, 1},
		{"no_relu", tensor.Float32, 4, 3, 17, 4, 4, false, true, false, 2},
		{"float64", tensor.Float64, 3, 2, 15, 3, 4, true, true, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(31, 32))
			rnd := func(shape ...int) *tensor.Tensor {
				x := tensor.New(tc.dt, shape...)
				for i := 0; i < x.Len(); i++ {
					v := r.NormFloat64()
					if tc.ties {
						v = float64(r.IntN(5) - 2)
					}
					if tc.dt == tensor.Float32 {
						x.Float32s()[i] = float32(v)
					} else {
						x.Float64s()[i] = v
					}
				}
				return x
			}
			b := graph.NewBuilder("convpool_train", 17)
			x := b.Input("x", tc.dt, graph.D(int64(tc.n)), graph.D(int64(tc.cin)), graph.D(int64(tc.hw)), graph.D(int64(tc.hw)))
			var kept []string
			layer := func(in string, cin, cout int, i int) string {
				ins := []string{in, b.Param(fmt.Sprintf("w%d", i), rnd(cout, cin, 3, 3))}
				if tc.bias {
					ins = append(ins, b.Param(fmt.Sprintf("b%d", i), rnd(cout)))
				}
				y := b.Op("Conv", ins...).Out()
				if tc.relu {
					y = b.Op("Relu", y).Out()
				}
				kept = append(kept, y)
				return b.Op("MaxPool", y).With(graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2)).Out()
			}
			h := layer(layer(x, tc.cin, tc.c1, 1), tc.c1, tc.c2, 2)
			side := ((tc.hw-2)/2 - 2) / 2
			logits := b.Op("Gemm", b.Op("Flatten", h).Out(), b.Param("fw", rnd(5, tc.c2*side*side))).With(graph.AInt("transB", 1)).Out()
			b.Output(logits)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy})
			if err != nil {
				t.Fatal(err)
			}
			feeds := map[string]*tensor.Tensor{"x": rnd(tc.n, tc.cin, tc.hw, tc.hw)}
			labels := tensor.New(tensor.Int64, tc.n)
			for i := range labels.Int64s() {
				labels.Int64s()[i] = int64(i % 5)
			}
			feeds[tr.Label] = labels
			for _, p := range tr.Params {
				feeds[p] = m.Graph.Initializer(p)
			}
			be := New(Options{Threads: tc.threads})
			dev := be.Devices()[0]
			run := func(extra []string) ([]*tensor.Tensor, *executable) {
				outs := append(append([]string{tr.Loss}, tr.Grads...), extra...)
				exe, err := be.Compile(tr.Model, dev, backend.CompileOptions{Outputs: outs})
				if err != nil {
					t.Fatal(err)
				}
				res, err := backend.RunHost(context.Background(), be, exe, dev, feeds)
				if err != nil {
					t.Fatal(err)
				}
				var got []*tensor.Tensor
				for _, o := range outs[:1+len(tr.Grads)] {
					got = append(got, res[o])
				}
				return got, exe.(*executable)
			}
			fused, fe := run(nil)
			plain, pe := run(kept)
			// Both pools fuse, forward and backward.
			if n := countOps(fe, "MaxPoolGrad"); n != 0 {
				t.Fatalf("fused graph has %d MaxPoolGrad nodes, want 0", n)
			}
			if countOps(fe, "MaxPool") != 0 || countOps(pe, "MaxPool") != 2 || countOps(pe, "MaxPoolGrad") != 2 {
				t.Fatalf("MaxPool nodes: fused graph %d (want 0), kept graph %d (want 2) with %d MaxPoolGrad (want 2)",
					countOps(fe, "MaxPool"), countOps(pe, "MaxPool"), countOps(pe, "MaxPoolGrad"))
			}
			names := append([]string{tr.Loss}, tr.Grads...)
			for k := range fused {
				if !tensor.SameShape(fused[k].Shape(), plain[k].Shape()) {
					t.Fatalf("%s: fused shape %v, unfused %v", names[k], fused[k].Shape(), plain[k].Shape())
				}
				for i := 0; i < fused[k].Len(); i++ {
					if a, b := elem(fused[k], i), elem(plain[k], i); a != b {
						t.Fatalf("%s element %d: fused %x, unfused %x", names[k], i, a, b)
					}
				}
			}
		})
	}
}
