package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// directCase is a stride-1 2-D convolution of one image laid out as
// DirectConv reads it: cin planes of h x w (the padded input), kh x kw
// taps with dilation d, m output channels.
type directCase struct {
	m, cin, h, w, kh, kw, d int
	bias, relu              bool
}

func (c directCase) String() string {
	return fmt.Sprintf("m%d_cin%d_%dx%d_k%dx%d_d%d_bias%v_relu%v", c.m, c.cin, c.h, c.w, c.kh, c.kw, c.d, c.bias, c.relu)
}

// geometry returns the output size, the number of computed columns n and
// the taps' offsets.
func (c directCase) geometry() (oh, ow, n int, taps []int64) {
	oh, ow = c.h-(c.kh-1)*c.d, c.w-(c.kw-1)*c.d
	n = (oh-1)*c.w + ow
	for i := 0; i < c.kh; i++ {
		for j := 0; j < c.kw; j++ {
			taps = append(taps, int64(i*c.d*c.w+j*c.d))
		}
	}
	return
}

// TestDirectConv: on every path, DirectConv gives the bits of Sgemm over
// the im2col matrix (rows channel-major, then tap; a column per computed
// position), and values within float32 rounding of a float64 reference.
func TestDirectConv(t *testing.T) {
	cases := []directCase{
		{8, 1, 5, 5, 3, 3, 1, false, false},
		{32, 3, 32, 32, 3, 3, 1, true, true},   // the seed CNN's first layer
		{64, 32, 15, 15, 3, 3, 1, true, true},  // and its second
		{16, 16, 34, 34, 3, 3, 1, true, false}, // a padded ResNet layer
		{24, 5, 12, 9, 5, 5, 1, false, true},   // n smaller than a tile
		{8, 4, 11, 13, 3, 2, 2, true, true},    // dilated, non-square
		{16, 7, 6, 6, 1, 1, 1, true, false},    // one tap
		{40, 2, 70, 3, 3, 3, 1, false, false},  // narrow rows
		{8, 300, 4, 4, 3, 3, 1, false, false},  // K beyond one block of the GEMM
		{64, 1, 1, 200, 1, 7, 1, true, true},   // 1-D
		{8, 2, 9, 9, 9, 9, 1, false, false},    // one output position
		{16, 3, 10, 10, 2, 2, 1, false, true},  // even kernel
		{48, 9, 21, 17, 3, 3, 1, true, true},   // several row and column tiles
		{8, 1, 3, 100, 3, 3, 1, false, false},  // one output row
	}
	r := rand.New(rand.NewPCG(7, 11))
	for _, c := range cases {
		oh, ow, n, taps := c.geometry()
		cols := (n + DirectCols - 1) / DirectCols * DirectCols
		plane := c.h * c.w
		x := randSlice(r, (c.cin-1)*plane+int(taps[len(taps)-1])+cols)
		k := c.cin * len(taps)
		w := randSlice(r, c.m*k)
		var ep Epilogue
		if c.bias {
			ep.BiasRow = randSlice(r, c.m)
		}
		ep.ReLU = c.relu
		// The im2col matrix: row ci*ntap+t, column j.
		col := make([]float32, k*n)
		for ci := 0; ci < c.cin; ci++ {
			for ti, off := range taps {
				for j := 0; j < n; j++ {
					col[(ci*len(taps)+ti)*n+j] = x[ci*plane+int(off)+j]
				}
			}
		}
		t.Run(c.String(), func(t *testing.T) {
			eachPath(t, func(t *testing.T, p Path) {
				s := NewScratch()
				want := make([]float32, c.m*n)
				s.Sgemm(false, false, c.m, n, k, 1, w, k, col, n, 0, want, n, ep)
				got := make([]float32, c.m*cols)
				for i := range got {
					got[i] = float32(math.NaN()) // every column < n must be written
				}
				s.DirectConv(c.m, n, c.cin, taps, w, x, plane, got, cols, ep)
				for i := 0; i < c.m; i++ {
					for j := 0; j < n; j++ {
						g, e := got[i*cols+j], want[i*n+j]
						if math.Float32bits(g) != math.Float32bits(e) {
							t.Fatalf("row %d column %d: %v, Sgemm over im2col gives %v", i, j, g, e)
						}
					}
				}
				// With Max, C = max(C, result) as Go's max: C starts
				// with special values and random ones.
				specials := []float32{float32(math.NaN()), float32(math.Copysign(0, -1)), 0, float32(math.Inf(1)), float32(math.Inf(-1))}
				old := make([]float32, len(got))
				for i := range old {
					if i%3 == 0 {
						old[i] = specials[(i/3)%len(specials)]
					} else {
						old[i] = float32(r.NormFloat64())
					}
				}
				merged := append([]float32(nil), old...)
				mep := ep
				mep.Max = true
				s.DirectConv(c.m, n, c.cin, taps, w, x, plane, merged, cols, mep)
				for i := 0; i < c.m; i++ {
					for j := 0; j < n; j++ {
						// A NaN's payload is the implementation's: Go's
						// own max on amd64 ORs the operands' bits into it.
						g, e := merged[i*cols+j], max(old[i*cols+j], got[i*cols+j])
						if math.Float32bits(g) != math.Float32bits(e) && !(g != g && e != e) {
							t.Fatalf("Max: row %d column %d: %v, Go's max(%v, %v) is %v", i, j, g, old[i*cols+j], got[i*cols+j], e)
						}
					}
				}
				// A float64 reference on the valid positions: |error| <=
				// K * 2^-23 * sum|terms| (a chain of K roundings).
				for i := 0; i < c.m; i++ {
					for y := 0; y < oh; y++ {
						for xx := 0; xx < ow; xx++ {
							j := y*c.w + xx
							var ref, mag float64
							for q := 0; q < k; q++ {
								v := float64(w[i*k+q]) * float64(col[q*n+j])
								ref += v
								mag += math.Abs(v)
							}
							if ep.BiasRow != nil {
								ref += float64(ep.BiasRow[i])
								mag += math.Abs(float64(ep.BiasRow[i]))
							}
							if c.relu {
								ref = math.Max(ref, 0)
							}
							if d := math.Abs(float64(got[i*cols+j]) - ref); d > float64(k+1)*0x1p-23*mag+1e-30 {
								t.Fatalf("row %d at (%d, %d): %v, reference %v", i, y, xx, got[i*cols+j], ref)
							}
						}
					}
				}
			})
		})
	}
}

