package cpu

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Constant-producing kernels: Constant, ConstantOfShape, Range, EyeLike.
// The executor folds them at plan time whenever their inputs are known, so
// these kernels mostly run once.

func init() {
	Register(graph.DomainONNX, "Constant", constantFactory)
	Register(graph.DomainONNX, "ConstantOfShape", constantOfShapeFactory)
	Register(graph.DomainONNX, "Range", rangeFactory)
	Register(graph.DomainONNX, "EyeLike", eyeLikeFactory)
}

func constantFactory(p *Prep) (Kernel, error) {
	v, err := graph.ConstantValue(p.Node)
	if err != nil {
		return nil, err
	}
	if !v.DType().Supported() {
		return nil, Unsupported(p, "dtype %v", v.DType())
	}
	return func(in, out []*tensor.Tensor) error {
		if out[0].DType() != v.DType() || !tensor.SameShape(out[0].Shape(), v.Shape()) {
			return fmt.Errorf("output buffer is %v%v, the constant %v%v", out[0].DType(), out[0].Shape(), v.DType(), v.Shape())
		}
		out[0].CopyFrom(v)
		return nil
	}, nil
}

func fillT[T moveElem](out, v *tensor.Tensor) {
	dst := moveData[T](out)
	x := moveData[T](v)[0]
	for i := range dst {
		dst[i] = x
	}
}

func constantOfShapeFactory(p *Prep) (Kernel, error) {
	fill, err := graph.ConstantOfShapeFill(p.Node)
	if err != nil {
		return nil, err
	}
	f, ok := bySize(fill.DType(), fillT[uint8], fillT[uint16], fillT[uint32], fillT[uint64], fillT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", fill.DType())
	}
	return func(in, out []*tensor.Tensor) error {
		f(out[0], fill)
		return nil
	}, nil
}

func rangeFactory(p *Prep) (Kernel, error) {
	switch dt := p.In[0].DType; dt {
	case tensor.Float32, tensor.Float64, tensor.Float16, tensor.BFloat16, tensor.Int64, tensor.Int32, tensor.Int16, tensor.Int8:
	default:
		return nil, Unsupported(p, "dtype %v", dt)
	}
	return func(in, out []*tensor.Tensor) error {
		v, err := graph.RangeValue(in[0], in[1], in[2])
		if err != nil {
			return err
		}
		if v.Len() != out[0].Len() {
			return fmt.Errorf("range has %d elements but the output buffer %d", v.Len(), out[0].Len())
		}
		out[0].CopyFrom(v)
		return nil
	}, nil
}

func eyeLikeFactory(p *Prep) (Kernel, error) {
	os, ok := p.Out[0].Concrete()
	if !ok || len(os) != 2 {
		return nil, Errorf(p, "output must have a concrete 2-D shape")
	}
	dt := p.Out[0].DType
	one, err := tensor.NewChecked(dt, []int{1})
	if err != nil || dt == tensor.String {
		return nil, Unsupported(p, "dtype %v", dt)
	}
	if err := setFromFloat64(one, 1); err != nil {
		return nil, Unsupported(p, "%v", err)
	}
	zero := tensor.New(dt, 1)
	k := int(p.Node.AttrInt("k", 0))
	rows, cols := os[0], os[1]
	f, ok := bySize(dt, eyeT[uint8], eyeT[uint16], eyeT[uint32], eyeT[uint64], eyeT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", dt)
	}
	return func(in, out []*tensor.Tensor) error {
		f(out[0], zero, one, rows, cols, k)
		return nil
	}, nil
}

func eyeT[T moveElem](out, zero, one *tensor.Tensor, rows, cols, k int) {
	dst := moveData[T](out)
	z, o := moveData[T](zero)[0], moveData[T](one)[0]
	for i := range dst {
		dst[i] = z
	}
	for i := 0; i < rows; i++ {
		if j := i + k; j >= 0 && j < cols {
			dst[i*cols+j] = o
		}
	}
}
