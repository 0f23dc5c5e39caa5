//go:build !cgo || noopenblas

package cpu

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

const blasName = "gonum"

var blas32 gonumBLAS

// gonumBLAS is gonum's pure-Go BLAS with Sgemm's parallel path replaced by
// the same arithmetic on the caller. gonum's Sgemm, once C spans 4 or more
// 64x64 blocks, starts goroutines of its own with a work list allocated
// per call; the executable's pool already spreads the work, and a run must
// not allocate. So such a product is run here as gonum's parallel path
// runs it, block by block: C scaled by beta once, then for each 64x64 block
// of C the 64-long slices of k added in turn (each call stays on gonum's
// serial path). The sums, and so the results, are gonum's own.
type gonumBLAS struct{ gonum.Implementation }

const gonumBlock = 64 // gonum's blockSize

func (g gonumBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	blocks := func(x int) int { return (x + gonumBlock - 1) / gonumBlock }
	if blocks(m)*blocks(n) < 4 || k == 0 {
		g.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	for i := 0; i < m; i += gonumBlock {
		mi := min(gonumBlock, m-i)
		for j := 0; j < n; j += gonumBlock {
			nj := min(gonumBlock, n-j)
			for l := 0; l < k; l += gonumBlock {
				lk := min(gonumBlock, k-l)
				var al, bl []float32
				if tA == blas.NoTrans {
					al = a[i*lda+l:]
				} else {
					al = a[l*lda+i:]
				}
				if tB == blas.NoTrans {
					bl = b[l*ldb+j:]
				} else {
					bl = b[j*ldb+l:]
				}
				bt := float32(1)
				if l == 0 {
					bt = beta
				}
				g.Implementation.Sgemm(tA, tB, mi, nj, lk, alpha, al, lda, bl, ldb, bt, c[i*ldc+j:], ldc)
			}
		}
	}
}

// openblasCore is empty: there is no OpenBLAS in this build.
func openblasCore() string { return "" }

// newPosixPool has no C kernels to offer without OpenBLAS: work is split
// over the Go pool instead.
func newPosixPool(int) cPool { return nil }

// im2colDense2DC, col2imDense2DC, convPoolC and unpoolC are the Go loops
// in this build.
func im2colDense2DC(g *colGeom, x, col []float32, ld int)           { im2colDense2DGo(g, x, col, ld) }
func col2imDense2DC(g *colGeom, col []float32, ld int, x []float32) { col2imDense2DGo(g, col, ld, x) }
func convPoolC(src []float32, lds, ldr int, dst []float32, taps []uint8, planes, h, w int) {
	convPoolGo(src, lds, ldr, dst, taps, planes, h, w)
}
func unpoolC(dy []float32, taps []uint8, ym, dst []float32, ldd, planes, h, w int) {
	unpoolGo(dy, taps, ym, dst, ldd, planes, h, w)
}

// useCVectors has no C loops to switch in this build.
func useCVectors(bool) {}
