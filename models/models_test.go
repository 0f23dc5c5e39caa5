package models

import (
	"errors"
	"math"
	"slices"
	"strings"
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
		{"cnn", Options{Input: []int{1, 28, 28}, Classes: 10, Dropout: math.NaN()}},
		{"cnn", Options{Input: []int{1, 28, 28}, Classes: 10, Dropout: -0.5}},
		{"cnn", Options{Input: []int{784}, Classes: 10}}, // convolutions need CxHxW
		{"mlp", Options{Input: []int{0}, Classes: 10}},
	}
	for _, c := range cases {
		if _, err := Build(c.name, c.o); err == nil {
			t.Errorf("Build(%q, %+v) succeeded, want an error", c.name, c.o)
		}
	}
}

// TestFlatInput: the MLP built for a feature count takes [N, features]
// and has the initializers of the MLP built for a 1x28x28 image.
func TestFlatInput(t *testing.T) {
	flat, err := Build("mlp", Options{Input: []int{784}, Classes: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	in := flat.Graph.Inputs[0]
	if len(in.Shape) != 2 || in.Shape[1].Size != 784 {
		t.Fatalf("input shape %v, want [N,784]", in.Shape)
	}
	image, err := Build("mlp", Options{Input: []int{1, 28, 28}, Classes: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range image.Graph.InitializerNames() {
		a, b := image.Graph.Initializer(name), flat.Graph.Initializer(name)
		if b == nil || !slices.Equal(a.Float32s(), b.Float32s()) {
			t.Errorf("initializer %s differs between the image and the flat MLP", name)
		}
	}
	if !TakesFlatInput("mlp") || TakesFlatInput("cnn") {
		t.Error("TakesFlatInput: want mlp only")
	}
}

// TestTooSmall: an input too small for a model names the layer that runs
// out of pixels and wraps ErrInputTooSmall.
func TestTooSmall(t *testing.T) {
	for _, c := range []struct {
		name  string
		input []int
		layer string
	}{
		{"cnn", []int{1, 8, 8}, "pool2 (after conv2)"},
		{"cnn", []int{1, 2, 2}, "conv1"},
		{"lenet5", []int{1, 8, 8}, "conv2"},
	} {
		_, err := Build(c.name, Options{Input: c.input, Classes: 10})
		if !errors.Is(err, ErrInputTooSmall) || !strings.Contains(err.Error(), "layer "+c.layer) {
			t.Errorf("%s on %v: %v; want ErrInputTooSmall naming layer %s", c.name, c.input, err, c.layer)
		}
	}
}
