package cpu

import (
	"sync/atomic"

	"github.com/gotrain/gotrain/backend/cpu/gemm"
)

// directConv is a Conv forward pass computed by package gemm's direct
// convolution (gemm.DirectConv): each image's planes are read in place,
// or from a copy on the padded grid when the convolution pads, and the
// output is computed on that grid's rows (wide rows), then pooled (a
// fused 2x2 MaxPool) or compacted into Y. Its results are the bits of
// the im2col product's, so it stands in for it in training and in
// inference alike.
//
// A fused 2x2 MaxPool whose taps nobody reads (inference) is computed
// without the full-size output: the pool's four window positions are
// four convolutions over the grid's even and odd rows and columns (X is
// split into those four planes per channel, gemm.ColSplit), and each
// after the first is merged into the pooled output with Go's max, in the
// order MaxPool takes the window (gemm.Epilogue.Max). Same values, a
// quarter of the columns per product, and no pass over the full output.
type directConv struct {
	taps   []int64 // each tap's offset on the padded grid
	hp, wp int     // the padded grid
	ph, pw int     // where X starts on it
	n      int     // columns computed: (out rows - 1)*wp + out width
	cols   int     // n rounded up to gemm.DirectCols: the wide output's row
	ldx    int     // plane stride on the grid
	need   int     // elements DirectConv reads from an image's start
	pad    bool    // X must be copied onto the grid
	xs     [][]float32
	cw     [][]float32
	// The pooled form, when split is set: phases[q] are the taps of
	// window position q (row-major) on the split grid, which split fills
	// from an image.
	phases [4][]int64
	split  *gemm.ColSplit
}

// useDirectConv lets tests compare the direct convolution with the
// product it replaces; directPlans counts the plans made, so that they
// can tell it ran.
var (
	useDirectConv = true
	directPlans   atomic.Int64
)

// newDirectConv returns the direct plan for a float32 Conv forward pass,
// or nil where it does not apply: strides other than 1, groups, 3-D, a
// 1x1 convolution without padding (a plain product), output channels not
// a multiple of gemm.DirectRows, few images (the product is then split
// over the threads instead), or a path without a vector kernel.
func newDirectConv(pl *convPlan) *directConv {
	g := pl.geom
	if !useDirectConv || pl.kind != convForward || pl.groups != 1 || pl.small || g.identity ||
		pl.cout%gemm.DirectRows != 0 || !gemm.DirectConvFast() ||
		g.img[0] != 1 || g.k[0] != 1 || g.col[0] != 1 || g.s != [3]int{1, 1, 1} {
		return nil
	}
	oh, ow := g.col[1], g.col[2]
	kh, kw := g.k[1], g.k[2]
	d := &directConv{
		hp: oh + (kh-1)*g.d[1], wp: ow + (kw-1)*g.d[2],
		ph: g.p[1], pw: g.p[2],
	}
	d.pad = d.hp != g.img[1] || d.wp != g.img[2] || d.ph != 0 || d.pw != 0
	if d.ph < 0 || d.pw < 0 || d.ph+g.img[1] > d.hp || d.pw+g.img[2] > d.wp {
		return nil // X does not lie inside the grid (never with ONNX's pads)
	}
	if pl.pool && !pl.taps {
		if !d.splitPlan(pl) {
			return nil
		}
	} else {
		for i := 0; i < kh; i++ {
			for j := 0; j < kw; j++ {
				d.taps = append(d.taps, int64(i*g.d[1]*d.wp+j*g.d[2]))
			}
		}
		d.n = (oh-1)*d.wp + ow
		d.ldx = d.hp * d.wp
	}
	d.cols = (d.n + gemm.DirectCols - 1) / gemm.DirectCols * gemm.DirectCols
	d.need = (pl.cin-1)*d.ldx + d.maxTap() + d.cols
	directPlans.Add(1)
	d.xs = make([][]float32, pl.nw)
	d.cw = make([][]float32, pl.nw)
	for i := range d.xs {
		d.xs[i] = make([]float32, max(d.need, pl.cin*d.ldx))
		d.cw[i] = make([]float32, pl.cout*d.cols)
	}
	return d
}

