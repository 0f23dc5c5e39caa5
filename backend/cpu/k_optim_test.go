package cpu

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

// optRun prepares one node of domain ai.gotrain (or another domain) with
// the given inputs (nil: omitted) and runs it. alias maps an output index to
// the input index whose tensor it is written into (in place); the other
// outputs are fresh tensors. It returns the outputs.
type optRun struct {
	domain, op string
	attrs      []*graph.Attribute
	nOut       int
	pool       *Pool
}

func (r optRun) prepare(t testing.TB, in []*tensor.Tensor) (Kernel, *Prep, error) {
	t.Helper()
	n := &graph.Node{Name: "n", OpType: r.op, Domain: r.domain, Attrs: map[string]*graph.Attribute{}}
	types := make([]*graph.Type, len(in))
	for i, x := range in {
		name := ""
		if x != nil {
			name = "in" + itoaTest(i)
			types[i] = graph.NewType(x.DType(), graph.ShapeOf(x.Shape()...))
		}
		n.Inputs = append(n.Inputs, name)
	}
	for i := 0; i < r.nOut; i++ {
		n.Outputs = append(n.Outputs, "out"+itoaTest(i))
	}
	for _, a := range r.attrs {
		n.SetAttr(a)
	}
	s := graph.Lookup(r.domain, r.op)
	if s == nil {
		t.Fatalf("no schema for %s", r.op)
	}
	outT, err := s.Infer(n, types, 1)
	if err != nil {
		return nil, nil, err
	}
	pool := r.pool
	if pool == nil {
		pool = NewPool(1)
	}
	p := &Prep{Node: n, In: types, Out: outT[:r.nOut], Opset: 1, Pool: pool}
	info, ok := kernels[kkey(r.domain, r.op)]
	if !ok {
		t.Fatalf("no kernel for %s", r.op)
	}
	k, err := info.factory(p)
	return k, p, err
}

func (r optRun) run(t *testing.T, in []*tensor.Tensor, alias map[int]int) []*tensor.Tensor {
	t.Helper()
	k, p, err := r.prepare(t, in)
	if err != nil {
		t.Fatalf("%s: prepare: %v", r.op, err)
	}
	out := make([]*tensor.Tensor, r.nOut)
	for i := range out {
		if j, ok := alias[i]; ok {
			out[i] = in[j]
			continue
		}
		if p.Out[i] != nil {
			s, _ := p.Out[i].Concrete()
			out[i] = tensor.New(p.Out[i].DType, s...)
		}
	}
	if err := k(in, out); err != nil {
		t.Fatalf("%s: run: %v", r.op, err)
	}
	return out
}

func itoaTest(i int) string { return string(rune('0' + i)) }

func f32Tensor(v []float64, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape...)
	d := t.Float32s()
	for i := range d {
		d[i] = float32(v[i])
	}
	return t
}

func toF64(t *tensor.Tensor) []float64 {
	d := t.Float32s()
	out := make([]float64, len(d))
	for i, v := range d {
		out[i] = float64(v)
	}
	return out
}

func randVec(r *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * r.NormFloat64()
	}
	return v
}

// closeTo fails when |got-want| > atol + rtol*|want| anywhere.
func closeTo(t *testing.T, what string, got, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	worst, at := 0.0, -1
	for i := range got {
		d := math.Abs(got[i] - want[i])
		if !(d <= atol+rtol*math.Abs(want[i])) && (at < 0 || d > worst) {
			worst, at = d, i
		}
	}
	if at >= 0 {
		t.Fatalf("%s: element %d is %.9g, want %.9g (|diff| %.3g > %g + %g*|want|)", what, at, got[at], want[at], worst, atol, rtol)
	}
}

func scalarF32(v float64) *tensor.Tensor { return tensor.Scalar(float32(v)) }
func scalarI64(v int64) *tensor.Tensor   { return tensor.Scalar(v) }

// ---- float64 references of torch.optim's update formulas ----

type refOpts struct {
	lr, wd, decWD, scale, clip float64
}

// prepGrad is the gradient preparation of every fused op: scale, clamp,
// coupled decay.
func (o refOpts) prepGrad(g, p float64) float64 {
	g *= o.scale
	if o.clip > 0 {
		g = math.Max(-o.clip, math.Min(o.clip, g))
	}
	return g + o.wd*p
}

