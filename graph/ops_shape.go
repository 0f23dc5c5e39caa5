package graph

import (
	"fmt"
	"math"

	"github.com/gotrain/gotrain/tensor"
)

// Shape and data-movement ops: Reshape, Flatten, Transpose, Concat, Split,
// Slice, Squeeze, Unsqueeze, Expand, Gather, Pad, Identity, Shape, Size,
// Tile, GatherElements, ScatterElements, Trilu, CumSum, OneHot, EyeLike, and
// the gradient helpers GatherGrad and SliceGrad of the ai.gotrain domain.
//
// Besides output shapes, inference computes output values when the inputs'
// values are known and small. Shape arithmetic exported from PyTorch
// (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) then resolves to
// constants at plan time, and Reshape, Expand or ConstantOfShape downstream
// get exact shapes.

// maxFoldElems bounds the values inference computes by copying; larger
// values are left to the executor's constant folding.
const maxFoldElems = 1 << 12

func init() {
	for _, s := range []*Schema{
		{OpType: "Reshape", MinInputs: 2, MaxInputs: 2, Infer: inferReshape, NoGradInputs: []int{1}},
		{OpType: "Flatten", MinInputs: 1, MaxInputs: 1, Infer: inferFlatten},
		{OpType: "Transpose", MinInputs: 1, MaxInputs: 1, Infer: inferTranspose},
		{OpType: "Concat", MinInputs: 1, MaxInputs: -1, Infer: inferConcat},
		{OpType: "Split", MinInputs: 1, MaxInputs: 2, Infer: inferSplit, NoGradInputs: []int{1}},
		{OpType: "Slice", MinInputs: 1, MaxInputs: 5, Infer: inferSlice, NoGradInputs: []int{1, 2, 3, 4}},
		{OpType: "Squeeze", MinInputs: 1, MaxInputs: 2, Infer: inferSqueeze, NoGradInputs: []int{1}},
		{OpType: "Unsqueeze", MinInputs: 1, MaxInputs: 2, Infer: inferUnsqueeze, NoGradInputs: []int{1}},
		{OpType: "Expand", MinInputs: 2, MaxInputs: 2, Infer: inferExpand, NoGradInputs: []int{1}},
		{OpType: "Gather", MinInputs: 2, MaxInputs: 2, Infer: inferGather, NoGradInputs: []int{1}},
		{OpType: "Pad", MinInputs: 1, MaxInputs: 4, Infer: inferPad, NoGradInputs: []int{1, 2, 3}},
		{OpType: "Identity", MinInputs: 1, MaxInputs: 1, Infer: inferIdentity},
		{OpType: "Shape", MinInputs: 1, MaxInputs: 1, Infer: inferShapeOp, NoGradInputs: []int{0}},
		{OpType: "Size", MinInputs: 1, MaxInputs: 1, Infer: inferSize, NoGradInputs: []int{0}},
		{OpType: "Tile", MinInputs: 2, MaxInputs: 2, Infer: inferTile, NoGradInputs: []int{1}},
		{OpType: "GatherElements", MinInputs: 2, MaxInputs: 2, Infer: inferGatherElements, NoGradInputs: []int{1}},
		{OpType: "ScatterElements", MinInputs: 3, MaxInputs: 3, Infer: inferScatterElements, NoGradInputs: []int{1}},
		{OpType: "Trilu", MinInputs: 1, MaxInputs: 2, Infer: inferSameAsInput0, NoGradInputs: []int{1}},
		{OpType: "CumSum", MinInputs: 2, MaxInputs: 2, Infer: inferSameAsInput0, NoGradInputs: []int{1}},
		{OpType: "OneHot", MinInputs: 3, MaxInputs: 3, Infer: inferOneHot, NoGradInputs: []int{0, 1, 2}},
		{OpType: "EyeLike", MinInputs: 1, MaxInputs: 1, Infer: inferEyeLike, NoGradInputs: []int{0}},
		{Domain: DomainGotrain, OpType: "GatherGrad", MinInputs: 3, MaxInputs: 3, Infer: inferGatherGrad, NoGradInputs: []int{1, 2}, Attrs: attrsOf("Gather", nil)},
		{Domain: DomainGotrain, OpType: "SliceGrad", MinInputs: 3, MaxInputs: 6, Infer: inferSliceGrad, NoGradInputs: []int{1, 2, 3, 4, 5}, Attrs: map[string]AttrType{}},
	} {
		Register(s)
	}
}

// ---- value helpers ----

// knownInts returns the value of an integer input when it is known.
func knownInts(t *Type) ([]int64, bool) {
	if t == nil || t.Value == nil || !t.Value.DType().IsInt() {
		return nil, false
	}
	v, err := t.Value.AsInt64s()
	if err != nil {
		return nil, false
	}
	return v, true
}

// attrOrInput returns the ints of input i when present (opsets that moved an
// attribute to an input) or else of the named attribute. ok is false when
// the input is present but its value unknown; present is false when neither
// gives a value.
func attrOrInput(n *Node, in []*Type, i int, attr string) (v []int64, present, ok bool) {
	if i < len(in) && in[i] != nil {
		v, ok = knownInts(in[i])
		return v, true, ok
	}
	if a := n.Attr(attr); a != nil {
		return a.Ints, true, true
	}
	return nil, false, true
}