// splitPlan sets up the pooled form: the grid split into four planes per
// channel (even and odd rows by even and odd columns, hq x wq each), the
// taps of each window position on it, and the split's row table. It
// reports false when the tables' offsets would not fit in 32 bits.
func (d *directConv) splitPlan(pl *convPlan) bool {
	g := pl.geom
	hq, wq := (d.hp+1)/2, (d.wp+1)/2
	plane := hq * wq
	d.ldx = 4 * plane
	d.n = (g.col[1]/2-1)*wq + g.col[2]/2
	for q := range d.phases {
		dy, dx := q/2, q%2
		for i := 0; i < g.k[1]; i++ {
			for j := 0; j < g.k[2]; j++ {
				u, v := dy+i*g.d[1], dx+j*g.d[2]
				d.phases[q] = append(d.phases[q], int64((2*(u%2)+v%2)*plane+(u/2)*wq+v/2))
			}
		}
	}
	h, w := g.img[1], g.img[2]
	if int64(pl.cin)*int64(d.ldx) >= 1<<31 || int64(g.imageLen) >= 1<<31 {
		return false
	}
	rows := make([]int32, 0, 3*pl.cin*h)
	for c := 0; c < pl.cin; c++ {
		for i := 0; i < h; i++ {
			r := i + d.ph
			base := c*d.ldx + 2*(r%2)*plane + (r/2)*wq
			// Column iw lands at iw + pw on the grid: plane (iw+pw)%2,
			// column (iw+pw)/2.
			even := base + (d.pw%2)*plane + d.pw/2
			odd := base + ((d.pw+1)%2)*plane + (d.pw+1)/2
			rows = append(rows, int32(c*g.imgVol+i*w), int32(even), int32(odd))
		}
	}
	var err error
	if d.split, err = gemm.NewColSplit(rows, w, g.imageLen, pl.cin*d.ldx); err != nil {
		return false // cannot happen: the offsets lie on the grid
	}
	return true
}

// maxTap is the largest tap offset, of either form.
func (d *directConv) maxTap() int {
	m := int64(0)
	for _, taps := range append(d.phases[:], d.taps) {
		for _, t := range taps {
			m = max(m, t)
		}
	}
	return int(m)
}

// runDirect is Conv's forward pass over images [n0, n1) with worker w's
// buffers.
func (r *convRunner[T]) runDirect(w, n0, n1 int) {
	pl, d, g := r.pl, r.pl.direct, r.pl.geom
	x32, w32, y32 := any(r.x).([]float32), any(r.w).([]float32), any(r.y).([]float32)
	ep := gemm.Epilogue{ReLU: pl.relu}
	if r.b != nil {
		ep.BiasRow = any(r.b).([]float32)
	}
	s, cw := r.job.scr[w], d.cw[w]
	h, wd := g.img[1], g.img[2]
	oh, ow := g.col[1], g.col[2]
	if d.split != nil {
		pp := r.pooledPlane()
		wq := (d.wp + 1) / 2 // the split grid's width
		for n := n0; n < n1; n++ {
			x := d.xs[w]
			d.split.Run(x, x32[n*g.imageLen:][:g.imageLen])
			for q, taps := range d.phases {
				ep.Max = q > 0
				s.DirectConv(pl.cout, d.n, pl.cin, taps, w32, x, d.ldx, cw, d.cols, ep)
			}
			gemm.CopyPlanes(y32[n*pl.cout*pp:][:pl.cout*pp], cw, pl.cout, oh/2, ow/2, d.cols, wq, pp, ow/2)
		}
		return
	}
	for n := n0; n < n1; n++ {
		img := x32[n*g.imageLen:]
		x := img
		switch {
		case d.pad:
			// Onto the grid; its padding stays zero from allocation.
			x = d.xs[w]
			gemm.CopyPlanes(x[d.ph*d.wp+d.pw:], img, pl.cin, h, wd, g.imgVol, wd, d.ldx, d.wp)
		case len(img) < d.need:
			// The last images: the wide columns would read past X.
			x = d.xs[w]
			copy(x, img[:g.imageLen])
		}
		s.DirectConv(pl.cout, d.n, pl.cin, d.taps, w32, x, d.ldx, cw, d.cols, ep)
		if pl.pool {
			pp := r.pooledPlane()
			var taps []uint8
			if pl.taps {
				taps = r.taps[n*pl.cout*pp:][:pl.cout*pp]
			}
			convPool(cw, d.cols, d.wp, y32[n*pl.cout*pp:][:pl.cout*pp], taps, pl.cout, oh, ow)
			continue
		}
		gemm.CopyPlanes(y32[n*pl.cout*g.colVol:][:pl.cout*g.colVol], cw, pl.cout, oh, ow, d.cols, d.wp, g.colVol, ow)
	}
}
