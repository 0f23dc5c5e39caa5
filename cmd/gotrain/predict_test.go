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
	argMax := saveModel(t, dir, "argmax", func(b *graph.Builder) {
		x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(3))
		b.Output(b.Op("ArgMax", x).With(graph.AInt("axis", 1)).Named("y").Out())
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
		{"integer output", argMax, three, 1, []string{`output "y"`, "int64", "gotrain run"}},
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

// TestEvalOutputs: eval reads class scores [N, K] by their argmax, and one
// score per sample ([N] or [N, 1], a binary classifier's logit or, after a
// Sigmoid, its probability) by its sign or 0.5; any other output is an
// error naming it, not a panic or an accuracy computed from the wrong
// numbers.
func TestEvalOutputs(t *testing.T) {
	dir := t.TempDir()
	const n = 40
	x := make([]float32, n*64)
	y := make([]int64, n)
	for i := range n {
		v := float32(i%2)*0.5 + 0.2 // sample means 0.2 and 0.7
		for j := range 64 {
			x[i*64+j] = v
		}
		y[i] = int64(i % 2)
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	writeNPY(t, xp, x, n, 1, 8, 8)
	writeNPY(t, yp, y, n)
	ds := xp + "," + yp
	input := func(b *graph.Builder) string {
		return b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(1), graph.D(8), graph.D(8))
	}
	half := func(b *graph.Builder) string { return b.Const(tensor.MustFromSlice([]float32{0.5}, 1)) }
	// mean(x) - 0.5: positive for class 1.
	logit := saveModel(t, dir, "logit", func(b *graph.Builder) {
		m := b.Op("ReduceMean", input(b)).With(graph.AInts("axes", 1, 2, 3), graph.AInt("keepdims", 0)).Out()
		b.Output(b.Op("Sub", m, half(b)).Named("y").Out())
	})
	prob := saveModel(t, dir, "prob", func(b *graph.Builder) {
		m := b.Op("ReduceMean", input(b)).With(graph.AInts("axes", 2, 3), graph.AInt("keepdims", 0)).Out() // [N, 1]
		b.Output(b.Op("Sigmoid", b.Op("Sub", m, half(b)).Out()).Named("y").Out())
	})
	scalar := saveModel(t, dir, "scalar", func(b *graph.Builder) {
		b.Output(b.Op("ReduceMean", input(b)).With(graph.AInt("keepdims", 0)).Named("y").Out())
	})
	image := saveModel(t, dir, "image", func(b *graph.Builder) {
		b.Output(b.Op("Identity", input(b)).Named("y").Out())
	})
	for _, m := range []string{logit, prob} {
		r := gotrain(t, "eval", "--model", m, "--data", ds, "--scale", "none")
		r.expect(t, 0)
		if !strings.Contains(r.stdout, "accuracy 1.0000") {
			t.Errorf("eval of %s:\n%s", filepath.Base(m), r.stdout)
		}
	}
	// predict gives a binary classifier's two probabilities: the sigmoid of
	// its logit (0.7 - 0.5 = 0.2 here: 0.5498) or its Sigmoid's output.
	one := filepath.Join(dir, "one.npy")
	writeNPY(t, one, x[64:128], 1, 1, 8, 8)
	for _, c := range []struct{ model, header string }{
		{logit, `# class probabilities: sigmoid of the model's output "y"`},
		{prob, `# class probabilities: the model's output "y" (it ends in Sigmoid)`},
	} {
		r := gotrain(t, "predict", "--model", c.model, "--scale", "none", one)
		r.expect(t, 0)
		if !strings.Contains(r.stdout, c.header) || !strings.Contains(r.stdout, one+": 1 (0.5498), 0 (0.4502)") {
			t.Errorf("predict with %s:\n%s", filepath.Base(c.model), r.stdout)
		}
	}
	// A binary classifier's accuracy on labels other than 0 and 1 means nothing.
	y[3] = 2
	writeNPY(t, yp, y, n)
	gotrain(t, "eval", "--model", logit, "--data", ds, "--scale", "none").expect(t, 1, "y.npy", "label 2 of sample 3", "one score per sample")
	gotrain(t, "eval", "--model", scalar, "--data", ds, "--scale", "none").expect(t, 1, `output "y"`, "class scores")
	gotrain(t, "eval", "--model", image, "--data", ds, "--scale", "none").expect(t, 1, `output "y"`, "class scores")
}