func pickT[T any](ts []*tensor.Tensor, idx []int) (any, bool) {
	var flat []T
	if len(ts) == 1 {
		flat, _ = ts[0].Data().([]T)
	} else {
		for _, t := range ts {
			d, ok := t.Data().([]T)
			if !ok {
				return nil, false
			}
			flat = append(flat, d...)
		}
	}
	out := make([]T, len(idx))
	for i, j := range idx {
		if j < 0 || j >= len(flat) {
			return nil, false
		}
		out[i] = flat[j]
	}
	return out, true
}

// takeValue builds a tensor of the given shape whose element i is element
// idx[i] of the concatenated flat data of srcs (all of one dtype). It
// returns nil when that cannot be done.
func takeValue(srcs []*tensor.Tensor, idx []int, shape []int) *tensor.Tensor {
	if len(srcs) == 0 || len(idx) > maxFoldElems {
		return nil
	}
	dt := srcs[0].DType()
	for _, s := range srcs {
		if s == nil || s.DType() != dt {
			return nil
		}
	}
	var data any
	var ok bool
	switch srcs[0].Data().(type) {
	case []float32:
		data, ok = pickT[float32](srcs, idx)
	case []float64:
		data, ok = pickT[float64](srcs, idx)
	case []int64:
		data, ok = pickT[int64](srcs, idx)
	case []int32:
		data, ok = pickT[int32](srcs, idx)
	case []int16:
		data, ok = pickT[int16](srcs, idx)
	case []int8:
		data, ok = pickT[int8](srcs, idx)
	case []uint8:
		data, ok = pickT[uint8](srcs, idx)
	case []uint16:
		data, ok = pickT[uint16](srcs, idx)
	case []uint32:
		data, ok = pickT[uint32](srcs, idx)
	case []uint64:
		data, ok = pickT[uint64](srcs, idx)
	case []bool:
		data, ok = pickT[bool](srcs, idx)
	case []string:
		data, ok = pickT[string](srcs, idx)
	}
	if !ok {
		return nil
	}
	var t *tensor.Tensor
	var err error
	if dt == tensor.Float16 || dt == tensor.BFloat16 {
		t, err = tensor.FromRaw16(dt, data.([]uint16), shape...)
	} else {
		t, err = tensor.FromSlice(data, shape...)
	}
	if err != nil {
		return nil
	}
	return t
}

// indexMap lists, for each element of outShape in row-major order, the
// source index src returns for its coordinates.
func indexMap(outShape []int, src func(coord []int) int) []int {
	if !foldable(outShape) {
		return nil
	}
	n := tensor.NumElements(outShape)
	idx := make([]int, n)
	coord := make([]int, len(outShape))
	for i := 0; i < n; i++ {
		idx[i] = src(coord)
		for d := len(coord) - 1; d >= 0; d-- {
			coord[d]++
			if coord[d] < outShape[d] {
				break
			}
			coord[d] = 0
		}
	}
	return idx
}

// viewValue returns v's data under another shape (a free view), or nil.
func viewValue(v *tensor.Tensor, s Shape) *tensor.Tensor {
	if v == nil {
		return nil
	}
	dims, ok := s.Concrete()
	if !ok {
		return nil
	}
	r, err := v.Reshaped(dims...)
	if err != nil {
		return nil
	}
	return r
}

func dimsProduct(s Shape) Dim {
	p := int64(1)
	var sym Dim
	nsym := 0
	for _, d := range s {
		if !d.Known() {
			nsym++
			sym = d
			continue
		}
		var ok bool
		if p, ok = mulSize(p, d.Size); !ok {
			return Unknown // checkOutputs reports the overflow with the other dim
		}
	}
	switch {
	case nsym == 0:
		return D(p)
	case nsym == 1 && p == 1 && sym.Param != "":
		return sym
	}
	return Unknown
}

// mergeDim combines two dims that must be equal; ok is false when both are
// known and differ.
func mergeDim(a, b Dim) (Dim, bool) {
	switch {
	case a.Known() && b.Known():
		return a, a.Size == b.Size
	case a.Known():
		return a, true
	case b.Known():
		return b, true
	case a.Param != "" && a.Param == b.Param:
		return a, true
	case a.Param != "":
		return a, true
	}
	return b, true
}

func inferSameAsInput0(n *Node, in []*Type, opset int64) ([]*Type, error) {
	return []*Type{same(in[0])}, nil
}

// ---- Reshape, Flatten, Squeeze, Unsqueeze, Identity (views) ----

