package train_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// TestLabelsOutOfRange: a label the loss's encoding cannot hold (a class
// the output does not score, or a label other than 0 and 1 for a single
// logit under bce) stops Fit before any step, naming the data, the sample
// and the label; labels the encoding holds train.
func TestLabelsOutOfRange(t *testing.T) {
	linear := func(outputs int) *graph.Model {
		b := graph.NewBuilder("linear", 17)
		x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(4))
		w := tensor.MustFromSlice(make([]float32, outputs*4), outputs, 4)
		y := b.Op("Gemm", x, b.Param("w", w), b.Param("b", tensor.New(tensor.Float32, outputs))).With(graph.AInt("transB", 1)).Out()
		b.Output(y)
		m, err := b.Model()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	set := func(labels ...int64) *data.Dataset {
		d, err := data.NewDataset(make([]float32, 4*len(labels)), labels, len(labels), 1, 1, 4, data.NCHW, 4, "labels.npy")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, c := range []struct {
		loss    graph.Loss
		outputs int
		labels  []int64
		want    string // "" trains
	}{
		{graph.CrossEntropy, 3, []int64{0, 1, 2, 3}, "sample 3 has label 3, out of range for the model's 3 classes"},
		{graph.MSE, 3, []int64{0, 3, 1, 2}, "sample 1 has label 3"},
		{graph.CrossEntropyOneHot, 3, []int64{2, 1, 0, 3}, "sample 3 has label 3"},
		{graph.BCEWithLogits, 1, []int64{0, 1, 2, 1}, "sample 2 has label 2, out of range for the model's 2 classes"},
		{graph.BCEWithLogits, 1, []int64{0, 1, 1, 0}, ""},
		{graph.MSE, 1, []int64{0, 3, 2, 1}, ""}, // a regression on the label's value
		{graph.L1, 4, []int64{0, 3, 2, 1}, ""},
	} {
		_, err := train.Fit(context.Background(), linear(c.outputs), set(c.labels...), nil, train.Config{
			Epochs: 1, BatchSize: 2, Loss: c.loss, Backend: cpu.New(cpu.Options{}), Optim: optim.Config{Name: "sgd", LR: 0.1}})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s, %d outputs, labels %v: %v", c.loss, c.outputs, c.labels, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "labels.npy")):
			t.Errorf("%s, %d outputs, labels %v: error %v; want one naming labels.npy and %q", c.loss, c.outputs, c.labels, err, c.want)
		}
	}
}
