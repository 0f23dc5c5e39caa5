package cpu

import (
	"fmt"
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Optimizer update kernels: the fused ai.gotrain update ops that package
// optim emits (SGDUpdate, AdamUpdate, RMSpropUpdate, AdagradUpdate,
// GlobalNormScale), and ONNX's ai.onnx.preview.training Adam, Momentum and
// Adagrad.
//
// Each fused update is one pass over the parameter. At every index it reads
// all inputs before writing any output, so the executor may give an output
// the buffer of any input of the same shape (updates run in place). The
// gradient is first prepared the same way by every op:
//
//	g = grad * grad_scale                    (grad_scale: input, default 1)
//	g = clamp(g, -clip_value, clip_value)    (when clip_value > 0)
//	g = g + weight_decay * param             (coupled L2, when not decoupled)
//
// and lr is the lr input times the lr_scale attribute. Decoupled decay
// (AdamW's) multiplies the parameter by 1 - lr*weight_decay before the
// update. The rest follows torch.optim:
//
//	SGD:     buf = g at step 1, else momentum*buf + (1-dampening)*g
//	         d = nesterov ? g + momentum*buf : buf  (d = g without momentum)
//	         param -= lr*d
//	Adam:    m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
//	         pytorch: param -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//	         keras:   param -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)
//	RMSprop: sq = alpha*sq + (1-alpha)*g*g
//	         centered: ga = alpha*ga + (1-alpha)*g; avg = sqrt(max(sq - ga*ga, 0)) + eps
//	         else avg = sqrt(sq) + eps
//	         momentum > 0: buf = momentum*buf + g/avg; param -= lr*buf
//	         else param -= lr*g/avg
//	Adagrad: sum += g*g; param -= lr/(1+(t-1)*lr_decay) * g / (sqrt(sum) + eps)
//
// Arithmetic is float32 per element with the step's scalars (bias
// corrections, decayed rates) computed in float64, as PyTorch does.

func init() {
	Register(graph.DomainGotrain, "SGDUpdate", newSGDUpdate)
	Register(graph.DomainGotrain, "AdamUpdate", newAdamUpdate)
	Register(graph.DomainGotrain, "RMSpropUpdate", newRMSpropUpdate)
	Register(graph.DomainGotrain, "AdagradUpdate", newAdagradUpdate)
	Register(graph.DomainGotrain, "GlobalNormScale", newGlobalNormScale)
	Register(graph.DomainTraining, "Adam", newOnnxAdam)
	Register(graph.DomainTraining, "Momentum", newOnnxMomentum)
	Register(graph.DomainTraining, "Adagrad", newOnnxAdagrad)
}

// updateGrain is the least number of elements a worker of an update takes:
// below it the pass is cheaper than waking a worker.
const updateGrain = 1 << 14

// gradPrep is the gradient preparation every fused update shares.
type gradPrep struct {
	scale float32 // set per call from grad_scale
	clip  float32
	wd    float32 // coupled weight decay (0 when decoupled)
}

func (c *gradPrep) apply(g, p float32) float32 {
	g *= c.scale
	if c.clip > 0 {
		if g > c.clip {
			g = c.clip
		} else if g < -c.clip {
			g = -c.clip
		}
	}
	if c.wd != 0 {
		g += c.wd * p
	}
	return g
}

// updateCommon holds what the fused update factories share: the element
// count, the attribute-driven gradient preparation, the scalar input
// positions and the decay settings.
type updateCommon struct {
	n       int
	prep    gradPrep
	lrScale float64
	decWD   float64 // decoupled weight decay
	lrAt    int
	stepAt  int
}

// parseCommon checks dtypes and scalar inputs and reads the attributes all
// fused updates share. nLike is the number of leading inputs shaped like the
// parameter (param, grad and the required state); lrAt and stepAt locate
// the lr and step scalars, and grad_scale follows step. The int attribute
// "decoupled" turns weight_decay into decoupled decay.
func parseCommon(p *Prep, nLike, lrAt, stepAt int) (*updateCommon, error) {
	n := p.Node
	c := &updateCommon{lrAt: lrAt, stepAt: stepAt, lrScale: float64(n.AttrFloat("lr_scale", 1))}
	if p.In[0].DType != tensor.Float32 {
		return nil, Unsupported(p, "param dtype %v (only float32)", p.In[0].DType)
	}
	c.n = tensor.NumElements(p.InShape(0))
	for i := 1; i < nLike; i++ {
		if p.In[i] == nil || tensor.NumElements(p.InShape(i)) != c.n {
			return nil, Errorf(p, "input %d (%s) must have the parameter's %d elements", i, n.Input(i), c.n)
		}
	}
	for _, i := range []int{lrAt, stepAt, stepAt + 1} {
		if i < len(p.In) && p.In[i] != nil && tensor.NumElements(p.InShape(i)) != 1 {
			return nil, Errorf(p, "input %d (%s) must be a scalar, has shape %v", i, n.Input(i), p.InShape(i))
		}
	}
	c.prep.clip = n.AttrFloat("clip_value", 0)
	if c.prep.clip < 0 {
		return nil, Errorf(p, "attribute clip_value must be >= 0, got %g", c.prep.clip)
	}
	wd := n.AttrFloat("weight_decay", 0)
	if wd < 0 {
		return nil, Errorf(p, "attribute weight_decay must be >= 0, got %g", wd)
	}
	if n.AttrInt("decoupled", 0) != 0 {
		c.decWD = float64(wd)
	} else {
		c.prep.wd = wd
	}
	if c.lrScale < 0 {
		return nil, Errorf(p, "attribute lr_scale must be >= 0, got %g", c.lrScale)
	}
	return c, nil
}

// scalars reads lr, step and grad_scale for one call. It fails on a step
// below 1: steps count updates from 1, and bias corrections divide by
// 1 - beta^step.
func (c *updateCommon) scalars(in []*tensor.Tensor) (lr float64, step int64, err error) {
	lr = float64(in[c.lrAt].Float32s()[0]) * c.lrScale
	step = in[c.stepAt].Int64s()[0]
	if step < 1 {
		return 0, 0, fmt.Errorf("step (the 1-based index of this update) must be >= 1, got %d", step)
	}
	c.prep.scale = 1
	if gs := c.stepAt + 1; gs < len(in) && in[gs] != nil {
		c.prep.scale = in[gs].Float32s()[0]
	}
	return lr, step, nil
}

// optOut returns output k's data, or nil when the output is omitted.
func optOut(out []*tensor.Tensor, k int) []float32 {
	if k < len(out) && out[k] != nil {
		return out[k].Float32s()
	}
	return nil
}

func optIn(in []*tensor.Tensor, k int) []float32 {
	if k < len(in) && in[k] != nil {
		return in[k].Float32s()
	}
	return nil
}

func sqrt32(x float32) float32 { return float32(math.Sqrt(float64(x))) }

// ---- SGDUpdate ----

type sgdKernel struct {
	*updateCommon
	momentum, dampening float32
	nesterov            bool
	// set per call
	p, g, b, po, bo []float32
	lr, shrink      float32
	first           bool
}

func newSGDUpdate(p *Prep) (Kernel, error) {
	n := p.Node
	c, err := parseCommon(p, 2, 2, 3)
	if err != nil {
		return nil, err
	}
	// SGD names its decoupled decay separately from the coupled one.
	if dwd := n.AttrFloat("decoupled_weight_decay", 0); dwd < 0 {
		return nil, Errorf(p, "attribute decoupled_weight_decay must be >= 0, got %g", dwd)
	} else if dwd > 0 {
		c.decWD = float64(dwd)
	}
	k := &sgdKernel{updateCommon: c,
		momentum:  n.AttrFloat("momentum", 0),
		dampening: n.AttrFloat("dampening", 0),
		nesterov:  n.AttrInt("nesterov", 0) != 0,
	}
	if k.momentum < 0 || k.dampening < 0 || k.dampening > 1 {
		return nil, Errorf(p, "momentum (%g) must be >= 0 and dampening (%g) in [0, 1]", k.momentum, k.dampening)
	}
	if k.nesterov && (k.momentum <= 0 || k.dampening != 0) {
		return nil, Errorf(p, "nesterov needs momentum > 0 and dampening 0 (momentum %g, dampening %g)", k.momentum, k.dampening)
	}
	if k.momentum != 0 {
		if len(p.In) < 6 || p.In[5] == nil || tensor.NumElements(p.InShape(5)) != c.n {
			return nil, Errorf(p, "momentum %g needs momentum_buf (input 5) shaped like the parameter", k.momentum)
		}
		if len(p.Out) < 2 || p.Out[1] == nil {
			return nil, Errorf(p, "momentum %g needs output 1 (momentum_buf_out)", k.momentum)
		}
	}
	body := k.run
	return func(in, out []*tensor.Tensor) error {
		lr, step, err := c.scalars(in)
		if err != nil {
			return err
		}
		k.p, k.g, k.b = in[0].Float32s(), in[1].Float32s(), optIn(in, 5)
		k.po, k.bo = out[0].Float32s(), optOut(out, 1)
		k.lr = float32(lr)
		k.shrink = float32(1 - lr*c.decWD)
		k.first = step == 1
		p.Pool.For(c.n, updateGrain, body)
		return nil
	}, nil
}

func (k *sgdKernel) run(lo, hi int) {
	mom, damp1 := k.momentum, 1-k.dampening
	for i := lo; i < hi; i++ {
		pv := k.p[i]
		g := k.prep.apply(k.g[i], pv)
		if k.decWD != 0 {
			pv *= k.shrink
		}
		if mom != 0 {
			b := g
			if !k.first {
				b = mom*k.b[i] + damp1*g
			}
			if k.nesterov {
				g += mom * b
			} else {
				g = b
			}
			k.bo[i] = b
		}
		k.po[i] = pv - k.lr*g
	}
}

// ---- AdamUpdate ----

type adamKernel struct {
	*updateCommon
	b1, b2, omb1, omb2, eps float32
	keras                   bool
	// set per call
	p, g, m, v, po, mo, vo []float32
	stepSize, bc2s, shrink float32
}

func newAdamUpdate(p *Prep) (Kernel, error) {
	n := p.Node
	c, err := parseCommon(p, 4, 4, 5)
	if err != nil {
		return nil, err
	}
	b1, b2 := n.AttrFloat("beta1", 0.9), n.AttrFloat("beta2", 0.999)
	k := &adamKernel{updateCommon: c, b1: b1, b2: b2,
		omb1: float32(1 - float64(b1)), omb2: float32(1 - float64(b2)),
		eps: n.AttrFloat("epsilon", 1e-8)}
	if !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) {
		return nil, Errorf(p, "beta1 (%g) and beta2 (%g) must be in [0, 1)", b1, b2)
	}
	if k.eps < 0 {
		return nil, Errorf(p, "attribute epsilon must be >= 0, got %g", k.eps)
	}
	switch mode := n.AttrString("eps_mode", "pytorch"); mode {
	case "pytorch":
	case "keras":
		k.keras = true
	default:
		return nil, Errorf(p, "attribute eps_mode is %q; expected \"pytorch\" or \"keras\"", mode)
	}
	body := k.run
	return func(in, out []*tensor.Tensor) error {
		lr, step, err := c.scalars(in)
		if err != nil {
			return err
		}
		k.p, k.g, k.m, k.v = in[0].Float32s(), in[1].Float32s(), in[2].Float32s(), in[3].Float32s()
		k.po, k.mo, k.vo = out[0].Float32s(), out[1].Float32s(), out[2].Float32s()
		bc1 := 1 - math.Pow(float64(k.b1), float64(step))
		bc2 := 1 - math.Pow(float64(k.b2), float64(step))
		if k.keras {
			k.stepSize = float32(lr * math.Sqrt(bc2) / bc1)
			k.bc2s = 1
		} else {
			k.stepSize = float32(lr / bc1)
			k.bc2s = float32(math.Sqrt(bc2))
		}
		k.shrink = float32(1 - lr*c.decWD)
		// The vector loop pays from a few thousand elements; its parts are
		// claimed dynamically, so a worker that is asleep costs nothing.
		if cp := p.Pool.cpool(); cp != nil && c.n >= updateGrain/4 {
			cp.adam(k)
		} else {
			p.Pool.For(c.n, updateGrain, body)
		}
		k.p, k.g, k.m, k.v, k.po, k.mo, k.vo = nil, nil, nil, nil, nil, nil, nil
		return nil
	}, nil
}

