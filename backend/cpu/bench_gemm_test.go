package cpu

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu/gemm"
)

// The products of the seed CNN's and the MLP's steps, one thread: gotrain's
// kernels on each path this CPU runs against the build's BLAS (OpenBLAS
// with cgo, gonum without). GFLOP/s counts 2 flops per multiply-add.
var gemmShapes = []struct {
	name    string
	ta, tb  bool
	m, n, k int
}{
	{"mlp_fc1_b256", false, false, 256, 512, 784},
	{"mlp_fc1_b64_transB", false, true, 64, 512, 784},
	{"mlp_fc2_b256", false, false, 256, 256, 512},
	{"mlp_fc1_dW", true, false, 512, 784, 64},
	{"mlp_fc1_dX", false, false, 64, 784, 512},
	{"conv1_fwd", false, false, 32, 900, 27},
	{"conv2_fwd", false, false, 64, 169, 288},
	{"conv2_fwd_4img", false, false, 64, 676, 288},
	{"conv2_dW_4img", false, true, 64, 288, 676},
	{"conv2_dX_4img", true, false, 288, 676, 64},
}

func BenchmarkGemm(b *testing.B) {
	for _, sh := range gemmShapes {
		rng := rand.New(rand.NewSource(1))
		rnd := func(n int) []float32 {
			s := make([]float32, n)
			for i := range s {
				s[i] = rng.Float32()
			}
			return s
		}
		lda, ldb := sh.k, sh.n
		if sh.ta {
			lda = sh.m
		}
		if sh.tb {
			ldb = sh.k
		}
		a, bb, c := rnd(sh.m*sh.k), rnd(sh.k*sh.n), rnd(sh.m*sh.n)
		flops := 2 * float64(sh.m*sh.n*sh.k)
		b.Run(sh.name+"/"+BLASName(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				blas32.Sgemm(trans(sh.ta), trans(sh.tb), sh.m, sh.n, sh.k, 1, a, lda, bb, ldb, 0, c, sh.n)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		for _, p := range gemm.Paths {
			if !p.Supported() {
				continue
			}
			b.Run(fmt.Sprintf("%s/%v", sh.name, p), func(b *testing.B) {
				prev := gemm.Active()
				defer gemm.SetActive(prev)
				if err := gemm.SetActive(p); err != nil {
					b.Fatal(err)
				}
				s := gemm.NewScratch()
				for i := 0; i < b.N; i++ {
					s.Sgemm(sh.ta, sh.tb, sh.m, sh.n, sh.k, 1, a, lda, bb, ldb, 0, c, sh.n, gemm.Epilogue{})
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
