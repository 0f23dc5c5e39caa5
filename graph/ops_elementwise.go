package graph

import (
	"fmt"
	"strings"

	"github.com/gotrain/gotrain/tensor"
)

// Elementwise ops: activations, unary math, broadcasting arithmetic and
// comparisons, variadic Max/Min/Sum/Mean, Where, Clip, Cast and CastLike,
// and the gotrain gradient ops of this family (SumToShape and the
// activation gradients).

func init() {
	for _, op := range []string{"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Erf", "Sqrt", "Exp",
		"Log", "Neg", "Abs", "Reciprocal"} {
		Register(&Schema{OpType: op, MinInputs: 1, MaxInputs: 1, Infer: inferUnaryFloat})
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		Register(&Schema{OpType: op, MinInputs: 2, MaxInputs: 2, Infer: inferSameDTypeBroadcast})
	}
	Register(&Schema{OpType: "Pow", MinInputs: 2, MaxInputs: 2, Infer: inferPow})
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"} {
		Register(&Schema{OpType: op, MinInputs: 2, MaxInputs: 2, Infer: inferCompare})
	}
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		Register(&Schema{OpType: op, MinInputs: 1, MaxInputs: -1, Infer: inferSameDTypeBroadcast})
	}
	Register(&Schema{OpType: "Where", MinInputs: 3, MaxInputs: 3, Infer: inferWhere})
	Register(&Schema{OpType: "Clip", MinInputs: 1, MaxInputs: 3, Infer: inferClip})
	Register(&Schema{OpType: "Cast", MinInputs: 1, MaxInputs: 1, Infer: inferCast})
	Register(&Schema{OpType: "CastLike", MinInputs: 2, MaxInputs: 2, Infer: inferCastLike})

	Register(&Schema{Domain: DomainGotrain, OpType: "SumToShape", MinInputs: 2, MaxInputs: 2,
		Infer: inferSumToShape, NoGradInputs: []int{1}, Attrs: map[string]AttrType{}})
	for _, op := range []string{"ReluGrad", "SigmoidGrad", "TanhGrad", "LeakyReluGrad", "GeluGrad"} {
		// A gradient takes its forward op's attributes (LeakyRelu's alpha, ...).
		Register(&Schema{Domain: DomainGotrain, OpType: op, MinInputs: 2, MaxInputs: 2, Infer: inferGradLike,
			Attrs: attrsOf(strings.TrimSuffix(op, "Grad"), nil)})
	}
}

// inferUnaryFloat: the output has the input's type.
func inferUnaryFloat(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	if in[0].DType == tensor.String || in[0].DType == tensor.Bool {
		return nil, Errorf(n, "input 0 has dtype %v; %s takes a numeric tensor", in[0].DType, n.OpType)
	}
	return []*Type{same(in[0])}, nil
}

// inferSameDTypeBroadcast: all inputs share a dtype; the output is their
// broadcast shape with that dtype.
func inferSameDTypeBroadcast(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, len(in)); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, Errorf(n, "needs at least one input")
	}
	for i, t := range in[1:] {
		if t.DType != in[0].DType {
			return nil, Errorf(n, "input %d has dtype %v but input 0 has %v; %s needs equal dtypes", i+1, t.DType, in[0].DType, n.OpType)
		}
	}
	return broadcastTypes(n, in[0].DType, in)
}

func inferPow(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	return broadcastTypes(n, in[0].DType, in)
}

func inferCompare(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	if in[0].DType != in[1].DType {
		return nil, Errorf(n, "input 1 has dtype %v but input 0 has %v; %s needs equal dtypes", in[1].DType, in[0].DType, n.OpType)
	}
	return broadcastTypes(n, tensor.Bool, in)
}

func inferWhere(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 3); err != nil {
		return nil, err
	}
	if in[0].DType != tensor.Bool {
		return nil, Errorf(n, "input 0 (condition) has dtype %v; Where needs bool", in[0].DType)
	}
	if in[1].DType != in[2].DType {
		return nil, Errorf(n, "inputs 1 and 2 have dtypes %v and %v; Where needs equal dtypes", in[1].DType, in[2].DType)
	}
	return broadcastTypes(n, in[1].DType, in)
}

func inferClip(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	for i := 1; i < len(in); i++ {
		if in[i] == nil {
			continue
		}
		if in[i].DType != in[0].DType {
			return nil, Errorf(n, "input %d has dtype %v but input 0 has %v", i, in[i].DType, in[0].DType)
		}
		if s, ok := in[i].Concrete(); ok && tensor.NumElements(s) != 1 {
			return nil, Errorf(n, "input %d (%s) must be a scalar, has shape %v", i, []string{"", "min", "max"}[i], s)
		}
	}
	return []*Type{same(in[0])}, nil
}

// CastTarget returns the dtype a Cast node converts to (its "to" attribute).
func CastTarget(n *Node) (tensor.DType, error) {
	a := n.Attr("to")
	if a == nil || a.Type != AttrInt {
		return tensor.Invalid, fmt.Errorf("attribute \"to\" (an int dtype) is missing")
	}
	return tensor.DType(a.I), nil
}

func inferCast(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	dt, err := CastTarget(n)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	t := same(in[0])
	t.DType = dt
	return []*Type{t}, nil
}

func inferCastLike(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	t := same(in[0])
	t.DType = in[1].DType
	return []*Type{t}, nil
}

// inferSumToShape: Y has X's dtype and the shape held by input 1.
func inferSumToShape(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	if in[1].DType != tensor.Int64 {
		return nil, Errorf(n, "input 1 (shape) has dtype %v; want int64", in[1].DType)
	}
	if v := constInts(in[1]); v != nil || (in[1].Value != nil && in[1].Value.Len() == 0) {
		s := make(Shape, len(v))
		for i, d := range v {
			if d < 0 {
				return nil, Errorf(n, "input 1 (shape) has negative dim %d", d)
			}
			s[i] = D(d)
		}
		if in[0].RankKnown {
			if _, err := BroadcastShapes(in[0].Shape, s); err != nil || len(s) > len(in[0].Shape) {
				return nil, Errorf(n, "input 0 of shape %v cannot be summed to shape %v", in[0].Shape, s)
			}
		}
		return []*Type{NewType(in[0].DType, s)}, nil
	}
	if r, ok := declaredLen(in[1]); ok {
		return []*Type{NewType(in[0].DType, unknownShape(r))}, nil
	}
	return []*Type{unknownRank(in[0].DType)}, nil
}

// inferGradLike: the gradient has the type of input 0 (the incoming
// gradient); input 1 must have the same dtype.
func inferGradLike(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	if in[0].DType != in[1].DType {
		return nil, Errorf(n, "inputs have dtypes %v and %v; %s needs equal dtypes", in[0].DType, in[1].DType, n.OpType)
	}
	if in[0].RankKnown && in[1].RankKnown {
		s, err := BroadcastShapes(in[0].Shape, in[1].Shape)
		if err != nil || len(s) != len(in[0].Shape) {
			return nil, Errorf(n, "input shapes %v and %v differ", in[0].Shape, in[1].Shape)
		}
		return []*Type{NewType(in[0].DType, s)}, nil
	}
	return []*Type{same(in[0])}, nil
}