func (k *adamKernel) run(lo, hi int) {
	// Locals and equal-length slices let the compiler keep everything in
	// registers and drop bounds checks: this loop is memory-bound on large
	// layers, and each field load through k would cost a reload per element.
	p := k.p[lo:hi]
	n := len(p)
	g, m, v := k.g[lo:hi][:n], k.m[lo:hi][:n], k.v[lo:hi][:n]
	po, mo, vo := k.po[lo:hi][:n], k.mo[lo:hi][:n], k.vo[lo:hi][:n]
	b1, omb1, b2, omb2 := k.b1, k.omb1, k.b2, k.omb2
	eps, stepSize, shrink := k.eps, k.stepSize, k.shrink
	bc2s := k.bc2s
	if k.keras {
		bc2s = 1
	}
	prep := k.prep
	plain := prep.scale == 1 && prep.clip == 0 && prep.wd == 0
	dec := k.decWD != 0
	for i := range p {
		pv, gv := p[i], g[i]
		if !plain {
			gv = prep.apply(gv, pv)
		}
		if dec {
			pv *= shrink
		}
		mv := m[i]*b1 + gv*omb1
		vv := v[i]*b2 + omb2*gv*gv
		denom := sqrt32(vv)/bc2s + eps
		po[i] = pv - stepSize*(mv/denom)
		mo[i] = mv
		vo[i] = vv
	}
}

