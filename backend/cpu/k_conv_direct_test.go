package cpu

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu/gemm"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestDirectConvMatchesProduct: a Conv (with its fused ReLU and 2x2
// MaxPool) run by the direct convolution gives the bits of the im2col
// product it replaces, on every GEMM path, for padded, dilated,
// asymmetric, 1-D and pooled geometries; and the direct plan is used
// where it should be (and not where it should not).
func TestDirectConvMatchesProduct(t *testing.T) {
	eachGEMM(t, func(t *testing.T) { bothCPaths(t, checkDirectConvMatchesProduct) })
}

func checkDirectConvMatchesProduct(t *testing.T) {
	type tc struct {
		n, cin, cout int
		hw           []int // input's spatial size
		k            []int
		pads, dil    []int
		relu, bias   bool
		pool         bool
		direct       bool // the direct plan applies
	}
	cases := map[string]tc{
		"seed_cnn_conv1":  {5, 3, 32, []int{32, 32}, []int{3, 3}, nil, nil, true, true, true, true},
		"seed_cnn_conv2":  {4, 32, 64, []int{15, 15}, []int{3, 3}, nil, nil, true, true, true, true},
		"padded":          {3, 5, 16, []int{9, 11}, []int{3, 3}, []int{1, 1, 1, 1}, nil, false, true, false, true},
		"asymmetric_pads": {3, 2, 8, []int{7, 6}, []int{3, 2}, []int{0, 2, 1, 0}, nil, true, false, false, true},
		"dilated":         {2, 4, 24, []int{12, 12}, []int{3, 3}, []int{2, 2, 2, 2}, []int{2, 2}, true, true, true, true},
		"one_by_one_pad":  {2, 6, 8, []int{5, 5}, []int{1, 1}, []int{1, 1, 1, 1}, nil, false, true, false, true},
		"1d":              {3, 3, 16, []int{40}, []int{5}, []int{2, 2}, nil, true, true, false, true},
		"odd_pool":        {3, 3, 8, []int{14, 9}, []int{2, 2}, nil, nil, true, false, true, true},
		"padded_pooled":   {3, 5, 16, []int{9, 11}, []int{3, 3}, []int{1, 1, 1, 1}, nil, true, true, true, true},
		"odd_pads_pooled": {4, 2, 8, []int{8, 7}, []int{2, 3}, []int{1, 0, 0, 1}, nil, false, true, true, true},
		"dilated_pooled":  {2, 3, 16, []int{13, 12}, []int{3, 2}, []int{0, 1, 2, 0}, []int{2, 3}, true, false, true, true},
		"cout_not_8":      {3, 3, 12, []int{10, 10}, []int{3, 3}, nil, nil, true, true, false, false},
		"one_image":       {1, 3, 16, []int{10, 10}, []int{3, 3}, nil, nil, true, true, false, false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(31, 32))
			rnd := func(shape ...int) *tensor.Tensor {
				x := tensor.New(tensor.Float32, shape...)
				for i := range x.Float32s() {
					x.Float32s()[i] = float32(r.NormFloat64())
				}
				return x
			}
			b := graph.NewBuilder("direct", 17)
			dims := []graph.Dim{graph.D(int64(c.n)), graph.D(int64(c.cin))}
			for _, d := range c.hw {
				dims = append(dims, graph.D(int64(d)))
			}
			x := b.Input("x", tensor.Float32, dims...)
			ins := []string{x, b.Param("w", rnd(append([]int{c.cout, c.cin}, c.k...)...))}
			if c.bias {
				ins = append(ins, b.Param("b", rnd(c.cout)))
			}
			conv := b.Op("Conv", ins...)
			if c.pads != nil {
				conv = conv.With(graph.AInts("pads", int64s(c.pads)...))
			}
			if c.dil != nil {
				conv = conv.With(graph.AInts("dilations", int64s(c.dil)...))
			}
			y := conv.Out()
			if c.relu {
				y = b.Op("Relu", y).Out()
			}
			if c.pool {
				y = b.Op("MaxPool", y).With(graph.AInts("kernel_shape", 2, 2), graph.AInts("strides", 2, 2)).Out()
			}
			b.Output(y)
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			input := rnd(append([]int{c.n, c.cin}, c.hw...)...)
			run := func(direct bool) (*tensor.Tensor, int64) {
				defer func(prev bool) { useDirectConv = prev }(useDirectConv)
				useDirectConv = direct
				before := directPlans.Load()
				be := New(Options{Threads: 2})
				dev := be.Devices()[0]
				exe, err := be.Compile(m, dev, backend.CompileOptions{})
				if err != nil {
					t.Fatal(err)
				}
				out, err := backend.RunHost(context.Background(), be, exe, dev, map[string]*tensor.Tensor{"x": input})
				if err != nil {
					t.Fatal(err)
				}
				return out[y], directPlans.Load() - before
			}
			want, _ := run(false)
			got, plans := run(true)
			if fast := useDirectConv && ownGEMM && gemm.DirectConvFast(); (plans > 0) != (c.direct && fast) {
				t.Fatalf("direct plans made: %d; want them: %v", plans, c.direct && fast)
			}
			if !tensor.SameShape(got.Shape(), want.Shape()) {
				t.Fatalf("shape %v, the product's %v", got.Shape(), want.Shape())
			}
			for i := 0; i < got.Len(); i++ {
				if a, b := fmt.Sprint(elem(got, i)), fmt.Sprint(elem(want, i)); a != b {
					t.Fatalf("element %d: direct %s, product %s", i, a, b)
				}
			}
		})
	}
}

func int64s(v []int) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}
