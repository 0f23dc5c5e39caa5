package graph

import (
	"github.com/gotrain/gotrain/tensor"
)

// Reductions (ReduceX, ArgMax/ArgMin) and the softmax family, whose
// normalisation is a reduction along an axis, with their gradient ops.

// ReduceOps lists the ONNX ReduceX ops gotrain implements.
var ReduceOps = []string{"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
	"ReduceSumSquare", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"}

func init() {
	for _, op := range ReduceOps {
		Register(&Schema{OpType: op, MinInputs: 1, MaxInputs: 2, Infer: inferReduce, NoGradInputs: []int{1}})
	}
	Register(&Schema{OpType: "ArgMax", MinInputs: 1, MaxInputs: 1, Infer: inferArg})
	Register(&Schema{OpType: "ArgMin", MinInputs: 1, MaxInputs: 1, Infer: inferArg})
	Register(&Schema{OpType: "Softmax", MinInputs: 1, MaxInputs: 1, Infer: inferSoftmax})
	Register(&Schema{OpType: "LogSoftmax", MinInputs: 1, MaxInputs: 1, Infer: inferSoftmax})
	Register(&Schema{Domain: DomainGotrain, OpType: "SoftmaxGrad", MinInputs: 2, MaxInputs: 2, Infer: inferSoftmaxGrad, Attrs: attrsOf("Softmax", nil)})
	Register(&Schema{Domain: DomainGotrain, OpType: "LogSoftmaxGrad", MinInputs: 2, MaxInputs: 2, Infer: inferSoftmaxGrad, Attrs: attrsOf("LogSoftmax", nil)})
}

// ReduceAxes resolves the axes a ReduceX node reduces over an input of the
// given rank: from the axes input when the node has one (ReduceSum from
// opset 13, the others from 18), else from the axes attribute. known is
// false when the axes input's value is not known. An empty result with
// noop true means the node copies its input; an empty result otherwise
// means every axis. The axes are normalised and sorted.
func ReduceAxes(n *Node, in []*Type, rank int) (axes []int, noop, known bool, err error) {
	var raw []int64
	if len(in) > 1 && in[1] != nil {
		if in[1].Value == nil {
			return nil, false, false, nil
		}
		if !in[1].Value.DType().IsInt() {
			return nil, false, false, Errorf(n, "input 1 (axes) has dtype %v; want int64", in[1].Value.DType())
		}
		raw, _ = in[1].Value.AsInt64s()
	} else {
		raw = n.AttrInts("axes", nil)
	}
	if len(raw) == 0 {
		if n.AttrInt("noop_with_empty_axes", 0) != 0 {
			return nil, true, true, nil
		}
		all := make([]int, rank)
		for i := range all {
			all[i] = i
		}
		return all, false, true, nil
	}
	seen := make([]bool, rank)
	for _, a := range raw {
		ax, e := NormAxis(a, rank)
		if e != nil {
			return nil, false, true, Errorf(n, "axes: %v", e)
		}
		if seen[ax] {
			return nil, false, true, Errorf(n, "axes lists axis %d twice", a)
		}
		seen[ax] = true
	}
	for i, s := range seen {
		if s {
			axes = append(axes, i)
		}
	}
	return axes, false, true, nil
}

func inferReduce(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	dt := x.DType
	if !x.RankKnown {
		return []*Type{unknownRank(dt)}, nil
	}
	keep := n.AttrInt("keepdims", 1) != 0
	axes, noop, known, err := ReduceAxes(n, in, len(x.Shape))
	if err != nil {
		return nil, err
	}
	if !known {
		if keep {
			s := make(Shape, len(x.Shape))
			for i := range s {
				s[i] = Unknown
			}
			return []*Type{NewType(dt, s)}, nil
		}
		return []*Type{unknownRank(dt)}, nil
	}
	if noop {
		return []*Type{same(x)}, nil
	}
	return []*Type{NewType(dt, reducedShape(x.Shape, axes, keep))}, nil
}

// reducedShape drops (or sets to 1, with keep) the dims in axes.
func reducedShape(s Shape, axes []int, keep bool) Shape {
	red := make([]bool, len(s))
	for _, a := range axes {
		red[a] = true
	}
	out := Shape{}
	for i, d := range s {
		switch {
		case !red[i]:
			out = append(out, d)
		case keep:
			out = append(out, D(1))
		}
	}
	return out
}

func inferArg(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.RankKnown {
		return []*Type{unknownRank(tensor.Int64)}, nil
	}
	ax, err := NormAxis(n.AttrInt("axis", 0), len(x.Shape))
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	return []*Type{NewType(tensor.Int64, reducedShape(x.Shape, []int{ax}, n.AttrInt("keepdims", 1) != 0))}, nil
}

// SoftmaxAxisDefault is the default axis of Softmax/LogSoftmax at an opset:
// 1 before opset 13 (where the input is coerced to 2-D at the axis), -1 from
// 13 (a single axis).
func SoftmaxAxisDefault(opset int64) int64 {
	if opset > 0 && opset < 13 {
		return 1
	}
	return -1
}

func inferSoftmax(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, Errorf(n, "input 0 has dtype %v; %s takes a float tensor", x.DType, n.OpType)
	}
	if x.RankKnown {
		axis := n.AttrInt("axis", SoftmaxAxisDefault(opset))
		if _, err := NormAxis(axis, max(len(x.Shape), 1)); err != nil {
			return nil, Errorf(n, "%v", err)
		}
	}
	return []*Type{same(x)}, nil
}

func inferSoftmaxGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	out, err := inferGradLike(n, in, opset)
	if err != nil {
		return nil, err
	}
	if in[0].RankKnown {
		if _, err := NormAxis(n.AttrInt("axis", -1), max(len(in[0].Shape), 1)); err != nil {
			return nil, Errorf(n, "%v", err)
		}
	}
	return out, nil
}