// ---- RMSpropUpdate ----

type rmspropKernel struct {
	*updateCommon
	alpha, oma, eps, momentum float32
	centered                  bool
	// set per call
	p, g, sq, b, ga, po, sqo, bo, gao []float32
	lr, shrink                        float32
}

func newRMSpropUpdate(p *Prep) (Kernel, error) {
	n := p.Node
	c, err := parseCommon(p, 3, 3, 4)
	if err != nil {
		return nil, err
	}
	alpha := n.AttrFloat("alpha", 0.99)
	k := &rmspropKernel{updateCommon: c, alpha: alpha, oma: float32(1 - float64(alpha)),
		eps: n.AttrFloat("eps", 1e-8), momentum: n.AttrFloat("momentum", 0),
		centered: n.AttrInt("centered", 0) != 0}
	if !(alpha >= 0 && alpha <= 1) || k.eps < 0 || k.momentum < 0 {
		return nil, Errorf(p, "alpha (%g) must be in [0, 1], eps (%g) and momentum (%g) >= 0", alpha, k.eps, k.momentum)
	}
	need := func(in, out int, what string) error {
		if len(p.In) <= in || p.In[in] == nil || tensor.NumElements(p.InShape(in)) != c.n {
			return Errorf(p, "%s needs input %d shaped like the parameter", what, in)
		}
		if len(p.Out) <= out || p.Out[out] == nil {
			return Errorf(p, "%s needs output %d", what, out)
		}
		return nil
	}
	if k.momentum > 0 {
		if err := need(6, 2, "momentum > 0"); err != nil {
			return nil, err
		}
	}
	if k.centered {
		if err := need(7, 3, "centered"); err != nil {
			return nil, err
		}
	}
	body := k.run
	return func(in, out []*tensor.Tensor) error {
		lr, _, err := c.scalars(in)
		if err != nil {
			return err
		}
		k.p, k.g, k.sq = in[0].Float32s(), in[1].Float32s(), in[2].Float32s()
		k.b, k.ga = optIn(in, 6), optIn(in, 7)
		k.po, k.sqo, k.bo, k.gao = out[0].Float32s(), out[1].Float32s(), optOut(out, 2), optOut(out, 3)
		k.lr = float32(lr)
		k.shrink = float32(1 - lr*c.decWD)
		p.Pool.For(c.n, updateGrain, body)
		return nil
	}, nil
}

