package graph

import (
	"fmt"
	"math"

	"github.com/gotrain/gotrain/tensor"
)

// InferFunc computes the types of a node's outputs from its inputs' types.
// in has one entry per node input; an omitted optional input is nil. A
// input whose value is known (a constant, or a shape folded from one) has
// Type.Value set, which ops with shape-like inputs (Reshape, Slice, ...)
// read. opset is the version of the node's domain that the model imports.
// Where a dim cannot be known, the function returns Unknown for it rather
// than failing; it fails only on inputs that can never be valid.
type InferFunc func(n *Node, in []*Type, opset int64) ([]*Type, error)

// Schema is what the IR knows of an op type.
type Schema struct {
	Domain string
	OpType string
	// MinInputs and MaxInputs bound the input count (MaxInputs < 0: variadic).
	MinInputs, MaxInputs int
	Infer                InferFunc
	// Grad is the op's gradient rule, nil for ops that are not differentiable
	// (shape computations, comparisons) or have no rule yet.
	Grad GradRule
	// NoGradInputs lists inputs that never receive a gradient (shape and index
	// inputs, integer tensors) even when the op has a rule.
	NoGradInputs []int
	// Attrs declares the types of the attributes of gotrain's own ops;
	// ONNX's ops take theirs from ONNX's schemas (attrtypes_onnx.go).
	// CheckAttrs checks every node against them.
	Attrs map[string]AttrType
}

var registry = map[string]*Schema{}

func key(domain, op string) string { return NormDomain(domain) + "::" + op }

// Register adds a schema. Registering the same op twice is a programming error.
func Register(s *Schema) {
	k := key(s.Domain, s.OpType)
	if _, dup := registry[k]; dup {
		panic("graph: op registered twice: " + k)
	}
	registry[k] = s
}

// Lookup returns the schema of an op, or nil when gotrain does not know it.
func Lookup(domain, op string) *Schema { return registry[key(domain, op)] }

// NodeError is an error about one node.
type NodeError struct {
	Node *Node
	Err  error
}

func (e *NodeError) Error() string { return e.Node.String() + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// Errorf makes a NodeError.
func Errorf(n *Node, format string, args ...any) error {
	return &NodeError{Node: n, Err: fmt.Errorf(format, args...)}
}

// UnsupportedOpError reports an op gotrain has no schema or kernel for.
type UnsupportedOpError struct {
	Node   *Node
	Reason string
}

func (e *UnsupportedOpError) Error() string {
	if e.Reason != "" {
		return e.Node.String() + ": unsupported: " + e.Reason
	}
	return e.Node.String() + ": unsupported op " + e.Node.OpType
}

// ---- helpers for inference functions ----

// same returns a copy of t without its value (for ops whose output has the
// input's type).
func same(t *Type) *Type {
	c := *t
	c.Value = nil
	c.Shape = append(Shape{}, t.Shape...)
	return &c
}

// unknownRank returns a type with a dtype only.
func unknownRank(dt tensor.DType) *Type { return &Type{DType: dt} }

// BroadcastShapes applies numpy broadcasting to shapes, with symbolic dims
// kept where they agree.
func BroadcastShapes(shapes ...Shape) (Shape, error) {
	rank := 0
	for _, s := range shapes {
		if len(s) > rank {
			rank = len(s)
		}
	}
	out := make(Shape, rank)
	for i := range out {
		out[i] = D(1)
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := &out[off+i]
			switch {
			case d.Known() && d.Size == 1:
			case o.Known() && o.Size == 1:
				*o = d
			case d.Known() && o.Known():
				if d.Size != o.Size {
					return nil, fmt.Errorf("shapes %v cannot be broadcast together", shapes)
				}
			case !d.Known() && !o.Known():
				if d.Param != o.Param || d.Param == "" {
					*o = Unknown
				}
			case d.Known():
				*o = d // a symbolic dim broadcast against n>1 must be n
			}
		}
	}
	return out, nil
}

// broadcastTypes infers the output of an elementwise op with dtype dt.
func broadcastTypes(n *Node, dt tensor.DType, in []*Type) ([]*Type, error) {
	var shapes []Shape
	for _, t := range in {
		if t == nil {
			continue
		}
		if !t.RankKnown {
			return []*Type{unknownRank(dt)}, nil
		}
		shapes = append(shapes, t.Shape)
	}
	s, err := BroadcastShapes(shapes...)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	return []*Type{NewType(dt, s)}, nil
}

