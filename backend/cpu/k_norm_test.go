package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// pnChannelStats computes per-channel mean and biased variance of an
// N x C x ... float tensor directly (two passes, float64).
func pnChannelStats(x *tensor.Tensor) (mean, variance []float64, m int) {
	sh := x.Shape()
	n, c := sh[0], sh[1]
	s := x.Len() / (n * c)
	mean, variance = make([]float64, c), make([]float64, c)
	for ch := 0; ch < c; ch++ {
		for i := 0; i < n; i++ {
			for j := 0; j < s; j++ {
				mean[ch] += x.AsFloat64((i*c+ch)*s + j)
			}
		}
		mean[ch] /= float64(n * s)
		for i := 0; i < n; i++ {
			for j := 0; j < s; j++ {
				d := x.AsFloat64((i*c+ch)*s+j) - mean[ch]
				variance[ch] += d * d
			}
		}
		variance[ch] /= float64(n * s)
	}
	return mean, variance, n * s
}

func pnClose(got, want, tol float64) bool { return math.Abs(got-want) <= tol*(1+math.Abs(want)) }

// TestBatchNormTrainStats checks BatchNormTrain's five outputs against the
// statistics computed directly: Y with the biased batch variance, the
// running variance folded with the unbiased one (PyTorch), inv_std of the
// biased one. Float32 data is checked to 2e-5 relative (float32 output
// rounding plus the kernel's float32 affine map); a channel with a mean of
// 1000 checks that the shifted accumulation does not cancel.
func TestBatchNormTrainStats(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(11, 12))
	for _, shape := range [][]int{{4, 3, 5, 6}, {16, 5}, {2, 4, 3, 3, 3}, {1, 2, 7}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			x64 := pnRand64(r, shape...)
			c, s := shape[1], x64.Len()/(shape[0]*shape[1])
			for i := 0; i < shape[0]; i++ { // channel 0: large mean, small spread
				for j := 0; j < s; j++ {
					x64.Float64s()[i*c*s+j] += 1000
				}
			}
			x := pnTo32(x64)
			scale, bias := pnTo32(pnRand64(r, c)), pnTo32(pnRand64(r, c))
			rm, rv := pnTo32(pnRand64(r, c)), pnTo32(pnRand64(r, c))
			const eps, mom = 1e-3, 0.8
			out, err := pnRun(pnNode(graph.DomainGotrain, "BatchNormTrain", 5, 5,
				graph.AFloat("epsilon", eps), graph.AFloat("momentum", mom)), 1, pool, x, scale, bias, rm, rv)
			if err != nil {
				t.Fatal(err)
			}
			mean, variance, m := pnChannelStats(x)
			for ch := 0; ch < c; ch++ {
				inv := 1 / math.Sqrt(variance[ch]+float64(float32(eps)))
				checks := []struct {
					name      string
					got, want float64
				}{
					{"new_running_mean", out[1].AsFloat64(ch), rm.AsFloat64(ch)*float64(float32(mom)) + mean[ch]*(1-float64(float32(mom)))},
					{"new_running_var", out[2].AsFloat64(ch), rv.AsFloat64(ch)*float64(float32(mom)) + variance[ch]*float64(m)/float64(m-1)*(1-float64(float32(mom)))},
					{"saved_mean", out[3].AsFloat64(ch), mean[ch]},
					{"saved_inv_std", out[4].AsFloat64(ch), inv},
				}
				for _, ck := range checks {
					if !pnClose(ck.got, ck.want, 2e-5) {
						t.Fatalf("channel %d %s: got %.8g, want %.8g", ch, ck.name, ck.got, ck.want)
					}
				}
				for i := 0; i < shape[0]; i++ {
					for j := 0; j < s; j++ {
						k := (i*c+ch)*s + j
						want := (x.AsFloat64(k)-mean[ch])*inv*scale.AsFloat64(ch) + bias.AsFloat64(ch)
						if !pnClose(out[0].AsFloat64(k), want, 2e-4) {
							t.Fatalf("Y[%d]: got %.8g, want %.8g", k, out[0].AsFloat64(k), want)
						}
					}
				}
			}
		})
	}
}

