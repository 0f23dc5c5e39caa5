package cpu

import "github.com/gotrain/gotrain/backend/cpu/gemm"

// epilogue is what a product applies to C once it is complete: a bias per
// row (Conv's, one per output channel), a bias per column (Gemm's), then
// ReLU; nil biases are none.
type epilogue[T float32 | float64] struct {
	row, col []T
	relu     bool
}

// gemmCall is one product's arguments.
type gemmCall[T float32 | float64] struct {
	ta, tb        bool
	m, n, k       int
	alpha, beta   T
	a, b, c       []T
	lda, ldb, ldc int
	ep            epilogue[T]
	// img, when set, is B (read from src) instead of b: package gemm only.
	img *gemm.ImageB
	src []T
}

// gemmJob runs a kernel's products: float32 on package gemm's kernels
// (when ownGEMM) with one packing Scratch per pool worker, everything else
// on the build's BLAS or gonum's dgemm with the epilogue applied after. A
// kernel keeps one from its factory, so that running it allocates nothing:
// the pool's chunk functions are bound to the job once. Products run on
// one worker keep no state in the job, so workers may share it.
type gemmJob[T float32 | float64] struct {
	// packed, when set, is B packed once (a constant weight); the b passed
	// to run is then only the matrix it was packed from.
	packed *gemm.PackedB
	scr    []*gemm.Scratch // float32: one per pool worker
	// The product being split over the pool, and how: by column tiles or
	// by row tiles.
	call         gemmCall[T]
	byCols       bool
	tiles, parts int
	tileM, tileN int
	partFn       func(lo, hi int)
	rowsFn       func(lo, hi int)
	colsFn       func(lo, hi int)
	epiFn        func(lo, hi int)
}

// newGemmJob makes a job for products on pool's workers.
func newGemmJob[T float32 | float64](pool *Pool) *gemmJob[T] {
	j := &gemmJob[T]{}
	j.partFn, j.rowsFn, j.colsFn, j.epiFn = j.part, j.rows, j.cols, j.epilogue
	var zero T
	if _, ok := any(zero).(float32); ok {
		j.scr = make([]*gemm.Scratch, max(1, pool.Size()))
		for i := range j.scr {
			j.scr[i] = gemm.NewScratch()
		}
	}
	return j
}

// run computes C = alpha*op(A)*op(B) + beta*C, then the epilogue: split
// over pool when it is set (its caller runs alone), else on the calling
// worker w, with w's scratch.
func (j *gemmJob[T]) run(pool *Pool, w int, ta, tb bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, ep epilogue[T]) {
	j.start(pool, w, &gemmCall[T]{ta: ta, tb: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, b: b, c: c, lda: lda, ldb: ldb, ldc: ldc, ep: ep})
}

// runImage is run with B (k x n) an ImageB over src, on package gemm's
// kernels whatever ownGEMM says (the ImageB exists only for them).
func (j *gemmJob[T]) runImage(pool *Pool, w int, m, n, k int, a []T, lda int, ib *gemm.ImageB, src []T, beta T, c []T, ldc int, ep epilogue[T]) {
	j.start(pool, w, &gemmCall[T]{m: m, n: n, k: k, alpha: 1, beta: beta, a: a, c: c, lda: lda, ldc: ldc, ep: ep, img: ib, src: src})
}

