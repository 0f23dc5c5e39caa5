package graph

import (
	"fmt"
	"path"
	"sort"

	"github.com/gotrain/gotrain/tensor"
)

// Loss names a training loss.
type Loss string

// The losses. CrossEntropy takes int64 class labels [N]; CrossEntropyOneHot
// takes float targets shaped like the scores. Both are PyTorch's
// cross_entropy (mean over the batch) with optional label smoothing. A model
// whose output is Softmax (as Keras models end) is trained on the Softmax's
// input through the fused, numerically stable form, never log(softmax).
//
// BCEWithLogits, MSE and L1 compare the output with float targets of its
// shape, as PyTorch's BCEWithLogitsLoss, MSELoss and L1Loss do; "mean"
// averages over every element, not only the samples. With
// TrainingOptions.ClassLabels, these losses and CrossEntropyOneHot take
// int64 class labels instead and encode them in the graph (see there).
const (
	CrossEntropy       Loss = "cross_entropy"
	CrossEntropyOneHot Loss = "cross_entropy_onehot"
	BCEWithLogits      Loss = "bce"   // binary cross-entropy on logits (a Sigmoid output is unwrapped)
	MSE                Loss = "mse"   // mean squared error
	L1                 Loss = "l1"    // mean absolute error
	GraphLoss          Loss = "graph" // the model already computes its loss (its first output)
)

// Losses lists the losses TrainingGraph knows, in the order help texts
// name them.
var Losses = []Loss{CrossEntropy, CrossEntropyOneHot, BCEWithLogits, MSE, L1, GraphLoss}

// TrainingOptions configure TrainingGraph.
type TrainingOptions struct {
	Loss           Loss
	LabelSmoothing float64
	// Reduction is "mean" (default: the mean over the batch's samples) or
	// "sum" (their sum), as PyTorch's reduction argument.
	Reduction string
	// Freeze lists parameter names or path.Match patterns kept constant.
	Freeze []string
	// Output is the model output the loss applies to (default: the first).
	Output string
	// SyncBatchNorm computes BatchNorm's batch statistics over all
	// replicas of a group (ai.gotrain.AllReduceSum) instead of each
	// replica's share; on a single device it changes nothing.
	SyncBatchNorm bool
	// ClassLabels makes the label input int64 class indices for every
	// loss, as datasets of labelled images hold them. The losses on float
	// targets (CrossEntropyOneHot, BCEWithLogits, MSE, L1) then compare the
	// output with the labels encoded in the graph: one-hot rows (1 at the
	// class, 0 elsewhere) for an output [N, C, ...] with C > 1, the label
	// itself as a number for an output of one score per sample ([N] or
	// [N, 1]: binary classification with bce). Without it those losses
	// take float targets shaped like the output.
	ClassLabels bool
}

// Training is a model turned into a training step: forward in training
// mode, loss, metrics and backward. Trainable initializers and BatchNorm
// statistics become inputs; the gradients and new statistics are outputs.
type Training struct {
	Model *Model
	// Data are the model's own inputs; Label is the label input added.
	Data  []string
	Label string
	// Params are the trainable parameters in a fixed order, with Grads[i]
	// the output holding the gradient of Params[i].
	Params []string
	Grads  []string
	// Buffers are non-trainable state updated by the step (BatchNorm
	// running statistics); NewBuffers[i] is the output with the new value
	// of Buffers[i].
	Buffers    []string
	NewBuffers []string
	// Frozen are initializers that stay constant (frozen or integer).
	Frozen []string
	// Loss is the scalar loss output; Correct counts correctly classified
	// samples (classification losses only, else "").
	Loss, Correct string
	// SumLoss is set when the loss sums over samples instead of averaging:
	// strategies then add the replicas' gradients instead of averaging them.
	SumLoss bool
	// Collective is set when the graph holds collective ops (sync
	// BatchNorm): its replicas must run as a group. Such graphs take the
	// replica's loss weight as the input LossScale, and their gradients
	// are already weighted.
	Collective bool
	LossScale  string
	// Seed and Offset are the Dropout inputs ("" without Dropout): a per-step
	// seed and the index of the batch's first sample in the global batch.
	Seed, Offset string
	// Eval is the model's graph in inference form with the label, loss and
	// metric outputs added, parameters as inputs: evaluation runs it.
	Eval *Model
}