// TestBatchNormInference checks ONNX BatchNormalization's inference formula
// in float64 (1e-12) and its float32 path (1e-5), with opset 15's mixed
// parameter types (float32 X, float64 statistics).
func TestBatchNormInference(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(13, 14))
	x := pnRand64(r, 3, 4, 2, 5)
	scale, bias, mean := pnRand64(r, 4), pnRand64(r, 4), pnRand64(r, 4)
	vr := pnRand64(r, 4)
	for i, v := range vr.Float64s() {
		vr.Float64s()[i] = v * v
	}
	for _, tc := range []struct {
		name  string
		in    []*tensor.Tensor
		tol   float64
		opset int64
	}{
		{"float64", []*tensor.Tensor{x, scale, bias, mean, vr}, 1e-12, 15},
		{"float32", []*tensor.Tensor{pnTo32(x), pnTo32(scale), pnTo32(bias), pnTo32(mean), pnTo32(vr)}, 1e-5, 9},
		{"mixed", []*tensor.Tensor{pnTo32(x), pnTo32(scale), pnTo32(bias), mean, vr}, 1e-5, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := pnRun(pnNode("", "BatchNormalization", 5, 1, graph.AFloat("epsilon", 0.01)), tc.opset, pool, tc.in...)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < x.Len(); k++ {
				ch := (k / 10) % 4
				want := (tc.in[0].AsFloat64(k)-tc.in[3].AsFloat64(ch))/math.Sqrt(tc.in[4].AsFloat64(ch)+float64(float32(0.01)))*
					tc.in[1].AsFloat64(ch) + tc.in[2].AsFloat64(ch)
				if !pnClose(out[0].AsFloat64(k), want, tc.tol) {
					t.Fatalf("Y[%d]: got %.10g, want %.10g", k, out[0].AsFloat64(k), want)
				}
			}
		})
	}
}

// TestBatchNormGrad checks BatchNormGrad against central differences of
// BatchNormTrain's Y with respect to X, scale and B (float64; see
// pnCheckGrad for the tolerance).
func TestBatchNormGrad(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(15, 16))
	for _, shape := range [][]int{{3, 2, 4, 3}, {6, 4}, {2, 3, 2, 2, 2}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			c := shape[1]
			x := pnRand64(r, shape...)
			scale, bias := pnRand64(r, c), pnRand64(r, c)
			rm, rv := pnRand64(r, c), pnRand64(r, c)
			fwdNode := pnNode(graph.DomainGotrain, "BatchNormTrain", 5, 5, graph.AFloat("epsilon", 1e-3))
			fwd, err := pnRun(fwdNode, 1, pool, x, scale, bias, rm, rv)
			if err != nil {
				t.Fatal(err)
			}
			dy := pnRand64(r, shape...)
			g, err := pnRun(pnNode(graph.DomainGotrain, "BatchNormGrad", 5, 3), 1, pool, dy, x, scale, fwd[3], fwd[4])
			if err != nil {
				t.Fatal(err)
			}
			forward := func(*tensor.Tensor) []float64 {
				o, err := pnRun(fwdNode, 1, pool, x, scale, bias, rm, rv)
				if err != nil {
					t.Fatal(err)
				}
				return o[0].Float64s()
			}
			pnCheckGrad(t, "dX", x, dy.Float64s(), forward, g[0].Float64s())
			pnCheckGrad(t, "dScale", scale, dy.Float64s(), forward, g[1].Float64s())
			pnCheckGrad(t, "dBias", bias, dy.Float64s(), forward, g[2].Float64s())
		})
	}
}

// TestLayerNorm checks LayerNormalization's outputs against a direct
// computation and LayerNormGrad against central differences, for several
// axes and for a scale broadcast over some of the normalised dims.
func TestLayerNorm(t *testing.T) {
	pool := NewPool(2)
	defer pool.Close()
	r := rand.New(rand.NewPCG(17, 18))
	for _, tc := range []struct {
		x     []int
		axis  int64
		scale []int
	}{
		{[]int{5, 8}, -1, []int{8}},
		{[]int{2, 3, 4}, 1, []int{3, 4}},
		{[]int{2, 3, 4, 5}, 2, []int{1, 5}},
		{[]int{3, 4, 5}, 0, []int{5}},
	} {
		t.Run(fmt.Sprintf("%v_axis%d_scale%v", tc.x, tc.axis, tc.scale), func(t *testing.T) {
			x, scale, bias := pnRand64(r, tc.x...), pnRand64(r, tc.scale...), pnRand64(r, tc.scale...)
			const eps = 1e-3
			fwdNode := pnNode("", "LayerNormalization", 3, 3, graph.AInt("axis", tc.axis), graph.AFloat("epsilon", eps),
				graph.AInt("stash_type", int64(tensor.Float64)))
			fwd, err := pnRun(fwdNode, 17, pool, x, scale, bias)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := graph.NormAxis(tc.axis, len(tc.x))
			rows, inner := tensor.NumElements(tc.x[:a]), tensor.NumElements(tc.x[a:])
			for row := 0; row < rows; row++ {
				xr := x.Float64s()[row*inner : (row+1)*inner]
				mean, v := 0.0, 0.0
				for _, e := range xr {
					mean += e
				}
				mean /= float64(inner)
				for _, e := range xr {
					v += (e - mean) * (e - mean)
				}
				inv := 1 / math.Sqrt(v/float64(inner)+float64(float32(eps)))
				if !pnClose(fwd[1].Float64s()[row], mean, 1e-12) || !pnClose(fwd[2].Float64s()[row], inv, 1e-12) {
					t.Fatalf("row %d: mean/inv_std %g/%g, want %g/%g", row, fwd[1].Float64s()[row], fwd[2].Float64s()[row], mean, inv)
				}
				for j, e := range xr {
					// Each case's scale covers the trailing dims of the row.
					k := j % tensor.NumElements(tc.scale)
					want := (e-mean)*inv*scale.Float64s()[k] + bias.Float64s()[k]
					if got := fwd[0].Float64s()[row*inner+j]; !pnClose(got, want, 1e-12) {
						t.Fatalf("Y[%d,%d]: got %g, want %g", row, j, got, want)
					}
				}
			}
			dy := pnRand64(r, tc.x...)
			g, err := pnRun(pnNode(graph.DomainGotrain, "LayerNormGrad", 5, 3, graph.AInt("axis", tc.axis)), 1, pool,
				dy, x, scale, fwd[1], fwd[2])
			if err != nil {
				t.Fatal(err)
			}
			forward := func(*tensor.Tensor) []float64 {
				o, err := pnRun(fwdNode, 17, pool, x, scale, bias)
				if err != nil {
					t.Fatal(err)
				}
				return o[0].Float64s()
			}
			pnCheckGrad(t, "dX", x, dy.Float64s(), forward, g[0].Float64s())
			pnCheckGrad(t, "dScale", scale, dy.Float64s(), forward, g[1].Float64s())
			pnCheckGrad(t, "dBias", bias, dy.Float64s(), forward, g[2].Float64s())
		})
	}
}

