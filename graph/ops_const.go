package graph

import (
	"fmt"
	"math"

	"github.com/gotrain/gotrain/tensor"
)

// Constant-producing ops: Constant, ConstantOfShape and Range. Their
// inference sets Type.Value whenever the output can be computed from what is
// known, so that shapes built from them resolve at plan time.

func init() {
	Register(&Schema{OpType: "Constant", MinInputs: 0, MaxInputs: 0, Infer: inferConstant})
	Register(&Schema{OpType: "ConstantOfShape", MinInputs: 1, MaxInputs: 1, Infer: inferConstantOfShape, NoGradInputs: []int{0}})
	Register(&Schema{OpType: "Range", MinInputs: 3, MaxInputs: 3, Infer: inferRange, NoGradInputs: []int{0, 1, 2}})
}

// ConstantValue returns the tensor a Constant node produces, from whichever
// of its value attributes is set.
func ConstantValue(n *Node) (*tensor.Tensor, error) {
	var found []string
	var t *tensor.Tensor
	for name, a := range n.Attrs {
		var v *tensor.Tensor
		switch name {
		case "value":
			if a.T == nil {
				return nil, Errorf(n, "attribute value holds no tensor")
			}
			v = a.T
		case "value_float":
			v = tensor.Scalar(a.F)
		case "value_floats":
			v = tensor.MustFromSlice(append([]float32{}, a.Floats...), len(a.Floats))
		case "value_int":
			v = tensor.Scalar(a.I)
		case "value_ints":
			v = tensor.MustFromSlice(append([]int64{}, a.Ints...), len(a.Ints))
		case "value_string":
			v = tensor.MustFromSlice([]string{a.S})
		case "value_strings":
			v = tensor.MustFromSlice(append([]string{}, a.Strings...), len(a.Strings))
		case "sparse_value":
			return nil, &UnsupportedOpError{Node: n, Reason: "Constant with a sparse_value"}
		default:
			continue
		}
		found = append(found, name)
		t = v
	}
	switch len(found) {
	case 0:
		return nil, Errorf(n, "has none of the attributes value, value_float(s), value_int(s), value_string(s)")
	case 1:
		return t, nil
	}
	return nil, Errorf(n, "has more than one value attribute: %v", found)
}

func inferConstant(n *Node, in []*Type, opset int64) ([]*Type, error) {
	t, err := ConstantValue(n)
	if err != nil {
		return nil, err
	}
	return []*Type{TypeOf(t)}, nil
}

// ConstantOfShapeFill returns the one-element tensor ConstantOfShape fills
// its output with (float32 0 by default).
func ConstantOfShapeFill(n *Node) (*tensor.Tensor, error) {
	a := n.Attr("value")
	if a == nil {
		return tensor.MustFromSlice([]float32{0}, 1), nil
	}
	if a.T == nil || a.T.Len() != 1 {
		return nil, Errorf(n, "attribute value must be a tensor of one element")
	}
	return a.T, nil
}

func inferConstantOfShape(n *Node, in []*Type, opset int64) ([]*Type, error) {
	fill, err := ConstantOfShapeFill(n)
	if err != nil {
		return nil, err
	}
	s, ok, err := shapeFromInput(n, in[0], "shape")
	if err != nil {
		return nil, err
	}
	if !ok {
		return []*Type{unknownRank(fill.DType())}, nil
	}
	t := NewType(fill.DType(), s)
	if dims, ok := s.Concrete(); ok && foldable(dims) {
		t.Value = takeValue([]*tensor.Tensor{fill}, make([]int, tensor.NumElements(dims)), dims)
	}
	return []*Type{t}, nil
}

// RangeLen is the number of elements of Range(start, limit, delta):
// max(ceil((limit-start)/delta), 0).
func RangeLen(start, limit, delta float64) (int, error) {
	if delta == 0 {
		return 0, fmt.Errorf("delta is 0")
	}
	n := math.Ceil((limit - start) / delta)
	if math.IsNaN(n) || n > 1<<53 {
		return 0, fmt.Errorf("range(%v, %v, %v) is not a valid length", start, limit, delta)
	}
	return int(max(n, 0)), nil
}

