package cpu

import (
	"math"
	"math/rand"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// ewRun infers a node's output types with its schema, prepares its CPU
// kernel and runs it once on ins (nil: an omitted optional input).
func ewRun(t *testing.T, n *graph.Node, opset int64, ins ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	t.Helper()
	s := graph.Lookup(n.Domain, n.OpType)
	if s == nil {
		t.Fatalf("no schema for %s", n)
	}
	in := make([]*graph.Type, len(ins))
	for i, x := range ins {
		if x != nil {
			in[i] = graph.TypeOf(x)
		}
	}
	outT, err := s.Infer(n, in, opset)
	if err != nil {
		return nil, err
	}
	outT = outT[:len(n.Outputs)]
	info, ok := kernels[kkey(n.Domain, n.OpType)]
	if !ok {
		t.Fatalf("no kernel for %s", n)
	}
	pool := NewPool(2)
	defer pool.Close()
	k, err := info.factory(&Prep{Node: n, In: in, Out: outT, Opset: opset, Pool: pool})
	if err != nil {
		return nil, err
	}
	outs := make([]*tensor.Tensor, len(outT))
	for i, ot := range outT {
		shape, ok := ot.Concrete()
		if !ok {
			t.Fatalf("%s: output %d has no concrete shape: %v", n, i, ot)
		}
		outs[i] = tensor.New(ot.DType, shape...)
	}
	if err := k(ins, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

// ewMustRun is ewRun that fails the test on an error.
func ewMustRun(t *testing.T, n *graph.Node, opset int64, ins ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	outs, err := ewRun(t, n, opset, ins...)
	if err != nil {
		t.Fatalf("%s: %v", n, err)
	}
	return outs
}

// ewNode makes a node with inputs named in0.. and outputs out0...
func ewNode(domain, op string, nIn, nOut int, attrs ...*graph.Attribute) *graph.Node {
	n := &graph.Node{OpType: op, Domain: domain, Name: op}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, "in"+string(rune('0'+i)))
	}
	for i := 0; i < nOut; i++ {
		n.Outputs = append(n.Outputs, "out"+string(rune('0'+i)))
	}
	for _, a := range attrs {
		n.SetAttr(a)
	}
	return n
}

func ewRandF64(r *rand.Rand, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Float64, shape...)
	for i := range x.Float64s() {
		x.Float64s()[i] = r.NormFloat64()
	}
	return x
}

func ewRandF32(r *rand.Rand, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Float32, shape...)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(r.NormFloat64())
	}
	return x
}

// ewClose reports whether got is within atol + rtol*|want| of want.
func ewClose(got, want, rtol, atol float64) bool {
	if math.IsNaN(want) || math.IsInf(want, 0) {
		return got == want || (math.IsNaN(got) && math.IsNaN(want))
	}
	return math.Abs(got-want) <= atol+rtol*math.Abs(want)
}

// ewCheckClose compares all elements of got with want.
func ewCheckClose(t *testing.T, what string, got *tensor.Tensor, want []float64, rtol, atol float64) {
	t.Helper()
	if got.Len() != len(want) {
		t.Fatalf("%s: %d elements, want %d", what, got.Len(), len(want))
	}
	bad := 0
	for i, w := range want {
		if g := got.AsFloat64(i); !ewClose(g, w, rtol, atol) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.9g, want %.9g", what, i, g, w)
			}
			bad++
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d of %d elements differ", what, bad, len(want))
	}
}

// ewNumGrad returns dL/dx by central differences of L(x), x a float64
// tensor changed in place and restored.
func ewNumGrad(x *tensor.Tensor, L func() float64) []float64 {
	const h = 1e-6
	d := x.Float64s()
	g := make([]float64, len(d))
	for i := range d {
		v := d[i]
		d[i] = v + h
		up := L()
		d[i] = v - h
		down := L()
		d[i] = v
		g[i] = (up - down) / (2 * h)
	}
	return g
}

// ewDot is sum(w * y) over float64 tensors: a scalar objective whose
// gradient with respect to y is w.
func ewDot(w, y *tensor.Tensor) float64 {
	s := 0.0
	for i, v := range y.Float64s() {
		s += v * w.Float64s()[i]
	}
	return s
}