// ReshapeDims resolves a Reshape target (0 copies the input dim unless
// allowZero, -1 is inferred) against an input shape.
func ReshapeDims(inShape Shape, target []int64, allowZero bool) (Shape, error) {
	out := make(Shape, len(target))
	neg := -1
	copied := map[int]bool{}
	for i, t := range target {
		switch {
		case t == -1:
			if neg >= 0 {
				return nil, fmt.Errorf("shape %v has more than one -1", target)
			}
			neg = i
		case t == 0 && !allowZero:
			if i >= len(inShape) {
				return nil, fmt.Errorf("shape %v copies dim %d (a 0) but the input %v has rank %d", target, i, inShape, len(inShape))
			}
			out[i] = inShape[i]
			copied[i] = true
		case t < 0:
			return nil, fmt.Errorf("shape %v has a negative dim other than -1", target)
		default:
			out[i] = D(t)
		}
	}
	if allowZero && neg >= 0 {
		for _, t := range target {
			if t == 0 {
				return nil, fmt.Errorf("shape %v has both 0 and -1 with allowzero=1", target)
			}
		}
	}
	// What the non-copied input dims multiply to must equal what the
	// non-copied output dims multiply to.
	inKnown, outKnown := int64(1), int64(1)
	var inSym []Dim
	for i, d := range inShape {
		if copied[i] {
			continue
		}
		var ok bool
		if !d.Known() {
			inSym = append(inSym, d)
		} else if inKnown, ok = mulSize(inKnown, d.Size); !ok {
			return nil, fmt.Errorf("input shape %v holds more elements than an int64 counts", inShape)
		}
	}
	for i, d := range out {
		if i == neg || copied[i] {
			continue
		}
		var ok bool
		if outKnown, ok = mulSize(outKnown, d.Size); !ok {
			return nil, fmt.Errorf("shape %v holds more elements than an int64 counts", target)
		}
	}
	if neg >= 0 {
		switch {
		case len(inSym) == 0 && outKnown == 0:
			if inKnown != 0 {
				return nil, fmt.Errorf("cannot reshape %v to %v", inShape, target)
			}
			out[neg] = D(0)
		case len(inSym) == 0:
			if inKnown%outKnown != 0 {
				return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", inShape, inKnown, target)
			}
			out[neg] = D(inKnown / outKnown)
		case len(inSym) == 1 && inKnown == outKnown && inSym[0].Param != "":
			out[neg] = inSym[0]
		default:
			out[neg] = Unknown
		}
	} else if len(inSym) == 0 && inKnown != outKnown {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", inShape, inKnown, target)
	}
	return out, nil
}

func inferReshape(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x, sh := in[0], in[1]
	target, ok := knownInts(sh)
	if !ok {
		if r, ok := declaredLen(sh); ok {
			return []*Type{NewType(x.DType, unknownShape(r))}, nil
		}
		return []*Type{unknownRank(x.DType)}, nil
	}
	if !x.RankKnown {
		s := make(Shape, len(target))
		for i, t := range target {
			s[i] = Unknown
			if t > 0 || (t == 0 && n.AttrInt("allowzero", 0) != 0) {
				s[i] = D(t)
			}
		}
		return []*Type{NewType(x.DType, s)}, nil
	}
	s, err := ReshapeDims(x.Shape, target, n.AttrInt("allowzero", 0) != 0)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	t := NewType(x.DType, s)
	t.Value = viewValue(x.Value, s)
	return []*Type{t}, nil
}

func inferFlatten(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	if !x.RankKnown {
		return []*Type{NewType(x.DType, Shape{Unknown, Unknown})}, nil
	}
	r := len(x.Shape)
	axis := n.AttrInt("axis", 1)
	if axis < 0 {
		axis += int64(r)
	}
	if axis < 0 || axis > int64(r) {
		return nil, Errorf(n, "axis %d is out of range for rank %d", n.AttrInt("axis", 1), r)
	}
	s := Shape{dimsProduct(x.Shape[:axis]), dimsProduct(x.Shape[axis:])}
	t := NewType(x.DType, s)
	t.Value = viewValue(x.Value, s)
	return []*Type{t}, nil
}

func inferIdentity(n *Node, in []*Type, opset int64) ([]*Type, error) {
	t := *in[0]
	t.Shape = append(Shape{}, in[0].Shape...)
	return []*Type{&t}, nil
}

// normAxes normalises axes for rank r, rejecting repeats.
func normAxes(axes []int64, r int) ([]int, error) {
	seen := make([]bool, r)
	out := make([]int, 0, len(axes))
	for _, a := range axes {
		ax, err := NormAxis(a, r)
		if err != nil {
			return nil, err
		}
		if seen[ax] {
			return nil, fmt.Errorf("axis %d is repeated in %v", a, axes)
		}
		seen[ax] = true
		out = append(out, ax)
	}
	return out, nil
}

func inferSqueeze(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	axes, present, ok := attrOrInput(n, in, 1, "axes")
	if !x.RankKnown || !ok {
		return []*Type{unknownRank(x.DType)}, nil
	}
	r := len(x.Shape)
	drop := make([]bool, r)
	if present {
		as, err := normAxes(axes, r)
		if err != nil {
			return nil, Errorf(n, "%v", err)
		}
		for _, a := range as {
			if x.Shape[a].Known() && x.Shape[a].Size != 1 {
				return nil, Errorf(n, "cannot squeeze axis %d of shape %v: its size is not 1", a, x.Shape)
			}
			drop[a] = true
		}
	} else {
		for i, d := range x.Shape {
			if !d.Known() {
				return []*Type{unknownRank(x.DType)}, nil
			}
			drop[i] = d.Size == 1
		}
	}
	s := Shape{}
	for i, d := range x.Shape {
		if !drop[i] {
			s = append(s, d)
		}
	}
	t := NewType(x.DType, s)
	t.Value = viewValue(x.Value, s)
	return []*Type{t}, nil
}

