package graph

import (
	"github.com/gotrain/gotrain/tensor"
)

// Losses: ONNX's NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss, and
// gotrain's SoftmaxCrossEntropy (PyTorch's cross_entropy, with label
// smoothing and soft targets), BCEWithLogits and their gradient ops.

func init() {
	Register(&Schema{OpType: "NegativeLogLikelihoodLoss", MinInputs: 2, MaxInputs: 3, Infer: inferNLL, NoGradInputs: []int{1, 2}})
	Register(&Schema{OpType: "SoftmaxCrossEntropyLoss", MinInputs: 2, MaxInputs: 3, Infer: inferSCE, NoGradInputs: []int{1, 2}})
	sce := map[string]AttrType{"reduction": AttrString, "ignore_index": AttrInt, "label_smoothing": AttrFloat}
	bce := map[string]AttrType{"reduction": AttrString}
	Register(&Schema{Domain: DomainGotrain, OpType: "SoftmaxCrossEntropy", MinInputs: 2, MaxInputs: 3, Infer: inferSCE, NoGradInputs: []int{1, 2}, Attrs: sce})
	Register(&Schema{Domain: DomainGotrain, OpType: "SoftmaxCrossEntropyGrad", MinInputs: 3, MaxInputs: 4, Infer: inferSCEGrad, Attrs: sce})
	Register(&Schema{Domain: DomainGotrain, OpType: "BCEWithLogits", MinInputs: 2, MaxInputs: 2, Infer: inferBCE, NoGradInputs: []int{1}, Attrs: bce})
	Register(&Schema{Domain: DomainGotrain, OpType: "BCEWithLogitsGrad", MinInputs: 3, MaxInputs: 3, Infer: inferBCEGrad, Attrs: bce})
}

// LossReduction returns a loss node's reduction attribute ("mean" by
// default), checked against the three values ONNX defines.
func LossReduction(n *Node) (string, error) {
	r := n.AttrString("reduction", "mean")
	switch r {
	case "mean", "sum", "none":
		return r, nil
	}
	return "", Errorf(n, "attribute reduction is %q; want \"mean\", \"sum\" or \"none\"", r)
}

// checkClassLoss validates scores [N, C, d1..] against labels: class indices
// [N, d1..] (integer) or, when soft is allowed, float targets shaped like
// the scores; and the optional weights [C].
func checkClassLoss(n *Node, scores, labels, weights *Type, soft bool) error {
	if !scores.DType.IsFloat() {
		return Errorf(n, "input 0 has dtype %v; want a float tensor", scores.DType)
	}
	softLabels := labels.DType.IsFloat()
	switch {
	case softLabels && !soft:
		return Errorf(n, "input 1 (labels) has dtype %v; want int32 or int64 class indices", labels.DType)
	case softLabels && labels.DType != scores.DType:
		return Errorf(n, "input 1 (soft labels) has dtype %v but the scores have %v", labels.DType, scores.DType)
	case !softLabels && labels.DType != tensor.Int64 && labels.DType != tensor.Int32:
		return Errorf(n, "input 1 (labels) has dtype %v; want int32 or int64 class indices", labels.DType)
	}
	if weights != nil && weights.DType != scores.DType {
		return Errorf(n, "input 2 (weights) has dtype %v but the scores have %v", weights.DType, scores.DType)
	}
	if !scores.RankKnown {
		return nil
	}
	if len(scores.Shape) < 2 {
		return Errorf(n, "input 0 has shape %v; want [N, C, d1, ...]", scores.Shape)
	}
	if labels.RankKnown {
		want := append(Shape{scores.Shape[0]}, scores.Shape[2:]...)
		if softLabels {
			want = scores.Shape
		}
		if len(labels.Shape) != len(want) {
			return Errorf(n, "input 1 (labels) has shape %v; want %v", labels.Shape, want)
		}
		for i, d := range labels.Shape {
			if d.Known() && want[i].Known() && d.Size != want[i].Size {
				return Errorf(n, "input 1 (labels) has shape %v; want %v", labels.Shape, want)
			}
		}
	}
	if weights != nil && weights.RankKnown {
		c := scores.Shape[1]
		if len(weights.Shape) != 1 || (c.Known() && weights.Shape[0].Known() && c.Size != weights.Shape[0].Size) {
			return Errorf(n, "input 2 (weights) has shape %v; want [%v]", weights.Shape, c)
		}
	}
	return nil
}

