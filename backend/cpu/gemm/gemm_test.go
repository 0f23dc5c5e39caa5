package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// eachPath runs f with every path this CPU supports made active.
func eachPath(t *testing.T, f func(t *testing.T, p Path)) {
	t.Helper()
	prev := Active()
	defer func() {
		if err := SetActive(prev); err != nil {
			t.Fatal(err)
		}
	}()
	for _, p := range Paths {
		if !p.Supported() {
			t.Logf("path %v: not supported by this CPU, not run", p)
			continue
		}
		if err := SetActive(p); err != nil {
			t.Fatal(err)
		}
		t.Run(p.String(), func(t *testing.T) { f(t, p) })
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.Float64()*2 - 1)
	}
	return s
}

// problem is one product with its operands laid out as BLAS would take them.
type problem struct {
	ta, tb      bool
	m, n, k     int
	alpha, beta float32
	lda, ldb    int
	ldc         int
	a, b, c     []float32
	ep          Epilogue
}

func newProblem(r *rand.Rand, ta, tb bool, m, n, k int, alpha, beta float32, bias, relu bool) *problem {
	p := &problem{ta: ta, tb: tb, m: m, n: n, k: k, alpha: alpha, beta: beta}
	// Strides a little larger than the rows, so that reading past a row
	// is caught as a wrong result.
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	p.lda, p.ldb, p.ldc = ac+3, bc+2, n+5
	p.a = randSlice(r, max(0, (ar-1)*p.lda+ac))
	p.b = randSlice(r, max(0, (br-1)*p.ldb+bc))
	p.c = randSlice(r, max(0, (m-1)*p.ldc+n))
	if bias {
		p.ep.BiasRow = randSlice(r, m)
		p.ep.BiasCol = randSlice(r, n)
	}
	p.ep.ReLU = relu
	return p
}

func (p *problem) aAt(i, q int) float64 {
	if p.ta {
		return float64(p.a[q*p.lda+i])
	}
	return float64(p.a[i*p.lda+q])
}

func (p *problem) bAt(q, j int) float64 {
	if p.tb {
		return float64(p.b[j*p.ldb+q])
	}
	return float64(p.b[q*p.ldb+j])
}

// reference is the product in float64 with a bound on the float32 error of
// each element. The kernels compute each element as one chain of k fused
// multiply-adds (the generic kernel on amd64: a multiply and an add, two
// roundings per step), then the bias additions; each rounding errs by at
// most u = 2^-24 relative, so the textbook bound for a sum of k products
// (Higham, Accuracy and Stability of Numerical Algorithms, 3.1) gives
// |err| <= gamma(2k+4) * (|alpha|*sum|a*b| + |beta*c| + |bias|), with
// gamma(n) = n*u/(1-n*u): the 2k covers the products' roundings, the 4
// the scaling of C, alpha's rounding into A and the two bias additions.
// ReLU only clips, which shrinks errors.
func (p *problem) reference() (want, bound []float64) {
	want = make([]float64, p.m*p.n)
	bound = make([]float64, p.m*p.n)
	const u = 1.0 / (1 << 24)
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.n; j++ {
			var s, abs float64
			for q := 0; q < p.k; q++ {
				v := p.aAt(i, q) * p.bAt(q, j)
				s += v
				abs += math.Abs(v)
			}
			s *= float64(p.alpha)
			abs *= math.Abs(float64(p.alpha))
			if p.beta != 0 {
				cv := float64(p.beta) * float64(p.c[i*p.ldc+j])
				s += cv
				abs += math.Abs(cv)
			}
			if p.ep.BiasRow != nil {
				s += float64(p.ep.BiasRow[i])
				abs += math.Abs(float64(p.ep.BiasRow[i]))
			}
			if p.ep.BiasCol != nil {
				s += float64(p.ep.BiasCol[j])
				abs += math.Abs(float64(p.ep.BiasCol[j]))
			}
			if p.ep.ReLU {
				s = math.Max(s, 0)
			}
			n := float64(2*p.k + 4)
			want[i*p.n+j] = s
			bound[i*p.n+j] = n * u / (1 - n*u) * abs
		}
	}
	return want, bound
}

func (p *problem) run(s *Scratch) []float32 {
	c := append([]float32(nil), p.c...)
	s.Sgemm(p.ta, p.tb, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, p.beta, c, p.ldc, p.ep)
	return c
}

