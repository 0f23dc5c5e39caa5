package graph

import (
	"github.com/gotrain/gotrain/tensor"
)

// Normalisation and dropout ops: BatchNormalization, LayerNormalization,
// Dropout, and the training ops of domain ai.gotrain:
//
//	BatchNormTrain(X, scale, B, running_mean, running_var)
//	    -> (Y, new_running_mean, new_running_var, saved_mean, saved_inv_std)
//	    attrs epsilon (1e-5), momentum (0.9).
//	    Y is normalised with the batch statistics (biased variance), as in
//	    training. The running statistics follow ONNX's momentum convention,
//	    running*momentum + batch*(1-momentum), but the variance folded in is
//	    the unbiased batch variance (sum of squares / (M-1), M = N*D1*...),
//	    which is PyTorch's semantics and what its trained models expect.
//	    saved_inv_std is 1/sqrt(biased_var + epsilon).
//	BatchNormGrad(dY, X, scale, saved_mean, saved_inv_std) -> (dX, dScale, dBias)
//	    the gradient of BatchNormTrain's Y (batch statistics).
//	LayerNormGrad(dY, X, scale, mean, inv_std) -> (dX, dScale, dBias)
//	    attr axis, as LayerNormalization's; mean and inv_std are shaped as
//	    its Mean and InvStdDev outputs.
//	DropoutTrain(X, ratio, seed, offset) -> (Y, mask)
//	    ratio a float32 scalar in [0, 1], seed and offset int64 scalars.
//	    Whether element j of sample i (i indexes dim 0) is kept is a pure
//	    function of (seed, offset+i, j): a counter-based hash, not a random
//	    stream, so that a batch split over replicas, each passing the offset
//	    of its first sample, draws exactly the masks one replica would.
//	    Y = X*mask/(1-ratio) (zero when ratio is 1); mask is bool.

// normChannelParam checks that a per-channel input is a vector of C values.
func normChannelParam(n *Node, name string, t *Type, c Dim) error {
	if !t.DType.IsFloat() {
		return Errorf(n, "input %s has dtype %v, expected a floating-point type", name, t.DType)
	}
	if !t.RankKnown {
		return nil
	}
	if len(t.Shape) != 1 {
		return Errorf(n, "input %s has shape %v, expected [C] (a vector of one value per channel)", name, t.Shape)
	}
	if d := t.Shape[0]; d.Known() && c.Known() && d.Size != c.Size {
		return Errorf(n, "input %s has %d values but X has %d channels", name, d.Size, c.Size)
	}
	return nil
}

// normChannelOut is the [C] type of a per-channel output.
func normChannelOut(dt tensor.DType, x *Type, like *Type) *Type {
	if like != nil && like.RankKnown && len(like.Shape) == 1 {
		return NewType(dt, Shape{like.Shape[0]})
	}
	if x.RankKnown {
		return NewType(dt, Shape{x.Shape[1]})
	}
	return NewType(dt, Shape{Unknown})
}

// normCheckBatchX checks the N x C x ... input of the batch-norm family.
func normCheckBatchX(n *Node, x *Type) error {
	if !x.DType.IsFloat() {
		return Errorf(n, "input X has dtype %v, expected a floating-point type", x.DType)
	}
	if x.RankKnown && len(x.Shape) < 2 {
		return Errorf(n, "input X has shape %v; %s expects N x C x ... (rank >= 2)", x.Shape, n.OpType)
	}
	return nil
}

// normCheckParams checks the per-channel inputs from index first on.
func normCheckParams(n *Node, in []*Type, first int, names ...string) error {
	x := in[0]
	if n.OpType != "BatchNormalization" && n.OpType != "BatchNormTrain" {
		x = in[1]
	}
	c := Unknown
	if x.RankKnown {
		c = x.Shape[1]
	}
	for i, name := range names {
		if err := normChannelParam(n, name, in[first+i], c); err != nil {
			return err
		}
	}
	return nil
}

func normInferBatchNorm(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 5); err != nil {
		return nil, err
	}
	x := in[0]
	if err := normCheckBatchX(n, x); err != nil {
		return nil, err
	}
	// spatial=0 (opsets before 9) has per-element parameters; the kernel
	// rejects it, inference lets it through with its own shapes.
	if n.AttrInt("spatial", 1) != 0 {
		if err := normCheckParams(n, in, 1, "scale", "B", "input_mean", "input_var"); err != nil {
			return nil, err
		}
	}
	outs := []*Type{same(x)}
	for i := 1; i < len(n.Outputs) && i < 5; i++ {
		if opset >= 14 && i >= 3 {
			return nil, Errorf(n, "has %d outputs; BatchNormalization-%d has at most 3", len(n.Outputs), opset)
		}
		like := in[3]
		if i >= 3 {
			like = in[0]
		}
		outs = append(outs, normChannelOut(like.DType, x, in[3]))
	}
	return outs, nil
}

