package models

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
)

// TestBuild builds every model for MNIST- and CIFAR-shaped input and checks
// the output shape and that the graph turns into a training graph.
func TestBuild(t *testing.T) {
	for _, name := range Names() {
		for _, in := range [][]int{{1, 28, 28}, {3, 32, 32}} {
			m, err := Build(name, Options{Input: in, Classes: 10, Dropout: 0.25})
			if err != nil {
				t.Fatalf("%s %v: %v", name, in, err)
			}
			out := m.Graph.Outputs[0]
			if len(out.Shape) != 2 || out.Shape[1].Size != 10 || out.Shape[0].Param != "N" {
				t.Errorf("%s %v: output shape %v, want [N,10]", name, in, out.Shape)
			}
			if _, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy}); err != nil {
				t.Errorf("%s %v: training graph: %v", name, in, err)
			}
		}
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name string
		o    Options
	}{
		{"nosuch", Options{Input: []int{1, 28, 28}, Classes: 10}},
		{"cnn", Options{Input: []int{28, 28}, Classes: 10}},
		{"cnn", Options{Input: []int{1, 28, 28}, Classes: 1}},
		{"cnn", Options{Input: []int{1, 4, 4}, Classes: 10}},
		{"cnn", Options{Input: []int{1, 28, 28}, Classes: 10, Dropout: 1}},
	}
	for _, c := range cases {
		if _, err := Build(c.name, c.o); err == nil {
			t.Errorf("Build(%q, %+v) succeeded, want an error", c.name, c.o)
		}
	}
}
