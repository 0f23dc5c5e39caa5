package graph

import (
	"math"

	"github.com/gotrain/gotrain/tensor"
)

// Gradient rules of the elementwise and activation ops. Broadcasting inputs
// get their gradient summed back to their own shape (GradContext.SumTo).

func init() {
	RegisterGrad("", "Add", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.SumTo(d[0], n.Inputs[0], n.Outputs[0]), c.SumTo(d[0], n.Inputs[1], n.Outputs[0])}, nil
	})
	RegisterGrad("", "Sub", func(c *GradContext, n *Node, d []string) ([]string, error) {
		out := []string{c.SumTo(d[0], n.Inputs[0], n.Outputs[0]), ""}
		if c.Needs(n.Inputs[1]) {
			out[1] = c.SumTo(c.Op("Neg", d[0]).Out(), n.Inputs[1], n.Outputs[0])
		}
		return out, nil
	})
	RegisterGrad("", "Mul", func(c *GradContext, n *Node, d []string) ([]string, error) {
		a, b := n.Inputs[0], n.Inputs[1]
		out := make([]string, 2)
		if c.Needs(a) {
			out[0] = c.SumTo(c.Op("Mul", d[0], b).Out(), a, n.Outputs[0])
		}
		if c.Needs(b) {
			out[1] = c.SumTo(c.Op("Mul", d[0], a).Out(), b, n.Outputs[0])
		}
		return out, nil
	})
	RegisterGrad("", "Div", func(c *GradContext, n *Node, d []string) ([]string, error) {
		a, b, y := n.Inputs[0], n.Inputs[1], n.Outputs[0]
		out := make([]string, 2)
		if c.Needs(a) {
			out[0] = c.SumTo(c.Op("Div", d[0], b).Out(), a, y)
		}
		if c.Needs(b) { // d(a/b)/db = -y/b
			t := c.Op("Div", c.Op("Mul", d[0], y).Out(), b).Out()
			out[1] = c.SumTo(c.Op("Neg", t).Out(), b, y)
		}
		return out, nil
	})
	RegisterGrad("", "Neg", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.Op("Neg", d[0]).Out()}, nil
	})
	RegisterGrad("", "Identity", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{d[0]}, nil
	})
	RegisterGrad("", "Exp", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.Op("Mul", d[0], n.Outputs[0]).Out()}, nil
	})
	RegisterGrad("", "Log", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.Op("Div", d[0], n.Inputs[0]).Out()}, nil
	})
	RegisterGrad("", "Sqrt", func(c *GradContext, n *Node, d []string) ([]string, error) {
		half := c.Op("Mul", d[0], c.ScalarLike(n.Inputs[0], 0.5)).Out()
		return []string{c.Op("Div", half, n.Outputs[0]).Out()}, nil
	})
	RegisterGrad("", "Reciprocal", func(c *GradContext, n *Node, d []string) ([]string, error) {
		y := n.Outputs[0]
		return []string{c.Op("Neg", c.Op("Mul", d[0], c.Op("Mul", y, y).Out()).Out()).Out()}, nil
	})
	RegisterGrad("", "Abs", func(c *GradContext, n *Node, d []string) ([]string, error) {
		x := n.Inputs[0]
		neg := c.Op("Less", x, c.ScalarLike(x, 0)).Out()
		return []string{c.Op("Where", neg, c.Op("Neg", d[0]).Out(), d[0]).Out()}, nil
	})
	RegisterGrad("", "Pow", func(c *GradContext, n *Node, d []string) ([]string, error) {
		x, e := n.Inputs[0], n.Inputs[1]
		if c.Needs(e) {
			return nil, Errorf(n, "the gradient with respect to Pow's exponent is not supported")
		}
		if c.Type(e) != nil && c.Type(e).DType != c.Type(x).DType {
			e = c.Op("Cast", e).With(AInt("to", int64(c.Type(x).DType))).Out()
		}
		em1 := c.Op("Sub", e, c.ScalarLike(x, 1)).Out()
		t := c.Op("Mul", e, c.Op("Pow", x, em1).Out()).Out()
		return []string{c.SumTo(c.Op("Mul", d[0], t).Out(), x, n.Outputs[0]), ""}, nil
	})
	RegisterGrad("", "Erf", func(c *GradContext, n *Node, d []string) ([]string, error) {
		x := n.Inputs[0]
		e := c.Op("Exp", c.Op("Neg", c.Op("Mul", x, x).Out()).Out()).Out()
		k := c.Op("Mul", e, c.ScalarLike(x, 2/math.Sqrt(math.Pi))).Out()
		return []string{c.Op("Mul", d[0], k).Out()}, nil
	})
	RegisterGrad("", "Cast", func(c *GradContext, n *Node, d []string) ([]string, error) {
		t := c.Type(n.Inputs[0])
		if t == nil || !t.DType.IsFloat() {
			return []string{""}, nil
		}
		return []string{c.Op("Cast", d[0]).With(AInt("to", int64(t.DType))).Out()}, nil
	})
	RegisterGrad("", "Clip", func(c *GradContext, n *Node, d []string) ([]string, error) {
		// Gradient passes where the input was not clipped (min <= x <= max).
		x := n.Inputs[0]
		pass := c.Op("Equal", x, n.Outputs[0]).Out()
		zero := c.ScalarLike(x, 0)
		out := make([]string, len(n.Inputs))
		out[0] = c.Op("Where", pass, d[0], zero).Out()
		return out, nil
	})
	RegisterGrad("", "Where", func(c *GradContext, n *Node, d []string) ([]string, error) {
		cond, x, y := n.Inputs[0], n.Inputs[1], n.Inputs[2]
		zero := c.ScalarLike(n.Outputs[0], 0)
		out := make([]string, 3)
		if c.Needs(x) {
			out[1] = c.SumTo(c.Op("Where", cond, d[0], zero).Out(), x, n.Outputs[0])
		}
		if c.Needs(y) {
			out[2] = c.SumTo(c.Op("Where", cond, zero, d[0]).Out(), y, n.Outputs[0])
		}
		return out, nil
	})
	RegisterGrad("", "Sum", func(c *GradContext, n *Node, d []string) ([]string, error) {
		out := make([]string, len(n.Inputs))
		for i, in := range n.Inputs {
			if c.Needs(in) {
				out[i] = c.SumTo(d[0], in, n.Outputs[0])
			}
		}
		return out, nil
	})
	RegisterGrad("", "Mean", func(c *GradContext, n *Node, d []string) ([]string, error) {
		g := c.Op("Mul", d[0], c.ScalarLike(n.Outputs[0], 1/float64(len(n.Inputs)))).Out()
		out := make([]string, len(n.Inputs))
		for i, in := range n.Inputs {
			if c.Needs(in) {
				out[i] = c.SumTo(g, in, n.Outputs[0])
			}
		}
		return out, nil
	})
	// Activations: fused gradient kernels of gotrain's domain.
	for _, op := range []string{"Relu", "Sigmoid", "Tanh"} {
		op := op
		RegisterGrad("", op, func(c *GradContext, n *Node, d []string) ([]string, error) {
			return []string{c.GOp(op+"Grad", 1, d[0], n.Outputs[0]).Out()}, nil
		})
	}
	RegisterGrad("", "LeakyRelu", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.GOp("LeakyReluGrad", 1, d[0], n.Inputs[0]).With(AFloat("alpha", n.AttrFloat("alpha", 0.01))).Out()}, nil
	})
	RegisterGrad("", "Gelu", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.GOp("GeluGrad", 1, d[0], n.Inputs[0]).With(AString("approximate", n.AttrString("approximate", "none"))).Out()}, nil
	})
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		op := op
		RegisterGrad("", op, func(c *GradContext, n *Node, d []string) ([]string, error) {
			axis, err := softmaxAxis(c, n)
			if err != nil {
				return nil, err
			}
			return []string{c.GOp(op+"Grad", 1, d[0], n.Outputs[0]).With(AInt("axis", axis)).Out()}, nil
		})
	}
}

// softmaxAxis returns the single axis of a Softmax/LogSoftmax node. Before
// opset 13 the op flattened to 2-D at the axis; that equals the single-axis
// form only when the axis is the last one, the case exporters produce.
func softmaxAxis(c *GradContext, n *Node) (int64, error) {
	t := c.Type(n.Inputs[0])
	if t == nil || !t.RankKnown {
		return 0, Errorf(n, "the input's rank must be known to differentiate")
	}
	rank := len(t.Shape)
	opset := c.B.model.OpsetOf(n)
	def := int64(-1)
	if opset < 13 {
		def = 1
	}
	axis, err := NormAxis(n.AttrInt("axis", def), rank)
	if err != nil {
		return 0, Errorf(n, "%v", err)
	}
	if opset < 13 && axis != rank-1 {
		return 0, Errorf(n, "differentiating opset-%d %s over axis %d of a rank-%d input (2-D coercion) is not supported", opset, n.OpType, axis, rank)
	}
	return int64(axis), nil
}

// scalarOf returns a float scalar tensor of dtype dt.
func scalarOf(dt tensor.DType, v float64) *tensor.Tensor {
	if dt == tensor.Float64 {
		return tensor.Scalar(v)
	}
	return tensor.Scalar(float32(v))
}
