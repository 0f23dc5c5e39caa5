package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// bothCPaths runs f with the C kernels' AVX2 loops and with their scalar
// loops, which a machine with AVX2 would otherwise never run.
func bothCPaths(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, vec := range []bool{true, false} {
		name := "scalar"
		if vec {
			name = "vector"
		}
		t.Run(name, func(t *testing.T) {
			useCVectors(vec)
			defer useCVectors(true)
			f(t)
		})
	}
}

// testCPool returns a two-thread C pool on a slot no executable uses, or
// skips the test in builds without C kernels.
func testCPool(t *testing.T) cPool {
	t.Helper()
	cp := cPoolFor(1000, 2)
	if cp == nil {
		t.Skip("no C kernels in this build (" + BLASName() + ")")
	}
	return cp
}

// TestCPoolAdamMatchesGo checks the C Adam update (vector lanes, parts, a
// scalar tail) against the Go loop bit for bit, for every option the loop
// branches on, with NaN, infinite and clipped gradients among the values.
func TestCPoolAdamMatchesGo(t *testing.T) { bothCPaths(t, checkCPoolAdamMatchesGo) }

func checkCPoolAdamMatchesGo(t *testing.T) {
	cp := testCPool(t)
	cases := []struct {
		name string
		prep gradPrep
		dec  float64
		bc2s float32
	}{
		{name: "plain", prep: gradPrep{scale: 1}, bc2s: 0.3},
		{name: "l2", prep: gradPrep{scale: 1, wd: 0.05}, bc2s: 0.3},
		{name: "clip_scale", prep: gradPrep{scale: 1.7, clip: 0.4}, bc2s: 0.3},
		{name: "decoupled", prep: gradPrep{scale: 1}, dec: 0.1, bc2s: 0.3},
		{name: "keras_all", prep: gradPrep{scale: 0.5, clip: 1, wd: 0.01}, dec: 0.2, bc2s: 1},
	}
	// An odd length: two parts, lanes of 8 and a scalar tail in each.
	const n = 100_003
	r := rand.New(rand.NewPCG(5, 6))
	vec := func() []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	p, g, m, v := vec(), vec(), vec(), vec()
	for i := range v {
		v[i] *= v[i] // a second moment is not negative
	}
	g[7], g[100], g[n-1] = float32(math.NaN()), float32(math.Inf(1)), 1e30
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k := &adamKernel{updateCommon: &updateCommon{n: n, prep: tc.prep, decWD: tc.dec},
				b1: 0.9, b2: 0.999, omb1: 0.1, omb2: float32(1 - float64(float32(0.999))), eps: 1e-8,
				stepSize: 0.0123, bc2s: tc.bc2s, shrink: float32(1 - 0.01*tc.dec)}
			k.p, k.g, k.m, k.v = p, g, m, v
			goOut := [3][]float32{make([]float32, n), make([]float32, n), make([]float32, n)}
			cOut := [3][]float32{make([]float32, n), make([]float32, n), make([]float32, n)}
			k.po, k.mo, k.vo = goOut[0], goOut[1], goOut[2]
			k.run(0, n)
			k.po, k.mo, k.vo = cOut[0], cOut[1], cOut[2]
			cp.adam(k)
			for o, name := range []string{"param", "m", "v"} {
				for i := range goOut[o] {
					a, b := goOut[o][i], cOut[o][i]
					if math.Float32bits(a) != math.Float32bits(b) && !(a != a && b != b) {
						t.Fatalf("%s[%d]: Go %v, C %v", name, i, a, b)
					}
				}
			}
		})
	}
}

