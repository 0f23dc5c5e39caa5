package graph

import (
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// Pooling ops: MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool, and
// the gradient ops MaxPoolGrad and AveragePoolGrad of domain ai.gotrain.
//
// MaxPoolGrad(dY, Indices, X) -> dX scatters dY into a tensor shaped like X
// at the flat row-major indices that MaxPool's second output holds
// (storage_order 0); it takes no attributes. AveragePoolGrad(dY, X) -> dX
// takes AveragePool's attributes and spreads each dY element evenly over
// the input positions its window averaged.

// PoolWindow is the resolved window arithmetic of a pooling op over its
// spatial dims: kernel, strides, dilations, the padding actually applied at
// the start and end of each dim (auto_pad resolved), and the output sizes.
type PoolWindow struct {
	Kernel    []int
	Strides   []int
	Dilations []int
	PadBegin  []int
	PadEnd    []int
	CeilMode  bool
	// In and Out are the spatial input and output sizes; -1 where unknown.
	In, Out []int
}

// ResolvePoolWindow reads kernel_shape, strides, dilations, pads, auto_pad
// and ceil_mode of a MaxPool/AveragePool-style node and computes the output
// size of each spatial dim from the input sizes in (-1: unknown, giving an
// unknown output size). It fails on attributes that can never be valid.
func ResolvePoolWindow(n *Node, in []int) (*PoolWindow, error) {
	rank := len(in)
	ks := n.AttrInts("kernel_shape", nil)
	if len(ks) != rank {
		if len(ks) == 0 {
			return nil, Errorf(n, "attribute kernel_shape is required")
		}
		return nil, Errorf(n, "kernel_shape %v has %d dims; the input has %d spatial dims", ks, len(ks), rank)
	}
	w := &PoolWindow{
		Kernel: make([]int, rank), Strides: make([]int, rank), Dilations: make([]int, rank),
		PadBegin: make([]int, rank), PadEnd: make([]int, rank),
		CeilMode: n.AttrInt("ceil_mode", 0) != 0,
		In:       append([]int{}, in...), Out: make([]int, rank),
	}
	get := func(name string, def int64, min int64) ([]int64, error) {
		v := n.AttrInts(name, nil)
		if v == nil {
			v = make([]int64, rank)
			for i := range v {
				v[i] = def
			}
			return v, nil
		}
		if len(v) != rank {
			return nil, Errorf(n, "attribute %s %v has %d values, expected %d", name, v, len(v), rank)
		}
		for _, x := range v {
			if x < min {
				return nil, Errorf(n, "attribute %s %v: values must be >= %d", name, v, min)
			}
		}
		return v, nil
	}
	strides, err := get("strides", 1, 1)
	if err != nil {
		return nil, err
	}
	dil, err := get("dilations", 1, 1)
	if err != nil {
		return nil, err
	}
	for i := range ks {
		if ks[i] < 1 {
			return nil, Errorf(n, "kernel_shape %v: sizes must be >= 1", ks)
		}
		w.Kernel[i], w.Strides[i], w.Dilations[i] = int(ks[i]), int(strides[i]), int(dil[i])
	}
	if err := checkWindow(n, "kernel_shape", w.Kernel); err != nil {
		return nil, err
	}
	for _, v := range []struct {
		what string
		v    []int64
	}{{"strides", strides}, {"dilations", dil}, {"pads", n.AttrInts("pads", nil)}} {
		if err := checkWindow(n, v.what, int64sToInts(v.v)); err != nil {
			return nil, err
		}
	}
	if err := checkWindow(n, "input spatial sizes", in); err != nil {
		return nil, err
	}
	autoPad := n.AttrString("auto_pad", "NOTSET")
	switch autoPad {
	case "NOTSET", "":
		pads := n.AttrInts("pads", nil)
		if pads != nil {
			if len(pads) != 2*rank {
				return nil, Errorf(n, "attribute pads %v has %d values, expected %d", pads, len(pads), 2*rank)
			}
			for i := 0; i < rank; i++ {
				if pads[i] < 0 || pads[rank+i] < 0 {
					return nil, Errorf(n, "attribute pads %v: values must be >= 0", pads)
				}
				w.PadBegin[i], w.PadEnd[i] = int(pads[i]), int(pads[rank+i])
			}
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, Errorf(n, "attribute auto_pad %q: expected NOTSET, SAME_UPPER, SAME_LOWER or VALID", autoPad)
	}
	for i := 0; i < rank; i++ {
		if in[i] < 0 {
			w.Out[i] = -1
			continue
		}
		span := (w.Kernel[i]-1)*w.Dilations[i] + 1
		s := w.Strides[i]
		if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
			out := (in[i] + s - 1) / s
			total := max(0, (out-1)*s+span-in[i])
			if autoPad == "SAME_UPPER" {
				w.PadBegin[i] = total / 2
			} else {
				w.PadBegin[i] = total - total/2
			}
			w.PadEnd[i] = total - w.PadBegin[i]
			w.Out[i] = out
			continue
		}
		num := in[i] + w.PadBegin[i] + w.PadEnd[i] - span
		if num < 0 {
			return nil, Errorf(n, "spatial dim %d: window of extent %d does not fit the padded input of size %d",
				i, span, in[i]+w.PadBegin[i]+w.PadEnd[i])
		}
		out := num/s + 1
		if w.CeilMode {
			out = (num+s-1)/s + 1
			// A last window that would start in the end padding is dropped.
			if (out-1)*s >= in[i]+w.PadBegin[i] {
				out--
			}
		}
		w.Out[i] = out
	}
	return w, nil
}

// poolSpatialIn returns the spatial sizes of an N,C,D1.. shape (-1 unknown).
func poolSpatialIn(s Shape) []int {
	in := make([]int, len(s)-2)
	for i := range in {
		in[i] = int(s[i+2].Size)
		if !s[i+2].Known() {
			in[i] = -1
		}
	}
	return in
}

// poolCheckX checks the pooled input's rank and dtype.
func poolCheckX(n *Node, x *Type, ints bool) error {
	ok := x.DType.IsFloat() || (ints && (x.DType == tensor.Int8 || x.DType == tensor.Uint8))
	if !ok {
		return Errorf(n, "input X has dtype %v; %s takes floating-point%s tensors", x.DType, n.OpType,
			map[bool]string{true: " or int8/uint8", false: ""}[ints])
	}
	if x.RankKnown && len(x.Shape) < 3 {
		return Errorf(n, "input X has shape %v; %s expects N x C x D1 x ... (rank >= 3)", x.Shape, n.OpType)
	}
	return nil
}

// poolInferWindowed infers MaxPool/AveragePool (and their Indices output).
func poolInferWindowed(ints bool) InferFunc {
	return func(n *Node, in []*Type, opset int64) ([]*Type, error) {
		if err := requireInputs(n, in, 1); err != nil {
			return nil, err
		}
		x := in[0]
		if err := poolCheckX(n, x, ints); err != nil {
			return nil, err
		}
		if !x.RankKnown {
			// The kernel's length still gives the rank.
			ks := n.AttrInts("kernel_shape", nil)
			if len(ks) == 0 {
				return nil, Errorf(n, "attribute kernel_shape is required")
			}
			shape := make(Shape, len(ks)+2)
			for i := range shape {
				shape[i] = Unknown
			}
			return []*Type{NewType(x.DType, shape), NewType(tensor.Int64, append(Shape{}, shape...))}, nil
		}
		w, err := ResolvePoolWindow(n, poolSpatialIn(x.Shape))
		if err != nil {
			return nil, err
		}
		shape := Shape{x.Shape[0], x.Shape[1]}
		for _, o := range w.Out {
			if o < 0 {
				shape = append(shape, Unknown)
			} else {
				shape = append(shape, D(int64(o)))
			}
		}
		outs := []*Type{NewType(x.DType, shape)}
		if n.OpType == "MaxPool" {
			if s := n.AttrInt("storage_order", 0); s != 0 && s != 1 {
				return nil, Errorf(n, "attribute storage_order is %d, expected 0 or 1", s)
			}
			outs = append(outs, NewType(tensor.Int64, append(Shape{}, shape...)))
		}
		return outs, nil
	}
}

func poolInferGlobal(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if err := poolCheckX(n, x, false); err != nil {
		return nil, err
	}
	if !x.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	shape := Shape{x.Shape[0], x.Shape[1]}
	for range x.Shape[2:] {
		shape = append(shape, D(1))
	}
	return []*Type{NewType(x.DType, shape)}, nil
}

// poolInferGrad types the gradient ops: dX has X's type (input xIdx), and
// dY must be shaped as the forward op's output.
func poolInferGrad(xIdx int) InferFunc {
	return func(n *Node, in []*Type, opset int64) ([]*Type, error) {
		if err := requireInputs(n, in, xIdx+1); err != nil {
			return nil, err
		}
		dy, x := in[0], in[xIdx]
		if err := poolCheckX(n, x, false); err != nil {
			return nil, err
		}
		if dy.DType != x.DType {
			return nil, Errorf(n, "dY has dtype %v but X has %v", dy.DType, x.DType)
		}
		if n.OpType == "MaxPoolGrad" && in[1].DType != tensor.Int64 {
			return nil, Errorf(n, "Indices has dtype %v, expected int64", in[1].DType)
		}
		if x.RankKnown && dy.RankKnown && len(dy.Shape) != len(x.Shape) {
			return nil, Errorf(n, "dY has rank %d but X has rank %d", len(dy.Shape), len(x.Shape))
		}
		if n.OpType == "AveragePoolGrad" && x.RankKnown {
			w, err := ResolvePoolWindow(n, poolSpatialIn(x.Shape))
			if err != nil {
				return nil, err
			}
			if dy.RankKnown {
				for i, o := range w.Out {
					if d := dy.Shape[i+2]; o >= 0 && d.Known() && int(d.Size) != o {
						return nil, Errorf(n, "dY has shape %v; AveragePool's output over X %v has spatial dims %v", dy.Shape, x.Shape, w.Out)
					}
				}
			}
		}
		return []*Type{same(x)}, nil
	}
}

func init() {
	Register(&Schema{OpType: "MaxPool", MinInputs: 1, MaxInputs: 1, Infer: poolInferWindowed(true)})
	Register(&Schema{OpType: "AveragePool", MinInputs: 1, MaxInputs: 1, Infer: poolInferWindowed(false)})
	Register(&Schema{OpType: "GlobalMaxPool", MinInputs: 1, MaxInputs: 1, Infer: poolInferGlobal})
	Register(&Schema{OpType: "GlobalAveragePool", MinInputs: 1, MaxInputs: 1, Infer: poolInferGlobal})
	Register(&Schema{Domain: DomainGotrain, OpType: "MaxPoolGrad", MinInputs: 3, MaxInputs: 3,
		Infer: poolInferGrad(2), NoGradInputs: []int{1}, Attrs: attrsOf("MaxPool", nil)})
	Register(&Schema{Domain: DomainGotrain, OpType: "AveragePoolGrad", MinInputs: 2, MaxInputs: 2,
		Infer: poolInferGrad(1), Attrs: attrsOf("AveragePool", nil)})
}

// String describes the window for error messages and debugging.
func (w *PoolWindow) String() string {
	return fmt.Sprintf("kernel %v strides %v dilations %v pads %v/%v ceil %v in %v out %v",
		w.Kernel, w.Strides, w.Dilations, w.PadBegin, w.PadEnd, w.CeilMode, w.In, w.Out)
}
