package cpu

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

// The seed CNN's two convolutions (3->32 and 32->64, 3x3, no padding, on
// 32x32 and 15x15 images) at training and inference batch sizes. GFLOP/s
// counts 2 flops per multiply-add of the convolution proper (ConvGrad:
// dX and dW, twice Conv's work).
var seedConvs = []struct {
	name string
	c    convCase
}{
	{"conv1_3to32", convCase{x: []int{0, 3, 32, 32}, w: []int{32, 3, 3, 3}, bias: true}},
	{"conv2_32to64", convCase{x: []int{0, 32, 15, 15}, w: []int{64, 32, 3, 3}, bias: true}},
}

func convFlops(c convCase) float64 {
	oh, ow := c.x[2]-c.w[2]+1, c.x[3]-c.w[3]+1
	return 2 * float64(c.x[0]*c.w[0]*c.w[1]*c.w[2]*c.w[3]*oh*ow)
}

func BenchmarkConvForward(b *testing.B) {
	for _, batch := range []int{32, 256} {
		for _, sc := range seedConvs {
			c := sc.c
			c.x = append([]int{batch}, c.x[1:]...)
			b.Run(fmt.Sprintf("%s/batch%d", sc.name, batch), func(b *testing.B) {
				pool := NewPool(runtime.GOMAXPROCS(0))
				defer pool.Close()
				in := convInputs(rand.New(rand.NewSource(1)), c, tensor.Float32, c.w[0])
				k, out := mmPrepare(b, c.node("Conv"), pool, in...)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := k(in, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(convFlops(c)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkConvGrad(b *testing.B) {
	for _, batch := range []int{32, 256} {
		for _, sc := range seedConvs {
			c := sc.c
			c.x = append([]int{batch}, c.x[1:]...)
			b.Run(fmt.Sprintf("%s/batch%d", sc.name, batch), func(b *testing.B) {
				pool := NewPool(runtime.GOMAXPROCS(0))
				defer pool.Close()
				rng := rand.New(rand.NewSource(1))
				x, w := mmRandT(rng, tensor.Float32, c.x...), mmRandT(rng, tensor.Float32, c.w...)
				dy := mmRandT(rng, tensor.Float32, batch, c.w[0], c.x[2]-c.w[2]+1, c.x[3]-c.w[3]+1)
				outs := []string{"dx", "dw", "db"}
				if sc.name == "conv1_3to32" {
					outs[0] = "" // the first layer's input needs no gradient
				}
				k, out := mmPrepare(b, convGradNode(c, outs...), pool, dy, x, w)
				in := []*tensor.Tensor{dy, x, w}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := k(in, out); err != nil {
						b.Fatal(err)
					}
				}
				flops := convFlops(c)
				if outs[0] != "" {
					flops *= 2
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkSgemm measures the BLAS product alone, on one goroutine and on
// GOMAXPROCS goroutines at once (each with its own matrices), which shows
// whether concurrent single-threaded calls scale.
func BenchmarkSgemm(b *testing.B) {
	const m, n, k = 64, 169, 288 // conv2's per-image product
	for _, par := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("%s/goroutines%d", BLASName(), par), func(b *testing.B) {
			pool := NewPool(par)
			defer pool.Close()
			bufs := make([][3][]float32, par)
			for i := range bufs {
				bufs[i] = [3][]float32{make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				pool.For(par, 1, func(lo, hi int) {
					for j := lo; j < hi; j++ {
						for r := 0; r < 32; r++ {
							sgemm(false, false, m, n, k, 1, bufs[j][0], k, bufs[j][1], n, 0, bufs[j][2], n)
						}
					}
				})
			}
			b.ReportMetric(2*m*n*k*32*float64(par)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
