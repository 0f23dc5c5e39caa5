package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestInspectRunnable: inspect exits 0 only on models the CPU backend can
// run; a kernel that refuses an op's dtype makes it exit 1 naming the node,
// the op and the dtype (an op without any kernel: TestUnsupportedOp).
// --no-check describes the model without the verdict.
func TestInspectRunnable(t *testing.T) {
	dir := t.TempDir()
	conv := func(dt tensor.DType) string {
		b := graph.NewBuilder("conv", 17)
		x := b.Input("x", dt, graph.Sym("N"), graph.D(1), graph.D(5), graph.D(5))
		y := b.Op("Conv", x, b.Param("w", tensor.New(dt, 2, 1, 3, 3))).Out()
		b.Output(y)
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, dt.String()+".onnx")
		if err := graph.Save(m, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := gotrain(t, "inspect", "--model", conv(tensor.Float32))
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "gotrain can run every op of this model") {
		t.Errorf("float32 Conv:\n%s", r.stdout)
	}
	f16 := conv(tensor.Float16)
	r = gotrain(t, "inspect", "--model", f16)
	r.expect(t, 1, "cannot run this model", "Conv", "float16")
	if !strings.Contains(r.stdout, "parameters: 18") {
		t.Errorf("the description is not printed before the verdict:\n%s", r.stdout)
	}
	r = gotrain(t, "inspect", "--model", f16, "--no-check")
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "not checked") {
		t.Errorf("--no-check:\n%s", r.stdout)
	}
}
