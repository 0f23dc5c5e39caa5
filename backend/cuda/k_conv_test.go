package cuda_test

import (
	"testing"

	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Products sum in another order than the CPU's BLAS: 1e-5 relative covers
// float32 sums of up to a few hundred terms of unit size (each rounding is
// 6e-8; the orders' errors add to well under 1e-5 here).
const gemmTol = 1e-5

func TestConvMatMul(t *testing.T) {
	r := rng(8)
	a := func(as ...*graph.Attribute) []*graph.Attribute { return as }
	x := randF32(r, 3, 4, 9, 8)
	w := randF32(r, 6, 4, 3, 3)
	b := randF32(r, 6)
	var cases []*kcase
	for _, attrs := range [][]*graph.Attribute{
		a(), a(graph.AInts("pads", 1, 1, 1, 1)), a(graph.AInts("strides", 2, 2), graph.AInts("pads", 0, 1, 2, 1)),
		a(graph.AInts("dilations", 2, 1)), a(graph.AString("auto_pad", "SAME_UPPER")),
	} {
		cases = append(cases,
			&kcase{name: "Conv", op: "Conv", in: []*tensor.Tensor{x, w, b}, attrs: attrs, tol: gemmTol},
			&kcase{name: "ConvRelu", op: "Conv", in: []*tensor.Tensor{x, w, b}, attrs: append(append([]*graph.Attribute{}, attrs...), graph.AString(plan.AttrFusedActivation, "Relu")), tol: gemmTol},
			&kcase{name: "ConvReluNoBias", op: "Conv", in: []*tensor.Tensor{x, w}, attrs: append(append([]*graph.Attribute{}, attrs...), graph.AString(plan.AttrFusedActivation, "Relu")), tol: gemmTol},
			&kcase{name: "ConvNoBias", op: "Conv", in: []*tensor.Tensor{x, w}, attrs: attrs, tol: gemmTol},
		)
		y, err := cpuRun(&kcase{op: "Conv", in: []*tensor.Tensor{x, w}, attrs: attrs})
		if err != nil {
			t.Fatal(err)
		}
		dy := randF32(r, y["y0"].Shape()...)
		cases = append(cases,
			&kcase{name: "ConvGrad", op: "ConvGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, x, w}, attrs: attrs, outs: []string{"dx", "dw", "db"}, tol: gemmTol},
			&kcase{name: "ConvGradW", op: "ConvGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, x, w}, attrs: attrs, outs: []string{"", "dw"}, tol: gemmTol},
		)
	}
	xg, wg := randF32(r, 2, 4, 6, 6), randF32(r, 6, 2, 3, 3)
	cases = append(cases,
		&kcase{name: "ConvGroup", op: "Conv", in: []*tensor.Tensor{xg, wg, b}, attrs: a(graph.AInt("group", 2)), tol: gemmTol},
		&kcase{name: "ConvGradGroup", op: "ConvGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 2, 6, 4, 4), xg, wg},
			attrs: a(graph.AInt("group", 2)), outs: []string{"dx", "dw", "db"}, tol: gemmTol},
		&kcase{name: "Conv1D", op: "Conv", in: []*tensor.Tensor{randF32(r, 2, 3, 10), randF32(r, 4, 3, 3)}, tol: gemmTol},
		&kcase{name: "Conv1x1", op: "Conv", in: []*tensor.Tensor{x, randF32(r, 5, 4, 1, 1)}, tol: gemmTol},
		&kcase{name: "Gemm", op: "Gemm", in: []*tensor.Tensor{randF32(r, 7, 5), randF32(r, 5, 3), randF32(r, 3)}, tol: gemmTol},
		&kcase{name: "GemmT", op: "Gemm", in: []*tensor.Tensor{randF32(r, 5, 7), randF32(r, 3, 5), randF32(r, 7, 1)},
			attrs: a(graph.AInt("transA", 1), graph.AInt("transB", 1), graph.AFloat("alpha", 0.5), graph.AFloat("beta", 2)), tol: gemmTol},
		&kcase{name: "GemmNoC", op: "Gemm", in: []*tensor.Tensor{randF32(r, 7, 5), randF32(r, 3, 5)}, attrs: a(graph.AInt("transB", 1)), tol: gemmTol},
		&kcase{name: "MatMul", op: "MatMul", in: []*tensor.Tensor{randF32(r, 4, 5), randF32(r, 5, 6)}, tol: gemmTol},
		&kcase{name: "MatMulBatchA", op: "MatMul", in: []*tensor.Tensor{randF32(r, 2, 3, 4, 5), randF32(r, 5, 6)}, tol: gemmTol},
		&kcase{name: "MatMulBatch", op: "MatMul", in: []*tensor.Tensor{randF32(r, 3, 4, 5), randF32(r, 3, 5, 2)}, tol: gemmTol},
		&kcase{name: "MatMulBcastB", op: "MatMul", in: []*tensor.Tensor{randF32(r, 4, 5), randF32(r, 3, 5, 2)}, tol: gemmTol},
		&kcase{name: "MatMulIrregular", op: "MatMul", in: []*tensor.Tensor{randF32(r, 2, 1, 4, 5), randF32(r, 1, 3, 5, 2)}, tol: gemmTol},
		&kcase{name: "MatMulVec", op: "MatMul", in: []*tensor.Tensor{randF32(r, 5), randF32(r, 5, 2)}, tol: gemmTol},
		&kcase{name: "MatMulVecB", op: "MatMul", in: []*tensor.Tensor{randF32(r, 3, 5), randF32(r, 5)}, tol: gemmTol},
	)
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
