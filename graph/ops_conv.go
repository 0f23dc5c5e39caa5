package graph

import (
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// Convolutions: Conv, ConvTranspose and gotrain's ConvGrad.
//
// ConvGrad (domain ai.gotrain) is Conv's backward pass in one node:
//
//	ConvGrad(dY, X, W) -> (dX, dW, dB)
//
// with exactly Conv's attributes. dX and dW are the gradients of Conv(X, W)
// with respect to X and W given dY, the gradient of its output; dB is dY
// summed over the batch and spatial dims (the bias gradient). Each output is
// optional: an empty output name means it is not wanted and not computed.

func init() {
	Register(&Schema{OpType: "Conv", MinInputs: 2, MaxInputs: 3, Infer: inferConv})
	Register(&Schema{OpType: "ConvTranspose", MinInputs: 2, MaxInputs: 3, Infer: inferConvTranspose})
	Register(&Schema{Domain: DomainGotrain, OpType: "ConvGrad", MinInputs: 3, MaxInputs: 3, Infer: inferConvGrad, Attrs: attrsOf("Conv", nil)})
}

// ConvGeom is the resolved geometry of a Conv, ConvTranspose or ConvGrad
// node along its spatial dims. Sizes that are not known are -1.
type ConvGeom struct {
	Group      int
	Kernel     []int // kernel size per spatial dim
	Strides    []int
	Dilations  []int
	PadBegin   []int // may be negative for ConvTranspose with output_shape
	PadEnd     []int
	OutPadding []int // ConvTranspose only; zeros otherwise
	// In holds the spatial sizes of the data input (X), Out those of the
	// output (Y). For Conv, Out[i] = (In[i]+pads-extent)/stride+1; for
	// ConvTranspose, In and Out swap roles.
	In, Out []int
}

// ResolveConv reads a convolution node's attributes and resolves auto_pad
// and output sizes. in holds X's spatial sizes and kernel W's spatial
// sizes (-1 where unknown); transpose selects ConvTranspose's semantics.
// It fails on attributes or sizes that can never be valid.
func ResolveConv(n *Node, transpose bool, in, kernel []int) (*ConvGeom, error) {
	r := len(in)
	g := &ConvGeom{Group: int(n.AttrInt("group", 1)), In: append([]int{}, in...)}
	if g.Group < 1 {
		return nil, Errorf(n, "attribute group is %d; expected a positive count", g.Group)
	}
	ints := func(name string, def int, length int) ([]int, error) {
		a := n.AttrInts(name, nil)
		out := make([]int, length)
		if a == nil {
			for i := range out {
				out[i] = def
			}
			return out, nil
		}
		if len(a) != length {
			return nil, Errorf(n, "attribute %s has %d values; expected %d (one per spatial dim)", name, len(a), length)
		}
		for i, v := range a {
			out[i] = int(v)
		}
		return out, nil
	}
	var err error
	if g.Kernel, err = ints("kernel_shape", -1, r); err != nil {
		return nil, err
	}
	for i, k := range kernel {
		switch {
		case g.Kernel[i] < 0:
			g.Kernel[i] = k
		case k >= 0 && k != g.Kernel[i]:
			return nil, Errorf(n, "attribute kernel_shape %v does not match the weight's spatial dims %v", n.AttrInts("kernel_shape", nil), kernel)
		}
	}
	if g.Strides, err = ints("strides", 1, r); err != nil {
		return nil, err
	}
	if g.Dilations, err = ints("dilations", 1, r); err != nil {
		return nil, err
	}
	for i := 0; i < r; i++ {
		if g.Strides[i] < 1 || g.Dilations[i] < 1 {
			return nil, Errorf(n, "strides %v and dilations %v must be positive", g.Strides, g.Dilations)
		}
	}
	pads, err := ints("pads", 0, 2*r)
	if err != nil {
		return nil, err
	}
	g.PadBegin, g.PadEnd = pads[:r], pads[r:]
	g.OutPadding = make([]int, r)
	if transpose {
		if g.OutPadding, err = ints("output_padding", 0, r); err != nil {
			return nil, err
		}
	}
	autoPad := n.AttrString("auto_pad", "NOTSET")
	switch autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER":
	default:
		return nil, Errorf(n, "attribute auto_pad is %q; expected NOTSET, VALID, SAME_UPPER or SAME_LOWER", autoPad)
	}
	var outShape []int64
	if transpose {
		outShape = n.AttrInts("output_shape", nil)
		if len(outShape) == r+2 {
			outShape = outShape[2:]
		} else if outShape != nil && len(outShape) != r {
			return nil, Errorf(n, "attribute output_shape has %d values; expected %d spatial sizes", len(outShape), r)
		}
	}
	for _, c := range []struct {
		what string
		v    []int
	}{{"input spatial sizes", in}, {"kernel_shape", g.Kernel}, {"strides", g.Strides}, {"dilations", g.Dilations},
		{"pads", pads}, {"output_padding", g.OutPadding}, {"output_shape", int64sToInts(outShape)}} {
		if err := checkWindow(n, c.what, c.v); err != nil {
			return nil, err
		}
	}
	g.Out = make([]int, r)
	for i := 0; i < r; i++ {
		k, s, d := g.Kernel[i], g.Strides[i], g.Dilations[i]
		x := in[i]
		if k < 0 {
			g.Out[i] = -1
			continue
		}
		ext := (k-1)*d + 1
		if autoPad == "VALID" {
			g.PadBegin[i], g.PadEnd[i] = 0, 0
		}
		if transpose {
			op := g.OutPadding[i]
			if op < 0 {
				return nil, Errorf(n, "attribute output_padding %v must be non-negative", g.OutPadding)
			}
			switch {
			case outShape != nil || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER":
				if x < 0 {
					g.Out[i] = -1
					if outShape != nil {
						g.Out[i] = int(outShape[i])
					}
					continue
				}
				out := x * s
				if outShape != nil {
					out = int(outShape[i])
				}
				total := s*(x-1) + op + ext - out
				half := convFloorDiv(total, 2)
				if autoPad == "SAME_UPPER" {
					g.PadBegin[i], g.PadEnd[i] = half, total-half
				} else {
					g.PadBegin[i], g.PadEnd[i] = total-half, half
				}
				g.Out[i] = out
			default:
				if x < 0 {
					g.Out[i] = -1
					continue
				}
				g.Out[i] = s*(x-1) + op + ext - g.PadBegin[i] - g.PadEnd[i]
			}
			if g.Out[i] < 1 {
				return nil, Errorf(n, "spatial dim %d: input size %d, kernel %d, stride %d, dilation %d and pads %d+%d give output size %d", i, x, k, s, d, g.PadBegin[i], g.PadEnd[i], g.Out[i])
			}
			continue
		}
		if x < 0 {
			g.Out[i] = -1
			continue
		}
		if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
			out := (x + s - 1) / s
			total := max(0, (out-1)*s+ext-x)
			if autoPad == "SAME_UPPER" {
				g.PadBegin[i], g.PadEnd[i] = total/2, total-total/2
			} else {
				g.PadBegin[i], g.PadEnd[i] = total-total/2, total/2
			}
		}
		if g.PadBegin[i] < 0 || g.PadEnd[i] < 0 {
			return nil, Errorf(n, "attribute pads %v must be non-negative", pads)
		}
		span := x + g.PadBegin[i] + g.PadEnd[i] - ext
		if span < 0 {
			return nil, Errorf(n, "spatial dim %d: kernel extent %d (kernel %d, dilation %d) exceeds the padded input size %d", i, ext, k, d, x+g.PadBegin[i]+g.PadEnd[i])
		}
		g.Out[i] = span/s + 1
	}
	return g, nil
}

