package graph

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gotrain/gotrain/tensor"
)

// Further ONNX ops without gradient rules: logical and bitwise ops, Mod,
// BitShift, float unary math (rounding, trigonometric and hyperbolic
// functions, IsNaN, IsInf), the remaining activations (Elu, Selu, Celu,
// PRelu, HardSigmoid, HardSwish, ThresholdedRelu, Mish, Shrink, Softplus,
// Softsign), Hardmax, GatherND, and the normalisations
// InstanceNormalization, LpNormalization and MeanVarianceNormalization,
// and Einsum.
//
// None of these changed the shape of its output across opsets 7..22; what
// changed over versions were dtype lists and, for PRelu before opset 7, the
// broadcasting of the slope (one value per channel of axis 1).

// FloatUnaryOps are elementwise ops of one float input with the input's type.
var FloatUnaryOps = []string{"Ceil", "Floor", "Round", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
	"Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "Softplus", "Softsign",
	"Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "ThresholdedRelu", "Mish"}

func init() {
	for _, op := range []string{"And", "Or", "Xor"} {
		Register(&Schema{OpType: op, MinInputs: 2, MaxInputs: 2, Infer: inferLogical})
	}
	Register(&Schema{OpType: "Not", MinInputs: 1, MaxInputs: 1, Infer: inferNot})
	for _, op := range []string{"BitwiseAnd", "BitwiseOr", "BitwiseXor"} {
		Register(&Schema{OpType: op, MinInputs: 2, MaxInputs: 2, Infer: inferBitwise})
	}
	Register(&Schema{OpType: "BitwiseNot", MinInputs: 1, MaxInputs: 1, Infer: inferBitwiseNot})
	Register(&Schema{OpType: "BitShift", MinInputs: 2, MaxInputs: 2, Infer: inferBitShift})
	Register(&Schema{OpType: "Mod", MinInputs: 2, MaxInputs: 2, Infer: inferMod})
	for _, op := range FloatUnaryOps {
		Register(&Schema{OpType: op, MinInputs: 1, MaxInputs: 1, Infer: inferFloatUnary})
	}
	Register(&Schema{OpType: "IsNaN", MinInputs: 1, MaxInputs: 1, Infer: inferFloatPredicate})
	Register(&Schema{OpType: "IsInf", MinInputs: 1, MaxInputs: 1, Infer: inferFloatPredicate})
	Register(&Schema{OpType: "Sign", MinInputs: 1, MaxInputs: 1, Infer: inferUnaryFloat})
	Register(&Schema{OpType: "Shrink", MinInputs: 1, MaxInputs: 1, Infer: inferUnaryFloat})
	Register(&Schema{OpType: "PRelu", MinInputs: 2, MaxInputs: 2, Infer: inferPRelu})
	Register(&Schema{OpType: "Hardmax", MinInputs: 1, MaxInputs: 1, Infer: inferSoftmax})
	Register(&Schema{OpType: "GatherND", MinInputs: 2, MaxInputs: 2, Infer: inferGatherND})
	Register(&Schema{OpType: "InstanceNormalization", MinInputs: 3, MaxInputs: 3, Infer: inferInstanceNorm})
	Register(&Schema{OpType: "LpNormalization", MinInputs: 1, MaxInputs: 1, Infer: inferLpNorm})
	Register(&Schema{OpType: "MeanVarianceNormalization", MinInputs: 1, MaxInputs: 1, Infer: inferMVN})
	Register(&Schema{OpType: "Einsum", MinInputs: 1, MaxInputs: -1, Infer: inferEinsum})
}

func inferLogical(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	for i, t := range in[:2] {
		if t.DType != tensor.Bool {
			return nil, Errorf(n, "input %d has dtype %v; %s takes bool tensors", i, t.DType, n.OpType)
		}
	}
	return broadcastTypes(n, tensor.Bool, in)
}

func inferNot(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	if in[0].DType != tensor.Bool {
		return nil, Errorf(n, "input 0 has dtype %v; Not takes a bool tensor", in[0].DType)
	}
	return []*Type{same(in[0])}, nil
}

// inferIntBinary: two inputs of one dtype accepted by ok, broadcast.
func inferIntBinary(n *Node, in []*Type, ok func(tensor.DType) bool, want string) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	if !ok(in[0].DType) {
		return nil, Errorf(n, "input 0 has dtype %v; %s takes %s", in[0].DType, n.OpType, want)
	}
	if in[1].DType != in[0].DType {
		return nil, Errorf(n, "input 1 has dtype %v but input 0 has %v; %s needs equal dtypes", in[1].DType, in[0].DType, n.OpType)
	}
	return broadcastTypes(n, in[0].DType, in)
}

