package cpu

import (
	"fmt"
	"math"
	"math/rand"
	"strconv"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// The tests here compare each kernel with a direct reference written
// element by element from the op's definition (coordinates in, coordinates
// out), on random shapes that include size-1 and size-0 dims, negative
// axes and every storage width. Data movement is exact, so comparisons are
// exact too.

var testPool = NewPool(2)

// prepNode infers n's output types from the inputs and prepares its kernel.
func prepNode(n *graph.Node, opset int64, ins []*tensor.Tensor) (*Prep, Kernel, error) {
	types := make([]*graph.Type, len(ins))
	for i, x := range ins {
		if x != nil {
			types[i] = graph.TypeOf(x)
		}
	}
	s := graph.Lookup(n.Domain, n.OpType)
	if s == nil {
		return nil, nil, fmt.Errorf("no schema for %s", n.OpType)
	}
	outs, err := s.Infer(n, types, opset)
	if err != nil {
		return nil, nil, err
	}
	p := &Prep{Node: n, In: types, Out: outs, Opset: opset, Pool: testPool}
	info, ok := kernels[kkey(n.Domain, n.OpType)]
	if !ok || info.alias {
		return p, nil, fmt.Errorf("no kernel for %s", n.OpType)
	}
	k, err := info.factory(p)
	return p, k, err
}

// runNode runs one node on ins and returns its outputs.
func runNode(n *graph.Node, opset int64, ins ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	p, k, err := prepNode(n, opset, ins)
	if err != nil {
		return nil, err
	}
	outs := make([]*tensor.Tensor, len(p.Out))
	for i, t := range p.Out {
		s, ok := t.Concrete()
		if !ok {
			return nil, fmt.Errorf("output %d has no concrete shape: %v", i, t)
		}
		outs[i] = tensor.New(t.DType, s...)
	}
	if err := k(ins, outs); err != nil {
		return nil, err
	}
	return outs, nil
}

func mustRun(t *testing.T, n *graph.Node, opset int64, ins ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	outs, err := runNode(n, opset, ins...)
	if err != nil {
		t.Fatalf("%s: %v", n.OpType, err)
	}
	return outs
}

func node(op string, nIn, nOut int, attrs ...*graph.Attribute) *graph.Node {
	n := &graph.Node{Name: "t", OpType: op, Attrs: map[string]*graph.Attribute{}}
	for i := 0; i < nIn; i++ {
		n.Inputs = append(n.Inputs, "in"+strconv.Itoa(i))
	}
	for i := 0; i < nOut; i++ {
		n.Outputs = append(n.Outputs, "out"+strconv.Itoa(i))
	}
	for _, a := range attrs {
		n.SetAttr(a)
	}
	return n
}

// randTensor makes a tensor of dtype dt with distinct-ish random elements.
func randTensor(rng *rand.Rand, dt tensor.DType, shape ...int) *tensor.Tensor {
	t := tensor.New(dt, shape...)
	switch d := t.Data().(type) {
	case []float32:
		for i := range d {
			d[i] = rng.Float32()*2 - 1
		}
	case []float64:
		for i := range d {
			d[i] = rng.Float64()*2 - 1
		}
	case []int64:
		for i := range d {
			d[i] = rng.Int63()
		}
	case []int8:
		for i := range d {
			d[i] = int8(rng.Intn(256) - 128)
		}
	case []uint16:
		for i := range d {
			d[i] = uint16(rng.Intn(1 << 16))
		}
	case []bool:
		for i := range d {
			d[i] = rng.Intn(2) == 1
		}
	case []string:
		for i := range d {
			d[i] = strconv.Itoa(rng.Intn(1000))
		}
	}
	return t
}

// elemString renders element i of t for exact comparison across dtypes.
func elemString(t *tensor.Tensor, i int) string {
	switch d := t.Data().(type) {
	case []string:
		return d[i]
	case []uint16:
		return strconv.Itoa(int(d[i]))
	case []int64:
		return strconv.FormatInt(d[i], 10)
	case []float64:
		return strconv.FormatFloat(d[i], 'g', -1, 64)
	case []float32:
		return strconv.FormatFloat(float64(d[i]), 'g', -1, 32)
	}
	return fmt.Sprint(t.AsFloat64(i))
}

// checkMap asserts got[i] == src[ref(coords of i in got)] for every element
// (ref returns -1 for a position that must equal want0 instead).
func checkMap(t *testing.T, got, src *tensor.Tensor, ref func(c []int) int, want0 string) {
	t.Helper()
	shape := got.Shape()
	c := make([]int, len(shape))
	for i := 0; i < got.Len(); i++ {
		j := ref(c)
		want := want0
		if j >= 0 {
			want = elemString(src, j)
		}
		if g := elemString(got, i); g != want {
			t.Fatalf("element %v of %v: got %s, want %s", c, shape, g, want)
		}
		for a := len(c) - 1; a >= 0; a-- {
			c[a]++
			if c[a] < shape[a] {
				break
			}
			c[a] = 0
		}
	}
}

func flatIndex(c, shape []int) int {
	o := 0
	for i, v := range c {
		o = o*shape[i] + v
	}
	return o
}

func randShape(rng *rand.Rand, rank, maxDim int) []int {
	s := make([]int, rank)
	for i := range s {
		s[i] = 1 + rng.Intn(maxDim)
	}
	return s
}

var moveDTypes = []tensor.DType{tensor.Float32, tensor.Float64, tensor.Int64, tensor.Int8, tensor.Float16, tensor.Bool, tensor.String}

func TestTranspose(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	cases := []struct {
		shape []int
		perm  []int64
	}{
		{[]int{67, 129}, []int64{1, 0}},            // 2-D, blocked
		{[]int{2, 16, 9, 40}, []int64{0, 2, 3, 1}}, // NCHW -> NHWC
		{[]int{2, 9, 40, 16}, []int64{0, 3, 1, 2}}, // NHWC -> NCHW
		{[]int{3, 1, 4}, nil},                      // default: reversed
		{[]int{5}, []int64{0}},
		{[]int{2, 0, 3}, []int64{2, 0, 1}},
	}
	for i := 0; i < 12; i++ {
		r := 1 + rng.Intn(5)
		perm := make([]int64, r)
		for j, v := range rng.Perm(r) {
			perm[j] = int64(v)
		}
		cases = append(cases, struct {
			shape []int
			perm  []int64
		}{randShape(rng, r, 6), perm})
	}
	for _, c := range cases {
		for _, dt := range moveDTypes {
			t.Run(fmt.Sprint(c.shape, c.perm, dt), func(t *testing.T) {
				x := randTensor(rng, dt, c.shape...)
				var attrs []*graph.Attribute
				perm := c.perm
				if perm == nil {
					for i := len(c.shape) - 1; i >= 0; i-- {
						perm = append(perm, int64(i))
					}
				} else {
					attrs = append(attrs, graph.AInts("perm", perm...))
				}
				y := mustRun(t, node("Transpose", 1, 1, attrs...), 13, x)[0]
				checkMap(t, y, x, func(oc []int) int {
					ic := make([]int, len(oc))
					for i, p := range perm {
						ic[p] = oc[i]
					}
					return flatIndex(ic, c.shape)
				}, "")
			})
		}
	}
}

// refSlicePositions lists the indices Slice reads along an axis of size d,
// by brute force over the axis, following the clamping rules of Slice's
// definition.
func refSlicePositions(start, end, step int64, d int) []int {
	s, e := start, end
	if s < 0 {
		s += int64(d)
	}
	if e < 0 {
		e += int64(d)
	}
	var out []int
	if step > 0 {
		anchor := max(s, 0)
		for i := int64(0); i < int64(d); i++ {
			if i >= anchor && i < e && (i-anchor)%step == 0 {
				out = append(out, int(i))
			}
		}
	} else {
		// The spec clamps a negative-step start into [0, d-1] (so
		// x[-100::-1] reads x[0], where numpy would read nothing).
		anchor := max(0, min(s, int64(d)-1))
		for i := int64(d) - 1; i >= 0; i-- {
			if i <= anchor && i > e && (anchor-i)%(-step) == 0 {
				out = append(out, int(i))
			}
		}
	}
	return out
}

func ints64(dt tensor.DType, v ...int64) *tensor.Tensor {
	if dt == tensor.Int32 {
		// Exporters writing int32 indices clamp to the int32 range.
		d := make([]int32, len(v))
		for i, x := range v {
			d[i] = int32(max(math.MinInt32, min(x, math.MaxInt32)))
		}
		return tensor.MustFromSlice(d, len(d))
	}
	return tensor.MustFromSlice(append([]int64{}, v...), len(v))
}

func TestSlice(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	edges := []int64{-1 << 62, -100, -7, -3, -1, 0, 1, 2, 5, 100, 1<<63 - 1}
	for trial := 0; trial < 60; trial++ {
		r := 1 + rng.Intn(4)
		shape := randShape(rng, r, 7)
		if trial%10 == 9 {
			shape[0] = 0
		}
		naxes := 1 + rng.Intn(r)
		axes := rng.Perm(r)[:naxes]
		var starts, ends, steps, axv []int64
		for _, a := range axes {
			starts = append(starts, edges[rng.Intn(len(edges))])
			ends = append(ends, edges[rng.Intn(len(edges))])
			st := int64(1 + rng.Intn(3))
			if rng.Intn(2) == 0 {
				st = -st
			}
			steps = append(steps, st)
			ax := int64(a)
			if rng.Intn(2) == 0 {
				ax -= int64(r)
			}
			axv = append(axv, ax)
		}
		dt := moveDTypes[trial%len(moveDTypes)]
		idt := []tensor.DType{tensor.Int64, tensor.Int32}[trial%2]
		x := randTensor(rng, dt, shape...)
		pos := make([][]int, r)
		for i := range pos {
			pos[i] = refSlicePositions(0, int64(shape[i]), 1, shape[i])
		}
		for i, a := range axes {
			pos[a] = refSlicePositions(starts[i], ends[i], steps[i], shape[a])
		}
		name := fmt.Sprintf("%v/starts%v/ends%v/axes%v/steps%v", shape, starts, ends, axv, steps)
		t.Run(name, func(t *testing.T) {
			y := mustRun(t, node("Slice", 5, 1), 13, x, ints64(idt, starts...), ints64(idt, ends...), ints64(idt, axv...), ints64(idt, steps...))[0]
			for i, p := range pos {
				if y.Shape()[i] != len(p) {
					t.Fatalf("shape %v, want dim %d = %d", y.Shape(), i, len(p))
				}
			}
			checkMap(t, y, x, func(c []int) int {
				ic := make([]int, len(c))
				for i, v := range c {
					ic[i] = pos[i][v]
				}
				return flatIndex(ic, shape)
			}, "")
		})
	}
	t.Run("opset1-attrs", func(t *testing.T) {
		x := randTensor(rng, tensor.Float32, 4, 5)
		n := node("Slice", 1, 1, graph.AInts("starts", 1, -2), graph.AInts("ends", 3, 1000), graph.AInts("axes", 0, 1))
		y := mustRun(t, n, 9, x)[0]
		if !tensor.SameShape(y.Shape(), []int{2, 2}) {
			t.Fatalf("shape %v, want [2 2]", y.Shape())
		}
		checkMap(t, y, x, func(c []int) int { return (c[0]+1)*5 + c[1] + 3 }, "")
	})
	t.Run("zero-step", func(t *testing.T) {
		x := randTensor(rng, tensor.Float32, 4)
		_, err := runNode(node("Slice", 5, 1), 13, x, ints64(tensor.Int64, 0), ints64(tensor.Int64, 2), ints64(tensor.Int64, 0), ints64(tensor.Int64, 0))
		if err == nil {
			t.Fatal("a zero step was accepted")
		}
	})
}

// TestSliceGradAdjoint checks <Slice(x), y> == <x, SliceGrad(y)>: SliceGrad
// is the transpose of the linear map Slice, so both sides sum the same
// products; float64 sums of < 300 terms of size < 1 agree to 1e-12.
func TestSliceGradAdjoint(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for trial := 0; trial < 30; trial++ {
		r := 1 + rng.Intn(3)
		shape := randShape(rng, r, 6)
		var starts, ends, axes, steps []int64
		for a := 0; a < r; a++ {
			if rng.Intn(3) == 0 {
				continue
			}
			d := int64(shape[a])
			starts = append(starts, rng.Int63n(2*d+1)-d)
			ends = append(ends, rng.Int63n(2*d+3)-d-1)
			st := 1 + rng.Int63n(2)
			if rng.Intn(2) == 0 {
				st = -st
			}
			steps = append(steps, st)
			axes = append(axes, int64(a))
		}
		x := randTensor(rng, tensor.Float64, shape...)
		sx := mustRun(t, node("Slice", 5, 1), 13, x, ints64(tensor.Int64, starts...), ints64(tensor.Int64, ends...), ints64(tensor.Int64, axes...), ints64(tensor.Int64, steps...))[0]
		y := randTensor(rng, tensor.Float64, sx.Shape()...)
		sh := make([]int64, r)
		for i, d := range shape {
			sh[i] = int64(d)
		}
		gn := node("SliceGrad", 6, 1)
		gn.Domain = graph.DomainGotrain
		gy := mustRun(t, gn, 1, y, ints64(tensor.Int64, sh...), ints64(tensor.Int64, starts...), ints64(tensor.Int64, ends...), ints64(tensor.Int64, axes...), ints64(tensor.Int64, steps...))[0]
		if !tensor.SameShape(gy.Shape(), shape) {
			t.Fatalf("SliceGrad shape %v, want %v", gy.Shape(), shape)
		}
		lhs, rhs := dot64(sx, y), dot64(x, gy)
		if d := lhs - rhs; d > 1e-12 || d < -1e-12 {
			t.Fatalf("%v starts %v ends %v steps %v: <Slice x, y> = %v but <x, SliceGrad y> = %v", shape, starts, ends, steps, lhs, rhs)
		}
	}
}

func dot64(a, b *tensor.Tensor) float64 {
	s := 0.0
	for i, v := range a.Float64s() {
		s += v * b.Float64s()[i]
	}
	return s
}

func TestConcatSplit(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for trial := 0; trial < 24; trial++ {
		r := 1 + rng.Intn(4)
		shape := randShape(rng, r, 5)
		axis := rng.Intn(r)
		nparts := 1 + rng.Intn(4)
		sizes := make([]int64, nparts)
		total := 0
		for i := range sizes {
			sizes[i] = int64(rng.Intn(4)) // 0-size parts included
			total += int(sizes[i])
		}
		shape[axis] = total
		dt := moveDTypes[trial%len(moveDTypes)]
		x := randTensor(rng, dt, shape...)
		name := fmt.Sprintf("%v/axis%d/split%v/%v", shape, axis, sizes, dt)
		t.Run(name, func(t *testing.T) {
			ax := int64(axis)
			if trial%2 == 1 {
				ax -= int64(r)
			}
			var parts []*tensor.Tensor
			if trial%3 == 0 {
				parts = mustRun(t, node("Split", 1, nparts, graph.AInt("axis", ax), graph.AInts("split", sizes...)), 11, x)
			} else {
				parts = mustRun(t, node("Split", 2, nparts, graph.AInt("axis", ax)), 13, x, ints64(tensor.Int64, sizes...))
			}
			off := 0
			for i, p := range parts {
				if p.Shape()[axis] != int(sizes[i]) {
					t.Fatalf("part %d has shape %v, want %d along axis %d", i, p.Shape(), sizes[i], axis)
				}
				o := off
				checkMap(t, p, x, func(c []int) int {
					ic := append([]int{}, c...)
					ic[axis] += o
					return flatIndex(ic, shape)
				}, "")
				off += int(sizes[i])
			}
			y := mustRun(t, node("Concat", nparts, 1, graph.AInt("axis", ax)), 13, parts...)[0]
			checkMap(t, y, x, func(c []int) int { return flatIndex(c, shape) }, "")
		})
	}
	// num_outputs (opset 18) splits unevenly with a smaller last part.
	x := randTensor(rng, tensor.Float32, 2, 7)
	parts := mustRun(t, node("Split", 1, 3, graph.AInt("axis", 1), graph.AInt("num_outputs", 3)), 18, x)
	for i, want := range []int{3, 3, 1} {
		if parts[i].Shape()[1] != want {
			t.Fatalf("num_outputs=3 of 7: part %d has %v, want %d", i, parts[i].Shape(), want)
		}
	}
	if _, err := runNode(node("Split", 1, 3, graph.AInt("axis", 1)), 13, x); err == nil {
		t.Fatal("splitting 7 into 3 equal parts before opset 18 was accepted")
	}
}

func TestExpandTile(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for trial := 0; trial < 24; trial++ {
		r := 1 + rng.Intn(4)
		shape := randShape(rng, r, 4)
		dt := moveDTypes[trial%len(moveDTypes)]
		x := randTensor(rng, dt, shape...)
		// Expand to a shape with extra leading dims where size-1 dims grow.
		extra := rng.Intn(2)
		target := make([]int64, extra+r)
		for i := 0; i < extra; i++ {
			target[i] = int64(1 + rng.Intn(3))
		}
		for i, d := range shape {
			target[extra+i] = int64(d)
			if d == 1 {
				target[extra+i] = int64(1 + rng.Intn(4))
			} else if rng.Intn(3) == 0 {
				target[extra+i] = 1 // 1 in the shape keeps the input dim
			}
		}
		reps := make([]int64, r)
		for i := range reps {
			reps[i] = int64(rng.Intn(4))
		}
		t.Run(fmt.Sprintf("%v/expand%v/tile%v/%v", shape, target, reps, dt), func(t *testing.T) {
			y := mustRun(t, node("Expand", 2, 1), 13, x, ints64(tensor.Int64, target...))[0]
			if len(y.Shape()) != len(target) {
				t.Fatalf("Expand gave shape %v for target %v", y.Shape(), target)
			}
			checkMap(t, y, x, func(c []int) int {
				ic := make([]int, r)
				for i := range ic {
					if shape[i] != 1 {
						ic[i] = c[extra+i]
					}
				}
				return flatIndex(ic, shape)
			}, "")
			z := mustRun(t, node("Tile", 2, 1), 13, x, ints64(tensor.Int64, reps...))[0]
			for i, d := range shape {
				if z.Shape()[i] != d*int(reps[i]) {
					t.Fatalf("Tile gave shape %v", z.Shape())
				}
			}
			checkMap(t, z, x, func(c []int) int {
				ic := make([]int, r)
				for i := range ic {
					ic[i] = c[i] % shape[i]
				}
				return flatIndex(ic, shape)
			}, "")
		})
	}
	if _, err := runNode(node("Expand", 2, 1), 13, randTensor(rng, tensor.Float32, 3), ints64(tensor.Int64, 2)); err == nil {
		t.Fatal("Expand of [3] to [2] was accepted")
	}
}

func TestShapeSizeTrilu(t *testing.T) {
	x := tensor.New(tensor.Float32, 2, 3, 4, 5)
	for _, c := range []struct {
		start, end int64
		want       []int64
	}{{0, 4, []int64{2, 3, 4, 5}}, {1, -1, []int64{3, 4}}, {-10, 10, []int64{2, 3, 4, 5}}, {3, 1, []int64{}}} {
		y := mustRun(t, node("Shape", 1, 1, graph.AInt("start", c.start), graph.AInt("end", c.end)), 15, x)[0]
		if fmt.Sprint(y.Int64s()) != fmt.Sprint(c.want) {
			t.Errorf("Shape start %d end %d: got %v, want %v", c.start, c.end, y.Int64s(), c.want)
		}
	}
	if s := mustRun(t, node("Size", 1, 1), 13, x)[0]; s.Int64s()[0] != 120 {
		t.Errorf("Size = %v, want 120", s.Int64s())
	}
	rng := rand.New(rand.NewSource(6))
	for _, upper := range []int64{0, 1} {
		for _, k := range []int64{-5, -1, 0, 2, 7} {
			x := randTensor(rng, tensor.Float32, 2, 4, 6)
			y := mustRun(t, node("Trilu", 2, 1, graph.AInt("upper", upper)), 14, x, tensor.Scalar(k))[0]
			checkMap(t, y, x, func(c []int) int {
				i, j := int64(c[1]), int64(c[2])
				if (upper == 1 && j >= i+k) || (upper == 0 && j <= i+k) {
					return flatIndex(c, x.Shape())
				}
				return -1
			}, "0")
		}
	}
}

// TestViewInference checks the shapes the executor gives the view ops,
// which have no kernel.
func TestViewInference(t *testing.T) {
	x := graph.TypeOf(tensor.New(tensor.Float32, 2, 3, 4))
	cases := []struct {
		n     *graph.Node
		opset int64
		in    []*graph.Type
		want  string
	}{
		{node("Reshape", 2, 1), 13, []*graph.Type{x, graph.TypeOf(ints64(tensor.Int64, 0, -1))}, "float32[2,12]"},
		{node("Reshape", 2, 1, graph.AInt("allowzero", 1)), 14, []*graph.Type{graph.TypeOf(tensor.New(tensor.Float32, 0, 3)), graph.TypeOf(ints64(tensor.Int64, 3, 0))}, "float32[3,0]"},
		{node("Flatten", 1, 1, graph.AInt("axis", -1)), 13, []*graph.Type{x}, "float32[6,4]"},
		{node("Flatten", 1, 1, graph.AInt("axis", 0)), 13, []*graph.Type{x}, "float32[1,24]"},
		{node("Squeeze", 2, 1), 13, []*graph.Type{graph.TypeOf(tensor.New(tensor.Float32, 1, 3, 1)), graph.TypeOf(ints64(tensor.Int64, -1))}, "float32[1,3]"},
		{node("Squeeze", 1, 1), 11, []*graph.Type{graph.TypeOf(tensor.New(tensor.Float32, 1, 3, 1))}, "float32[3]"},
		{node("Unsqueeze", 1, 1, graph.AInts("axes", 0, 4)), 11, []*graph.Type{x}, "float32[1,2,3,4,1]"},
		{node("Unsqueeze", 2, 1), 13, []*graph.Type{x, graph.TypeOf(ints64(tensor.Int64, -1, 1))}, "float32[2,1,3,4,1]"},
	}
	for _, c := range cases {
		outs, err := graph.Lookup("", c.n.OpType).Infer(c.n, c.in, c.opset)
		if err != nil {
			t.Errorf("%s: %v", c.n.OpType, err)
			continue
		}
		if got := outs[0].String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.n.OpType, got, c.want)
		}
		if !HasKernel("", c.n.OpType) {
			t.Errorf("%s has no registration", c.n.OpType)
		}
	}
}

// BenchmarkTranspose measures the blocked path on a 1024x1024 float32
// matrix and an NCHW -> NHWC activation (32x32x32x32).
func BenchmarkTranspose(b *testing.B) {
	for _, c := range []struct {
		shape []int
		perm  []int64
	}{{[]int{1024, 1024}, []int64{1, 0}}, {[]int{1000, 1000}, []int64{1, 0}}, {[]int{32, 32, 32, 32}, []int64{0, 2, 3, 1}}, {[]int{4, 1 << 18}, []int64{0, 1}}} {
		b.Run(fmt.Sprint(c.shape, c.perm), func(b *testing.B) {
			x := tensor.New(tensor.Float32, c.shape...)
			_, k, err := prepNode(node("Transpose", 1, 1, graph.AInts("perm", c.perm...)), 13, []*tensor.Tensor{x})
			if err != nil {
				b.Fatal(err)
			}
			out := []*tensor.Tensor{tensor.New(tensor.Float32, x.Len())}
			b.SetBytes(int64(8 * x.Len()))
			for i := 0; i < b.N; i++ {
				if err := k([]*tensor.Tensor{x}, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
