//go:build !cgo || noopenblas

package cpu

import "gonum.org/v1/gonum/blas/gonum"

const blasName = "gonum"

var blas32 = gonum.Implementation{}

// newPosixPool has no C kernels to offer without OpenBLAS: work is split
// over the Go pool instead.
func newPosixPool(int) cPool { return nil }

// im2colDense2DC, col2imDense2DC, convEpilogueC and convPoolC are
// the Go loops in this build.
func im2colDense2DC(g *colGeom, x, col []float32, ld int)           { im2colDense2DGo(g, x, col, ld) }
func col2imDense2DC(g *colGeom, col []float32, ld int, x []float32) { col2imDense2DGo(g, col, ld, x) }
func convEpilogueC(dst []float32, ldd int, src []float32, lds, m, n int, bias []float32, relu bool) {
	convEpilogueGo(dst, ldd, src, lds, m, n, bias, relu)
}
func convPoolC(src []float32, lds int, dst []float32, planes, h, w int, bias []float32, relu bool) {
	convPoolGo(src, lds, dst, planes, h, w, bias, relu)
}