func refSGD(o refOpts, step int, mom, damp float64, nesterov bool, p, g, buf []float64) {
	for i := range p {
		gi := o.prepGrad(g[i], p[i])
		p[i] *= 1 - o.lr*o.decWD
		if mom != 0 {
			if step == 1 {
				buf[i] = gi
			} else {
				buf[i] = mom*buf[i] + (1-damp)*gi
			}
			if nesterov {
				gi += mom * buf[i]
			} else {
				gi = buf[i]
			}
		}
		p[i] -= o.lr * gi
	}
}

func refAdam(o refOpts, step int, b1, b2, eps float64, keras bool, p, g, m, v []float64) {
	bc1 := 1 - math.Pow(b1, float64(step))
	bc2 := 1 - math.Pow(b2, float64(step))
	for i := range p {
		gi := o.prepGrad(g[i], p[i])
		p[i] *= 1 - o.lr*o.decWD
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		if keras {
			p[i] -= o.lr * math.Sqrt(bc2) / bc1 * m[i] / (math.Sqrt(v[i]) + eps)
		} else {
			p[i] -= o.lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
		}
	}
}

func refRMSprop(o refOpts, alpha, eps, mom float64, centered bool, p, g, sq, buf, ga []float64) {
	for i := range p {
		gi := o.prepGrad(g[i], p[i])
		p[i] *= 1 - o.lr*o.decWD
		sq[i] = alpha*sq[i] + (1-alpha)*gi*gi
		var avg float64
		if centered {
			ga[i] = alpha*ga[i] + (1-alpha)*gi
			avg = math.Sqrt(sq[i]-ga[i]*ga[i]) + eps
		} else {
			avg = math.Sqrt(sq[i]) + eps
		}
		if mom > 0 {
			buf[i] = mom*buf[i] + gi/avg
			p[i] -= o.lr * buf[i]
		} else {
			p[i] -= o.lr * gi / avg
		}
	}
}

func refAdagrad(o refOpts, step int, lrDecay, eps float64, p, g, sum []float64) {
	clr := o.lr / (1 + float64(step-1)*lrDecay)
	for i := range p {
		gi := o.prepGrad(g[i], p[i])
		p[i] *= 1 - o.lr*o.decWD
		sum[i] += gi * gi
		p[i] -= clr * gi / (math.Sqrt(sum[i]) + eps)
	}
}

// Tolerances of the multi-step comparisons: the kernels compute in float32
// (relative rounding 6e-8 per operation, a few dozen operations per element
// over the steps) against a float64 reference; parameters are O(1) and
// each step moves them by O(lr). 2e-6 absolute + 2e-6 relative leaves a
// margin of about 10x over the errors observed, while a wrong formula
// (a missed bias correction, decay or momentum term) shifts results by
// O(lr*0.1) = 1e-3 or more.
const optAtol, optRtol = 2e-6, 2e-6

const optSteps = 6

