//go:build !cgo || noopenblas

package cpu

import "gonum.org/v1/gonum/blas/gonum"

const blasName = "gonum"

var blas32 = gonum.Implementation{}

// newPosixPool has no C kernels to offer without OpenBLAS: work is split
// over the Go pool instead.
func newPosixPool(int) cPool { return nil }