// TestDirectConvBadArguments: sizes DirectConv cannot take, and slices
// too short for them, panic with a message.
func TestDirectConvBadArguments(t *testing.T) {
	s := NewScratch()
	taps := []int64{0, 1}
	ok := func() (w, x, c []float32) {
		return make([]float32, 8*2*2), make([]float32, 1*10+1+DirectCols), make([]float32, 8*DirectCols)
	}
	cases := map[string]func(){
		"rows not a multiple": func() { w, x, c := ok(); s.DirectConv(7, 5, 2, taps, w, x, 10, c, DirectCols, Epilogue{}) },
		"no taps":             func() { w, x, c := ok(); s.DirectConv(8, 5, 2, nil, w, x, 10, c, DirectCols, Epilogue{}) },
		"negative tap":        func() { w, x, c := ok(); s.DirectConv(8, 5, 2, []int64{0, -1}, w, x, 10, c, DirectCols, Epilogue{}) },
		"short X": func() {
			w, x, c := ok()
			s.DirectConv(8, 5, 2, taps, w, x[:len(x)-1], 10, c, DirectCols, Epilogue{})
		},
		"short C":    func() { w, x, c := ok(); s.DirectConv(8, 5, 2, taps, w, x, 10, c[:len(c)-1], DirectCols, Epilogue{}) },
		"narrow ldc": func() { w, x, c := ok(); s.DirectConv(8, 5, 2, taps, w, x, 10, c, 5, Epilogue{}) },
		"short W":    func() { w, x, c := ok(); s.DirectConv(8, 5, 2, taps, w[:31], x, 10, c, DirectCols, Epilogue{}) },
		"column bias": func() {
			w, x, c := ok()
			s.DirectConv(8, 5, 2, taps, w, x, 10, c, DirectCols, Epilogue{BiasCol: make([]float32, 48)})
		},
		"short bias": func() {
			w, x, c := ok()
			s.DirectConv(8, 5, 2, taps, w, x, 10, c, DirectCols, Epilogue{BiasRow: make([]float32, 7)})
		},
	}
	expectPanics(t, cases)
}

