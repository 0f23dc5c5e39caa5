package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Loss kernels.
//
// Class losses see scores or log-probabilities of shape [N, C, d1, ...]
// (element (n, c, d) at (n*C + c)*D + d, D the product of the d's) and
// labels [N, d1, ...] of class indices, or (gotrain's SoftmaxCrossEntropy
// only) soft targets shaped like the scores.
//
// With class indices t, weights w (all 1 when absent), label smoothing e
// and log-probabilities lp, position i's loss is
//
//	(1-e) * -w[t]*lp[t] + e/C * -sum_c w[c]*lp[c]    (0 where t == ignore_index)
//
// which is ONNX's SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss for
// e = 0 and PyTorch's cross_entropy(label_smoothing=e) otherwise. "mean"
// divides the sum by sum_i w[t_i] over positions not ignored, "sum" sums,
// "none" keeps the per-position losses. With soft targets q the targets
// become q' = (1-e)*q + e/C, the loss is -sum_c w[c]*q'[c]*lp[c], and "mean"
// divides by the number of positions (PyTorch's rule for probabilities).

func init() {
	Register(graph.DomainONNX, "NegativeLogLikelihoodLoss", classLossFactory(false))
	Register(graph.DomainONNX, "SoftmaxCrossEntropyLoss", classLossFactory(true))
	Register(graph.DomainGotrain, "SoftmaxCrossEntropy", classLossFactory(true))
	Register(graph.DomainGotrain, "SoftmaxCrossEntropyGrad", sceGradFactory)
	Register(graph.DomainGotrain, "BCEWithLogits", bceFactory(false))
	Register(graph.DomainGotrain, "BCEWithLogitsGrad", bceFactory(true))
}

// classLoss holds what the forward and gradient kernels share.
type classLoss struct {
	p          *Prep
	n, c, d    int
	reduction  string
	hasIgnore  bool
	ignore     int64
	smoothing  float64
	softLabels bool
	labels     []int64 // class indices, converted from int32 where needed
}

func newClassLoss(p *Prep, scores []int, labelsIn int) (*classLoss, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	red, err := graph.LossReduction(p.Node)
	if err != nil {
		return nil, err
	}
	if len(scores) < 2 {
		return nil, Errorf(p, "scores have shape %v; want [N, C, d1, ...]", scores)
	}
	cl := &classLoss{p: p, n: scores[0], c: scores[1], d: tensor.NumElements(scores[2:]), reduction: red}
	if a := p.Node.Attr("ignore_index"); a != nil {
		cl.hasIgnore, cl.ignore = true, a.I
	}
	cl.smoothing = float64(p.Node.AttrFloat("label_smoothing", 0))
	lt := p.In[labelsIn]
	cl.softLabels = lt.DType.IsFloat()
	ls := p.InShape(labelsIn)
	if cl.softLabels {
		if !tensor.SameShape(ls, scores) {
			return nil, Errorf(p, "soft labels have shape %v; want the scores' shape %v", ls, scores)
		}
	} else {
		want := append([]int{scores[0]}, scores[2:]...)
		if !tensor.SameShape(ls, want) {
			return nil, Errorf(p, "labels have shape %v; want %v", ls, want)
		}
		if lt.DType != tensor.Int64 && lt.DType != tensor.Int32 {
			return nil, Errorf(p, "labels have dtype %v; want int32 or int64", lt.DType)
		}
		cl.labels = make([]int64, cl.n*cl.d)
	}
	if wi := labelsIn + 1; wi < len(p.In) && p.In[wi] != nil {
		if s := p.InShape(wi); len(s) != 1 || s[0] != cl.c {
			return nil, Errorf(p, "weights have shape %v; want [%d]", s, cl.c)
		}
	}
	return cl, nil
}

// loadLabels reads the class indices and checks them against C.
func (cl *classLoss) loadLabels(t *tensor.Tensor) error {
	switch d := t.Data().(type) {
	case []int64:
		copy(cl.labels, d)
	case []int32:
		for i, v := range d[:len(cl.labels)] {
			cl.labels[i] = int64(v)
		}
	default:
		return Errorf(cl.p, "labels have dtype %v; want int32 or int64", t.DType())
	}
	for i, t := range cl.labels {
		if cl.hasIgnore && t == cl.ignore {
			continue
		}
		if t < 0 || t >= int64(cl.c) {
			return Errorf(cl.p, "label %d at position %d is outside [0, %d)", t, i, cl.c)
		}
	}
	return nil
}

