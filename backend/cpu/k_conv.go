package cpu

import (
	"math"

	"github.com/gotrain/gotrain/backend/cpu/gemm"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Convolutions as im2col + GEMM in NCHW, arranged so that no transpose is
// ever materialised. For one image n and group g of a Conv:
//
//	col[Cg*kvol, outVol] = im2col(X[n, g])            (kvol = prod kernel)
//	Y[n, g][Mg, outVol]  = W[g][Mg, Cg*kvol] x col    (+ bias, fused)
//
// which lands in Y's NCHW layout directly. A 1x1, stride-1, unpadded conv
// skips im2col: X[n, g] already is col. ConvGrad reuses one col buffer per
// worker for both of its products:
//
//	dW[g] += dY[n, g] x col^T                    (col = im2col(X[n, g]))
//	dX[n, g] = col2im(W[g]^T x dY[n, g])         (into the same buffer)
//
// and ConvTranspose is ConvGrad's dX with X in dY's place.
//
// Work is split over (image, group) units, each worker with its own col
// buffer allocated by the factory; when there are fewer units than workers
// (batch 1 inference), units run in turn and each product is split over
// the pool instead. Per-worker dW partial sums are added in worker order, so
// results are deterministic for a given pool size. dB sums each image's
// channel (planeSum) while the unit has it in cache, and adds the images'
// sums in image order.
//
// In training, a 2x2/2 MaxPool after the Conv is fused on both sides
// (plan.FuseConvPoolTrain): the Conv pools each image's output while it is
// in cache and writes the pool's taps (which window position holds the
// maximum: MaxPool's Indices, one byte each), and the ConvGrad spreads
// the pooled gradient over each image's windows into scratch (unpool)
// before its products, so the full-size activation and its gradient never
// reach memory.
//
// Spatial ranks 1 to 3 are handled by one 3-D im2col with leading unit
// dims; the common stride-1, unpadded 1-D/2-D case has its own im2col and
// col2im (im2colDense2D, col2imDense2D), free of per-row clipping. float32 uses BLAS; float64 (used by gradient checks) gonum's dgemm.

func init() {
	Register(graph.DomainONNX, "Conv", convFactory(convForward))
	Register(graph.DomainONNX, "ConvTranspose", convFactory(convTranspose))
	Register(graph.DomainGotrain, "ConvGrad", convFactory(convGrad))
}

type convKind int

const (
	convForward convKind = iota
	convTranspose
	convGrad
)

// colGeom describes im2col/col2im between an "image" (C x img spatial,
// the conv's input side) and a column matrix (C*kvol x col spatial, the
// conv's output side).
type colGeom struct {
	c                int
	img, col         [3]int
	k, s, d, p       [3]int
	imgVol, colVol   int
	kvol             int
	wLo, wHi         []int // per kw: the output-w range whose input w is inside the image
	identity         bool  // 1x1 kernel, stride 1, no padding, same sizes: col == image
	dense2D          bool  // 2-D, stride 1, undilated, unpadded (im2colDense2D)
	rows             int   // c*kvol
	colLen, imageLen int
}

// ceilDivInt is ceil(a/b) for b > 0 and any a.
func ceilDivInt(a, b int) int {
	q := a / b
	if a%b != 0 && a > 0 {
		q++
	}
	return q
}

// floorDivInt is floor(a/b) for b > 0 and any a.
func floorDivInt(a, b int) int {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// validRange returns [lo, hi) of output positions o in [0, n) with
// 0 <= o*s + off < size.
func validRange(n, s, off, size int) (int, int) {
	lo := max(0, ceilDivInt(-off, s))
	hi := min(n, floorDivInt(size-1-off, s)+1)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

func newColGeom(c int, g *graph.ConvGeom, img, col []int) *colGeom {
	r := len(img)
	cg := &colGeom{c: c}
	for i := 0; i < 3; i++ {
		cg.img[i], cg.col[i], cg.k[i], cg.s[i], cg.d[i] = 1, 1, 1, 1, 1
	}
	off := 3 - r
	for i := 0; i < r; i++ {
		cg.img[off+i], cg.col[off+i] = img[i], col[i]
		cg.k[off+i], cg.s[off+i], cg.d[off+i], cg.p[off+i] = g.Kernel[i], g.Strides[i], g.Dilations[i], g.PadBegin[i]
	}
	cg.imgVol = cg.img[0] * cg.img[1] * cg.img[2]
	cg.colVol = cg.col[0] * cg.col[1] * cg.col[2]
	cg.kvol = cg.k[0] * cg.k[1] * cg.k[2]
	cg.rows = c * cg.kvol
	cg.colLen = cg.rows * cg.colVol
	cg.imageLen = c * cg.imgVol
	cg.identity = cg.kvol == 1 && cg.img == cg.col
	for i := 0; i < 3; i++ {
		if cg.s[i] != 1 || cg.p[i] != 0 {
			cg.identity = false
		}
	}
	cg.dense2D = cg.img[0] == 1 && cg.k[0] == 1 && cg.col[0] == 1
	for i := 1; i < 3; i++ {
		if cg.s[i] != 1 || cg.d[i] != 1 || cg.p[i] != 0 || cg.col[i] != cg.img[i]-cg.k[i]+1 {
			cg.dense2D = false
		}
	}
	cg.wLo = make([]int, cg.k[2])
	cg.wHi = make([]int, cg.k[2])
	for kw := range cg.wLo {
		cg.wLo[kw], cg.wHi[kw] = validRange(cg.col[2], cg.s[2], kw*cg.d[2]-cg.p[2], cg.img[2])
	}
	return cg
}

// im2col fills col (rows x colVol, row stride ld) from x (c x imgVol);
// positions that fall in the padding are zero.
func im2col[T float32 | float64](g *colGeom, x, col []T, ld int) {
	if g.dense2D {
		im2colDense2D(g, x, col, ld)
		return
	}
	OD, OH, OW := g.col[0], g.col[1], g.col[2]
	D, H, W := g.img[0], g.img[1], g.img[2]
	plane := OH * OW
	row := 0
	for c := 0; c < g.c; c++ {
		xc := x[c*g.imgVol : (c+1)*g.imgVol]
		for kd := 0; kd < g.k[0]; kd++ {
			for kh := 0; kh < g.k[1]; kh++ {
				for kw := 0; kw < g.k[2]; kw++ {
					dst := col[row*ld : row*ld+g.colVol]
					row++
					lo, hi := g.wLo[kw], g.wHi[kw]
					wOff := kw*g.d[2] - g.p[2]
					i := 0
					for od := 0; od < OD; od++ {
						id := od*g.s[0] - g.p[0] + kd*g.d[0]
						if id < 0 || id >= D {
							clear(dst[i : i+plane])
							i += plane
							continue
						}
						// Rows oh in [hlo, hhi) read input row ih = oh*sh + hOff.
						hOff := kh*g.d[1] - g.p[1]
						hlo, hhi := validRange(OH, g.s[1], hOff, H)
						if lo == hi {
							hlo, hhi = 0, 0
						}
						clear(dst[i : i+hlo*OW])
						clear(dst[i+hhi*OW : i+plane])
						sw := g.s[2]
						for oh := hlo; oh < hhi; oh++ {
							r := dst[i+oh*OW : i+oh*OW+OW]
							if lo > 0 {
								clear(r[:lo])
							}
							if hi < OW {
								clear(r[hi:])
							}
							off := (id*H+oh*g.s[1]+hOff)*W + lo*sw + wOff
							d := r[lo:hi]
							if sw == 1 {
								src := xc[off : off+len(d)]
								if len(d) <= 32 {
									// Short rows (small feature maps): a loop beats
									// memmove's call overhead.
									for j := range d {
										d[j] = src[j]
									}
								} else {
									copy(d, src)
								}
							} else {
								src := xc[off : off+(len(d)-1)*sw+1]
								for j := range d {
									d[j] = src[j*sw]
								}
							}
						}
						i += plane
					}
				}
			}
		}
	}
}

// im2colDense2D is im2col for the common 2-D, stride 1, undilated,
// unpadded case: every column row is OH runs of OW input elements, one per
// output row, with nothing to clear or clip. float32 goes through
// im2colDense2DC (C in the OpenBLAS build: the runs are as short as the
// feature map is wide, and Go's per-run copy cost more than the products
// at the seed CNN's sizes).
func im2colDense2D[T float32 | float64](g *colGeom, x, col []T, ld int) {
	if x32, ok := any(x).([]float32); ok {
		im2colDense2DC(g, x32, any(col).([]float32), ld)
		return
	}
	im2colDense2DGo(g, x, col, ld)
}

// im2colDense2DGo is im2colDense2D in Go.
func im2colDense2DGo[T float32 | float64](g *colGeom, x, col []T, ld int) {
	OH, OW, W := g.col[1], g.col[2], g.img[2]
	row := 0
	for c := 0; c < g.c; c++ {
		xc := x[c*g.imgVol : (c+1)*g.imgVol]
		for kh := 0; kh < g.k[1]; kh++ {
			for kw := 0; kw < g.k[2]; kw++ {
				dst := col[row*ld : row*ld+g.colVol]
				row++
				src := xc[kh*W+kw:]
				for oh := 0; oh < OH; oh++ {
					copy(dst[oh*OW:oh*OW+OW], src[oh*W:oh*W+OW])
				}
			}
		}
	}
}

// col2im adds col (rows x colVol) into x (c x imgVol): the adjoint of
// im2col. Entries that fall in the padding are dropped.
func col2im[T float32 | float64](g *colGeom, col, x []T) { col2imLD(g, col, g.colVol, x) }

// col2imLD is col2im for a col whose rows are ld apart (several images'
// columns side by side).
func col2imLD[T float32 | float64](g *colGeom, col []T, ld int, x []T) {
	if g.dense2D {
		col2imDense2D(g, col, ld, x)
		return
	}
	OD, OH, OW := g.col[0], g.col[1], g.col[2]
	D, H, W := g.img[0], g.img[1], g.img[2]
	plane := OH * OW
	row := 0
	for c := 0; c < g.c; c++ {
		xc := x[c*g.imgVol : (c+1)*g.imgVol]
		for kd := 0; kd < g.k[0]; kd++ {
			for kh := 0; kh < g.k[1]; kh++ {
				for kw := 0; kw < g.k[2]; kw++ {
					srcRow := col[row*ld : row*ld+g.colVol]
					row++
					lo, hi := g.wLo[kw], g.wHi[kw]
					if lo == hi {
						continue
					}
					wOff := kw*g.d[2] - g.p[2]
					for od := 0; od < OD; od++ {
						id := od*g.s[0] - g.p[0] + kd*g.d[0]
						if id < 0 || id >= D {
							continue
						}
						for oh := 0; oh < OH; oh++ {
							ih := oh*g.s[1] - g.p[1] + kh*g.d[1]
							if ih < 0 || ih >= H {
								continue
							}
							r := srcRow[od*plane+oh*OW : od*plane+oh*OW+OW]
							dst := xc[(id*H+ih)*W : (id*H+ih+1)*W]
							if g.s[2] == 1 {
								d := dst[lo+wOff : hi+wOff]
								for j, v := range r[lo:hi] {
									d[j] += v
								}
							} else {
								s := g.s[2]
								iw := lo*s + wOff
								for ow := lo; ow < hi; ow++ {
									dst[iw] += r[ow]
									iw += s
								}
							}
						}
					}
				}
			}
		}
	}
}

// col2imDense2D is col2im for the geometry of im2colDense2D: every run of
// a column row adds into one input row, with nothing to clip. For each
// input row it adds the runs of all kw taps in turn while the row is in
// cache.
func col2imDense2D[T float32 | float64](g *colGeom, col []T, ld int, x []T) {
	if x32, ok := any(x).([]float32); ok {
		col2imDense2DC(g, any(col).([]float32), ld, x32)
		return
	}
	col2imDense2DGo(g, col, ld, x)
}

// col2imDense2DGo is col2imDense2D in Go.
func col2imDense2DGo[T float32 | float64](g *colGeom, col []T, ld int, x []T) {
	OH, OW, W, KH, KW := g.col[1], g.col[2], g.img[2], g.k[1], g.k[2]
	for c := 0; c < g.c; c++ {
		xc := x[c*g.imgVol : (c+1)*g.imgVol]
		for kh := 0; kh < KH; kh++ {
			row0 := (c*KH + kh) * KW
			for oh := 0; oh < OH; oh++ {
				xr := xc[(oh+kh)*W : (oh+kh+1)*W]
				if KW == 3 && OW >= 2 {
					// The three taps' runs summed per element: one
					// read-modify-write of the row instead of three.
					r0 := col[row0*ld+oh*OW:][:OW]
					r1 := col[(row0+1)*ld+oh*OW:][:OW]
					r2 := col[(row0+2)*ld+oh*OW:][:OW]
					xr = xr[:OW+2]
					xr[0] += r0[0]
					xr[1] += r0[1] + r1[0]
					for j := 2; j < OW; j++ {
						xr[j] += r0[j] + r1[j-1] + r2[j-2]
					}
					xr[OW] += r1[OW-1] + r2[OW-2]
					xr[OW+1] += r2[OW-1]
					continue
				}
				for kw := 0; kw < KW; kw++ {
					r := col[(row0+kw)*ld+oh*OW:][:OW]
					d := xr[kw : kw+OW]
					for j, v := range r {
						d[j] += v
					}
				}
			}
		}
	}
}

// convPlan is what the factory works out once per node.
// convBatchCols is the product width below which Conv batches images.
const convBatchCols = 512

// convGradBatchCols is the same for ConvGrad, whose dW product has the
// columns as its inner dimension: longer is better there.
const convGradBatchCols = 512

type convPlan struct {
	kind   convKind
	n      int // batch
	groups int
	cin    int // channels of X (ConvGrad: of X; ConvTranspose: of X)
	cout   int // channels of Y (ConvGrad: of dY)
	geom   *colGeom
	units  int // n * groups
	nw     int // work partitions
	small  bool
	// bimg > 1: Conv's forward pass multiplies bimg images' columns at once
	// (small feature maps make short products, which BLAS runs slowly).
	bimg int
	// want says which of ConvGrad's outputs are wanted.
	wantDX, wantDW, wantDB bool
	// relu applies ReLU to Conv's output (set by the fusion pass, fuse.go).
	relu bool
	// pool: Conv's output is max-pooled 2x2/2 before it is written (a
	// MaxPool fused by fuse.go); each image's full output lives in scratch.
	// taps: the pool's taps are output 1 (training).
	pool, taps bool
	// unpool: ConvGrad's dY is the gradient of a fused 2x2/2 MaxPool's
	// output (inputs 3 and 4 are its taps and pooled values), spread over
	// each image's full-size dY in scratch; unpoolMask masks it by pooled
	// values > 0 (the ReLU before the pool).
	unpool, unpoolMask bool
	// implicit: Conv's forward product reads its B straight from X
	// (package gemm's ImageB) instead of an im2col buffer.
	implicit bool
	// direct, when set, runs Conv's forward pass instead of either
	// (k_conv_direct.go).
	direct *directConv
}

func convFactory(kind convKind) Factory {
	return func(p *Prep) (Kernel, error) {
		xi, wi := 0, 1
		if kind == convGrad {
			xi, wi = 1, 2
		}
		if len(p.In) <= wi || p.In[xi] == nil || p.In[wi] == nil {
			return nil, Errorf(p, "expects inputs X and W")
		}
		xs, ws := p.InShape(xi), p.InShape(wi)
		if len(xs) < 3 || len(ws) != len(xs) {
			return nil, Errorf(p, "input X %v and weight W %v must have equal rank 3 or more", xs, ws)
		}
		r := len(xs) - 2
		if r > 3 {
			return nil, Unsupported(p, "%d spatial dims (at most 3 are implemented)", r)
		}
		g, err := graph.ResolveConv(p.Node, kind == convTranspose, xs[2:], ws[2:])
		if err != nil {
			return nil, err
		}
		pl := &convPlan{kind: kind, n: xs[0], groups: g.Group, cin: xs[1]}
		pl.relu = kind == convForward && p.Node.AttrString(fusedActivation, "") == "Relu"
		switch kind {
		case convTranspose:
			pl.cout = ws[1] * g.Group
			if ws[0] != pl.cin || pl.cin%g.Group != 0 {
				return nil, Errorf(p, "input X has %d channels; weight W %v with group %d does not fit", pl.cin, ws, g.Group)
			}
			// The image side is Y (cout/groups channels), the col side X.
			pl.geom = newColGeom(pl.cout/g.Group, g, g.Out, xs[2:])
			if ys := p.OutShape(0); !tensor.SameShape(ys, append([]int{pl.n, pl.cout}, g.Out...)) {
				return nil, Errorf(p, "output shape %v differs from the computed %v", ys, append([]int{pl.n, pl.cout}, g.Out...))
			}
		default:
			pl.cout = ws[0]
			if ws[1]*g.Group != pl.cin || pl.cout%g.Group != 0 {
				return nil, Errorf(p, "input X has %d channels; weight W %v with group %d does not fit", pl.cin, ws, g.Group)
			}
			pl.geom = newColGeom(pl.cin/g.Group, g, xs[2:], g.Out)
			want := append([]int{pl.n, pl.cout}, g.Out...)
			pl.taps = kind == convForward && p.Node.AttrInt(fusedPoolTaps, 0) != 0
			pl.pool = kind == convForward && (pl.taps || p.Node.AttrInt(fusedMaxPool, 0) != 0)
			pl.unpool = kind == convGrad && p.Node.AttrInt(fusedUnpool, 0) != 0
			pl.unpoolMask = pl.unpool && p.Node.AttrInt(fusedReluMask, 0) != 0
			if pl.pool || pl.unpool {
				if len(g.Out) != 2 || g.Out[0] < 2 || g.Out[1] < 2 {
					return nil, Errorf(p, "a fused 2x2 MaxPool needs a 2-D output of at least 2x2, got %v", g.Out)
				}
				want = []int{pl.n, pl.cout, g.Out[0] / 2, g.Out[1] / 2}
			}
			ys := p.InShape(0)
			if kind == convForward {
				ys = p.OutShape(0)
			}
			if !tensor.SameShape(ys, want) {
				return nil, Errorf(p, "dY/Y shape %v differs from Conv's output shape %v", ys, want)
			}
			if pl.taps && (len(p.Out) < 2 || p.Out[1] == nil || p.Out[1].DType != tensor.Uint8 || !tensor.SameShape(p.OutShape(1), want)) {
				return nil, Errorf(p, "the fused MaxPool's taps must be uint8 of shape %v", want)
			}
			if pl.unpool {
				if len(p.In) != 5 || p.In[3] == nil || p.In[4] == nil {
					return nil, Errorf(p, "a ConvGrad fused with a MaxPoolGrad takes dY, X, W, taps and the pooled Y")
				}
				if p.In[3].DType != tensor.Uint8 || !tensor.SameShape(p.InShape(3), want) || !tensor.SameShape(p.InShape(4), want) {
					return nil, Errorf(p, "taps %v (%v) and pooled Y %v must be of shape %v (taps uint8)", p.InShape(3), p.In[3].DType, p.InShape(4), want)
				}
			}
		}
		bi := 2
		if kind != convGrad && len(p.In) > bi && p.In[bi] != nil {
			if bs := p.InShape(bi); len(bs) != 1 || bs[0] != pl.cout {
				return nil, Errorf(p, "bias B has shape %v; expected [%d]", bs, pl.cout)
			}
		}
		if kind == convGrad {
			out := p.Node.Outputs
			pl.wantDX = len(out) > 0 && out[0] != ""
			pl.wantDW = len(out) > 1 && out[1] != ""
			pl.wantDB = len(out) > 2 && out[2] != ""
		}
		pl.units = pl.n * pl.groups
		pl.nw = min(p.Pool.Size(), pl.units)
		pl.small = pl.units < p.Pool.Size()
		if pl.small || pl.nw < 1 {
			pl.nw = 1
		}
		pl.bimg = 1
		batchCols := convBatchCols
		if kind == convGrad {
			batchCols = convGradBatchCols
		}
		if (kind == convForward || kind == convGrad) && pl.groups == 1 && !pl.geom.identity && !pl.small && pl.geom.colVol < batchCols {
			pl.bimg = min((batchCols+pl.geom.colVol-1)/pl.geom.colVol, (pl.units+pl.nw-1)/pl.nw)
		}
		dt := p.In[xi].DType
		// Implicit GEMM where the columns' runs are contiguous in X: the
		// innermost spatial stride is 1.
		pl.implicit = kind == convForward && dt == tensor.Float32 && ownGEMM && !pl.geom.identity && pl.geom.s[2] == 1
		if pl.implicit {
			if pl.direct = newDirectConv(pl); pl.direct != nil {
				pl.implicit, pl.bimg = false, 1
			}
		}
		for i, t := range p.In {
			if t != nil && t.DType != dt && !(pl.unpool && i == 3) {
				return nil, Errorf(p, "inputs mix dtypes %v and %v", dt, t.DType)
			}
		}
		switch dt {
		case tensor.Float32:
			return newConvRunner[float32](p, pl).kernel, nil
		case tensor.Float64:
			return newConvRunner[float64](p, pl).kernel, nil
		}
		return nil, Unsupported(p, "dtype %v", dt)
	}
}

// convRunner holds a node's scratch and the tensors of the current call.
type convRunner[T float32 | float64] struct {
	pl    *convPlan
	pool  *Pool
	cols  [][]T // one col buffer per worker
	parts [][]T // ConvGrad: per-worker dW partial sums (parts[0] is dW itself)
	outs  [][]T // batched Conv: per-worker [cout, bimg*colVol] products
	full  [][]T // pooled, unbatched Conv: per-worker [cout/groups, colVol] outputs
	// sums[n*cout+c] is channel c of image n's dY summed (planeSum), for
	// ConvGrad's dB.
	sums  []T
	chunk func(lo, hi int)
	// job splits one product over the pool in the few-units case (where
	// units run in turn on the caller), made once for the same reason.
	job *gemmJob[T]
	// ib[nb] reads the columns of nb images straight from X (implicit).
	ib []*gemm.ImageB
	// The current call's data.
	x, w, b, y []T // Conv: X, W, B, Y; ConvTranspose: X, W, B, Y; ConvGrad: X, W, -, dY
	dx, dw, db []T
	taps       []uint8 // Conv's pool taps (output); ConvGrad's (input, with unpool)
	ym         []T     // ConvGrad with unpoolMask: the pooled Y
}

func newConvRunner[T float32 | float64](p *Prep, pl *convPlan) *convRunner[T] {
	r := &convRunner[T]{pl: pl, pool: p.Pool, job: newGemmJob[T](p.Pool)}
	g := pl.geom
	if pl.implicit {
		r.ib = make([]*gemm.ImageB, pl.bimg+1)
		for nb := 1; nb <= pl.bimg && pl.implicit; nb++ {
			var err error
			if r.ib[nb], err = newConvImageB(g, nb, pl.cin*g.imgVol); err != nil {
				// Offsets beyond the tables' 32 bits: im2col instead.
				pl.implicit, r.ib = false, nil
			}
		}
	}
	if !g.identity && !pl.implicit && pl.direct == nil {
		r.cols = make([][]T, pl.nw)
		for i := range r.cols {
			r.cols[i] = make([]T, g.colLen*pl.bimg)
		}
	}
	if pl.bimg > 1 {
		r.outs = make([][]T, pl.nw)
		for i := range r.outs {
			r.outs[i] = make([]T, pl.cout*g.colVol*pl.bimg)
		}
	}
	if (pl.pool || pl.unpool) && pl.bimg == 1 && pl.direct == nil {
		r.full = make([][]T, max(pl.nw, 1))
		for i := range r.full {
			r.full[i] = make([]T, pl.cout/pl.groups*g.colVol)
		}
	}
	if pl.kind == convGrad && pl.wantDW {
		r.parts = make([][]T, pl.nw)
		for i := 1; i < pl.nw; i++ {
			r.parts[i] = make([]T, pl.cout*g.rows)
		}
	}
	if pl.kind == convGrad && pl.wantDB {
		r.sums = make([]T, pl.n*pl.cout)
	}
	r.chunk = r.runChunk
	return r
}

func convData[T float32 | float64](t *tensor.Tensor) []T {
	if t == nil {
		return nil
	}
	d, _ := t.Data().([]T)
	return d
}

func (r *convRunner[T]) kernel(in, out []*tensor.Tensor) error {
	pl := r.pl
	switch pl.kind {
	case convForward, convTranspose:
		r.x, r.w, r.y = convData[T](in[0]), convData[T](in[1]), convData[T](out[0])
		if len(in) > 2 {
			r.b = convData[T](in[2])
		}
		if pl.taps {
			r.taps = out[1].Uint8s()
		}
	case convGrad:
		r.y, r.x, r.w = convData[T](in[0]), convData[T](in[1]), convData[T](in[2])
		if pl.unpool {
			r.taps = in[3].Uint8s()
			if pl.unpoolMask {
				r.ym = convData[T](in[4])
			}
		}
		if pl.wantDX {
			r.dx = convData[T](out[0])
		}
		if pl.wantDW {
			r.dw = convData[T](out[1])
			r.parts[0] = r.dw
			for _, part := range r.parts {
				clear(part)
			}
		}
		if pl.wantDB {
			r.db = convData[T](out[2])
		}
		if !pl.wantDX && !pl.wantDW && !pl.wantDB {
			r.release()
			return nil
		}
	}
	if pl.small {
		r.runUnits(0, 0, pl.units, r.pool)
	} else {
		r.pool.For(pl.nw, 1, r.chunk)
		if pl.kind == convGrad && pl.wantDW {
			for _, part := range r.parts[1:] {
				for i, v := range part {
					r.dw[i] += v
				}
			}
		}
	}
	if pl.kind == convGrad && pl.wantDB {
		// Each channel's per-image sums, added in image order in float64:
		// the bits do not depend on how the batch was split.
		for c := range r.db {
			var s float64
			for i := 0; i < pl.n; i++ {
				s += float64(r.sums[i*pl.cout+c])
			}
			r.db[c] = T(s)
		}
	}
	r.release()
	return nil
}

func (r *convRunner[T]) release() {
	r.x, r.w, r.b, r.y, r.dx, r.dw, r.db = nil, nil, nil, nil, nil, nil, nil
	r.taps, r.ym = nil, nil
	if r.parts != nil {
		r.parts[0] = nil
	}
}

// runChunk runs work partitions [lo, hi): partition i covers an even,
// contiguous share of the (image, group) units and owns buffer i.
func (r *convRunner[T]) runChunk(lo, hi int) {
	units, nw := r.pl.units, r.pl.nw
	for i := lo; i < hi; i++ {
		if r.pl.direct != nil {
			r.runDirect(i, i*units/nw, (i+1)*units/nw)
			continue
		}
		if r.pl.bimg > 1 {
			if r.pl.kind == convGrad {
				r.runGradBatched(i, i*units/nw, (i+1)*units/nw)
			} else {
				r.runBatched(i, i*units/nw, (i+1)*units/nw)
			}
			continue
		}
		r.runUnits(i, i*units/nw, (i+1)*units/nw, nil)
	}
}

// runUnits processes units [u0, u1) with worker w's buffers; pool, when
// set, parallelises each product through r.job (the few-units case, run on
// the caller alone). Without a pool r.job.run keeps no state, so workers
// may share it.
func (r *convRunner[T]) runUnits(worker, u0, u1 int, pool *Pool) {
	pl, g := r.pl, r.geom()
	var col []T
	if r.cols != nil {
		col = r.cols[worker]
	}
	G := pl.groups
	cg, mg := pl.cin/G, pl.cout/G
	for u := u0; u < u1; u++ {
		n, gi := u/G, u%G
		switch pl.kind {
		case convForward:
			x := r.x[(n*pl.cin+gi*cg)*g.imgVol:][:g.imageLen]
			var y []T
			if pl.pool {
				y = r.full[worker][:mg*g.colVol]
			} else {
				y = r.y[(n*pl.cout+gi*mg)*g.colVol:][:mg*g.colVol]
			}
			w := r.w[gi*mg*g.rows:][:mg*g.rows]
			// Bias and ReLU as the product's epilogue, while each tile of Y
			// is in registers.
			var b []T
			if r.b != nil {
				b = r.b[gi*mg : (gi+1)*mg]
			}
			ep := epilogue[T]{row: b, relu: pl.relu}
			switch {
			case pl.implicit:
				r.job.runImage(pool, worker, mg, g.colVol, g.rows, w, g.rows, r.ib[1], r.x[(n*pl.cin+gi*cg)*g.imgVol:], 0, y, g.colVol, ep)
			case g.identity:
				r.job.run(pool, worker, false, false, mg, g.colVol, g.rows, 1, w, g.rows, x, g.colVol, 0, y, g.colVol, ep)
			default:
				im2col(g, x, col, g.colVol)
				r.job.run(pool, worker, false, false, mg, g.colVol, g.rows, 1, w, g.rows, col, g.colVol, 0, y, g.colVol, ep)
			}
			if pl.pool {
				pp := r.pooledPlane()
				var taps []uint8
				if pl.taps {
					taps = r.taps[(n*pl.cout+gi*mg)*pp:][:mg*pp]
				}
				convPool(y, g.colVol, g.col[2], r.y[(n*pl.cout+gi*mg)*pp:][:mg*pp], taps, mg, g.col[1], g.col[2])
			}
		case convTranspose:
			// X[n, g] is [cg, colVol]; W[g] is [cg, mg*kvol]; Y[n, g] is the image.
			x := r.x[(n*pl.cin+gi*cg)*g.colVol:][:cg*g.colVol]
			y := r.y[(n*pl.cout+gi*mg)*g.imgVol:][:g.imageLen]
			w := r.w[gi*cg*g.rows:][:cg*g.rows]
			if r.b != nil {
				for m := 0; m < mg; m++ {
					convFill(y[m*g.imgVol:(m+1)*g.imgVol], r.b[gi*mg+m])
				}
			} else {
				clear(y)
			}
			if g.identity {
				r.job.run(pool, worker, true, false, g.rows, g.colVol, cg, 1, w, g.rows, x, g.colVol, 1, y, g.colVol, epilogue[T]{})
				continue
			}
			r.job.run(pool, worker, true, false, g.rows, g.colVol, cg, 1, w, g.rows, x, g.colVol, 0, col, g.colVol, epilogue[T]{})
			col2im(g, col, y)
		case convGrad:
			x := r.x[(n*pl.cin+gi*cg)*g.imgVol:][:g.imageLen]
			var dy []T
			if pl.unpool {
				dy = r.full[worker][:mg*g.colVol]
				r.unpoolInto(dy, g.colVol, n*pl.cout+gi*mg, mg)
			} else {
				dy = r.y[(n*pl.cout+gi*mg)*g.colVol:][:mg*g.colVol]
			}
			if pl.wantDB {
				for m := 0; m < mg; m++ {
					r.sums[n*pl.cout+gi*mg+m] = planeSum(dy[m*g.colVol : (m+1)*g.colVol])
				}
			}
			w := r.w[gi*mg*g.rows:][:mg*g.rows]
			if pl.wantDW {
				src := x
				if !g.identity {
					im2col(g, x, col, g.colVol)
					src = col
				}
				dw := r.parts[worker][gi*mg*g.rows:][:mg*g.rows]
				r.job.run(pool, worker, false, true, mg, g.rows, g.colVol, 1, dy, g.colVol, src, g.colVol, 1, dw, g.rows, epilogue[T]{})
			}
			if pl.wantDX {
				dx := r.dx[(n*pl.cin+gi*cg)*g.imgVol:][:g.imageLen]
				if g.identity {
					r.job.run(pool, worker, true, false, g.rows, g.colVol, mg, 1, w, g.rows, dy, g.colVol, 0, dx, g.colVol, epilogue[T]{})
					continue
				}
				r.job.run(pool, worker, true, false, g.rows, g.colVol, mg, 1, w, g.rows, dy, g.colVol, 0, col, g.colVol, epilogue[T]{})
				clear(dx)
				col2im(g, col, dx)
			}
		}
	}
}

// newConvImageB describes the im2col matrix of nb images (imgStride
// elements apart) as a package gemm ImageB over X: row (c, kd, kh, kw) of
// column (image, od, oh, ow) reads X[image][c][od*sd-pd+kd*dd][...][...],
// or zero in the padding.
func newConvImageB(g *colGeom, nb, imgStride int) (*gemm.ImageB, error) {
	rowOff, kind := make([]int, g.rows), make([]int, g.rows)
	for p := range rowOff {
		rowOff[p], kind[p] = (p/g.kvol)*g.imgVol, p%g.kvol
	}
	colOff := make([][]int, g.kvol)
	for t := range colOff {
		kd, kh, kw := t/(g.k[1]*g.k[2]), t/g.k[2]%g.k[1], t%g.k[2]
		offs := make([]int, nb*g.colVol)
		for j := range offs {
			b, pos := j/g.colVol, j%g.colVol
			od, oh, ow := pos/(g.col[1]*g.col[2]), pos/g.col[2]%g.col[1], pos%g.col[2]
			id := od*g.s[0] - g.p[0] + kd*g.d[0]
			ih := oh*g.s[1] - g.p[1] + kh*g.d[1]
			iw := ow*g.s[2] - g.p[2] + kw*g.d[2]
			if id < 0 || id >= g.img[0] || ih < 0 || ih >= g.img[1] || iw < 0 || iw >= g.img[2] {
				offs[j] = -1
				continue
			}
			offs[j] = b*imgStride + (id*g.img[1]+ih)*g.img[2] + iw
		}
		colOff[t] = offs
	}
	return gemm.NewImageB(g.rows, nb*g.colVol, rowOff, kind, colOff)
}

// runBatched is Conv's forward pass over images [n0, n1) (one group),
// bimg images per product: their columns side by side in one col buffer,
// the product scattered back into NCHW with the bias added.
func (r *convRunner[T]) runBatched(worker, n0, n1 int) {
	pl, g := r.pl, r.geom()
	tmp := r.outs[worker]
	for n := n0; n < n1; n += pl.bimg {
		nb := min(pl.bimg, n1-n)
		ld := nb * g.colVol
		ep := epilogue[T]{row: r.b, relu: pl.relu}
		if pl.implicit {
			r.job.runImage(nil, worker, pl.cout, ld, g.rows, r.w, g.rows, r.ib[nb], r.x[n*pl.cin*g.imgVol:], 0, tmp, ld, ep)
		} else {
			col := r.cols[worker]
			for b := 0; b < nb; b++ {
				im2col(g, r.x[(n+b)*pl.cin*g.imgVol:][:g.imageLen], col[b*g.colVol:], ld)
			}
			r.job.run(nil, worker, false, false, pl.cout, ld, g.rows, 1, r.w, g.rows, col, ld, 0, tmp, ld, ep)
		}
		for b := 0; b < nb; b++ {
			if pl.pool {
				pp := r.pooledPlane()
				var taps []uint8
				if pl.taps {
					taps = r.taps[(n+b)*pl.cout*pp:][:pl.cout*pp]
				}
				convPool(tmp[b*g.colVol:], ld, g.col[2], r.y[(n+b)*pl.cout*pp:][:pl.cout*pp], taps, pl.cout, g.col[1], g.col[2])
				continue
			}
			y := r.y[(n+b)*pl.cout*g.colVol:][:pl.cout*g.colVol]
			for m := 0; m < pl.cout; m++ {
				copy(y[m*g.colVol:(m+1)*g.colVol], tmp[m*ld+b*g.colVol:][:g.colVol])
			}
		}
	}
}

// runGradBatched is ConvGrad over images [n0, n1) (one group), bimg images
// per product: their dY side by side as one [cout, bimg*colVol] matrix, so
// dW takes one long product over all their columns and dX one product
// followed by a col2im per image. Short per-image products run slowly in
// BLAS; these are bimg times longer.
func (r *convRunner[T]) runGradBatched(worker, n0, n1 int) {
	pl, g := r.pl, r.geom()
	col, dyc := r.cols[worker], r.outs[worker]
	for n := n0; n < n1; n += pl.bimg {
		nb := min(pl.bimg, n1-n)
		ld := nb * g.colVol
		for b := 0; b < nb; b++ {
			if pl.unpool {
				r.unpoolInto(dyc[b*g.colVol:], ld, (n+b)*pl.cout, pl.cout)
			} else {
				dy := r.y[(n+b)*pl.cout*g.colVol:][:pl.cout*g.colVol]
				for m := 0; m < pl.cout; m++ {
					copy(dyc[m*ld+b*g.colVol:][:g.colVol], dy[m*g.colVol:(m+1)*g.colVol])
				}
			}
			if pl.wantDB {
				for m := 0; m < pl.cout; m++ {
					r.sums[(n+b)*pl.cout+m] = planeSum(dyc[m*ld+b*g.colVol:][:g.colVol])
				}
			}
		}
		if pl.wantDW {
			for b := 0; b < nb; b++ {
				im2col(g, r.x[(n+b)*pl.cin*g.imgVol:][:g.imageLen], col[b*g.colVol:], ld)
			}
			r.job.run(nil, worker, false, true, pl.cout, g.rows, ld, 1, dyc, ld, col, ld, 1, r.parts[worker], g.rows, epilogue[T]{})
		}
		if pl.wantDX {
			r.job.run(nil, worker, true, false, g.rows, ld, pl.cout, 1, r.w, g.rows, dyc, ld, 0, col, ld, epilogue[T]{})
			for b := 0; b < nb; b++ {
				dx := r.dx[(n+b)*pl.cin*g.imgVol:][:g.imageLen]
				clear(dx)
				col2imLD(g, col[b*g.colVol:], ld, dx)
			}
		}
	}
}

func (r *convRunner[T]) geom() *colGeom { return r.pl.geom }

// pooledPlane is the size of one pooled output plane.
func (r *convRunner[T]) pooledPlane() int { return (r.pl.geom.col[1] / 2) * (r.pl.geom.col[2] / 2) }

// convPool is the 2x2/2 max pooling fused into Conv, whose product has
// already added the bias and applied ReLU: planes of h x w (src planes lds
// apart, their rows ldr apart) are pooled into dst (planes of h/2 x w/2, contiguous) with
// MaxPool's arithmetic (Go's max over the four taps in row order);
// taps, when set, gets for each pooled value which position of its window
// (0..3, row-major) MaxPool's Indices would name: the first whose bits
// equal the maximum's. float32 goes through convPoolC (one pass in C in
// the cgo build).
func convPool[T float32 | float64](src []T, lds, ldr int, dst []T, taps []uint8, planes, h, w int) {
	if s32, ok := any(src).([]float32); ok {
		convPoolC(s32, lds, ldr, any(dst).([]float32), taps, planes, h, w)
		return
	}
	convPoolGo(src, lds, ldr, dst, taps, planes, h, w)
}

// convPoolGo is convPool in Go.
func convPoolGo[T float32 | float64](src []T, lds, ldr int, dst []T, taps []uint8, planes, h, w int) {
	oh, ow := h/2, w/2
	for p := 0; p < planes; p++ {
		sp, dp := src[p*lds:p*lds+(h-1)*ldr+w], dst[p*oh*ow:(p+1)*oh*ow]
		for i := 0; i < oh; i++ {
			r0, r1, d := sp[2*i*ldr:2*i*ldr+2*ow], sp[(2*i+1)*ldr:(2*i+1)*ldr+2*ow], dp[i*ow:(i+1)*ow]
			if taps == nil {
				for j := range d {
					d[j] = max(r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1])
				}
				continue
			}
			tr := taps[p*oh*ow+i*ow:][:ow]
			for j := range d {
				a, b, c, e := r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1]
				m := max(a, b, c, e)
				d[j], tr[j] = m, firstTap(a, b, c, m)
			}
		}
	}
}

// firstTap is the position (0..3) of the first of a window's taps a, b,
// c, (d) whose bits equal m, the window's maximum: MaxPool's Indices.
func firstTap[T float32 | float64](a, b, c, m T) uint8 {
	switch {
	case sameBits(a, m):
		return 0
	case sameBits(b, m):
		return 1
	case sameBits(c, m):
		return 2
	}
	return 3
}

func sameBits[T float32 | float64](x, y T) bool {
	switch v := any(x).(type) {
	case float32:
		return math.Float32bits(v) == math.Float32bits(any(y).(float32))
	case float64:
		return math.Float64bits(v) == math.Float64bits(any(y).(float64))
	}
	return false
}

// unpool is the gradient of convPool's pooling, as MaxPoolGrad (with a
// ReLU mask when ym is set) computes it over a cleared dX: planes of
// pooled gradient dy (h/2 x w/2, contiguous) are spread over full-size
// planes of h x w in dst (ldd apart): each window's tap gets (+0) + dy, or
// +0 where ym's pooled value is not positive, and the window's other
// positions, and a last odd row or column, +0. float32 goes through
// unpoolC (C in the cgo build).
func unpool[T float32 | float64](dy []T, taps []uint8, ym []T, dst []T, ldd, planes, h, w int) {
	if d32, ok := any(dy).([]float32); ok {
		unpoolC(d32, taps, any(ym).([]float32), any(dst).([]float32), ldd, planes, h, w)
		return
	}
	unpoolGo(dy, taps, ym, dst, ldd, planes, h, w)
}

// unpoolGo is unpool in Go.
func unpoolGo[T float32 | float64](dy []T, taps []uint8, ym []T, dst []T, ldd, planes, h, w int) {
	oh, ow := h/2, w/2
	for p := 0; p < planes; p++ {
		dp := dst[p*ldd : p*ldd+h*w]
		for i := 0; i < oh; i++ {
			r0, r1 := dp[2*i*w:2*i*w+w], dp[(2*i+1)*w:(2*i+1)*w+w]
			o := (p*oh + i) * ow
			g, t := dy[o:o+ow], taps[o:o+ow]
			var y []T
			if ym != nil {
				y = ym[o : o+ow]
			}
			for j := range g {
				var v, zero T
				if y == nil || y[j] > 0 {
					v = zero + g[j]
				}
				r0[2*j], r0[2*j+1], r1[2*j], r1[2*j+1] = 0, 0, 0, 0
				switch t[j] & 3 {
				case 0:
					r0[2*j] = v
				case 1:
					r0[2*j+1] = v
				case 2:
					r1[2*j] = v
				default:
					r1[2*j+1] = v
				}
			}
			if w%2 == 1 {
				r0[w-1], r1[w-1] = 0, 0
			}
		}
		if h%2 == 1 {
			clear(dp[(h-1)*w:])
		}
	}
}

func convFill[T any](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}

// unpoolInto writes the full-size dY of planes [p0, p0+planes) of the
// batch (image n's channel c is plane n*cout+c) into dst, planes ld
// apart, from the pooled gradient, its taps and, with unpoolMask, the
// pooled Y.
func (r *convRunner[T]) unpoolInto(dst []T, ld, p0, planes int) {
	pp := r.pooledPlane()
	var ym []T
	if r.ym != nil {
		ym = r.ym[p0*pp:][:planes*pp]
	}
	unpool(r.y[p0*pp:][:planes*pp], r.taps[p0*pp:][:planes*pp], ym, dst, ld, planes, r.pl.geom.col[1], r.pl.geom.col[2])
}

// planeSum sums v in a fixed order: element j goes to lane j%8 and the
// eight lanes are added pairwise. The eight chains of dependent adds
// overlap, and the order depends on v's length alone.
func planeSum[T float32 | float64](v []T) T {
	var s0, s1, s2, s3, s4, s5, s6, s7 T
	i := 0
	for ; i+8 <= len(v); i += 8 {
		w := v[i : i+8 : i+8]
		s0 += w[0]
		s1 += w[1]
		s2 += w[2]
		s3 += w[3]
		s4 += w[4]
		s5 += w[5]
		s6 += w[6]
		s7 += w[7]
	}
	rest := v[i:]
	if len(rest) > 0 {
		s0 += rest[0]
	}
	if len(rest) > 1 {
		s1 += rest[1]
	}
	if len(rest) > 2 {
		s2 += rest[2]
	}
	if len(rest) > 3 {
		s3 += rest[3]
	}
	if len(rest) > 4 {
		s4 += rest[4]
	}
	if len(rest) > 5 {
		s5 += rest[5]
	}
	if len(rest) > 6 {
		s6 += rest[6]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
