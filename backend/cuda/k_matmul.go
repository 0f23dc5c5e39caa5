package cuda

import (
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Matrix products through the stream's Gemm (cuBLAS on a device): ONNX's
// Gemm (C broadcast into the output, then alpha*op(A)op(B) + beta*Y) and
// MatMul with numpy's batch broadcasting (one strided-batched product when
// the batch offsets are regular, one product per batch otherwise). cuBLAS
// sums in another order than OpenBLAS: results agree to float32 rounding of
// the sums, not bit for bit.

func init() {
	Register(graph.DomainONNX, "Gemm", gemmFactory)
	Register(graph.DomainONNX, "MatMul", matmulFactory)
}

func gemmFactory(p *Prep) (*Kernel, error) {
	for i := 0; i < 2; i++ {
		if err := needF32(p, i, "an input"); err != nil {
			return nil, err
		}
	}
	a, b := p.InShape(0), p.InShape(1)
	if len(a) != 2 || len(b) != 2 {
		return nil, Errorf(p, "A %v and B %v must be matrices", a, b)
	}
	ta, tb := p.Node.AttrInt("transA", 0) != 0, p.Node.AttrInt("transB", 0) != 0
	m, k := a[0], a[1]
	if ta {
		m, k = k, m
	}
	kb, n := b[0], b[1]
	if tb {
		kb, n = n, kb
	}
	if k != kb {
		return nil, Errorf(p, "A %v and B %v do not multiply (transA %v, transB %v)", a, b, ta, tb)
	}
	if _, err := numel(p, []int{m, n}, "Y"); err != nil {
		return nil, err
	}
	if k == 0 {
		return nil, Unsupported(p, "Gemm with an empty inner dimension (A %v, B %v)", a, b)
	}
	alpha, beta := p.Node.AttrFloat("alpha", 1), p.Node.AttrFloat("beta", 1)
	hasC := p.hasIn(2) && beta != 0
	var geo []int32
	if hasC {
		if err := needF32(p, 2, "C"); err != nil {
			return nil, err
		}
		var err error
		if geo, err = bcastGeo([]int{m, n}, p.InShape(2)); err != nil {
			return nil, Errorf(p, "C: %v", err)
		}
	} else {
		beta = 0
	}
	g := &Gemm{TransA: ta, TransB: tb, M: m, N: n, K: k, Alpha: alpha, Beta: beta, LDA: a[1], LDB: b[1], LDC: n}
	bf := ewFuncs["Bcast/f32"]
	kern := &Kernel{Run: func(c *Call) error {
		if m*n == 0 {
			return nil
		}
		if hasC {
			if err := c.S.Launch(bf, grid1(m*n), block1, 0, c.A(P(c.Out[0]), P(c.In[2]), P(c.Consts[0]), I(m*n))); err != nil {
				return err
			}
		}
		g.A, g.B, g.C = c.In[0], c.In[1], c.Out[0]
		return c.S.Gemm(g)
	}}
	if hasC {
		kern.Consts = [][]int32{geo}
	}
	return kern, nil
}

// matmulFactory: A [..., M, K] x B [..., K, N] with batch broadcasting; a
// 1-D operand is promoted to a matrix and its dim removed from the output.
func matmulFactory(p *Prep) (*Kernel, error) {
	for i := 0; i < 2; i++ {
		if err := needF32(p, i, "an input"); err != nil {
			return nil, err
		}
	}
	a, b := p.InShape(0), p.InShape(1)
	if len(a) == 0 || len(b) == 0 {
		return nil, Errorf(p, "MatMul of a scalar (%v x %v)", a, b)
	}
	if len(a) == 1 {
		a = []int{1, a[0]}
	}
	if len(b) == 1 {
		b = []int{b[0], 1}
	}
	m, k, kb, n := a[len(a)-2], a[len(a)-1], b[len(b)-2], b[len(b)-1]
	if k != kb {
		return nil, Errorf(p, "A %v and B %v do not multiply", p.InShape(0), p.InShape(1))
	}
	ba, bb := a[:len(a)-2], b[:len(b)-2]
	rank := max(len(ba), len(bb))
	batch := make([]int, rank)
	for i := range batch {
		da, db := 1, 1
		if j := i - (rank - len(ba)); j >= 0 {
			da = ba[j]
		}
		if j := i - (rank - len(bb)); j >= 0 {
			db = bb[j]
		}
		switch {
		case da == db || db == 1:
			batch[i] = da
		case da == 1:
			batch[i] = db
		default:
			return nil, Errorf(p, "batch dims of A %v and B %v do not broadcast", p.InShape(0), p.InShape(1))
		}
	}
	nb := tensor.NumElements(batch)
	if _, err := numel(p, append(append([]int{}, batch...), m, n), "Y"); err != nil {
		return nil, err
	}
	if _, err := numel(p, a, "A"); err != nil {
		return nil, err
	}
	if _, err := numel(p, b, "B"); err != nil {
		return nil, err
	}
	// A batched against an unbatched B is one product of nb*M rows.
	if tensor.NumElements(bb) == 1 && tensor.NumElements(ba) == nb {
		g := &Gemm{M: nb * m, N: n, K: k, Alpha: 1, LDA: k, LDB: n, LDC: n}
		return &Kernel{Run: func(c *Call) error { return runGemm(c, g, nb*m*n) }}, nil
	}
	// Batch offsets in elements, by broadcasting over the output's batch.
	bcast := func(src []int, mat int) []int64 {
		geo, _ := bcastGeo(batch, src)
		r := int(geo[0])
		dims, st := geo[1:1+r], geo[1+r:]
		offs := make([]int64, nb)
		for i := range offs {
			rem, off := i, 0
			for d := r - 1; d >= 0; d-- {
				off += rem % int(dims[d]) * int(st[d])
				rem /= int(dims[d])
			}
			offs[i] = int64(off * mat)
		}
		return offs
	}
	offA, offB := bcast(ba, m*k), bcast(bb, k*n)
	regular := func(o []int64) (int64, bool) {
		if len(o) < 2 {
			return 0, true
		}
		s := o[1] - o[0]
		for i := range o {
			if o[i] != int64(i)*s {
				return 0, false
			}
		}
		return s, true
	}
	sa, okA := regular(offA)
	sb, okB := regular(offB)
	if okA && okB {
		g := &Gemm{M: m, N: n, K: k, Alpha: 1, LDA: k, LDB: n, LDC: n, Batch: nb, StrideA: sa, StrideB: sb, StrideC: int64(m * n)}
		return &Kernel{Run: func(c *Call) error { return runGemm(c, g, nb*m*n) }}, nil
	}
	gs := make([]*Gemm, nb)
	for i := range gs {
		gs[i] = &Gemm{M: m, N: n, K: k, Alpha: 1, LDA: k, LDB: n, LDC: n}
	}
	return &Kernel{Run: func(c *Call) error {
		if nb*m*n == 0 {
			return nil
		}
		if k == 0 {
			return c.S.Memset32(c.Out[0], 0, nb*m*n)
		}
		for i, g := range gs {
			g.A, g.B, g.C = c.In[0]+Ptr(4*offA[i]), c.In[1]+Ptr(4*offB[i]), c.Out[0]+Ptr(4*int64(i*m*n))
			if err := c.S.Gemm(g); err != nil {
				return err
			}
		}
		return nil
	}}, nil
}

func runGemm(c *Call, g *Gemm, total int) error {
	if total == 0 {
		return nil
	}
	if g.K == 0 {
		return c.S.Memset32(c.Out[0], 0, total)
	}
	g.A, g.B, g.C = c.In[0], c.In[1], c.Out[0]
	return c.S.Gemm(g)
}