func (cl *classLoss) ignored(t int64) bool { return cl.hasIgnore && t == cl.ignore }

// weightOf returns w[c], 1 without weights.
func weightOf[T elemFloat](w []T, c int) float64 {
	if w == nil {
		return 1
	}
	return float64(w[c])
}

// optionalData returns input i's data or nil when the input is absent.
func optionalData[T any](p *Prep, in []*tensor.Tensor, i int, what string) ([]T, error) {
	if i >= len(in) || in[i] == nil {
		return nil, nil
	}
	return dataOf[T](p, in[i], what)
}

func classLossFactory(softmax bool) Factory {
	return floatFactory(func(p *Prep) (Kernel, error) { return classLossK[float32](p, softmax) },
		func(p *Prep) (Kernel, error) { return classLossK[float64](p, softmax) })
}

// classLossK computes the loss (output 0) and, for the softmax ops, the
// log-probabilities (output 1, or scratch when that output is not used).
func classLossK[T elemFloat](p *Prep, softmax bool) (Kernel, error) {
	scores := p.InShape(0)
	cl, err := newClassLoss(p, scores, 1)
	if err != nil {
		return nil, err
	}
	if cl.softLabels && !softmax {
		return nil, Errorf(p, "labels have dtype %v; want int32 or int64", p.In[1].DType)
	}
	var scratch []T
	if softmax && (len(p.Out) < 2 || p.Out[1] == nil || len(p.Node.Outputs) < 2 || p.Node.Outputs[1] == "") {
		scratch = make([]T, tensor.NumElements(scores))
	}
	perPos := make([]float64, cl.n*cl.d)
	// The log-softmax chunk function is made once and reads the call's
	// slices through these variables, so a run allocates nothing.
	var x, lp []T
	c, d := cl.c, cl.d
	logSoftmax := func(lo, hi int) {
		for j := lo; j < hi; j++ {
			base := (j/d)*c*d + j%d
			logSoftmaxGroup(lp[base:base+(c-1)*d+1], x[base:base+(c-1)*d+1], nil, d)
		}
	}
	return func(in, out []*tensor.Tensor) error {
		defer func() { x, lp = nil, nil }()
		var err error
		if x, err = dataOf[T](p, in[0], "input 0 (scores)"); err != nil {
			return err
		}
		w, err := optionalData[T](p, in, 2, "input 2 (weights)")
		if err != nil {
			return err
		}
		loss, err := dataOf[T](p, out[0], "output 0")
		if err != nil {
			return err
		}
		lp = x
		if softmax {
			lp = scratch
			if lp == nil {
				if lp, err = dataOf[T](p, out[1], "output 1 (log_prob)"); err != nil {
					return err
				}
			}
			p.Pool.For(cl.n*d, max(1, ewGrain/4/max(c, 1)), logSoftmax)
		}
		var q []T
		if cl.softLabels {
			if q, err = dataOf[T](p, in[1], "input 1 (soft labels)"); err != nil {
				return err
			}
		} else if err := cl.loadLabels(in[1]); err != nil {
			return err
		}
		denom := positionLosses(cl, perPos, lp, q, w)
		switch cl.reduction {
		case "none":
			for i, v := range perPos {
				loss[i] = T(v)
			}
		case "sum", "mean":
			s := 0.0
			for _, v := range perPos {
				s += v
			}
			if cl.reduction == "mean" {
				s /= denom
			}
			loss[0] = T(s)
		}
		return nil
	}, nil
}

