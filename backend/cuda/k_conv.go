package cuda

import (
	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
)

// Convolution (kernels/conv.cu and cuBLAS): Conv and ConvGrad as im2col +
// GEMM in NCHW, per group, over chunks of images whose column buffer fits
// in colLimit floats:
//
//	col[n] = im2col(X[n, g])                       [K = Cg*kvol, S = outVol]
//	Y[n, g] = act(W[g] x col[n] + bias)            batched over n, W shared; one pass adds the bias and a fused ReLU
//	P[n] = dY[n, g] x col[n]^T                     batched over n
//	dW[g] = sum_n P[n]                             in image order, in float
//	dX[n, g] = col2im(W[g]^T x dY[n, g])           batched over n
//	dB = sum of dY over images and positions       (the CPU's order)
//
// So a convolution and its gradient are a few strided-batched products and
// a few elementwise passes, whatever the batch size. The products differ
// from the CPU's (cuBLAS against OpenBLAS) in summation order: results
// agree to float32 rounding of the sums, not bit for bit.

var cvMod = newModule("conv", "conv.cu")

var (
	convIm2col  = cvMod.Def("conv_im2col_k", "float* col, const float* x, const int* geo, int n0, int nb, int c, int cg, int g, int chunks", "conv_im2col(col, x, geo, n0, nb, c, cg, g, chunks);")
	convCol2im  = cvMod.Def("conv_col2im_k", "float* dx, const float* col, const int* geo, int n0, int nb, int c, int cg, int g, int chunks", "conv_col2im(dx, col, geo, n0, nb, c, cg, g, chunks);")
	convEpi     = cvMod.Def("conv_epilogue_k", "float* y, const float* b, int m, int s, int relu, int chunks", "conv_epilogue(y, b, m, s, relu, chunks);")
	convWSum    = cvMod.Def("conv_wsum_k", "float* dw, const float* part, int nb, int mk, int accumulate", "conv_wsum(dw, part, nb, mk, accumulate);")
	convBGPlane = cvMod.Def("conv_bias_grad_planes_k", "float* part, const float* dy, int planes, int vol", "conv_bias_grad_planes(part, dy, planes, vol);")
	convBGSum   = cvMod.Def("conv_bias_grad_sum_k", "float* db, const float* part, int n, int m", "conv_bias_grad_sum(db, part, n, m);")
)

// colLimit bounds the column buffer and the weight gradient's per-image
// products (floats): 128 MiB each.
const colLimit = 32 << 20

func init() {
	Register(graph.DomainONNX, "Conv", convFactory(false))
	Register(graph.DomainGotrain, "ConvGrad", convFactory(true))
}

type convPlan struct {
	n, c, m, group, cg, mg int
	inVol, outVol, kvol    int
	K, S                   int
	nb                     int // images per chunk
	geo                    []int32
	relu                   int // a fused ReLU (forward)
	// gemm is the product descriptor each launch refills: one, reused, so
	// that a run allocates nothing.
	gemm Gemm
}

func newConvPlan(p *Prep, x, w []int) (*convPlan, error) {
	if len(x) < 3 || len(x) > 5 || len(w) != len(x) {
		return nil, Unsupported(p, "Conv of X %v and W %v (1 to 3 spatial dims)", x, w)
	}
	if _, err := numel(p, x, "X"); err != nil {
		return nil, err
	}
	g, err := graph.ResolveConv(p.Node, false, x[2:], w[2:])
	if err != nil {
		return nil, err
	}
	pl := &convPlan{n: x[0], c: x[1], m: w[0], group: g.Group}
	if pl.c%g.Group != 0 || pl.m%g.Group != 0 || w[1]*g.Group != pl.c {
		return nil, Errorf(p, "X has %d channels and W %v for group %d", pl.c, w, g.Group)
	}
	pl.cg, pl.mg = pl.c/g.Group, pl.m/g.Group
	sp := len(x) - 2
	pl.geo = make([]int32, 18)
	off := 3 - sp
	pl.inVol, pl.outVol, pl.kvol = 1, 1, 1
	for i := 0; i < 3; i++ {
		in, out, k, s, d, pb := 1, 1, 1, 1, 1, 0
		if i >= off {
			j := i - off
			in, out, k, s, d, pb = g.In[j], g.Out[j], g.Kernel[j], g.Strides[j], g.Dilations[j], g.PadBegin[j]
		}
		for f, v := range []int{in, out, k, s, d, pb} {
			pl.geo[3*f+i] = int32(v)
		}
		pl.inVol *= in
		pl.outVol *= out
		pl.kvol *= k
	}
	pl.K, pl.S = pl.cg*pl.kvol, pl.outVol
	per := pl.K * pl.S
	if per > colLimit {
		return nil, Unsupported(p, "one image's column buffer of %d floats (limit %d)", per, colLimit)
	}
	pl.nb = max(1, min(pl.n, colLimit/max(per, 1)))
	if part := pl.mg * pl.K; part > colLimit {
		return nil, Unsupported(p, "a weight gradient of %d floats per group (limit %d)", part, colLimit)
	} else {
		pl.nb = max(1, min(pl.nb, colLimit/max(part, 1)))
	}
	if _, err := numel(p, []int{pl.n, pl.m, pl.outVol}, "Y"); err != nil {
		return nil, err
	}
	return pl, nil
}