func TestSGDUpdateMatchesReference(t *testing.T) {
	cases := []struct {
		name           string
		mom, damp      float64
		nesterov       bool
		o              refOpts
		withGradScale  bool
		parallelBigVec bool
	}{
		{name: "plain", o: refOpts{lr: 0.1}},
		{name: "plain_coupled_decay", o: refOpts{lr: 0.1, wd: 0.01}},
		{name: "momentum", mom: 0.9, o: refOpts{lr: 0.05, wd: 5e-4}},
		{name: "momentum_dampening", mom: 0.9, damp: 0.3, o: refOpts{lr: 0.05, wd: 1e-3}},
		{name: "nesterov", mom: 0.8, nesterov: true, o: refOpts{lr: 0.05, wd: 1e-2}},
		{name: "decoupled_decay", mom: 0.9, o: refOpts{lr: 0.05, decWD: 0.1}},
		{name: "grad_scale_and_clip", mom: 0.9, o: refOpts{lr: 0.05, wd: 1e-3, clip: 0.3}, withGradScale: true},
		{name: "parallel", mom: 0.9, nesterov: true, o: refOpts{lr: 0.01, wd: 1e-3}, parallelBigVec: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			n := 37
			var pool *Pool
			if tc.parallelBigVec {
				n = 3*updateGrain + 17
				pool = NewPool(3)
				defer pool.Close()
			}
			nesterov := int64(0)
			if tc.nesterov {
				nesterov = 1
			}
			run := optRun{domain: graph.DomainGotrain, op: "SGDUpdate", nOut: 1, pool: pool, attrs: []*graph.Attribute{
				graph.AFloat("momentum", float32(tc.mom)), graph.AFloat("dampening", float32(tc.damp)),
				graph.AInt("nesterov", nesterov), graph.AFloat("weight_decay", float32(tc.o.wd)),
				graph.AFloat("decoupled_weight_decay", float32(tc.o.decWD)), graph.AFloat("clip_value", float32(tc.o.clip)),
			}}
			if tc.mom != 0 {
				run.nOut = 2
			}
			p := randVec(r, n, 1)
			buf := make([]float64, n)
			pt, bt := f32Tensor(p, n), tensor.New(tensor.Float32, n)
			for step := 1; step <= optSteps; step++ {
				g := randVec(r, n, 1)
				o := tc.o
				o.scale = 1
				in := []*tensor.Tensor{pt, f32Tensor(g, n), scalarF32(o.lr), scalarI64(int64(step)), nil, nil}
				if tc.withGradScale {
					o.scale = 0.5 + 0.1*float64(step)
					in[4] = scalarF32(o.scale)
				}
				alias := map[int]int{0: 0}
				if tc.mom != 0 {
					in[5] = bt
					alias[1] = 5
				} else {
					in = in[:5]
				}
				// The kernel writes in place: param and buffer are updated in their own tensors.
				run.run(t, in, alias)
				refSGD(o, step, tc.mom, tc.damp, tc.nesterov, p, g, buf)
			}
			closeTo(t, "param", toF64(pt), p, optAtol, optRtol)
			if tc.mom != 0 {
				closeTo(t, "momentum", toF64(bt), buf, optAtol, optRtol)
			}
		})
	}
}

func TestAdamUpdateMatchesReference(t *testing.T) {
	cases := []struct {
		name          string
		b1, b2, eps   float64
		keras         bool
		decoupled     bool
		o             refOpts
		withGradScale bool
	}{
		{name: "adam", b1: 0.9, b2: 0.999, eps: 1e-8, o: refOpts{lr: 1e-2}},
		{name: "adam_l2", b1: 0.9, b2: 0.999, eps: 1e-8, o: refOpts{lr: 1e-2, wd: 0.05}},
		{name: "adamw", b1: 0.9, b2: 0.999, eps: 1e-8, decoupled: true, o: refOpts{lr: 1e-2, decWD: 0.1}},
		{name: "keras_eps", b1: 0.9, b2: 0.999, eps: 1e-7, keras: true, o: refOpts{lr: 1e-2}},
		{name: "odd_betas_clip_scale", b1: 0.5, b2: 0.9, eps: 1e-3, o: refOpts{lr: 3e-2, clip: 0.5}, withGradScale: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			const n = 41
			mode := "pytorch"
			if tc.keras {
				mode = "keras"
			}
			wd, dec := tc.o.wd, int64(0)
			if tc.decoupled {
				wd, dec = tc.o.decWD, 1
			}
			run := optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3, attrs: []*graph.Attribute{
				graph.AFloat("beta1", float32(tc.b1)), graph.AFloat("beta2", float32(tc.b2)),
				graph.AFloat("epsilon", float32(tc.eps)), graph.AString("eps_mode", mode),
				graph.AFloat("weight_decay", float32(wd)), graph.AInt("decoupled", dec),
				graph.AFloat("clip_value", float32(tc.o.clip)),
			}}
			p := randVec(r, n, 1)
			m, v := make([]float64, n), make([]float64, n)
			pt, mt, vt := f32Tensor(p, n), tensor.New(tensor.Float32, n), tensor.New(tensor.Float32, n)
			// The reference uses the betas as the kernel sees them: float32 attributes.
			b1, b2, eps := float64(float32(tc.b1)), float64(float32(tc.b2)), float64(float32(tc.eps))
			for step := 1; step <= optSteps; step++ {
				g := randVec(r, n, 1)
				o := tc.o
				o.scale = 1
				in := []*tensor.Tensor{pt, f32Tensor(g, n), mt, vt, scalarF32(o.lr), scalarI64(int64(step))}
				if tc.withGradScale {
					o.scale = 1.5 - 0.1*float64(step)
					in = append(in, scalarF32(o.scale))
				}
				// Outputs into fresh tensors, then carried over, checking the
				// not-in-place path as the SGD test checks the in-place one.
				out := run.run(t, in, nil)
				pt, mt, vt = out[0], out[1], out[2]
				refAdam(o, step, b1, b2, eps, tc.keras, p, g, m, v)
			}
			closeTo(t, "param", toF64(pt), p, optAtol, optRtol)
			closeTo(t, "m", toF64(mt), m, optAtol, optRtol)
			closeTo(t, "v", toF64(vt), v, optAtol, optRtol)
		})
	}
}

