package cuda_test

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestShape(t *testing.T) {
	r := rng(3)
	x := randF32(r, 2, 3, 4, 5)
	c := func(i ...int) map[int]bool {
		m := map[int]bool{}
		for _, v := range i {
			m[v] = true
		}
		return m
	}
	li := randInt(r, 100, 4, 6)
	cases := []*kcase{
		{name: "Transpose", op: "Transpose", in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInts("perm", 0, 2, 3, 1)}},
		{name: "TransposeDefault", op: "Transpose", in: []*tensor.Tensor{x}},
		{name: "TransposeI64", op: "Transpose", in: []*tensor.Tensor{li}},
		{name: "Concat", op: "Concat", in: []*tensor.Tensor{randF32(r, 2, 3), randF32(r, 2, 5), randF32(r, 2, 1)}, attrs: []*graph.Attribute{graph.AInt("axis", 1)}},
		{name: "Concat0", op: "Concat", in: []*tensor.Tensor{randF32(r, 7), randF32(r, 3)}, attrs: []*graph.Attribute{graph.AInt("axis", 0)}},
		{name: "Split", op: "Split", in: []*tensor.Tensor{randF32(r, 10), ints(3, 7)}, consts: c(1), outs: []string{"a", "b"}},
		{name: "SplitSkip", op: "Split", in: []*tensor.Tensor{randF32(r, 4, 6), ints(1, 2, 3)}, consts: c(1), outs: []string{"a", "", "c"}, attrs: []*graph.Attribute{graph.AInt("axis", 1)}},
		{name: "Split2D", op: "Split", in: []*tensor.Tensor{randF32(r, 4, 6), ints(1, 2, 3)}, consts: c(1), outs: []string{"a", "b", "c"}, attrs: []*graph.Attribute{graph.AInt("axis", 1)}},
		{name: "Slice", op: "Slice", in: []*tensor.Tensor{x, ints(1, 0), ints(3, 4), ints(1, 3)}, consts: c(1, 2, 3)},
		{name: "SliceStep", op: "Slice", in: []*tensor.Tensor{x, ints(-1, 4), ints(-100, 0), ints(2, 3), ints(-1, -2)}, consts: c(1, 2, 3, 4)},
		{name: "SliceGrad", op: "SliceGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{randF32(r, 2, 2, 4, 2), ints(2, 3, 4, 5), ints(1, 1), ints(3, 5), ints(1, 3), ints(1, 2)}, consts: c(1, 2, 3, 4, 5)},
		{name: "PadConst", op: "Pad", in: []*tensor.Tensor{randF32(r, 2, 3, 4), ints(0, 1, 2, 0, 2, 1)}, consts: c(1)},
		{name: "PadValue", op: "Pad", in: []*tensor.Tensor{randF32(r, 2, 3, 4), ints(0, 1, 2, 0, 2, 1), scalarF(3.5)}, consts: c(1)},
		{name: "PadCrop", op: "Pad", in: []*tensor.Tensor{randF32(r, 2, 3, 4), ints(0, -1, 2, 0, 0, -1)}, consts: c(1)},
	}
	for _, mode := range []string{"edge", "reflect", "wrap"} {
		cases = append(cases, &kcase{name: "Pad" + mode, op: "Pad", in: []*tensor.Tensor{randF32(r, 2, 3, 4), ints(0, 2, 3, 0, 1, 2)}, consts: c(1),
			attrs: []*graph.Attribute{graph.AString("mode", mode)}})
	}
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
