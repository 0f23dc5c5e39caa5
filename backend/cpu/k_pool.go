package cpu

import (
	"math"
	"sync/atomic"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Pooling kernels: MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool
// and the gradient ops MaxPoolGrad, AveragePoolGrad.
//
// Windowed pools see every input as N*C independent planes of up to three
// spatial dims (lower ranks get leading dims of size one), and the work is
// spread over the planes. For each output index of each dim the factory
// precomputes where the window starts and which of its taps fall inside the
// input, so the inner loops never test bounds. MaxPool with a 2x2 window of
// stride 2 over a 2-D float32 input without padding (the common CNN
// downsampling) has its own loop.

func init() {
	Register(graph.DomainONNX, "MaxPool", poolMaxFactory)
	Register(graph.DomainONNX, "AveragePool", poolAvgFactory)
	Register(graph.DomainONNX, "GlobalMaxPool", poolGlobalFactory(true))
	Register(graph.DomainONNX, "GlobalAveragePool", poolGlobalFactory(false))
	Register(graph.DomainGotrain, "MaxPoolGrad", poolMaxGradFactory)
	Register(graph.DomainGotrain, "AveragePoolGrad", poolAvgGradFactory)
}

// poolNum are the element types the pooling loops are instantiated for.
type poolNum interface {
	~float32 | ~float64 | ~int8 | ~uint8
}

// poolGeom is a pooling window laid over 3 spatial dims (D, H, W).
type poolGeom struct {
	planes            int // N*C
	in, out           [3]int
	k, d              [3]int
	inPlane, outPlane int
	// Per dim and output index: the position of tap 0 (negative in the
	// begin padding), the range [lo, hi) of taps inside the input, and the
	// number of taps inside the padded extent (AveragePool's
	// count_include_pad divisor).
	start, lo, hi, padCnt [3][]int
}

// poolWork is the grain for spreading planes of perPlane operations: small
// tensors stay on one goroutine.
func poolWork(perPlane int) int { return max(1, 32768/max(1, perPlane)) }

// newPoolGeom resolves the window of a MaxPool/AveragePool(-Grad) node for
// the concrete input shape x.
func newPoolGeom(p *Prep, x []int) (*poolGeom, error) {
	if len(x) < 3 {
		return nil, Errorf(p, "input X has shape %v, expected N x C x D1 x ... (rank >= 3)", x)
	}
	sp := len(x) - 2
	if sp > 3 {
		return nil, Unsupported(p, "%d spatial dims (at most 3 are implemented)", sp)
	}
	w, err := graph.ResolvePoolWindow(p.Node, x[2:])
	if err != nil {
		return nil, err
	}
	g := &poolGeom{planes: x[0] * x[1]}
	off := 3 - sp
	for i := 0; i < 3; i++ {
		in, out, k, s, d, pb, pe := 1, 1, 1, 1, 1, 0, 0
		if i >= off {
			j := i - off
			in, out, k, s, d, pb, pe = w.In[j], w.Out[j], w.Kernel[j], w.Strides[j], w.Dilations[j], w.PadBegin[j], w.PadEnd[j]
		}
		g.in[i], g.out[i], g.k[i], g.d[i] = in, out, k, d
		for o := 0; o < out; o++ {
			st := o*s - pb
			lo, hi, pc := k, 0, 0
			for t := 0; t < k; t++ {
				pos := st + t*d
				if pos >= 0 && pos < in {
					lo = min(lo, t)
					hi = t + 1
				}
				if pos >= -pb && pos < in+pe {
					pc++
				}
			}
			if hi == 0 {
				lo = 0
			}
			g.start[i] = append(g.start[i], st)
			g.lo[i] = append(g.lo[i], lo)
			g.hi[i] = append(g.hi[i], hi)
			g.padCnt[i] = append(g.padCnt[i], pc)
		}
	}
	g.inPlane = g.in[0] * g.in[1] * g.in[2]
	g.outPlane = g.out[0] * g.out[1] * g.out[2]
	return g, nil
}

// twoByTwo reports whether the window is the plain 2x2 stride-2 one over a
// 2-D input without padding or dilation.
func (g *poolGeom) twoByTwo() bool {
	if g.k != [3]int{1, 2, 2} || g.d != [3]int{1, 1, 1} {
		return false
	}
	for i := 1; i < 3; i++ {
		for o := 0; o < g.out[i]; o++ {
			if g.start[i][o] != 2*o || g.hi[i][o] != 2 || g.lo[i][o] != 0 {
				return false
			}
		}
	}
	return true
}

// flatIndex maps (z, y, x) of a plane to MaxPool's Indices value: row-major,
// or column-major over the spatial dims for storage_order 1.
func (g *poolGeom) flatIndex(z, y, x int, colMajor bool) int {
	if colMajor {
		return z + g.in[0]*(y+g.in[1]*x)
	}
	return (z*g.in[1]+y)*g.in[2] + x
}

func poolLowest[T poolNum]() T {
	var z T
	switch any(z).(type) {
	case float32:
		return T(float32(math.Inf(-1)))
	case float64:
		return T(math.Inf(-1))
	case int8:
		v := int8(math.MinInt8)
		return T(v)
	}
	return 0
}

// poolMaxPlanes runs MaxPool over planes [lo, hi).
func poolMaxPlanes[T poolNum](g *poolGeom, x, y []T, ind []int64, lo, hi int, colMajor bool) {
	lowest := poolLowest[T]()
	for p := lo; p < hi; p++ {
		xp := x[p*g.inPlane : (p+1)*g.inPlane]
		yp := y[p*g.outPlane : (p+1)*g.outPlane]
		base := int64(p * g.inPlane)
		o := 0
		for od := 0; od < g.out[0]; od++ {
			z0, zlo, zhi := g.start[0][od], g.lo[0][od], g.hi[0][od]
			for oh := 0; oh < g.out[1]; oh++ {
				y0, ylo, yhi := g.start[1][oh], g.lo[1][oh], g.hi[1][oh]
				for ow := 0; ow < g.out[2]; ow++ {
					x0, xlo, xhi := g.start[2][ow], g.lo[2][ow], g.hi[2][ow]
					if ind == nil {
						// Values only: the branch-free builtin max (taps
						// lie inside the input, so lowest never wins
						// unless the window is empty).
						best := lowest
						for kz := zlo; kz < zhi; kz++ {
							z := z0 + kz*g.d[0]
							for ky := ylo; ky < yhi; ky++ {
								row := xp[(z*g.in[1]+y0+ky*g.d[1])*g.in[2]:]
								for kx := xlo; kx < xhi; kx++ {
									best = max(best, row[x0+kx*g.d[2]])
								}
							}
						}
						yp[o] = best
						o++
						continue
					}
					best, bz, by, bx := lowest, -1, 0, 0
					for kz := zlo; kz < zhi; kz++ {
						z := z0 + kz*g.d[0]
						for ky := ylo; ky < yhi; ky++ {
							yy := y0 + ky*g.d[1]
							row := xp[(z*g.in[1]+yy)*g.in[2]:]
							for kx := xlo; kx < xhi; kx++ {
								xx := x0 + kx*g.d[2]
								if v := row[xx]; bz < 0 || v > best {
									best, bz, by, bx = v, z, yy, xx
								}
							}
						}
					}
					yp[o] = best
					if bz < 0 {
						ind[p*g.outPlane+o] = -1
					} else {
						ind[p*g.outPlane+o] = base + int64(g.flatIndex(bz, by, bx, colMajor))
					}
					o++
				}
			}
		}
	}
}

// poolMax2x2 is MaxPool 2x2 stride 2 on float32 planes [lo, hi) of H x W.
func poolMax2x2(g *poolGeom, x, y []float32, ind []int64, lo, hi int) {
	H, W, OH, OW := g.in[1], g.in[2], g.out[1], g.out[2]
	for p := lo; p < hi; p++ {
		xp := x[p*g.inPlane : (p+1)*g.inPlane]
		yp := y[p*g.outPlane : (p+1)*g.outPlane]
		for oh := 0; oh < OH; oh++ {
			r0 := xp[2*oh*W : 2*oh*W+2*OW]
			r1 := xp[(2*oh+1)*W : (2*oh+1)*W+2*OW]
			yr := yp[oh*OW : oh*OW+OW]
			if ind == nil {
				// The builtin max is branch-free (it propagates NaN, as
				// any comparison order would have to choose something).
				for ow := range yr {
					p0, p1 := r0[2*ow:2*ow+2], r1[2*ow:2*ow+2]
					yr[ow] = max(p0[0], p0[1], p1[0], p1[1])
				}
				continue
			}
			ir := ind[p*g.outPlane+oh*OW : p*g.outPlane+oh*OW+OW]
			i0 := p*H*W + 2*oh*W
			// The first tap holding the maximum, chosen with conditional
			// moves rather than branches that random data mispredicts.
			offs := [4]int{0, 1, W, W + 1}
			for ow := range yr {
				p0, p1 := r0[2*ow:2*ow+2], r1[2*ow:2*ow+2]
				a, b, c, d := p0[0], p0[1], p1[0], p1[1]
				m := max(a, b, c, d)
				// The builtin max returns one of its arguments (+0 over -0),
				// so the first tap whose bits equal m's is the first maximum;
				// k is found with arithmetic on the bit patterns alone.
				mb := math.Float32bits(m)
				nA, nB, nC := poolNE(math.Float32bits(a), mb), poolNE(math.Float32bits(b), mb), poolNE(math.Float32bits(c), mb)
				k := nA * (1 + nB*(1+nC))
				yr[ow], ir[ow] = m, int64(i0+2*ow+offs[k&3])
			}
		}
	}
}

// poolNE is 1 when x != y, else 0, without a branch.
func poolNE(x, y uint32) int { return int((uint64(x^y) + 0xffffffff) >> 32) }

func poolMaxFactory(p *Prep) (Kernel, error) {
	x := p.InShape(0)
	g, err := newPoolGeom(p, x)
	if err != nil {
		return nil, err
	}
	colMajor := p.Node.AttrInt("storage_order", 0) == 1
	wantInd := len(p.Node.Outputs) > 1 && p.Node.Outputs[1] != ""
	grain := poolWork(g.outPlane * g.k[0] * g.k[1] * g.k[2])
	switch p.In[0].DType {
	case tensor.Float32:
		fast := g.twoByTwo() && !colMajor
		// One chunk function, made here, reads the call's slices: a run
		// allocates nothing.
		var xs, ys []float32
		var ind []int64
		chunk := func(lo, hi int) {
			if fast {
				poolMax2x2(g, xs, ys, ind, lo, hi)
			} else {
				poolMaxPlanes(g, xs, ys, ind, lo, hi, colMajor)
			}
		}
		return func(in, out []*tensor.Tensor) error {
			xs, ys, ind = in[0].Float32s(), out[0].Float32s(), nil
			if wantInd && len(out) > 1 && out[1] != nil {
				ind = out[1].Int64s()
			}
			if cp := p.Pool.cpool(); fast && cp != nil && g.planes >= 2*grain {
				cp.maxPool2x2(xs, ys, ind, g.planes, g.in[1], g.in[2], g.out[1], g.out[2])
				xs, ys, ind = nil, nil, nil
				return nil
			}
			p.Pool.For(g.planes, grain, chunk)
			xs, ys, ind = nil, nil, nil
			return nil
		}, nil
	case tensor.Float64:
		return poolMaxKernel[float64](p, g, grain, wantInd, colMajor), nil
	case tensor.Int8:
		return poolMaxKernel[int8](p, g, grain, wantInd, colMajor), nil
	case tensor.Uint8:
		return poolMaxKernel[uint8](p, g, grain, wantInd, colMajor), nil
	}
	return nil, Unsupported(p, "MaxPool of %v", p.In[0].DType)
}

func poolMaxKernel[T poolNum](p *Prep, g *poolGeom, grain int, wantInd, colMajor bool) Kernel {
	// As in the float32 branch of poolMaxFactory: one chunk function.
	var xs, ys []T
	var ind []int64
	chunk := func(lo, hi int) { poolMaxPlanes(g, xs, ys, ind, lo, hi, colMajor) }
	return func(in, out []*tensor.Tensor) error {
		xs, ys, ind = in[0].Data().([]T), out[0].Data().([]T), nil
		if wantInd && len(out) > 1 && out[1] != nil {
			ind = out[1].Int64s()
		}
		p.Pool.For(g.planes, grain, chunk)
		xs, ys, ind = nil, nil, nil
		return nil
	}
}

// poolFloat are the element types of the averaging kernels.
type poolFloat interface{ ~float32 | ~float64 }

// divisors returns AveragePool's divisor for each output position.
func (g *poolGeom) divisors(includePad bool) []float64 {
	div := make([]float64, 0, g.outPlane)
	for od := 0; od < g.out[0]; od++ {
		for oh := 0; oh < g.out[1]; oh++ {
			for ow := 0; ow < g.out[2]; ow++ {
				var n int
				if includePad {
					n = g.padCnt[0][od] * g.padCnt[1][oh] * g.padCnt[2][ow]
				} else {
					n = (g.hi[0][od] - g.lo[0][od]) * (g.hi[1][oh] - g.lo[1][oh]) * (g.hi[2][ow] - g.lo[2][ow])
				}
				if n == 0 {
					div = append(div, 0) // empty window: output 0
				} else {
					div = append(div, 1/float64(n))
				}
			}
		}
	}
	return div
}

// poolAvgPlanes runs AveragePool over planes [lo, hi); inv holds 1/divisor.
func poolAvgPlanes[T poolFloat](g *poolGeom, x, y []T, inv []float64, lo, hi int) {
	for p := lo; p < hi; p++ {
		xp := x[p*g.inPlane : (p+1)*g.inPlane]
		yp := y[p*g.outPlane : (p+1)*g.outPlane]
		o := 0
		for od := 0; od < g.out[0]; od++ {
			z0, zlo, zhi := g.start[0][od], g.lo[0][od], g.hi[0][od]
			for oh := 0; oh < g.out[1]; oh++ {
				y0, ylo, yhi := g.start[1][oh], g.lo[1][oh], g.hi[1][oh]
				for ow := 0; ow < g.out[2]; ow++ {
					x0, xlo, xhi := g.start[2][ow], g.lo[2][ow], g.hi[2][ow]
					var sum float64
					for kz := zlo; kz < zhi; kz++ {
						z := z0 + kz*g.d[0]
						for ky := ylo; ky < yhi; ky++ {
							row := xp[(z*g.in[1]+y0+ky*g.d[1])*g.in[2]:]
							for kx := xlo; kx < xhi; kx++ {
								sum += float64(row[x0+kx*g.d[2]])
							}
						}
					}
					yp[o] = T(sum * inv[o])
					o++
				}
			}
		}
	}
}

// poolAvgGradPlanes spreads dY over dX for planes [lo, hi).
func poolAvgGradPlanes[T poolFloat](g *poolGeom, dy, dx []T, inv []float64, lo, hi int) {
	for p := lo; p < hi; p++ {
		xp := dx[p*g.inPlane : (p+1)*g.inPlane]
		clear(xp)
		yp := dy[p*g.outPlane : (p+1)*g.outPlane]
		o := 0
		for od := 0; od < g.out[0]; od++ {
			z0, zlo, zhi := g.start[0][od], g.lo[0][od], g.hi[0][od]
			for oh := 0; oh < g.out[1]; oh++ {
				y0, ylo, yhi := g.start[1][oh], g.lo[1][oh], g.hi[1][oh]
				for ow := 0; ow < g.out[2]; ow++ {
					x0, xlo, xhi := g.start[2][ow], g.lo[2][ow], g.hi[2][ow]
					v := T(float64(yp[o]) * inv[o])
					for kz := zlo; kz < zhi; kz++ {
						z := z0 + kz*g.d[0]
						for ky := ylo; ky < yhi; ky++ {
							row := xp[(z*g.in[1]+y0+ky*g.d[1])*g.in[2]:]
							for kx := xlo; kx < xhi; kx++ {
								row[x0+kx*g.d[2]] += v
							}
						}
					}
					o++
				}
			}
		}
	}
}

func poolAvgSetup(p *Prep, x []int) (*poolGeom, []float64, int, error) {
	g, err := newPoolGeom(p, x)
	if err != nil {
		return nil, nil, 0, err
	}
	inv := g.divisors(p.Node.AttrInt("count_include_pad", 0) != 0)
	return g, inv, poolWork(g.outPlane * g.k[0] * g.k[1] * g.k[2]), nil
}

func poolAvgFactory(p *Prep) (Kernel, error) {
	g, inv, grain, err := poolAvgSetup(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	switch p.In[0].DType {
	case tensor.Float32:
		return poolAvgKernel[float32](p, g, inv, grain), nil
	case tensor.Float64:
		return poolAvgKernel[float64](p, g, inv, grain), nil
	}
	return nil, Unsupported(p, "AveragePool of %v", p.In[0].DType)
}

func poolAvgKernel[T poolFloat](p *Prep, g *poolGeom, inv []float64, grain int) Kernel {
	return planeKernel(p, g.planes, grain, func(x, y []T, lo, hi int) { poolAvgPlanes(g, x, y, inv, lo, hi) })
}

// planeKernel runs fn over planes [lo, hi) of input 0 into output 0, the
// planes spread over the pool. The chunk function is made once and reads
// the call's slices through variables it sets and clears, so a run
// allocates nothing.
func planeKernel[T any](p *Prep, planes, grain int, fn func(x, y []T, lo, hi int)) Kernel {
	var xs, ys []T
	chunk := func(lo, hi int) { fn(xs, ys, lo, hi) }
	return func(in, out []*tensor.Tensor) error {
		xs, ys = in[0].Data().([]T), out[0].Data().([]T)
		p.Pool.For(planes, grain, chunk)
		xs, ys = nil, nil
		return nil
	}
}

func poolAvgGradFactory(p *Prep) (Kernel, error) {
	x, dy := p.InShape(1), p.InShape(0)
	g, inv, grain, err := poolAvgSetup(p, x)
	if err != nil {
		return nil, err
	}
	if len(dy) != len(x) || dy[0]*dy[1] != g.planes || tensor.NumElements(dy) != g.planes*g.outPlane {
		return nil, Errorf(p, "dY has shape %v; AveragePool over X %v gives %v x %v", dy, x, x[:2], g.out)
	}
	switch p.In[1].DType {
	case tensor.Float32:
		return poolAvgGradKernel[float32](p, g, inv, grain), nil
	case tensor.Float64:
		return poolAvgGradKernel[float64](p, g, inv, grain), nil
	}
	return nil, Unsupported(p, "AveragePoolGrad of %v", p.In[1].DType)
}

func poolAvgGradKernel[T poolFloat](p *Prep, g *poolGeom, inv []float64, grain int) Kernel {
	return planeKernel(p, g.planes, grain, func(dy, dx []T, lo, hi int) { poolAvgGradPlanes(g, dy, dx, inv, lo, hi) })
}

func poolMaxGradFactory(p *Prep) (Kernel, error) {
	dy, idx, x := p.InShape(0), p.InShape(1), p.InShape(2)
	if len(x) < 2 {
		return nil, Errorf(p, "input X has shape %v, expected N x C x ...", x)
	}
	if !tensor.SameShape(dy, idx) {
		return nil, Errorf(p, "dY has shape %v but Indices has %v; both are MaxPool's output shape", dy, idx)
	}
	if len(dy) != len(x) || dy[0] != x[0] || dy[1] != x[1] {
		return nil, Errorf(p, "dY has shape %v, which is not a pooling of X %v", dy, x)
	}
	planes := x[0] * x[1]
	inPlane, outPlane := 0, 0
	if planes > 0 {
		inPlane, outPlane = tensor.NumElements(x)/planes, tensor.NumElements(dy)/planes
	}
	// relu_mask is set by the fusion pass (fuse.go) when the gradient then
	// went through the ReluGrad of the Relu that produced X: a tap whose X
	// is not positive passes no gradient.
	relu := p.Node.AttrInt(fusedReluMask, 0) != 0
	switch p.In[2].DType {
	case tensor.Float32:
		return poolMaxGradKernel[float32](p, planes, inPlane, outPlane, relu), nil
	case tensor.Float64:
		return poolMaxGradKernel[float64](p, planes, inPlane, outPlane, relu), nil
	}
	return nil, Unsupported(p, "MaxPoolGrad of %v", p.In[2].DType)
}

// poolMaxGradKernel scatters dY into dX. A window lies inside one plane, so
// planes are independent; an index outside its plane is an error, not a
// silent write elsewhere.
func poolMaxGradKernel[T poolFloat](p *Prep, planes, inPlane, outPlane int, relu bool) Kernel {
	// The chunk function is made once and reads the call's slices through
	// these variables, so a run allocates nothing.
	var dy, dx, x []T
	var ind []int64
	var bad atomic.Int64 // 1 + position of an index out of its plane
	chunk := func(lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			xp := dx[pl*inPlane : (pl+1)*inPlane]
			clear(xp)
			base := int64(pl * inPlane)
			for o := pl * outPlane; o < (pl+1)*outPlane; o++ {
				if ind[o] == -1 {
					continue // MaxPool's mark of a window with no input tap
				}
				i := ind[o] - base
				if i < 0 || i >= int64(inPlane) {
					bad.CompareAndSwap(0, int64(o)+1)
					continue
				}
				if relu && !(x[base+i] > 0) {
					continue
				}
				xp[i] += dy[o]
			}
		}
	}
	grain := poolWork(inPlane + outPlane)
	return func(in, out []*tensor.Tensor) error {
		dy, ind, dx = in[0].Data().([]T), in[1].Int64s(), out[0].Data().([]T)
		x = in[2].Data().([]T)
		bad.Store(0)
		dy32, is32 := any(dy).([]float32)
		if cp := p.Pool.cpool(); is32 && cp != nil && planes >= 2*grain {
			bad.Store(cp.maxPoolGrad(dy32, ind, any(x).([]float32), any(dx).([]float32), planes, inPlane, outPlane, relu))
		} else {
			p.Pool.For(planes, grain, chunk)
		}
		indices := ind
		dy, ind, dx, x = nil, nil, nil, nil
		if b := bad.Load(); b != 0 {
			o := b - 1
			pl := o / int64(max(outPlane, 1))
			return Errorf(p, "Indices[%d] = %d lies outside its plane [%d, %d) of X", o, indices[o], pl*int64(inPlane), (pl+1)*int64(inPlane))
		}
		return nil
	}
}

func poolGlobalFactory(isMax bool) Factory {
	return func(p *Prep) (Kernel, error) {
		x := p.InShape(0)
		if len(x) < 2 {
			return nil, Errorf(p, "input X has shape %v, expected N x C x ...", x)
		}
		planes := x[0] * x[1]
		inner := 1
		for _, d := range x[2:] {
			inner *= d
		}
		switch p.In[0].DType {
		case tensor.Float32:
			return poolGlobalKernel[float32](p, isMax, planes, inner), nil
		case tensor.Float64:
			return poolGlobalKernel[float64](p, isMax, planes, inner), nil
		}
		return nil, Unsupported(p, "%s of %v", p.Node.OpType, p.In[0].DType)
	}
}

func poolGlobalKernel[T poolFloat](p *Prep, isMax bool, planes, inner int) Kernel {
	return planeKernel(p, planes, poolWork(inner), func(xs, ys []T, lo, hi int) {
		for pl := lo; pl < hi; pl++ {
			row := xs[pl*inner : (pl+1)*inner]
			if isMax {
				best := T(math.Inf(-1))
				for _, v := range row {
					if v > best {
						best = v
					}
				}
				ys[pl] = best
				continue
			}
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			ys[pl] = T(sum / float64(inner))
		}
	})
}
