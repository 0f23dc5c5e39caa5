package cuda_test

import (
	"testing"

	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestPool(t *testing.T) {
	r := rng(7)
	x := randF32(r, 2, 3, 9, 8)
	a := func(as ...*graph.Attribute) []*graph.Attribute { return as }
	k2 := graph.AInts("kernel_shape", 2, 2)
	s2 := graph.AInts("strides", 2, 2)
	k3 := graph.AInts("kernel_shape", 3, 3)
	pads := graph.AInts("pads", 1, 0, 1, 2)
	two := []string{"y", "ind"}
	var cases []*kcase
	for _, attrs := range [][]*graph.Attribute{
		a(k2, s2), a(k3), a(k3, s2, pads), a(k3, graph.AInts("dilations", 2, 1)), a(k2, s2, graph.AInt("ceil_mode", 1)),
	} {
		cases = append(cases,
			&kcase{name: "MaxPool", op: "MaxPool", in: []*tensor.Tensor{x}, attrs: attrs, outs: two},
			&kcase{name: "AveragePool", op: "AveragePool", in: []*tensor.Tensor{x}, attrs: attrs},
			&kcase{name: "AveragePoolPad", op: "AveragePool", in: []*tensor.Tensor{x}, attrs: append(attrs, graph.AInt("count_include_pad", 1))},
		)
	}
	cases = append(cases,
		&kcase{name: "MaxPoolColMajor", op: "MaxPool", in: []*tensor.Tensor{x}, attrs: a(k3, graph.AInt("storage_order", 1)), outs: two},
		&kcase{name: "MaxPool1D", op: "MaxPool", in: []*tensor.Tensor{randF32(r, 2, 3, 11)}, attrs: a(graph.AInts("kernel_shape", 3), graph.AInts("strides", 2)), outs: two},
		&kcase{name: "MaxPool3D", op: "MaxPool", in: []*tensor.Tensor{randF32(r, 1, 2, 4, 5, 6)}, attrs: a(graph.AInts("kernel_shape", 2, 2, 3)), outs: two},
		&kcase{name: "GlobalMaxPool", op: "GlobalMaxPool", in: []*tensor.Tensor{x}},
		&kcase{name: "GlobalAveragePool", op: "GlobalAveragePool", in: []*tensor.Tensor{x}},
	)
	// Gradients: AveragePoolGrad against the CPU directly; MaxPoolGrad fed
	// the Indices MaxPool gives.
	for _, attrs := range [][]*graph.Attribute{a(k2, s2), a(k3, s2, pads), a(k3)} {
		y := &kcase{op: "AveragePool", in: []*tensor.Tensor{x}, attrs: attrs}
		out, err := cpuRun(y)
		if err != nil {
			t.Fatal(err)
		}
		dy := randF32(r, out["y0"].Shape()...)
		cases = append(cases,
			&kcase{name: "AveragePoolGrad", op: "AveragePoolGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, x}, attrs: attrs},
			&kcase{name: "AveragePoolGradPad", op: "AveragePoolGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, x}, attrs: append(attrs, graph.AInt("count_include_pad", 1))})
		mp, err := cpuRun(&kcase{op: "MaxPool", in: []*tensor.Tensor{x}, attrs: attrs, outs: two})
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, &kcase{name: "MaxPoolGrad", op: "MaxPoolGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, mp["ind"], x}})
		// With the window known (as the executor records it) the kernel
		// gathers; with a ReLU mask fused, taps where X <= 0 pass nothing.
		window := []*graph.Attribute{graph.AInt(cuda.WindowAttr+"known", 1)}
		for _, at := range attrs {
			c := *at
			c.Name = cuda.WindowAttr + at.Name
			window = append(window, &c)
		}
		for _, relu := range []int64{0, 1} {
			cases = append(cases, &kcase{name: "MaxPoolGradGather", op: "MaxPoolGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, mp["ind"], x},
				attrs: append(append([]*graph.Attribute{}, window...), graph.AInt(plan.AttrFusedReluMask, relu))})
		}
	}
	bad := ints(0, 1, 2, 99)
	badIdx, _ := bad.Reshaped(1, 1, 2, 2)
	cases = append(cases, &kcase{name: "MaxPoolGradBadIndex", op: "MaxPoolGrad", domain: graph.DomainGotrain,
		in: []*tensor.Tensor{randF32(r, 1, 1, 2, 2), badIdx, randF32(r, 1, 1, 4, 4)}, wantErr: "Indices[3] lies outside"},
		&kcase{name: "MaxPoolGradGatherBadIndex", op: "MaxPoolGrad", domain: graph.DomainGotrain,
			in: []*tensor.Tensor{randF32(r, 1, 1, 2, 2), badIdx, randF32(r, 1, 1, 4, 4)}, wantErr: "Indices[3] lies outside",
			attrs: []*graph.Attribute{graph.AInt(cuda.WindowAttr+"known", 1), graph.AInts(cuda.WindowAttr+"kernel_shape", 2, 2), graph.AInts(cuda.WindowAttr+"strides", 2, 2)}})
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
