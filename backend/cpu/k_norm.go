package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Normalisation kernels: BatchNormalization (inference and ONNX training
// mode), LayerNormalization, and the training ops BatchNormTrain,
// BatchNormGrad, LayerNormGrad (their semantics are documented with their
// schemas in graph/ops_norm.go).
//
// Batch statistics are accumulated in float64 from one pass over the data,
// shifted by the channel's first element so that the sum of squares does not
// cancel catastrophically. Batch-norm work is spread over channels (each
// owns its statistics), layer-norm work over rows.

func init() {
	Register(graph.DomainONNX, "BatchNormalization", normBatchFactory)
	Register(graph.DomainONNX, "LayerNormalization", normLayerFactory)
	Register(graph.DomainGotrain, "BatchNormTrain", normBatchTrainFactory)
	Register(graph.DomainGotrain, "BatchNormGrad", normBatchGradFactory)
	Register(graph.DomainGotrain, "LayerNormGrad", normLayerGradFactory)
}

// normFloatIn checks that input i is float32 or float64.
func normFloatIn(p *Prep, i int, name string) error {
	if dt := p.In[i].DType; dt != tensor.Float32 && dt != tensor.Float64 {
		return Unsupported(p, "input %s of dtype %v", name, dt)
	}
	return nil
}

// normGet reads element i of a float32/float64 tensor.
func normGet(t *tensor.Tensor, i int) float64 {
	if d := t.Float32s(); d != nil {
		return float64(d[i])
	}
	return t.Float64s()[i]
}

// normSet writes element i of a float32/float64 tensor.
func normSet(t *tensor.Tensor, i int, v float64) {
	if d := t.Float32s(); d != nil {
		d[i] = float32(v)
		return
	}
	t.Float64s()[i] = v
}

// normOut returns output i, or nil when the node does not ask for it.
func normOut(out []*tensor.Tensor, i int) *tensor.Tensor {
	if i < len(out) {
		return out[i]
	}
	return nil
}

// normNCS splits an N x C x D1... shape into N, C and the spatial size S.
func normNCS(p *Prep, x []int) (n, c, s int, err error) {
	if len(x) < 2 {
		return 0, 0, 0, Errorf(p, "input X has shape %v, expected N x C x ... (rank >= 2)", x)
	}
	s = 1
	for _, d := range x[2:] {
		s *= d
	}
	return x[0], x[1], s, nil
}

// normCheckVec checks that inputs [first, first+k) are vectors of c values.
func normCheckVec(p *Prep, c int, first int, names ...string) error {
	for i, name := range names {
		if err := normFloatIn(p, first+i, name); err != nil {
			return err
		}
		if sh := p.InShape(first + i); tensor.NumElements(sh) != c || len(sh) != 1 {
			return Errorf(p, "input %s has shape %v, expected [%d]", name, sh, c)
		}
	}
	return nil
}

// normMoments returns the mean and biased variance of channel ch of an
// N x C x S tensor.
func normMoments[T poolFloat](x []T, n, C, S, ch int) (mean, variance float64) {
	m := n * S
	if m == 0 {
		return 0, 0
	}
	shift := float64(x[ch*S])
	var s0, s1, q0, q1 float64
	for i := 0; i < n; i++ {
		row := x[(i*C+ch)*S : (i*C+ch+1)*S]
		j := 0
		for ; j+2 <= len(row); j += 2 {
			d0, d1 := float64(row[j])-shift, float64(row[j+1])-shift
			s0 += d0
			s1 += d1
			q0 += d0 * d0
			q1 += d1 * d1
		}
		if j < len(row) {
			d := float64(row[j]) - shift
			s0 += d
			q0 += d * d
		}
	}
	ds := (s0 + s1) / float64(m)
	variance = (q0+q1)/float64(m) - ds*ds
	if variance < 0 {
		variance = 0
	}
	return shift + ds, variance
}

// normAffine writes y = x*a + b over channel ch of an N x C x S tensor.
func normAffine[T poolFloat](x, y []T, n, C, S, ch int, a, b float64) {
	af, bf := T(a), T(b)
	for i := 0; i < n; i++ {
		off := (i*C + ch) * S
		xr, yr := x[off:off+S], y[off:off+S]
		for j, v := range xr {
			yr[j] = v*af + bf
		}
	}
}

// ---- BatchNormalization (ONNX) ----

func normBatchFactory(p *Prep) (Kernel, error) {
	n, c, s, err := normNCS(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	if err := normFloatIn(p, 0, "X"); err != nil {
		return nil, err
	}
	if p.Node.AttrInt("spatial", 1) == 0 {
		return nil, Unsupported(p, "spatial=0 (per-element statistics)")
	}
	if err := normCheckVec(p, c, 1, "scale", "B", "input_mean", "input_var"); err != nil {
		return nil, err
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	momentum := float64(p.Node.AttrFloat("momentum", 0.9))
	training := p.Node.AttrInt("training_mode", 0) != 0
	if p.Opset < 14 {
		// Before opset 14 the extra outputs were what asked for training.
		training = false
		for _, o := range p.Node.Outputs[1:] {
			training = training || o != ""
		}
	}
	for i := 1; i < len(p.Out) && i < len(p.Node.Outputs); i++ {
		if p.Node.Outputs[i] != "" && p.Out[i].DType != tensor.Float32 && p.Out[i].DType != tensor.Float64 {
			return nil, Unsupported(p, "output %d of dtype %v", i, p.Out[i].DType)
		}
	}
	if p.In[0].DType == tensor.Float32 {
		return normBatchKernel[float32](p, n, c, s, eps, momentum, training), nil
	}
	return normBatchKernel[float64](p, n, c, s, eps, momentum, training), nil
}

func normBatchKernel[T poolFloat](p *Prep, n, c, s int, eps, momentum float64, training bool) Kernel {
	grainInfer := poolWork(s)
	// The chunk functions are made once and read the call's tensors through
	// these variables, so a run allocates nothing.
	var x, y []T
	var scale, bias, mean, vr, rm, rv, sm, sv *tensor.Tensor
	infer := func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			ch := pl % c
			a := normGet(scale, ch) / math.Sqrt(normGet(vr, ch)+eps)
			b := normGet(bias, ch) - normGet(mean, ch)*a
			af, bf := T(a), T(b)
			xr, yr := x[pl*s:(pl+1)*s], y[pl*s:(pl+1)*s]
			for j, v := range xr {
				yr[j] = v*af + bf
			}
		}
	}
	train := func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			bm, bv := normMoments(x, n, c, s, ch)
			a := normGet(scale, ch) / math.Sqrt(bv+eps)
			normAffine(x, y, n, c, s, ch, a, normGet(bias, ch)-bm*a)
			// ONNX's training mode folds in the biased batch variance.
			if rm != nil {
				normSet(rm, ch, normGet(mean, ch)*momentum+bm*(1-momentum))
			}
			if rv != nil {
				normSet(rv, ch, normGet(vr, ch)*momentum+bv*(1-momentum))
			}
			if sm != nil {
				normSet(sm, ch, bm)
			}
			if sv != nil {
				normSet(sv, ch, bv)
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		x, y = in[0].Data().([]T), out[0].Data().([]T)
		scale, bias, mean, vr = in[1], in[2], in[3], in[4]
		if !training {
			p.Pool.For(n*c, grainInfer, infer)
			// Outputs beyond Y outside training mode: the inputs unchanged.
			for i, src := range [2]*tensor.Tensor{mean, vr} {
				if o := normOut(out, 1+i); o != nil {
					for ch := 0; ch < c; ch++ {
						normSet(o, ch, normGet(src, ch))
					}
				}
			}
		} else {
			rm, rv, sm, sv = normOut(out, 1), normOut(out, 2), normOut(out, 3), normOut(out, 4)
			p.Pool.For(c, 1, train)
		}
		x, y = nil, nil
		scale, bias, mean, vr, rm, rv, sm, sv = nil, nil, nil, nil, nil, nil, nil, nil
		return nil
	}
}

// ---- BatchNormTrain ----

func normBatchTrainFactory(p *Prep) (Kernel, error) {
	n, c, s, err := normNCS(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	if err := normFloatIn(p, 0, "X"); err != nil {
		return nil, err
	}
	if err := normCheckVec(p, c, 1, "scale", "B", "running_mean", "running_var"); err != nil {
		return nil, err
	}
	if n*s < 2 {
		return nil, Errorf(p, "input X has shape %v: batch-norm training needs more than one value per channel", p.InShape(0))
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	momentum := float64(p.Node.AttrFloat("momentum", 0.9))
	if p.In[0].DType == tensor.Float32 {
		return normBatchTrainKernel[float32](p, n, c, s, eps, momentum), nil
	}
	return normBatchTrainKernel[float64](p, n, c, s, eps, momentum), nil
}

func normBatchTrainKernel[T poolFloat](p *Prep, n, c, s int, eps, momentum float64) Kernel {
	m := float64(n * s)
	// The chunk function is made once and reads the call's tensors through
	// these variables, so a run allocates nothing.
	var x, y []T
	var scale, bias, rmIn, rvIn, rm, rv, sm, si *tensor.Tensor
	chunk := func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			bm, bv := normMoments(x, n, c, s, ch)
			inv := 1 / math.Sqrt(bv+eps)
			if y != nil {
				a := normGet(scale, ch) * inv
				normAffine(x, y, n, c, s, ch, a, normGet(bias, ch)-bm*a)
			}
			if rm != nil {
				normSet(rm, ch, normGet(rmIn, ch)*momentum+bm*(1-momentum))
			}
			if rv != nil {
				// PyTorch's running variance: the unbiased estimate.
				normSet(rv, ch, normGet(rvIn, ch)*momentum+bv*m/(m-1)*(1-momentum))
			}
			if sm != nil {
				normSet(sm, ch, bm)
			}
			if si != nil {
				normSet(si, ch, inv)
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		x, y = in[0].Data().([]T), nil
		if out[0] != nil {
			y = out[0].Data().([]T)
		}
		scale, bias, rmIn, rvIn = in[1], in[2], in[3], in[4]
		rm, rv, sm, si = normOut(out, 1), normOut(out, 2), normOut(out, 3), normOut(out, 4)
		p.Pool.For(c, 1, chunk)
		x, y = nil, nil
		scale, bias, rmIn, rvIn, rm, rv, sm, si = nil, nil, nil, nil, nil, nil, nil, nil
		return nil
	}
}

// ---- BatchNormGrad ----

func normBatchGradFactory(p *Prep) (Kernel, error) {
	n, c, s, err := normNCS(p, p.InShape(1))
	if err != nil {
		return nil, err
	}
	if err := normFloatIn(p, 1, "X"); err != nil {
		return nil, err
	}
	if !tensor.SameShape(p.InShape(0), p.InShape(1)) || p.In[0].DType != p.In[1].DType {
		return nil, Errorf(p, "dY is %v but X is %v; they must match", p.In[0], p.In[1])
	}
	if err := normCheckVec(p, c, 2, "scale", "saved_mean", "saved_inv_std"); err != nil {
		return nil, err
	}
	if p.In[0].DType == tensor.Float32 {
		return normBatchGradKernel[float32](p, n, c, s), nil
	}
	return normBatchGradKernel[float64](p, n, c, s), nil
}

// normBatchGradKernel: with xhat = (x-mean)*inv, dBias = sum dy, dScale =
// sum dy*xhat, and dx = scale*inv*(dy - dBias/M - xhat*dScale/M), which is
// an affine function of dy and x per channel.
func normBatchGradKernel[T poolFloat](p *Prep, n, c, s int) Kernel {
	m := float64(n * s)
	// The chunk function is made once and reads the call's tensors through
	// these variables, so a run allocates nothing.
	var dy, x, dx []T
	var scale, mean, invStd, dScale, dBias *tensor.Tensor
	chunk := func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mu, inv := normGet(mean, ch), normGet(invStd, ch)
			var sdy0, sdy1, sdx0, sdx1 float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * s
				g, xr := dy[off:off+s], x[off:off+s]
				j := 0
				for ; j+2 <= len(g); j += 2 {
					g0, g1 := float64(g[j]), float64(g[j+1])
					sdy0 += g0
					sdy1 += g1
					sdx0 += g0 * (float64(xr[j]) - mu)
					sdx1 += g1 * (float64(xr[j+1]) - mu)
				}
				if j < len(g) {
					g0 := float64(g[j])
					sdy0 += g0
					sdx0 += g0 * (float64(xr[j]) - mu)
				}
			}
			db := sdy0 + sdy1
			ds := (sdx0 + sdx1) * inv
			if dScale != nil {
				normSet(dScale, ch, ds)
			}
			if dBias != nil {
				normSet(dBias, ch, db)
			}
			if dx == nil {
				continue
			}
			k1 := normGet(scale, ch) * inv
			k2 := -k1 * inv * ds / m
			k3 := -k1*db/m - k2*mu
			a, b, d := T(k1), T(k2), T(k3)
			for i := 0; i < n; i++ {
				off := (i*c + ch) * s
				g, xr, o := dy[off:off+s], x[off:off+s], dx[off:off+s]
				for j := range o {
					o[j] = a*g[j] + b*xr[j] + d
				}
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		dy, x, dx = in[0].Data().([]T), in[1].Data().([]T), nil
		if out[0] != nil {
			dx = out[0].Data().([]T)
		}
		scale, mean, invStd = in[2], in[3], in[4]
		dScale, dBias = normOut(out, 1), normOut(out, 2)
		p.Pool.For(c, 1, chunk)
		dy, x, dx = nil, nil, nil
		scale, mean, invStd, dScale, dBias = nil, nil, nil, nil, nil
		return nil
	}
}

// ---- LayerNormalization ----

// normLayerGeom is X split at axis into rows of inner elements, with the
// index of the scale/bias element for each inner position (nil when they
// have exactly the inner shape).
type normLayerGeom struct {
	rows, inner int
	pidx        []int
}

// newNormLayerGeom resolves axis and the broadcast of the parameters
// (inputs first.. of names) onto X's dims from axis on.
func newNormLayerGeom(p *Prep, x []int, first int, names ...string) (*normLayerGeom, error) {
	a, err := graph.NormAxis(p.Node.AttrInt("axis", -1), len(x))
	if err != nil {
		return nil, Errorf(p, "attribute axis: %v", err)
	}
	g := &normLayerGeom{rows: tensor.NumElements(x[:a]), inner: tensor.NumElements(x[a:])}
	innerShape := x[a:]
	var ref []int
	for i, name := range names {
		if first+i >= len(p.In) || p.In[first+i] == nil {
			continue
		}
		sh := p.InShape(first + i)
		if len(sh) > len(innerShape) {
			return nil, Errorf(p, "input %s has shape %v, which does not broadcast onto %v", name, sh, innerShape)
		}
		full := make([]int, len(innerShape))
		off := len(innerShape) - len(sh)
		for j := range full {
			full[j] = 1
			if j >= off {
				full[j] = sh[j-off]
				if full[j] != 1 && full[j] != innerShape[j] {
					return nil, Errorf(p, "input %s has shape %v, which does not broadcast onto %v", name, sh, innerShape)
				}
			}
		}
		if ref == nil {
			ref = full
		} else if !tensor.SameShape(ref, full) {
			return nil, Unsupported(p, "scale and bias of different shapes")
		}
	}
	if ref != nil && !tensor.SameShape(ref, innerShape) {
		st := tensor.Strides(ref)
		is := tensor.Strides(innerShape)
		g.pidx = make([]int, g.inner)
		for j := range g.pidx {
			k, rem := 0, j
			for d := range innerShape {
				c := rem / is[d]
				rem %= is[d]
				if ref[d] != 1 {
					k += c * st[d]
				}
			}
			g.pidx[j] = k
		}
	}
	return g, nil
}

func (g *normLayerGeom) param(j int) int {
	if g.pidx == nil {
		return j
	}
	return g.pidx[j]
}

func normLayerFactory(p *Prep) (Kernel, error) {
	x := p.InShape(0)
	if err := normFloatIn(p, 0, "X"); err != nil {
		return nil, err
	}
	for i, name := range []string{"Scale", "B"} {
		if 1+i < len(p.In) && p.In[1+i] != nil && p.In[1+i].DType != p.In[0].DType {
			return nil, Unsupported(p, "input %s of dtype %v with X of %v", name, p.In[1+i].DType, p.In[0].DType)
		}
	}
	g, err := newNormLayerGeom(p, x, 1, "Scale", "B")
	if err != nil {
		return nil, err
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	if p.In[0].DType == tensor.Float32 {
		return normLayerKernel[float32](p, g, eps), nil
	}
	return normLayerKernel[float64](p, g, eps), nil
}

func normLayerKernel[T poolFloat](p *Prep, g *normLayerGeom, eps float64) Kernel {
	inner := g.inner
	// The chunk function is made once and reads the call's slices through
	// these variables, so a run allocates nothing.
	var x, scale, bias, y []T
	var meanOut, invOut *tensor.Tensor
	chunk := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*inner : (r+1)*inner]
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			mean := sum / float64(inner)
			var ss float64
			for _, v := range row {
				d := float64(v) - mean
				ss += d * d
			}
			inv := 1 / math.Sqrt(ss/float64(inner)+eps)
			if meanOut != nil {
				normSet(meanOut, r, mean)
			}
			if invOut != nil {
				normSet(invOut, r, inv)
			}
			if y == nil {
				continue
			}
			yr := y[r*inner : (r+1)*inner]
			mf, invf := T(mean), T(inv)
			switch {
			case g.pidx == nil && bias != nil:
				for j, v := range row {
					yr[j] = (v-mf)*invf*scale[j] + bias[j]
				}
			case g.pidx == nil:
				for j, v := range row {
					yr[j] = (v - mf) * invf * scale[j]
				}
			default:
				for j, v := range row {
					k := g.pidx[j]
					o := (v - mf) * invf * scale[k]
					if bias != nil {
						o += bias[k]
					}
					yr[j] = o
				}
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		x, scale, bias, y = in[0].Data().([]T), in[1].Data().([]T), nil, nil
		if len(in) > 2 && in[2] != nil {
			bias = in[2].Data().([]T)
		}
		if out[0] != nil {
			y = out[0].Data().([]T)
		}
		meanOut, invOut = normOut(out, 1), normOut(out, 2)
		p.Pool.For(g.rows, poolWork(inner), chunk)
		x, scale, bias, y = nil, nil, nil, nil
		meanOut, invOut = nil, nil
		return nil
	}
}

// ---- LayerNormGrad ----

func normLayerGradFactory(p *Prep) (Kernel, error) {
	x := p.InShape(1)
	if err := normFloatIn(p, 1, "X"); err != nil {
		return nil, err
	}
	if !tensor.SameShape(p.InShape(0), x) || p.In[0].DType != p.In[1].DType {
		return nil, Errorf(p, "dY is %v but X is %v; they must match", p.In[0], p.In[1])
	}
	if p.In[2].DType != p.In[1].DType {
		return nil, Unsupported(p, "scale of dtype %v with X of %v", p.In[2].DType, p.In[1].DType)
	}
	g, err := newNormLayerGeom(p, x, 2, "scale")
	if err != nil {
		return nil, err
	}
	for i, name := range []string{"mean", "inv_std"} {
		if err := normFloatIn(p, 3+i, name); err != nil {
			return nil, err
		}
		if tensor.NumElements(p.InShape(3+i)) != g.rows {
			return nil, Errorf(p, "input %s has shape %v, expected %d values (one per normalised row)", name, p.InShape(3+i), g.rows)
		}
	}
	nParam := tensor.NumElements(p.InShape(2))
	if p.In[1].DType == tensor.Float32 {
		return normLayerGradKernel[float32](p, g, nParam), nil
	}
	return normLayerGradKernel[float64](p, g, nParam), nil
}

// normLayerGradKernel: per row, with xhat = (x-mean)*inv and g = dy*scale,
// dx = inv*(g - mean(g) - xhat*mean(g*xhat)). dScale and dBias sum dy*xhat
// and dy over rows; that pass runs over column blocks so that workers own
// disjoint sums, then folds broadcast positions onto the parameter's shape.
func normLayerGradKernel[T poolFloat](p *Prep, g *normLayerGeom, nParam int) Kernel {
	inner := g.inner
	colScale := make([]float64, inner)
	colBias := make([]float64, inner)
	// The chunk functions are made once and read the call's slices and
	// tensors through these variables, so a run allocates nothing.
	var dy, x, scale, dx []T
	var mean, invStd *tensor.Tensor
	rows := func(lo, hi int) {
		for r := lo; r < hi; r++ {
			mu, inv := normGet(mean, r), normGet(invStd, r)
			gr, xr, o := dy[r*inner:(r+1)*inner], x[r*inner:(r+1)*inner], dx[r*inner:(r+1)*inner]
			var sg, sgx float64
			for j, v := range gr {
				gv := float64(v) * float64(scale[g.param(j)])
				sg += gv
				sgx += gv * (float64(xr[j]) - mu) * inv
			}
			mg, mgx := sg/float64(inner), sgx/float64(inner)
			for j, v := range gr {
				gv := float64(v) * float64(scale[g.param(j)])
				xh := (float64(xr[j]) - mu) * inv
				o[j] = T(inv * (gv - mg - xh*mgx))
			}
		}
	}
	cols := func(lo, hi int) {
		cs, cb := colScale[lo:hi], colBias[lo:hi]
		clear(cs)
		clear(cb)
		for r := 0; r < g.rows; r++ {
			mu, inv := normGet(mean, r), normGet(invStd, r)
			gr, xr := dy[r*inner+lo:r*inner+hi], x[r*inner+lo:r*inner+hi]
			for j, v := range gr {
				gv := float64(v)
				cs[j] += gv * (float64(xr[j]) - mu) * inv
				cb[j] += gv
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		dy, x, scale = in[0].Data().([]T), in[1].Data().([]T), in[2].Data().([]T)
		mean, invStd = in[3], in[4]
		defer func() { dy, x, scale, dx, mean, invStd = nil, nil, nil, nil, nil, nil }()
		dScale, dBias := normOut(out, 1), normOut(out, 2)
		if out[0] != nil {
			dx = out[0].Data().([]T)
			p.Pool.For(g.rows, poolWork(inner), rows)
		}
		if dScale == nil && dBias == nil {
			return nil
		}
		p.Pool.For(inner, poolWork(g.rows), cols)
		for k := 0; k < nParam; k++ {
			if dScale != nil {
				normSet(dScale, k, 0)
			}
			if dBias != nil {
				normSet(dBias, k, 0)
			}
		}
		for j := 0; j < inner; j++ {
			k := g.param(j)
			if dScale != nil {
				normSet(dScale, k, normGet(dScale, k)+colScale[j])
			}
			if dBias != nil {
				normSet(dBias, k, normGet(dBias, k)+colBias[j])
			}
		}
		return nil
	}
}