func isUnsigned(dt tensor.DType) bool {
	return dt == tensor.Uint8 || dt == tensor.Uint16 || dt == tensor.Uint32 || dt == tensor.Uint64
}

func inferBitwise(n *Node, in []*Type, opset int64) ([]*Type, error) {
	return inferIntBinary(n, in, tensor.DType.IsInt, "integer tensors")
}

func inferBitwiseNot(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	if !in[0].DType.IsInt() {
		return nil, Errorf(n, "input 0 has dtype %v; BitwiseNot takes an integer tensor", in[0].DType)
	}
	return []*Type{same(in[0])}, nil
}

func inferBitShift(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if d := n.AttrString("direction", ""); d != "LEFT" && d != "RIGHT" {
		return nil, Errorf(n, "attribute direction is %q; want \"LEFT\" or \"RIGHT\"", d)
	}
	return inferIntBinary(n, in, isUnsigned, "unsigned integer tensors")
}

func inferMod(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if f := n.AttrInt("fmod", 0); f != 0 && f != 1 {
		return nil, Errorf(n, "attribute fmod is %d; want 0 or 1", f)
	}
	numeric := func(dt tensor.DType) bool { return dt.IsInt() || dt.IsFloat() }
	return inferIntBinary(n, in, numeric, "numeric tensors")
}

func inferFloatUnary(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	if !in[0].DType.IsFloat() {
		return nil, Errorf(n, "input 0 has dtype %v; %s takes a floating-point tensor", in[0].DType, n.OpType)
	}
	return []*Type{same(in[0])}, nil
}

// inferFloatPredicate: IsNaN and IsInf map a float tensor to a bool one.
func inferFloatPredicate(n *Node, in []*Type, opset int64) ([]*Type, error) {
	out, err := inferFloatUnary(n, in, opset)
	if err != nil {
		return nil, err
	}
	out[0].DType = tensor.Bool
	return out, nil
}

// PReluLegacySlope reports whether a PRelu node of an opset before 7 has a
// slope of one value per channel (shape [C] against X of shape [N, C, ...]),
// which those opsets apply along axis 1 rather than broadcasting from the
// right.
func PReluLegacySlope(opset int64, x, slope Shape) bool {
	if opset <= 0 || opset >= 7 || len(slope) != 1 || len(x) < 2 {
		return false
	}
	s, c := slope[0], x[1]
	if !s.Known() || !c.Known() || s.Size != c.Size || s.Size == 1 {
		return false
	}
	_, err := BroadcastShapes(x, slope)
	return err != nil || len(x) == 2
}

// inferPRelu: the slope broadcasts to X (unidirectionally); Y has X's type.
func inferPRelu(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	x, s := in[0], in[1]
	if x.DType == tensor.String || x.DType == tensor.Bool {
		return nil, Errorf(n, "input 0 has dtype %v; PRelu takes a numeric tensor", x.DType)
	}
	if s.DType != x.DType {
		return nil, Errorf(n, "input 1 (slope) has dtype %v but X has %v", s.DType, x.DType)
	}
	if x.RankKnown && s.RankKnown && !PReluLegacySlope(opset, x.Shape, s.Shape) && !broadcastsTo(s.Shape, x.Shape) {
		return nil, Errorf(n, "slope of shape %v does not broadcast to X of shape %v", s.Shape, x.Shape)
	}
	return []*Type{same(x)}, nil
}

