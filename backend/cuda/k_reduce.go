package cuda

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Reductions, ArgMax/ArgMin, Softmax/LogSoftmax and their gradients, and
// the losses (kernels/reduce.cu). float32 only: the graphs gotrain trains
// are float32, and labels int64 or int32.

var rdMod = newModule("reduce", "reduce.cu")

var rdFuncs = map[string]*Func{}

func rdDef(key, name, params, body string) { rdFuncs[key] = rdMod.Def(name, params, body) }

var reduceKinds = map[string]string{"ReduceSum": "R_SUM", "ReduceMean": "R_MEAN", "ReduceMax": "R_MAX", "ReduceMin": "R_MIN",
	"ReduceProd": "R_PROD", "ReduceSumSquare": "R_SUMSQ", "ReduceL1": "R_L1", "ReduceL2": "R_L2"}

func init() {
	for op, kind := range reduceKinds {
		rdDef(op, "rd_"+op+"_f32", "float* y, const float* x, const int* geo, int m, int count",
			fmt.Sprintf("rd_reduce<float, %s>(y, x, geo, m, count);", kind))
		Register(graph.DomainONNX, op, reduceFactory(op))
	}
	Register(graph.DomainGotrain, "SumToShape", sumToShapeFactory)
	rdDef("Arg", "rd_arg_f32", "i64* y, const float* x, int groups, int n, int inner, int isMax, int last",
		"rd_arg<float>(y, x, groups, n, inner, isMax, last);")
	Register(graph.DomainONNX, "ArgMax", argFactory(true))
	Register(graph.DomainONNX, "ArgMin", argFactory(false))

	rdDef("Softmax", "sm_softmax_f32", "float* y, const float* x, int groups, int n, int inner", "sm_softmax<float>(y, x, groups, n, inner);")
	rdDef("LogSoftmax", "sm_log_softmax_f32", "float* y, const float* x, int groups, int n, int inner", "sm_log_softmax<float>(y, x, groups, n, inner);")
	rdDef("SoftmaxGrad", "sm_softmax_grad_f32", "float* dx, const float* dy, const float* y, int groups, int n, int inner",
		"sm_softmax_grad<float>(dx, dy, y, groups, n, inner);")
	rdDef("LogSoftmaxGrad", "sm_log_softmax_grad_f32", "float* dx, const float* dy, const float* y, int groups, int n, int inner",
		"sm_log_softmax_grad<float>(dx, dy, y, groups, n, inner);")
	Register(graph.DomainONNX, "Softmax", softmaxFactory("Softmax"))
	Register(graph.DomainONNX, "LogSoftmax", softmaxFactory("LogSoftmax"))
	Register(graph.DomainGotrain, "SoftmaxGrad", softmaxFactory("SoftmaxGrad"))
	Register(graph.DomainGotrain, "LogSoftmaxGrad", softmaxFactory("LogSoftmaxGrad"))

	for _, l := range []string{"i64", "i32"} {
		t := ctypeOf(l)
		rdDef("CE/"+l, "ce_forward_f32_"+l, fmt.Sprintf("float* lp, double* per, double* wden, float* loss_none, const float* x, const %s* labels, const float* q, const float* w, int positions, int c, int d, double e, int hasIgnore, i64 ignore, int* status", t),
			fmt.Sprintf("ce_forward<float, %s>(lp, per, wden, loss_none, x, labels, q, w, positions, c, d, e, hasIgnore, ignore, status);", t))
		rdDef("CEScale/"+l, "ce_grad_scale_f32_"+l, fmt.Sprintf("double* out, const %s* labels, const float* w, int positions, int c, int soft, int mean, int hasIgnore, i64 ignore, int* status", t),
			fmt.Sprintf("ce_grad_scale<%s, float>(out, labels, w, positions, c, soft, mean, hasIgnore, ignore, status);", t))
		rdDef("CEGrad/"+l, "ce_grad_f32_"+l, fmt.Sprintf("float* dx, const float* g, const float* lp, const %s* labels, const float* q, const float* w, const double* sc, int positions, int c, int d, double e, int none, int hasIgnore, i64 ignore", t),
			fmt.Sprintf("ce_grad<float, %s>(dx, g, lp, labels, q, w, sc, positions, c, d, e, none, hasIgnore, ignore);", t))
	}
	rdDef("CETotal", "ce_total_f32", "float* loss, const double* per, const double* wden, int positions, int mean", "ce_total<float>(loss, per, wden, positions, mean);")
	Register(graph.DomainGotrain, "SoftmaxCrossEntropy", sceFactory)
	Register(graph.DomainONNX, "SoftmaxCrossEntropyLoss", sceFactory)
	Register(graph.DomainGotrain, "SoftmaxCrossEntropyGrad", sceGradFactory)

	rdDef("BCENone", "bce_none_f32", "float* r, const float* x, const float* t, int n", "bce_none<float>(r, x, t, n);")
	rdDef("BCETotal", "bce_total_f32", "float* r, const float* x, const float* t, int n, int mean", "bce_total<float>(r, x, t, n, mean);")
	rdDef("BCEGrad", "bce_grad_f32", "float* r, const float* g, const float* x, const float* t, int n, int none, double scale",
		"bce_grad<float>(r, g, x, t, n, none, scale);")
	Register(graph.DomainGotrain, "BCEWithLogits", bceFactory(false))
	Register(graph.DomainGotrain, "BCEWithLogitsGrad", bceFactory(true))
}

