package graph

import (
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// singleScore says whether an output holds one score per sample ([N] or
// [N, 1]), as a binary classifier's logit or a regression's value does.
func singleScore(ot *Type) bool {
	return ot.RankKnown && (len(ot.Shape) == 1 || (len(ot.Shape) == 2 && ot.Shape[1].Known() && ot.Shape[1].Size == 1))
}

// floatTargets adds the label input of a loss on float targets and returns
// the targets the loss compares the output with. Without o.ClassLabels the
// label input is those targets, shaped like the output. With it the label
// input holds int64 class indices, encoded here: one-hot along axis 1 for
// an output [N, C, d1...] (labels [N, d1...]), or cast to the output's
// dtype for a single score per sample (labels [N]).
func floatTargets(b *Builder, o TrainingOptions, ot *Type, batch Dim, tr *Training, label func(tensor.DType, Shape)) (string, error) {
	if !o.ClassLabels {
		label(ot.DType, ot.Shape)
		return tr.Label, nil
	}
	switch {
	case singleScore(ot):
		label(tensor.Int64, Shape{batch})
		t := b.Op("Cast", tr.Label).With(AInt("to", int64(ot.DType))).Out()
		if len(ot.Shape) == 2 {
			t = b.Op("Unsqueeze", t, b.Const(tensor.MustFromSlice([]int64{1}, 1))).Out()
		}
		return t, nil
	case ot.RankKnown && len(ot.Shape) >= 2 && ot.Shape[1].Known():
		label(tensor.Int64, append(Shape{batch}, ot.Shape[2:]...))
		depth := b.Const(tensor.MustFromSlice([]int64{ot.Shape[1].Size}, 1))
		offOn := b.Op("Cast", b.Const(tensor.MustFromSlice([]float32{0, 1}, 2))).With(AInt("to", int64(ot.DType))).Out()
		return b.Op("OneHot", tr.Label, depth, offOn).With(AInt("axis", 1)).Out(), nil
	}
	return "", fmt.Errorf("training: loss %q on class labels needs an output of one score per sample ([N] or [N, 1]) or of class scores [N, C] with C known; the output is %v", o.Loss, ot)
}

// classCorrect counts the samples whose class the output predicts, for the
// losses on float targets when they are trained on class labels: the
// highest score of [N, C] outputs, and for a single logit (bce) whether it
// is positive. It returns "" where no class is predicted (float targets,
// or a single score under mse or l1).
func classCorrect(b *Builder, o TrainingOptions, ot *Type, scores, labels string, logit bool) string {
	if !o.ClassLabels {
		return ""
	}
	var pred string
	switch {
	case singleScore(ot):
		if !logit {
			return ""
		}
		zero := b.Op("Cast", b.Const(tensor.Scalar(float32(0)))).With(AInt("to", int64(ot.DType))).Out()
		pred = b.Op("Cast", b.Op("Greater", scores, zero).Out()).With(AInt("to", int64(tensor.Int64))).Out()
		if len(ot.Shape) == 2 {
			pred = b.Op("Squeeze", pred, b.Const(tensor.MustFromSlice([]int64{1}, 1))).Out()
		}
	default:
		pred = b.Op("ArgMax", scores).With(AInt("axis", 1), AInt("keepdims", 0)).Out()
	}
	eq := b.Op("Cast", b.Op("Equal", pred, labels).Out()).With(AInt("to", int64(tensor.Float32))).Out()
	return b.Op("ReduceSum", eq).With(AInt("keepdims", 0)).Out()
}
