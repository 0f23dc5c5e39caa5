package cuda_test

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Statistics are summed in double in a tree over a block's threads, the
// CPU in double in its own order: results agree to float32 rounding, with
// an occasional last-bit difference (tolerance 2.4e-7, two float ulps).
const normTol = 2.4e-7

func TestNorm(t *testing.T) {
	r := rng(6)
	x := randF32(r, 4, 3, 7, 5)
	c := 3
	sc, b, m, v := randF32(r, c), randF32(r, c), randF32(r, c), randPos(r, c)
	five := []string{"y", "rm", "rv", "sm", "si"}
	ln := randF32(r, 6, 4, 10)
	cases := []*kcase{
		{name: "BN", op: "BatchNormalization", in: []*tensor.Tensor{x, sc, b, m, v}, attrs: []*graph.Attribute{graph.AFloat("epsilon", 1e-3)}},
		{name: "BN2D", op: "BatchNormalization", in: []*tensor.Tensor{randF32(r, 8, c), sc, b, m, v}},
		{name: "BNTrain", op: "BatchNormTrain", domain: graph.DomainGotrain, in: []*tensor.Tensor{x, sc, b, m, v}, outs: five, tol: normTol},
		{name: "BNTrainBig", op: "BatchNormTrain", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 16, 2, 9, 9), randF32(r, 2), randF32(r, 2), randF32(r, 2), randPos(r, 2)},
			outs: five, tol: normTol, attrs: []*graph.Attribute{graph.AFloat("momentum", 0.7)}},
		{name: "BNTrainStats", op: "BatchNormTrain", domain: graph.DomainGotrain, in: []*tensor.Tensor{x, sc, b, m, v}, outs: []string{"", "rm", "rv"}, tol: normTol},
		{name: "BNGrad", op: "BatchNormGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 4, 3, 7, 5), x, sc, m, v}, outs: []string{"dx", "ds", "db"}, tol: normTol},
		{name: "LN", op: "LayerNormalization", in: []*tensor.Tensor{ln, randF32(r, 10), randF32(r, 10)}, outs: []string{"y", "mean", "inv"}, tol: normTol},
		{name: "LNaxis", op: "LayerNormalization", in: []*tensor.Tensor{ln, randF32(r, 4, 10)}, attrs: []*graph.Attribute{graph.AInt("axis", 1)}, tol: normTol},
		{name: "LNGrad", op: "LayerNormGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 6, 4, 10), ln, randF32(r, 10), randF32(r, 6, 4, 1), randPos(r, 6, 4, 1)},
			outs: []string{"dx", "ds", "db"}, tol: normTol},
	}
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