// TestColSplit: on every path, the split writes each row's even and odd
// columns where its offsets say, and nothing else.
func TestColSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for _, w := range []int{1, 2, 15, 16, 17, 31, 32, 33, 64, 70} {
		const nrows = 7
		srcLen := nrows*w + 5
		dstLen := nrows*w + 40
		src := randSlice(r, srcLen)
		var rows []int32
		for i := 0; i < nrows; i++ {
			// Rows read in any order; even and odd halves apart.
			s := (i * 3 % nrows) * w
			e := i * w
			o := e + (w+1)/2 + r.IntN(3)
			rows = append(rows, int32(s), int32(e), int32(min(o, dstLen-w/2)))
		}
		want := make([]float32, dstLen)
		for i := range want {
			want[i] = -7
		}
		for i := 0; i < nrows; i++ {
			s, e, o := int(rows[3*i]), int(rows[3*i+1]), int(rows[3*i+2])
			for j := 0; j < w; j++ {
				if j%2 == 0 {
					want[e+j/2] = src[s+j]
				} else {
					want[o+j/2] = src[s+j]
				}
			}
		}
		cs, err := NewColSplit(rows, w, srcLen, dstLen)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("w%d", w), func(t *testing.T) {
			eachPath(t, func(t *testing.T, p Path) {
				got := make([]float32, dstLen)
				for i := range got {
					got[i] = -7
				}
				cs.Run(got, src)
				same(t, "split", got, want)
			})
		})
	}
	for name, c := range map[string]struct {
		rows              []int32
		w, srcLen, dstLen int
	}{
		"not triples":     {[]int32{0, 0}, 4, 10, 10},
		"no width":        {[]int32{0, 0, 2}, 0, 10, 10},
		"source past end": {[]int32{7, 0, 2}, 4, 10, 10},
		"even past end":   {[]int32{0, 9, 0}, 4, 10, 10},
		"odd past end":    {[]int32{0, 0, 9}, 4, 10, 10},
		"negative":        {[]int32{0, -1, 2}, 4, 10, 10},
	} {
		if _, err := NewColSplit(c.rows, c.w, c.srcLen, c.dstLen); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCopyPlanes: on every path, CopyPlanes writes exactly the rows it
// is asked for.
func TestCopyPlanes(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 8))
	for _, w := range []int{1, 6, 15, 16, 17, 32, 33, 50} {
		const planes, rows = 3, 4
		sr, sp := w+r.IntN(5), 0
		sp = rows*sr + r.IntN(7)
		dr := w + r.IntN(3)
		dp := rows*dr + r.IntN(4)
		src := randSlice(r, planes*sp)
		want := make([]float32, planes*dp+3)
		for i := range want {
			want[i] = -3
		}
		for p := 0; p < planes; p++ {
			for i := 0; i < rows; i++ {
				copy(want[p*dp+i*dr:][:w], src[p*sp+i*sr:])
			}
		}
		t.Run(fmt.Sprintf("w%d", w), func(t *testing.T) {
			eachPath(t, func(t *testing.T, p Path) {
				got := make([]float32, len(want))
				for i := range got {
					got[i] = -3
				}
				CopyPlanes(got, src, planes, rows, w, sp, sr, dp, dr)
				same(t, "copy", got, want)
			})
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("a short source: no panic")
		}
	}()
	CopyPlanes(make([]float32, 100), make([]float32, 10), 2, 2, 4, 8, 4, 20, 5)
}
