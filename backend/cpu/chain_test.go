package cpu_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// viewChain is a graph of n view ops in a chain (Identity, or Reshape to
// alternating shapes) between a ReLU of the input and a ReLU of the end.
func viewChain(tb testing.TB, n int, op string) *graph.Model {
	tb.Helper()
	b := graph.NewBuilder("chain", 17)
	v := b.Op("Relu", b.Input("x", tensor.Float32, graph.D(4), graph.D(8))).Out()
	shapes := [2]string{b.Param("s0", tensor.MustFromSlice([]int64{8, 4}, 2)), b.Param("s1", tensor.MustFromSlice([]int64{4, 8}, 2))}
	for i := 0; i < n; i++ {
		if op == "Reshape" {
			v = b.Op("Reshape", v, shapes[i%2]).Out()
		} else {
			v = b.Op(op, v).Out()
		}
	}
	b.Output(b.Op("Relu", v).Out())
	m, err := b.Model()
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkPlanLongChain compiles (fuses, orders, plans and materializes)
// a chain of 100,000 view ops.
func BenchmarkPlanLongChain(b *testing.B) {
	for _, op := range []string{"Identity", "Reshape"} {
		b.Run(op, func(b *testing.B) {
			m := viewChain(b, 100_000, op)
			be := cpu.New(cpu.Options{Threads: 1})
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := be.Compile(m, be.Devices()[0], backend.CompileOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLongViewChain runs chains of views end to end: the output is the
// input's ReLU, whatever the length, and a second run allocates nothing.
func TestLongViewChain(t *testing.T) {
	for _, op := range []string{"Identity", "Reshape"} {
		t.Run(op, func(t *testing.T) {
			m := viewChain(t, 20_000, op)
			be := cpu.New(cpu.Options{Threads: 1})
			dev := be.Devices()[0]
			exe, err := be.Compile(m, dev, backend.CompileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.New(tensor.Float32, 4, 8)
			for i := range x.Float32s() {
				x.Float32s()[i] = float32(i - 16)
			}
			in, err := be.Upload(x, dev)
			if err != nil {
				t.Fatal(err)
			}
			feeds := map[string]backend.Buffer{"x": in}
			out, err := exe.Run(context.Background(), feeds)
			if err != nil {
				t.Fatal(err)
			}
			y, err := be.Download(out[exe.Outputs()[0]])
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(y.Shape()) != "[4 8]" {
				t.Fatalf("output shape %v, want [4 8]", y.Shape())
			}
			for i, v := range y.Float32s() {
				if want := max(float32(i-16), 0); v != want {
					t.Fatalf("y[%d] = %v, want %v", i, v, want)
				}
			}
			if a := testing.AllocsPerRun(3, func() { exe.Run(context.Background(), feeds) }); a != 0 {
				t.Errorf("a run allocates %v times", a)
			}
		})
	}
}
