package cpu

import "sync"

// cPool runs kernels written in C over POSIX threads, outside the Go
// scheduler. It exists because of how Go treats cgo calls: a goroutine in
// C holds its P in the syscall state, and while every P sits in that state
// the runtime's monitor thread keeps retaking them and waking every few
// tens of microseconds. With as many Go workers as cores, each calling
// OpenBLAS on its share of a product, those wake-ups land on the cores
// doing the work: measured on 2 cores, a 256x784x512 product split over
// two goroutines took 1.33 ms against 1.06 ms for the same split over two
// POSIX threads. Handing the whole task to C in one call leaves the other
// Ps idle and the monitor quiet. The Adam update and max pooling live
// here too: compiled for the machine's vector width, they run several times
// faster than Go's scalar loops, and they are large shares of a step.
//
// A task is split into one part per thread; the calling thread takes parts
// too, so a worker that is slow to wake costs nothing but its share. Tasks
// run one at a time per pool. The C code computes exactly what the Go code
// it replaces computes (the same operations in the same order, no fused
// multiply-adds), so results do not depend on the build.
type cPool interface {
	// sgemm is C = alpha*op(A)*op(B) + beta*C, then, on each thread's part
	// while it is in cache, C[i][j] += bias[j] (bias nil: none) and
	// C = max(C, 0) with relu.
	sgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias []float32, relu bool)
	// adam runs k's update over all its elements (adamKernel.run's math).
	adam(k *adamKernel)
	// maxPool2x2 is poolMax2x2 over planes of h x w (ind nil: no Indices).
	maxPool2x2(x, y []float32, ind []int64, planes, h, w, oh, ow int)
	// maxPoolGrad is poolMaxGradKernel's scatter of dy into dx (x is read
	// only with relu); it returns 1 + the position of the first Indices
	// value found outside its plane, or 0.
	maxPoolGrad(dy []float32, ind []int64, x, dx []float32, planes, inPlane, outPlane int, relu bool) int64
}

// cPools holds one cPool per (device slot, thread count), created on first
// use and kept for the life of the process: executables come and go (tests
// make hundreds), threads should not.
var cPools struct {
	sync.Mutex
	m map[[2]int]cPool
}

// cPoolFor returns the shared pool for slot with n threads, or nil when the
// build has no C kernels (gonum). A pool of one thread starts none: its
// caller runs every part, and the vector kernels still pay.
func cPoolFor(slot, n int) cPool {
	if n < 1 {
		return nil
	}
	cPools.Lock()
	defer cPools.Unlock()
	key := [2]int{slot, n}
	if p, ok := cPools.m[key]; ok {
		return p
	}
	if cPools.m == nil {
		cPools.m = map[[2]int]cPool{}
	}
	p := newPosixPool(n)
	cPools.m[key] = p
	return p
}
