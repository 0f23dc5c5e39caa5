package cuda

import (
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// Geometry tables for the kernels' gt_off: rank, the dims, then per operand
// its element strides along those dims (0 where the operand repeats).

// bcastGeo plans out (the full shape) against ins under numpy broadcasting.
// Dims of size 1 are dropped and neighbouring dims that every operand walks
// contiguously (or repeats) are merged, so same-shape operands reduce to
// rank 1 and a bias over [N, C, H, W] to rank 3.
func bcastGeo(out []int, ins ...[]int) ([]int32, error) {
	rank := len(out)
	strides := make([][]int, len(ins))
	for k, s := range ins {
		if len(s) > rank {
			return nil, fmt.Errorf("shape %v does not broadcast to %v", s, out)
		}
		st := make([]int, rank)
		acc := 1
		for d := rank - 1; d >= 0; d-- {
			i := d - (rank - len(s))
			if i < 0 {
				continue
			}
			switch {
			case s[i] == out[d]:
				if s[i] != 1 {
					st[d] = acc
				}
			case s[i] == 1:
			default:
				return nil, fmt.Errorf("shape %v does not broadcast to %v", s, out)
			}
			acc *= s[i]
		}
		strides[k] = st
	}
	return stridedGeo(out, strides...), nil
}

// stridedGeo collapses a shape walked by operands with the given strides.
func stridedGeo(dims []int, strides ...[]int) []int32 {
	var cd []int
	cs := make([][]int, len(strides))
	for d, n := range dims {
		if n == 1 {
			continue
		}
		if len(cd) > 0 {
			last := len(cd) - 1
			merge := true
			for k := range strides {
				if cs[k][last] != strides[k][d]*n {
					merge = false
					break
				}
			}
			if merge {
				cd[last] *= n
				for k := range strides {
					cs[k][last] = strides[k][d]
				}
				continue
			}
		}
		cd = append(cd, n)
		for k := range strides {
			cs[k] = append(cs[k], strides[k][d])
		}
	}
	geo := []int32{int32(len(cd))}
	for _, n := range cd {
		geo = append(geo, int32(n))
	}
	for k := range strides {
		for _, s := range cs[k] {
			geo = append(geo, int32(s))
		}
	}
	return geo
}

// contiguousStrides are the row-major element strides of a shape.
func contiguousStrides(s []int) []int { return tensor.Strides(s) }

// suffixOf names a dtype in kernel names; ok is false for dtypes the
// kernels do not handle.
func suffixOf(dt tensor.DType) (string, bool) {
	switch dt {
	case tensor.Float32:
		return "f32", true
	case tensor.Float64:
		return "f64", true
	case tensor.Int64:
		return "i64", true
	case tensor.Int32:
		return "i32", true
	case tensor.Bool, tensor.Uint8:
		return "u8", true
	}
	return "", false
}
