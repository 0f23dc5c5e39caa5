package cpu

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func randIndices(rng *rand.Rand, dt tensor.DType, size int, shape ...int) (*tensor.Tensor, []int) {
	n := tensor.NumElements(shape)
	v := make([]int64, n)
	norm := make([]int, n)
	for i := range v {
		k := rng.Intn(size)
		norm[i] = k
		v[i] = int64(k)
		if rng.Intn(2) == 0 {
			v[i] -= int64(size) // negative form of the same index
		}
	}
	t := ints64(dt, v...)
	r, _ := t.Reshaped(shape...)
	return r, norm
}

func TestGather(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for trial := 0; trial < 30; trial++ {
		r := 1 + rng.Intn(3)
		shape := randShape(rng, r, 5)
		axis := rng.Intn(r)
		ishape := randShape(rng, rng.Intn(3), 4) // rank 0 (scalar index) to 2
		dt := moveDTypes[trial%len(moveDTypes)]
		idt := []tensor.DType{tensor.Int64, tensor.Int32}[trial%2]
		x := randTensor(rng, dt, shape...)
		ind, norm := randIndices(rng, idt, shape[axis], ishape...)
		t.Run(fmt.Sprintf("%v/axis%d/idx%v/%v", shape, axis, ishape, dt), func(t *testing.T) {
			y := mustRun(t, node("Gather", 2, 1, graph.AInt("axis", int64(axis-r*(trial%2)))), 13, x, ind)[0]
			if want := r - 1 + len(ishape); y.Rank() != want {
				t.Fatalf("rank %d, want %d", y.Rank(), want)
			}
			ir := len(ishape)
			checkMap(t, y, x, func(c []int) int {
				ic := append([]int{}, c[:axis]...)
				ic = append(ic, norm[flatIndex(c[axis:axis+ir], ishape)])
				ic = append(ic, c[axis+ir:]...)
				return flatIndex(ic, shape)
			}, "")
		})
	}
	for _, bad := range []int64{3, -4, 1 << 40} {
		x := randTensor(rng, tensor.Float32, 3, 2)
		_, err := runNode(node("Gather", 2, 1), 13, x, ints64(tensor.Int64, 0, bad))
		if err == nil {
			t.Errorf("index %d into an axis of size 3 was accepted", bad)
		}
	}
}

// TestGatherGradAdjoint checks <Gather(x), y> == <x, GatherGrad(y)> with
// repeated indices (which must accumulate). Float64 sums of < 500 products
// of magnitude < 1: 1e-12 leaves room for reordering only.
func TestGatherGradAdjoint(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	for trial := 0; trial < 20; trial++ {
		r := 1 + rng.Intn(3)
		shape := randShape(rng, r, 5)
		axis := rng.Intn(r)
		ishape := randShape(rng, 1+rng.Intn(2), 6) // more indices than rows: repeats
		idt := []tensor.DType{tensor.Int64, tensor.Int32}[trial%2]
		x := randTensor(rng, tensor.Float64, shape...)
		ind, _ := randIndices(rng, idt, shape[axis], ishape...)
		gx := mustRun(t, node("Gather", 2, 1, graph.AInt("axis", int64(axis))), 13, x, ind)[0]
		y := randTensor(rng, tensor.Float64, gx.Shape()...)
		sh := make([]int64, r)
		for i, d := range shape {
			sh[i] = int64(d)
		}
		gn := node("GatherGrad", 3, 1, graph.AInt("axis", int64(axis-r)))
		gn.Domain = graph.DomainGotrain
		gy := mustRun(t, gn, 1, y, ind, ints64(tensor.Int64, sh...))[0]
		if !tensor.SameShape(gy.Shape(), shape) {
			t.Fatalf("GatherGrad shape %v, want %v", gy.Shape(), shape)
		}
		lhs, rhs := dot64(gx, y), dot64(x, gy)
		if d := lhs - rhs; d > 1e-12 || d < -1e-12 {
			t.Fatalf("%v axis %d indices %v: <Gather x, y> = %v but <x, GatherGrad y> = %v", shape, axis, ishape, lhs, rhs)
		}
	}
}