func normInferBatchNormTrain(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 5); err != nil {
		return nil, err
	}
	x := in[0]
	if err := normCheckBatchX(n, x); err != nil {
		return nil, err
	}
	if err := normCheckParams(n, in, 1, "scale", "B", "running_mean", "running_var"); err != nil {
		return nil, err
	}
	return []*Type{same(x),
		normChannelOut(in[3].DType, x, in[3]), normChannelOut(in[4].DType, x, in[4]),
		normChannelOut(x.DType, x, in[1]), normChannelOut(x.DType, x, in[1])}, nil
}

func normInferBatchNormGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 5); err != nil {
		return nil, err
	}
	dy, x := in[0], in[1]
	if err := normCheckBatchX(n, x); err != nil {
		return nil, err
	}
	if err := normSameShape(n, dy, x); err != nil {
		return nil, err
	}
	if err := normCheckParams(n, in, 2, "scale", "saved_mean", "saved_inv_std"); err != nil {
		return nil, err
	}
	return []*Type{same(x), same(in[2]), same(in[2])}, nil
}

// normSameShape checks that dY matches X.
func normSameShape(n *Node, dy, x *Type) error {
	if dy.DType != x.DType {
		return Errorf(n, "dY has dtype %v but X has %v", dy.DType, x.DType)
	}
	if !dy.RankKnown || !x.RankKnown {
		return nil
	}
	if len(dy.Shape) != len(x.Shape) {
		return Errorf(n, "dY has shape %v but X has %v", dy.Shape, x.Shape)
	}
	for i := range dy.Shape {
		if a, b := dy.Shape[i], x.Shape[i]; a.Known() && b.Known() && a.Size != b.Size {
			return Errorf(n, "dY has shape %v but X has %v", dy.Shape, x.Shape)
		}
	}
	return nil
}

// LayerNormStashType is the dtype of LayerNormalization's Mean and
// InvStdDev outputs: the stash_type attribute (float32 by default).
func LayerNormStashType(n *Node) tensor.DType {
	if st := tensor.DType(n.AttrInt("stash_type", int64(tensor.Float32))); st == tensor.Float64 {
		return st
	}
	return tensor.Float32
}

// normLayerStats types LayerNormalization's Mean/InvStdDev: X's dims before
// axis, then ones.
func normLayerStats(n *Node, x *Type, dt tensor.DType) (*Type, error) {
	if !x.RankKnown {
		return unknownRank(dt), nil
	}
	a, err := NormAxis(n.AttrInt("axis", -1), len(x.Shape))
	if err != nil {
		return nil, Errorf(n, "attribute axis: %v", err)
	}
	s := append(Shape{}, x.Shape[:a]...)
	for range x.Shape[a:] {
		s = append(s, D(1))
	}
	return NewType(dt, s), nil
}

// normCheckLayerParam checks that scale/B broadcast onto X's dims from axis on.
func normCheckLayerParam(n *Node, name string, p, x *Type) error {
	if p.DType != x.DType && !(p.DType.IsFloat() && x.DType.IsFloat()) {
		return Errorf(n, "input %s has dtype %v, expected %v", name, p.DType, x.DType)
	}
	if !p.RankKnown || !x.RankKnown {
		return nil
	}
	a, err := NormAxis(n.AttrInt("axis", -1), len(x.Shape))
	if err != nil {
		return Errorf(n, "attribute axis: %v", err)
	}
	inner := x.Shape[a:]
	if len(p.Shape) > len(inner) {
		return Errorf(n, "input %s has shape %v, which does not broadcast onto the normalised dims %v", name, p.Shape, inner)
	}
	off := len(inner) - len(p.Shape)
	for i, d := range p.Shape {
		if e := inner[off+i]; d.Known() && e.Known() && d.Size != 1 && d.Size != e.Size {
			return Errorf(n, "input %s has shape %v, which does not broadcast onto the normalised dims %v", name, p.Shape, inner)
		}
	}
	return nil
}

func normInferLayerNorm(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, Errorf(n, "input X has dtype %v, expected a floating-point type", x.DType)
	}
	if err := normCheckLayerParam(n, "Scale", in[1], x); err != nil {
		return nil, err
	}
	if len(in) > 2 && in[2] != nil {
		if err := normCheckLayerParam(n, "B", in[2], x); err != nil {
			return nil, err
		}
	}
	st, err := normLayerStats(n, x, LayerNormStashType(n))
	if err != nil {
		return nil, err
	}
	return []*Type{same(x), st, same(st)}, nil
}

func normInferLayerNormGrad(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 5); err != nil {
		return nil, err
	}
	dy, x := in[0], in[1]
	if !x.DType.IsFloat() {
		return nil, Errorf(n, "input X has dtype %v, expected a floating-point type", x.DType)
	}
	if err := normSameShape(n, dy, x); err != nil {
		return nil, err
	}
	if err := normCheckLayerParam(n, "scale", in[2], x); err != nil {
		return nil, err
	}
	st, err := normLayerStats(n, x, in[3].DType)
	if err != nil {
		return nil, err
	}
	for i, name := range []string{"mean", "inv_std"} {
		t := in[3+i]
		if !t.DType.IsFloat() {
			return nil, Errorf(n, "input %s has dtype %v, expected a floating-point type", name, t.DType)
		}
		if t.RankKnown && st.RankKnown && len(t.Shape) != len(st.Shape) {
			return nil, Errorf(n, "input %s has shape %v, expected %v (LayerNormalization's statistics shape)", name, t.Shape, st.Shape)
		}
	}
	return []*Type{same(x), same(in[2]), same(in[2])}, nil
}

