//go:build cgo && !noopenblas

package cpu

/*
#cgo CFLAGS: -O3 -std=c11
#cgo LDFLAGS: -lm
#include "ckernels.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

func init() { C.gt_init() }

// useCVectors turns the C kernels' AVX2 loops on or off (tests run both).
func useCVectors(on bool) { C.gt_use_vectors(cbool(on)) }

// posixPool is a cPool on POSIX threads.
type posixPool struct{ p *C.gt_pool }

func newPosixPool(n int) cPool {
	p := C.gt_pool_new(C.int(n))
	if p == nil {
		return nil
	}
	return posixPool{p}
}

func (c posixPool) sgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, cc []float32, ldc int, bias []float32, relu bool) {
	// Check the shapes as the single-threaded path does (it panics on
	// slices that cannot hold the matrices) before handing out pointers.
	checkSgemm(ta, tb, m, n, k, a, lda, b, ldb, cc, ldc)
	var pbias *C.float
	if bias != nil {
		if len(bias) < n {
			panic(fmt.Sprintf("cpu: sgemm: bias of %d elements for %d columns", len(bias), n))
		}
		pbias = f32ptr(bias)
	}
	C.gt_pool_sgemm(c.p, cbool(ta), cbool(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		f32ptr(a), C.int(lda), f32ptr(b), C.int(ldb),
		C.float(beta), f32ptr(cc), C.int(ldc), pbias, cbool(relu))
}

func (c posixPool) adam(k *adamKernel) {
	n := len(k.p)
	if len(k.g) != n || len(k.m) != n || len(k.v) != n || len(k.po) != n || len(k.mo) != n || len(k.vo) != n {
		panic("cpu: adam: state and parameter lengths differ")
	}
	if n == 0 {
		return
	}
	pr := k.prep
	plain := pr.scale == 1 && pr.clip == 0 && pr.wd == 0
	C.gt_pool_adam(c.p, f32ptr(k.p), f32ptr(k.g), f32ptr(k.m), f32ptr(k.v),
		f32ptr(k.po), f32ptr(k.mo), f32ptr(k.vo), C.long(n),
		C.float(k.b1), C.float(k.omb1), C.float(k.b2), C.float(k.omb2), C.float(k.eps),
		C.float(k.stepSize), C.float(k.bc2s), C.float(k.shrink),
		C.float(pr.scale), C.float(pr.clip), C.float(pr.wd), cbool(plain), cbool(k.decWD != 0))
}

func f32ptr(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func (c posixPool) maxPool2x2(x, y []float32, ind []int64, planes, h, w, oh, ow int) {
	if planes == 0 || oh == 0 || ow == 0 {
		return
	}
	if len(x) < planes*h*w || len(y) < planes*oh*ow || (ind != nil && len(ind) < planes*oh*ow) || oh != h/2 || ow != w/2 {
		panic(fmt.Sprintf("cpu: maxpool 2x2: %d planes of %dx%d -> %dx%d do not fit x[%d], y[%d], ind[%d]", planes, h, w, oh, ow, len(x), len(y), len(ind)))
	}
	var pind *C.longlong
	if ind != nil {
		pind = (*C.longlong)(unsafe.Pointer(&ind[0]))
	}
	C.gt_pool_maxpool2x2(c.p, f32ptr(x), f32ptr(y), pind, C.long(planes), C.int(h), C.int(w))
}

func (c posixPool) maxPoolGrad(dy []float32, ind []int64, x, dx []float32, planes, inPlane, outPlane int, relu bool) int64 {
	if planes == 0 || inPlane == 0 {
		return 0
	}
	if len(dy) < planes*outPlane || len(ind) < planes*outPlane || len(dx) < planes*inPlane || (relu && len(x) < planes*inPlane) {
		panic(fmt.Sprintf("cpu: maxpool grad: %d planes of %d -> %d do not fit dy[%d], ind[%d], x[%d], dx[%d]", planes, inPlane, outPlane, len(dy), len(ind), len(x), len(dx)))
	}
	var px, pdy *C.float
	var pind *C.longlong
	if relu {
		px = f32ptr(x)
	}
	if outPlane > 0 {
		pdy, pind = f32ptr(dy), (*C.longlong)(unsafe.Pointer(&ind[0]))
	}
	return int64(C.gt_pool_maxpoolgrad(c.p, pdy, pind, px, f32ptr(dx), C.long(planes), C.long(inPlane), C.long(outPlane), cbool(relu)))
}

// im2colDense2DC is im2colDense2DGo on float32, in C.
func im2colDense2DC(g *colGeom, x, col []float32, ld int) {
	if g.rows == 0 || g.colVol == 0 {
		return
	}
	if len(x) < g.imageLen || len(col) < (g.rows-1)*ld+g.colVol {
		panic(fmt.Sprintf("cpu: im2col: x[%d] or col[%d] too short for %d rows of %d (stride %d)", len(x), len(col), g.rows, g.colVol, ld))
	}
	C.gt_im2col_dense2d(f32ptr(x), f32ptr(col), C.int(g.c), C.int(g.img[1]), C.int(g.img[2]), C.int(g.k[1]), C.int(g.k[2]), C.int(g.col[1]), C.int(g.col[2]), C.long(ld))
}

// col2imDense2DC is col2imDense2DGo on float32, in C.
func col2imDense2DC(g *colGeom, col []float32, ld int, x []float32) {
	if g.rows == 0 || g.colVol == 0 {
		return
	}
	if len(x) < g.imageLen || len(col) < (g.rows-1)*ld+g.colVol {
		panic(fmt.Sprintf("cpu: col2im: x[%d] or col[%d] too short for %d rows of %d (stride %d)", len(x), len(col), g.rows, g.colVol, ld))
	}
	C.gt_col2im_dense2d(f32ptr(col), f32ptr(x), C.int(g.c), C.int(g.img[1]), C.int(g.img[2]), C.int(g.k[1]), C.int(g.k[2]), C.int(g.col[1]), C.int(g.col[2]), C.long(ld))
}

// convPoolC is convPoolGo on float32, in C.
func convPoolC(src []float32, lds, ldr int, dst []float32, taps []uint8, planes, h, w int) {
	if planes == 0 || h < 2 || w < 2 {
		return
	}
	pooled := planes * (h / 2) * (w / 2)
	if ldr < w || len(src) < (planes-1)*lds+(h-1)*ldr+w || len(dst) < pooled || (taps != nil && len(taps) < pooled) {
		panic(fmt.Sprintf("cpu: conv pool: src[%d], dst[%d] or taps[%d] too short for %d planes of %dx%d (stride %d, rows %d apart)", len(src), len(dst), len(taps), planes, h, w, lds, ldr))
	}
	var pt *C.uchar
	if taps != nil {
		pt = (*C.uchar)(unsafe.Pointer(&taps[0]))
	}
	C.gt_maxpool2x2_planes(f32ptr(src), C.long(lds), C.long(ldr), f32ptr(dst), pt, C.long(planes), C.int(h), C.int(w))
}

// unpoolC is unpoolGo on float32, in C.
func unpoolC(dy []float32, taps []uint8, ym, dst []float32, ldd, planes, h, w int) {
	if planes == 0 || h == 0 || w == 0 {
		return
	}
	pooled := planes * (h / 2) * (w / 2)
	if len(dst) < (planes-1)*ldd+h*w || len(dy) < pooled || len(taps) < pooled || (ym != nil && len(ym) < pooled) {
		panic(fmt.Sprintf("cpu: unpool: dy[%d], taps[%d], ym[%d] or dst[%d] too short for %d planes of %dx%d (stride %d)", len(dy), len(taps), len(ym), len(dst), planes, h, w, ldd))
	}
	var pdy, pym *C.float
	var pt *C.uchar
	if pooled > 0 {
		pdy, pt = f32ptr(dy), (*C.uchar)(unsafe.Pointer(&taps[0]))
		if ym != nil {
			pym = f32ptr(ym)
		}
	}
	C.gt_unpool2x2_planes(pdy, pt, pym, f32ptr(dst), C.long(ldd), C.long(planes), C.int(h), C.int(w))
}