func needF32(p *Prep, i int, what string) error {
	if !p.hasIn(i) || p.In[i].DType != tensor.Float32 {
		t := "absent"
		if p.hasIn(i) {
			t = p.In[i].DType.String()
		}
		return Unsupported(p, "%s of dtype %s (kernels take float32)", what, t)
	}
	return nil
}

// reduceGeo lays out the kept and reduced dims of xs (keep: xs with 1 on
// reduced dims) for rd_reduce.
func reduceGeo(xs, keep []int) ([]int32, int) {
	st := contiguousStrides(xs)
	var kd, ks, rd, rs []int
	count := 1
	for d := range xs {
		if keep[d] == xs[d] {
			kd, ks = append(kd, xs[d]), append(ks, st[d])
		} else {
			rd, rs = append(rd, xs[d]), append(rs, st[d])
			count *= xs[d]
		}
	}
	g := stridedGeo(kd, ks)
	g = append(g, stridedGeo(rd, rs)...)
	return g, count
}

func reduceKernel(p *Prep, f *Func, xs, keep []int) (*Kernel, error) {
	m, err := numel(p, keep, "output 0")
	if err != nil {
		return nil, err
	}
	if _, err := numel(p, xs, "input 0"); err != nil {
		return nil, err
	}
	geo, count := reduceGeo(xs, keep)
	return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
		if m == 0 {
			return nil
		}
		return c.S.Launch(f, grid1(m), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.Consts[0]), I(m), I(count)))
	}}, nil
}

func reduceFactory(op string) Factory {
	return func(p *Prep) (*Kernel, error) {
		if err := needF32(p, 0, op); err != nil {
			return nil, err
		}
		xs := p.InShape(0)
		axes, noop, known, err := graph.ReduceAxes(p.Node, p.In, len(xs))
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, Errorf(p, "input 1 (axes) must be known when the kernel is prepared")
		}
		keep := append([]int{}, xs...)
		if noop {
			axes = nil
		}
		for _, a := range axes {
			keep[a] = 1
		}
		if tensor.NumElements(keep) != tensor.NumElements(p.OutShape(0)) {
			return nil, Errorf(p, "output shape %v does not match input %v reduced over %v", p.OutShape(0), xs, axes)
		}
		return reduceKernel(p, rdFuncs[op], xs, keep)
	}
}

