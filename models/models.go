// Package models defines architectures in Go that emit ONNX graphs: the
// seed CNN (the Keras MNIST example), an MLP, LeNet-5, ResNet-20 (CIFAR
// style, with BatchNorm) and a small VGG-style net. Each builds for any
// input shape and class count, names its initializers after its layers
// ("conv1.weight", "fc.bias", ...) and initialises them as PyTorch's layers
// do by default: weights and biases uniform in ±1/sqrt(fan_in)
// (kaiming_uniform with a=√5), BatchNorm scale 1, shift 0, running mean 0
// and variance 1. The graphs train on every strategy and export unchanged.
package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Options shape a model.
type Options struct {
	// Input is the sample shape C, H, W. A model that flattens its input
	// first (the MLP) also takes one dim, the feature count: its graph input
	// is then [N, features].
	Input []int
	// Classes is the number of outputs.
	Classes int
	// Seed drives the initialisation.
	Seed uint64
	// Dropout, when > 0, adds Dropout before the classifier.
	Dropout float64
	// Softmax ends the model with a Softmax (the Keras convention); the
	// trainer then trains on its input through the fused loss.
	Softmax bool
}

// Opset is the ai.onnx opset of the graphs models emit.
const Opset = 17

type ctor struct {
	doc   string
	build func(*net, Options) (string, error)
	flat  bool // takes a flat [N, features] input too
}

var zoo = map[string]ctor{
	"cnn":      {"the seed CNN: Conv 32 3x3, ReLU, MaxPool 2, Conv 64 3x3, ReLU, MaxPool 2, Flatten, Dense", buildCNN, false},
	"mlp":      {"MLP 512-256 with ReLU", buildMLP, true},
	"lenet5":   {"LeNet-5: Conv 6 5x5, pool, Conv 16 5x5, pool, Dense 120, 84", buildLeNet, false},
	"resnet20": {"ResNet-20 (CIFAR style, BatchNorm, 3 stages of 3 basic blocks)", buildResNet20, false},
	"vgg":      {"small VGG: 2x(Conv 32) pool 2x(Conv 64) pool, Dense 128, with BatchNorm", buildVGG, false},
}

// ErrInputTooSmall is wrapped by Build's error when a layer's output would
// have no pixels left: the input is too small for the architecture.
var ErrInputTooSmall = errors.New("the input is too small")

// TakesFlatInput says whether the named model accepts a one-dim Input
// (features) as well as C, H, W.
func TakesFlatInput(name string) bool { return zoo[name].flat }

// Names lists the zoo's models.
func Names() []string {
	var out []string
	for k := range zoo {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Describe returns a model's one-line description.
func Describe(name string) string { return zoo[name].doc }

// Build makes the named model.
func Build(name string, o Options) (*graph.Model, error) {
	c, ok := zoo[name]
	if !ok {
		return nil, fmt.Errorf("models: unknown model %q (have %v)", name, Names())
	}
	if len(o.Input) == 1 && !c.flat {
		return nil, fmt.Errorf("models: %s: input shape %v: want C, H, W (only models that flatten their input first take a feature count)", name, o.Input)
	}
	if len(o.Input) != 3 && len(o.Input) != 1 {
		return nil, fmt.Errorf("models: input shape %v: want C, H, W", o.Input)
	}
	for _, d := range o.Input {
		if d <= 0 || d > maxDim {
			return nil, fmt.Errorf("models: input shape %v: dims must be in [1, %d]", o.Input, maxDim)
		}
	}
	if o.Classes < 2 || o.Classes > maxDim {
		return nil, fmt.Errorf("models: %d classes: need between 2 and %d", o.Classes, maxDim)
	}
	if !(o.Dropout >= 0 && o.Dropout < 1) { // NaN included
		return nil, fmt.Errorf("models: dropout %g: must be in [0, 1)", o.Dropout)
	}
	n := &net{b: graph.NewBuilder(name, Opset), rng: rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))}
	if len(o.Input) == 1 {
		// Flat features: Flatten of [N, F] is [N, F], so the graph is the
		// same as for a 1x1xF image.
		n.c, n.h, n.w = 1, 1, o.Input[0]
		n.x = n.b.Input("input", tensor.Float32, graph.Sym("N"), graph.D(int64(o.Input[0])))
	} else {
		n.c, n.h, n.w = o.Input[0], o.Input[1], o.Input[2]
		n.x = n.b.Input("input", tensor.Float32, graph.Sym("N"), graph.D(int64(o.Input[0])), graph.D(int64(o.Input[1])), graph.D(int64(o.Input[2])))
	}
	out, err := c.build(n, o)
	if err == nil {
		err = n.err
	}
	if err != nil {
		return nil, fmt.Errorf("models: %s for input %v and %d classes: %w", name, o.Input, o.Classes, err)
	}
	if o.Softmax {
		out = n.b.Op("Softmax", out).With(graph.AInt("axis", -1)).Named("probabilities").Out()
	} else {
		out = n.b.Op("Identity", out).Named("logits").Out()
	}
	n.b.Output(out)
	m, err := n.b.Model()
	if err != nil {
		return nil, fmt.Errorf("models: %s for input %v: %w", name, o.Input, err)
	}
	m.Graph.Name = name
	return m, nil
}