// TestCPoolSgemmMatchesSerial checks products split over the C pool, with
// and without the bias and ReLU epilogue, by rows (m >= n) and by columns,
// transposed or not, against one serial OpenBLAS call and the Go epilogue.
// The split changes which tile an element falls in but not the order of its
// sum over k, so the results agree to float32 rounding; 1e-5 relative
// leaves room for a kernel that blocks its edge tiles differently.
func TestCPoolSgemmMatchesSerial(t *testing.T) {
	cp := testCPool(t)
	r := rand.New(rand.NewPCG(7, 8))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(r.NormFloat64())
		}
		return s
	}
	cases := []struct {
		name       string
		m, n, k    int
		ta, tb     bool
		bias, relu bool
		beta       float32
	}{
		{name: "rows", m: 97, n: 33, k: 50},
		{name: "cols_bias_relu", m: 20, n: 131, k: 64, bias: true, relu: true},
		{name: "rows_bias_transB", m: 70, n: 41, k: 19, tb: true, bias: true},
		{name: "cols_relu_transA", m: 9, n: 300, k: 33, ta: true, relu: true},
		{name: "beta_one", m: 64, n: 64, k: 64, beta: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := fill(tc.m*tc.k), fill(tc.k*tc.n)
			lda, ldb := tc.k, tc.n
			if tc.ta {
				lda = tc.m
			}
			if tc.tb {
				ldb = tc.k
			}
			var bias []float32
			if tc.bias {
				bias = fill(tc.n)
			}
			if tc.relu {
				a[0] = float32(math.NaN()) // row 0 of C is NaN; ReLU keeps it so
			}
			c0 := fill(tc.m * tc.n)
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			sgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, 1.5, a, lda, b, ldb, tc.beta, want, tc.n)
			if tc.bias || tc.relu {
				applyEpilogue(want, tc.m, tc.n, tc.n, epilogue[float32]{col: bias, relu: tc.relu})
			}
			cp.sgemm(tc.ta, tc.tb, tc.m, tc.n, tc.k, 1.5, a, lda, b, ldb, tc.beta, got, tc.n, bias, tc.relu)
			for i := range want {
				if want[i] != want[i] || got[i] != got[i] {
					if want[i] == want[i] || got[i] == got[i] {
						t.Fatalf("C[%d]: split %v, serial %v", i, got[i], want[i])
					}
					continue
				}
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*max(1, math.Abs(float64(want[i]))) {
					t.Fatalf("C[%d]: split %v, serial %v", i, got[i], want[i])
				}
			}
		})
	}
}

// TestCPoolMaxPoolMatchesGo checks the C 2x2 max pooling against
// poolMax2x2 bit for bit, values and Indices, for widths that fill vector
// groups exactly, leave a masked tail or fit in one partial group, with
// ties, signed zeros, infinities and NaNs (whose maximum and index follow
// Go's max) among the values.
func TestCPoolMaxPoolMatchesGo(t *testing.T) { bothCPaths(t, checkCPoolMaxPoolMatchesGo) }

func checkCPoolMaxPoolMatchesGo(t *testing.T) {
	cp := testCPool(t)
	r := rand.New(rand.NewPCG(9, 10))
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for _, sh := range [][2]int{{2, 2}, {4, 16}, {5, 13}, {30, 30}, {7, 33}, {3, 31}} {
		h, w := sh[0], sh[1]
		oh, ow := h/2, w/2
		const planes = 5
		x := make([]float32, planes*h*w)
		for i := range x {
			if r.IntN(4) == 0 {
				x[i] = special[r.IntN(len(special))]
			} else {
				x[i] = float32(r.IntN(5)) // small integers: many ties
			}
		}
		g := &poolGeom{planes: planes, in: [3]int{1, h, w}, out: [3]int{1, oh, ow}, inPlane: h * w, outPlane: oh * ow}
		for _, withInd := range []bool{true, false} {
			wantY, gotY := make([]float32, planes*oh*ow), make([]float32, planes*oh*ow)
			var wantI, gotI []int64
			if withInd {
				wantI, gotI = make([]int64, len(wantY)), make([]int64, len(wantY))
			}
			poolMax2x2(g, x, wantY, wantI, 0, planes)
			cp.maxPool2x2(x, gotY, gotI, planes, h, w, oh, ow)
			for i := range wantY {
				if math.Float32bits(wantY[i]) != math.Float32bits(gotY[i]) {
					t.Fatalf("%dx%d: y[%d]: Go %v, C %v", h, w, i, wantY[i], gotY[i])
				}
				if withInd && wantI[i] != gotI[i] {
					t.Fatalf("%dx%d: indices[%d]: Go %d, C %d", h, w, i, wantI[i], gotI[i])
				}
			}
		}
	}
}