// sumToShapeFactory sums X over the dims broadcasting to X's shape would
// have expanded, giving the output's shape.
func sumToShapeFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "SumToShape"); err != nil {
		return nil, err
	}
	xs, ys := p.InShape(0), p.OutShape(0)
	if len(ys) > len(xs) {
		return nil, Errorf(p, "input 0 of shape %v cannot be summed to the higher-rank shape %v", xs, ys)
	}
	keep := make([]int, len(xs))
	for i := range keep {
		keep[i] = 1
	}
	copy(keep[len(xs)-len(ys):], ys)
	for i := range keep {
		if keep[i] != xs[i] && keep[i] != 1 {
			return nil, Errorf(p, "input 0 of shape %v cannot be summed to shape %v", xs, ys)
		}
	}
	return reduceKernel(p, rdFuncs["ReduceSum"], xs, keep)
}

func argFactory(isMax bool) Factory {
	return func(p *Prep) (*Kernel, error) {
		if err := needF32(p, 0, p.Node.OpType); err != nil {
			return nil, err
		}
		xs := p.InShape(0)
		ax, err := graph.NormAxis(p.Node.AttrInt("axis", 0), len(xs))
		if err != nil {
			return nil, Errorf(p, "%v", err)
		}
		outer, n, inner := tensor.NumElements(xs[:ax]), xs[ax], tensor.NumElements(xs[ax+1:])
		if n == 0 && outer*inner > 0 {
			return nil, Errorf(p, "cannot take %s over an empty axis", p.Node.OpType)
		}
		if _, err := numel(p, xs, "input 0"); err != nil {
			return nil, err
		}
		groups := outer * inner
		last := int(p.Node.AttrInt("select_last_index", 0))
		f := rdFuncs["Arg"]
		isM := 0
		if isMax {
			isM = 1
		}
		return &Kernel{Run: func(c *Call) error {
			if groups == 0 {
				return nil
			}
			return c.S.Launch(f, grid1(groups), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), I(groups), I(n), I(inner), I(isM), I(last)))
		}}, nil
	}
}

func softmaxFactory(op string) Factory {
	return func(p *Prep) (*Kernel, error) {
		grad := op == "SoftmaxGrad" || op == "LogSoftmaxGrad"
		if err := needF32(p, 0, op); err != nil {
			return nil, err
		}
		shape := p.InShape(0)
		coerce := !grad && p.Opset > 0 && p.Opset < 13
		def := int64(-1)
		if coerce {
			def = 1
		}
		var outer, n, inner int
		if len(shape) == 0 {
			outer, n, inner = 1, 1, 1
		} else {
			a, err := graph.NormAxis(p.Node.AttrInt("axis", def), len(shape))
			if err != nil {
				return nil, Errorf(p, "%v", err)
			}
			if coerce {
				outer, n, inner = tensor.NumElements(shape[:a]), tensor.NumElements(shape[a:]), 1
			} else {
				outer, n, inner = tensor.NumElements(shape[:a]), shape[a], tensor.NumElements(shape[a+1:])
			}
		}
		if grad {
			if err := needF32(p, 1, op); err != nil {
				return nil, err
			}
			if !tensor.SameShape(shape, p.InShape(1)) {
				return nil, Errorf(p, "dY has shape %v but Y has %v", shape, p.InShape(1))
			}
		}
		if _, err := numel(p, shape, "input 0"); err != nil {
			return nil, err
		}
		groups := outer * inner
		f := rdFuncs[op]
		return &Kernel{Run: func(c *Call) error {
			if groups == 0 || n == 0 {
				return nil
			}
			if grad {
				return c.S.Launch(f, grid1(groups), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), I(groups), I(n), I(inner)))
			}
			return c.S.Launch(f, grid1(groups), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), I(groups), I(n), I(inner)))
		}}, nil
	}
}

// classLoss is the geometry and attributes the SoftmaxCrossEntropy kernels
// share.
type classLoss struct {
	positions, c, d int
	reduction       string
	hasIgnore       int
	ignore          int64
	smoothing       float64
	soft            bool
	labelSfx        string
}