func TestRMSpropUpdateMatchesReference(t *testing.T) {
	cases := []struct {
		name          string
		alpha, eps    float64
		mom           float64
		centered      bool
		decoupled     bool
		o             refOpts
		withGradScale bool
	}{
		{name: "plain", alpha: 0.99, eps: 1e-8, o: refOpts{lr: 1e-2}},
		{name: "momentum", alpha: 0.9, eps: 1e-8, mom: 0.9, o: refOpts{lr: 1e-2, wd: 1e-2}},
		{name: "centered", alpha: 0.99, eps: 1e-8, centered: true, o: refOpts{lr: 1e-2}},
		{name: "centered_momentum", alpha: 0.95, eps: 1e-6, mom: 0.5, centered: true, o: refOpts{lr: 5e-3, wd: 1e-3}},
		{name: "decoupled_clip_scale", alpha: 0.99, eps: 1e-8, mom: 0.9, decoupled: true, o: refOpts{lr: 1e-2, decWD: 0.1, clip: 0.4}, withGradScale: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			const n = 29
			wd, dec := tc.o.wd, int64(0)
			if tc.decoupled {
				wd, dec = tc.o.decWD, 1
			}
			centered := int64(0)
			if tc.centered {
				centered = 1
			}
			run := optRun{domain: graph.DomainGotrain, op: "RMSpropUpdate", nOut: 4, attrs: []*graph.Attribute{
				graph.AFloat("alpha", float32(tc.alpha)), graph.AFloat("eps", float32(tc.eps)),
				graph.AFloat("momentum", float32(tc.mom)), graph.AInt("centered", centered),
				graph.AFloat("weight_decay", float32(wd)), graph.AInt("decoupled", dec),
				graph.AFloat("clip_value", float32(tc.o.clip)),
			}}
			p := randVec(r, n, 1)
			sq, buf, ga := make([]float64, n), make([]float64, n), make([]float64, n)
			pt, sqt := f32Tensor(p, n), tensor.New(tensor.Float32, n)
			bt, gat := tensor.New(tensor.Float32, n), tensor.New(tensor.Float32, n)
			alpha, eps := float64(float32(tc.alpha)), float64(float32(tc.eps))
			for step := 1; step <= optSteps; step++ {
				g := randVec(r, n, 1)
				o := tc.o
				o.scale = 1
				in := []*tensor.Tensor{pt, f32Tensor(g, n), sqt, scalarF32(o.lr), scalarI64(int64(step)), nil, nil, nil}
				if tc.withGradScale {
					o.scale = 0.7
					in[5] = scalarF32(o.scale)
				}
				alias := map[int]int{0: 0, 1: 2}
				if tc.mom > 0 {
					in[6], alias[2] = bt, 6
				}
				if tc.centered {
					in[7], alias[3] = gat, 7
				}
				run.run(t, in, alias)
				refRMSprop(o, alpha, eps, float64(float32(tc.mom)), tc.centered, p, g, sq, buf, ga)
			}
			closeTo(t, "param", toF64(pt), p, optAtol, optRtol)
			closeTo(t, "square_avg", toF64(sqt), sq, optAtol, optRtol)
			if tc.mom > 0 {
				closeTo(t, "momentum", toF64(bt), buf, optAtol, optRtol)
			}
			if tc.centered {
				closeTo(t, "grad_avg", toF64(gat), ga, optAtol, optRtol)
			}
		})
	}
}