// maxWindow bounds the sizes convolution and pooling geometry computes
// with (spatial sizes, kernels, strides, dilations, pads), so that its
// products and sums cannot overflow.
const maxWindow = 1 << 30

// checkWindow refuses geometry values beyond ±maxWindow.
func checkWindow(n *Node, what string, v []int) error {
	for _, x := range v {
		if x > maxWindow || x < -maxWindow {
			return Errorf(n, "%s %v: values beyond ±2^30 are not supported", what, v)
		}
	}
	return nil
}

func convFloorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// convDims turns a shape's dims into ints, -1 for unknown ones.
func convDims(s Shape) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d.Size)
		if !d.Known() {
			out[i] = -1
		}
	}
	return out
}

func convDim(v int) Dim {
	if v < 0 {
		return Unknown
	}
	return D(int64(v))
}

// convFloat reports whether dt is a dtype convolutions are defined on.
func convFloat(dt tensor.DType) bool { return dt.IsFloat() }

// checkConvInputs validates X and W (and bias) and returns the resolved
// geometry, or nil when a rank is unknown.
func checkConvInputs(n *Node, x, w, b *Type, transpose bool) (*ConvGeom, error) {
	if !convFloat(x.DType) {
		return nil, Errorf(n, "input X has dtype %v; expected a floating-point type", x.DType)
	}
	if w.DType != x.DType {
		return nil, Errorf(n, "weight W has dtype %v; expected X's %v", w.DType, x.DType)
	}
	if b != nil && b.DType != x.DType {
		return nil, Errorf(n, "bias B has dtype %v; expected X's %v", b.DType, x.DType)
	}
	if !x.RankKnown || !w.RankKnown {
		return nil, nil
	}
	if len(x.Shape) < 3 {
		return nil, Errorf(n, "input X has shape %v; expected rank 3 or more (N, C, spatial...)", x.Shape)
	}
	if len(w.Shape) != len(x.Shape) {
		return nil, Errorf(n, "weight W has shape %v; expected rank %d like X %v", w.Shape, len(x.Shape), x.Shape)
	}
	g, err := ResolveConv(n, transpose, convDims(x.Shape[2:]), convDims(w.Shape[2:]))
	if err != nil {
		return nil, err
	}
	c, wc := x.Shape[1], w.Shape[1]
	if transpose {
		wc = w.Shape[0]
		if c.Known() && wc.Known() && c.Size != wc.Size {
			return nil, Errorf(n, "input X has %d channels but weight W %v expects %d", c.Size, w.Shape, wc.Size)
		}
		if wc.Known() && wc.Size%int64(g.Group) != 0 {
			return nil, Errorf(n, "weight W's first dim %d is not divisible by group %d", wc.Size, g.Group)
		}
	} else {
		if c.Known() && wc.Known() && c.Size != wc.Size*int64(g.Group) {
			return nil, Errorf(n, "input X has %d channels but weight W %v with group %d expects %d", c.Size, w.Shape, g.Group, wc.Size*int64(g.Group))
		}
		if m := w.Shape[0]; m.Known() && m.Size%int64(g.Group) != 0 {
			return nil, Errorf(n, "weight W's %d output channels are not divisible by group %d", m.Size, g.Group)
		}
	}
	if b != nil && b.RankKnown {
		m := w.Shape[0]
		if transpose {
			m = Unknown
			if w.Shape[1].Known() {
				m = D(w.Shape[1].Size * int64(g.Group))
			}
		}
		if len(b.Shape) != 1 || (b.Shape[0].Known() && m.Known() && b.Shape[0].Size != m.Size) {
			return nil, Errorf(n, "bias B has shape %v; expected [%v]", b.Shape, m)
		}
	}
	return g, nil
}

