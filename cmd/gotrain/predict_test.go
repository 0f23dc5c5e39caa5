package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// saveModel builds a model with b's nodes and saves it under dir.
func saveModel(t *testing.T, dir, name string, build func(b *graph.Builder)) string {
	t.Helper()
	b := graph.NewBuilder(name, 17)
	build(b)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".onnx")
	if err := graph.Save(m, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPredictOddModels: predict on models it cannot feed as it feeds a
// classifier (no input, several, an integer input, height and width left
// symbolic) says why, naming the model's input, and never panics; an .npy
// sample gives a symbolic dim its size. bench on a model without an input
// says so too.
func TestPredictOddModels(t *testing.T) {
	dir := t.TempDir()
	noInput := saveModel(t, dir, "noinput", func(b *graph.Builder) {
		b.Output(b.Op("Identity", b.Const(tensor.MustFromSlice([]float32{1, 2}, 1, 2))).Named("y").Out())
	})
	twoInputs := saveModel(t, dir, "two", func(b *graph.Builder) {
		x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(3))
		y := b.Input("y", tensor.Float32, graph.Sym("N"), graph.D(3))
		b.Output(b.Op("Add", x, y).Named("z").Out())
	})
	intInput := saveModel(t, dir, "int", func(b *graph.Builder) {
		x := b.Input("x", tensor.Int64, graph.Sym("N"), graph.D(3))
		b.Output(b.Op("Cast", x).With(graph.AInt("to", int64(tensor.Float32))).Named("y").Out())
	})
	// Global average pooling takes any height and width.
	symHW := saveModel(t, dir, "symhw", func(b *graph.Builder) {
		x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(3), graph.Sym("H"), graph.Sym("W"))
		p := b.Op("GlobalAveragePool", x).Out()
		b.Output(b.Op("Flatten", p).Named("y").Out())
	})
	png := filepath.Join(dir, "x.png")
	writePNG(t, png, 5, 4)
	npy := filepath.Join(dir, "x.npy")
	writeNPY(t, npy, []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 1, 3, 2, 2)
	three := filepath.Join(dir, "three.npy")
	writeNPY(t, three, []float32{1, 2, 3}, 3)
	for _, c := range []struct {
		name  string
		model string
		file  string
		code  int
		want  []string
	}{
		{"no input", noInput, npy, 1, []string{"noinput.onnx", "0 inputs", "gotrain run"}},
		{"two inputs", twoInputs, three, 1, []string{"two.onnx", "2 inputs", "gotrain run"}},
		{"integer input", intInput, three, 1, []string{`input "x"`, "int64", "gotrain run"}},
		{"symbolic size, image", symHW, png, 1, []string{"x.png", `input "x"`, "[N,3,H,W]", ".npy"}},
		{"symbolic size, npy with too few dims", symHW, three, 1, []string{"three.npy", "3x?x?"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := gotrain(t, "predict", "--model", c.model, c.file)
			r.expect(t, c.code, c.want...)
		})
	}
	gotrain(t, "bench", "--model", noInput, "--seconds", "0.1").expect(t, 1, "noinput.onnx", "0 inputs")
	r := gotrain(t, "predict", "--model", symHW, npy)
	r.expect(t, 0)
	// The channel means of x.npy are 2.5, 6.5 and 10.5: the last is the
	// largest score by 4, so its softmax is e^4/(1+e^-4+e^4) ~ 0.982.
	if !strings.Contains(r.stdout, npy+": 2 (0.9817)") {
		t.Errorf("predict on an .npy of a symbolic-size model:\n%s", r.stdout)
	}
}
