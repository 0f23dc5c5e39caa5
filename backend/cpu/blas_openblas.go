//go:build cgo && !noopenblas

package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

const blasName = "openblas"

var blas32 openBLAS

func init() {
	// One thread per call: parallelism comes from the executable's Pool.
	C.openblas_set_num_threads(1)
}

// openblasCore is the name of the CPU core OpenBLAS chose its kernels for
// (it reads OPENBLAS_CORETYPE when the library loads).
func openblasCore() string { return C.GoString(C.openblas_get_corename()) }

// openBLAS is gonum's pure-Go BLAS with the level-3 product that dominates
// every model's time, sgemm, replaced by OpenBLAS's.
type openBLAS struct{ gonum.Implementation }

// Sgemm computes C = alpha*op(A)*op(B) + beta*C in row-major order. Like
// gonum's, it panics on arguments that do not describe the slices, since
// OpenBLAS would read or write out of bounds.
func (openBLAS) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("cpu: sgemm with negative size m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	checkSgemm(tA != blas.NoTrans, tB != blas.NoTrans, m, n, k, a, lda, b, ldb, c, ldc)
	if k == 0 {
		blas32.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	C.cblas_sgemm(C.CblasRowMajor, cblasTrans(tA), cblasTrans(tB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(unsafe.Pointer(&a[0])), C.blasint(lda),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(ldb),
		C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.blasint(ldc))
}

// checkSgemm panics, as gonum does, when the slices cannot hold the
// matrices that the sizes and strides describe (k == 0 leaves A and B
// unchecked), since OpenBLAS would read or write out of bounds.
func checkSgemm(ta, tb bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	need := func(name string, s []float32, rows, cols, ld int) {
		if ld < max(1, cols) || (rows > 0 && len(s) < (rows-1)*ld+cols) {
			panic(fmt.Sprintf("cpu: sgemm: %s of %d elements cannot hold %dx%d with stride %d", name, len(s), rows, cols, ld))
		}
	}
	need("C", c, m, n, ldc)
	if k > 0 {
		need("A", a, ar, ac, lda)
		need("B", b, br, bc, ldb)
	}
}

func cblasTrans(t blas.Transpose) C.enum_CBLAS_TRANSPOSE {
	if t == blas.NoTrans {
		return C.CblasNoTrans
	}
	return C.CblasTrans
}