func inferConv(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	g, err := checkConvInputs(n, x, w, convOptIn(in, 2), false)
	if err != nil || g == nil {
		if err == nil {
			return []*Type{unknownRank(x.DType)}, nil
		}
		return nil, err
	}
	s := Shape{x.Shape[0], w.Shape[0]}
	for _, o := range g.Out {
		s = append(s, convDim(o))
	}
	return []*Type{NewType(x.DType, s)}, nil
}

func inferConvTranspose(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	x, w := in[0], in[1]
	g, err := checkConvInputs(n, x, w, convOptIn(in, 2), true)
	if err != nil || g == nil {
		if err == nil {
			return []*Type{unknownRank(x.DType)}, nil
		}
		return nil, err
	}
	c := Unknown
	if w.Shape[1].Known() {
		c = D(w.Shape[1].Size * int64(g.Group))
	}
	s := Shape{x.Shape[0], c}
	for _, o := range g.Out {
		s = append(s, convDim(o))
	}
	return []*Type{NewType(x.DType, s)}, nil
}

func inferConvGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 3); err != nil {
		return nil, err
	}
	dy, x, w := in[0], in[1], in[2]
	if dy.DType != x.DType {
		return nil, Errorf(n, "input dY has dtype %v; expected X's %v", dy.DType, x.DType)
	}
	g, err := checkConvInputs(n, x, w, nil, false)
	if err != nil {
		return nil, err
	}
	if g != nil && dy.RankKnown {
		want := Shape{x.Shape[0], w.Shape[0]}
		for _, o := range g.Out {
			want = append(want, convDim(o))
		}
		if len(dy.Shape) != len(want) {
			return nil, Errorf(n, "input dY has shape %v; expected Conv's output shape %v", dy.Shape, want)
		}
		for i, d := range dy.Shape {
			if d.Known() && want[i].Known() && d.Size != want[i].Size {
				return nil, Errorf(n, "input dY has shape %v; expected Conv's output shape %v", dy.Shape, want)
			}
		}
	}
	db := unknownRank(x.DType)
	if w.RankKnown && len(w.Shape) > 0 {
		db = NewType(x.DType, Shape{w.Shape[0]})
	}
	return []*Type{same(x), same(w), db}, nil
}

func convOptIn(in []*Type, i int) *Type {
	if i < len(in) {
		return in[i]
	}
	return nil
}

// String for error messages about geometry.
func (g *ConvGeom) String() string {
	return fmt.Sprintf("kernel %v strides %v dilations %v pads %v/%v group %d in %v out %v",
		g.Kernel, g.Strides, g.Dilations, g.PadBegin, g.PadEnd, g.Group, g.In, g.Out)
}