func TestAdagradUpdateMatchesReference(t *testing.T) {
	cases := []struct {
		name         string
		lrDecay, eps float64
		init         float64
		o            refOpts
	}{
		{name: "plain", eps: 1e-10, o: refOpts{lr: 1e-1}},
		{name: "lr_decay_init_acc", lrDecay: 0.05, eps: 1e-10, init: 0.1, o: refOpts{lr: 1e-1, wd: 1e-2}},
		{name: "clip", eps: 1e-6, o: refOpts{lr: 5e-2, clip: 0.2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			const n = 23
			run := optRun{domain: graph.DomainGotrain, op: "AdagradUpdate", nOut: 2, attrs: []*graph.Attribute{
				graph.AFloat("lr_decay", float32(tc.lrDecay)), graph.AFloat("eps", float32(tc.eps)),
				graph.AFloat("weight_decay", float32(tc.o.wd)), graph.AFloat("clip_value", float32(tc.o.clip)),
			}}
			p := randVec(r, n, 1)
			sum := make([]float64, n)
			for i := range sum {
				sum[i] = tc.init
			}
			pt, st := f32Tensor(p, n), f32Tensor(sum, n)
			for step := 1; step <= optSteps; step++ {
				g := randVec(r, n, 1)
				o := tc.o
				o.scale = 1
				run.run(t, []*tensor.Tensor{pt, f32Tensor(g, n), st, scalarF32(o.lr), scalarI64(int64(step))}, map[int]int{0: 0, 1: 2})
				refAdagrad(o, step, float64(float32(tc.lrDecay)), float64(float32(tc.eps)), p, g, sum)
			}
			closeTo(t, "param", toF64(pt), p, optAtol, optRtol)
			closeTo(t, "sum", toF64(st), sum, optAtol, optRtol)
		})
	}
}

// TestAdamKerasEpsHandComputed checks the Keras epsilon placement on one
// element whose value is worked out by hand: with eps large enough that the
// two placements differ by far more than rounding.
func TestAdamKerasEpsHandComputed(t *testing.T) {
	// Step 1, b1 = 0.5, b2 = 0.75, g = 2, p = 1, lr = 0.1, eps = 0.5:
	//   m = 0.5*2 = 1, v = 0.25*4 = 1
	//   keras:   lr_t = 0.1*sqrt(1-0.75)/(1-0.5) = 0.1*0.5/0.5 = 0.1
	//            p = 1 - 0.1*1/(sqrt(1)+0.5) = 1 - 0.1/1.5 = 0.933333...
	//   pytorch: p = 1 - (0.1/0.5) * 1/(1/0.5 + 0.5) = 1 - 0.2/2.5 = 0.92
	for _, tc := range []struct {
		mode string
		want float64
	}{{"keras", 1 - 0.1/1.5}, {"pytorch", 0.92}} {
		run := optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3, attrs: []*graph.Attribute{
			graph.AFloat("beta1", 0.5), graph.AFloat("beta2", 0.75), graph.AFloat("epsilon", 0.5),
			graph.AString("eps_mode", tc.mode)}}
		out := run.run(t, []*tensor.Tensor{f32Tensor([]float64{1}, 1), f32Tensor([]float64{2}, 1),
			tensor.New(tensor.Float32, 1), tensor.New(tensor.Float32, 1), scalarF32(0.1), scalarI64(1)}, nil)
		// One float32 rounding per operation on values near 1: 1e-6 is ~8 ulps.
		closeTo(t, tc.mode, toF64(out[0]), []float64{tc.want}, 1e-6, 0)
		closeTo(t, tc.mode+" m,v", []float64{float64(out[1].Float32s()[0]), float64(out[2].Float32s()[0])}, []float64{1, 1}, 1e-7, 0)
	}
}

func TestGlobalNormScale(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	sizes := []int{5, normBlockSize + 3, 2*normBlockSize - 1, 1}
	var grads []*tensor.Tensor
	var sum float64
	for _, n := range sizes {
		v := randVec(r, n, 0.01)
		g := f32Tensor(v, n)
		for _, x := range g.Float32s() {
			sum += float64(x) * float64(x)
		}
		grads = append(grads, g)
	}
	total := math.Sqrt(sum)
	pool := NewPool(3)
	defer pool.Close()
	for _, tc := range []struct {
		name    string
		maxNorm float64
	}{{"clips", total / 4}, {"no_scale_up", total * 3}} {
		t.Run(tc.name, func(t *testing.T) {
			run := optRun{domain: graph.DomainGotrain, op: "GlobalNormScale", nOut: 2, pool: pool,
				attrs: []*graph.Attribute{graph.AFloat("max_norm", float32(tc.maxNorm))}}
			out := run.run(t, grads, nil)
			want := math.Min(1, float64(float32(tc.maxNorm))/(total+1e-6))
			// Sums are float64; the result is rounded once to float32.
			closeTo(t, "scale", toF64(out[0]), []float64{want}, 0, 1e-7)
			closeTo(t, "total_norm", toF64(out[1]), []float64{total}, 0, 1e-7)
		})
	}
	// The norm does not depend on the worker count.
	a := optRun{domain: graph.DomainGotrain, op: "GlobalNormScale", nOut: 2, pool: pool,
		attrs: []*graph.Attribute{graph.AFloat("max_norm", 1)}}.run(t, grads, nil)
	b := optRun{domain: graph.DomainGotrain, op: "GlobalNormScale", nOut: 2,
		attrs: []*graph.Attribute{graph.AFloat("max_norm", 1)}}.run(t, grads, nil)
	if a[1].Float32s()[0] != b[1].Float32s()[0] {
		t.Errorf("total norm with 3 workers %v differs from 1 worker %v", a[1].Float32s()[0], b[1].Float32s()[0])
	}
}