// broadcastsTo reports whether s may broadcast to x without changing x's
// shape (unknown dims are given the benefit of the doubt).
func broadcastsTo(s, x Shape) bool {
	if len(s) > len(x) {
		return false
	}
	off := len(x) - len(s)
	for i, d := range s {
		e := x[off+i]
		if d.Known() && e.Known() && d.Size != 1 && d.Size != e.Size {
			return false
		}
	}
	return true
}

// GatherNDBatchDims returns a GatherND node's batch_dims attribute.
func GatherNDBatchDims(n *Node) int64 { return n.AttrInt("batch_dims", 0) }

// inferGatherND: with data of rank r, indices of rank q whose last dim is k
// and b batch dims, the output is indices.shape[:q-1] + data.shape[b+k:].
func inferGatherND(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	data, idx := in[0], in[1]
	if idx.DType != tensor.Int64 && idx.DType != tensor.Int32 {
		return nil, Errorf(n, "input 1 (indices) has dtype %v; want int64", idx.DType)
	}
	b := int(GatherNDBatchDims(n))
	if b < 0 {
		return nil, Errorf(n, "attribute batch_dims is %d; it must not be negative", b)
	}
	if !data.RankKnown || !idx.RankKnown {
		return []*Type{unknownRank(data.DType)}, nil
	}
	r, q := len(data.Shape), len(idx.Shape)
	if r < 1 || q < 1 {
		return nil, Errorf(n, "data (shape %v) and indices (shape %v) must have rank >= 1", data.Shape, idx.Shape)
	}
	if b >= min(r, q) {
		return nil, Errorf(n, "batch_dims %d must be less than the ranks of data (%d) and indices (%d)", b, r, q)
	}
	for i := 0; i < b; i++ {
		d, e := data.Shape[i], idx.Shape[i]
		if d.Known() && e.Known() && d.Size != e.Size {
			return nil, Errorf(n, "batch dim %d is %d in data but %d in indices", i, d.Size, e.Size)
		}
	}
	last := idx.Shape[q-1]
	if !last.Known() {
		return []*Type{unknownRank(data.DType)}, nil
	}
	k := int(last.Size)
	if k < 1 || k > r-b {
		return nil, Errorf(n, "indices' last dim is %d; with data of rank %d and batch_dims %d it must be in [1, %d]", k, r, b, r-b)
	}
	out := append(Shape{}, idx.Shape[:q-1]...)
	out = append(out, data.Shape[b+k:]...)
	return []*Type{NewType(data.DType, out)}, nil
}

func inferInstanceNorm(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 3); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, Errorf(n, "input X has dtype %v, expected a floating-point type", x.DType)
	}
	c := Unknown
	if x.RankKnown {
		if len(x.Shape) < 2 {
			return nil, Errorf(n, "input X has shape %v, expected N x C x ... (rank >= 2)", x.Shape)
		}
		c = x.Shape[1]
	}
	for i, name := range []string{"", "scale", "B"} {
		if i == 0 {
			continue
		}
		if err := normChannelParam(n, name, in[i], c); err != nil {
			return nil, err
		}
		if in[i].DType != x.DType {
			return nil, Errorf(n, "input %s has dtype %v but X has %v", name, in[i].DType, x.DType)
		}
	}
	return []*Type{same(x)}, nil
}

func inferLpNorm(n *Node, in []*Type, opset int64) ([]*Type, error) {
	out, err := inferFloatUnary(n, in, opset)
	if err != nil {
		return nil, err
	}
	if p := n.AttrInt("p", 2); p != 1 && p != 2 {
		return nil, Errorf(n, "attribute p is %d; want 1 or 2", p)
	}
	if in[0].RankKnown {
		if _, err := NormAxis(n.AttrInt("axis", -1), max(len(in[0].Shape), 1)); err != nil {
			return nil, Errorf(n, "%v", err)
		}
	}
	return out, nil
}

