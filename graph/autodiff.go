package graph

import (
	"fmt"
	"sort"

	"github.com/gotrain/gotrain/tensor"
)

// GradRule emits the nodes that compute the gradients of a node's inputs.
// dOut[i] names the gradient flowing into n.Outputs[i] ("" when none does);
// the rule returns one name per input of n, "" for an input that gets no
// gradient (or whose gradient is not needed: c.Needs tells). Rules are
// registered in the op's Schema, beside its inference.
type GradRule func(c *GradContext, n *Node, dOut []string) ([]string, error)

// GradOpset is the ai.onnx opset of the nodes autodiff adds, whatever the
// model's own import.
const GradOpset = 17

// GradContext is what a gradient rule builds with: a builder appending to
// the training graph, the forward values' types, and helpers for the
// recurring pieces (shapes, reductions to a broadcast input's shape).
type GradContext struct {
	B     *Builder
	Types Types
	needs map[string]bool
	shape map[string]string
}

// Needs reports whether a gradient is wanted for a value (it lies on a path
// from a parameter to the loss).
func (c *GradContext) Needs(value string) bool { return c.needs[value] }

// Type returns a forward value's type.
func (c *GradContext) Type(value string) *Type { return c.Types[value] }

// Op adds a single-output node of the default domain.
func (c *GradContext) Op(op string, inputs ...string) *NodeRef { return c.B.Op(op, inputs...) }

// GOp adds a node of gotrain's gradient domain with nOut outputs.
func (c *GradContext) GOp(op string, nOut int, inputs ...string) *NodeRef {
	return c.B.OpN(DomainGotrain, op, nOut, inputs...)
}

// Shape returns a value holding the run-time shape of a forward value
// (one Shape node per value).
func (c *GradContext) Shape(value string) string {
	if s, ok := c.shape[value]; ok {
		return s
	}
	s := c.B.Op("Shape", value).Out()
	c.shape[value] = s
	return s
}

// Const adds a constant.
func (c *GradContext) Const(t *tensor.Tensor) string { return c.B.Const(t) }

// ScalarLike returns a scalar constant of value's dtype.
func (c *GradContext) ScalarLike(value string, v float64) string {
	dt := tensor.Float32
	if t := c.Types[value]; t != nil {
		dt = t.DType
	}
	switch dt {
	case tensor.Float64:
		return c.Const(tensor.Scalar(v))
	default:
		return c.Const(tensor.Scalar(float32(v)))
	}
}

// SumTo reduces a gradient computed at a broadcast output's shape to the
// shape of the input `like` (the inverse of numpy broadcasting). When the
// shapes are statically equal it returns grad unchanged.
func (c *GradContext) SumTo(grad, like, out string) string {
	lt, ot := c.Types[like], c.Types[out]
	if lt != nil && ot != nil && lt.RankKnown && ot.RankKnown && sameDims(lt.Shape, ot.Shape) {
		return grad
	}
	return c.GOp("SumToShape", 1, grad, c.Shape(like)).Out()
}

// sameDims reports whether two shapes are equal: known dims equal, and
// symbolic dims with the same name.
func sameDims(a, b Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Known() != b[i].Known() {
			return false
		}
		if a[i].Known() && a[i].Size != b[i].Size {
			return false
		}
		if !a[i].Known() && (a[i].Param == "" || a[i].Param != b[i].Param) {
			return false
		}
	}
	return true
}

// GradientError reports an op without a gradient rule on the path from the
// loss to a parameter.
type GradientError struct {
	Node  *Node
	Param string
}

func (e *GradientError) Error() string {
	return fmt.Sprintf("%s has no gradient rule, and it lies on the path from the loss to parameter %q (freeze the parameter or replace the op)", e.Node, e.Param)
}