// positionLosses fills each position's loss and returns the divisor of
// "mean".
func positionLosses[T elemFloat](cl *classLoss, out []float64, lp, q, w []T) float64 {
	c, d, e := cl.c, cl.d, cl.smoothing
	denom := 0.0
	for j := range out {
		base := (j/d)*c*d + j%d
		if cl.softLabels {
			s := 0.0
			for k := 0; k < c; k++ {
				t := (1-e)*float64(q[base+k*d]) + e/float64(c)
				s -= weightOf(w, k) * t * float64(lp[base+k*d])
			}
			out[j] = s
			denom++
			continue
		}
		t := cl.labels[j]
		if cl.ignored(t) {
			out[j] = 0
			continue
		}
		wt := weightOf(w, int(t))
		l := -wt * float64(lp[base+int(t)*d])
		if e != 0 {
			smooth := 0.0
			for k := 0; k < c; k++ {
				smooth -= weightOf(w, k) * float64(lp[base+k*d])
			}
			l = (1-e)*l + e/float64(c)*smooth
		}
		out[j] = l
		denom += wt
	}
	return denom
}

// ---- SoftmaxCrossEntropyGrad(dLoss, log_prob, labels[, weights]) ----

func sceGradFactory(p *Prep) (Kernel, error) {
	dt := p.In[1].DType
	if isHalf(dt) {
		return viaFloat32(p, sceGradFactory)
	}
	switch dt {
	case tensor.Float32:
		return sceGradK[float32](p)
	case tensor.Float64:
		return sceGradK[float64](p)
	}
	return nil, Unsupported(p, "SoftmaxCrossEntropyGrad of %v", dt)
}

