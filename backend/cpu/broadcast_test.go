package cpu

import (
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// naiveIndex maps a flat output index to the flat index of an input of
// shape in under numpy broadcasting, the slow way.
func naiveIndex(out, in []int, flat int) int {
	idx := make([]int, len(out))
	for d := len(out) - 1; d >= 0; d-- {
		idx[d] = flat % out[d]
		flat /= out[d]
	}
	off, stride := 0, 1
	for d := len(in) - 1; d >= 0; d-- {
		od := d + len(out) - len(in)
		if in[d] != 1 {
			off += idx[od] * stride
		}
		stride *= in[d]
	}
	return off
}

func TestBroadcastAddMatchesNaive(t *testing.T) {
	cases := []struct {
		name string
		a, b []int
		// rows is the number of contiguous runs the plan must use, the
		// property that keeps the common cases free of index arithmetic.
		rows int
	}{
		{"same shape", []int{4, 3, 5}, []int{4, 3, 5}, 1},
		{"scalar", []int{4, 3, 5}, []int{}, 1},
		{"scalar first", []int{}, []int{2, 7}, 1},
		{"bias over NCHW", []int{2, 3, 4, 5}, []int{3, 1, 1}, 6},
		{"row vector", []int{6, 5}, []int{5}, 6},
		{"column", []int{6, 5}, []int{6, 1}, 6},
		{"outer product", []int{4, 1}, []int{1, 3}, 4},
		{"middle", []int{2, 3, 4}, []int{1, 3, 1}, 6},
		{"ones dropped", []int{1, 5, 1}, []int{5, 1}, 1},
		{"empty", []int{0, 3}, []int{3}, 0},
	}
	r := rand.New(rand.NewSource(1))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := ewRandF32(r, c.a...), ewRandF32(r, c.b...)
			out := ewMustRun(t, ewNode("", "Add", 2, 1), 17, a, b)[0]
			os := out.Shape()
			pl, err := newBcastPlan(os, c.a, c.b)
			if err != nil {
				t.Fatal(err)
			}
			if pl.rows != c.rows {
				t.Errorf("plan uses %d runs of %d, want %d runs", pl.rows, pl.inner, c.rows)
			}
			want := make([]float64, out.Len())
			for i := range want {
				want[i] = float64(a.Float32s()[naiveIndex(os, c.a, i)] + b.Float32s()[naiveIndex(os, c.b, i)])
			}
			ewCheckClose(t, "sum", out, want, 0, 0)
		})
	}
}

func TestBroadcastLargeParallel(t *testing.T) {
	// Large enough to be split across workers; the result must not depend on it.
	r := rand.New(rand.NewSource(2))
	a, b := ewRandF32(r, 8, 16, 32, 32), ewRandF32(r, 16, 1, 1)
	out := ewMustRun(t, ewNode("", "Mul", 2, 1), 17, a, b)[0]
	want := make([]float64, out.Len())
	for i := range want {
		want[i] = float64(a.Float32s()[i] * b.Float32s()[naiveIndex(out.Shape(), b.Shape(), i)])
	}
	ewCheckClose(t, "product", out, want, 0, 0)
}

func TestBroadcastRejectsBadShapes(t *testing.T) {
	if _, err := newBcastPlan([]int{3, 4}, []int{3, 5}); err == nil {
		t.Error("shape [3 5] broadcast to [3 4] without error")
	}
	n := ewNode("", "Add", 2, 1)
	if _, err := ewRun(t, n, 17, tensor.New(tensor.Float32, 3, 4), tensor.New(tensor.Float32, 2, 4)); err == nil {
		t.Error("Add of [3 4] and [2 4] succeeded")
	}
	if _, err := ewRun(t, n, 17, tensor.New(tensor.Float32, 3), tensor.New(tensor.Int64, 3)); err == nil {
		t.Error("Add of float32 and int64 succeeded")
	}
}

func BenchmarkAddBias(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	for _, c := range []struct {
		name string
		x, y []int
	}{{"same", []int{32, 64, 32, 32}, []int{32, 64, 32, 32}}, {"bias", []int{32, 64, 32, 32}, []int{64, 1, 1}}, {"row", []int{2048, 1024}, []int{1024}}} {
		b.Run(c.name, func(b *testing.B) {
			x, y := ewRandF32(r, c.x...), ewRandF32(r, c.y...)
			n := ewNode("", "Add", 2, 1)
			in := []*graph.Type{graph.TypeOf(x), graph.TypeOf(y)}
			out, _ := graph.Lookup("", "Add").Infer(n, in, 17)
			pool := NewPool(2)
			defer pool.Close()
			k, err := kernels[kkey("", "Add")].factory(&Prep{Node: n, In: in, Out: out, Opset: 17, Pool: pool})
			if err != nil {
				b.Fatal(err)
			}
			o := tensor.New(tensor.Float32, c.x...)
			b.SetBytes(int64(o.Len() * 4))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := k([]*tensor.Tensor{x, y}, []*tensor.Tensor{o}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
