package gemm

import "fmt"

// Direct convolution: a stride-1 convolution computed from its input in
// place, with neither an im2col buffer nor packed panels of the image.
//
// The input's planes are laid out with the padded input's row width W
// (the caller copies them there when the convolution pads). The output is
// computed over the same grid: column j = oh*W + ow is the output at
// (oh, ow), and its window starts at input position j, so tap t of the
// window (kh, kw) reads the input at j + kh*W + kw (times the dilations):
// one offset per tap for every column. Columns with ow past the output's
// width are computed too and ignored by the caller; that costs
// (kernel width - 1)/W of the work, and saves packing the image for
// every tile of output channels, which with 32 or 64 channels costs
// about as much as the product itself.
//
// Every output is the chain of fused multiply-adds that the im2col
// product computes, in the same order (input channel, then tap), then the
// epilogue: the results are the same bits as Sgemm's over the im2col
// matrix with the same path.

// DirectRows is the multiple of rows (output channels) DirectConv needs;
// DirectCols is the multiple its columns are computed in: C and X must
// have room for the columns up to the next multiple (see DirectConv).
const (
	DirectRows = 8
	DirectCols = maxNR
)

// DirectConvFast reports whether the active path has a vector kernel for
// DirectConv (otherwise it runs a plain Go loop, for tests).
func DirectConvFast() bool { return current().conv != nil }

// DirectConv computes, for rows r < m (a multiple of DirectRows) and
// columns j < n,
//
//	C[r*ldc+j] = epilogue(sum over ci < cin, t < len(taps) in that order
//	             of w[r*K + ci*len(taps) + t] * x[ci*ldx + taps[t] + j])
//
// with K = cin*len(taps), as one chain of fused multiply-adds started
// from zero, then ep's BiasRow and ReLU (BiasCol must be nil); with ep.Max,
// C = max(C, that) instead (Go's max), which pools: a 2x2 MaxPool is the
// max of four convolutions over the input's even and odd rows and
// columns (SplitCols). Columns
// from n up to the next multiple of DirectCols are written too, with
// values of no meaning: C needs room for them (ldc at least that
// multiple), and X for what they read: (cin-1)*ldx + max(taps) + that
// multiple elements. Like Sgemm it panics when a slice is too short.
func (s *Scratch) DirectConv(m, n, cin int, taps []int64, w []float32, x []float32, ldx int, c []float32, ldc int, ep Epilogue) {
	ntap := len(taps)
	if m < 0 || n < 0 || cin < 1 || ntap < 1 || m%DirectRows != 0 || ldx < 0 {
		panic(fmt.Sprintf("gemm: direct convolution of m=%d (a multiple of %d), n=%d, cin=%d, %d taps, ldx=%d", m, DirectRows, n, cin, ntap, ldx))
	}
	if m == 0 || n == 0 {
		return
	}
	if ep.BiasCol != nil {
		panic("gemm: a direct convolution has no column bias")
	}
	if ep.BiasRow != nil && len(ep.BiasRow) < m {
		panic(fmt.Sprintf("gemm: row bias of %d for %d rows", len(ep.BiasRow), m))
	}
	cols := (n + DirectCols - 1) / DirectCols * DirectCols
	maxTap := int64(0)
	for _, t := range taps {
		if t < 0 {
			panic(fmt.Sprintf("gemm: direct convolution tap offset %d", t))
		}
		maxTap = max(maxTap, t)
	}
	k := cin * ntap
	need("W", len(w), m, k, k)
	need("C", len(c), m, cols, ldc)
	if int64(len(x)) < int64((cin-1)*ldx)+maxTap+int64(cols) {
		panic(fmt.Sprintf("gemm: X of %d elements cannot hold %d planes %d apart read to %d", len(x), cin, ldx, maxTap+int64(cols)))
	}
	im := current()
	if im.conv == nil {
		directGo(m, n, cin, taps, w, x, ldx, c, ldc, ep)
		return
	}
	flags := 0
	if ep.ReLU {
		flags |= flagReLU
	}
	if ep.Max {
		flags |= flagMax
	}
	// The last columns take the narrowest kernel that covers them: a
	// convolution's n is rarely a multiple of nr (193 for a 13x13 output
	// on a 15-wide grid: 4 tiles of 48 and one column).
	mr, nr := im.mr, im.nr
	vw := nr / len(im.conv)
	for i := 0; i < m; i += mr {
		var brow *float32
		if ep.BiasRow != nil {
			brow = &ep.BiasRow[i]
		}
		for j := 0; j < n; j += nr {
			kern := im.conv[len(im.conv)-1]
			if rest := n - j; rest < nr {
				kern = im.conv[(rest+vw-1)/vw-1]
			}
			kern(cin, &taps[0], ntap, &w[i*k], k, &x[j], ldx, &c[i*ldc+j], ldc, flags, brow)
		}
	}
}