// TestCPoolTapsMatchGo checks the training fusion's C loops against the
// Go ones bit for bit: Conv's pooling with taps (the taps must name
// MaxPool's Indices: poolMax2x2's first maximum) and the gradient's
// spreading over the windows, with and without the ReLU mask, on rows
// shorter and longer than a vector, odd sizes, ties, NaN, infinities and
// signed zeros.
func TestCPoolTapsMatchGo(t *testing.T) { bothCPaths(t, checkCPoolTapsMatchGo) }

func checkCPoolTapsMatchGo(t *testing.T) {
	testCPool(t) // skips builds without C kernels
	r := rand.New(rand.NewPCG(15, 16))
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	value := func() float32 {
		if r.IntN(4) == 0 {
			return special[r.IntN(len(special))]
		}
		return float32(r.IntN(5) - 2) // small integers: many ties
	}
	for _, sh := range [][2]int{{2, 2}, {4, 16}, {5, 13}, {30, 30}, {7, 33}, {3, 31}, {13, 13}, {4, 70}, {2, 64}} {
		h, w := sh[0], sh[1]
		oh, ow := h/2, w/2
		const planes = 5
		// Rows w apart (dense planes) and w+2 apart (the direct
		// convolution's wide rows, whose last two columns are not pooled).
		var wantY []float32
		for _, ldr := range []int{w, w + 2} {
			lds := h*ldr + 3
			x := make([]float32, planes*lds)
			for i := range x {
				x[i] = value()
			}
			g := &poolGeom{planes: planes, in: [3]int{1, h, w}, out: [3]int{1, oh, ow}, inPlane: h * w, outPlane: oh * ow}
			dense := make([]float32, planes*h*w)
			for p := 0; p < planes; p++ {
				for i := 0; i < h; i++ {
					copy(dense[(p*h+i)*w:(p*h+i+1)*w], x[p*lds+i*ldr:])
				}
			}
			var wantI []int64
			wantY, wantI = make([]float32, planes*oh*ow), make([]int64, planes*oh*ow)
			poolMax2x2(g, dense, wantY, wantI, 0, planes)
			for _, useC := range []bool{false, true} {
				y, taps := make([]float32, len(wantY)), make([]uint8, len(wantY))
				if useC {
					convPoolC(x, lds, ldr, y, taps, planes, h, w)
				} else {
					convPoolGo(x, lds, ldr, y, taps, planes, h, w)
				}
				// Without taps (inference: the C kernels' AVX-512 loop
				// where the CPU has it), the same values.
				noTaps := make([]float32, len(wantY))
				if useC {
					convPoolC(x, lds, ldr, noTaps, nil, planes, h, w)
				} else {
					convPoolGo(x, lds, ldr, noTaps, nil, planes, h, w)
				}
				for i := range wantY {
					if math.Float32bits(noTaps[i]) != math.Float32bits(wantY[i]) {
						t.Fatalf("%dx%d rows %d apart, C=%v, no taps: output %d: %v, MaxPool gives %v", h, w, ldr, useC, i, noTaps[i], wantY[i])
					}
				}
				for i := range wantY {
					p, o := i/(oh*ow), i%(oh*ow)
					ind := int64(p*h*w + 2*(o/ow)*w + 2*(o%ow) + int(taps[i]&1) + int(taps[i]>>1)*w)
					if math.Float32bits(wantY[i]) != math.Float32bits(y[i]) || taps[i] > 3 || ind != wantI[i] {
						t.Fatalf("%dx%d rows %d apart, C=%v: output %d: %v tap %d (index %d), MaxPool gives %v index %d", h, w, ldr, useC, i, y[i], taps[i], ind, wantY[i], wantI[i])
					}
				}
			}
		}
		// The gradient: dy random with specials, ym the pooled values.
		dy := make([]float32, len(wantY))
		taps := make([]uint8, len(wantY))
		for i := range dy {
			dy[i], taps[i] = value(), uint8(r.IntN(4))
		}
		ldd := h*w + 5
		for _, mask := range []bool{false, true} {
			var ym []float32
			if mask {
				ym = wantY
			}
			want, got := make([]float32, planes*ldd), make([]float32, planes*ldd)
			for i := range want {
				want[i], got[i] = 7, 7 // between planes: left alone
			}
			unpoolGo(dy, taps, ym, want, ldd, planes, h, w)
			unpoolC(dy, taps, ym, got, ldd, planes, h, w)
			for i := range want {
				if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
					t.Fatalf("%dx%d mask=%v: dst[%d]: Go %v, C %v", h, w, mask, i, want[i], got[i])
				}
			}
		}
	}
}

