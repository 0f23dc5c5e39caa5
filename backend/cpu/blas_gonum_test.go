//go:build !cgo || noopenblas

package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestGonumSgemmBlocksAsGonum checks that gonumBLAS.Sgemm, which runs
// gonum's parallel path block by block on the caller, computes gonum's own
// Sgemm bit for bit: every transposition, betas 0, 1 and other, sizes below
// and above the parallel threshold and not multiples of the block.
func TestGonumSgemmBlocksAsGonum(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	for _, sz := range [][3]int{{30, 40, 50}, {130, 70, 200}, {64, 256, 65}, {200, 150, 129}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, tr := range [][2]blas.Transpose{{blas.NoTrans, blas.NoTrans}, {blas.Trans, blas.NoTrans}, {blas.NoTrans, blas.Trans}, {blas.Trans, blas.Trans}} {
			for _, beta := range []float32{0, 1, 0.5} {
				a, b, c0 := fill(m*k), fill(k*n), fill(m*n)
				lda, ldb := k, n
				if tr[0] == blas.Trans {
					lda = m
				}
				if tr[1] == blas.Trans {
					ldb = k
				}
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				gonum.Implementation{}.Sgemm(tr[0], tr[1], m, n, k, 1.25, a, lda, b, ldb, beta, want, n)
				gonumBLAS{}.Sgemm(tr[0], tr[1], m, n, k, 1.25, a, lda, b, ldb, beta, got, n)
				for i := range want {
					if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
						t.Fatalf("%v %v beta %v: C[%d] gonum %v, blocked %v", sz, tr, beta, i, want[i], got[i])
					}
				}
			}
		}
	}
}