// Gradients appends to m (in place) the backward pass of the scalar value
// loss with respect to each value in wrt, and returns the gradient value's
// name for each. Gradients of a value used several times are summed;
// nodes off every path from wrt to loss are not differentiated. An op on
// such a path without a gradient rule is a *GradientError.
func Gradients(m *Model, loss string, wrt []string) (map[string]string, error) {
	g := m.Graph
	types, err := InferShapes(m, nil)
	if err != nil {
		return nil, err
	}
	lt, ok := types[loss]
	if !ok {
		return nil, fmt.Errorf("autodiff: loss %q is not a value of the graph", loss)
	}
	if lt.RankKnown && len(lt.Shape) != 0 {
		return nil, fmt.Errorf("autodiff: loss %q must be a scalar, has shape %v", loss, lt.Shape)
	}
	if !lt.DType.IsFloat() {
		return nil, fmt.Errorf("autodiff: loss %q must be floating-point, is %v", loss, lt.DType)
	}
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	// Forward reachability from wrt, backward reachability from loss.
	fromParam := map[string]string{} // value -> a parameter it depends on
	for _, w := range wrt {
		if _, ok := types[w]; !ok {
			return nil, fmt.Errorf("autodiff: %q is not a value of the graph", w)
		}
		fromParam[w] = w
	}
	for _, n := range order {
		for _, in := range n.Inputs {
			if p, ok := fromParam[in]; ok && in != "" {
				for _, o := range n.Outputs {
					if o != "" {
						if _, seen := fromParam[o]; !seen {
							fromParam[o] = p
						}
					}
				}
			}
		}
	}
	toLoss := map[string]bool{loss: true}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		hit := false
		for _, o := range n.Outputs {
			if toLoss[o] {
				hit = true
			}
		}
		if hit {
			for _, in := range n.Inputs {
				if in != "" {
					toLoss[in] = true
				}
			}
		}
	}
	needs := map[string]bool{}
	for v := range fromParam {
		if toLoss[v] {
			needs[v] = true
		}
	}
	b := Extend(m)
	b.NodeOpset = GradOpset
	c := &GradContext{B: b, Types: types, needs: needs, shape: map[string]string{}}
	contrib := map[string][]string{}
	seed := c.Const(onesScalar(lt.DType))
	contrib[loss] = []string{seed}
	// sum folds a value's gradient contributions into one (fixed order).
	sum := func(v string) string {
		parts := contrib[v]
		switch len(parts) {
		case 0:
			return ""
		case 1:
			return parts[0]
		}
		s := b.Op("Sum", parts...).Out()
		contrib[v] = []string{s}
		return s
	}
	for i := len(order) - 1; i >= 0; i-- {
		n := order[i]
		onPath := false
		for _, in := range n.Inputs {
			if needs[in] {
				onPath = true
			}
		}
		if !onPath {
			continue
		}
		dOut := make([]string, len(n.Outputs))
		any := false
		for j, o := range n.Outputs {
			if o != "" && needs[o] {
				dOut[j] = sum(o)
				if dOut[j] != "" {
					any = true
				}
			}
		}
		if !any {
			continue
		}
		rule := gradRuleOf(n)
		if rule == nil {
			for _, in := range n.Inputs {
				if needs[in] {
					return nil, &GradientError{Node: n, Param: fromParam[in]}
				}
			}
		}
		dIn, err := rule(c, n, dOut)
		if err != nil {
			return nil, err
		}
		for j, in := range n.Inputs {
			if j < len(dIn) && dIn[j] != "" && in != "" && needs[in] {
				contrib[in] = append(contrib[in], dIn[j])
			}
		}
	}
	grads := map[string]string{}
	for _, w := range wrt {
		gname := sum(w)
		if gname == "" {
			// The parameter does not influence the loss: its gradient is zero.
			gname = b.Op("ConstantOfShape", c.Shape(w)).With(ATensor("value", zeroLike(types[w].DType))).Out()
		}
		grads[w] = gname
	}
	return grads, nil
}

func onesScalar(dt tensor.DType) *tensor.Tensor {
	if dt == tensor.Float64 {
		return tensor.Scalar(1.0)
	}
	return tensor.Scalar(float32(1))
}

func zeroLike(dt tensor.DType) *tensor.Tensor {
	if dt == tensor.Float64 {
		return tensor.MustFromSlice([]float64{0}, 1)
	}
	return tensor.MustFromSlice([]float32{0}, 1)
}

// gradRules holds rules registered apart from their schema (the op family's
// *_grad.go file), so registration order between files does not matter.
var gradRules = map[string]GradRule{}

// RegisterGrad attaches a gradient rule to an op; the op family's _grad.go
// file calls it from init, beside the op's inference.
func RegisterGrad(domain, op string, rule GradRule) {
	k := key(domain, op)
	if _, dup := gradRules[k]; dup {
		panic("graph: gradient rule registered twice: " + k)
	}
	gradRules[k] = rule
}

func gradRuleOf(n *Node) GradRule {
	if r, ok := gradRules[key(n.Domain, n.OpType)]; ok {
		return r
	}
	if s := Lookup(n.Domain, n.OpType); s != nil {
		return s.Grad
	}
	return nil
}

// OpsWithGrad lists the ops (domain-qualified outside ai.onnx) that have a
// gradient rule, sorted.
func OpsWithGrad() []string {
	seen := map[string]bool{}
	for k := range gradRules {
		seen[k] = true
	}
	for k, s := range registry {
		if s.Grad != nil {
			seen[k] = true
		}
	}
	var out []string
	for k := range seen {
		if len(k) > 2 && k[:2] == "::" {
			k = k[2:]
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
