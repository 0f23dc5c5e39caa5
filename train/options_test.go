package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/tensor"
)

// TestSumReduction checks that a summed loss gives N times the mean loss
// and N times its gradients (float32, relative 1e-5: the two graphs divide
// by N at different points).
func TestSumReduction(t *testing.T) {
	m, err := models.Build("mlp", models.Options{Input: []int{1, 6, 6}, Classes: 4, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	x := tensor.New(tensor.Float32, n, 1, 6, 6)
	for i := range x.Float32s() {
		x.Float32s()[i] = float32(math.Sin(float64(i)))
	}
	y := tensor.MustFromSlice([]int64{0, 1, 2, 3, 3, 2, 1, 0}, n)
	b := cpu.New(cpu.Options{})
	run := func(red string) (map[string]*tensor.Tensor, *graph.Training) {
		tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy, Reduction: red})
		if err != nil {
			t.Fatal(err)
		}
		exe, err := b.Compile(tr.Model, b.Devices()[0], backend.CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		feeds := map[string]*tensor.Tensor{"input": x, tr.Label: y}
		for _, p := range tr.Params {
			feeds[p] = m.Graph.Initializer(p)
		}
		out, err := backend.RunHost(context.Background(), b, exe, b.Devices()[0], feeds)
		if err != nil {
			t.Fatal(err)
		}
		return out, tr
	}
	mean, tm := run("mean")
	sum, ts := run("sum")
	check := func(what string, a, s *tensor.Tensor) {
		for i := 0; i < a.Len(); i++ {
			want := n * a.AsFloat64(i)
			if d := math.Abs(s.AsFloat64(i) - want); !(d <= 1e-5*math.Abs(want)+1e-7) {
				t.Fatalf("%s[%d]: sum %v, n*mean %v", what, i, s.AsFloat64(i), want)
			}
		}
	}
	check("loss", mean[tm.Loss], sum[ts.Loss])
	for i, p := range tm.Params {
		check("grad "+p, mean[tm.Grads[i]], sum[ts.Grads[i]])
	}
	if _, err := graph.TrainingGraph(m, graph.TrainingOptions{Reduction: "median"}); err == nil {
		t.Error("reduction median was accepted")
	}
}