// TrainingGraph builds the training step of an inference model.
func TrainingGraph(src *Model, o TrainingOptions) (*Training, error) {
	if len(src.Graph.Outputs) == 0 {
		return nil, fmt.Errorf("training: the model has no outputs")
	}
	for _, pat := range o.Freeze {
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("training: freeze pattern %q: %v", pat, err)
		}
	}
	switch ls := o.LabelSmoothing; {
	case !(ls >= 0 && ls <= 1): // NaN included
		return nil, fmt.Errorf("training: label smoothing %g: want a value in [0, 1]", ls)
	case ls != 0 && o.Loss != CrossEntropy && o.Loss != CrossEntropyOneHot && o.Loss != "":
		return nil, fmt.Errorf("training: label smoothing %g applies to cross-entropy, not to loss %q", ls, o.Loss)
	}
	switch o.Reduction {
	case "", "mean":
	case "sum":
		if o.Loss == GraphLoss {
			return nil, fmt.Errorf("training: reduction %q does not apply to a loss the graph computes", o.Reduction)
		}
	default:
		return nil, fmt.Errorf("training: reduction %q: expected mean or sum", o.Reduction)
	}
	out := o.Output
	if out == "" {
		out = src.Graph.Outputs[0].Name
	}
	found := false
	for _, v := range src.Graph.Outputs {
		found = found || v.Name == out
	}
	if !found {
		return nil, fmt.Errorf("training: %q is not an output of the model", out)
	}
	// Which initializers are frozen, and did every freeze pattern match?
	inits := src.Graph.InitializerNames()
	matched := make([]bool, len(o.Freeze))
	frozen := map[string]bool{}
	for _, name := range inits {
		for i, pat := range o.Freeze {
			if ok, _ := path.Match(pat, name); ok || pat == name {
				frozen[name] = true
				matched[i] = true
			}
		}
	}
	for i, pat := range o.Freeze {
		if !matched[i] {
			return nil, fmt.Errorf("training: freeze %q matches no parameter of the model (parameters: %v)", pat, trainableNames(src))
		}
	}

	tr := &Training{SumLoss: o.Reduction == "sum"}
	evalModel, err := withLoss(src, out, o, tr, false)
	if err != nil {
		return nil, err
	}
	tr.Eval = evalModel
	evalLoss, evalCorrect := tr.Loss, tr.Correct
	m, err := withLoss(src, out, o, tr, true)
	if err != nil {
		return nil, err
	}
	tr.Model = m
	g := m.Graph
	// Parameters: float initializers read by some node, minus frozen ones
	// and BatchNorm statistics.
	buffers := map[string]bool{}
	for _, b := range tr.Buffers {
		buffers[b] = true
	}
	used := map[string]bool{}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			used[in] = true
		}
	}
	for _, name := range g.InitializerNames() {
		t := g.Initializer(name)
		switch {
		case buffers[name]:
		case frozen[name] || !t.DType().IsFloat() || !used[name]:
			tr.Frozen = append(tr.Frozen, name)
		default:
			tr.Params = append(tr.Params, name)
		}
	}
	if len(tr.Params) == 0 {
		return nil, fmt.Errorf("training: the model has no trainable parameters")
	}
	target := tr.Loss
	if tr.Collective {
		// Replicas that exchange values inside the graph must weight their
		// losses before differentiating: a replica's backward also carries
		// the other replicas' terms through the collective ops, so the
		// weights cannot be applied to the gradients afterwards.
		tr.LossScale = "loss_scale"
		g.Inputs = append(g.Inputs, &ValueInfo{Name: tr.LossScale, Type: *NewType(tensor.Float32, Shape{})})
		target = Extend(m).Op("Mul", tr.Loss, tr.LossScale).Out()
	}
	grads, err := Gradients(m, target, tr.Params)
	if err != nil {
		return nil, err
	}
	// Parameters and buffers become inputs of both graphs.
	for _, gm := range []*Model{m, tr.Eval} {
		for _, name := range append(append([]string{}, tr.Params...), tr.Buffers...) {
			t := gm.Graph.Initializer(name)
			if t == nil {
				continue
			}
			gm.Graph.RemoveInitializer(name)
			gm.Graph.Inputs = append(gm.Graph.Inputs, &ValueInfo{Name: name, Type: Type{DType: t.DType(), Shape: ShapeOf(t.Shape()...), RankKnown: true}})
		}
	}
	// The evaluation graph's outputs: loss, the metric when there is one,
	// and the model output, in that order.
	evalOuts := []*ValueInfo{{Name: evalLoss}}
	if evalCorrect != "" {
		evalOuts = append(evalOuts, &ValueInfo{Name: evalCorrect})
	}
	tr.Eval.Graph.Outputs = append(evalOuts, &ValueInfo{Name: out})
	g.Outputs = []*ValueInfo{{Name: tr.Loss}}
	if tr.Correct != "" {
		g.Outputs = append(g.Outputs, &ValueInfo{Name: tr.Correct})
	}
	for _, p := range tr.Params {
		tr.Grads = append(tr.Grads, grads[p])
		g.Outputs = append(g.Outputs, &ValueInfo{Name: grads[p]})
	}
	for _, nb := range tr.NewBuffers {
		g.Outputs = append(g.Outputs, &ValueInfo{Name: nb})
	}
	if err := typeOutputs(m); err != nil {
		return nil, err
	}
	if err := typeOutputs(tr.Eval); err != nil {
		return nil, err
	}
	return tr, nil
}