// TestCPoolMaxPoolGradMatchesGo checks the C scatter of MaxPoolGrad
// against the Go kernel bit for bit, with and without the fused ReLU mask,
// with windows marked -1 and several maxima landing on one input (sums in
// the same order), and that an index outside its plane is reported.
func TestCPoolMaxPoolGradMatchesGo(t *testing.T) {
	cp := testCPool(t)
	r := rand.New(rand.NewPCG(11, 12))
	const planes, inPlane, outPlane = 6, 20, 9
	dy, x := make([]float32, planes*outPlane), make([]float32, planes*inPlane)
	ind := make([]int64, planes*outPlane)
	for i := range dy {
		dy[i] = float32(r.NormFloat64())
	}
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for o := range ind {
		pl := o / outPlane
		ind[o] = int64(pl*inPlane + r.IntN(5)) // few targets: collisions
		if r.IntN(6) == 0 {
			ind[o] = -1
		}
	}
	goKernel := func(relu bool) Kernel {
		p := &Prep{Node: &graph.Node{Name: "mpg", OpType: "MaxPoolGrad"}, Pool: NewPool(1)}
		return poolMaxGradKernel[float32](p, planes, inPlane, outPlane, relu)
	}
	tensors := func(ind []int64) []*tensor.Tensor {
		ts := []*tensor.Tensor{}
		for _, d := range []struct {
			data  any
			shape []int
		}{{dy, []int{planes, outPlane}}, {ind, []int{planes, outPlane}}, {x, []int{planes, inPlane}}} {
			tt, err := tensor.FromSlice(d.data, d.shape...)
			if err != nil {
				t.Fatal(err)
			}
			ts = append(ts, tt)
		}
		return ts
	}
	for _, relu := range []bool{false, true} {
		want := tensor.New(tensor.Float32, planes, inPlane)
		if err := goKernel(relu)(tensors(ind), []*tensor.Tensor{want}); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, planes*inPlane)
		if bad := cp.maxPoolGrad(dy, ind, x, got, planes, inPlane, outPlane, relu); bad != 0 {
			t.Fatalf("relu=%v: C reports index %d as outside its plane", relu, bad-1)
		}
		for i, w := range want.Float32s() {
			if math.Float32bits(w) != math.Float32bits(got[i]) {
				t.Fatalf("relu=%v: dx[%d]: Go %v, C %v", relu, i, w, got[i])
			}
		}
	}
	badInd := append([]int64(nil), ind...)
	badInd[2*outPlane+4] = 0 // plane 2's window pointing into plane 0
	got := make([]float32, planes*inPlane)
	if bad := cp.maxPoolGrad(dy, badInd, x, got, planes, inPlane, outPlane, false); bad != 2*outPlane+4+1 {
		t.Errorf("C reports %d for an index outside its plane at %d; want %d", bad, 2*outPlane+4, 2*outPlane+4+1)
	}
	if err := goKernel(false)(tensors(badInd), []*tensor.Tensor{tensor.New(tensor.Float32, planes, inPlane)}); err == nil {
		t.Error("Go kernel accepted an index outside its plane")
	}
}