func convFactory(grad bool) Factory {
	return func(p *Prep) (*Kernel, error) {
		xi, wi := 0, 1
		if grad {
			xi, wi = 1, 2
		}
		for i := 0; i <= wi; i++ {
			if err := needF32(p, i, "an input"); err != nil {
				return nil, err
			}
		}
		pl, err := newConvPlan(p, p.InShape(xi), p.InShape(wi))
		if err != nil {
			return nil, err
		}
		k := &Kernel{Consts: [][]int32{pl.geo}, Scratch: []int64{4 * int64(pl.nb*pl.K*pl.S)}}
		if !grad {
			switch a := p.Node.AttrString(plan.AttrFusedActivation, ""); a {
			case "":
			case "Relu":
				pl.relu = 1
			default:
				return nil, Unsupported(p, "a fused %s activation", a)
			}
			if p.Node.AttrInt(plan.AttrFusedMaxPool, 0) != 0 {
				return nil, Unsupported(p, "a fused MaxPool")
			}
			hasBias := p.hasIn(2)
			if hasBias {
				if err := needF32(p, 2, "B"); err != nil {
					return nil, err
				}
				if s := p.InShape(2); len(s) != 1 || s[0] != pl.m {
					return nil, Errorf(p, "bias B has shape %v; expected [%d]", s, pl.m)
				}
			}
			k.Run = func(c *Call) error { return pl.forward(c, hasBias) }
			return k, nil
		}
		// Scratch: the columns, the weight gradient's per-image products,
		// the bias gradient's per-plane sums.
		k.Scratch = append(k.Scratch, 4*int64(max(pl.nb*pl.mg*pl.K, 1)), 4*int64(max(pl.n*pl.m, 1)))
		want := [3]bool{p.hasOut(0), p.hasOut(1), p.hasOut(2)}
		k.Run = func(c *Call) error { return pl.backward(c, want) }
		return k, nil
	}
}

func (pl *convPlan) forward(c *Call, bias bool) error {
	x, w, y, col := c.In[0], c.In[1], c.Out[0], c.Scratch[0]
	total := pl.n * pl.m * pl.S
	if total == 0 {
		return nil
	}
	for n0 := 0; n0 < pl.n; n0 += pl.nb {
		nb := min(pl.nb, pl.n-n0)
		for g := 0; g < pl.group; g++ {
			if err := pl.im2col(c, col, x, n0, nb, g); err != nil {
				return err
			}
			pl.gemm = Gemm{M: pl.mg, N: pl.S, K: pl.K, Alpha: 1,
				A: w + Ptr(4*g*pl.mg*pl.K), LDA: pl.K,
				B: col, LDB: pl.S, StrideB: int64(pl.K * pl.S),
				C: y + Ptr(4*((n0*pl.m+g*pl.mg)*pl.S)), LDC: pl.S, StrideC: int64(pl.m * pl.S),
				Batch: nb}
			if err := c.S.Gemm(&pl.gemm); err != nil {
				return err
			}
		}
	}
	if !bias && pl.relu == 0 {
		return nil
	}
	b := Ptr(0)
	if bias {
		b = c.In[2]
	}
	grid, block, chunks := planeGrid(pl.n*pl.m, pl.S)
	return c.S.Launch(convEpi, grid, block, 0, c.A(P(y), P(b), I(pl.m), I(pl.S), I(pl.relu), I(chunks)))
}

