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
