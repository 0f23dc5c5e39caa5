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
// from zero, then ep's BiasRow and ReLU (BiasCol must be nil). Columns
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
			c[r*ldc+j] = acc
		}
	}
}
