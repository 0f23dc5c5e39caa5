package cpu

import (
	"github.com/gotrain/gotrain/backend/cpu/gemm"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Matrix products: Gemm and MatMul. float32 goes through BLAS (sgemm),
// float64 through gonum's dgemm, 32/64-bit integers through plain loops.
// Large products are split over the pool by rows or columns of the
// result (see gemmJob); MatMul's batches are split over the pool when there
// are enough of them.

func init() {
	Register(graph.DomainONNX, "Gemm", gemmFactory)
	Register(graph.DomainONNX, "MatMul", matmulFactory)
}

// pgemmMinWork is the m*n*k below which a product runs on one worker:
// smaller ones finish in a few microseconds, about a dispatch's cost.
const pgemmMinWork = 1 << 15

// gemmT dispatches a row-major product on float32 or float64 slices.
func gemmT[T float32 | float64](ta, tb bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	switch av := any(a).(type) {
	case []float32:
		sgemm(ta, tb, m, n, k, float32(alpha), av, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		dgemm(ta, tb, m, n, k, float64(alpha), av, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

type mmInt interface {
	int32 | int64 | uint32 | uint64
}

// igemm is C = op(A)*op(B) (+ C when acc) on integers, wrapping on overflow
// as ONNX Runtime does.
func igemm[T mmInt](ta, tb bool, m, n, k int, a []T, lda int, b []T, ldb int, acc bool, c []T, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if !acc {
			clear(row)
		}
		for p := 0; p < k; p++ {
			var av T
			if ta {
				av = a[p*lda+i]
			} else {
				av = a[i*lda+p]
			}
			if av == 0 {
				continue
			}
			if !tb {
				for j, bv := range b[p*ldb : p*ldb+n] {
					row[j] += av * bv
				}
			} else {
				for j := range row {
					row[j] += av * b[j*ldb+p]
				}
			}
		}
	}
}

func mmData[T any](t *tensor.Tensor) []T {
	if t == nil {
		return nil
	}
	d, _ := t.Data().([]T)
	return d
}

// ---- Gemm ----

type gemmPlan struct {
	ta, tb      bool
	m, n, k     int
	alpha, beta float32
	// C's broadcast: element (i, j) of C is c[i*cRow + j*cCol].
	hasC       bool
	cRow, cCol int
}

func gemmFactory(p *Prep) (Kernel, error) {
	as, bs := p.InShape(0), p.InShape(1)
	if len(as) != 2 || len(bs) != 2 {
		return nil, Errorf(p, "inputs A %v and B %v must be 2-D", as, bs)
	}
	pl := &gemmPlan{
		ta: p.Node.AttrInt("transA", 0) != 0, tb: p.Node.AttrInt("transB", 0) != 0,
		alpha: p.Node.AttrFloat("alpha", 1), beta: p.Node.AttrFloat("beta", 1),
	}
	pl.m, pl.k = as[0], as[1]
	if pl.ta {
		pl.m, pl.k = pl.k, pl.m
	}
	kb, n := bs[0], bs[1]
	if pl.tb {
		kb, n = n, kb
	}
	pl.n = n
	if kb != pl.k {
		return nil, Errorf(p, "inner dims differ: op(A) is %dx%d, op(B) is %dx%d", pl.m, pl.k, kb, pl.n)
	}
	if len(p.In) > 2 && p.In[2] != nil {
		cs := p.InShape(2)
		if len(cs) > 2 {
			return nil, Errorf(p, "input C has shape %v; expected rank 0 to 2", cs)
		}
		full := append(make([]int, 2-len(cs)), cs...)
		for i := 0; i < 2-len(cs); i++ {
			full[i] = 1
		}
		if (full[0] != 1 && full[0] != pl.m) || (full[1] != 1 && full[1] != pl.n) {
			return nil, Errorf(p, "input C has shape %v; it does not broadcast to [%d %d]", cs, pl.m, pl.n)
		}
		pl.hasC = true
		if full[0] != 1 {
			pl.cRow = full[1]
		}
		if full[1] != 1 {
			pl.cCol = 1
		}
	}
	dt := p.In[0].DType
	if p.In[1].DType != dt || (pl.hasC && p.In[2].DType != dt) {
		return nil, Errorf(p, "inputs mix dtypes")
	}
	switch dt {
	case tensor.Float32:
		return gemmFloat[float32](p, pl), nil
	case tensor.Float64:
		return gemmFloat[float64](p, pl), nil
	case tensor.Int32:
		return gemmInt[int32](pl), nil
	case tensor.Int64:
		return gemmInt[int64](pl), nil
	case tensor.Uint32:
		return gemmInt[uint32](pl), nil
	case tensor.Uint64:
		return gemmInt[uint64](pl), nil
	}
	return nil, Unsupported(p, "dtype %v", dt)
}

func gemmFloat[T float32 | float64](p *Prep, pl *gemmPlan) Kernel {
	pool := p.Pool
	lda, ldb := pl.k, pl.n
	if pl.ta {
		lda = pl.m
	}
	if pl.tb {
		ldb = pl.k
	}
	alpha, beta := T(pl.alpha), T(pl.beta)
	relu := p.Node.AttrString(fusedActivation, "") == "Relu" // set by fuse.go
	job := newGemmJob[T](pool)
	// A constant B (an inference model's weights) is prepared once here:
	// package gemm packs it in the panels its kernel reads; for OpenBLAS a
	// B stored transposed ([n, k] with transB=1) is transposed, since its
	// product runs 3-4% faster on the MLP's layers with B as [k, n].
	// Constants are the executable's own: fixed when it was compiled.
	ta, tb := pl.ta, pl.tb
	var bConst []T
	if c := p.In[1].Value; c != nil {
		src := mmData[T](c)
		if b32, ok := any(src).([]float32); ok && ownGEMM {
			job.packed = gemm.PackB(tb, pl.k, pl.n, b32, ldb)
		} else if tb {
			bConst = make([]T, len(src))
			for j := 0; j < pl.n; j++ {
				for q := 0; q < pl.k; q++ {
					bConst[q*pl.n+j] = src[j*pl.k+q]
				}
			}
			tb, ldb = false, pl.n
		}
	}
	return func(in, out []*tensor.Tensor) error {
		a, b, y := mmData[T](in[0]), mmData[T](in[1]), mmData[T](out[0])
		if bConst != nil {
			b = bConst
		}
		ep := epilogue[T]{relu: relu}
		if pl.hasC && pl.cRow == 0 && pl.cCol == 1 && beta == 1 {
			// A bias row, the common case: added after the product, with
			// the ReLU, while each tile of Y is in registers.
			ep.col = mmData[T](in[2])[:pl.n]
			job.run(pool, 0, ta, tb, pl.m, pl.n, pl.k, alpha, a, lda, b, ldb, 0, y, pl.n, ep)
			return nil
		}
		var gb T
		if pl.hasC {
			c := mmData[T](in[2])
			for i := 0; i < pl.m; i++ {
				row := y[i*pl.n : (i+1)*pl.n]
				for j := range row {
					row[j] = beta * c[i*pl.cRow+j*pl.cCol]
				}
			}
			gb = 1
		}
		job.run(pool, 0, ta, tb, pl.m, pl.n, pl.k, alpha, a, lda, b, ldb, gb, y, pl.n, ep)
		return nil
	}
}

func gemmInt[T mmInt](pl *gemmPlan) Kernel {
	lda, ldb := pl.k, pl.n
	if pl.ta {
		lda = pl.m
	}
	if pl.tb {
		ldb = pl.k
	}
	return func(in, out []*tensor.Tensor) error {
		a, b, y := mmData[T](in[0]), mmData[T](in[1]), mmData[T](out[0])
		igemm(pl.ta, pl.tb, pl.m, pl.n, pl.k, a, lda, b, ldb, false, y, pl.n)
		if pl.alpha != 1 {
			for i, v := range y {
				y[i] = T(float64(pl.alpha) * float64(v))
			}
		}
		if pl.hasC {
			c := mmData[T](in[2])
			for i := 0; i < pl.m; i++ {
				for j := 0; j < pl.n; j++ {
					cv := c[i*pl.cRow+j*pl.cCol]
					if pl.beta == 1 {
						y[i*pl.n+j] += cv
					} else {
						y[i*pl.n+j] += T(float64(pl.beta) * float64(cv))
					}
				}
			}
		}
		return nil
	}
}

// ---- MatMul ----

type matmulPlan struct {
	m, n, k int
	// aOff, bOff: element offsets of each output batch's A and B matrices.
	aOff, bOff []int
	// flat: B is shared by every batch and A's batches are contiguous, so
	// the whole product is one [batch*m, k] x [k, n] gemm.
	flat bool
}

func matmulFactory(p *Prep) (Kernel, error) {
	as, bs := p.InShape(0), p.InShape(1)
	if len(as) == 0 || len(bs) == 0 {
		return nil, Errorf(p, "inputs A %v and B %v must have rank 1 or more", as, bs)
	}
	pa, pb := as, bs
	if len(as) == 1 {
		pa = []int{1, as[0]}
	}
	if len(bs) == 1 {
		pb = []int{bs[0], 1}
	}
	ra, rb := len(pa), len(pb)
	pl := &matmulPlan{m: pa[ra-2], k: pa[ra-1], n: pb[rb-1]}
	if pb[rb-2] != pl.k {
		return nil, Errorf(p, "inner dims differ: A %v, B %v", as, bs)
	}
	// Broadcast batch dims.
	rank := max(ra, rb) - 2
	batch := make([]int, rank)
	aStr, bStr := make([]int, rank), make([]int, rank)
	sa, sb := pl.m*pl.k, pl.k*pl.n
	for i := rank - 1; i >= 0; i-- {
		da, db := 1, 1
		if j := i - (rank - (ra - 2)); j >= 0 {
			da = pa[j]
		}
		if j := i - (rank - (rb - 2)); j >= 0 {
			db = pb[j]
		}
		switch {
		case da == db, db == 1:
			batch[i] = da
		case da == 1:
			batch[i] = db
		default:
			return nil, Errorf(p, "batch dims of A %v and B %v do not broadcast", as, bs)
		}
		if da != 1 {
			aStr[i] = sa
		}
		if db != 1 {
			bStr[i] = sb
		}
		sa *= da
		sb *= db
	}
	nb := tensor.NumElements(batch)
	pl.aOff, pl.bOff = make([]int, nb), make([]int, nb)
	idx := make([]int, rank)
	for bi := 0; bi < nb; bi++ {
		for i := 0; i < rank; i++ {
			pl.aOff[bi] += idx[i] * aStr[i]
			pl.bOff[bi] += idx[i] * bStr[i]
		}
		for i := rank - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < batch[i] {
				break
			}
			idx[i] = 0
		}
	}
	pl.flat = true
	for bi := range pl.aOff {
		if pl.bOff[bi] != 0 || pl.aOff[bi] != bi*pl.m*pl.k {
			pl.flat = false
			break
		}
	}
	if want := tensor.NumElements(p.OutShape(0)); want != nb*pl.m*pl.n {
		return nil, Errorf(p, "output shape %v does not hold the %d x %dx%d products", p.OutShape(0), nb, pl.m, pl.n)
	}
	dt := p.In[0].DType
	if p.In[1].DType != dt {
		return nil, Errorf(p, "inputs mix dtypes %v and %v", dt, p.In[1].DType)
	}
	switch dt {
	case tensor.Float32:
		return matmulFloat[float32](p, pl), nil
	case tensor.Float64:
		return matmulFloat[float64](p, pl), nil
	case tensor.Int32:
		return matmulInt[int32](p, pl), nil
	case tensor.Int64:
		return matmulInt[int64](p, pl), nil
	case tensor.Uint32:
		return matmulInt[uint32](p, pl), nil
	case tensor.Uint64:
		return matmulInt[uint64](p, pl), nil
	}
	return nil, Unsupported(p, "dtype %v", dt)
}

func matmulFloat[T float32 | float64](p *Prep, pl *matmulPlan) Kernel {
	pool := p.Pool
	nb := len(pl.aOff)
	m, n, k := pl.m, pl.n, pl.k
	// Many small products: one worker per share of the batches.
	perBatch := nb >= pool.Size() && m*n*k < 1<<18
	// The job and the chunk function are made once and read the call's
	// slices through these variables, so a run allocates nothing.
	job := newGemmJob[T](pool)
	var a, b, y []T
	workers := max(1, pool.Size())
	batches := func(lo, hi int) {
		for w := lo; w < hi; w++ {
			for bi := w * nb / workers; bi < (w+1)*nb/workers; bi++ {
				job.run(nil, w, false, false, m, n, k, 1, a[pl.aOff[bi]:], k, b[pl.bOff[bi]:], n, 0, y[bi*m*n:], n, epilogue[T]{})
			}
		}
	}
	return func(in, out []*tensor.Tensor) error {
		a, b, y = mmData[T](in[0]), mmData[T](in[1]), mmData[T](out[0])
		switch {
		case pl.flat:
			job.run(pool, 0, false, false, nb*m, n, k, 1, a, k, b, n, 0, y, n, epilogue[T]{})
		case perBatch:
			pool.For(workers, 1, batches)
		default:
			for bi := 0; bi < nb; bi++ {
				job.run(pool, 0, false, false, m, n, k, 1, a[pl.aOff[bi]:], k, b[pl.bOff[bi]:], n, 0, y[bi*m*n:], n, epilogue[T]{})
			}
		}
		a, b, y = nil, nil, nil
		return nil
	}
}

func matmulInt[T mmInt](p *Prep, pl *matmulPlan) Kernel {
	pool := p.Pool
	m, n, k := pl.m, pl.n, pl.k
	// As in matmulFloat: one chunk function, reading the call's slices.
	var a, b, y []T
	batches := func(lo, hi int) {
		for bi := lo; bi < hi; bi++ {
			igemm(false, false, m, n, k, a[pl.aOff[bi]:], k, b[pl.bOff[bi]:], n, false, y[bi*m*n:], n)
		}
	}
	return func(in, out []*tensor.Tensor) error {
		a, b, y = mmData[T](in[0]), mmData[T](in[1]), mmData[T](out[0])
		pool.For(len(pl.aOff), 1, batches)
		a, b, y = nil, nil, nil
		return nil
	}
}