// sceGradK differentiates the loss with respect to the scores. With
// p = exp(log_prob), W = sum_c w[c] and g the incoming gradient of position
// i (scaled by 1/denominator for "mean"):
//
//	class index t: g * ((1-e)*w[t]*(p_j - [j==t]) + e/C*(W*p_j - w[j]))
//	soft target q': g * (p_j * sum_c w[c]*q'[c] - w[j]*q'[j])
func sceGradK[T elemFloat](p *Prep) (Kernel, error) {
	scores := p.InShape(1)
	cl, err := newClassLoss(p, scores, 2)
	if err != nil {
		return nil, err
	}
	nd := cl.n * cl.d
	if want := map[bool]int{true: nd, false: 1}[cl.reduction == "none"]; tensor.NumElements(p.InShape(0)) != want {
		return nil, Errorf(p, "dLoss has shape %v; reduction %q wants %d elements", p.InShape(0), cl.reduction, want)
	}
	// The chunk function is made once and reads the call's slices and
	// scalars through these variables, so a run allocates nothing.
	var g, lp, w, q, dx []T
	var scale, wsum float64
	c, d, e := cl.c, cl.d, cl.smoothing
	chunk := func(lo, hi int) {
		for j := lo; j < hi; j++ {
			base := (j/d)*c*d + j%d
			gj := scale
			if cl.reduction == "none" {
				gj *= float64(g[j])
			} else {
				gj *= float64(g[0])
			}
			if cl.softLabels {
				wq := 0.0
				for k := 0; k < c; k++ {
					wq += weightOf(w, k) * ((1-e)*float64(q[base+k*d]) + e/float64(c))
				}
				for k := 0; k < c; k++ {
					i := base + k*d
					qk := (1-e)*float64(q[i]) + e/float64(c)
					dx[i] = T(gj * (math.Exp(float64(lp[i]))*wq - weightOf(w, k)*qk))
				}
				continue
			}
			t := cl.labels[j]
			if cl.ignored(t) {
				for k := 0; k < c; k++ {
					dx[base+k*d] = 0
				}
				continue
			}
			wt := weightOf(w, int(t))
			for k := 0; k < c; k++ {
				i := base + k*d
				pk := math.Exp(float64(lp[i]))
				hard := pk
				if k == int(t) {
					hard--
				}
				v := (1 - e) * wt * hard
				if e != 0 {
					v += e / float64(c) * (wsum*pk - weightOf(w, k))
				}
				dx[i] = T(gj * v)
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		defer func() { g, lp, w, q, dx = nil, nil, nil, nil, nil }()
		var err error
		if g, err = dataOf[T](p, in[0], "input 0 (dLoss)"); err != nil {
			return err
		}
		if lp, err = dataOf[T](p, in[1], "input 1 (log_prob)"); err != nil {
			return err
		}
		if w, err = optionalData[T](p, in, 3, "input 3 (weights)"); err != nil {
			return err
		}
		if dx, err = dataOf[T](p, out[0], "output 0"); err != nil {
			return err
		}
		q = nil
		if cl.softLabels {
			if q, err = dataOf[T](p, in[2], "input 2 (soft labels)"); err != nil {
				return err
			}
		} else if err := cl.loadLabels(in[2]); err != nil {
			return err
		}
		scale = 1.0
		if cl.reduction == "mean" {
			denom := 0.0
			if cl.softLabels {
				denom = float64(nd)
			} else {
				for _, t := range cl.labels {
					if !cl.ignored(t) {
						denom += weightOf(w, int(t))
					}
				}
			}
			scale = 1 / denom
		}
		wsum = 0.0
		for k := 0; k < c; k++ {
			wsum += weightOf(w, k)
		}
		p.Pool.For(nd, max(1, ewGrain/4/max(c, 1)), chunk)
		return nil
	}, nil
}

// ---- BCEWithLogits(logits, targets) and its gradient ----

func bceFactory(grad bool) Factory {
	var self Factory
	self = func(p *Prep) (Kernel, error) {
		xi := 0
		if grad {
			xi = 1
		}
		dt := p.In[xi].DType
		if isHalf(dt) {
			return viaFloat32(p, self)
		}
		switch dt {
		case tensor.Float32:
			return bceK[float32](p, grad)
		case tensor.Float64:
			return bceK[float64](p, grad)
		}
		return nil, Unsupported(p, "%s of %v", p.Node.OpType, dt)
	}
	return self
}

// bceK: loss = max(x,0) - x*t + log(1+exp(-|x|)), stable for any x; its
// gradient is sigmoid(x) - t, times the incoming gradient (and 1/count for
// "mean").
func bceK[T elemFloat](p *Prep, grad bool) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	red, err := graph.LossReduction(p.Node)
	if err != nil {
		return nil, err
	}
	xi := 0
	if grad {
		xi = 1
	}
	xs := p.InShape(xi)
	if !tensor.SameShape(xs, p.InShape(xi+1)) {
		return nil, Errorf(p, "logits have shape %v but targets have %v", xs, p.InShape(xi+1))
	}
	count := tensor.NumElements(xs)
	if grad {
		want := 1
		if red == "none" {
			want = count
		}
		if tensor.NumElements(p.InShape(0)) != want {
			return nil, Errorf(p, "dLoss has shape %v; reduction %q wants %d elements", p.InShape(0), red, want)
		}
	}
	// The chunk functions are made once and read the call's slices and
	// scale through these variables, so a run allocates nothing.
	var x, t, r, g []T
	var scale float64
	elem := func(i int) float64 {
		v := float64(x[i])
		return max(v, 0) - v*float64(t[i]) + math.Log1p(math.Exp(-math.Abs(v)))
	}
	gradChunk := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			gi := float64(g[0])
			if red == "none" {
				gi = float64(g[i])
			}
			r[i] = T(scale * gi * (sigmoid(float64(x[i])) - float64(t[i])))
		}
	}
	lossChunk := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			r[i] = T(elem(i))
		}
	}
	return func(in, out []*tensor.Tensor) error {
		defer func() { x, t, r, g = nil, nil, nil, nil }()
		var err error
		if x, err = dataOf[T](p, in[xi], "logits"); err != nil {
			return err
		}
		if t, err = dataOf[T](p, in[xi+1], "targets"); err != nil {
			return err
		}
		if r, err = dataOf[T](p, out[0], "output 0"); err != nil {
			return err
		}
		if grad {
			if g, err = dataOf[T](p, in[0], "input 0 (dLoss)"); err != nil {
				return err
			}
			scale = 1.0
			if red == "mean" {
				scale = 1 / float64(count)
			}
			p.Pool.For(count, ewGrain/4, gradChunk)
			return nil
		}
		if red == "none" {
			p.Pool.For(count, ewGrain/4, lossChunk)
			return nil
		}
		s := 0.0
		for i := 0; i < count; i++ {
			s += elem(i)
		}
		if red == "mean" {
			s /= float64(count)
		}
		r[0] = T(s)
		return nil
	}, nil
}