func TestUpdateOpErrors(t *testing.T) {
	v := func() *tensor.Tensor { return tensor.New(tensor.Float32, 4) }
	cases := []struct {
		name  string
		run   optRun
		in    []*tensor.Tensor
		want  string
		atRun bool
	}{
		{name: "momentum_without_buffer", run: optRun{domain: graph.DomainGotrain, op: "SGDUpdate", nOut: 1,
			attrs: []*graph.Attribute{graph.AFloat("momentum", 0.9)}},
			in: []*tensor.Tensor{v(), v(), scalarF32(0.1), scalarI64(1)}, want: "momentum_buf"},
		{name: "grad_shape", run: optRun{domain: graph.DomainGotrain, op: "SGDUpdate", nOut: 1},
			in: []*tensor.Tensor{v(), tensor.New(tensor.Float32, 5), scalarF32(0.1), scalarI64(1)}, want: "input 1"},
		{name: "lr_dtype", run: optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3},
			in: []*tensor.Tensor{v(), v(), v(), v(), scalarI64(1), scalarI64(1)}, want: "lr"},
		{name: "bad_beta", run: optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3,
			attrs: []*graph.Attribute{graph.AFloat("beta1", 1)}},
			in: []*tensor.Tensor{v(), v(), v(), v(), scalarF32(0.1), scalarI64(1)}, want: "beta1"},
		{name: "bad_eps_mode", run: optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3,
			attrs: []*graph.Attribute{graph.AString("eps_mode", "tf")}},
			in: []*tensor.Tensor{v(), v(), v(), v(), scalarF32(0.1), scalarI64(1)}, want: "eps_mode"},
		{name: "centered_without_grad_avg", run: optRun{domain: graph.DomainGotrain, op: "RMSpropUpdate", nOut: 2,
			attrs: []*graph.Attribute{graph.AInt("centered", 1)}},
			in: []*tensor.Tensor{v(), v(), v(), scalarF32(0.1), scalarI64(1)}, want: "centered"},
		{name: "step_zero", run: optRun{domain: graph.DomainGotrain, op: "AdagradUpdate", nOut: 2},
			in: []*tensor.Tensor{v(), v(), v(), scalarF32(0.1), scalarI64(0)}, want: "step", atRun: true},
		{name: "max_norm_missing", run: optRun{domain: graph.DomainGotrain, op: "GlobalNormScale", nOut: 1},
			in: []*tensor.Tensor{v()}, want: "max_norm"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, p, err := tc.run.prepare(t, tc.in)
			if err == nil && tc.atRun {
				out := make([]*tensor.Tensor, len(p.Out))
				for i, o := range p.Out {
					s, _ := o.Concrete()
					out[i] = tensor.New(o.DType, s...)
				}
				err = k(tc.in, out)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one mentioning %q", err, tc.want)
			}
		})
	}
}

// TestAdamGoldenStep checks one AdamUpdate step on the golden CNN's
// gradients against PyTorch's weights after one torch.optim.Adam step
// (testdata/golden, README there; and the full-size shared set when it is
// beside the project).
func TestAdamGoldenStep(t *testing.T) {
	for _, dir := range testenv.SeedGoldens(t, "cnn") {
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir), func(t *testing.T) { adamGoldenStep(t, dir) })
	}
}

