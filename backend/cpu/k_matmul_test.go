package cpu

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func mmRandInts(rng *rand.Rand, dt tensor.DType, shape ...int) *tensor.Tensor {
	n := tensor.NumElements(shape)
	switch dt {
	case tensor.Int32:
		d := make([]int32, n)
		for i := range d {
			d[i] = int32(rng.Intn(11) - 5)
		}
		return tensor.MustFromSlice(d, shape...)
	case tensor.Int64:
		d := make([]int64, n)
		for i := range d {
			d[i] = int64(rng.Intn(11) - 5)
		}
		return tensor.MustFromSlice(d, shape...)
	case tensor.Uint32:
		d := make([]uint32, n)
		for i := range d {
			d[i] = uint32(rng.Intn(6))
		}
		return tensor.MustFromSlice(d, shape...)
	case tensor.Uint64:
		d := make([]uint64, n)
		for i := range d {
			d[i] = uint64(rng.Intn(6))
		}
		return tensor.MustFromSlice(d, shape...)
	}
	return mmRandT(rng, dt, shape...)
}

// refGemm is alpha*op(A)*op(B) + beta*C with C broadcast, in float64.
func refGemm(a, b []float64, as, bs []int, ta, tb bool, alpha, beta float64, c []float64, cs []int) ([]float64, []int) {
	m, k := as[0], as[1]
	if ta {
		m, k = k, m
	}
	n := bs[1]
	if tb {
		n = bs[0]
	}
	at := func(i, p int) float64 {
		if ta {
			return a[p*as[1]+i]
		}
		return a[i*as[1]+p]
	}
	bt := func(p, j int) float64 {
		if tb {
			return b[j*bs[1]+p]
		}
		return b[p*bs[1]+j]
	}
	y := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += at(i, p) * bt(p, j)
			}
			y[i*n+j] = alpha * s
			if c != nil {
				full := append(make([]int, 2-len(cs)), cs...)
				for d := 0; d < 2-len(cs); d++ {
					full[d] = 1
				}
				ci, cj := i, j
				if full[0] == 1 {
					ci = 0
				}
				if full[1] == 1 {
					cj = 0
				}
				y[i*n+j] += beta * c[ci*full[1]+cj]
			}
		}
	}
	return y, []int{m, n}
}

func TestGemmMatchesReference(t *testing.T) { eachGEMM(t, checkGemmMatchesReference) }

func checkGemmMatchesReference(t *testing.T) {
	type gc struct {
		m, n, k     int
		ta, tb      bool
		alpha, beta float32
		cShape      []int // nil: no C
	}
	var cases []gc
	for _, size := range [][3]int{{3, 4, 5}, {70, 40, 33}, {1, 300, 64}, {200, 2, 10}} {
		for _, ta := range []bool{false, true} {
			for _, tb := range []bool{false, true} {
				for _, cs := range [][]int{nil, {}, {1}, {size[1]}, {size[0], 1}, {1, size[1]}, {size[0], size[1]}} {
					cases = append(cases, gc{size[0], size[1], size[2], ta, tb, 0.5, 2, cs})
				}
			}
		}
	}
	cases = append(cases, gc{5, 6, 7, false, false, 1, 1, []int{5, 6}}, gc{5, 6, 7, true, true, -1.5, 0, []int{6}})
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int32, tensor.Int64, tensor.Uint32, tensor.Uint64} {
		for i, c := range cases {
			if dt.IsInt() && (c.alpha != 1 || c.beta != 1) {
				c.alpha, c.beta = 1, 1
			}
			t.Run(fmt.Sprintf("%v/%d_%dx%dx%d_tA%v_tB%v_C%v", dt, i, c.m, c.n, c.k, c.ta, c.tb, c.cShape), func(t *testing.T) {
				rng := rand.New(rand.NewSource(int64(i)))
				as, bs := []int{c.m, c.k}, []int{c.k, c.n}
				if c.ta {
					as = []int{c.k, c.m}
				}
				if c.tb {
					bs = []int{c.n, c.k}
				}
				in := []*tensor.Tensor{mmRandInts(rng, dt, as...), mmRandInts(rng, dt, bs...)}
				var cv []float64
				if c.cShape != nil {
					in = append(in, mmRandInts(rng, dt, c.cShape...))
					cv = mmF64(in[2])
				}
				n := &graph.Node{OpType: "Gemm", Outputs: []string{"y"}}
				n.SetAttr(graph.AFloat("alpha", c.alpha)).SetAttr(graph.AFloat("beta", c.beta))
				if c.ta {
					n.SetAttr(graph.AInt("transA", 1))
				}
				if c.tb {
					n.SetAttr(graph.AInt("transB", 1))
				}
				y := mmRunNode(t, n, 2, in...)[0]
				want, shape := refGemm(mmF64(in[0]), mmF64(in[1]), as, bs, c.ta, c.tb, float64(c.alpha), float64(c.beta), cv, c.cShape)
				if y.DType() != dt {
					t.Fatalf("dtype %v, want %v", y.DType(), dt)
				}
				// float32: sums of up to 64 products of values in [-1, 1].
				atol, rtol := 1e-4, 1e-4
				if dt != tensor.Float32 {
					atol, rtol = 1e-12, 1e-12
				}
				mmClose(t, "Y", y, want, shape, atol, rtol)
			})
		}
	}
}