// lossShape is the loss's type: a scalar, or the per-element shape with
// reduction "none".
func lossShape(n *Node, scores *Type, reduction string) *Type {
	if reduction != "none" {
		return NewType(scores.DType, Shape{})
	}
	if !scores.RankKnown {
		return unknownRank(scores.DType)
	}
	return NewType(scores.DType, append(Shape{scores.Shape[0]}, scores.Shape[2:]...))
}

func weightsInput(in []*Type, i int) *Type {
	if len(in) > i {
		return in[i]
	}
	return nil
}

func inferNLL(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	red, err := LossReduction(n)
	if err != nil {
		return nil, err
	}
	if err := checkClassLoss(n, in[0], in[1], weightsInput(in, 2), false); err != nil {
		return nil, err
	}
	return []*Type{lossShape(n, in[0], red)}, nil
}

func inferSCE(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	red, err := LossReduction(n)
	if err != nil {
		return nil, err
	}
	gotrain := NormDomain(n.Domain) == DomainGotrain
	if err := checkClassLoss(n, in[0], in[1], weightsInput(in, 2), gotrain); err != nil {
		return nil, err
	}
	if ls := n.AttrFloat("label_smoothing", 0); !(ls >= 0 && ls <= 1) { // NaN included
		return nil, Errorf(n, "attribute label_smoothing is %g; want a value in [0, 1]", ls)
	}
	return []*Type{lossShape(n, in[0], red), same(in[0])}, nil
}

// inferSCEGrad: dLogits has the type of log_prob (input 1).
func inferSCEGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 3); err != nil {
		return nil, err
	}
	if _, err := LossReduction(n); err != nil {
		return nil, err
	}
	if err := checkClassLoss(n, in[1], in[2], weightsInput(in, 3), true); err != nil {
		return nil, err
	}
	if in[0].DType != in[1].DType {
		return nil, Errorf(n, "input 0 (dLoss) has dtype %v but log_prob has %v", in[0].DType, in[1].DType)
	}
	return []*Type{same(in[1])}, nil
}

func checkBCE(n *Node, logits, targets *Type) error {
	if !logits.DType.IsFloat() || targets.DType != logits.DType {
		return Errorf(n, "logits and targets have dtypes %v and %v; want the same float dtype", logits.DType, targets.DType)
	}
	if logits.RankKnown && targets.RankKnown {
		ok := len(logits.Shape) == len(targets.Shape)
		for i := 0; ok && i < len(logits.Shape); i++ {
			a, b := logits.Shape[i], targets.Shape[i]
			ok = !a.Known() || !b.Known() || a.Size == b.Size
		}
		if !ok {
			return Errorf(n, "logits have shape %v but targets have %v; want equal shapes", logits.Shape, targets.Shape)
		}
	}
	return nil
}

func inferBCE(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	red, err := LossReduction(n)
	if err != nil {
		return nil, err
	}
	if err := checkBCE(n, in[0], in[1]); err != nil {
		return nil, err
	}
	if red != "none" {
		return []*Type{NewType(in[0].DType, Shape{})}, nil
	}
	return []*Type{same(in[0])}, nil
}

func inferBCEGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 3); err != nil {
		return nil, err
	}
	if _, err := LossReduction(n); err != nil {
		return nil, err
	}
	if err := checkBCE(n, in[1], in[2]); err != nil {
		return nil, err
	}
	return []*Type{same(in[1])}, nil
}
