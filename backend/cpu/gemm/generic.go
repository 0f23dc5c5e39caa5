package gemm

import "unsafe"

var genericImpl = impl{path: Generic, mr: 4, nr: 4, kc: 128, mc: 128, kernel: kernelGeneric}

// at is *(p + i elements).
func at(p *float32, i int) float32 {
	return *(*float32)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*4))
}

func set(p *float32, i int, v float32) {
	*(*float32)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*4)) = v
}

// relu is max(v, 0) with NaN kept and -0 made +0, as the vector kernels
// compute it.
func relu(v float32) float32 {
	if v > 0 || v != v {
		return v
	}
	return 0
}

// kernelGeneric is the 4x4 kernel in Go, for CPUs without a vector path.
// The driver has checked every index it touches against the slices.
func kernelGeneric(k int, a *float32, rsA, ksA int, b *float32, c *float32, ldc int, flags int, biasRow, biasCol *float32) {
	var c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33 float32
	if flags&flagAcc != 0 {
		c00, c01, c02, c03 = at(c, 0), at(c, 1), at(c, 2), at(c, 3)
		c10, c11, c12, c13 = at(c, ldc), at(c, ldc+1), at(c, ldc+2), at(c, ldc+3)
		c20, c21, c22, c23 = at(c, 2*ldc), at(c, 2*ldc+1), at(c, 2*ldc+2), at(c, 2*ldc+3)
		c30, c31, c32, c33 = at(c, 3*ldc), at(c, 3*ldc+1), at(c, 3*ldc+2), at(c, 3*ldc+3)
	}
	ai := 0
	for p := 0; p < k; p++ {
		b0, b1, b2, b3 := at(b, 4*p), at(b, 4*p+1), at(b, 4*p+2), at(b, 4*p+3)
		a0, a1, a2, a3 := at(a, ai), at(a, ai+rsA), at(a, ai+2*rsA), at(a, ai+3*rsA)
		ai += ksA
		c00, c01, c02, c03 = a0*b0+c00, a0*b1+c01, a0*b2+c02, a0*b3+c03
		c10, c11, c12, c13 = a1*b0+c10, a1*b1+c11, a1*b2+c12, a1*b3+c13
		c20, c21, c22, c23 = a2*b0+c20, a2*b1+c21, a2*b2+c22, a2*b3+c23
		c30, c31, c32, c33 = a3*b0+c30, a3*b1+c31, a3*b2+c32, a3*b3+c33
	}
	t := [16]float32{c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33}
	for r := 0; r < 4; r++ {
		for j := 0; j < 4; j++ {
			v := t[4*r+j]
			if biasRow != nil {
				v += at(biasRow, r)
			}
			if biasCol != nil {
				v += at(biasCol, j)
			}
			if flags&flagReLU != 0 {
				v = relu(v)
			}
			set(c, r*ldc+j, v)
		}
	}
}