func TestMatMulMatchesReference(t *testing.T) { eachGEMM(t, checkMatMulMatchesReference) }

func checkMatMulMatchesReference(t *testing.T) {
	cases := []struct{ a, b, want []int }{
		{[]int{4}, []int{4}, []int{}},
		{[]int{3}, []int{3, 5}, []int{5}},
		{[]int{2, 3}, []int{3}, []int{2}},
		{[]int{3, 4}, []int{4, 5}, []int{3, 5}},
		{[]int{2, 3, 4}, []int{4, 5}, []int{2, 3, 5}},
		{[]int{4}, []int{2, 4, 3}, []int{2, 3}},
		{[]int{2, 1, 3, 4}, []int{3, 4, 2}, []int{2, 3, 3, 2}},
		{[]int{1, 3, 4}, []int{5, 4, 2}, []int{5, 3, 2}},
		{[]int{6, 3, 4}, []int{6, 4, 2}, []int{6, 3, 2}},
		{[]int{2, 300, 64}, []int{64, 70}, []int{2, 300, 70}},
		{[]int{3, 50, 64}, []int{3, 64, 80}, []int{3, 50, 80}},
	}
	for _, dt := range []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int32, tensor.Int64, tensor.Uint32, tensor.Uint64} {
		for i, c := range cases {
			t.Run(fmt.Sprintf("%v/%v_x_%v", dt, c.a, c.b), func(t *testing.T) {
				rng := rand.New(rand.NewSource(int64(i)))
				a, b := mmRandInts(rng, dt, c.a...), mmRandInts(rng, dt, c.b...)
				y := mmRunNode(t, &graph.Node{OpType: "MatMul", Outputs: []string{"y"}}, 2, a, b)[0]
				// Reference: numpy semantics spelled out with explicit loops.
				pa, pb := c.a, c.b
				if len(pa) == 1 {
					pa = []int{1, pa[0]}
				}
				if len(pb) == 1 {
					pb = []int{pb[0], 1}
				}
				m, k, n := pa[len(pa)-2], pa[len(pa)-1], pb[len(pb)-1]
				rank := max(len(pa), len(pb)) - 2
				bat := make([]int, rank)
				for d := 0; d < rank; d++ {
					bat[d] = 1
					if j := d - (rank - (len(pa) - 2)); j >= 0 {
						bat[d] = max(bat[d], pa[j])
					}
					if j := d - (rank - (len(pb) - 2)); j >= 0 {
						bat[d] = max(bat[d], pb[j])
					}
				}
				av, bv := mmF64(a), mmF64(b)
				var want []float64
				mmIndex(bat, func(idx []int) {
					off := func(shape []int, mat int) int {
						o := 0
						bs := shape[:len(shape)-2]
						for d := range bs {
							v := idx[d+rank-len(bs)]
							if bs[d] == 1 {
								v = 0
							}
							o = o*bs[d] + v
						}
						return o * mat
					}
					ao, bo := off(pa, m*k), off(pb, k*n)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							s := 0.0
							for p := 0; p < k; p++ {
								s += av[ao+i*k+p] * bv[bo+p*n+j]
							}
							want = append(want, s)
						}
					}
				})
				atol, rtol := 1e-4, 1e-4 // float32 sums of up to 64 products in [-1, 1]
				if dt != tensor.Float32 {
					atol, rtol = 1e-12, 1e-12
				}
				if y.DType() != dt {
					t.Fatalf("dtype %v, want %v", y.DType(), dt)
				}
				mmClose(t, "Y", y, want, c.want, atol, rtol)
			})
		}
	}
}