func (k *rmspropKernel) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		pv, sq := k.p[i], k.sq[i]
		g := k.prep.apply(k.g[i], pv)
		if k.decWD != 0 {
			pv *= k.shrink
		}
		sq = sq*k.alpha + k.oma*g*g
		var avg float32
		if k.centered {
			ga := k.ga[i]*k.alpha + k.oma*g
			// sq >= ga^2 holds exactly; rounding may break it by an ulp.
			avg = sqrt32(max(sq-ga*ga, 0)) + k.eps
			k.gao[i] = ga
		} else {
			avg = sqrt32(sq) + k.eps
		}
		if k.momentum > 0 {
			b := k.b[i]*k.momentum + g/avg
			k.bo[i] = b
			pv -= k.lr * b
		} else {
			pv -= k.lr * (g / avg)
		}
		k.po[i] = pv
		k.sqo[i] = sq
	}
}

// ---- AdagradUpdate ----

type adagradKernel struct {
	*updateCommon
	lrDecay float64
	eps     float32
	// set per call
	p, g, s, po, so []float32
	clr, shrink     float32
}

func newAdagradUpdate(p *Prep) (Kernel, error) {
	n := p.Node
	c, err := parseCommon(p, 3, 3, 4)
	if err != nil {
		return nil, err
	}
	k := &adagradKernel{updateCommon: c, lrDecay: float64(n.AttrFloat("lr_decay", 0)), eps: n.AttrFloat("eps", 1e-10)}
	if k.lrDecay < 0 || k.eps < 0 {
		return nil, Errorf(p, "lr_decay (%g) and eps (%g) must be >= 0", k.lrDecay, k.eps)
	}
	body := k.run
	return func(in, out []*tensor.Tensor) error {
		lr, step, err := c.scalars(in)
		if err != nil {
			return err
		}
		k.p, k.g, k.s = in[0].Float32s(), in[1].Float32s(), in[2].Float32s()
		k.po, k.so = out[0].Float32s(), out[1].Float32s()
		k.clr = float32(lr / (1 + float64(step-1)*k.lrDecay))
		k.shrink = float32(1 - lr*c.decWD)
		p.Pool.For(c.n, updateGrain, body)
		return nil
	}, nil
}