// check compares C with the reference, and the padding between C's rows
// with what was there (a kernel must not write outside its tile).
func (p *problem) check(t *testing.T, got []float32) {
	t.Helper()
	want, bound := p.reference()
	bad := 0
	for i := 0; i < p.m; i++ {
		for j := 0; j < p.ldc && i*p.ldc+j < len(got); j++ {
			g := got[i*p.ldc+j]
			if j >= p.n {
				if g != p.c[i*p.ldc+j] {
					t.Errorf("C[%d][%d] (padding) changed from %v to %v", i, j, p.c[i*p.ldc+j], g)
					bad++
				}
				continue
			}
			w, b := want[i*p.n+j], bound[i*p.n+j]
			if math.Abs(float64(g)-w) > b || (p.ep.ReLU && math.Signbit(float64(g))) {
				t.Errorf("C[%d][%d] = %v, want %v within %.3g", i, j, g, w, b)
				bad++
			}
			if bad > 5 {
				t.FailNow()
			}
		}
	}
}

var shapes = [][3]int{
	{1, 1, 1}, {1, 1, 0}, {3, 5, 0}, {4, 4, 4}, {8, 48, 16}, {7, 47, 9}, {9, 49, 33},
	{5, 3, 300}, {17, 100, 257}, {16, 96, 256}, {33, 10, 513}, {64, 169, 288}, {32, 900, 27},
	{300, 20, 40}, {2, 130, 5}, {1, 200, 70}, {130, 1, 70},
}

// TestSgemm runs every shape, transpose, alpha/beta and epilogue on every
// path against the float64 reference.
func TestSgemm(t *testing.T) {
	eachPath(t, func(t *testing.T, _ Path) {
		r := rand.New(rand.NewPCG(1, 2))
		s := NewScratch()
		for _, sh := range shapes {
			for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
				for _, ab := range [][2]float32{{1, 0}, {1, 1}, {0.5, -2}, {0, 3}} {
					ep := ab[0] == 1 && ab[1] == 0
					p := newProblem(r, tr[0], tr[1], sh[0], sh[1], sh[2], ab[0], ab[1], ep, ep)
					name := fmt.Sprintf("m%d_n%d_k%d_ta%v_tb%v_alpha%v_beta%v", sh[0], sh[1], sh[2], tr[0], tr[1], ab[0], ab[1])
					t.Run(name, func(t *testing.T) { p.check(t, p.run(s)) })
				}
			}
		}
	})
}

// TestPathsAgree checks the numerics promise: the vector paths compute the
// same bits, and so does a product split into row and column blocks at
// any tile boundary (as threads split it) or into several K blocks.
func TestPathsAgree(t *testing.T) {
	var vec []Path
	for _, p := range []Path{AVX2, AVX512} {
		if p.Supported() {
			vec = append(vec, p)
		}
	}
	if len(vec) < 2 {
		t.Skipf("this CPU runs %d vector path(s); the comparison needs two", len(vec))
	}
	prev := Active()
	defer SetActive(prev)
	r := rand.New(rand.NewPCG(3, 4))
	s := NewScratch()
	for _, sh := range shapes {
		for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}} {
			p := newProblem(r, tr[0], tr[1], sh[0], sh[1], sh[2], 1, 0, true, true)
			var first []float32
			for _, path := range vec {
				if err := SetActive(path); err != nil {
					t.Fatal(err)
				}
				got := p.run(s)
				if first == nil {
					first = got
					continue
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(first[i]) {
						t.Fatalf("%v: shape %v transposes %v: element %d is %v on %v, %v on %v", path, sh, tr, i, got[i], path, first[i], vec[0])
					}
				}
			}
		}
	}
}