func trainableNames(m *Model) []string {
	var out []string
	for _, name := range m.Graph.InitializerNames() {
		if m.Graph.Initializer(name).DType().IsFloat() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func typeOutputs(m *Model) error {
	types, err := InferShapes(m, nil)
	if err != nil {
		return err
	}
	for _, o := range m.Graph.Outputs {
		if t := types[o.Name]; t != nil {
			o.Type = *t
			o.Type.Value = nil
		}
	}
	return nil
}

// withLoss clones src, rewrites it into training mode when train is set,
// and adds the label input, the loss and the metric. It fills tr's Data,
// Label, Loss, Correct (and, in training mode, Buffers, Seed and Offset).
func withLoss(src *Model, out string, o TrainingOptions, tr *Training, train bool) (*Model, error) {
	m := *src
	m.Opsets = map[string]int64{}
	for k, v := range src.Opsets {
		m.Opsets[k] = v
	}
	m.Opsets[DomainGotrain] = 1
	m.Graph = src.Graph.Clone()
	g := m.Graph
	b := Extend(&m)
	b.NodeOpset = GradOpset
	tr.Data = nil
	for _, in := range g.Inputs {
		tr.Data = append(tr.Data, in.Name)
	}
	if train {
		if err := trainingMode(b, tr, o.SyncBatchNorm); err != nil {
			return nil, err
		}
	}
	types, err := InferShapes(&m, nil)
	if err != nil {
		return nil, err
	}
	ot := types[out]
	if ot == nil || !ot.DType.IsFloat() {
		return nil, fmt.Errorf("training: output %q must be floating-point to train on", out)
	}
	producer := g.Producers()
	// unwrap returns the input of a final Softmax/Sigmoid so the loss works
	// on logits.
	unwrap := func(op string) string {
		if p := producer[out]; p != nil && p.OpType == op {
			if op == "Softmax" {
				if t := types[p.Inputs[0]]; t != nil && t.RankKnown {
					def := int64(-1)
					if m.OpsetOf(p) < 13 {
						def = 1
					}
					if a, err := NormAxis(p.AttrInt("axis", def), len(t.Shape)); err != nil || a != len(t.Shape)-1 {
						return out
					}
				}
			}
			return p.Inputs[0]
		}
		return out
	}
	tr.Label = "labels"
	for g.Input(tr.Label) != nil || types[tr.Label] != nil {
		tr.Label = "_" + tr.Label
	}
	label := func(dt tensor.DType, shape Shape) {
		g.Inputs = append(g.Inputs, &ValueInfo{Name: tr.Label, Type: *NewType(dt, shape)})
	}
	batch := Sym("N")
	if ot.RankKnown && len(ot.Shape) > 0 {
		batch = ot.Shape[0]
	}
	tr.Correct = ""
	switch o.Loss {
	case CrossEntropy, CrossEntropyOneHot, "":
		logits := unwrap("Softmax")
		if !ot.RankKnown || len(ot.Shape) < 2 {
			return nil, fmt.Errorf("training: cross-entropy needs scores of shape [N, classes], output %q is %v", out, ot)
		}
		var r *NodeRef
		target, truth := tr.Label, tr.Label
		if o.Loss == CrossEntropyOneHot {
			var err error
			if target, err = floatTargets(b, o, ot, batch, tr, label); err != nil {
				return nil, err
			}
			if !o.ClassLabels {
				truth = b.Op("ArgMax", tr.Label).With(AInt("axis", 1), AInt("keepdims", 0)).Out()
			}
		} else {
			label(tensor.Int64, append(Shape{batch}, ot.Shape[2:]...))
		}
		r = b.OpN(DomainGotrain, "SoftmaxCrossEntropy", 2, logits, target).With(AString("reduction", reduction(o)))
		if o.LabelSmoothing != 0 {
			r.With(AFloat("label_smoothing", float32(o.LabelSmoothing)))
		}
		tr.Loss = r.Out()
		pred := b.Op("ArgMax", logits).With(AInt("axis", 1), AInt("keepdims", 0)).Out()
		eq := b.Op("Cast", b.Op("Equal", pred, truth).Out()).With(AInt("to", int64(tensor.Float32))).Out()
		tr.Correct = b.Op("ReduceSum", eq).With(AInt("keepdims", 0)).Out()
	case BCEWithLogits:
		logits := unwrap("Sigmoid")
		target, err := floatTargets(b, o, ot, batch, tr, label)
		if err != nil {
			return nil, err
		}
		tr.Loss = b.OpN(DomainGotrain, "BCEWithLogits", 1, logits, target).With(AString("reduction", reduction(o))).Out()
		tr.Correct = classCorrect(b, o, ot, logits, tr.Label, true)
	case MSE, L1:
		target, err := floatTargets(b, o, ot, batch, tr, label)
		if err != nil {
			return nil, err
		}
		tr.Correct = classCorrect(b, o, ot, out, tr.Label, false)
		d := b.Op("Sub", out, target).Out()
		var e string
		if o.Loss == MSE {
			e = b.Op("Mul", d, d).Out()
		} else {
			e = b.Op("Abs", d).Out()
		}
		op := "ReduceMean"
		if o.Reduction == "sum" {
			op = "ReduceSum"
		}
		tr.Loss = b.Op(op, e).With(AInt("keepdims", 0)).Out()
	case GraphLoss:
		if ot.RankKnown && len(ot.Shape) != 0 {
			return nil, fmt.Errorf("training: loss \"graph\" needs a scalar output, %q is %v", out, ot)
		}
		tr.Label = ""
		tr.Loss = out
	default:
		return nil, fmt.Errorf("training: unknown loss %q (have cross_entropy, cross_entropy_onehot, bce, mse, l1, graph)", o.Loss)
	}
	return &m, nil
}

func reduction(o TrainingOptions) string {
	if o.Reduction == "sum" {
		return "sum"
	}
	return "mean"
}

// trainingMode rewrites BatchNormalization to use batch statistics (and
// update the running ones) and Dropout to be active.
func trainingMode(b *Builder, tr *Training, syncBN bool) error {
	g := b.Graph()
	tr.Buffers, tr.NewBuffers = nil, nil
	tr.Seed, tr.Offset = "", ""
	var types Types
	if syncBN {
		var err error
		if types, err = InferShapes(b.model, nil); err != nil {
			return err
		}
	}
	nodes := append([]*Node{}, g.Nodes...)
	for _, n := range nodes {
		switch n.OpType {
		case "BatchNormalization":
			if NormDomain(n.Domain) != DomainONNX {
				continue
			}
			if syncBN {
				if err := syncBatchNorm(b, tr, n, types); err != nil {
					return err
				}
				continue
			}
			if len(n.Inputs) < 5 {
				return Errorf(n, "expects 5 inputs")
			}
			for _, s := range n.Inputs[3:5] {
				if g.Initializer(s) == nil {
					return Errorf(n, "running statistic %q must be an initializer to train", s)
				}
			}
			momentum := n.AttrFloat("momentum", 0.9)
			eps := n.AttrFloat("epsilon", 1e-5)
			y := n.Outputs[0]
			outs := []string{y, b.Fresh(n.Inputs[3] + "_new"), b.Fresh(n.Inputs[4] + "_new"), b.Fresh(n.Name + "_saved_mean"), b.Fresh(n.Name + "_saved_invstd")}
			tr.Buffers = append(tr.Buffers, n.Inputs[3], n.Inputs[4])
			tr.NewBuffers = append(tr.NewBuffers, outs[1], outs[2])
			n.OpType, n.Domain, n.Opset = "BatchNormTrain", DomainGotrain, 0
			n.Outputs = outs
			n.Inputs = n.Inputs[:5]
			n.Attrs = map[string]*Attribute{}
			n.SetAttr(AFloat("momentum", momentum)).SetAttr(AFloat("epsilon", eps))
		case "Dropout":
			if NormDomain(n.Domain) != DomainONNX {
				continue
			}
			if tr.Seed == "" {
				tr.Seed, tr.Offset = "dropout_seed", "sample_offset"
				g.Inputs = append(g.Inputs,
					&ValueInfo{Name: tr.Seed, Type: *NewType(tensor.Int64, Shape{})},
					&ValueInfo{Name: tr.Offset, Type: *NewType(tensor.Int64, Shape{})})
			}
			ratio := n.Input(1)
			if ratio == "" {
				ratio = b.Const(tensor.Scalar(n.AttrFloat("ratio", 0.5)))
			}
			mask := ""
			if len(n.Outputs) > 1 {
				mask = n.Outputs[1]
			}
			if mask == "" {
				mask = b.Fresh(n.Name + "_mask")
			}
			n.OpType, n.Domain, n.Opset = "DropoutTrain", DomainGotrain, 0
			n.Inputs = []string{n.Inputs[0], ratio, tr.Seed, tr.Offset}
			n.Outputs = []string{n.Outputs[0], mask}
			n.Attrs = map[string]*Attribute{}
		}
	}
	return nil
}

// syncBatchNorm replaces a BatchNormalization node by its training form
// with statistics over every replica: per-channel sums of x and x² and the
// sample count are all-reduced in one vector, the mean and biased variance
// come from them, and the running statistics are updated (unbiased
// variance, as PyTorch) from the global values. Built from primitive ops,
// so autodiff differentiates it like any other graph.
func syncBatchNorm(b *Builder, tr *Training, n *Node, types Types) error {
	g := b.Graph()
	if len(n.Inputs) < 5 {
		return Errorf(n, "expects 5 inputs")
	}
	for _, s := range n.Inputs[3:5] {
		if g.Initializer(s) == nil {
			return Errorf(n, "running statistic %q must be an initializer to train", s)
		}
	}
	xt := types[n.Inputs[0]]
	if xt == nil || !xt.RankKnown || len(xt.Shape) < 2 || !xt.Shape[1].Known() {
		return Errorf(n, "sync BatchNorm needs an input of known rank and channel count, have %v", xt)
	}
	rank, c := len(xt.Shape), xt.Shape[1].Size
	ints := func(v ...int64) string { return b.Const(tensor.MustFromSlice(v, len(v))) }
	f32 := func(v float64) string { return b.Const(scalarOf(xt.DType, v)) }
	axes := []int64{0}
	bshape := []int64{1, c}
	for i := 2; i < rank; i++ {
		axes = append(axes, int64(i))
		bshape = append(bshape, 1)
	}
	x := n.Inputs[0]
	eps := float64(n.AttrFloat("epsilon", 1e-5))
	momentum := float64(n.AttrFloat("momentum", 0.9))
	sum := b.Op("ReduceSum", x, ints(axes...)).With(AInt("keepdims", 0)).Out()
	sq := b.Op("ReduceSum", b.Op("Mul", x, x).Out(), ints(axes...)).With(AInt("keepdims", 0)).Out()
	cnt := b.Op("Div", b.Op("Cast", b.Op("Size", x).Out()).With(AInt("to", int64(xt.DType))).Out(), f32(float64(c))).Out()
	stack := b.Op("Concat", sum, sq, b.Op("Reshape", cnt, ints(1)).Out()).With(AInt("axis", 0)).Out()
	all := b.OpN(DomainGotrain, "AllReduceSum", 1, stack).Out()
	slice := func(lo, hi int64) string { return b.Op("Slice", all, ints(lo), ints(hi), ints(0)).Out() }
	count := slice(2*c, 2*c+1)
	mean := b.Op("Div", slice(0, c), count).Out()
	variance := b.Op("Sub", b.Op("Div", slice(c, 2*c), count).Out(), b.Op("Mul", mean, mean).Out()).Out()
	shape := ints(bshape...)
	meanB := b.Op("Reshape", mean, shape).Out()
	inv := b.Op("Reciprocal", b.Op("Sqrt", b.Op("Add", b.Op("Reshape", variance, shape).Out(), f32(eps)).Out()).Out()).Out()
	norm := b.Op("Mul", b.Op("Sub", x, meanB).Out(), inv).Out()
	scaled := b.Op("Mul", norm, b.Op("Reshape", n.Inputs[1], shape).Out()).Out()
	// Running statistics: running*momentum + batch*(1-momentum), with the
	// unbiased variance.
	rmName, rvName := n.Inputs[3], n.Inputs[4]
	m, om := f32(momentum), f32(1-momentum)
	unbiased := b.Op("Mul", variance, b.Op("Div", count, b.Op("Sub", count, f32(1)).Out()).Out()).Out()
	newMean := b.Op("Add", b.Op("Mul", rmName, m).Out(), b.Op("Mul", mean, om).Out()).Out()
	newVar := b.Op("Add", b.Op("Mul", rvName, m).Out(), b.Op("Mul", unbiased, om).Out()).Out()
	tr.Buffers = append(tr.Buffers, rmName, rvName)
	tr.NewBuffers = append(tr.NewBuffers, newMean, newVar)
	tr.Collective = true
	// The node itself becomes the final Add, so its output keeps its name.
	n.OpType, n.Domain, n.Opset = "Add", DomainONNX, GradOpset
	n.Inputs = []string{scaled, b.Op("Reshape", n.Inputs[2], shape).Out()}
	n.Attrs = map[string]*Attribute{}
	n.Outputs = n.Outputs[:1]
	return nil
}