func adamGoldenStep(t *testing.T, dir string) {
	run := optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3}
	for _, name := range []string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"} {
		read := func(sub string) *tensor.Tensor {
			x, err := tensor.ReadNPYFile(filepath.Join(dir, sub, name+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			return x
		}
		w, g, want := read("init"), read("grad"), read("adam_1")
		shape := w.Shape()
		out := run.run(t, []*tensor.Tensor{w, g, tensor.New(tensor.Float32, shape...), tensor.New(tensor.Float32, shape...),
			scalarF32(1e-3), scalarI64(1)}, map[int]int{0: 0})
		// README: weights after Adam steps within 1e-6 abs.
		closeTo(t, name, toF64(out[0]), toF64(want), 1e-6, 0)
	}
}

// ---- ONNX ai.onnx.preview.training ops ----

func TestTrainingOpsMatchONNXReference(t *testing.T) {
	x1, x2 := []float64{1.2, 2.8}, []float64{-0.5}
	g1, g2 := []float64{-0.94, -2.5}, []float64{0.3}
	v1, v2 := []float64{1.7, 3.6}, []float64{0.2}
	h1, h2 := []float64{0.1, 0.1}, []float64{0.4}
	const r = 0.1
	for _, T := range []int64{0, 3} {
		t.Run("Adam_T"+itoaTest(int(T)), func(t *testing.T) {
			alpha, beta, eps, norm, post := 0.95, 0.1, 1e-7, 0.001, 0.01
			run := optRun{domain: graph.DomainTraining, op: "Adam", nOut: 6, attrs: []*graph.Attribute{
				graph.AFloat("alpha", float32(alpha)), graph.AFloat("beta", float32(beta)), graph.AFloat("epsilon", float32(eps)),
				graph.AFloat("norm_coefficient", float32(norm)), graph.AFloat("norm_coefficient_post", float32(post))}}
			out := run.run(t, []*tensor.Tensor{scalarF32(r), scalarI64(T), f32Tensor(x1, 2), f32Tensor(x2, 1),
				f32Tensor(g1, 2), f32Tensor(g2, 1), f32Tensor(v1, 2), f32Tensor(v2, 1), f32Tensor(h1, 2), f32Tensor(h2, 1)}, nil)
			alpha, beta, eps, norm, post = float64(float32(alpha)), float64(float32(beta)), float64(float32(eps)), float64(float32(norm)), float64(float32(post))
			for j, set := range [][4][]float64{{x1, g1, v1, h1}, {x2, g2, v2, h2}} {
				x, g, v, h := set[0], set[1], set[2], set[3]
				var wx, wv, wh []float64
				for i := range x {
					gr := norm*x[i] + g[i]
					vn := alpha*v[i] + (1-alpha)*gr
					hn := beta*h[i] + (1-beta)*gr*gr
					ra := r
					if T > 0 {
						ra = r * math.Sqrt(1-math.Pow(beta, float64(T))) / (1 - math.Pow(alpha, float64(T)))
					}
					wx = append(wx, (1-post)*(x[i]-ra*vn/(math.Sqrt(hn)+eps)))
					wv, wh = append(wv, vn), append(wh, hn)
				}
				// Inputs and outputs are float32: 1e-6 relative is a few ulps.
				closeTo(t, "X_new", toF64(out[j]), wx, 0, 1e-6)
				closeTo(t, "V_new", toF64(out[2+j]), wv, 0, 1e-6)
				closeTo(t, "H_new", toF64(out[4+j]), wh, 0, 1e-6)
			}
		})
	}
	for _, mode := range []string{"standard", "nesterov"} {
		t.Run("Momentum_"+mode, func(t *testing.T) {
			alpha, beta, norm := 0.95, 0.1, 0.01
			run := optRun{domain: graph.DomainTraining, op: "Momentum", nOut: 2, attrs: []*graph.Attribute{
				graph.AFloat("alpha", float32(alpha)), graph.AFloat("beta", float32(beta)),
				graph.AFloat("norm_coefficient", float32(norm)), graph.AString("mode", mode)}}
			const T = 2
			out := run.run(t, []*tensor.Tensor{scalarF32(r), scalarI64(T), f32Tensor(x1, 2), f32Tensor(g1, 2), f32Tensor(v1, 2)}, nil)
			alpha, beta, norm = float64(float32(alpha)), float64(float32(beta)), float64(float32(norm))
			var wx, wv []float64
			for i := range x1 {
				gr := norm*x1[i] + g1[i]
				vn := alpha*v1[i] + beta*gr
				if mode == "nesterov" {
					wx = append(wx, x1[i]-r*(gr+alpha*vn))
				} else {
					wx = append(wx, x1[i]-r*vn)
				}
				wv = append(wv, vn)
			}
			closeTo(t, "X_new", toF64(out[0]), wx, 0, 1e-6)
			closeTo(t, "V_new", toF64(out[1]), wv, 0, 1e-6)
		})
	}
	t.Run("Adagrad", func(t *testing.T) {
		decay, eps, norm := 0.1, 1e-5, 0.001
		run := optRun{domain: graph.DomainTraining, op: "Adagrad", nOut: 2, attrs: []*graph.Attribute{
			graph.AFloat("decay_factor", float32(decay)), graph.AFloat("epsilon", float32(eps)),
			graph.AFloat("norm_coefficient", float32(norm))}}
		const T = 4
		out := run.run(t, []*tensor.Tensor{scalarF32(r), scalarI64(T), f32Tensor(x1, 2), f32Tensor(g1, 2), f32Tensor(h1, 2)}, nil)
		decay, eps, norm = float64(float32(decay)), float64(float32(eps)), float64(float32(norm))
		var wx, wh []float64
		for i := range x1 {
			rr := r / (1 + T*decay)
			gr := norm*x1[i] + g1[i]
			hn := h1[i] + gr*gr
			wx, wh = append(wx, x1[i]-rr*gr/(math.Sqrt(hn)+eps)), append(wh, hn)
		}
		closeTo(t, "X_new", toF64(out[0]), wx, 0, 1e-6)
		closeTo(t, "H_new", toF64(out[1]), wh, 0, 1e-6)
	})
}