// TestNormErrors checks that invalid inputs give errors naming the node.
func TestNormErrors(t *testing.T) {
	pool := NewPool(1)
	f := func(shape ...int) *tensor.Tensor { return tensor.New(tensor.Float32, shape...) }
	for _, tc := range []struct {
		name  string
		node  *graph.Node
		in    []*tensor.Tensor
		match string
	}{
		{"bn_channels", pnNode("", "BatchNormalization", 5, 1), []*tensor.Tensor{f(2, 3, 4), f(4), f(3), f(3), f(3)}, "channels"},
		{"bn_rank", pnNode("", "BatchNormalization", 5, 1), []*tensor.Tensor{f(3), f(3), f(3), f(3), f(3)}, "rank >= 2"},
		{"bn_train_one_value", pnNode(graph.DomainGotrain, "BatchNormTrain", 5, 5), []*tensor.Tensor{f(1, 3), f(3), f(3), f(3), f(3)}, "more than one value"},
		{"ln_axis", pnNode("", "LayerNormalization", 2, 1, graph.AInt("axis", 3)), []*tensor.Tensor{f(2, 3), f(3)}, "axis"},
		{"ln_scale", pnNode("", "LayerNormalization", 2, 1), []*tensor.Tensor{f(2, 3), f(4)}, "broadcast"},
		{"ln_grad_dy", pnNode(graph.DomainGotrain, "LayerNormGrad", 5, 3), []*tensor.Tensor{f(2, 4), f(2, 3), f(3), f(2, 1), f(2, 1)}, "dY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pnRun(tc.node, 17, pool, tc.in...)
			if err == nil || !strings.Contains(err.Error(), tc.match) || !strings.Contains(err.Error(), tc.node.Name) {
				t.Fatalf("error %v, want one naming %s and containing %q", err, tc.node.Name, tc.match)
			}
		})
	}
}

// BenchmarkBatchNormTrain times BatchNormTrain and BatchNormGrad on a
// ResNet-20 first-stage activation (batch 128, 16 x 32 x 32).
func BenchmarkBatchNormTrain(b *testing.B) {
	pool := NewPool(0)
	defer pool.Close()
	r := rand.New(rand.NewPCG(1, 1))
	x := pnTo32(pnRand64(r, 128, 16, 32, 32))
	p := func() *tensor.Tensor { return pnTo32(pnRand64(r, 16)) }
	scale, bias, rm, rv := p(), p(), p(), p()
	fwd, err := pnRun(pnNode(graph.DomainGotrain, "BatchNormTrain", 5, 5), 1, pool, x, scale, bias, rm, rv)
	if err != nil {
		b.Fatal(err)
	}
	for _, op := range []string{"BatchNormTrain", "BatchNormGrad"} {
		b.Run(op, func(b *testing.B) {
			in := []*tensor.Tensor{x, scale, bias, rm, rv}
			nOut := 5
			if op == "BatchNormGrad" {
				in, nOut = []*tensor.Tensor{x, x, scale, fwd[3], fwd[4]}, 3
			}
			n := pnNode(graph.DomainGotrain, op, 5, nOut)
			types := make([]*graph.Type, len(in))
			for i, t := range in {
				types[i] = graph.NewType(t.DType(), graph.ShapeOf(t.Shape()...))
			}
			outT, err := graph.Lookup(graph.DomainGotrain, op).Infer(n, types, 1)
			if err != nil {
				b.Fatal(err)
			}
			k, err := kernels[kkey(graph.DomainGotrain, op)].factory(&Prep{Node: n, In: types, Out: outT, Opset: 1, Pool: pool})
			if err != nil {
				b.Fatal(err)
			}
			out := make([]*tensor.Tensor, nOut)
			for i := range out {
				s, _ := outT[i].Concrete()
				out[i] = tensor.New(outT[i].DType, s...)
			}
			b.SetBytes(int64(x.Len() * 4))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := k(in, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