func (j *gemmJob[T]) start(pool *Pool, w int, call *gemmCall[T]) {
	ta, tb, m, n, k, alpha, beta := call.ta, call.tb, call.m, call.n, call.k, call.alpha, call.beta
	a, b, c, lda, ldb, ldc, ep := call.a, call.b, call.c, call.lda, call.ldb, call.ldc, call.ep
	parallel := pool != nil && pool.Size() > 1 && m*n*k >= pgemmMinWork
	if j.scr != nil && (ownGEMM || call.img != nil) {
		if !parallel || !j.split(call, pool.Size()) {
			j.own(j.scr[w], call, 0, m, 0, n)
			return
		}
		j.call = *call
		pool.For(j.parts, 1, j.partFn)
		j.call = gemmCall[T]{}
		return
	}
	if !parallel {
		gemmT(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		applyEpilogue(c, m, n, ldc, ep)
		return
	}
	if a32, ok := any(a).([]float32); ok && k > 0 && alpha != 0 && ep.row == nil {
		if cp := pool.cpool(); cp != nil {
			cp.sgemm(ta, tb, m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc, any(ep.col).([]float32), ep.relu)
			return
		}
	}
	j.call = *call
	if m >= n {
		pool.For(m, 16, j.rowsFn)
	} else {
		pool.For(n, 64, j.colsFn)
		pool.For(m, 16, j.epiFn)
	}
	j.call = gemmCall[T]{}
}

// split decides how package gemm's product is cut over p workers, each
// part a contiguous run of tiles: by column tiles, each worker packing
// only its own panels of B, or by row tiles, each packing all of B. It
// estimates both in cycles, from the multiply-adds (32 a cycle with
// AVX-512) and the packing (per element of B: a copy about 1/4 cycle,
// a transpose 0.4, an image's runs 1/2, a packed B nothing), and takes the
// cheaper. It reports false when neither cut gives two parts.
func (j *gemmJob[T]) split(c *gemmCall[T], p int) bool {
	mr, nr := gemm.Blocking()
	mt, nt := (c.m+mr-1)/mr, (c.n+nr-1)/nr
	pack := 0.25
	switch {
	case c.img != nil:
		pack = 0.5
	case j.packed != nil && c.alpha == 1:
		pack = 0
	case c.tb:
		pack = 0.4
	}
	fma := float64(c.m) * float64(c.n) * float64(c.k) / 32
	packAll := pack * float64(c.k) * float64(c.n)
	share := func(t int) float64 { return float64((t+p-1)/p) / float64(t) }
	cols := share(nt) * (fma + packAll)
	rows := share(mt)*fma + packAll
	switch {
	case nt >= 2 && (cols <= rows || mt < 2):
		j.byCols, j.tiles = true, nt
	case mt >= 2:
		j.byCols, j.tiles = false, mt
	default:
		return false
	}
	j.tileM, j.tileN, j.parts = mr, nr, min(p, j.tiles)
	return true
}

// part runs part i of the split: an even share of the tiles.
func (j *gemmJob[T]) part(lo, hi int) {
	c := &j.call
	for i := lo; i < hi; i++ {
		t0, t1 := i*j.tiles/j.parts, (i+1)*j.tiles/j.parts
		if j.byCols {
			j.own(j.scr[i], c, 0, c.m, t0*j.tileN, min(t1*j.tileN, c.n))
		} else {
			j.own(j.scr[i], c, t0*j.tileM, min(t1*j.tileM, c.m), 0, c.n)
		}
	}
}

// own runs rows [i0, i1) and columns [j0, j1) of the product on package
// gemm, with scratch s.
func (j *gemmJob[T]) own(s *gemm.Scratch, c *gemmCall[T], i0, i1, j0, j1 int) {
	if i1 <= i0 || j1 <= j0 {
		return
	}
	m, n := i1-i0, j1-j0
	a, cc := any(c.a).([]float32), any(c.c).([]float32)
	ep := gemm.Epilogue{ReLU: c.ep.relu}
	if c.ep.row != nil {
		ep.BiasRow = any(c.ep.row).([]float32)[i0:]
	}
	if c.ep.col != nil {
		ep.BiasCol = any(c.ep.col).([]float32)[j0:]
	}
	if c.ta {
		a = a[i0:]
	} else {
		a = a[i0*c.lda:]
	}
	cc = cc[i0*c.ldc+j0:]
	if c.img != nil {
		s.SgemmImage(c.ta, m, n, c.k, a, c.lda, c.img, any(c.src).([]float32), j0, float32(c.beta), cc, c.ldc, ep)
		return
	}
	if j.packed != nil && c.alpha == 1 {
		s.SgemmPacked(c.ta, m, n, c.k, a, c.lda, j.packed, j0, float32(c.beta), cc, c.ldc, ep)
		return
	}
	b := any(c.b).([]float32)
	if c.tb {
		b = b[j0*c.ldb:]
	} else {
		b = b[j0:]
	}
	s.Sgemm(c.ta, c.tb, m, n, c.k, float32(c.alpha), a, c.lda, b, c.ldb, float32(c.beta), cc, c.ldc, ep)
}

func (j *gemmJob[T]) rows(lo, hi int) {
	c := &j.call
	var aa []T
	if c.ta {
		aa = c.a[lo:]
	} else {
		aa = c.a[lo*c.lda:]
	}
	gemmT(c.ta, c.tb, hi-lo, c.n, c.k, c.alpha, aa, c.lda, c.b, c.ldb, c.beta, c.c[lo*c.ldc:], c.ldc)
	j.epilogue(lo, hi)
}

func (j *gemmJob[T]) cols(lo, hi int) {
	c := &j.call
	var bb []T
	if c.tb {
		bb = c.b[lo*c.ldb:]
	} else {
		bb = c.b[lo:]
	}
	gemmT(c.ta, c.tb, c.m, hi-lo, c.k, c.alpha, c.a, c.lda, bb, c.ldb, c.beta, c.c[lo:], c.ldc)
}

// epilogue applies the split product's epilogue to rows [lo, hi) of C.
func (j *gemmJob[T]) epilogue(lo, hi int) {
	c := &j.call
	ep := c.ep
	if ep.row != nil {
		ep.row = ep.row[lo:]
	}
	applyEpilogue(c.c[lo*c.ldc:], hi-lo, c.n, c.ldc, ep)
}

// applyEpilogue applies ep to m rows of n of c (rows ldc apart): + row
// bias, + column bias, then max(·, 0), as package gemm's kernels do.
func applyEpilogue[T float32 | float64](c []T, m, n, ldc int, ep epilogue[T]) {
	if ep.row == nil && ep.col == nil && !ep.relu {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if ep.row != nil {
			b := ep.row[i]
			for x := range row {
				row[x] += b
			}
		}
		if ep.col != nil {
			col := ep.col[:n]
			for x := range row {
				row[x] += col[x]
			}
		}
		if ep.relu {
			for x, v := range row {
				row[x] = max(v, 0)
			}
		}
	}
}
