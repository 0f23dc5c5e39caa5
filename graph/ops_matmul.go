package graph

import (
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// Matrix products: Gemm and MatMul.

func init() {
	Register(&Schema{OpType: "Gemm", MinInputs: 2, MaxInputs: 3, Infer: inferGemm})
	Register(&Schema{OpType: "MatMul", MinInputs: 2, MaxInputs: 2, Infer: inferMatMul})
}

func mmDType(dt tensor.DType) bool {
	return dt.IsFloat() || dt == tensor.Int32 || dt == tensor.Int64 || dt == tensor.Uint32 || dt == tensor.Uint64
}

// mmSameDim reports whether two dims may be equal (unknown dims may be).
func mmSameDim(a, b Dim) bool {
	if a.Known() && b.Known() {
		return a.Size == b.Size
	}
	return true
}

// inferGemm: Y = alpha*op(A)*op(B) + beta*C with A, B 2-D and C
// broadcastable (unidirectionally) to [M, N].
func inferGemm(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if !mmDType(a.DType) {
		return nil, Errorf(n, "input A has dtype %v; expected a float or 32/64-bit integer type", a.DType)
	}
	if b.DType != a.DType {
		return nil, Errorf(n, "input B has dtype %v; expected A's %v", b.DType, a.DType)
	}
	c := convOptIn(in, 2)
	if c != nil && c.DType != a.DType {
		return nil, Errorf(n, "input C has dtype %v; expected A's %v", c.DType, a.DType)
	}
	if !a.RankKnown || !b.RankKnown {
		return []*Type{NewType(a.DType, Shape{Unknown, Unknown})}, nil
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return nil, Errorf(n, "inputs A %v and B %v must be 2-D", a.Shape, b.Shape)
	}
	m, ka := a.Shape[0], a.Shape[1]
	if n.AttrInt("transA", 0) != 0 {
		m, ka = ka, m
	}
	kb, nn := b.Shape[0], b.Shape[1]
	if n.AttrInt("transB", 0) != 0 {
		kb, nn = nn, kb
	}
	if !mmSameDim(ka, kb) {
		return nil, Errorf(n, "inner dims differ: op(A) is [%v,%v], op(B) is [%v,%v]", m, ka, kb, nn)
	}
	if c != nil && c.RankKnown {
		if len(c.Shape) > 2 {
			return nil, Errorf(n, "input C has shape %v; expected rank 0 to 2, broadcastable to [%v,%v]", c.Shape, m, nn)
		}
		want := Shape{m, nn}[2-len(c.Shape):]
		for i, d := range c.Shape {
			if d.Known() && d.Size != 1 && !mmSameDim(d, want[i]) {
				return nil, Errorf(n, "input C has shape %v; expected it to broadcast to [%v,%v]", c.Shape, m, nn)
			}
		}
	}
	return []*Type{NewType(a.DType, Shape{m, nn})}, nil
}

// inferMatMul follows numpy.matmul: 1-D operands are promoted (and the
// promoted dim dropped from the result), batch dims broadcast.
func inferMatMul(n *Node, in []*Type, opset int64) ([]*Type, error) {
	if err := requireInputs(n, in, 2); err != nil {
		return nil, err
	}
	a, b := in[0], in[1]
	if !mmDType(a.DType) {
		return nil, Errorf(n, "input A has dtype %v; expected a float or 32/64-bit integer type", a.DType)
	}
	if b.DType != a.DType {
		return nil, Errorf(n, "input B has dtype %v; expected A's %v", b.DType, a.DType)
	}
	if !a.RankKnown || !b.RankKnown {
		return []*Type{unknownRank(a.DType)}, nil
	}
	out, err := MatMulShape(a.Shape, b.Shape)
	if err != nil {
		return nil, Errorf(n, "%v", err)
	}
	return []*Type{NewType(a.DType, out)}, nil
}

// MatMulShape is numpy.matmul's result shape for operand shapes a and b.
func MatMulShape(a, b Shape) (Shape, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("MatMul operands must have rank 1 or more, have %v and %v", a, b)
	}
	pa, pb := a, b
	if len(a) == 1 {
		pa = Shape{D(1), a[0]}
	}
	if len(b) == 1 {
		pb = Shape{b[0], D(1)}
	}
	ra, rb := len(pa), len(pb)
	if !mmSameDim(pa[ra-1], pb[rb-2]) {
		return nil, fmt.Errorf("MatMul inner dims differ: A %v, B %v", a, b)
	}
	batch, err := BroadcastShapes(pa[:ra-2], pb[:rb-2])
	if err != nil {
		return nil, fmt.Errorf("MatMul batch dims of A %v and B %v do not broadcast", a, b)
	}
	out := append(Shape{}, batch...)
	if len(a) > 1 {
		out = append(out, pa[ra-2])
	}
	if len(b) > 1 {
		out = append(out, pb[rb-1])
	}
	return out, nil
}
