package cuda_test

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestElementwise(t *testing.T) {
	r := rng(1)
	x := randF32(r, 3, 4, 5)
	pos := randPos(r, 3, 4, 5)
	var cases []*kcase
	for _, op := range []string{"Relu", "Sigmoid", "Tanh", "Erf", "Exp", "Neg", "Abs"} {
		cases = append(cases, &kcase{name: op, op: op, in: []*tensor.Tensor{x}})
	}
	for _, op := range []string{"Sqrt", "Log", "Reciprocal"} {
		cases = append(cases, &kcase{name: op, op: op, in: []*tensor.Tensor{pos}})
	}
	cases = append(cases,
		&kcase{name: "LeakyRelu", op: "LeakyRelu", in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AFloat("alpha", 0.2)}},
		&kcase{name: "Gelu", op: "Gelu", opset: 20, in: []*tensor.Tensor{x}},
		&kcase{name: "GeluTanh", op: "Gelu", opset: 20, in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AString("approximate", "tanh")}},
	)
	shapes := [][2][]int{{{3, 4, 5}, {3, 4, 5}}, {{3, 4, 5}, {5}}, {{3, 4, 5}, {4, 1}}, {{3, 1, 5}, {1, 4, 1}}, {{}, {3, 4, 5}}, {{2, 3, 4, 5}, {3, 1, 1}}}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow"} {
		for _, s := range shapes {
			a, b := randF32(r, s[0]...), randPos(r, s[1]...)
			if op == "Pow" {
				a = randPos(r, s[0]...)
			}
			c := &kcase{name: op, op: op, in: []*tensor.Tensor{a, b}}
			if op == "Div" {
				// The CPU multiplies by the reciprocal when a run divides by
				// one broadcast value whose reciprocal inverts exactly; the
				// kernel always divides: 1 ulp apart at most.
				c.tol = 1.2e-7
			}
			cases = append(cases, c)
		}
	}
	cases = append(cases, &kcase{name: "Sum3", op: "Sum", in: []*tensor.Tensor{randF32(r, 4, 5), randF32(r, 5), randF32(r, 4, 1)}},
		&kcase{name: "Mean3", op: "Mean", in: []*tensor.Tensor{randF32(r, 4, 5), randF32(r, 5), randF32(r, 4, 1)}})
	li := randInt(r, 3, 16)
	lj := randInt(r, 3, 16)
	for _, op := range []string{"Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual"} {
		cases = append(cases, &kcase{name: op + "i64", op: op, in: []*tensor.Tensor{li, lj}},
			&kcase{name: op + "f32", op: op, in: []*tensor.Tensor{randF32(r, 4, 5), randF32(r, 5)}})
	}
	cases = append(cases, &kcase{name: "AddI64", op: "Add", in: []*tensor.Tensor{li, lj}})
	cond := tensor.New(tensor.Bool, 4, 5)
	for i := range cond.Bools() {
		cond.Bools()[i] = r.IntN(2) == 0
	}
	cases = append(cases,
		&kcase{name: "Where", op: "Where", in: []*tensor.Tensor{cond, randF32(r, 4, 5), randF32(r, 5)}},
		&kcase{name: "Clip", op: "Clip", in: []*tensor.Tensor{x, scalarF(-0.5), scalarF(0.7)}},
		&kcase{name: "ClipLo", op: "Clip", in: []*tensor.Tensor{x, scalarF(-0.5)}},
		&kcase{name: "CastBoolF32", op: "Cast", in: []*tensor.Tensor{cond}, attrs: []*graph.Attribute{graph.AInt("to", int64(tensor.Float32))}},
		&kcase{name: "CastI64F32", op: "Cast", in: []*tensor.Tensor{li}, attrs: []*graph.Attribute{graph.AInt("to", int64(tensor.Float32))}},
		&kcase{name: "CastF32I64", op: "Cast", in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInt("to", int64(tensor.Int64))}},
		&kcase{name: "CastF32Bool", op: "Cast", in: []*tensor.Tensor{x}, attrs: []*graph.Attribute{graph.AInt("to", int64(tensor.Bool))}},
		&kcase{name: "Not", op: "Not", in: []*tensor.Tensor{cond}},
		&kcase{name: "Expand", op: "Expand", in: []*tensor.Tensor{randF32(r, 3, 1), ints(2, 3, 4)}, consts: map[int]bool{1: true}},
		&kcase{name: "Reshape", op: "Reshape", in: []*tensor.Tensor{x, ints(12, 5)}, consts: map[int]bool{1: true}},
		&kcase{name: "Flatten", op: "Flatten", in: []*tensor.Tensor{x}},
		&kcase{name: "Identity", op: "Identity", in: []*tensor.Tensor{x}},
		&kcase{name: "Unsqueeze", op: "Unsqueeze", in: []*tensor.Tensor{x, ints(0, 2)}, consts: map[int]bool{1: true}},
		&kcase{name: "Squeeze", op: "Squeeze", in: []*tensor.Tensor{randF32(r, 3, 1, 5), ints(1)}, consts: map[int]bool{1: true}},
		&kcase{name: "CastLike", op: "CastLike", in: []*tensor.Tensor{li, x}},
	)
	y := randF32(r, 3, 4, 5)
	dy := randF32(r, 3, 4, 5)
	for _, op := range []string{"ReluGrad", "SigmoidGrad", "TanhGrad", "LeakyReluGrad", "GeluGrad"} {
		cases = append(cases, &kcase{name: op, op: op, domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, y}})
	}
	cases = append(cases, &kcase{name: "GeluGradTanh", op: "GeluGrad", domain: graph.DomainGotrain, in: []*tensor.Tensor{dy, y},
		attrs: []*graph.Attribute{graph.AString("approximate", "tanh")}})
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