// directGo is DirectConv's loop for paths without a vector kernel, with
// the generic kernel's arithmetic (acc = a*b + acc); it computes columns
// [0, n) only.
func directGo(m, n, cin int, taps []int64, w []float32, x []float32, ldx int, c []float32, ldc int, ep Epilogue) {
	ntap := len(taps)
	k := cin * ntap
	for r := 0; r < m; r++ {
		wr := w[r*k : (r+1)*k]
		for j := 0; j < n; j++ {
			var acc float32
			for ci := 0; ci < cin; ci++ {
				for t, off := range taps {
					acc = wr[ci*ntap+t]*x[ci*ldx+int(off)+j] + acc
				}
			}
			if ep.BiasRow != nil {
				acc += ep.BiasRow[r]
			}
			if ep.ReLU {
				acc = relu(acc)
			}
			if ep.Max {
				acc = max(c[r*ldc+j], acc)
			}
			c[r*ldc+j] = acc
		}
	}
}

// ColSplit writes the even and odd columns of rows of an image to other
// places (for the pooled direct convolution, which reads its input split
// into even and odd rows and columns), checked once when it is made.
type ColSplit struct {
	rows           []int32 // per row: source offset, even columns' and odd columns' destinations
	w              int
	srcLen, dstLen int
}

// NewColSplit describes a split of rows of w elements: rows holds three
// offsets (elements) per row: where it starts in the source, and where
// its even and its odd columns go in the destination. It fails when a row
// would read or write outside srcLen or dstLen elements.
func NewColSplit(rows []int32, w, srcLen, dstLen int) (*ColSplit, error) {
	if len(rows)%3 != 0 || w < 1 {
		return nil, fmt.Errorf("gemm: a column split of %d offsets (three per row) and rows of %d", len(rows), w)
	}
	even, odd := (w+1)/2, w/2
	for i := 0; i < len(rows); i += 3 {
		s, e, o := int(rows[i]), int(rows[i+1]), int(rows[i+2])
		if s < 0 || e < 0 || o < 0 || s+w > srcLen || e+even > dstLen || o+odd > dstLen {
			return nil, fmt.Errorf("gemm: column split row %d (source %d, even %d, odd %d, %d wide) outside %d and %d elements", i/3, s, e, o, w, srcLen, dstLen)
		}
	}
	return &ColSplit{rows: rows, w: w, srcLen: srcLen, dstLen: dstLen}, nil
}

// Run splits src's rows into dst. It panics when the slices are shorter
// than the split was made for.
func (cs *ColSplit) Run(dst, src []float32) {
	if len(src) < cs.srcLen || len(dst) < cs.dstLen {
		panic(fmt.Sprintf("gemm: column split of %d and %d elements made for %d and %d", len(src), len(dst), cs.srcLen, cs.dstLen))
	}
	n := len(cs.rows) / 3
	if n == 0 {
		return
	}
	if Active() == AVX512 && splitColsFast != nil {
		splitColsFast(&dst[0], &src[0], &cs.rows[0], n, cs.w)
		return
	}
	for i := 0; i < n; i++ {
		s, e, o := int(cs.rows[3*i]), int(cs.rows[3*i+1]), int(cs.rows[3*i+2])
		row := src[s : s+cs.w]
		ev, od := dst[e:e+(cs.w+1)/2], dst[o:o+cs.w/2]
		for j := range ev {
			ev[j] = row[2*j]
		}
		for j := range od {
			od[j] = row[2*j+1]
		}
	}
}

// CopyPlanes copies planes of rows of w elements: row r of plane p goes
// from src[p*sp+r*sr:] to dst[p*dp+r*dr:] (the direct convolution's
// output, computed on a wider grid, into its tensor); the two must not
// overlap. It panics when a slice is too short.
func CopyPlanes(dst, src []float32, planes, rows, w, sp, sr, dp, dr int) {
	if planes < 0 || rows < 0 || w < 0 || sp < 0 || sr < 0 || dp < 0 || dr < 0 {
		panic(fmt.Sprintf("gemm: copy of %d planes of %dx%d (strides %d, %d, %d, %d)", planes, rows, w, sp, sr, dp, dr))
	}
	if planes == 0 || rows == 0 || w == 0 {
		return
	}
	last := func(p, r int) int { return (planes-1)*p + (rows-1)*r + w }
	if len(src) < last(sp, sr) || len(dst) < last(dp, dr) {
		panic(fmt.Sprintf("gemm: copy of %d planes of %dx%d from %d elements (strides %d, %d) to %d (strides %d, %d)", planes, rows, w, len(src), sp, sr, len(dst), dp, dr))
	}
	if Active() == AVX512 && copyPlanesFast != nil {
		copyPlanesFast(&dst[0], &src[0], planes, rows, w, sp, sr, dp, dr)
		return
	}
	for p := 0; p < planes; p++ {
		for r := 0; r < rows; r++ {
			copy(dst[p*dp+r*dr:][:w], src[p*sp+r*sr:])
		}
	}
}