func (k *adagradKernel) run(lo, hi int) {
	for i := lo; i < hi; i++ {
		pv := k.p[i]
		g := k.prep.apply(k.g[i], pv)
		if k.decWD != 0 {
			pv *= k.shrink
		}
		s := k.s[i] + g*g
		k.po[i] = pv - k.clr*(g/(sqrt32(s)+k.eps))
		k.so[i] = s
	}
}

// ---- GlobalNormScale ----

// normBlock is a fixed slice of one input. Summing squares per block and
// the blocks in order makes the norm independent of the worker count.
type normBlock struct{ t, lo, hi int }

const normBlockSize = 1 << 14

type normKernel struct {
	blocks  []normBlock
	partial []float64
	in      []*tensor.Tensor
}

func newGlobalNormScale(p *Prep) (Kernel, error) {
	n := p.Node
	maxNorm := float64(n.AttrFloat("max_norm", 0))
	if !(maxNorm > 0) {
		return nil, Errorf(p, "attribute max_norm must be positive, got %g", maxNorm)
	}
	k := &normKernel{}
	for i, t := range p.In {
		if t == nil || t.DType != tensor.Float32 {
			return nil, Unsupported(p, "input %d must be a float32 tensor", i)
		}
		size := tensor.NumElements(p.InShape(i))
		for lo := 0; lo < size; lo += normBlockSize {
			k.blocks = append(k.blocks, normBlock{i, lo, min(lo+normBlockSize, size)})
		}
	}
	k.partial = make([]float64, len(k.blocks))
	body := k.run
	return func(in, out []*tensor.Tensor) error {
		k.in = in
		p.Pool.For(len(k.blocks), 1, body)
		k.in = nil
		var sum float64
		for _, s := range k.partial {
			sum += s
		}
		total := math.Sqrt(sum)
		// As torch.nn.utils.clip_grad_norm_: never scale up.
		out[0].Float32s()[0] = float32(min(1, maxNorm/(total+1e-6)))
		if len(out) > 1 && out[1] != nil {
			out[1].Float32s()[0] = float32(total)
		}
		return nil
	}, nil
}