// RangeCount is the number of elements Range gives for known scalar
// tensors of one dtype, computed without building the range.
func RangeCount(start, limit, delta *tensor.Tensor) (int, error) {
	dt := start.DType()
	if limit.DType() != dt || delta.DType() != dt {
		return 0, fmt.Errorf("start, limit and delta must share a dtype, have %v, %v, %v", dt, limit.DType(), delta.DType())
	}
	if start.Len() != 1 || limit.Len() != 1 || delta.Len() != 1 {
		return 0, fmt.Errorf("start, limit and delta must be scalars")
	}
	if !dt.IsInt() {
		return RangeLen(start.AsFloat64(0), limit.AsFloat64(0), delta.AsFloat64(0))
	}
	s, _ := start.AsInt64s()
	l, _ := limit.AsInt64s()
	d, _ := delta.AsInt64s()
	if d[0] == 0 {
		return 0, fmt.Errorf("delta is 0")
	}
	// Integer ceil division without float rounding; limit-start is
	// checked, since it can overflow an int64.
	num, ok := addSizeRange(l[0], s[0])
	if !ok {
		return 0, fmt.Errorf("range(%d, %d, %d) is longer than an int64 counts", s[0], l[0], d[0])
	}
	den := d[0]
	if den == -1 && num == math.MinInt64 {
		return 0, fmt.Errorf("range(%d, %d, %d) is longer than an int64 counts", s[0], l[0], d[0])
	}
	cnt := num / den
	if num%den != 0 && (num < 0) == (den < 0) {
		cnt++
	}
	return int(max(cnt, 0)), nil
}

// addSizeRange is limit - start, ok false on overflow.
func addSizeRange(limit, start int64) (int64, bool) {
	if start == math.MinInt64 {
		return addSize(limit, math.MaxInt64, 1)
	}
	return addSize(limit, -start)
}

// RangeValue computes Range on known scalar tensors of one dtype. The
// output is allocated through the memory limit.
func RangeValue(start, limit, delta *tensor.Tensor) (*tensor.Tensor, error) {
	cnt, err := RangeCount(start, limit, delta)
	if err != nil {
		return nil, err
	}
	dt := start.DType()
	if dt.IsInt() {
		s, _ := start.AsInt64s()
		d, _ := delta.AsInt64s()
		out, err := tensor.NewChecked(tensor.Int64, []int{cnt})
		if err != nil {
			return nil, err
		}
		v := out.Int64s()
		for i := range v {
			v[i] = s[0] + int64(i)*d[0]
		}
		return castInt64s(out, dt)
	}
	s, d := start.AsFloat64(0), delta.AsFloat64(0)
	out, err := tensor.NewChecked(dt, []int{cnt})
	if err != nil {
		return nil, err
	}
	switch dt {
	case tensor.Float32:
		v := out.Float32s()
		// Accumulating in the output type matches the reference's
		// start + i*delta in float32.
		st, dl := float32(s), float32(d)
		for i := range v {
			v[i] = st + float32(i)*dl
		}
	case tensor.Float64:
		v := out.Float64s()
		for i := range v {
			v[i] = s + float64(i)*d
		}
	case tensor.Float16, tensor.BFloat16:
		v := out.Raw16()
		st, dl := float32(s), float32(d)
		for i := range v {
			f := st + float32(i)*dl
			if dt == tensor.Float16 {
				v[i] = tensor.Float32ToHalf(f)
			} else {
				v[i] = tensor.Float32ToBFloat16(f)
			}
		}
	default:
		return nil, fmt.Errorf("Range does not take %v", dt)
	}
	return out, nil
}

// castInt64s converts an int64 tensor to another integer dtype.
func castInt64s(t *tensor.Tensor, dt tensor.DType) (*tensor.Tensor, error) {
	if dt == tensor.Int64 {
		return t, nil
	}
	v := t.Int64s()
	var data any
	switch dt {
	case tensor.Int32:
		d := make([]int32, len(v))
		for i, x := range v {
			d[i] = int32(x)
		}
		data = d
	case tensor.Int16:
		d := make([]int16, len(v))
		for i, x := range v {
			d[i] = int16(x)
		}
		data = d
	case tensor.Int8:
		d := make([]int8, len(v))
		for i, x := range v {
			d[i] = int8(x)
		}
		data = d
	default:
		return nil, fmt.Errorf("Range does not take %v", dt)
	}
	return tensor.FromSlice(data, t.Shape()...)
}

func inferRange(n *Node, in []*Type, opset int64) ([]*Type, error) {
	dt := in[0].DType
	for i, t := range in {
		if t.DType != dt {
			return nil, Errorf(n, "input %d is %v but input 0 is %v", i, t.DType, dt)
		}
		if t.RankKnown && len(t.Shape) > 1 {
			return nil, Errorf(n, "input %d must be a scalar, has shape %v", i, t.Shape)
		}
	}
	if in[0].Value == nil || in[1].Value == nil || in[2].Value == nil {
		return []*Type{NewType(dt, Shape{Unknown})}, nil
	}
	// The length first: the values are built only when small, and a long
	// range is left to checkOutputs and the executor.
	cnt, err := RangeCount(in[0].Value, in[1].Value, in[2].Value)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	if cnt > maxFoldElems {
		return []*Type{NewType(dt, Shape{D(int64(cnt))})}, nil
	}
	v, err := RangeValue(in[0].Value, in[1].Value, in[2].Value)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	return []*Type{TypeOf(v)}, nil
}