// im2col fills the column buffer for images [n0, n0+nb) and group g.
func (pl *convPlan) im2col(c *Call, col, x Ptr, n0, nb, g int) error {
	if pl.K*pl.S == 0 {
		return nil
	}
	grid, block, chunks := planeGrid(nb*pl.K, pl.S)
	return c.S.Launch(convIm2col, grid, block, 0, c.A(P(col), P(x), P(c.Consts[0]), I(n0), I(nb), I(pl.c), I(pl.cg), I(g), I(chunks)))
}

// backward: inputs dY, X, W; outputs dX, dW, dB (each optional).
func (pl *convPlan) backward(c *Call, want [3]bool) error {
	dy, x, w, col, part := c.In[0], c.In[1], c.In[2], c.Scratch[0], c.Scratch[1]
	if want[2] {
		bpart := c.Scratch[2]
		planes := pl.n * pl.m
		if planes > 0 {
			if err := c.S.Launch(convBGPlane, grid1(planes), block1, 0, c.A(P(bpart), P(dy), I(planes), I(pl.S))); err != nil {
				return err
			}
		}
		if pl.m > 0 {
			if err := c.S.Launch(convBGSum, grid1(pl.m), block1, 0, c.A(P(c.Out[2]), P(bpart), I(pl.n), I(pl.m))); err != nil {
				return err
			}
		}
	}
	if want[1] && pl.n == 0 {
		if err := c.S.Memset32(c.Out[1], 0, pl.m*pl.K); err != nil {
			return err
		}
	}
	for n0 := 0; n0 < pl.n; n0 += pl.nb {
		nb := min(pl.nb, pl.n-n0)
		for g := 0; g < pl.group; g++ {
			if want[1] {
				if err := pl.im2col(c, col, x, n0, nb, g); err != nil {
					return err
				}
				// P[i] = dY[n0+i, g] (mg x S) x col[i]^T (S x K), then
				// dW[g] (+)= sum_i P[i].
				pl.gemm = Gemm{TransB: true, M: pl.mg, N: pl.K, K: pl.S, Alpha: 1,
					A: dy + Ptr(4*((n0*pl.m+g*pl.mg)*pl.S)), LDA: pl.S, StrideA: int64(pl.m * pl.S),
					B: col, LDB: pl.S, StrideB: int64(pl.K * pl.S),
					C: part, LDC: pl.K, StrideC: int64(pl.mg * pl.K),
					Batch: nb}
				if err := c.S.Gemm(&pl.gemm); err != nil {
					return err
				}
				mk := pl.mg * pl.K
				acc := 0
				if n0 > 0 {
					acc = 1
				}
				if err := c.S.Launch(convWSum, grid1(mk), block1, 0, c.A(P(c.Out[1]+Ptr(4*g*mk)), P(part), I(nb), I(mk), I(acc))); err != nil {
					return err
				}
			}
			if want[0] {
				pl.gemm = Gemm{TransA: true, M: pl.K, N: pl.S, K: pl.mg, Alpha: 1,
					A: w + Ptr(4*g*pl.mg*pl.K), LDA: pl.K,
					B: dy + Ptr(4*((n0*pl.m+g*pl.mg)*pl.S)), LDB: pl.S, StrideB: int64(pl.m * pl.S),
					C: col, LDC: pl.S, StrideC: int64(pl.K * pl.S),
					Batch: nb}
				if err := c.S.Gemm(&pl.gemm); err != nil {
					return err
				}
				if pl.inVol > 0 {
					grid, block, chunks := planeGrid(nb*pl.cg, pl.inVol)
					if err := c.S.Launch(convCol2im, grid, block, 0, c.A(P(c.Out[0]), P(col), P(c.Consts[0]), I(n0), I(nb), I(pl.c), I(pl.cg), I(g), I(chunks))); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