// MVNAxes returns the axes a MeanVarianceNormalization node normalises
// over (default [0, 2, 3]), normalised against rank.
func MVNAxes(n *Node, rank int) ([]int, error) {
	raw := n.AttrInts("axes", []int64{0, 2, 3})
	seen := make([]bool, rank)
	axes := make([]int, 0, len(raw))
	for _, a := range raw {
		ax, err := NormAxis(a, rank)
		if err != nil {
			return nil, err
		}
		if !seen[ax] {
			seen[ax] = true
			axes = append(axes, ax)
		}
	}
	return axes, nil
}

func inferMVN(n *Node, in []*Type, opset int64) ([]*Type, error) {
	out, err := inferFloatUnary(n, in, opset)
	if err != nil {
		return nil, err
	}
	if in[0].RankKnown {
		if _, err := MVNAxes(n, len(in[0].Shape)); err != nil {
			return nil, Errorf(n, "axes: %v", err)
		}
	}
	return out, nil
}

// ---- Einsum ----

// EinsumTerm is one operand's subscripts: the letters before and after
// its ellipsis ("..."), or all of them in Before when it has none.
type EinsumTerm struct {
	Before, After string
	Ellipsis      bool
}

func (t EinsumTerm) letters() int { return len(t.Before) + len(t.After) }

// ParseEinsum splits an Einsum equation into its input terms and its
// output term. Spaces are ignored. Without "->" the output is implicit:
// the ellipsis (when an input has one) followed by the letters that occur
// exactly once, in alphabetical order.
func ParseEinsum(eq string) (in []EinsumTerm, out EinsumTerm, err error) {
	eq = strings.ReplaceAll(eq, " ", "")
	lhs, rhs, explicit := strings.Cut(eq, "->")
	parse := func(s string) (EinsumTerm, error) {
		var t EinsumTerm
		before, after, dots := strings.Cut(s, "...")
		if dots {
			if strings.Contains(after, "...") {
				return t, fmt.Errorf("term %q has more than one ellipsis", s)
			}
			t.Ellipsis = true
		}
		t.Before, t.After = before, after
		for _, r := range before + after {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return t, fmt.Errorf("term %q has %q; subscripts are letters and one optional \"...\"", s, r)
			}
		}
		return t, nil
	}
	for _, s := range strings.Split(lhs, ",") {
		t, err := parse(s)
		if err != nil {
			return nil, out, err
		}
		in = append(in, t)
	}
	if explicit {
		if out, err = parse(rhs); err != nil {
			return nil, out, err
		}
		for _, r := range out.Before + out.After {
			if strings.Count(out.Before+out.After, string(r)) > 1 {
				return nil, out, fmt.Errorf("output subscript %q occurs more than once", r)
			}
			if !strings.ContainsRune(lhs, r) {
				return nil, out, fmt.Errorf("output subscript %q does not occur in an input", r)
			}
		}
		if out.Ellipsis && !strings.Contains(lhs, "...") {
			return nil, out, fmt.Errorf("the output has an ellipsis but no input has one")
		}
		return in, out, nil
	}
	count := map[rune]int{}
	for _, t := range in {
		for _, r := range t.Before + t.After {
			count[r]++
		}
		out.Ellipsis = out.Ellipsis || t.Ellipsis
	}
	var once []rune
	for r, c := range count {
		if c == 1 {
			once = append(once, r)
		}
	}
	sort.Slice(once, func(i, j int) bool { return once[i] < once[j] })
	out.After = string(once)
	return in, out, nil
}

