package cpu

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// refPadIndex is Pad's definition for one axis, written for pads no larger
// than the axis (the cases numpy and ONNX agree on without repetition).
func refPadIndex(mode string, o, d, pb int) int {
	i := o - pb
	switch {
	case i >= 0 && i < d:
		return i
	case mode == "edge" && i < 0:
		return 0
	case mode == "edge":
		return d - 1
	case mode == "reflect" && i < 0:
		return -i
	case mode == "reflect":
		return 2*(d-1) - i
	case mode == "wrap" && i < 0:
		return i + d
	case mode == "wrap":
		return i - d
	}
	return -1
}

func TestPad(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	for trial := 0; trial < 48; trial++ {
		mode := []string{"constant", "reflect", "edge", "wrap"}[trial%4]
		r := 1 + rng.Intn(4)
		shape := randShape(rng, r, 5)
		pads := make([]int64, 2*r)
		for i := range pads {
			d := shape[i%r]
			lim := d // wrap and edge: up to d
			if mode == "reflect" {
				lim = d - 1
			}
			pads[i] = int64(rng.Intn(lim + 1))
			if mode != "reflect" && mode != "wrap" && rng.Intn(4) == 0 {
				pads[i] = -int64(rng.Intn(d/2 + 1)) // cropping
			}
		}
		dt := moveDTypes[trial%len(moveDTypes)]
		x := randTensor(rng, dt, shape...)
		t.Run(fmt.Sprintf("%s/%v/pads%v/%v", mode, shape, pads, dt), func(t *testing.T) {
			n := node("Pad", 2, 1, graph.AString("mode", mode))
			ins := []*tensor.Tensor{x, ints64(tensor.Int64, pads...)}
			fill := "0"
			switch dt {
			case tensor.Float32:
				n.Inputs = append(n.Inputs, "cv")
				ins = append(ins, tensor.MustFromSlice([]float32{2.5}))
				fill = "2.5"
			case tensor.String:
				fill = ""
			case tensor.Bool:
				fill = "0"
			}
			y := mustRun(t, n, 19, ins...)[0]
			for i, d := range shape {
				if y.Shape()[i] != d+int(pads[i]+pads[r+i]) {
					t.Fatalf("shape %v", y.Shape())
				}
			}
			checkMap(t, y, x, func(c []int) int {
				ic := make([]int, r)
				for a, v := range c {
					ic[a] = refPadIndex(mode, v, shape[a], int(pads[a]))
					if ic[a] < 0 {
						return -1
					}
				}
				return flatIndex(ic, shape)
			}, fill)
		})
	}
	t.Run("opset2-attrs", func(t *testing.T) {
		x := tensor.MustFromSlice([]float32{1, 2, 3, 4}, 2, 2)
		y := mustRun(t, node("Pad", 1, 1, graph.AInts("pads", 0, 1, 0, 0), graph.AFloat("value", 9)), 2, x)[0]
		if got := fmt.Sprint(y.Shape(), y.Float32s()); got != "[2 3] [9 1 2 9 3 4]" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("axes-input", func(t *testing.T) {
		x := tensor.MustFromSlice([]float32{1, 2, 3, 4}, 2, 2)
		n := node("Pad", 4, 1, graph.AString("mode", "edge"))
		y := mustRun(t, n, 18, x, ints64(tensor.Int64, 1, 0), nil, ints64(tensor.Int64, -1))
		if got := fmt.Sprint(y[0].Shape(), y[0].Float32s()); got != "[2 3] [1 1 2 3 3 4]" {
			t.Errorf("got %s", got)
		}
	})
	t.Run("crop-below-zero", func(t *testing.T) {
		x := tensor.New(tensor.Float32, 2, 2)
		if _, err := runNode(node("Pad", 2, 1), 13, x, ints64(tensor.Int64, 0, -2, 0, -1)); err == nil {
			t.Error("cropping 3 of 2 elements was accepted")
		}
	})
}