// maxDim bounds each input dim and the class count, so that the sizes a
// model computes from them stay far from overflowing; the parameters they
// make are checked against the memory limit besides.
const maxDim = 1 << 30

// net tracks the running activation and its shape while a model is built.
type net struct {
	b       *graph.Builder
	rng     *rand.Rand
	x       string
	c, h, w int
	flat    int    // features after Flatten (0 before)
	last    string // the last named layer, for errors
	pools   int    // pooling layers so far, to name them
	params  int64  // bytes of parameters so far
	err     error  // the first parameter that could not be made
}

// param allocates a parameter tensor, checking its size and the running
// total against the memory limit; after a failure it returns a scalar
// placeholder and keeps the error, which Build returns.
func (n *net) param(name string, shape []int) *tensor.Tensor {
	if n.err == nil {
		err := tensor.CheckShape(fmt.Sprintf("parameter %s %v", name, shape), tensor.Float32, shape)
		if err == nil {
			cnt, _ := tensor.MulDims(shape)
			n.params += cnt * 4
			err = tensor.CheckAlloc(fmt.Sprintf("the parameters up to %s", name), n.params, 1)
		}
		if err == nil {
			return tensor.New(tensor.Float32, shape...)
		}
		n.err = err
	}
	return tensor.New(tensor.Float32)
}

func (n *net) uniform(name string, shape []int, bound float64) *tensor.Tensor {
	t := n.param(name, shape)
	d := t.Float32s()
	for i := range d {
		d[i] = float32((n.rng.Float64()*2 - 1) * bound)
	}
	return t
}

func (n *net) filled(name string, v float32, size int) *tensor.Tensor {
	t := n.param(name, []int{size})
	for i := range t.Float32s() {
		t.Float32s()[i] = v
	}
	return t
}

// conv adds a Conv (k x k, stride s, padding p), with a bias unless bn.
func (n *net) conv(name string, out, k, s, p int, bias bool) error {
	fanIn := n.c * k * k
	bound := 1 / math.Sqrt(float64(fanIn))
	w := n.b.Param(name+".weight", n.uniform(name+".weight", []int{out, n.c, k, k}, bound))
	in := []string{n.x, w}
	if bias {
		in = append(in, n.b.Param(name+".bias", n.uniform(name+".bias", []int{out}, bound)))
	}
	n.x = n.b.Op("Conv", in...).With(graph.AInts("kernel_shape", int64(k), int64(k)),
		graph.AInts("strides", int64(s), int64(s)), graph.AInts("pads", int64(p), int64(p), int64(p), int64(p))).Out()
	n.c = out
	inH, inW := n.h, n.w
	n.h = (n.h+2*p-k)/s + 1
	n.w = (n.w+2*p-k)/s + 1
	n.last = name
	if n.h <= 0 || n.w <= 0 {
		return fmt.Errorf("layer %s (Conv %dx%d): %w: it gets %dx%d pixels", name, k, k, ErrInputTooSmall, inH, inW)
	}
	return nil
}

func (n *net) bn(name string) {
	c := n.c
	n.x = n.b.Op("BatchNormalization", n.x,
		n.b.Param(name+".weight", n.filled(name+".weight", 1, c)), n.b.Param(name+".bias", n.filled(name+".bias", 0, c)),
		n.b.Param(name+".running_mean", n.filled(name+".running_mean", 0, c)), n.b.Param(name+".running_var", n.filled(name+".running_var", 1, c))).
		With(graph.AFloat("epsilon", 1e-5), graph.AFloat("momentum", 0.9)).Out()
}

func (n *net) relu() { n.x = n.b.Op("Relu", n.x).Out() }

func (n *net) maxPool(k int) error {
	n.pools++
	name := fmt.Sprintf("pool%d", n.pools)
	if n.last != "" {
		name += " (after " + n.last + ")"
	}
	n.x = n.b.Op("MaxPool", n.x).With(graph.AInts("kernel_shape", int64(k), int64(k)), graph.AInts("strides", int64(k), int64(k))).Out()
	inH, inW := n.h, n.w
	n.h, n.w = n.h/k, n.w/k
	if n.h <= 0 || n.w <= 0 {
		return fmt.Errorf("layer %s (MaxPool %dx%d): %w: it gets %dx%d pixels", name, k, k, ErrInputTooSmall, inH, inW)
	}
	return nil
}

func (n *net) flatten() {
	n.x = n.b.Op("Flatten", n.x).With(graph.AInt("axis", 1)).Out()
	flat, ok := tensor.MulDims([]int{n.c, n.h, n.w})
	if !ok && n.err == nil {
		n.err = fmt.Errorf("flattening %dx%dx%d features overflows", n.c, n.h, n.w)
	}
	n.flat = int(flat)
}