func (k *normKernel) run(lo, hi int) {
	for b := lo; b < hi; b++ {
		blk := k.blocks[b]
		var s float64
		for _, v := range k.in[blk.t].Float32s()[blk.lo:blk.hi] {
			s += float64(v) * float64(v)
		}
		k.partial[b] = s
	}
}

// ---- ai.onnx.preview.training: Adam, Momentum, Adagrad ----

// trainingArgs is the layout of ONNX's training ops: R, T, then `groups`
// groups of k tensors. Outputs are X_new for each tensor, then the new state
// groups (every group but G).
type trainingArgs struct {
	k, groups int
	dt        tensor.DType
}

func parseTrainingArgs(p *Prep, groups int) (*trainingArgs, error) {
	if len(p.In) < 2+groups || (len(p.In)-2)%groups != 0 {
		return nil, Errorf(p, "has %d inputs; expected R, T and %d groups of equally many tensors", len(p.In), groups)
	}
	for i, t := range p.In {
		if t == nil {
			return nil, Errorf(p, "input %d is required", i)
		}
	}
	if p.In[0].DType != tensor.Float32 && p.In[0].DType != tensor.Float64 {
		return nil, Unsupported(p, "R dtype %v", p.In[0].DType)
	}
	if p.In[1].DType != tensor.Int64 {
		return nil, Errorf(p, "T must be int64, got %v", p.In[1].DType)
	}
	a := &trainingArgs{k: (len(p.In) - 2) / groups, groups: groups, dt: p.In[2].DType}
	if a.dt != tensor.Float32 && a.dt != tensor.Float64 {
		return nil, Unsupported(p, "tensor dtype %v", a.dt)
	}
	for j := 0; j < a.k; j++ {
		size := tensor.NumElements(p.InShape(2 + j))
		for g := 0; g < groups; g++ {
			i := 2 + g*a.k + j
			if p.In[i].DType != a.dt || tensor.NumElements(p.InShape(i)) != size {
				return nil, Errorf(p, "input %d (%s) must be %v with %d elements like X%d", i, p.Node.Input(i), a.dt, size, j+1)
			}
		}
	}
	if want := a.k * (groups - 1); len(p.Out) != want {
		return nil, Errorf(p, "has %d outputs; expected %d (X_new and the new state per tensor)", len(p.Out), want)
	}
	return a, nil
}

// f64view reads and writes a float32 or float64 tensor's data as float64.
type f64view struct {
	f32 []float32
	f64 []float64
}

func view(t *tensor.Tensor) f64view {
	if t == nil {
		return f64view{}
	}
	return f64view{t.Float32s(), t.Float64s()}
}

func (v f64view) get(i int) float64 {
	if v.f32 != nil {
		return float64(v.f32[i])
	}
	return v.f64[i]
}

func (v f64view) set(i int, x float64) {
	if v.f32 != nil {
		v.f32[i] = float32(x)
	} else if v.f64 != nil {
		v.f64[i] = x
	}
}

func (v f64view) len() int { return max(len(v.f32), len(v.f64)) }

func requiredFloat(p *Prep, name string) (float64, error) {
	a := p.Node.Attr(name)
	if a == nil {
		return 0, Errorf(p, "attribute %s is required", name)
	}
	return float64(a.F), nil
}

