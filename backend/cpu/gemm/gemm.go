package gemm

import "fmt"

// Epilogue is applied to every element of C once its product is complete,
// while its tile is still in registers.
type Epilogue struct {
	BiasRow []float32 // added to row i of C (nil: none); at least M long
	BiasCol []float32 // added to column j of C (nil: none); at least N long
	ReLU    bool      // then max(v, 0)
	// Max (DirectConv only): then C = max(C, v) as Go's max computes it
	// (NaN when either is NaN; +0 over -0), instead of C = v.
	Max bool
}

// BSource supplies panels of a B that is not a plain matrix, such as a
// convolution's input read through its window.
type BSource interface {
	// PackB writes B(k0+p, j0+j) to dst[p*nr+j] for p < kc and j < n, and
	// zero to columns n..nr-1 of each of the kc rows.
	PackB(dst []float32, nr, k0, kc, j0, n int)
}

// Scratch is one thread's packing space: a product runs on the goroutine
// that calls it, with the Scratch it is given, and allocates nothing.
// Threads need one Scratch each; NewScratch makes one (about 60 KB).
type Scratch struct {
	b      [maxKC * maxNR]float32 // a packed panel of B
	a      [maxMR * maxKC]float32 // a packed tile of A (edges, alpha != 1)
	c      [maxMR * maxNR]float32 // an edge tile of C
	brow   [maxMR]float32         // an edge tile's row bias
	bcol   [maxNR]float32         // an edge tile's column bias
	dense  denseB
	src    sourceB
	packed packedB
	image  imageB
}

// NewScratch allocates one thread's packing space.
func NewScratch() *Scratch { return new(Scratch) }

// bPanels is where the driver gets B from, one packed panel at a time.
type bPanels interface {
	// panel returns packed rows [k0, k0+kc) of columns [j0, j0+n) (n <=
	// nr), as kc rows of nr floats.
	panel(s *Scratch, im *impl, k0, kc, j0, n int) *float32
}

// Sgemm computes C = alpha*op(A)*op(B) + beta*C and then the epilogue, on
// row-major matrices: op(A) is m x k (A is k x m with ta), op(B) is k x n
// (n x k with tb), C is m x n with rows ldc apart. Like BLAS it panics when
// the slices cannot hold what the sizes describe.
func (s *Scratch) Sgemm(ta, tb bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, ep Epilogue) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	rows, cols := k, n
	if tb {
		rows, cols = n, k
	}
	if k > 0 && alpha != 0 {
		need("B", len(b), rows, cols, ldb)
	}
	s.dense = denseB{b: b, ldb: ldb, tb: tb}
	s.product(ta, m, n, k, alpha, a, lda, &s.dense, beta, c, ldc, &ep)
	s.dense = denseB{}
}

// SgemmSource is Sgemm with B (k x n) supplied by src.
func (s *Scratch) SgemmSource(ta bool, m, n, k int, a []float32, lda int, src BSource, beta float32, c []float32, ldc int, ep Epilogue) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm: negative size m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	s.src = sourceB{src}
	s.product(ta, m, n, k, 1, a, lda, &s.src, beta, c, ldc, &ep)
	s.src = sourceB{}
}

// SgemmPacked is Sgemm with op(B) taken from columns [j0, j0+n) of a
// packed matrix; j0 must be a multiple of the packing's panel width
// (Blocking's nr when it was packed).
func (s *Scratch) SgemmPacked(ta bool, m, n, k int, a []float32, lda int, b *PackedB, j0 int, beta float32, c []float32, ldc int, ep Epilogue) {
	if checkColumns("a packed", m, n, k, j0, b.k, b.n) {
		return
	}
	var bp bPanels
	switch {
	case b.path != Active():
		// Packed for another path (tests switch paths): read the matrix.
		s.dense = b.orig
		if b.orig.tb {
			s.dense.b = b.orig.b[j0*b.orig.ldb:]
		} else {
			s.dense.b = b.orig.b[j0:]
		}
		bp = &s.dense
	case j0%b.nr != 0:
		panic(fmt.Sprintf("gemm: column %d of a B packed in panels of %d", j0, b.nr))
	default:
		s.packed = packedB{b, j0}
		bp = &s.packed
	}
	s.product(ta, m, n, k, 1, a, lda, bp, beta, c, ldc, &ep)
	s.dense, s.packed = denseB{}, packedB{}
}

