package graph

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/tensor"
)

// Graphs whose shapes come out huge, from constants, attributes or
// declared dims: inference refuses them with an error naming the node,
// before anything of that size is allocated (folded values included).
func TestHugeShapesAreRefused(t *testing.T) {
	i64 := func(v ...int64) *tensor.Tensor { return tensor.MustFromSlice(v, len(v)) }
	s64 := func(v int64) *tensor.Tensor { return tensor.Scalar(v) }
	cases := []struct {
		name  string
		build func(b *Builder) string
		want  []string // besides the node's name; nil: a memory-limit error
	}{
		{"Range of 2^40", func(b *Builder) string {
			return b.Op("Range", b.Const(s64(0)), b.Const(s64(1<<40)), b.Const(s64(1))).Named("r").Out()
		}, []string{`node "r" (Range)`, "needs 8.0 TiB"}},
		{"Range past an int64", func(b *Builder) string {
			return b.Op("Range", b.Const(s64(math.MinInt64)), b.Const(s64(math.MaxInt64)), b.Const(s64(1))).Named("r").Out()
		}, []string{`node "r" (Range)`, "longer than an int64 counts"}},
		{"Range of floats", func(b *Builder) string {
			return b.Op("Range", b.Const(tensor.Scalar(float32(0))), b.Const(tensor.Scalar(float32(1e30))), b.Const(tensor.Scalar(float32(1)))).Named("r").Out()
		}, []string{`node "r" (Range)`, "not a valid length"}},
		{"OneHot of 10^12 classes", func(b *Builder) string {
			return b.Op("OneHot", b.Const(i64(0, 1, 2)), b.Const(s64(1e12)), b.Const(tensor.MustFromSlice([]float32{0, 1}, 2))).Named("h").Out()
		}, []string{`node "h" (OneHot)`, "needs 11 TiB"}},
		{"OneHot of NaN classes", func(b *Builder) string {
			return b.Op("OneHot", b.Const(i64(0)), b.Const(tensor.Scalar(float32(math.NaN()))), b.Const(tensor.MustFromSlice([]float32{0, 1}, 2))).Named("h").Out()
		}, []string{`node "h" (OneHot)`, "expected a positive class count"}},
		{"ConstantOfShape of 2^40", func(b *Builder) string {
			return b.Op("ConstantOfShape", b.Const(i64(1<<20, 1<<20))).Named("c").Out()
		}, []string{`node "c" (ConstantOfShape)`, "needs 4.0 TiB"}},
		{"ConstantOfShape past an int64", func(b *Builder) string {
			return b.Op("ConstantOfShape", b.Const(i64(1<<40, 1<<40))).Named("c").Out()
		}, []string{`node "c" (ConstantOfShape)`, "overflows"}},
		{"Pad by 2^40", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(2), D(3))
			return b.Op("Pad", x, b.Const(i64(0, 1<<40, 0, 0))).Named("p").Out()
		}, []string{`node "p" (Pad)`, "needs 8.0 TiB"}},
		{"Pad past an int64", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(2), D(3))
			return b.Op("Pad", x, b.Const(i64(0, math.MaxInt64, 0, 1))).Named("p").Out()
		}, []string{`node "p" (Pad)`, "longer than an int64 counts"}},
		{"Tile past an int64", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(1<<20), D(3))
			return b.Op("Tile", x, b.Const(i64(1<<50, 1))).Named("t").Out()
		}, []string{`node "t" (Tile)`, "longer than an int64 counts"}},
		{"Tile to 16 GiB", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(1024), D(4))
			return b.Op("Tile", x, b.Const(i64(1<<20, 1))).Named("t").Out()
		}, []string{`node "t" (Tile)`, "needs 16 GiB"}},
		{"Expand to 2^40", func(b *Builder) string {
			return b.Op("Expand", b.Const(tensor.Scalar(float32(1))), b.Const(i64(1<<40))).Named("e").Out()
		}, []string{`node "e" (Expand)`, "needs 4.0 TiB"}},
		{"Reshape past an int64", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(6))
			return b.Op("Reshape", x, b.Const(i64(1<<32+1, 1<<32-1, -1))).Named("r").Out()
		}, []string{`node "r" (Reshape)`, "more elements than an int64 counts"}},
		{"Concat past an int64", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(1<<62))
			return b.Op("Concat", x, x).With(AInt("axis", 0)).Named("c").Out()
		}, []string{`node "c" (Concat)`, "add up past an int64"}},
		{"Conv with pads of 2^40", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(1), D(1), D(4), D(4))
			w := b.Param("w", tensor.New(tensor.Float32, 1, 1, 3, 3))
			return b.Op("Conv", x, w).With(AInts("pads", 1<<40, 0, 0, 0)).Named("conv").Out()
		}, []string{`node "conv" (Conv)`, "beyond ±2^30"}},
		{"MaxPool with strides of 2^62", func(b *Builder) string {
			x := b.Input("x", tensor.Float32, D(1), D(1), D(4), D(4))
			return b.Op("MaxPool", x).With(AInts("kernel_shape", 2, 2), AInts("strides", 1<<62, 1)).Named("pool").Out()
		}, []string{`node "pool" (MaxPool)`, "beyond ±2^30"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			memtest.Refused(t, func() error {
				b := NewBuilder("g", 17)
				b.Output(c.build(b))
				_, err := b.Model()
				return err
			}, c.want...)
		})
	}
}

// A shape input whose value is unknown but whose declared length is huge
// leaves the rank unknown instead of building a shape of that many dims.
func TestHugeDeclaredRank(t *testing.T) {
	b := NewBuilder("g", 17)
	x := b.Input("x", tensor.Float32, D(2), D(3))
	shape := b.Input("shape", tensor.Int64, D(1<<40))
	for _, op := range []string{"Reshape", "Expand"} {
		b.Output(b.Op(op, x, shape).Named(op).Out())
	}
	b.Output(b.Op("ConstantOfShape", shape).Named("c").Out())
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	types, err := InferShapes(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Reshape", "Expand", "c"} {
		if types[v].RankKnown {
			t.Errorf("%s: rank %d from a declared length of 2^40", v, len(types[v].Shape))
		}
	}
}

// A model file is held whole while it is parsed: its size is checked first.
func TestLoadHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.onnx")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	memtest.Refused(t, func() error { _, err := Load(p); return err })
}

// TestLoadEndlessFile: a model path that is not a regular file (a pipe,
// /dev/stdin, /dev/zero) has no size to check beforehand; it is read up
// to the memory limit and refused past it, not read until the process
// runs out of memory.
func TestLoadEndlessFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero on this system")
	}
	memtest.Refused(t, func() error { _, err := Load("/dev/zero"); return err }, "/dev/zero")
}
