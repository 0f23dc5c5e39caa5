package train

import (
	"fmt"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/graph"
)

// Labels. A data.Source holds int64 class indices, and the trainer builds
// its training graph with graph.TrainingOptions.ClassLabels, so every loss
// takes them: cross_entropy as they are, and the losses on float targets
// (cross_entropy_onehot, bce, mse, l1) one-hot encoded against an output
// of class scores [N, C], or as the number itself against an output of one
// score per sample ([N] or [N, 1]; with bce, a binary classifier's logit
// and labels 0 or 1). A label the encoding cannot hold is an error before
// training starts, not an all-zero target.

// checkLabels verifies every label of src against the model's output.
func (t *Trainer) checkLabels(src data.Source, what string) error {
	if t.Training.Label == "" {
		return nil
	}
	outs := t.Training.Eval.Graph.Outputs
	out := outs[len(outs)-1] // the model output, typed by TrainingGraph
	ot := out.Type
	var classes int64
	switch {
	case !ot.RankKnown || len(ot.Shape) == 0:
		return nil
	case len(ot.Shape) == 1 || (len(ot.Shape) == 2 && ot.Shape[1].Known() && ot.Shape[1].Size == 1):
		if t.cfg.Loss != graph.BCEWithLogits {
			return nil // a regression on the label's value
		}
		classes = 2 // one logit: labels 0 and 1
	case ot.Shape[1].Known():
		classes = ot.Shape[1].Size
	default:
		return nil
	}
	name := what
	if d, ok := src.(*data.Dataset); ok && d.LabelFile() != "" {
		name = what + " " + d.LabelFile()
	}
	for i := 0; i < src.Len(); i++ {
		if l := src.Label(i); l < 0 || l >= classes {
			return fmt.Errorf("%s: sample %d has label %d, out of range for the model's %d classes (output %q is %v)", name, i, l, classes, out.Name, ot.Shape)
		}
	}
	return nil
}
