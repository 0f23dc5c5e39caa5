//go:build !cgo || noopenblas

package cpu

import "gonum.org/v1/gonum/blas/gonum"

const blasName = "gonum"

var blas32 = gonum.Implementation{}