// TestSplitInvariance checks that the bits of C do not depend on how a
// product is cut into row and column blocks (threads) or on K blocking.
func TestSplitInvariance(t *testing.T) {
	eachPath(t, func(t *testing.T, _ Path) {
		mr, nr := Blocking()
		r := rand.New(rand.NewPCG(5, 6))
		s := NewScratch()
		m, n, k := 5*mr+3, 4*nr+7, 600
		p := newProblem(r, false, true, m, n, k, 1, 0, true, true)
		whole := p.run(s)
		split := append([]float32(nil), p.c...)
		for _, rows := range [][2]int{{0, 2 * mr}, {2 * mr, m}} {
			for _, cols := range [][2]int{{0, nr}, {nr, 3 * nr}, {3 * nr, n}} {
				ep := Epilogue{BiasRow: p.ep.BiasRow[rows[0]:], BiasCol: p.ep.BiasCol[cols[0]:], ReLU: true}
				s.Sgemm(false, true, rows[1]-rows[0], cols[1]-cols[0], k, 1, p.a[rows[0]*p.lda:], p.lda,
					p.b[cols[0]*p.ldb:], p.ldb, 0, split[rows[0]*p.ldc+cols[0]:], p.ldc, ep)
			}
		}
		for i := range whole {
			if math.Float32bits(whole[i]) != math.Float32bits(split[i]) {
				t.Fatalf("element %d: %v whole, %v split", i, whole[i], split[i])
			}
		}
		// K in two blocks: the second resumes from the first's C.
		kb := append([]float32(nil), p.c...)
		s.Sgemm(false, true, m, n, 250, 1, p.a, p.lda, p.b, p.ldb, 0, kb, p.ldc, Epilogue{})
		s.Sgemm(false, true, m, n, k-250, 1, p.a[250:], p.lda, p.b[250:], p.ldb, 1, kb, p.ldc, p.ep)
		for i := range whole {
			if math.Float32bits(whole[i]) != math.Float32bits(kb[i]) {
				t.Fatalf("element %d: %v in one K block, %v in two", i, whole[i], kb[i])
			}
		}
	})
}

// TestSpecialValues: NaN and Inf propagate as in the float64 product, and
// ReLU keeps NaN and turns -0 into +0.
func TestSpecialValues(t *testing.T) {
	eachPath(t, func(t *testing.T, _ Path) {
		s := NewScratch()
		nan, inf := float32(math.NaN()), float32(math.Inf(1))
		// Rows of A: NaN, Inf, a sum of -1, zeros, ones; B is all ones.
		a := []float32{nan, 1, inf, 1, -1, 0, 0, 0, 1, 1}
		m, n, k := 5, 3, 2
		bm := []float32{1, 1, 1, 1, 1, 1} // 2 x 3
		c := make([]float32, m*n)
		s.Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, c, n, Epilogue{ReLU: true})
		for j := 0; j < n; j++ {
			if v := c[0*n+j]; v == v {
				t.Errorf("row with NaN: got %v, want NaN", v)
			}
			if v := c[1*n+j]; !math.IsInf(float64(v), 1) {
				t.Errorf("row with Inf: got %v, want +Inf", v)
			}
			if v := c[2*n+j]; v != 0 || math.Signbit(float64(v)) {
				t.Errorf("row -1+1 = 0 through ReLU: got %v (sign %v), want +0", v, math.Signbit(float64(v)))
			}
			if v := c[3*n+j]; v != 0 || math.Signbit(float64(v)) {
				t.Errorf("zero row: got %v, want +0", v)
			}
			if v := c[4*n+j]; v != 2 {
				t.Errorf("ones row: got %v, want 2", v)
			}
		}
		// -0 through ReLU: a product of -0 (0 * -1) with beta = 0.
		neg := []float32{0}
		mone := []float32{-1}
		out := []float32{7}
		s.Sgemm(false, false, 1, 1, 1, 1, neg, 1, mone, 1, 0, out, 1, Epilogue{BiasRow: []float32{float32(math.Copysign(0, -1))}, ReLU: true})
		if out[0] != 0 || math.Signbit(float64(out[0])) {
			t.Errorf("ReLU(-0) = %v (sign %v), want +0", out[0], math.Signbit(float64(out[0])))
		}
	})
}

// imageSource is a BSource over a plain row-major matrix, to test the
// source path against the matrix path.
type imageSource struct {
	b   []float32
	ldb int
}

func (q imageSource) PackB(dst []float32, nr, k0, kc, j0, n int) {
	for p := 0; p < kc; p++ {
		o := dst[p*nr : (p+1)*nr]
		copy(o, q.b[(k0+p)*q.ldb+j0:][:n])
		clear(o[n:])
	}
}