func normInferDropout(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 1); err != nil {
		return nil, err
	}
	x := in[0]
	if len(in) > 1 && in[1] != nil && !in[1].DType.IsFloat() {
		return nil, Errorf(n, "input ratio has dtype %v, expected a floating-point scalar", in[1].DType)
	}
	if len(in) > 2 && in[2] != nil && in[2].DType != tensor.Bool {
		return nil, Errorf(n, "input training_mode has dtype %v, expected bool", in[2].DType)
	}
	if r := n.Attr("ratio"); r != nil && (r.F < 0 || r.F > 1) {
		return nil, Errorf(n, "attribute ratio is %g, expected a value in [0, 1]", r.F)
	}
	maskDT := tensor.Bool
	if opset < 10 {
		maskDT = x.DType // before opset 10 the mask had the input's type
	}
	y := same(x)
	m := same(x)
	m.DType = maskDT
	return []*Type{y, m}, nil
}

func normInferDropoutTrain(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 4); err != nil {
		return nil, err
	}
	x := in[0]
	if !x.DType.IsFloat() {
		return nil, Errorf(n, "input X has dtype %v, expected a floating-point type", x.DType)
	}
	want := []struct {
		name string
		dt   tensor.DType
	}{{"ratio", tensor.Float32}, {"seed", tensor.Int64}, {"offset", tensor.Int64}}
	for i, w := range want {
		t := in[1+i]
		if t.DType != w.dt {
			return nil, Errorf(n, "input %s has dtype %v, expected a %v scalar", w.name, t.DType, w.dt)
		}
		if t.RankKnown {
			if c, ok := t.Shape.Concrete(); ok && tensor.NumElements(c) != 1 {
				return nil, Errorf(n, "input %s has shape %v, expected a scalar", w.name, t.Shape)
			}
		}
	}
	m := same(x)
	m.DType = tensor.Bool
	return []*Type{same(x), m}, nil
}

func init() {
	Register(&Schema{OpType: "BatchNormalization", MinInputs: 5, MaxInputs: 5, Infer: normInferBatchNorm})
	Register(&Schema{OpType: "LayerNormalization", MinInputs: 2, MaxInputs: 3, Infer: normInferLayerNorm})
	Register(&Schema{OpType: "Dropout", MinInputs: 1, MaxInputs: 3, Infer: normInferDropout,
		NoGradInputs: []int{1, 2}})
	// The training forms take the attributes of the ops they stand for.
	Register(&Schema{Domain: DomainGotrain, OpType: "BatchNormTrain", MinInputs: 5, MaxInputs: 5,
		Infer: normInferBatchNormTrain, NoGradInputs: []int{3, 4}, Attrs: attrsOf("BatchNormalization", nil)})
	Register(&Schema{Domain: DomainGotrain, OpType: "BatchNormGrad", MinInputs: 5, MaxInputs: 5,
		Infer: normInferBatchNormGrad, Attrs: attrsOf("BatchNormalization", nil)})
	Register(&Schema{Domain: DomainGotrain, OpType: "LayerNormGrad", MinInputs: 5, MaxInputs: 5,
		Infer: normInferLayerNormGrad, Attrs: attrsOf("LayerNormalization", nil)})
	Register(&Schema{Domain: DomainGotrain, OpType: "DropoutTrain", MinInputs: 4, MaxInputs: 4,
		Infer: normInferDropoutTrain, NoGradInputs: []int{1, 2, 3}, Attrs: attrsOf("Dropout", nil)})
}

// The keep-mask of DropoutTrain (and of Dropout in training mode, with its
// seed attribute and offset 0), specified exactly so that every backend draws
// the same masks. Element j of sample i is kept when
//
//	DropoutBits(DropoutRowKey(seed, offset+i), j) >> 40 >= DropoutThreshold(ratio)
//
// The bits are splitmix64's output stream seeded with a per-sample key; the
// top 24 bits compared with floor(ratio * 2^24) keep an element with
// probability 1 - ratio (to 2^-24).

const dropoutGolden = 0x9e3779b97f4a7c15

func dropoutMix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// DropoutRowKey is the hash key of one sample's mask.
func DropoutRowKey(seed, sample int64) uint64 {
	return dropoutMix(uint64(seed)*dropoutGolden ^ dropoutMix(uint64(sample)+dropoutGolden))
}

// DropoutBits returns the 64 random bits of element j of the sample whose
// key is rowKey.
func DropoutBits(rowKey uint64, j int) uint64 {
	return dropoutMix(rowKey + uint64(j+1)*dropoutGolden)
}

// DropoutThreshold is floor(ratio * 2^24) for ratio clamped to [0, 1].
func DropoutThreshold(ratio float32) uint64 {
	r := float64(ratio)
	if r <= 0 || r != r {
		return 0
	}
	if r >= 1 {
		return 1 << 24
	}
	return uint64(r * (1 << 24))
}