// EinsumLabels numbers the dims of every operand given the input ranks.
// Ellipsis dims get labels 0..E-1 (E the most any input's ellipsis covers,
// aligned to the right as in broadcasting) and letters the labels from E
// on; it returns the labels of each input's dims, of the output's dims,
// and the number of labels.
func EinsumLabels(in []EinsumTerm, out EinsumTerm, ranks []int) (inLabels [][]int, outLabels []int, n int, err error) {
	if len(in) != len(ranks) {
		return nil, nil, 0, fmt.Errorf("the equation has %d input terms but the node has %d inputs", len(in), len(ranks))
	}
	e := 0
	for i, t := range in {
		extra := ranks[i] - t.letters()
		if extra < 0 || (extra > 0 && !t.Ellipsis) {
			return nil, nil, 0, fmt.Errorf("input %d has rank %d but its term has %d subscripts", i, ranks[i], t.letters())
		}
		e = max(e, extra)
	}
	letter := map[rune]int{}
	id := func(r rune) int {
		if l, ok := letter[r]; ok {
			return l
		}
		letter[r] = e + len(letter)
		return letter[r]
	}
	expand := func(t EinsumTerm, extra int) []int {
		var ls []int
		for _, r := range t.Before {
			ls = append(ls, id(r))
		}
		for k := e - extra; k < e; k++ {
			ls = append(ls, k)
		}
		for _, r := range t.After {
			ls = append(ls, id(r))
		}
		return ls
	}
	for i, t := range in {
		inLabels = append(inLabels, expand(t, ranks[i]-t.letters()))
	}
	extra := 0
	if out.Ellipsis {
		extra = e
	}
	outLabels = expand(out, extra)
	return inLabels, outLabels, e + len(letter), nil
}

// inferEinsum: each output dim is the size of its label in the inputs;
// labels of ellipsis dims broadcast, those of letters must agree.
func inferEinsum(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, len(in)); err != nil {
		return nil, err
	}
	if len(in) == 0 {
		return nil, Errorf(n, "needs at least one input")
	}
	for i, t := range in {
		if t.DType != in[0].DType {
			return nil, Errorf(n, "input %d has dtype %v but input 0 has %v; Einsum needs equal dtypes", i, t.DType, in[0].DType)
		}
		if t.DType == tensor.String || t.DType == tensor.Bool {
			return nil, Errorf(n, "input %d has dtype %v; Einsum takes numeric tensors", i, t.DType)
		}
	}
	terms, out, err := ParseEinsum(n.AttrString("equation", ""))
	if err != nil {
		return nil, Errorf(n, "attribute equation: %v", err)
	}
	ranks := make([]int, len(in))
	for i, t := range in {
		if !t.RankKnown {
			if out.Ellipsis {
				return []*Type{unknownRank(in[0].DType)}, nil
			}
			s := make(Shape, out.letters())
			for k := range s {
				s[k] = Unknown
			}
			return []*Type{NewType(in[0].DType, s)}, nil
		}
		ranks[i] = len(t.Shape)
	}
	inL, outL, nl, err := EinsumLabels(terms, out, ranks)
	if err != nil {
		return nil, Errorf(n, "attribute equation: %v", err)
	}
	dims := make([]Dim, nl)
	set := make([]bool, nl)
	for i, ls := range inL {
		for k, l := range ls {
			d, o := in[i].Shape[k], dims[l]
			switch {
			case !set[l], o.Known() && o.Size == 1:
				dims[l], set[l] = d, true
			case d.Known() && d.Size == 1:
			case d.Known() && o.Known():
				if d.Size != o.Size {
					return nil, Errorf(n, "input %d dim %d has size %d where its subscript has size %d elsewhere", i, k, d.Size, o.Size)
				}
			case d.Known():
				dims[l] = d
			case !o.Known() && (d.Param != o.Param || d.Param == ""):
				dims[l] = Unknown
			}
		}
	}
	s := make(Shape, len(outL))
	for k, l := range outL {
		s[k] = dims[l]
	}
	return []*Type{NewType(in[0].DType, s)}, nil
}
