package cuda_test

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestReduceSoftmaxLoss(t *testing.T) {
	r := rng(2)
	x := randF32(r, 4, 3, 5)
	ax := func(a ...int64) *tensor.Tensor { return ints(a...) }
	c1 := map[int]bool{1: true}
	var cases []*kcase
	for _, op := range []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceProd"} {
		for _, axes := range [][]int64{{0}, {1}, {2}, {0, 2}, {-1, 1}} {
			for _, keep := range []int64{0, 1} {
				cases = append(cases, &kcase{name: op, op: op, in: []*tensor.Tensor{x, ax(axes...)}, consts: c1,
					attrs: []*graph.Attribute{graph.AInt("keepdims", keep)}})
			}
		}
		cases = append(cases, &kcase{name: op + "all", op: op, in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInt("keepdims", 0)}})
	}
	cases = append(cases,
		&kcase{name: "SumToShape", op: "SumToShape", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 8, 4, 3, 3), ints(4, 1, 1)}, consts: c1},
		&kcase{name: "SumToShapeRow", op: "SumToShape", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 8, 10), ints(10)}, consts: c1},
		&kcase{name: "ArgMax", op: "ArgMax", in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInt("axis", 1), graph.AInt("keepdims", 0)}},
		&kcase{name: "ArgMin", op: "ArgMin", in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInt("axis", 2), graph.AInt("select_last_index", 1)}},
	)
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		for _, a := range []int64{-1, 1, 0} {
			cases = append(cases, &kcase{name: op, op: op, in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInt("axis", a)}})
		}
		cases = append(cases, &kcase{name: op + "11", op: op, opset: 11, in: []*tensor.Tensor{x}})
	}
	for _, op := range []string{"SoftmaxGrad", "LogSoftmaxGrad"} {
		cases = append(cases, &kcase{name: op, op: op, domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 4, 3, 5), randF32(r, 4, 3, 5)},
			attrs: []*graph.Attribute{graph.AInt("axis", 1)}})
	}
	// Losses: class indices (int64 and int32), soft targets, weights,
	// smoothing, an ignored index, every reduction, spatial positions.
	scores := randF32(r, 6, 5)
	lab := randInt(r, 5, 6)
	lab32 := tensor.New(tensor.Int32, 6)
	for i, v := range lab.Int64s() {
		lab32.Int32s()[i] = int32(v)
	}
	soft := randPos(r, 6, 5)
	w := randPos(r, 5)
	sp := randF32(r, 3, 4, 2, 2)
	spLab := randInt(r, 4, 3, 2, 2)
	lossOuts := []string{"loss", "lp"}
	for _, red := range []string{"mean", "sum", "none"} {
		for _, sm := range []float32{0, 0.1} {
			attrs := []*graph.Attribute{graph.AString("reduction", red), graph.AFloat("label_smoothing", sm)}
			cases = append(cases,
				&kcase{name: "SCE " + red, op: "SoftmaxCrossEntropy", domain: graph.DomainGotrain, in: []*tensor.Tensor{scores, lab}, attrs: attrs, outs: lossOuts},
				&kcase{name: "SCE32 " + red, op: "SoftmaxCrossEntropy", domain: graph.DomainGotrain, in: []*tensor.Tensor{scores, lab32, w}, attrs: attrs},
				&kcase{name: "SCEsoft " + red, op: "SoftmaxCrossEntropy", domain: graph.DomainGotrain, in: []*tensor.Tensor{scores, soft}, attrs: attrs, outs: lossOuts},
				&kcase{name: "SCEspatial " + red, op: "SoftmaxCrossEntropy", domain: graph.DomainGotrain, in: []*tensor.Tensor{sp, spLab}, attrs: attrs, outs: lossOuts},
			)
			dl := scalarF(0.7)
			if red == "none" {
				dl = randF32(r, 6)
			}
			lp := randF32(r, 6, 5)
			cases = append(cases,
				&kcase{name: "SCEGrad " + red, op: "SoftmaxCrossEntropyGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dl, lp, lab, w}, attrs: attrs},
				&kcase{name: "SCEGradSoft " + red, op: "SoftmaxCrossEntropyGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dl, lp, soft}, attrs: attrs},
			)
		}
		bx, bt := randF32(r, 5, 7), randPos(r, 5, 7)
		dl := scalarF(1.3)
		if red == "none" {
			dl = randF32(r, 5, 7)
		}
		attrs := []*graph.Attribute{graph.AString("reduction", red)}
		cases = append(cases,
			&kcase{name: "BCE " + red, op: "BCEWithLogits", domain: graph.DomainGotrain, in: []*tensor.Tensor{bx, bt}, attrs: attrs, tol: 1e-7},
			&kcase{name: "BCEGrad " + red, op: "BCEWithLogitsGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dl, bx, bt}, attrs: attrs},
		)
	}
	cases = append(cases,
		&kcase{name: "SCE ignore", op: "SoftmaxCrossEntropyLoss", in: []*tensor.Tensor{scores, lab}, attrs: []*graph.Attribute{graph.AInt("ignore_index", 2)}, outs: lossOuts},
		&kcase{name: "SCE bad label", op: "SoftmaxCrossEntropy", domain: graph.DomainGotrain, in: []*tensor.Tensor{scores, ints(0, 1, 7, 2, 3, 4)}, wantErr: "position 2 is outside [0, 5)"},
		&kcase{name: "SCEGrad bad label", op: "SoftmaxCrossEntropyGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{scalarF(1), scores, ints(0, 1, 2, -1, 3, 4)}, wantErr: "position 3 is outside [0, 5)"},
	)
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