func newClassLoss(p *Prep, scores []int, labelsIn int) (*classLoss, error) {
	red, err := graph.LossReduction(p.Node)
	if err != nil {
		return nil, err
	}
	if len(scores) < 2 {
		return nil, Errorf(p, "scores have shape %v; want [N, C, d1, ...]", scores)
	}
	if _, err := numel(p, scores, "scores"); err != nil {
		return nil, err
	}
	cl := &classLoss{c: scores[1], d: tensor.NumElements(scores[2:]), reduction: red, labelSfx: "i64"}
	cl.positions = scores[0] * cl.d
	if a := p.Node.Attr("ignore_index"); a != nil {
		cl.hasIgnore, cl.ignore = 1, a.I
	}
	cl.smoothing = float64(p.Node.AttrFloat("label_smoothing", 0))
	lt := p.In[labelsIn]
	ls := p.InShape(labelsIn)
	switch lt.DType {
	case tensor.Float32:
		cl.soft = true
		if !tensor.SameShape(ls, scores) {
			return nil, Errorf(p, "soft labels have shape %v; want the scores' shape %v", ls, scores)
		}
	case tensor.Int64, tensor.Int32:
		if lt.DType == tensor.Int32 {
			cl.labelSfx = "i32"
		}
		want := append([]int{scores[0]}, scores[2:]...)
		if !tensor.SameShape(ls, want) {
			return nil, Errorf(p, "labels have shape %v; want %v", ls, want)
		}
	default:
		return nil, Errorf(p, "labels have dtype %v; want int32 or int64 class indices or float32 targets", lt.DType)
	}
	if wi := labelsIn + 1; p.hasIn(wi) {
		if err := needF32(p, wi, "weights"); err != nil {
			return nil, err
		}
		if s := p.InShape(wi); len(s) != 1 || s[0] != cl.c {
			return nil, Errorf(p, "weights have shape %v; want [%d]", s, cl.c)
		}
	}
	return cl, nil
}

// labelStatus turns a loss kernel's status word into the error naming the
// bad label's position.
func labelStatus(p *Prep, c int) func(int32) error {
	return func(w int32) error {
		return Errorf(p, "the label at position %d is outside [0, %d)", w-1, c)
	}
}

func optIn(c *Call, i int) Ptr {
	if i < len(c.In) {
		return c.In[i]
	}
	return 0
}

func optOut(c *Call, i int) Ptr {
	if i < len(c.Out) {
		return c.Out[i]
	}
	return 0
}

// sceFactory: output 0 the loss, output 1 (optional) the log-probabilities.
func sceFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "scores"); err != nil {
		return nil, err
	}
	scores := p.InShape(0)
	cl, err := newClassLoss(p, scores, 1)
	if err != nil {
		return nil, err
	}
	fwd, total := rdFuncs["CE/"+cl.labelSfx], rdFuncs["CETotal"]
	nScores := int64(tensor.NumElements(scores))
	// Scratch: log-probabilities when output 1 is not wanted, per-position
	// losses and weights (double).
	k := &Kernel{Scratch: []int64{4 * nScores, 8 * int64(cl.positions), 8 * int64(cl.positions)}, Status: labelStatus(p, cl.c)}
	hasLP := p.hasOut(1)
	mean := 0
	if cl.reduction == "mean" {
		mean = 1
	}
	k.Run = func(c *Call) error {
		if cl.positions == 0 {
			return nil
		}
		lp := c.Scratch[0]
		if hasLP {
			lp = c.Out[1]
		}
		var labels, q, none Ptr
		if cl.soft {
			q = c.In[1]
		} else {
			labels = c.In[1]
		}
		if cl.reduction == "none" {
			none = c.Out[0]
		}
		err := c.S.Launch(fwd, grid1(cl.positions), block1, 0, c.A(P(lp), P(c.Scratch[1]), P(c.Scratch[2]), P(none), P(c.In[0]),
			P(labels), P(q), P(optIn(c, 2)), I(cl.positions), I(cl.c), I(cl.d), D(cl.smoothing), I(cl.hasIgnore), L(cl.ignore), P(c.Status)))
		if err != nil || cl.reduction == "none" {
			return err
		}
		return c.S.Launch(total, Dim3{1, 1, 1}, Dim3{1, 1, 1}, 0, c.A(P(c.Out[0]), P(c.Scratch[1]), P(c.Scratch[2]), I(cl.positions), I(mean)))
	}
	return k, nil
}

