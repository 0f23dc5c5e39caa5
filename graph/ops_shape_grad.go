package graph

import (
	"math"

	"github.com/gotrain/gotrain/tensor"
)

// Gradient rules of the shape and data-movement ops: each moves the
// gradient back the way the op moved the data.

func init() {
	reshapeBack := func(c *GradContext, n *Node, d []string) ([]string, error) {
		out := make([]string, len(n.Inputs))
		out[0] = c.Op("Reshape", d[0], c.Shape(n.Inputs[0])).Out()
		return out, nil
	}
	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze"} {
		RegisterGrad("", op, reshapeBack)
	}
	RegisterGrad("", "Transpose", func(c *GradContext, n *Node, d []string) ([]string, error) {
		perm := n.AttrInts("perm", nil)
		if perm == nil {
			t := c.Type(n.Inputs[0])
			if t == nil || !t.RankKnown {
				return nil, Errorf(n, "the input's rank must be known to differentiate")
			}
			for i := len(t.Shape) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		inv := make([]int64, len(perm))
		for i, p := range perm {
			inv[p] = int64(i)
		}
		return []string{c.Op("Transpose", d[0]).With(AInts("perm", inv...)).Out()}, nil
	})
	RegisterGrad("", "Expand", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.SumTo(d[0], n.Inputs[0], n.Outputs[0]), ""}, nil
	})
	RegisterGrad("", "Concat", func(c *GradContext, n *Node, d []string) ([]string, error) {
		t := c.Type(n.Outputs[0])
		if t == nil || !t.RankKnown {
			return nil, Errorf(n, "the output's rank must be known to differentiate")
		}
		axis, err := NormAxis(n.AttrInt("axis", 0), len(t.Shape))
		if err != nil {
			return nil, Errorf(n, "%v", err)
		}
		out := make([]string, len(n.Inputs))
		off := int64(0)
		for i, in := range n.Inputs {
			it := c.Type(in)
			if it == nil || !it.RankKnown || !it.Shape[axis].Known() {
				return nil, Errorf(n, "input %q's size along the concat axis must be known to differentiate", in)
			}
			size := it.Shape[axis].Size
			if c.Needs(in) {
				out[i] = c.Op("Slice", d[0],
					c.Const(tensor.MustFromSlice([]int64{off}, 1)),
					c.Const(tensor.MustFromSlice([]int64{off + size}, 1)),
					c.Const(tensor.MustFromSlice([]int64{int64(axis)}, 1))).Out()
			}
			off += size
		}
		return out, nil
	})
	RegisterGrad("", "Split", func(c *GradContext, n *Node, d []string) ([]string, error) {
		parts := make([]string, len(d))
		for i, g := range d {
			if g == "" {
				parts[i] = c.Op("ConstantOfShape", c.Shape(n.Outputs[i])).With(ATensor("value", zeroLike(c.Type(n.Inputs[0]).DType))).Out()
			} else {
				parts[i] = g
			}
		}
		out := make([]string, len(n.Inputs))
		out[0] = c.Op("Concat", parts...).With(AInt("axis", n.AttrInt("axis", 0))).Out()
		return out, nil
	})
	RegisterGrad("", "Slice", func(c *GradContext, n *Node, d []string) ([]string, error) {
		x := n.Inputs[0]
		var starts, ends, axes, steps string
		if c.B.model.OpsetOf(n) < 10 {
			starts = c.Const(tensor.MustFromSlice(n.AttrInts("starts", nil), len(n.AttrInts("starts", nil))))
			ends = c.Const(tensor.MustFromSlice(n.AttrInts("ends", nil), len(n.AttrInts("ends", nil))))
			if ax := n.AttrInts("axes", nil); ax != nil {
				axes = c.Const(tensor.MustFromSlice(ax, len(ax)))
			}
		} else {
			starts, ends, axes, steps = n.Input(1), n.Input(2), n.Input(3), n.Input(4)
		}
		if axes == "" {
			k, ok := declaredLen(c.Type(starts))
			if !ok {
				return nil, Errorf(n, "the number of sliced axes must be known to differentiate")
			}
			ax := make([]int64, k)
			for i := range ax {
				ax[i] = int64(i)
			}
			axes = c.Const(tensor.MustFromSlice(ax, len(ax)))
		}
		if steps == "" {
			one := make([]int64, 1)
			if k, ok := declaredLen(c.Type(starts)); ok {
				one = make([]int64, k)
			}
			for i := range one {
				one[i] = 1
			}
			steps = c.Const(tensor.MustFromSlice(one, len(one)))
		}
		out := make([]string, len(n.Inputs))
		out[0] = c.GOp("SliceGrad", 1, d[0], c.Shape(x), starts, ends, axes, steps).Out()
		return out, nil
	})
	RegisterGrad("", "Gather", func(c *GradContext, n *Node, d []string) ([]string, error) {
		g := c.GOp("GatherGrad", 1, d[0], n.Inputs[1], c.Shape(n.Inputs[0])).With(AInt("axis", n.AttrInt("axis", 0))).Out()
		return []string{g, ""}, nil
	})
	RegisterGrad("", "Pad", func(c *GradContext, n *Node, d []string) ([]string, error) {
		if mode := n.AttrString("mode", "constant"); mode != "constant" {
			return nil, Errorf(n, "differentiating Pad in mode %q is not supported (only constant)", mode)
		}
		var pads []int64
		if c.B.model.OpsetOf(n) < 11 {
			pads = n.AttrInts("pads", nil)
		} else {
			pads = constInts(c.Type(n.Input(1)))
			if pads == nil {
				return nil, Errorf(n, "the pads must be constant to differentiate")
			}
		}
		if n.Input(3) != "" {
			return nil, Errorf(n, "differentiating Pad with an axes input is not supported")
		}
		r := len(pads) / 2
		starts, ends, axes := make([]int64, r), make([]int64, r), make([]int64, r)
		for i := 0; i < r; i++ {
			axes[i] = int64(i)
			starts[i] = pads[i]
			ends[i] = math.MaxInt64
			if e := pads[i+r]; e > 0 {
				ends[i] = -e
			}
			if pads[i] < 0 || pads[i+r] < 0 {
				return nil, Errorf(n, "differentiating Pad with negative pads is not supported")
			}
		}
		out := make([]string, len(n.Inputs))
		out[0] = c.Op("Slice", d[0], c.Const(tensor.MustFromSlice(starts, r)), c.Const(tensor.MustFromSlice(ends, r)),
			c.Const(tensor.MustFromSlice(axes, r))).Out()
		return out, nil
	})
	reduceGrad := func(mean bool) GradRule {
		return func(c *GradContext, n *Node, d []string) ([]string, error) {
			x := n.Inputs[0]
			xt := c.Type(x)
			if xt == nil || !xt.RankKnown {
				return nil, Errorf(n, "the input's rank must be known to differentiate")
			}
			rank := len(xt.Shape)
			var axes []int64
			fromInput := (n.OpType == "ReduceSum" && c.B.model.OpsetOf(n) >= 13) || c.B.model.OpsetOf(n) >= 18
			if fromInput {
				if n.Input(1) != "" {
					axes = constInts(c.Type(n.Input(1)))
					if axes == nil {
						return nil, Errorf(n, "the axes must be constant to differentiate")
					}
				}
			} else {
				axes = n.AttrInts("axes", nil)
			}
			if len(axes) == 0 {
				if fromInput && n.AttrInt("noop_with_empty_axes", 0) != 0 {
					return []string{d[0], ""}, nil
				}
				for i := 0; i < rank; i++ {
					axes = append(axes, int64(i))
				}
			}
			norm := make([]int64, len(axes))
			count, known := int64(1), true
			for i, a := range axes {
				ai, err := NormAxis(a, rank)
				if err != nil {
					return nil, Errorf(n, "%v", err)
				}
				norm[i] = int64(ai)
				known = known && xt.Shape[ai].Known()
				count *= max(xt.Shape[ai].Size, 1)
			}
			g := d[0]
			if n.AttrInt("keepdims", 1) == 0 {
				g = c.Op("Unsqueeze", g, c.Const(tensor.MustFromSlice(norm, len(norm)))).Out()
			}
			g = c.Op("Expand", g, c.Shape(x)).Out()
			switch {
			case mean && !known:
				// A symbolic reduced dim (the batch of a loss): the count is
				// Size(x)/Size(mean), taken when the graph runs (a constant
				// once the executable knows the shapes).
				cast := func(v string) string {
					return c.Op("Cast", c.Op("Size", v).Out()).With(AInt("to", int64(xt.DType))).Out()
				}
				g = c.Op("Mul", g, c.Op("Div", cast(n.Outputs[0]), cast(x)).Out()).Out()
			case mean && count != 1:
				g = c.Op("Mul", g, c.ScalarLike(x, 1/float64(count))).Out()
			}
			out := make([]string, len(n.Inputs))
			out[0] = g
			return out, nil
		}
	}
	RegisterGrad("", "ReduceSum", reduceGrad(false))
	RegisterGrad("", "ReduceMean", reduceGrad(true))
}