func TestGatherScatterElements(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for trial := 0; trial < 20; trial++ {
		r := 1 + rng.Intn(3)
		shape := randShape(rng, r, 5)
		axis := rng.Intn(r)
		ishape := append([]int{}, shape...)
		for i := range ishape {
			if i != axis {
				ishape[i] = 1 + rng.Intn(shape[i])
			} else {
				ishape[i] = 1 + rng.Intn(6)
			}
		}
		idt := []tensor.DType{tensor.Int64, tensor.Int32}[trial%2]
		x := randTensor(rng, tensor.Float32, shape...)
		ind, norm := randIndices(rng, idt, shape[axis], ishape...)
		t.Run(fmt.Sprintf("%v/axis%d/idx%v", shape, axis, ishape), func(t *testing.T) {
			y := mustRun(t, node("GatherElements", 2, 1, graph.AInt("axis", int64(axis))), 13, x, ind)[0]
			checkMap(t, y, x, func(c []int) int {
				ic := append([]int{}, c...)
				ic[axis] = norm[flatIndex(c, ishape)]
				return flatIndex(ic, shape)
			}, "")
			// ScatterElements with reduction add: the reference adds each
			// update at its position, in order.
			upd := randTensor(rng, tensor.Float32, ishape...)
			want := x.Clone()
			c := make([]int, r)
			for i := 0; i < upd.Len(); i++ {
				ic := append([]int{}, c...)
				ic[axis] = norm[i]
				want.Float32s()[flatIndex(ic, shape)] += upd.Float32s()[i]
				for a := r - 1; a >= 0; a-- {
					c[a]++
					if c[a] < ishape[a] {
						break
					}
					c[a] = 0
				}
			}
			got := mustRun(t, node("ScatterElements", 3, 1, graph.AInt("axis", int64(axis)), graph.AString("reduction", "add")), 18, x, ind, upd)[0]
			for i, v := range got.Float32s() {
				if v != want.Float32s()[i] {
					t.Fatalf("ScatterElements add: element %d = %v, want %v", i, v, want.Float32s()[i])
				}
			}
		})
	}
}

func TestOneHotCumSum(t *testing.T) {
	ind := tensor.MustFromSlice([]int64{0, -1, 5, 2}, 2, 2)
	vals := tensor.MustFromSlice([]float32{-1, 7}, 2)
	y := mustRun(t, node("OneHot", 3, 1, graph.AInt("axis", 1)), 11, ind, tensor.Scalar(int64(3)), vals)[0]
	// axis 1: y[i, k, j] = on where ind[i, j] (mod 3 for negatives) == k;
	// index 5 is out of range and leaves its column off.
	want := []float32{7, -1, -1, -1, -1, 7, -1, -1, -1, -1, -1, 7}
	if !tensor.SameShape(y.Shape(), []int{2, 3, 2}) || fmt.Sprint(y.Float32s()) != fmt.Sprint(want) {
		t.Errorf("OneHot = %v %v, want [2 3 2] %v", y.Shape(), y.Float32s(), want)
	}
	x := tensor.MustFromSlice([]int64{1, 2, 3, 4, 5, 6}, 2, 3)
	for _, c := range []struct {
		axis               int64
		exclusive, reverse int64
		want               string
	}{
		{1, 0, 0, "[1 3 6 4 9 15]"},
		{-2, 0, 0, "[1 2 3 5 7 9]"},
		{1, 1, 0, "[0 1 3 0 4 9]"},
		{1, 0, 1, "[6 5 3 15 11 6]"},
		{1, 1, 1, "[5 3 0 11 6 0]"},
	} {
		y := mustRun(t, node("CumSum", 2, 1, graph.AInt("exclusive", c.exclusive), graph.AInt("reverse", c.reverse)), 14, x, tensor.Scalar(c.axis))[0]
		if got := fmt.Sprint(y.Int64s()); got != c.want {
			t.Errorf("CumSum axis %d exclusive %d reverse %d = %s, want %s", c.axis, c.exclusive, c.reverse, got, c.want)
		}
	}
}