// checkColumns panics unless columns [j0, j0+n) of k rows lie inside a B
// of bk x bn (what names its kind), and reports an empty product.
func checkColumns(what string, m, n, k, j0, bk, bn int) (empty bool) {
	if m < 0 || n < 0 || k < 0 || j0 < 0 {
		panic(fmt.Sprintf("gemm: negative size m=%d n=%d k=%d j0=%d", m, n, k, j0))
	}
	if k != bk || j0+n > bn {
		panic(fmt.Sprintf("gemm: columns [%d, %d) of %d rows from %s B of %dx%d", j0, j0+n, k, what, bk, bn))
	}
	return m == 0 || n == 0
}

// need panics unless a slice of length l holds rows x cols with stride ld.
func need(name string, l, rows, cols, ld int) {
	if ld < max(1, cols) || (rows > 0 && cols > 0 && l < (rows-1)*ld+cols) {
		panic(fmt.Sprintf("gemm: %s of %d elements cannot hold %dx%d with stride %d", name, l, rows, cols, ld))
	}
}

// product checks A, C and the epilogue, handles beta and the empty
// product, and runs the blocked loops.
func (s *Scratch) product(ta bool, m, n, k int, alpha float32, a []float32, lda int, bp bPanels, beta float32, c []float32, ldc int, ep *Epilogue) {
	if ep.Max {
		panic("gemm: only DirectConv's epilogue takes Max")
	}
	need("C", len(c), m, n, ldc)
	if ep.BiasRow != nil && len(ep.BiasRow) < m {
		panic(fmt.Sprintf("gemm: row bias of %d for %d rows", len(ep.BiasRow), m))
	}
	if ep.BiasCol != nil && len(ep.BiasCol) < n {
		panic(fmt.Sprintf("gemm: column bias of %d for %d columns", len(ep.BiasCol), n))
	}
	if k == 0 || alpha == 0 {
		// BLAS does not read A or B then: C = beta*C, and the epilogue.
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				v := float32(0)
				if beta != 0 {
					v = beta * row[j]
				}
				if ep.BiasRow != nil {
					v += ep.BiasRow[i]
				}
				if ep.BiasCol != nil {
					v += ep.BiasCol[j]
				}
				if ep.ReLU {
					v = relu(v)
				}
				row[j] = v
			}
		}
		return
	}
	rs, ks := lda, 1
	ar, ac := m, k
	if ta {
		rs, ks = 1, lda
		ar, ac = k, m
	}
	need("A", len(a), ar, ac, lda)
	acc := beta != 0
	if beta != 0 && beta != 1 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
	}
	s.blocked(current(), m, n, k, alpha, a, rs, ks, bp, acc, c, ldc, ep)
}

// blocked is the loop nest: K in blocks of kc (each block's chains resume
// from the C the one before stored), M in blocks of mc, then for each
// panel of nr columns of B, packed once, the tiles of mr rows of A.
func (s *Scratch) blocked(im *impl, m, n, k int, alpha float32, a []float32, rs, ks int, bp bPanels, acc bool, c []float32, ldc int, ep *Epilogue) {
	mr, nr := im.mr, im.nr
	for k0 := 0; k0 < k; k0 += im.kc {
		kc := min(im.kc, k-k0)
		last := k0+kc == k
		flags := 0
		if acc || k0 > 0 {
			flags |= flagAcc
		}
		if last && ep.ReLU {
			flags |= flagReLU
		}
		for i0 := 0; i0 < m; i0 += im.mc {
			mb := min(im.mc, m-i0)
			for j := 0; j < n; j += nr {
				nb := min(nr, n-j)
				bpanel := bp.panel(s, im, k0, kc, j, nb)
				var bcol *float32
				if last && ep.BiasCol != nil {
					if nb == nr {
						bcol = &ep.BiasCol[j]
					} else {
						copy(s.bcol[:], ep.BiasCol[j:j+nb])
						bcol = &s.bcol[0]
					}
				}
				for i := i0; i < i0+mb; i += mr {
					rb := min(mr, i0+mb-i)
					var brow *float32
					if last && ep.BiasRow != nil {
						if rb == mr {
							brow = &ep.BiasRow[i]
						} else {
							copy(s.brow[:], ep.BiasRow[i:i+rb])
							brow = &s.brow[0]
						}
					}
					ap, ars, aks := &a[i*rs+k0*ks], rs, ks
					if rb < mr || alpha != 1 {
						s.packA(mr, a, rs, ks, i, rb, k0, kc, alpha)
						ap, ars, aks = &s.a[0], 1, mr
					}
					if rb == mr && nb == nr {
						im.kernel(kc, ap, ars, aks, bpanel, &c[i*ldc+j], ldc, flags, brow, bcol)
						continue
					}
					// An edge tile: through s.c, mr x nr.
					t := s.c[:mr*nr]
					if flags&flagAcc != 0 {
						for r := 0; r < rb; r++ {
							copy(t[r*nr:r*nr+nb], c[(i+r)*ldc+j:])
						}
					}
					im.kernel(kc, ap, ars, aks, bpanel, &t[0], nr, flags, brow, bcol)
					for r := 0; r < rb; r++ {
						copy(c[(i+r)*ldc+j:(i+r)*ldc+j+nb], t[r*nr:])
					}
				}
			}
		}
	}
}

