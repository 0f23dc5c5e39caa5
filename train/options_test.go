package train_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
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

// TestTopKOption: top-k accuracy over more classes than the model scores
// would always be 1, and a negative k means nothing: NewTrainer refuses
// both, naming them.
func TestTopKOption(t *testing.T) {
	m, err := models.Build("mlp", models.Options{Input: []int{1, 6, 6}, Classes: 4, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(cpu.Options{})
	for _, c := range []struct {
		k    int
		want string // "" when accepted
	}{
		{0, ""}, {1, ""}, {4, ""},
		{5, "top-k 5: the model scores 4 classes"},
		{-1, "top-k -1: must not be negative"},
	} {
		_, err := train.NewTrainer(m, train.Config{Epochs: 1, BatchSize: 4, Backend: b, TopK: c.k, Optim: optim.Config{Name: "sgd", LR: 0.1}})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("TopK %d: %v, want %q", c.k, err, c.want)
		}
	}
}
