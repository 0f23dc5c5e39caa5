package cuda

import (
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Optimizer updates (kernels/optim.cu): SGDUpdate (plain, momentum,
// Nesterov), AdamUpdate (Adam and AdamW, PyTorch's or Keras's epsilon),
// RMSpropUpdate, AdagradUpdate and GlobalNormScale, with the CPU backend's
// attribute checks. lr, step and grad_scale stay on the device: the kernels
// read them, so a step needs no host round trip for its scalars.

var optMod = newModule("optim", "optim.cu")

var (
	optSGD = optMod.Def("opt_sgd_f32", "float* po, float* bo, const float* p, const float* g, const float* b, const float* lr_in, const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd, double dec_wd, float momentum, float dampening, int nesterov, int* status",
		"opt_sgd(po, bo, p, g, b, lr_in, step_in, gscale, n, lr_scale, clip, wd, dec_wd, momentum, dampening, nesterov, status);")
	optAdam = optMod.Def("opt_adam_f32", "float* po, float* mo, float* vo, const float* p, const float* g, const float* m, const float* v, const float* lr_in, const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd, double dec_wd, float b1, float b2, float omb1, float omb2, float eps, int keras, int* status",
		"opt_adam(po, mo, vo, p, g, m, v, lr_in, step_in, gscale, n, lr_scale, clip, wd, dec_wd, b1, b2, omb1, omb2, eps, keras, status);")
	optRMS = optMod.Def("opt_rmsprop_f32", "float* po, float* sqo, float* bo, float* gao, const float* p, const float* g, const float* sq, const float* b, const float* ga, const float* lr_in, const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd, double dec_wd, float alpha, float oma, float eps, float momentum, int centered, int* status",
		"opt_rmsprop(po, sqo, bo, gao, p, g, sq, b, ga, lr_in, step_in, gscale, n, lr_scale, clip, wd, dec_wd, alpha, oma, eps, momentum, centered, status);")
	optAdagrad = optMod.Def("opt_adagrad_f32", "float* po, float* so, const float* p, const float* g, const float* sum, const float* lr_in, const i64* step_in, const float* gscale, int n, double lr_scale, float clip, float wd, double dec_wd, double lr_decay, float eps, int* status",
		"opt_adagrad(po, so, p, g, sum, lr_in, step_in, gscale, n, lr_scale, clip, wd, dec_wd, lr_decay, eps, status);")
	normPartial = optMod.Def("gns_partial", "double* partial, const float* x, int n, int first", "norm_partial(partial, x, n, first);")
	normFinish  = optMod.Def("gns_finish", "float* scale, float* norm, const double* partial, int nblocks, double max_norm", "norm_finish(scale, norm, partial, nblocks, max_norm);")
)

func init() {
	Register(graph.DomainGotrain, "SGDUpdate", sgdFactory)
	Register(graph.DomainGotrain, "AdamUpdate", adamFactory)
	Register(graph.DomainGotrain, "RMSpropUpdate", rmspropFactory)
	Register(graph.DomainGotrain, "AdagradUpdate", adagradFactory)
	Register(graph.DomainGotrain, "GlobalNormScale", globalNormFactory)
}

// updateCommon is what the update factories share (see the CPU's
// parseCommon, whose checks these repeat).
type updateCommon struct {
	n       int
	clip    float32
	wd      float32 // coupled
	decWD   float64
	lrScale float64
	lrAt    int
}

func parseUpdate(p *Prep, nLike, lrAt, stepAt int) (*updateCommon, error) {
	n := p.Node
	c := &updateCommon{lrAt: lrAt, lrScale: float64(n.AttrFloat("lr_scale", 1))}
	if err := needF32(p, 0, "param"); err != nil {
		return nil, err
	}
	var err error
	if c.n, err = numel(p, p.InShape(0), "param"); err != nil {
		return nil, err
	}
	for i := 1; i < nLike; i++ {
		if !p.hasIn(i) || tensor.NumElements(p.InShape(i)) != c.n || p.In[i].DType != tensor.Float32 {
			return nil, Errorf(p, "input %d (%s) must be float32 with the parameter's %d elements", i, n.Input(i), c.n)
		}
	}
	if !p.hasIn(lrAt) || p.In[lrAt].DType != tensor.Float32 || tensor.NumElements(p.InShape(lrAt)) != 1 {
		return nil, Errorf(p, "input %d (lr) must be a float32 scalar", lrAt)
	}
	if !p.hasIn(stepAt) || p.In[stepAt].DType != tensor.Int64 || tensor.NumElements(p.InShape(stepAt)) != 1 {
		return nil, Errorf(p, "input %d (step) must be an int64 scalar", stepAt)
	}
	if gs := stepAt + 1; p.hasIn(gs) && (p.In[gs].DType != tensor.Float32 || tensor.NumElements(p.InShape(gs)) != 1) {
		return nil, Errorf(p, "input %d (grad_scale) must be a float32 scalar", gs)
	}
	c.clip = n.AttrFloat("clip_value", 0)
	if c.clip < 0 {
		return nil, Errorf(p, "attribute clip_value must be >= 0, got %g", c.clip)
	}
	wd := n.AttrFloat("weight_decay", 0)
	if wd < 0 {
		return nil, Errorf(p, "attribute weight_decay must be >= 0, got %g", wd)
	}
	if n.AttrInt("decoupled", 0) != 0 {
		c.decWD = float64(wd)
	} else {
		c.wd = wd
	}
	if c.lrScale < 0 {
		return nil, Errorf(p, "attribute lr_scale must be >= 0, got %g", c.lrScale)
	}
	return c, nil
}

func stepStatus(p *Prep) func(int32) error {
	return func(int32) error {
		return Errorf(p, "step (the 1-based index of this update) must be >= 1")
	}
}

// grid of an update: n elements (at least one block, so the step check runs).
func gridUpd(n int) Dim3 { return grid1(max(n, 1)) }

func sgdFactory(p *Prep) (*Kernel, error) {
	n := p.Node
	c, err := parseUpdate(p, 2, 2, 3)
	if err != nil {
		return nil, err
	}
	if dwd := n.AttrFloat("decoupled_weight_decay", 0); dwd < 0 {
		return nil, Errorf(p, "attribute decoupled_weight_decay must be >= 0, got %g", dwd)
	} else if dwd > 0 {
		c.decWD = float64(dwd)
	}
	mom, damp := n.AttrFloat("momentum", 0), n.AttrFloat("dampening", 0)
	nesterov := n.AttrInt("nesterov", 0) != 0
	if mom < 0 || damp < 0 || damp > 1 {
		return nil, Errorf(p, "momentum (%g) must be >= 0 and dampening (%g) in [0, 1]", mom, damp)
	}
	if nesterov && (mom <= 0 || damp != 0) {
		return nil, Errorf(p, "nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)", mom, damp)
	}
	if mom != 0 {
		if !p.hasIn(5) || tensor.NumElements(p.InShape(5)) != c.n {
			return nil, Errorf(p, "momentum %g needs momentum_buf (input 5) shaped like the parameter", mom)
		}
		if !p.hasOut(1) {
			return nil, Errorf(p, "momentum %g needs output 1 (momentum_buf_out)", mom)
		}
	}
	nest := 0
	if nesterov {
		nest = 1
	}
	return &Kernel{Status: stepStatus(p), Run: func(k *Call) error {
		return k.S.Launch(optSGD, gridUpd(c.n), block1, 0, k.A(P(k.Out[0]), P(optOut(k, 1)), P(k.In[0]), P(k.In[1]), P(optIn(k, 5)),
			P(k.In[2]), P(k.In[3]), P(optIn(k, 4)), I(c.n), D(c.lrScale), F(c.clip), F(c.wd), D(c.decWD), F(mom), F(damp), I(nest), P(k.Status)))
	}}, nil
}

func adamFactory(p *Prep) (*Kernel, error) {
	n := p.Node
	c, err := parseUpdate(p, 4, 4, 5)
	if err != nil {
		return nil, err
	}
	b1, b2 := n.AttrFloat("beta1", 0.9), n.AttrFloat("beta2", 0.999)
	eps := n.AttrFloat("epsilon", 1e-8)
	if !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) {
		return nil, Errorf(p, "beta1 (%g) and beta2 (%g) must be in [0, 1)", b1, b2)
	}
	if eps < 0 {
		return nil, Errorf(p, "attribute epsilon must be >= 0, got %g", eps)
	}
	keras := 0
	switch mode := n.AttrString("eps_mode", "pytorch"); mode {
	case "pytorch":
	case "keras":
		keras = 1
	default:
		return nil, Errorf(p, "attribute eps_mode is %q; expected \"pytorch\" or \"keras\"", mode)
	}
	for i := 0; i < 3; i++ {
		if !p.hasOut(i) {
			return nil, Errorf(p, "output %d is required", i)
		}
	}
	omb1, omb2 := float32(1-float64(b1)), float32(1-float64(b2))
	return &Kernel{Status: stepStatus(p), Run: func(k *Call) error {
		return k.S.Launch(optAdam, gridUpd(c.n), block1, 0, k.A(P(k.Out[0]), P(k.Out[1]), P(k.Out[2]), P(k.In[0]), P(k.In[1]), P(k.In[2]), P(k.In[3]),
			P(k.In[4]), P(k.In[5]), P(optIn(k, 6)), I(c.n), D(c.lrScale), F(c.clip), F(c.wd), D(c.decWD),
			F(b1), F(b2), F(omb1), F(omb2), F(eps), I(keras), P(k.Status)))
	}}, nil
}

func rmspropFactory(p *Prep) (*Kernel, error) {
	n := p.Node
	c, err := parseUpdate(p, 3, 3, 4)
	if err != nil {
		return nil, err
	}
	alpha := n.AttrFloat("alpha", 0.99)
	eps, mom := n.AttrFloat("eps", 1e-8), n.AttrFloat("momentum", 0)
	centered := n.AttrInt("centered", 0) != 0
	if !(alpha >= 0 && alpha <= 1) || eps < 0 || mom < 0 {
		return nil, Errorf(p, "alpha (%g) must be in [0, 1], eps (%g) and momentum (%g) >= 0", alpha, eps, mom)
	}
	need := func(in, out int, what string) error {
		if !p.hasIn(in) || tensor.NumElements(p.InShape(in)) != c.n {
			return Errorf(p, "%s needs input %d shaped like the parameter", what, in)
		}
		if !p.hasOut(out) {
			return Errorf(p, "%s needs output %d", what, out)
		}
		return nil
	}
	if mom > 0 {
		if err := need(6, 2, "momentum > 0"); err != nil {
			return nil, err
		}
	}
	cent := 0
	if centered {
		cent = 1
		if err := need(7, 3, "centered"); err != nil {
			return nil, err
		}
	}
	oma := float32(1 - float64(alpha))
	return &Kernel{Status: stepStatus(p), Run: func(k *Call) error {
		return k.S.Launch(optRMS, gridUpd(c.n), block1, 0, k.A(P(k.Out[0]), P(k.Out[1]), P(optOut(k, 2)), P(optOut(k, 3)),
			P(k.In[0]), P(k.In[1]), P(k.In[2]), P(optIn(k, 6)), P(optIn(k, 7)), P(k.In[3]), P(k.In[4]), P(optIn(k, 5)),
			I(c.n), D(c.lrScale), F(c.clip), F(c.wd), D(c.decWD), F(alpha), F(oma), F(eps), F(mom), I(cent), P(k.Status)))
	}}, nil
}

func adagradFactory(p *Prep) (*Kernel, error) {
	n := p.Node
	c, err := parseUpdate(p, 3, 3, 4)
	if err != nil {
		return nil, err
	}
	lrDecay, eps := float64(n.AttrFloat("lr_decay", 0)), n.AttrFloat("eps", 1e-10)
	if lrDecay < 0 || eps < 0 {
		return nil, Errorf(p, "lr_decay (%g) and eps (%g) must be >= 0", lrDecay, eps)
	}
	return &Kernel{Status: stepStatus(p), Run: func(k *Call) error {
		return k.S.Launch(optAdagrad, gridUpd(c.n), block1, 0, k.A(P(k.Out[0]), P(k.Out[1]), P(k.In[0]), P(k.In[1]), P(k.In[2]),
			P(k.In[3]), P(k.In[4]), P(optIn(k, 5)), I(c.n), D(c.lrScale), F(c.clip), F(c.wd), D(c.decWD), D(lrDecay), F(eps), P(k.Status)))
	}}, nil
}

const normBlockSize = 16384 // NORM_BLOCK in optim.cu

func globalNormFactory(p *Prep) (*Kernel, error) {
	maxNorm := float64(p.Node.AttrFloat("max_norm", 0))
	if !(maxNorm > 0) {
		return nil, Errorf(p, "attribute max_norm must be positive, got %g", maxNorm)
	}
	sizes := make([]int, len(p.In))
	first := make([]int, len(p.In))
	blocks := 0
	for i := range p.In {
		if err := needF32(p, i, "a gradient"); err != nil {
			return nil, err
		}
		n, err := numel(p, p.InShape(i), "a gradient")
		if err != nil {
			return nil, err
		}
		sizes[i], first[i] = n, blocks
		blocks += (n + normBlockSize - 1) / normBlockSize
	}
	return &Kernel{Scratch: []int64{8 * int64(max(blocks, 1))}, Run: func(c *Call) error {
		for i, n := range sizes {
			if n == 0 {
				continue
			}
			nb := (n + normBlockSize - 1) / normBlockSize
			if err := c.S.Launch(normPartial, Dim3{nb, 1, 1}, block1, 0, c.A(P(c.Scratch[0]), P(c.In[i]), I(n), I(first[i]))); err != nil {
				return err
			}
		}
		return c.S.Launch(normFinish, Dim3{1, 1, 1}, Dim3{1, 1, 1}, 0, c.A(P(c.Out[0]), P(optOut(c, 1)), P(c.Scratch[0]), I(blocks), D(maxNorm)))
	}}, nil
}