// TestUpdateKernelsDoNotAllocate: a training step runs every update kernel;
// their per-call state lives in the factory.
func TestUpdateKernelsDoNotAllocate(t *testing.T) {
	const n = 1000
	v := func() *tensor.Tensor { return tensor.New(tensor.Float32, n) }
	lr, step, gs := scalarF32(0.01), scalarI64(3), scalarF32(0.5)
	cases := []struct {
		run optRun
		in  []*tensor.Tensor
	}{
		{optRun{domain: graph.DomainGotrain, op: "SGDUpdate", nOut: 2, attrs: []*graph.Attribute{graph.AFloat("momentum", 0.9)}},
			[]*tensor.Tensor{v(), v(), lr, step, gs, v()}},
		{optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3}, []*tensor.Tensor{v(), v(), v(), v(), lr, step, gs}},
		{optRun{domain: graph.DomainGotrain, op: "RMSpropUpdate", nOut: 4,
			attrs: []*graph.Attribute{graph.AFloat("momentum", 0.9), graph.AInt("centered", 1)}},
			[]*tensor.Tensor{v(), v(), v(), lr, step, gs, v(), v()}},
		{optRun{domain: graph.DomainGotrain, op: "AdagradUpdate", nOut: 2}, []*tensor.Tensor{v(), v(), v(), lr, step}},
		{optRun{domain: graph.DomainGotrain, op: "GlobalNormScale", nOut: 2, attrs: []*graph.Attribute{graph.AFloat("max_norm", 1)}},
			[]*tensor.Tensor{v(), v()}},
	}
	for _, tc := range cases {
		k, p, err := tc.run.prepare(t, tc.in)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]*tensor.Tensor, len(p.Out))
		for i, o := range p.Out {
			s, _ := o.Concrete()
			out[i] = tensor.New(o.DType, s...)
		}
		if a := testing.AllocsPerRun(10, func() { _ = k(tc.in, out) }); a != 0 {
			t.Errorf("%s allocates %v times per call", tc.run.op, a)
		}
	}
}

func BenchmarkAdamUpdate(b *testing.B) {
	const n = 1 << 20
	v := func() *tensor.Tensor { return tensor.New(tensor.Float32, n) }
	pool := NewPool(0)
	defer pool.Close()
	run := optRun{domain: graph.DomainGotrain, op: "AdamUpdate", nOut: 3, pool: pool}
	in := []*tensor.Tensor{v(), v(), v(), v(), scalarF32(1e-3), scalarI64(1)}
	k, _, err := run.prepare(b, in)
	if err != nil {
		b.Fatal(err)
	}
	out := []*tensor.Tensor{in[0], in[2], in[3]}
	b.SetBytes(n * 4 * 7) // reads p, g, m, v; writes p, m, v
	for i := 0; i < b.N; i++ {
		if err := k(in, out); err != nil {
			b.Fatal(err)
		}
	}
}