// packA writes rows [i, i+rb) of A, columns [k0, k0+kc), times alpha, to
// s.a as kc rows of mr (rows rb..mr-1 zero).
func (s *Scratch) packA(mr int, a []float32, rs, ks, i, rb, k0, kc int, alpha float32) {
	dst := s.a[:kc*mr]
	if rb < mr {
		clear(dst)
	}
	for r := 0; r < rb; r++ {
		base := (i+r)*rs + k0*ks
		if ks == 1 {
			row := a[base : base+kc]
			for p, v := range row {
				dst[p*mr+r] = alpha * v
			}
			continue
		}
		for p := 0; p < kc; p++ {
			dst[p*mr+r] = alpha * a[base+p*ks]
		}
	}
}

// denseB is a matrix B, packed a panel at a time.
type denseB struct {
	b   []float32
	ldb int
	tb  bool // B is stored n x k
}

func (d *denseB) panel(s *Scratch, im *impl, k0, kc, j0, n int) *float32 {
	nr := im.nr
	dst := s.b[:kc*nr]
	switch {
	case !d.tb && im.packBN != nil:
		// The last element read is (k0+kc-1)*ldb + j0+n-1, inside B.
		_ = d.b[(k0+kc-1)*d.ldb+j0+n-1]
		im.packBN(&dst[0], &d.b[k0*d.ldb+j0], d.ldb, kc, n)
	case !d.tb:
		for p := 0; p < kc; p++ {
			o := dst[p*nr : p*nr+nr]
			copy(o[:n], d.b[(k0+p)*d.ldb+j0:])
			clear(o[n:])
		}
	case im.packBT != nil:
		// The last element read is (j0+n-1)*ldb + k0+kc-1, inside B.
		_ = d.b[(j0+n-1)*d.ldb+k0+kc-1]
		im.packBT(&dst[0], &d.b[j0*d.ldb+k0], d.ldb, kc, n)
	default:
		for j := 0; j < n; j++ {
			col := d.b[(j0+j)*d.ldb+k0:][:kc]
			for p, v := range col {
				dst[p*nr+j] = v
			}
		}
		if n < nr {
			for p := 0; p < kc; p++ {
				clear(dst[p*nr+n : p*nr+nr])
			}
		}
	}
	return &dst[0]
}

// sourceB packs through a BSource.
type sourceB struct{ src BSource }

func (q *sourceB) panel(s *Scratch, im *impl, k0, kc, j0, n int) *float32 {
	dst := s.b[:kc*im.nr]
	q.src.PackB(dst, im.nr, k0, kc, j0, n)
	return &dst[0]
}

// PackedB is a B packed once for the active path, for a constant operand
// (a model's weights in inference) multiplied many times.
type PackedB struct {
	path Path
	nr   int
	k, n int
	data []float32 // panel q (columns q*nr..q*nr+nr-1): k rows of nr
	orig denseB
}

// PackB packs op(B) (k x n; B is n x k with tb) for the active path. B
// must not change while the PackedB is in use: another path (tests switch)
// reads it in place.
func PackB(tb bool, k, n int, b []float32, ldb int) *PackedB {
	rows, cols := k, n
	if tb {
		rows, cols = n, k
	}
	need("B", len(b), rows, cols, ldb)
	im := current()
	nr := im.nr
	panels := (n + nr - 1) / nr
	pb := &PackedB{path: im.path, nr: nr, k: k, n: n, data: make([]float32, panels*k*nr), orig: denseB{b: b, ldb: ldb, tb: tb}}
	var s Scratch
	for q := 0; q < panels; q++ {
		j0 := q * nr
		nb := min(nr, n-j0)
		for k0 := 0; k0 < k; k0 += im.kc {
			kc := min(im.kc, k-k0)
			pb.orig.panel(&s, im, k0, kc, j0, nb)
			copy(pb.data[q*k*nr+k0*nr:], s.b[:kc*nr])
		}
	}
	return pb
}

// packedB reads a PackedB's panels in place, from column off on.
type packedB struct {
	pb  *PackedB
	off int
}

func (q *packedB) panel(s *Scratch, im *impl, k0, kc, j0, n int) *float32 {
	pb := q.pb
	return &pb.data[((q.off+j0)/pb.nr)*pb.k*pb.nr+k0*pb.nr]
}