func newOnnxAdam(p *Prep) (Kernel, error) {
	a, err := parseTrainingArgs(p, 4)
	if err != nil {
		return nil, err
	}
	n := p.Node
	alpha, beta := float64(n.AttrFloat("alpha", 0.9)), float64(n.AttrFloat("beta", 0.999))
	eps := float64(n.AttrFloat("epsilon", 1e-6))
	norm, post := float64(n.AttrFloat("norm_coefficient", 0)), float64(n.AttrFloat("norm_coefficient_post", 0))
	return func(in, out []*tensor.Tensor) error {
		r, t := in[0].AsFloat64(0), in[1].Int64s()[0]
		rAdj := r
		if t > 0 {
			rAdj = r * math.Sqrt(1-math.Pow(beta, float64(t))) / (1 - math.Pow(alpha, float64(t)))
		}
		for j := 0; j < a.k; j++ {
			x, g, v, h := view(in[2+j]), view(in[2+a.k+j]), view(in[2+2*a.k+j]), view(in[2+3*a.k+j])
			xo, vo, ho := view(out[j]), view(out[a.k+j]), view(out[2*a.k+j])
			for i := 0; i < x.len(); i++ {
				xv := x.get(i)
				gr := norm*xv + g.get(i)
				vn := alpha*v.get(i) + (1-alpha)*gr
				hn := beta*h.get(i) + (1-beta)*gr*gr
				xn := xv - rAdj*vn/(math.Sqrt(hn)+eps)
				xo.set(i, (1-post)*xn)
				vo.set(i, vn)
				ho.set(i, hn)
			}
		}
		return nil
	}, nil
}

func newOnnxMomentum(p *Prep) (Kernel, error) {
	a, err := parseTrainingArgs(p, 3)
	if err != nil {
		return nil, err
	}
	var attrs [3]float64
	for i, name := range []string{"alpha", "beta", "norm_coefficient"} {
		if attrs[i], err = requiredFloat(p, name); err != nil {
			return nil, err
		}
	}
	alpha, beta, norm := attrs[0], attrs[1], attrs[2]
	var nesterov bool
	switch mode := p.Node.AttrString("mode", ""); mode {
	case "standard":
	case "nesterov":
		nesterov = true
	default:
		return nil, Errorf(p, "attribute mode is %q; expected \"standard\" or \"nesterov\"", mode)
	}
	return func(in, out []*tensor.Tensor) error {
		r, t := in[0].AsFloat64(0), in[1].Int64s()[0]
		betaAdj := beta
		if t <= 0 {
			betaAdj = 1
		}
		for j := 0; j < a.k; j++ {
			x, g, v := view(in[2+j]), view(in[2+a.k+j]), view(in[2+2*a.k+j])
			xo, vo := view(out[j]), view(out[a.k+j])
			for i := 0; i < x.len(); i++ {
				xv := x.get(i)
				gr := norm*xv + g.get(i)
				vn := alpha*v.get(i) + betaAdj*gr
				if nesterov {
					xo.set(i, xv-r*(gr+alpha*vn))
				} else {
					xo.set(i, xv-r*vn)
				}
				vo.set(i, vn)
			}
		}
		return nil
	}, nil
}

func newOnnxAdagrad(p *Prep) (Kernel, error) {
	a, err := parseTrainingArgs(p, 3)
	if err != nil {
		return nil, err
	}
	n := p.Node
	decay := float64(n.AttrFloat("decay_factor", 0))
	eps := float64(n.AttrFloat("epsilon", 1e-6))
	norm := float64(n.AttrFloat("norm_coefficient", 0))
	return func(in, out []*tensor.Tensor) error {
		r, t := in[0].AsFloat64(0), in[1].Int64s()[0]
		rr := r / (1 + float64(t)*decay)
		for j := 0; j < a.k; j++ {
			x, g, h := view(in[2+j]), view(in[2+a.k+j]), view(in[2+2*a.k+j])
			xo, ho := view(out[j]), view(out[a.k+j])
			for i := 0; i < x.len(); i++ {
				xv := x.get(i)
				gr := norm*xv + g.get(i)
				hn := h.get(i) + gr*gr
				xo.set(i, xv-rr*gr/(math.Sqrt(hn)+eps))
				ho.set(i, hn)
			}
		}
		return nil
	}, nil
}
