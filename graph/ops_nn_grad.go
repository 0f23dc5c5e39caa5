package graph

// Gradient rules of the matrix-product, convolution, pooling and
// normalisation ops. Convolution and pooling use fused gradient kernels of
// gotrain's domain (ConvGrad, MaxPoolGrad, ...); matrix products are
// expressed with Gemm/MatMul themselves.

// copyAttrs copies a node's attributes (gradient ops of conv and pooling
// take their forward op's attributes unchanged).
func copyAttrs(r *NodeRef, n *Node) *NodeRef {
	for _, a := range n.Attrs {
		r.node.SetAttr(a)
	}
	return r
}

// wantOutputs blanks the outputs of a gradient node whose input gradients
// are not needed, so the kernel skips them.
func wantOutputs(c *GradContext, r *NodeRef, n *Node) []string {
	outs := make([]string, len(r.node.Outputs))
	for i := range r.node.Outputs {
		if i < len(n.Inputs) && n.Inputs[i] != "" && c.Needs(n.Inputs[i]) {
			outs[i] = r.node.Outputs[i]
		} else {
			r.node.Outputs[i] = ""
		}
	}
	return outs
}

// ensureOutput gives a forward node's optional output i a name (MaxPool's
// Indices, LayerNormalization's Mean/InvStdDev), so backward can read it.
func ensureOutput(c *GradContext, n *Node, i int, prefix string) string {
	for len(n.Outputs) <= i {
		n.Outputs = append(n.Outputs, "")
	}
	if n.Outputs[i] == "" {
		n.Outputs[i] = c.B.Fresh(prefix)
	}
	return n.Outputs[i]
}

func init() {
	RegisterGrad("", "Conv", func(c *GradContext, n *Node, d []string) ([]string, error) {
		r := copyAttrs(c.GOp("ConvGrad", 3, d[0], n.Inputs[0], n.Inputs[1]), n)
		return wantOutputs(c, r, n), nil
	})
	RegisterGrad("", "MaxPool", func(c *GradContext, n *Node, d []string) ([]string, error) {
		if n.AttrInt("storage_order", 0) != 0 {
			return nil, Errorf(n, "differentiating MaxPool with storage_order=1 is not supported")
		}
		idx := ensureOutput(c, n, 1, n.Name+"_indices")
		return []string{c.GOp("MaxPoolGrad", 1, d[0], idx, n.Inputs[0]).Out()}, nil
	})
	RegisterGrad("", "AveragePool", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{copyAttrs(c.GOp("AveragePoolGrad", 1, d[0], n.Inputs[0]), n).Out()}, nil
	})
	RegisterGrad("", "GlobalAveragePool", func(c *GradContext, n *Node, d []string) ([]string, error) {
		x := n.Inputs[0]
		t := c.Type(x)
		if t == nil || !t.RankKnown {
			return nil, Errorf(n, "the input's shape must be known to differentiate")
		}
		area := int64(1)
		for _, dim := range t.Shape[2:] {
			if !dim.Known() {
				return nil, Errorf(n, "the spatial dims must be known to differentiate, have %v", t.Shape)
			}
			area *= dim.Size
		}
		g := c.Op("Expand", d[0], c.Shape(x)).Out()
		return []string{c.Op("Mul", g, c.ScalarLike(x, 1/float64(area))).Out()}, nil
	})
	RegisterGrad(DomainGotrain, "BatchNormTrain", func(c *GradContext, n *Node, d []string) ([]string, error) {
		if d[0] == "" {
			return make([]string, len(n.Inputs)), nil
		}
		r := c.GOp("BatchNormGrad", 3, d[0], n.Inputs[0], n.Inputs[1], n.Outputs[3], n.Outputs[4]).
			With(AFloat("epsilon", n.AttrFloat("epsilon", 1e-5)))
		out := wantOutputs(c, r, n)
		return append(out, "", ""), nil
	})
	RegisterGrad("", "LayerNormalization", func(c *GradContext, n *Node, d []string) ([]string, error) {
		mean := ensureOutput(c, n, 1, n.Name+"_mean")
		inv := ensureOutput(c, n, 2, n.Name+"_invstd")
		scale := n.Input(1)
		r := c.GOp("LayerNormGrad", 3, d[0], n.Inputs[0], scale, mean, inv).With(AInt("axis", n.AttrInt("axis", -1)))
		return wantOutputs(c, r, n), nil
	})
	RegisterGrad(DomainGotrain, "DropoutTrain", func(c *GradContext, n *Node, d []string) ([]string, error) {
		x := n.Inputs[0]
		mask := ensureOutput(c, n, 1, n.Name+"_mask")
		ratio := n.Inputs[1]
		if rt := c.Type(ratio); rt != nil && rt.DType != c.Type(x).DType {
			// ratio is float32 whatever X's dtype (float64 X).
			ratio = c.Op("Cast", ratio).With(AInt("to", int64(c.Type(x).DType))).Out()
		}
		keep := c.Op("Sub", c.ScalarLike(x, 1), ratio).Out()
		// Where rather than mask*d/keep: with ratio 1 the mask is all false
		// and keep is 0, and the gradient must be 0, not 0/0.
		g := c.Op("Where", mask, c.Op("Div", d[0], keep).Out(), c.ScalarLike(x, 0)).Out()
		return []string{g, "", "", ""}, nil
	})
	RegisterGrad("", "Dropout", func(c *GradContext, n *Node, d []string) ([]string, error) {
		// An inference-mode Dropout is the identity (training graphs use
		// DropoutTrain instead).
		out := make([]string, len(n.Inputs))
		out[0] = d[0]
		return out, nil
	})
	RegisterGrad("", "Gemm", gemmGrad)
	RegisterGrad("", "MatMul", matMulGrad)
}