// TestCIm2colMatchesGo checks the C im2col and col2im of the dense 2-D
// case against the Go loops bit for bit, for kernel widths 3 (col2im's
// three-tap path) and others, with the column rows of several images side
// by side (ld > colVol) as the batched kernels lay them out.
func TestCIm2colMatchesGo(t *testing.T) { bothCPaths(t, checkCIm2colMatchesGo) }

func checkCIm2colMatchesGo(t *testing.T) {
	testCPool(t) // skips builds without C kernels
	r := rand.New(rand.NewPCG(13, 14))
	for _, tc := range []struct{ c, h, w, kh, kw, images int }{
		{3, 8, 9, 3, 3, 1}, {2, 7, 13, 3, 3, 3}, {4, 6, 6, 2, 4, 2}, {1, 5, 30, 1, 5, 1}, {2, 4, 4, 4, 4, 1},
	} {
		g := &graph.ConvGeom{Kernel: []int{tc.kh, tc.kw}, Strides: []int{1, 1}, Dilations: []int{1, 1}, PadBegin: []int{0, 0}, Group: 1}
		cg := newColGeom(tc.c, g, []int{tc.h, tc.w}, []int{tc.h - tc.kh + 1, tc.w - tc.kw + 1})
		if !cg.dense2D {
			t.Fatalf("%+v: geometry is not dense 2-D", tc)
		}
		x := make([]float32, cg.imageLen)
		for i := range x {
			x[i] = float32(r.NormFloat64())
		}
		ld := tc.images * cg.colVol
		want, got := make([]float32, cg.rows*ld), make([]float32, cg.rows*ld)
		for b := 0; b < tc.images; b++ {
			im2colDense2DGo(cg, x, want[b*cg.colVol:], ld)
			im2colDense2DC(cg, x, got[b*cg.colVol:], ld)
		}
		for i := range want {
			if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
				t.Fatalf("%+v: im2col col[%d]: Go %v, C %v", tc, i, want[i], got[i])
			}
		}
		for i := range want {
			want[i] = float32(r.NormFloat64()) // a gradient to scatter back
		}
		for b := 0; b < tc.images; b++ {
			xg, xc := append([]float32(nil), x...), append([]float32(nil), x...)
			col2imDense2DGo(cg, want[b*cg.colVol:], ld, xg)
			col2imDense2DC(cg, want[b*cg.colVol:], ld, xc)
			for i := range xg {
				if math.Float32bits(xg[i]) != math.Float32bits(xc[i]) {
					t.Fatalf("%+v: col2im image %d x[%d]: Go %v, C %v", tc, b, i, xg[i], xc[i])
				}
			}
		}
	}
}

// TestCPoolManyTasks runs tasks back to back, with a busy goroutine
// competing for the cores so that the pool's worker is often preempted
// between tasks: a worker delayed in one task's claim loop must not take
// (and lose the count of) a part of the next, which hung the caller. Each
// task's results are checked too.
func TestCPoolManyTasks(t *testing.T) {
	cp := testCPool(t)
	stop := make(chan struct{})
	go func() { // competes with the pool's thread for the cores
		x := 0
		for {
			select {
			case <-stop:
				return
			default:
				for i := 0; i < 1000; i++ {
					x += i
				}
			}
		}
	}()
	defer close(stop)
	done := make(chan error, 1)
	go func() {
		const planes, h, w = 4, 2, 4
		x := make([]float32, planes*h*w)
		y := make([]float32, planes*(h/2)*(w/2))
		for i := range x {
			x[i] = float32(i)
		}
		for it := 0; it < 200000; it++ {
			clear(y)
			cp.maxPool2x2(x, y, nil, planes, h, w, h/2, w/2)
			for p := 0; p < planes; p++ {
				for j := 0; j < w/2; j++ {
					if want := float32(p*h*w + w + 2*j + 1); y[p*(w/2)+j] != want {
						done <- fmt.Errorf("task %d: y[%d][%d] = %v, want %v", it, p, j, y[p*(w/2)+j], want)
						return
					}
				}
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("200000 small tasks did not finish in 3 minutes: the pool hangs")
	}
}
