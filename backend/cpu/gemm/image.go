package gemm

import "fmt"

// ImageB is a B (k x n) whose elements are read from a source slice
// through an index, such as the columns of a convolution read straight
// from its input (implicit GEMM: no im2col buffer). Element (p, j) is
// src[rowOff[p] + colOff[kind[p]][j]], or zero where colOff is negative
// (padding). Consecutive columns with consecutive offsets form runs, and
// the tables built here list, for each panel of each path and each row
// kind, the runs cut into vector-sized pieces, so packing a panel is a
// few masked vector copies per row.
type ImageB struct {
	k, n   int
	kinds  int
	rows   []int32 // 2 per row: its offset in src, its kind
	maxSrc int     // the largest index of src read, for the bounds check
	tables [len(impls)]runTable
}

// runTable is one path's pieces: for panel q and kind t, pieces
// first[q*(kinds+1)+t] .. first[q*(kinds+1)+t+1]-1, three int32 each (the
// column in the panel, the offset from the row's source, the lanes as the
// path's packer takes them); full[q*kinds+t] says the pieces cover all nr
// columns of the panel (no padding, no edge), so rows of that kind need
// no clearing first.
type runTable struct {
	first  []int32
	pieces []int32
	full   []bool
	lens   []int32 // lanes of each piece (the Go packer's copy length)
}

// NewImageB builds the tables of a B of k rows and n columns: row p starts
// at rowOff[p] in the source and is of kind kind[p] in [0, kinds);
// colOff[t][j] is the offset of column j in rows of kind t (negative:
// zero). It fails when an offset does not fit the packers' 32-bit tables.
func NewImageB(k, n int, rowOff, kind []int, colOff [][]int) (*ImageB, error) {
	if len(rowOff) != k || len(kind) != k {
		return nil, fmt.Errorf("gemm: image B of %d rows with %d row offsets and %d kinds", k, len(rowOff), len(kind))
	}
	ib := &ImageB{k: k, n: n, kinds: len(colOff), rows: make([]int32, 2*k)}
	const lim = 1<<31 - 1
	maxRow, maxCol := 0, -1
	for p := range rowOff {
		if rowOff[p] < 0 || rowOff[p] > lim || kind[p] < 0 || kind[p] >= ib.kinds {
			return nil, fmt.Errorf("gemm: image B row %d: offset %d, kind %d of %d", p, rowOff[p], kind[p], ib.kinds)
		}
		ib.rows[2*p], ib.rows[2*p+1] = int32(rowOff[p]), int32(kind[p])
		maxRow = max(maxRow, rowOff[p])
	}
	for t, offs := range colOff {
		if len(offs) != n {
			return nil, fmt.Errorf("gemm: image B kind %d has %d column offsets for %d columns", t, len(offs), n)
		}
		for _, o := range offs {
			if o > lim {
				return nil, fmt.Errorf("gemm: image B column offset %d does not fit 32 bits", o)
			}
			maxCol = max(maxCol, o)
		}
	}
	if maxRow+maxCol > lim {
		return nil, fmt.Errorf("gemm: image B reads up to element %d, beyond 32-bit offsets", maxRow+maxCol)
	}
	ib.maxSrc = -1
	if maxCol >= 0 && k > 0 {
		ib.maxSrc = maxRow + maxCol
	}
	for _, im := range impls {
		if im.kernel != nil {
			ib.tables[im.path] = buildRuns(&im, n, colOff)
		}
	}
	return ib, nil
}

// vecLanes is how many floats one piece of path im copies at most.
func vecLanes(im *impl) int {
	switch im.path {
	case AVX2:
		return 8
	}
	return 16
}

func buildRuns(im *impl, n int, colOff [][]int) runTable {
	nr, lanes, kinds := im.nr, vecLanes(im), len(colOff)
	panels := (n + nr - 1) / nr
	t := runTable{first: make([]int32, 0, panels*(kinds+1)), full: make([]bool, panels*kinds)}
	add := func(dst, src, l int) {
		v := int32(l)
		switch im.path {
		case AVX512:
			v = int32(1)<<l - 1
		case AVX2:
			v = int32(4 * (8 - l))
		}
		t.pieces = append(t.pieces, int32(dst), int32(src), v)
		t.lens = append(t.lens, int32(l))
	}
	for q := 0; q < panels; q++ {
		j0, j1 := q*nr, min(n, q*nr+nr)
		for k, offs := range colOff {
			t.first = append(t.first, int32(len(t.lens)))
			covered := 0
			for j := j0; j < j1; {
				if offs[j] < 0 {
					j++
					continue
				}
				e := j + 1
				for e < j1 && e-j < lanes && offs[e] == offs[j]+(e-j) {
					e++
				}
				add(j-j0, offs[j], e-j)
				covered += e - j
				j = e
			}
			t.full[q*kinds+k] = covered == nr
		}
		t.first = append(t.first, int32(len(t.lens)))
	}
	return t
}

// imageB is an ImageB over one source, from column off on.
type imageB struct {
	ib  *ImageB
	src []float32
	off int
}

func (v *imageB) panel(s *Scratch, im *impl, k0, kc, j0, n int) *float32 {
	ib, nr := v.ib, im.nr
	t := &ib.tables[im.path]
	q := (v.off + j0) / nr
	dst := s.b[:kc*nr]
	first := t.first[q*(ib.kinds+1):]
	rows := ib.rows[2*k0 : 2*(k0+kc)]
	for p := 0; p < kc; p++ {
		if !t.full[q*ib.kinds+int(rows[2*p+1])] {
			clear(dst[p*nr : p*nr+nr])
		}
	}
	if im.packRuns != nil {
		if len(t.pieces) > 0 {
			im.packRuns(&dst[0], &v.src[0], &rows[0], &first[0], &t.pieces[0], kc)
		}
		return &dst[0]
	}
	for p := 0; p < kc; p++ {
		src := v.src[rows[2*p]:]
		out := dst[p*nr : p*nr+nr]
		kind := rows[2*p+1]
		for i := first[kind]; i < first[kind+1]; i++ {
			d, o, l := t.pieces[3*i], t.pieces[3*i+1], t.lens[i]
			copy(out[d:d+l], src[o:o+l])
		}
	}
	return &dst[0]
}

// SgemmImage is Sgemm with op(B) taken from columns [j0, j0+n) of an
// ImageB over src; j0 must be a multiple of Blocking's nr.
func (s *Scratch) SgemmImage(ta bool, m, n, k int, a []float32, lda int, b *ImageB, src []float32, j0 int, beta float32, c []float32, ldc int, ep Epilogue) {
	if checkColumns("an image", m, n, k, j0, b.k, b.n) {
		return
	}
	if _, nr := Blocking(); j0%nr != 0 {
		panic(fmt.Sprintf("gemm: column %d of an image B read in panels of %d", j0, nr))
	}
	if b.maxSrc >= len(src) {
		panic(fmt.Sprintf("gemm: image B reads element %d of a source of %d", b.maxSrc, len(src)))
	}
	s.image = imageB{b, src, j0}
	s.product(ta, m, n, k, 1, a, lda, &s.image, beta, c, ldc, &ep)
	s.image = imageB{}
}