// TestSourceAndPacked: a B from a BSource and a B packed once give the
// bits of the plain product, for whole products and column ranges.
func TestSourceAndPacked(t *testing.T) {
	eachPath(t, func(t *testing.T, _ Path) {
		_, nr := Blocking()
		r := rand.New(rand.NewPCG(7, 8))
		s := NewScratch()
		for _, sh := range shapes {
			for _, tb := range []bool{false, true} {
				p := newProblem(r, false, tb, sh[0], sh[1], sh[2], 1, 1, true, false)
				want := p.run(s)
				pb := PackB(tb, p.k, p.n, p.b, p.ldb)
				got := append([]float32(nil), p.c...)
				// Two column ranges, the cut at a panel boundary.
				cut := min(p.n, nr)
				for _, cols := range [][2]int{{0, cut}, {cut, p.n}} {
					ep := Epilogue{BiasRow: p.ep.BiasRow, BiasCol: p.ep.BiasCol[cols[0]:]}
					s.SgemmPacked(false, p.m, cols[1]-cols[0], p.k, p.a, p.lda, pb, cols[0], 1, got[cols[0]:], p.ldc, ep)
				}
				same(t, fmt.Sprintf("packed %v tb=%v", sh, tb), got, want)
				if !tb {
					got = append(got[:0], p.c...)
					s.SgemmSource(false, p.m, p.n, p.k, p.a, p.lda, imageSource{p.b, p.ldb}, 1, got, p.ldc, p.ep)
					same(t, fmt.Sprintf("source %v", sh), got, want)
				}
			}
		}
	})
}

func same(t *testing.T, what string, got, want []float32) {
	t.Helper()
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s: element %d is %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestBadArguments: slices too short for the sizes panic with a message,
// as BLAS does, rather than reading or writing out of bounds.
func TestBadArguments(t *testing.T) {
	s := NewScratch()
	cases := map[string]func(){
		"short A": func() {
			s.Sgemm(false, false, 4, 4, 4, 1, make([]float32, 15), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4, Epilogue{})
		},
		"short B": func() {
			s.Sgemm(false, true, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 15), 4, 0, make([]float32, 16), 4, Epilogue{})
		},
		"short C": func() {
			s.Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 15), 4, Epilogue{})
		},
		"small ldc": func() {
			s.Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 16), 3, Epilogue{})
		},
		"short bias": func() {
			s.Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 16), 4, 0, make([]float32, 16), 4, Epilogue{BiasCol: make([]float32, 3)})
		},
		"negative": func() { s.Sgemm(false, false, -1, 4, 4, 1, nil, 4, nil, 4, 0, nil, 4, Epilogue{}) },
	}
	expectPanics(t, cases)
}

// expectPanics runs each case and fails the ones that do not panic.
func expectPanics(t *testing.T, cases map[string]func()) {
	t.Helper()
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			f()
		})
	}
}

// TestAllocatesNothing: a product allocates nothing.
func TestAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	s := NewScratch()
	p := newProblem(r, false, true, 70, 130, 300, 1, 0, true, true)
	c := append([]float32(nil), p.c...)
	pb := PackB(true, p.k, p.n, p.b, p.ldb)
	src := &imageSource{randSlice(r, p.k*10), 10}
	if n := testing.AllocsPerRun(5, func() {
		s.Sgemm(p.ta, p.tb, p.m, p.n, p.k, 1, p.a, p.lda, p.b, p.ldb, 0, c, p.ldc, p.ep)
		s.SgemmPacked(false, p.m, p.n, p.k, p.a, p.lda, pb, 0, 0, c, p.ldc, p.ep)
		s.SgemmSource(false, p.m, 10, p.k, p.a, p.lda, src, 0, c, p.ldc, Epilogue{})
	}); n != 0 {
		t.Errorf("%v allocations per product", n)
	}
}

func TestPathNames(t *testing.T) {
	for _, p := range Paths {
		q, err := ParsePath(p.String())
		if err != nil || q != p {
			t.Errorf("ParsePath(%q) = %v, %v", p, q, err)
		}
	}
	if _, err := ParsePath("sse"); err == nil {
		t.Error("ParsePath(sse): no error")
	}
	if !Best().Supported() || !Generic.Supported() {
		t.Errorf("best path %v or generic not supported", Best())
	}
	if m := CPUModel(); m == "" {
		t.Error("empty CPU model")
	}
	t.Logf("CPU %s, best path %v, kernel %s", CPUModel(), Best(), KernelName())
}