// dense adds Gemm with weight [out, in] (transB, as PyTorch's Linear).
func (n *net) dense(name string, out int) {
	bound := 1 / math.Sqrt(float64(n.flat))
	w := n.b.Param(name+".weight", n.uniform(name+".weight", []int{out, n.flat}, bound))
	bias := n.b.Param(name+".bias", n.uniform(name+".bias", []int{out}, bound))
	n.x = n.b.Op("Gemm", n.x, w, bias).With(graph.AInt("transB", 1)).Out()
	n.flat = out
}

func (n *net) dropout(p float64) {
	if p > 0 {
		n.x = n.b.Op("Dropout", n.x, n.b.Const(tensor.Scalar(float32(p)))).Out()
	}
}

func buildCNN(n *net, o Options) (string, error) {
	if err := n.conv("conv1", 32, 3, 1, 0, true); err != nil {
		return "", err
	}
	n.relu()
	if err := n.maxPool(2); err != nil {
		return "", err
	}
	if err := n.conv("conv2", 64, 3, 1, 0, true); err != nil {
		return "", err
	}
	n.relu()
	if err := n.maxPool(2); err != nil {
		return "", err
	}
	n.flatten()
	n.dropout(o.Dropout)
	n.dense("fc", o.Classes)
	return n.x, nil
}

func buildMLP(n *net, o Options) (string, error) {
	n.flatten()
	n.dense("fc1", 512)
	n.relu()
	n.dense("fc2", 256)
	n.relu()
	n.dropout(o.Dropout)
	n.dense("fc3", o.Classes)
	return n.x, nil
}

func buildLeNet(n *net, o Options) (string, error) {
	pad := 0
	if n.h < 32 {
		pad = 2 // LeNet-5 on 28x28 MNIST pads to keep the 32x32 geometry
	}
	if err := n.conv("conv1", 6, 5, 1, pad, true); err != nil {
		return "", err
	}
	n.relu()
	if err := n.maxPool(2); err != nil {
		return "", err
	}
	if err := n.conv("conv2", 16, 5, 1, 0, true); err != nil {
		return "", err
	}
	n.relu()
	if err := n.maxPool(2); err != nil {
		return "", err
	}
	n.flatten()
	n.dense("fc1", 120)
	n.relu()
	n.dense("fc2", 84)
	n.relu()
	n.dropout(o.Dropout)
	n.dense("fc3", o.Classes)
	return n.x, nil
}

func buildVGG(n *net, o Options) (string, error) {
	for i, c := range []int{32, 32, 0, 64, 64, 0} {
		if c == 0 {
			if err := n.maxPool(2); err != nil {
				return "", err
			}
			continue
		}
		name := fmt.Sprintf("conv%d", i+1)
		if err := n.conv(name, c, 3, 1, 1, false); err != nil {
			return "", err
		}
		n.bn(name + ".bn")
		n.relu()
	}
	n.flatten()
	n.dense("fc1", 128)
	n.relu()
	n.dropout(o.Dropout)
	n.dense("fc2", o.Classes)
	return n.x, nil
}

// buildResNet20 is He et al.'s CIFAR ResNet with n=3: a 3x3 conv of 16,
// three stages (16, 32, 64 channels) of three basic blocks, the later
// stages starting with stride 2 and a 1x1 projection shortcut, global
// average pooling and a linear classifier.
func buildResNet20(n *net, o Options) (string, error) {
	if err := n.conv("conv1", 16, 3, 1, 1, false); err != nil {
		return "", err
	}
	n.bn("bn1")
	n.relu()
	for stage, width := range []int{16, 32, 64} {
		for block := 0; block < 3; block++ {
			name := fmt.Sprintf("layer%d.%d", stage+1, block)
			stride := 1
			if stage > 0 && block == 0 {
				stride = 2
			}
			in, inC, inH, inW := n.x, n.c, n.h, n.w
			if err := n.conv(name+".conv1", width, 3, stride, 1, false); err != nil {
				return "", err
			}
			n.bn(name + ".bn1")
			n.relu()
			if err := n.conv(name+".conv2", width, 3, 1, 1, false); err != nil {
				return "", err
			}
			n.bn(name + ".bn2")
			main, c, h, w := n.x, n.c, n.h, n.w
			short := in
			if stride != 1 || inC != width {
				n.x, n.c, n.h, n.w = in, inC, inH, inW
				if err := n.conv(name+".shortcut", width, 1, stride, 0, false); err != nil {
					return "", err
				}
				n.bn(name + ".shortcut.bn")
				short = n.x
			}
			n.x, n.c, n.h, n.w = n.b.Op("Add", main, short).Out(), c, h, w
			n.relu()
		}
	}
	n.x = n.b.Op("GlobalAveragePool", n.x).Out()
	n.h, n.w = 1, 1
	n.flatten()
	n.dropout(o.Dropout)
	n.dense("fc", o.Classes)
	return n.x, nil
}