// NormAxis maps a possibly negative axis into [0, rank).
func NormAxis(axis int64, rank int) (int, error) {
	a := int(axis)
	if a < 0 {
		a += rank
	}
	if a < 0 || a >= rank {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", axis, rank)
	}
	return a, nil
}

// requireInputs checks an input count and that required inputs are present.
func requireInputs(n *Node, in []*Type, min int) error {
	if len(in) < min {
		return Errorf(n, "expects at least %d inputs, has %d", min, len(in))
	}
	for i := 0; i < min; i++ {
		if in[i] == nil {
			return Errorf(n, "input %d is required", i)
		}
	}
	return nil
}

// constInts returns the known value of an integer input, or nil.
func constInts(t *Type) []int64 {
	if t == nil || t.Value == nil || !t.Value.DType().IsInt() {
		return nil
	}
	v, err := t.Value.AsInt64s()
	if err != nil {
		return nil
	}
	return v
}

// ---- sizes from input ----
//
// Dims reach inference from declared types, attributes and the values of
// shape-like inputs, so any of them may be huge. Inference builds shapes
// with checked arithmetic (a product or sum that overflows is an error, not
// a wrapped-around dim), builds a rank from a declared length only up to
// maxRank, and InferNode refuses an output whose concrete shape does not fit
// under the memory limit, before any kernel is prepared for it.

// maxRank bounds a rank built from a declared length (a shape input whose
// value is not known); a longer one leaves the rank unknown.
const maxRank = 1024

// declaredLen returns the length of a 1-D input from its declared shape,
// when known and at most maxRank.
func declaredLen(t *Type) (int, bool) {
	if t == nil || !t.RankKnown || len(t.Shape) != 1 || !t.Shape[0].Known() || t.Shape[0].Size > maxRank {
		return 0, false
	}
	return int(t.Shape[0].Size), true
}

// unknownShape returns a shape of r unknown dims.
func unknownShape(r int) Shape {
	s := make(Shape, r)
	for i := range s {
		s[i] = Unknown
	}
	return s
}

// mulSize multiplies two dim sizes; ok is false when the product overflows.
func mulSize(a, b int64) (int64, bool) { return tensor.MulDims([]int64{a, b}) }

// addSize adds dim sizes (pads may be negative); ok is false on overflow.
func addSize(vs ...int64) (int64, bool) {
	s := int64(0)
	for _, v := range vs {
		if (v > 0 && s > math.MaxInt64-v) || (v < 0 && s < math.MinInt64-v) {
			return 0, false
		}
		s += v
	}
	return s, true
}

// foldable reports whether concrete dims hold at most maxFoldElems
// elements, the most inference computes values for.
func foldable(dims []int) bool {
	n, ok := tensor.MulDims(dims)
	return ok && n <= maxFoldElems
}

// checkOutputs refuses outputs whose known dims multiply past an int64, or
// whose concrete shape does not fit under the memory limit.
func checkOutputs(n *Node, outs []*Type) error {
	for i, t := range outs {
		if t == nil || !t.RankKnown {
			continue
		}
		name := ""
		if i < len(n.Outputs) {
			name = n.Outputs[i]
		}
		known := make([]int64, 0, len(t.Shape))
		concrete := true
		for _, d := range t.Shape {
			if d.Known() {
				known = append(known, d.Size)
			} else {
				concrete = false
			}
		}
		cnt, ok := tensor.MulDims(known)
		if ok {
			_, ok = mulSize(cnt, max(tensor.ElemBytes(t.DType), 1))
		}
		if !ok {
			return &NodeError{Node: n, Err: fmt.Errorf("output %q of shape %v: %w", name, t.Shape,
				&tensor.LimitError{What: "its size", Bytes: -1, Limit: tensor.MemoryLimit()})}
		}
		if concrete {
			if err := tensor.CheckAlloc(fmt.Sprintf("output %q of shape %v", name, t.Shape), cnt, max(tensor.ElemBytes(t.DType), 1)); err != nil {
				return &NodeError{Node: n, Err: err}
			}
		}
	}
	return nil
}