// TestImageB: a B read through an index (runs of a source with gaps of
// zeros, several row kinds) gives the bits of the same B written out as a
// matrix, for whole products and column ranges, on every path.
func TestImageB(t *testing.T) {
	eachPath(t, func(t *testing.T, _ Path) {
		_, nr := Blocking()
		r := rand.New(rand.NewPCG(11, 12))
		s := NewScratch()
		for _, sh := range [][3]int{{8, 48, 9}, {5, 131, 27}, {64, 169, 288}, {17, 300, 40}, {3, 7, 2}} {
			m, n, k := sh[0], sh[1], sh[2]
			const kinds = 3
			src := randSlice(r, 4000)
			rowOff, kind := make([]int, k), make([]int, k)
			for p := range rowOff {
				rowOff[p], kind[p] = r.IntN(500), r.IntN(kinds)
			}
			colOff := make([][]int, kinds)
			for tk := range colOff {
				colOff[tk] = make([]int, n)
				o := r.IntN(50)
				for j := range colOff[tk] {
					switch r.IntN(12) {
					case 0:
						colOff[tk][j] = -1 // padding
						continue
					case 1:
						o += 2 + r.IntN(40) // a new run
					}
					colOff[tk][j] = o
					o++
				}
			}
			ib, err := NewImageB(k, n, rowOff, kind, colOff)
			if err != nil {
				t.Fatal(err)
			}
			bm := make([]float32, k*n)
			for p := 0; p < k; p++ {
				for j := 0; j < n; j++ {
					if o := colOff[kind[p]][j]; o >= 0 {
						bm[p*n+j] = src[rowOff[p]+o]
					}
				}
			}
			a, c := randSlice(r, m*k), randSlice(r, m*n)
			ep := Epilogue{BiasRow: randSlice(r, m), ReLU: true}
			want := append([]float32(nil), c...)
			s.Sgemm(false, false, m, n, k, 1, a, k, bm, n, 0, want, n, ep)
			got := append([]float32(nil), c...)
			cut := min(n, 2*nr)
			for _, cols := range [][2]int{{0, cut}, {cut, n}} {
				s.SgemmImage(false, m, cols[1]-cols[0], k, a, k, ib, src, cols[0], 0, got[cols[0]:], n, ep)
			}
			same(t, fmt.Sprintf("image B %v", sh), got, want)
		}
		// A source too short for the tables panics rather than reading on.
		ib, err := NewImageB(1, 2, []int{5}, []int{0}, [][]int{{0, 1}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if recover() == nil {
				t.Error("short source: no panic")
			}
		}()
		s.SgemmImage(false, 1, 2, 1, []float32{1}, 1, ib, make([]float32, 6), 0, 0, make([]float32, 2), 2, Epilogue{})
	})
}

// TestPackers checks the B packers of each path against the definition of
// a panel, for every panel width n (edge panels zero their last columns)
// and for row counts around the transposes' blocks (a last partial block
// reads through a lane mask): exact copies, nothing read past the columns
// asked for (the rows beyond are NaN, and would show) and nothing written
// past kc rows.
func TestPackers(t *testing.T) {
	eachPath(t, func(t *testing.T, p Path) {
		im := &impls[p]
		nr, ld := im.nr, 301
		src := make([]float32, (maxKC+8)*ld)
		for i := range src {
			src[i] = float32(i + 1)
		}
		for _, tb := range []bool{false, true} {
			for n := 1; n <= nr; n++ {
				// Whatever lies beyond the n columns read is NaN.
				b := append([]float32(nil), src...)
				for r := 0; r < maxKC+8; r++ {
					for c := 0; c < ld; c++ {
						if (tb && r >= 3+n) || (!tb && c >= 5+n) {
							b[r*ld+c] = float32(math.NaN())
						}
					}
				}
				for _, kc := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 70, maxKC} {
					s := NewScratch()
					for i := range s.b {
						s.b[i] = -1
					}
					d := denseB{b: b[3*ld+5:], ldb: ld, tb: tb}
					if kc > 0 {
						d.panel(s, im, 0, kc, 0, n)
					}
					for i, got := range s.b {
						want := float32(-1)
						if q, j := i/nr, i%nr; q < kc {
							want = 0
							if j < n && tb {
								want = src[(3+j)*ld+5+q]
							} else if j < n {
								want = src[(3+q)*ld+5+j]
							}
						}
						if math.Float32bits(got) != math.Float32bits(want) {
							t.Fatalf("tb=%v n=%d kc=%d: element %d (row %d, column %d) is %v, want %v", tb, n, kc, i, i/nr, i%nr, got, want)
						}
					}
				}
			}
		}
	})
}