func inferUnsqueeze(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	axes, present, ok := attrOrInput(n, in, 1, "axes")
	if !present {
		return nil, Errorf(n, "needs axes (an attribute before opset 13, input 1 from 13)")
	}
	if !x.RankKnown || !ok {
		return []*Type{unknownRank(x.DType)}, nil
	}
	r := len(x.Shape) + len(axes)
	as, err := normAxes(axes, r)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	ins := make([]bool, r)
	for _, a := range as {
		ins[a] = true
	}
	s := make(Shape, 0, r)
	j := 0
	for i := 0; i < r; i++ {
		if ins[i] {
			s = append(s, D(1))
		} else {
			s = append(s, x.Shape[j])
			j++
		}
	}
	t := NewType(x.DType, s)
	t.Value = viewValue(x.Value, s)
	return []*Type{t}, nil
}

// ---- Transpose ----

// TransposePerm returns the permutation of a Transpose node for rank r
// (reversed dims by default), checked.
func TransposePerm(n *Node, r int) ([]int, error) {
	p := n.AttrInts("perm", nil)
	perm := make([]int, r)
	if p == nil {
		for i := range perm {
			perm[i] = r - 1 - i
		}
		return perm, nil
	}
	if len(p) != r {
		return nil, Errorf(n, "perm %v has %d entries for an input of rank %d", p, len(p), r)
	}
	seen := make([]bool, r)
	for i, v := range p {
		a, err := NormAxis(v, r)
		if err != nil || seen[a] {
			return nil, Errorf(n, "perm %v is not a permutation of 0..%d", p, r-1)
		}
		seen[a] = true
		perm[i] = a
	}
	return perm, nil
}

func inferTranspose(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	if !x.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	perm, err := TransposePerm(n, len(x.Shape))
	if err != nil {
		return nil, err
	}
	s := make(Shape, len(perm))
	for i, p := range perm {
		s[i] = x.Shape[p]
	}
	t := NewType(x.DType, s)
	if x.Value != nil {
		dims, _ := s.Concrete()
		st := tensor.Strides(x.Value.Shape())
		idx := indexMap(dims, func(c []int) int {
			o := 0
			for i, p := range perm {
				o += c[i] * st[p]
			}
			return o
		})
		if idx != nil {
			t.Value = takeValue([]*tensor.Tensor{x.Value}, idx, dims)
		}
	}
	return []*Type{t}, nil
}

// ---- Concat, Split ----

func inferConcat(n *Node, in []*Type, opset int64) ([]*Type, error) {
	var ref *Type
	for i, t := range in {
		if t == nil {
			return nil, Errorf(n, "input %d is missing", i)
		}
		if t.DType != in[0].DType {
			return nil, Errorf(n, "input %d is %v but input 0 is %v", i, t.DType, in[0].DType)
		}
		if t.RankKnown && ref == nil {
			ref = t
		}
	}
	if ref == nil {
		return []*Type{unknownRank(in[0].DType)}, nil
	}
	r := len(ref.Shape)
	axis, err := NormAxis(n.AttrInt("axis", 0), r)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	s := append(Shape{}, ref.Shape...)
	sum := int64(0)
	allKnown := true
	for i, t := range in {
		if !t.RankKnown {
			allKnown = false
			continue
		}
		if len(t.Shape) != r {
			return nil, Errorf(n, "input %d has rank %d but input 0 has rank %d", i, len(t.Shape), r)
		}
		for j, d := range t.Shape {
			if j == axis {
				if d.Known() {
					var ok bool
					if sum, ok = addSize(sum, d.Size); !ok {
						return nil, Errorf(n, "the inputs' sizes along axis %d add up past an int64", axis)
					}
				} else {
					allKnown = false
				}
				continue
			}
			m, ok := mergeDim(s[j], d)
			if !ok {
				return nil, Errorf(n, "input %d has shape %v, which does not match %v outside axis %d", i, t.Shape, ref.Shape, axis)
			}
			s[j] = m
		}
	}
	s[axis] = Unknown
	if allKnown {
		s[axis] = D(sum)
	}
	t := NewType(in[0].DType, s)
	// Fold values (shape vectors, mostly).
	vals := make([]*tensor.Tensor, len(in))
	for i, x := range in {
		if x.Value == nil {
			return []*Type{t}, nil
		}
		vals[i] = x.Value
	}
	dims, ok := s.Concrete()
	if !ok {
		return []*Type{t}, nil
	}
	// Element (outer, k along axis, inner) comes from the input holding k.
	outer, inner := 1, 1
	for i := 0; i < axis; i++ {
		outer *= dims[i]
	}
	for i := axis + 1; i < r; i++ {
		inner *= dims[i]
	}
	var idx []int
	base := 0
	starts := make([]int, len(vals))
	for i, v := range vals {
		starts[i] = base
		base += v.Len()
	}
	if foldable(dims) {
		for o := 0; o < outer; o++ {
			for i, v := range vals {
				a := v.Shape()[axis]
				for k := 0; k < a*inner; k++ {
					idx = append(idx, starts[i]+o*a*inner+k)
				}
			}
		}
		t.Value = takeValue(vals, idx, dims)
	}
	return []*Type{t}, nil
}

