package cpu_test

import (
	"context"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/memtest"
	"github.com/gotrain/gotrain/tensor"
)

// Shapes that depend on values fed at run time are sized when the node is
// planned, each run: a huge one is refused there with an error naming the
// node, and neither the planner nor the kernel allocates it.
func TestRunTimeHugeShapes(t *testing.T) {
	cases := []struct {
		name  string
		build func(b *graph.Builder) string
		feeds map[string]*tensor.Tensor
		want  string
	}{
		{"Range", func(b *graph.Builder) string {
			return b.Op("Range", b.Const(tensor.Scalar(int64(0))), b.Input("limit", tensor.Int64), b.Const(tensor.Scalar(int64(1)))).Named("r").Out()
		}, map[string]*tensor.Tensor{"limit": tensor.Scalar(int64(1 << 40))}, `node "r" (Range)`},
		{"ConstantOfShape", func(b *graph.Builder) string {
			return b.Op("ConstantOfShape", b.Input("shape", tensor.Int64, graph.D(2))).Named("c").Out()
		}, map[string]*tensor.Tensor{"shape": tensor.MustFromSlice([]int64{1 << 20, 1 << 20}, 2)}, `node "c" (ConstantOfShape)`},
		{"OneHot", func(b *graph.Builder) string {
			return b.Op("OneHot", b.Const(tensor.MustFromSlice([]int64{0, 1}, 2)), b.Input("depth", tensor.Int64),
				b.Const(tensor.MustFromSlice([]float32{0, 1}, 2))).Named("h").Out()
		}, map[string]*tensor.Tensor{"depth": tensor.Scalar(int64(1e12))}, `node "h" (OneHot)`},
		{"Pad", func(b *graph.Builder) string {
			return b.Op("Pad", b.Input("x", tensor.Float32, graph.D(2), graph.D(3)), b.Input("pads", tensor.Int64, graph.D(4))).Named("p").Out()
		}, map[string]*tensor.Tensor{"x": tensor.New(tensor.Float32, 2, 3), "pads": tensor.MustFromSlice([]int64{0, 1 << 40, 0, 0}, 4)}, `node "p" (Pad)`},
		{"Tile", func(b *graph.Builder) string {
			return b.Op("Tile", b.Input("x", tensor.Float32, graph.D(2), graph.D(3)), b.Input("reps", tensor.Int64, graph.D(2))).Named("t").Out()
		}, map[string]*tensor.Tensor{"x": tensor.New(tensor.Float32, 2, 3), "reps": tensor.MustFromSlice([]int64{1 << 20, 1 << 20}, 2)}, `node "t" (Tile)`},
		{"Expand", func(b *graph.Builder) string {
			return b.Op("Expand", b.Input("x", tensor.Float32, graph.D(1)), b.Input("shape", tensor.Int64, graph.D(2))).Named("e").Out()
		}, map[string]*tensor.Tensor{"x": tensor.New(tensor.Float32, 1), "shape": tensor.MustFromSlice([]int64{1 << 20, 1 << 20}, 2)}, `node "e" (Expand)`},
	}
	be := cpu.New(cpu.Options{Threads: 1})
	dev := be.Devices()[0]
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := graph.NewBuilder("g", 17)
			b.Output(c.build(b))
			m, err := b.Model()
			if err != nil {
				t.Fatal(err)
			}
			exe, err := be.Compile(m, dev, backend.CompileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bufs := map[string]backend.Buffer{}
			for k, v := range c.feeds {
				if bufs[k], err = be.Upload(v, dev); err != nil {
					t.Fatal(err)
				}
			}
			memtest.Refused(t, func() error {
				_, err := exe.Run(context.Background(), bufs)
				return err
			}, c.want, "over the memory limit")
		})
	}
}