// gemmGrad: Y = alpha * A' B' + beta * C with A' = A or A^T (transA), B'
// likewise. Each case is one Gemm with the right transposes.
func gemmGrad(c *GradContext, n *Node, d []string) ([]string, error) {
	a, b := n.Inputs[0], n.Inputs[1]
	alpha := n.AttrFloat("alpha", 1)
	beta := n.AttrFloat("beta", 1)
	ta, tb := n.AttrInt("transA", 0) != 0, n.AttrInt("transB", 0) != 0
	dy := d[0]
	gemm := func(x, y string, tx, ty bool) string {
		r := c.Op("Gemm", x, y)
		if tx {
			r.With(AInt("transA", 1))
		}
		if ty {
			r.With(AInt("transB", 1))
		}
		if alpha != 1 {
			r.With(AFloat("alpha", alpha))
		}
		return r.Out()
	}
	out := make([]string, len(n.Inputs))
	if c.Needs(a) {
		switch {
		case !ta && !tb:
			out[0] = gemm(dy, b, false, true)
		case !ta && tb:
			out[0] = gemm(dy, b, false, false)
		case ta && !tb:
			out[0] = gemm(b, dy, false, true)
		default:
			out[0] = gemm(b, dy, true, true)
		}
	}
	if c.Needs(b) {
		switch {
		case !ta && !tb:
			out[1] = gemm(a, dy, true, false)
		case !ta && tb:
			out[1] = gemm(dy, a, true, false)
		case ta && !tb:
			out[1] = gemm(a, dy, false, false)
		default:
			out[1] = gemm(dy, a, true, true)
		}
	}
	if len(n.Inputs) > 2 && n.Inputs[2] != "" && c.Needs(n.Inputs[2]) {
		g := dy
		if beta != 1 {
			g = c.Op("Mul", dy, c.ScalarLike(n.Outputs[0], float64(beta))).Out()
		}
		out[2] = c.SumTo(g, n.Inputs[2], n.Outputs[0])
	}
	return out, nil
}

// matMulGrad handles operands of rank >= 2 (batch dims broadcast): dA =
// dY B^T and dB = A^T dY over the last two dims, summed back over
// broadcast batch dims.
func matMulGrad(c *GradContext, n *Node, d []string) ([]string, error) {
	a, b := n.Inputs[0], n.Inputs[1]
	ta, tb := c.Type(a), c.Type(b)
	if ta == nil || tb == nil || !ta.RankKnown || !tb.RankKnown || len(ta.Shape) < 2 || len(tb.Shape) < 2 {
		return nil, Errorf(n, "differentiating MatMul needs operands of known rank >= 2")
	}
	swap := func(v string, rank int) string {
		perm := make([]int64, rank)
		for i := range perm {
			perm[i] = int64(i)
		}
		perm[rank-1], perm[rank-2] = perm[rank-2], perm[rank-1]
		return c.Op("Transpose", v).With(AInts("perm", perm...)).Out()
	}
	// With batch dims, a product may be broadcast over an operand's batch:
	// its gradient is then summed back to the operand's shape.
	plain := len(ta.Shape) == 2 && len(tb.Shape) == 2
	out := make([]string, 2)
	if c.Needs(a) {
		out[0] = c.Op("MatMul", d[0], swap(b, len(tb.Shape))).Out()
		if !plain {
			out[0] = c.GOp("SumToShape", 1, out[0], c.Shape(a)).Out()
		}
	}
	if c.Needs(b) {
		out[1] = c.Op("MatMul", swap(a, len(ta.Shape)), d[0]).Out()
		if !plain {
			out[1] = c.GOp("SumToShape", 1, out[1], c.Shape(b)).Out()
		}
	}
	return out, nil
}