// SplitSizes returns the sizes of Split's outputs along an axis of size dim
// (dim < 0: unknown): the split attribute (opset < 13) or input 1 (13+) when
// given, else equal parts (opset 18's num_outputs allows a smaller last one).
// sizes is nil when they cannot be known.
func SplitSizes(n *Node, in []*Type, opset int64, dim int64) ([]int64, error) {
	nOut := len(n.Outputs)
	split, present, ok := attrOrInput(n, in, 1, "split")
	if present {
		if !ok {
			return nil, nil
		}
		if len(split) != nOut {
			return nil, Errorf(n, "split %v has %d entries for %d outputs", split, len(split), nOut)
		}
		sum := int64(0)
		for _, v := range split {
			if v < 0 {
				return nil, Errorf(n, "split %v has a negative size", split)
			}
			sum += v
		}
		if dim >= 0 && sum != dim {
			return nil, Errorf(n, "split %v sums to %d but the axis has size %d", split, sum, dim)
		}
		return split, nil
	}
	if no := n.AttrInt("num_outputs", 0); no != 0 && no != int64(nOut) {
		return nil, Errorf(n, "num_outputs is %d but the node has %d outputs", no, nOut)
	}
	if dim < 0 {
		return nil, nil
	}
	sizes := make([]int64, nOut)
	if nOut == 0 {
		return sizes, nil
	}
	chunk := dim / int64(nOut)
	if dim%int64(nOut) != 0 {
		if n.Attr("num_outputs") == nil {
			return nil, Errorf(n, "axis of size %d does not split into %d equal parts", dim, nOut)
		}
		chunk = (dim + int64(nOut) - 1) / int64(nOut)
	}
	rest := dim
	for i := range sizes {
		sizes[i] = min(chunk, rest)
		rest -= sizes[i]
	}
	return sizes, nil
}

func inferSplit(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	outs := make([]*Type, len(n.Outputs))
	if !x.RankKnown {
		for i := range outs {
			outs[i] = unknownRank(x.DType)
		}
		return outs, nil
	}
	axis, err := NormAxis(n.AttrInt("axis", 0), len(x.Shape))
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	sizes, err := SplitSizes(n, in, opset, x.Shape[axis].Size)
	if err != nil {
		return nil, err
	}
	for i := range outs {
		s := append(Shape{}, x.Shape...)
		s[axis] = Unknown
		if sizes != nil {
			s[axis] = D(sizes[i])
		}
		outs[i] = NewType(x.DType, s)
	}
	return outs, nil
}

// ---- Slice ----

// SliceRange is the resolved slice of one axis: Len elements from Start
// with Step.
type SliceRange struct{ Start, Step, Len int }

// ResolveSlice clamps (start, end, step) to an axis of size dim the way
// Slice does (numpy semantics, opset 10+).
func ResolveSlice(start, end, step, dim int64) SliceRange {
	if start < 0 {
		start += dim
	}
	if end < 0 {
		end += dim
	}
	var n int64
	switch {
	case dim == 0:
	case step > 0:
		start = max(0, min(start, dim))
		end = max(0, min(end, dim))
		if end > start {
			n = (end - start + step - 1) / step
		}
	default:
		start = max(0, min(start, dim-1))
		end = max(-1, min(end, dim-1))
		if start > end {
			n = (start - end - step - 1) / -step
		}
	}
	return SliceRange{Start: int(start), Step: int(step), Len: int(n)}
}

// SliceParams reads a Slice node's starts, ends, axes and steps from its
// attributes (opset < 10) or inputs 1..4. known is false when one of them is
// not a known value; axes are normalised for rank r.
func SliceParams(n *Node, in []*Type, opset int64, r int) (starts, ends []int64, axes []int, steps []int64, known bool, err error) {
	var ok bool
	if opset < 10 && (len(in) < 2 || in[1] == nil) {
		starts, ends = n.AttrInts("starts", nil), n.AttrInts("ends", nil)
		if starts == nil || ends == nil {
			return nil, nil, nil, nil, false, Errorf(n, "needs starts and ends attributes")
		}
	} else {
		if len(in) < 3 || in[1] == nil || in[2] == nil {
			return nil, nil, nil, nil, false, Errorf(n, "needs inputs starts and ends")
		}
		var ok1, ok2 bool
		starts, ok1 = knownInts(in[1])
		ends, ok2 = knownInts(in[2])
		if !ok1 || !ok2 {
			return nil, nil, nil, nil, false, nil
		}
	}
	if len(starts) != len(ends) {
		return nil, nil, nil, nil, false, Errorf(n, "starts %v and ends %v differ in length", starts, ends)
	}
	rawAxes, present, ok := attrOrInput(n, in, 3, "axes")
	if !ok {
		return nil, nil, nil, nil, false, nil
	}
	if present {
		if len(rawAxes) != len(starts) {
			return nil, nil, nil, nil, false, Errorf(n, "axes %v and starts %v differ in length", rawAxes, starts)
		}
		axes, err = normAxes(rawAxes, r)
		if err != nil {
			return nil, nil, nil, nil, false, Errorf(n, "%v", err)
		}
	} else {
		if len(starts) > r {
			return nil, nil, nil, nil, false, Errorf(n, "starts %v has more entries than the input's rank %d", starts, r)
		}
		axes = make([]int, len(starts))
		for i := range axes {
			axes[i] = i
		}
	}
	steps = make([]int64, len(starts))
	for i := range steps {
		steps[i] = 1
	}
	if len(in) > 4 && in[4] != nil {
		s, ok := knownInts(in[4])
		if !ok {
			return nil, nil, nil, nil, false, nil
		}
		if len(s) != len(starts) {
			return nil, nil, nil, nil, false, Errorf(n, "steps %v and starts %v differ in length", s, starts)
		}
		for i, v := range s {
			if v == 0 {
				return nil, nil, nil, nil, false, Errorf(n, "steps %v has a 0", s)
			}
			steps[i] = v
		}
	}
	return starts, ends, axes, steps, true, nil
}