// sceGradFactory: SoftmaxCrossEntropyGrad(dLoss, log_prob, labels[, weights]).
func sceGradFactory(p *Prep) (*Kernel, error) {
	for i, what := range []string{"dLoss", "log_prob"} {
		if err := needF32(p, i, what); err != nil {
			return nil, err
		}
	}
	scores := p.InShape(1)
	cl, err := newClassLoss(p, scores, 2)
	if err != nil {
		return nil, err
	}
	want := 1
	if cl.reduction == "none" {
		want = cl.positions
	}
	if tensor.NumElements(p.InShape(0)) != want {
		return nil, Errorf(p, "dLoss has shape %v; reduction %q wants %d elements", p.InShape(0), cl.reduction, want)
	}
	scale, grad := rdFuncs["CEScale/"+cl.labelSfx], rdFuncs["CEGrad/"+cl.labelSfx]
	soft, mean, none := 0, 0, 0
	if cl.soft {
		soft = 1
	}
	if cl.reduction == "mean" {
		mean = 1
	}
	if cl.reduction == "none" {
		none = 1
	}
	return &Kernel{Scratch: []int64{16}, Status: labelStatus(p, cl.c), Run: func(c *Call) error {
		if cl.positions == 0 {
			return nil
		}
		var labels, q Ptr
		if cl.soft {
			q = c.In[2]
		} else {
			labels = c.In[2]
		}
		w := optIn(c, 3)
		err := c.S.Launch(scale, Dim3{1, 1, 1}, Dim3{1, 1, 1}, 0, c.A(P(c.Scratch[0]), P(labels), P(w), I(cl.positions), I(cl.c),
			I(soft), I(mean), I(cl.hasIgnore), L(cl.ignore), P(c.Status)))
		if err != nil {
			return err
		}
		return c.S.Launch(grad, grid1(cl.positions), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(labels), P(q), P(w),
			P(c.Scratch[0]), I(cl.positions), I(cl.c), I(cl.d), D(cl.smoothing), I(none), I(cl.hasIgnore), L(cl.ignore)))
	}}, nil
}

func bceFactory(grad bool) Factory {
	return func(p *Prep) (*Kernel, error) {
		red, err := graph.LossReduction(p.Node)
		if err != nil {
			return nil, err
		}
		xi := 0
		if grad {
			xi = 1
		}
		for i := 0; i <= xi+1; i++ {
			if err := needF32(p, i, p.Node.OpType); err != nil {
				return nil, err
			}
		}
		xs := p.InShape(xi)
		if !tensor.SameShape(xs, p.InShape(xi+1)) {
			return nil, Errorf(p, "logits have shape %v but targets have %v", xs, p.InShape(xi+1))
		}
		n, err := numel(p, xs, "logits")
		if err != nil {
			return nil, err
		}
		none := 0
		if red == "none" {
			none = 1
		}
		if grad {
			want := 1
			if none == 1 {
				want = n
			}
			if tensor.NumElements(p.InShape(0)) != want {
				return nil, Errorf(p, "dLoss has shape %v; reduction %q wants %d elements", p.InShape(0), red, want)
			}
			scale := 1.0
			if red == "mean" {
				scale = 1 / float64(n)
			}
			f := rdFuncs["BCEGrad"]
			return &Kernel{Run: func(c *Call) error {
				if n == 0 {
					return nil
				}
				return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(c.In[2]), I(n), I(none), D(scale)))
			}}, nil
		}
		if none == 1 {
			f := rdFuncs["BCENone"]
			return &Kernel{Run: func(c *Call) error {
				if n == 0 {
					return nil
				}
				return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), I(n)))
			}}, nil
		}
		f := rdFuncs["BCETotal"]
		mean := 0
		if red == "mean" {
			mean = 1
		}
		return &Kernel{Run: func(c *Call) error {
			return c.S.Launch(f, Dim3{1, 1, 1}, block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), I(n), I(mean)))
		}}, nil
	}
}
