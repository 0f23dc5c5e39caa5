package cpu

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Both builds give a full blas.Float32.
var _ blas.Float32 = blas32

// float32 products run on package gemm (gemmjob.go) unless kernels.go
// chose the build's BLAS: blas32, a gonum blas.Float32 chosen at build
// time, OpenBLAS through cgo when cgo is on and the noopenblas tag is off
// (blas_openblas.go), gonum's pure-Go implementation otherwise
// (blas_gonum.go). Both are row-major, as gonum's interface is. float64
// products always run on gonum (dgemm).
//
// OpenBLAS runs single-threaded: its own thread pool would fight the
// executable's Pool (and a mirrored strategy's replicas, each with its
// share of the cores), so kernels parallelise over images, groups or row
// tiles with Pool.For and every sgemm call runs on the worker that makes it.

// BLASName names the BLAS implementation the package was built with
// ("openblas" or "gonum").
func BLASName() string { return blasName }

// sgemm is C = alpha*op(A)*op(B) + beta*C on row-major matrices, with
// op(X) = X or X^T as ta/tb say; A is m x k after op, B is k x n, C is m x n.
func sgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	blas32.Sgemm(trans(ta), trans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// dgemm is sgemm in float64, always through gonum (float64 is used for
// gradient checks and the rare float64 model, not for speed).
func dgemm(ta, tb bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	gonum.Implementation{}.Dgemm(trans(ta), trans(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// scaleC sets C = beta*C (m x n, rows ldc apart), the whole product when k
// or alpha is 0: BLAS may not touch A and B then, so C is scaled here and
// both BLAS builds agree (beta == 0 overwrites, even NaNs).
func scaleC[T float32 | float64](m, n int, beta T, c []T, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
		} else if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}