func inferSlice(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	if !x.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	r := len(x.Shape)
	starts, ends, axes, steps, known, err := SliceParams(n, in, opset, r)
	if err != nil {
		return nil, err
	}
	s := append(Shape{}, x.Shape...)
	if !known {
		// Axes not sliced keep their dims when the axes are known.
		if a, present, ok := attrOrInput(n, in, 3, "axes"); present && ok {
			if as, err := normAxes(a, r); err == nil {
				for _, ax := range as {
					s[ax] = Unknown
				}
				return []*Type{NewType(x.DType, s)}, nil
			}
		}
		for i := range s {
			s[i] = Unknown
		}
		return []*Type{NewType(x.DType, s)}, nil
	}
	ranges := make([]SliceRange, r)
	for i, d := range x.Shape {
		ranges[i] = SliceRange{Start: 0, Step: 1, Len: int(d.Size)}
	}
	for i, ax := range axes {
		d := x.Shape[ax]
		if !d.Known() {
			// A full slice keeps a symbolic dim.
			if !(starts[i] == 0 && steps[i] == 1 && ends[i] >= math.MaxInt32) {
				s[ax] = Unknown
			}
			continue
		}
		ranges[ax] = ResolveSlice(starts[i], ends[i], steps[i], d.Size)
		s[ax] = D(int64(ranges[ax].Len))
	}
	t := NewType(x.DType, s)
	if x.Value != nil {
		dims, ok := s.Concrete()
		if ok {
			st := tensor.Strides(x.Value.Shape())
			idx := indexMap(dims, func(c []int) int {
				o := 0
				for i, v := range c {
					o += (ranges[i].Start + v*ranges[i].Step) * st[i]
				}
				return o
			})
			if idx != nil {
				t.Value = takeValue([]*tensor.Tensor{x.Value}, idx, dims)
			}
		}
	}
	return []*Type{t}, nil
}

// ---- Expand, Tile ----

func inferExpand(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x, sh := in[0], in[1]
	target, ok := knownInts(sh)
	if !ok || !x.RankKnown {
		if k, ok := declaredLen(sh); ok && x.RankKnown {
			r := max(k, len(x.Shape))
			s := make(Shape, r)
			for i := range s {
				s[i] = Unknown
			}
			for i, d := range x.Shape {
				if d.Known() && d.Size != 1 {
					s[r-len(x.Shape)+i] = d
				}
			}
			return []*Type{NewType(x.DType, s)}, nil
		}
		return []*Type{unknownRank(x.DType)}, nil
	}
	for _, v := range target {
		if v < 0 {
			return nil, Errorf(n, "shape %v has a negative dim", target)
		}
	}
	s, err := BroadcastShapes(x.Shape, ShapeOf(int64sToInts(target)...))
	if err != nil {
		return nil, Errorf(n, "cannot expand %v to %v: %v", x.Shape, target, err)
	}
	t := NewType(x.DType, s)
	if x.Value != nil {
		if dims, ok := s.Concrete(); ok {
			t.Value = broadcastValue(x.Value, dims)
		}
	}
	return []*Type{t}, nil
}

// broadcastValue expands v to dims (numpy broadcasting).
func broadcastValue(v *tensor.Tensor, dims []int) *tensor.Tensor {
	vs := v.Shape()
	st := tensor.Strides(vs)
	off := len(dims) - len(vs)
	idx := indexMap(dims, func(c []int) int {
		o := 0
		for i := range vs {
			if vs[i] != 1 {
				o += c[off+i] * st[i]
			}
		}
		return o
	})
	if idx == nil {
		return nil
	}
	return takeValue([]*tensor.Tensor{v}, idx, dims)
}

func int64sToInts(v []int64) []int {
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out
}

func inferTile(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x, rep := in[0], in[1]
	if !x.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	r := len(x.Shape)
	reps, ok := knownInts(rep)
	s := make(Shape, r)
	if !ok {
		for i := range s {
			s[i] = Unknown
		}
		return []*Type{NewType(x.DType, s)}, nil
	}
	if len(reps) != r {
		return nil, Errorf(n, "repeats %v has %d entries for an input of rank %d", reps, len(reps), r)
	}
	for i, d := range x.Shape {
		switch {
		case reps[i] < 0:
			return nil, Errorf(n, "repeats %v has a negative entry", reps)
		case d.Known():
			v, ok := mulSize(d.Size, reps[i])
			if !ok {
				return nil, Errorf(n, "repeats %v make axis %d of size %d longer than an int64 counts", reps, i, d.Size)
			}
			s[i] = D(v)
		case reps[i] == 1:
			s[i] = d
		case reps[i] == 0:
			s[i] = D(0)
		default:
			s[i] = Unknown
		}
	}
	t := NewType(x.DType, s)
	if x.Value != nil {
		if dims, ok := s.Concrete(); ok {
			xs := x.Value.Shape()
			st := tensor.Strides(xs)
			idx := indexMap(dims, func(c []int) int {
				o := 0
				for i, v := range c {
					o += (v % xs[i]) * st[i]
				}
				return o
			})
			if idx != nil {
				t.Value = takeValue([]*tensor.Tensor{x.Value}, idx, dims)
			}
		}
	}
	return []*Type{t}, nil
}

// ---- Gather, GatherElements, ScatterElements, OneHot ----

func isIndexType(dt tensor.DType) bool { return dt == tensor.Int64 || dt == tensor.Int32 }

func inferGather(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x, ind := in[0], in[1]
	if !isIndexType(ind.DType) {
		return nil, Errorf(n, "indices must be int32 or int64, not %v", ind.DType)
	}
	if !x.RankKnown || !ind.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	r := len(x.Shape)
	axis, err := NormAxis(n.AttrInt("axis", 0), r)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	s := append(Shape{}, x.Shape[:axis]...)
	s = append(s, ind.Shape...)
	s = append(s, x.Shape[axis+1:]...)
	t := NewType(x.DType, s)
	iv, ok := knownInts(ind)
	if x.Value != nil && ok {
		dims, _ := s.Concrete()
		xs := x.Value.Shape()
		ad := xs[axis]
		for _, v := range iv {
			if v < -int64(ad) || v >= int64(ad) {
				return nil, Errorf(n, "index %d is out of range for axis %d of size %d", v, axis, ad)
			}
		}
		st := tensor.Strides(xs)
		ir := len(ind.Shape)
		istr := tensor.Strides(int64sToInts(shapeInts(ind.Shape)))
		idx := indexMap(dims, func(c []int) int {
			o := 0
			for i := 0; i < axis; i++ {
				o += c[i] * st[i]
			}
			k := 0
			for i := 0; i < ir; i++ {
				k += c[axis+i] * istr[i]
			}
			v := int(iv[k])
			if v < 0 {
				v += ad
			}
			o += v * st[axis]
			for i := axis + 1; i < r; i++ {
				o += c[i-1+ir] * st[i]
			}
			return o
		})
		if idx != nil {
			t.Value = takeValue([]*tensor.Tensor{x.Value}, idx, dims)
		}
	}
	return []*Type{t}, nil
}

func shapeInts(s Shape) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		out[i] = d.Size
	}
	return out
}

func inferGatherElements(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x, ind := in[0], in[1]
	if !isIndexType(ind.DType) {
		return nil, Errorf(n, "indices must be int32 or int64, not %v", ind.DType)
	}
	if x.RankKnown && ind.RankKnown {
		if len(x.Shape) != len(ind.Shape) {
			return nil, Errorf(n, "data has rank %d but indices rank %d", len(x.Shape), len(ind.Shape))
		}
		if _, err := NormAxis(n.AttrInt("axis", 0), len(x.Shape)); err != nil {
			return nil, Errorf(n, "%v", err)
		}
	}
	if !ind.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	return []*Type{NewType(x.DType, append(Shape{}, ind.Shape...))}, nil
}

func inferScatterElements(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x, ind, upd := in[0], in[1], in[2]
	if !isIndexType(ind.DType) {
		return nil, Errorf(n, "indices must be int32 or int64, not %v", ind.DType)
	}
	if upd.DType != x.DType {
		return nil, Errorf(n, "updates are %v but data is %v", upd.DType, x.DType)
	}
	if x.RankKnown && ind.RankKnown && len(x.Shape) != len(ind.Shape) {
		return nil, Errorf(n, "data has rank %d but indices rank %d", len(x.Shape), len(ind.Shape))
	}
	if x.RankKnown {
		if _, err := NormAxis(n.AttrInt("axis", 0), len(x.Shape)); err != nil {
			return nil, Errorf(n, "%v", err)
		}
	}
	return []*Type{same(x)}, nil
}

func inferOneHot(n *Node, in []*Type, opset int64) ([]*Type, error) {
	ind, depth, vals := in[0], in[1], in[2]
	if !ind.RankKnown {
		return []*Type{unknownRank(vals.DType)}, nil
	}
	r := len(ind.Shape) + 1
	axis, err := NormAxis(n.AttrInt("axis", -1), r)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	d := Unknown
	if depth.Value != nil && depth.Value.Len() == 1 {
		v := depth.Value.AsFloat64(0)
		if !(v >= 1 && v <= 1<<53) || math.IsInf(v, 0) {
			return nil, Errorf(n, "depth is %v: expected a positive class count", v)
		}
		d = D(int64(v))
	}
	s := append(Shape{}, ind.Shape[:axis]...)
	s = append(s, d)
	s = append(s, ind.Shape[axis:]...)
	return []*Type{NewType(vals.DType, s)}, nil
}

func inferEyeLike(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	if x.RankKnown && len(x.Shape) != 2 {
		return nil, Errorf(n, "input must be 2-D, has shape %v", x.Shape)
	}
	dt := x.DType
	if a := n.Attr("dtype"); a != nil {
		dt = tensor.DType(a.I)
	}
	t := same(x)
	t.DType = dt
	return []*Type{t}, nil
}

// ---- Pad ----

// PadParams reads a Pad node's pads (attribute before opset 11, input 1
// after), expanded to 2*r entries (begins then ends) over all axes using
// the axes input (opset 18). known is false when the pads are not a known
// value.
func PadParams(n *Node, in []*Type, opset int64, r int) (pads []int64, known bool, err error) {
	var raw []int64
	if len(in) > 1 && in[1] != nil {
		v, ok := knownInts(in[1])
		if !ok {
			return nil, false, nil
		}
		raw = v
	} else if a := n.Attr("pads"); a != nil {
		raw = a.Ints
	} else {
		return nil, false, Errorf(n, "needs pads (an attribute before opset 11, input 1 from 11)")
	}
	axes := make([]int, r)
	for i := range axes {
		axes[i] = i
	}
	if len(in) > 3 && in[3] != nil {
		a, ok := knownInts(in[3])
		if !ok {
			return nil, false, nil
		}
		axes, err = normAxes(a, r)
		if err != nil {
			return nil, false, Errorf(n, "%v", err)
		}
	}
	if len(raw) != 2*len(axes) {
		return nil, false, Errorf(n, "pads %v should have %d entries (2 per padded axis)", raw, 2*len(axes))
	}
	pads = make([]int64, 2*r)
	for i, ax := range axes {
		pads[ax] = raw[i]
		pads[r+ax] = raw[len(axes)+i]
	}
	return pads, true, nil
}

func inferPad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	if !x.RankKnown {
		return []*Type{unknownRank(x.DType)}, nil
	}
	switch m := n.AttrString("mode", "constant"); m {
	case "constant", "reflect", "edge", "wrap":
	default:
		return nil, Errorf(n, "mode %q is not one of constant, reflect, edge, wrap", m)
	}
	r := len(x.Shape)
	pads, known, err := PadParams(n, in, opset, r)
	if err != nil {
		return nil, err
	}
	s := append(Shape{}, x.Shape...)
	for i, d := range x.Shape {
		switch {
		case !known:
			s[i] = Unknown
		case d.Known():
			v, ok := addSize(d.Size, pads[i], pads[r+i])
			if !ok {
				return nil, Errorf(n, "pads %v make axis %d of size %d longer than an int64 counts", pads, i, d.Size)
			}
			if v < 0 {
				return nil, Errorf(n, "pads %v crop axis %d of size %d below zero", pads, i, d.Size)
			}
			s[i] = D(v)
		case pads[i] != 0 || pads[r+i] != 0:
			s[i] = Unknown
		}
	}
	return []*Type{NewType(x.DType, s)}, nil
}

// ---- Shape, Size ----

func inferShapeOp(n *Node, in []*Type, opset int64) ([]*Type, error) {
	x := in[0]
	if !x.RankKnown {
		return []*Type{NewType(tensor.Int64, Shape{Unknown})}, nil
	}
	r := int64(len(x.Shape))
	start, end := n.AttrInt("start", 0), n.AttrInt("end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start = max(0, min(start, r))
	end = max(0, min(end, r))
	if end < start {
		end = start
	}
	t := NewType(tensor.Int64, Shape{D(end - start)})
	v := make([]int64, 0, end-start)
	for _, d := range x.Shape[start:end] {
		if !d.Known() {
			return []*Type{t}, nil
		}
		v = append(v, d.Size)
	}
	t.Value = tensor.MustFromSlice(v, len(v))
	return []*Type{t}, nil
}

func inferSize(n *Node, in []*Type, opset int64) ([]*Type, error) {
	t := NewType(tensor.Int64, Shape{})
	if dims, ok := in[0].Concrete(); ok {
		if cnt, ok := tensor.MulDims(dims); ok {
			t.Value = tensor.Scalar(cnt)
		}
	}
	return []*Type{t}, nil
}

// ---- gradient helpers ----

// shapeFromInput turns a 1-D int64 shape input into dims (Unknown where
// the value is not known).
func shapeFromInput(n *Node, t *Type, what string) (Shape, bool, error) {
	if v, ok := knownInts(t); ok {
		for _, d := range v {
			if d < 0 {
				return nil, false, Errorf(n, "%s %v has a negative dim", what, v)
			}
		}
		return ShapeOf(int64sToInts(v)...), true, nil
	}
	if r, ok := declaredLen(t); ok {
		return unknownShape(r), true, nil
	}
	return nil, false, nil
}

func inferGatherGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	dy, ind := in[0], in[1]
	if !isIndexType(ind.DType) {
		return nil, Errorf(n, "indices must be int32 or int64, not %v", ind.DType)
	}
	s, ok, err := shapeFromInput(n, in[2], "shape")
	if err != nil {
		return nil, err
	}
	if !ok {
		return []*Type{unknownRank(dy.DType)}, nil
	}
	axis, err := NormAxis(n.AttrInt("axis", 0), len(s))
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	if dy.RankKnown && ind.RankKnown && len(dy.Shape) != len(s)-1+len(ind.Shape) {
		return nil, Errorf(n, "dY has rank %d; a Gather of rank %d data along axis %d with rank %d indices gives rank %d",
			len(dy.Shape), len(s), axis, len(ind.Shape), len(s)-1+len(ind.Shape))
	}
	return []*Type{NewType(dy.DType, s)}, nil
}

func inferSliceGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	dy := in[0]
	s, ok, err := shapeFromInput(n, in[1], "shape")
	if err != nil {
		return nil, err
	}
	if !ok {
		return []*Type{unknownRank(dy.DType)}, nil
	}
	if dy.RankKnown && len(dy.Shape) != len(s) {
		return nil, Errorf(n, "dY has rank %d but shape has %d entries", len(dy.Shape), len(s))
	}
	return []*Type{NewType(dy.DType, s)}, nil
}
