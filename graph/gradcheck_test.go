package graph_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Finite-difference checks of every gradient rule.
//
// Each case builds a small graph Y = f(inputs) with graph.Builder, adds the
// scalar loss L = ReduceSum(Y * R) for a fixed random R of Y's shape (so
// every element of Y carries a different weight and a wrong permutation or
// scale of the gradient shows), differentiates a clone of the model with
// graph.Gradients, runs both on the CPU backend and compares each input's
// gradient with the central difference
//
//	(L(x + h e_i) - L(x - h e_i)) / (x_i+h - (x_i-h))
//
// taken over every element of every differentiated input. The denominator
// is the difference of the values actually fed, so a rounded perturbation
// (float32 inputs) does not bias the quotient.
//
// Precision. Every kernel a case uses runs in float64 (Conv, Gemm, MatMul,
// pooling, normalisation, the losses, Dropout and the elementwise ops all
// have float64 paths), so all cases run in float64 with h = 1e-6: the
// truncation error of the central difference is h^2/6*|f'''| ~ 1e-12 for the
// O(1) third derivatives of these inputs, and the rounding error is about
// eps*|L|/h ~ 2e-16*50/1e-6 = 1e-8. The tolerance |analytic - numeric| <=
// 1e-6 * (1 + |numeric|) is 100x above both and far below the size of any
// real mistake (a missing term, a wrong transpose or a broadcast summed over
// the wrong axes changes gradients by O(1e-2) or more; a factor 0.4999 for
// 0.5 in Sqrt's rule fails). The one float32 input (Cast's source) enters a
// graph that is linear in it, where the quotient is exact up to float64
// rounding whatever h is (h = 1e-3 there); its gradient is float32, rounded
// at 6e-8 relative, inside the same tolerance.
//
// Non-differentiable points are kept away from: inputs of Relu, LeakyRelu,
// Abs and Clip are at least 0.05 from their kinks (h is 1e-6), MaxPool
// inputs are a permutation of well-separated values (no ties), Log, Sqrt,
// Reciprocal, Div and Pow see inputs in [0.5, 2].

// gcBuilder is what a case builds with: the builder, a fixed random source,
// the values fed to the graph inputs and the inputs to differentiate.
type gcBuilder struct {
	b     *graph.Builder
	rng   *rand.Rand
	feeds map[string]*tensor.Tensor
	wrt   []string
}

func (c *gcBuilder) input(name string, t *tensor.Tensor) string {
	dims := make([]graph.Dim, t.Rank())
	for i, d := range t.Shape() {
		dims[i] = graph.D(int64(d))
	}
	c.b.Input(name, t.DType(), dims...)
	c.feeds[name] = t
	c.wrt = append(c.wrt, name)
	return name
}

// f64 makes a float64 tensor of shape from gen.
func f64(shape []int, gen func(i int) float64) *tensor.Tensor {
	v := make([]float64, tensor.NumElements(shape))
	for i := range v {
		v[i] = gen(i)
	}
	return tensor.MustFromSlice(v, shape...)
}

// X is a differentiated input with N(0,1) entries.
func (c *gcBuilder) X(name string, shape ...int) string {
	return c.input(name, f64(shape, func(int) float64 { return c.rng.NormFloat64() }))
}

// Away is a differentiated input with entries of magnitude in [0.05, 1.5],
// random sign: away from the kinks at 0 of Relu, Abs and LeakyRelu.
func (c *gcBuilder) Away(name string, shape ...int) string {
	return c.input(name, f64(shape, func(int) float64 {
		v := 0.05 + 1.45*c.rng.Float64()
		if c.rng.IntN(2) == 0 {
			v = -v
		}
		return v
	}))
}

// Pos is a differentiated input with entries in [0.5, 2].
func (c *gcBuilder) Pos(name string, shape ...int) string {
	return c.input(name, f64(shape, func(int) float64 { return 0.5 + 1.5*c.rng.Float64() }))
}

// Distinct is a differentiated input whose entries are a random
// permutation of values 0.1 apart (no ties for MaxPool).
func (c *gcBuilder) Distinct(name string, shape ...int) string {
	n := tensor.NumElements(shape)
	perm := c.rng.Perm(n)
	return c.input(name, f64(shape, func(i int) float64 { return 0.1*float64(perm[i]) - 0.05*float64(n) }))
}

// Const adds a constant (not differentiated).
func (c *gcBuilder) Const(t *tensor.Tensor) string { return c.b.Const(t) }

// Ints adds an int64 constant.
func (c *gcBuilder) Ints(shape []int, v ...int64) string {
	return c.b.Const(tensor.MustFromSlice(v, shape...))
}

// Vec adds a 1-D int64 constant.
func (c *gcBuilder) Vec(v ...int64) string { return c.Ints([]int{len(v)}, v...) }

// Rand adds a float64 constant with N(0,1) entries.
func (c *gcBuilder) Rand(shape ...int) string {
	return c.b.Const(f64(shape, func(int) float64 { return c.rng.NormFloat64() }))
}

func (c *gcBuilder) Op(op string, in ...string) *graph.NodeRef { return c.b.Op(op, in...) }

// G adds a node of gotrain's domain.
func (c *gcBuilder) G(op string, nOut int, in ...string) *graph.NodeRef {
	return c.b.OpN(graph.DomainGotrain, op, nOut, in...)
}

type gcCase struct {
	name  string
	opset int64 // 0: 17
	build func(c *gcBuilder) string
}

var (
	aI  = graph.AInt
	aIs = graph.AInts
	aF  = graph.AFloat
	aS  = graph.AString
)

func convCase(name string, x, w []int, bias bool, attrs ...*graph.Attribute) gcCase {
	return gcCase{name: name, build: func(c *gcBuilder) string {
		in := []string{c.X("x", x...), c.X("w", w...)}
		if bias {
			in = append(in, c.X("b", w[0]))
		}
		return c.Op("Conv", in...).With(attrs...).Out()
	}}
}

func poolCase(op, name string, x []int, attrs ...*graph.Attribute) gcCase {
	return gcCase{name: op + "/" + name, build: func(c *gcBuilder) string {
		var in string
		if op == "MaxPool" {
			in = c.Distinct("x", x...)
		} else {
			in = c.X("x", x...)
		}
		return c.Op(op, in).With(attrs...).Out()
	}}
}

func gemmCase(name string, a, b, cShape []int, attrs ...*graph.Attribute) gcCase {
	return gcCase{name: "Gemm/" + name, build: func(c *gcBuilder) string {
		in := []string{c.X("a", a...), c.X("b", b...)}
		if cShape != nil {
			in = append(in, c.X("c", cShape...))
		}
		return c.Op("Gemm", in...).With(attrs...).Out()
	}}
}

func unaryCase(op string, gen string, attrs ...*graph.Attribute) gcCase {
	return gcCase{name: op, build: func(c *gcBuilder) string {
		var x string
		switch gen {
		case "away":
			x = c.Away("x", 3, 4)
		case "pos":
			x = c.Pos("x", 3, 4)
		default:
			x = c.X("x", 3, 4)
		}
		return c.Op(op, x).With(attrs...).Out()
	}}
}

func binaryCase(op, name string, a, b []int, pos bool) gcCase {
	return gcCase{name: op + "/" + name, build: func(c *gcBuilder) string {
		x := c.X("a", a...)
		var y string
		if pos {
			y = c.Pos("b", b...)
		} else {
			y = c.X("b", b...)
		}
		return c.Op(op, x, y).Out()
	}}
}

func gradCases() []gcCase {
	nchw, bias, scalar, row := []int{2, 3, 4, 5}, []int{3, 1, 1}, []int{}, []int{5}
	cs := []gcCase{}
	// Broadcasting binary ops: same shape, per-channel bias over NCHW, a
	// scalar, a row vector, and both operands broadcast ([3,1] x [1,4]).
	for _, op := range []string{"Add", "Sub", "Mul", "Div"} {
		pos := op == "Div"
		cs = append(cs,
			binaryCase(op, "same", []int{3, 4}, []int{3, 4}, pos),
			binaryCase(op, "bias_c11", nchw, bias, pos),
			binaryCase(op, "scalar", nchw, scalar, pos),
			binaryCase(op, "row", []int{2, 3, 5}, row, pos),
			binaryCase(op, "both", []int{3, 1}, []int{1, 4}, pos),
		)
	}
	// The broadcast operand first: its gradient is summed back too.
	cs = append(cs, gcCase{name: "Div/bias_first", build: func(c *gcBuilder) string {
		return c.Op("Div", c.X("a", 3, 1, 1), c.Pos("b", 2, 3, 2, 2)).Out()
	}})
	// Pow: exponent constant (its gradient is not supported); base
	// broadcast against the exponent and the reverse.
	cs = append(cs,
		gcCase{name: "Pow/scalar_exp", build: func(c *gcBuilder) string {
			return c.Op("Pow", c.Pos("x", 3, 4), c.Const(tensor.Scalar(2.5))).Out()
		}},
		gcCase{name: "Pow/row_exp", build: func(c *gcBuilder) string {
			return c.Op("Pow", c.Pos("x", 2, 3, 4), c.Const(tensor.MustFromSlice([]float64{-1.5, 0.5, 2, 3}, 4))).Out()
		}},
		gcCase{name: "Pow/base_broadcast", build: func(c *gcBuilder) string {
			return c.Op("Pow", c.Pos("x", 4), c.Const(f64([]int{3, 4}, func(i int) float64 { return 0.5 + 0.25*float64(i) }))).Out()
		}},
		gcCase{name: "Pow/float32_exp", build: func(c *gcBuilder) string {
			return c.Op("Pow", c.Pos("x", 3, 4), c.Const(tensor.Scalar(float32(3)))).Out()
		}},
	)
	// Where: condition, x and y all broadcast.
	cs = append(cs,
		gcCase{name: "Where/same", build: func(c *gcBuilder) string {
			cond := c.Const(tensor.MustFromSlice([]bool{true, false, false, true, true, false}, 2, 3))
			return c.Op("Where", cond, c.X("x", 2, 3), c.X("y", 2, 3)).Out()
		}},
		gcCase{name: "Where/broadcast", build: func(c *gcBuilder) string {
			cond := c.Const(tensor.MustFromSlice([]bool{true, false, true, false, false}, 5))
			return c.Op("Where", cond, c.X("x", 2, 3, 1), c.X("y", 3, 5)).Out()
		}},
		gcCase{name: "Where/scalar_y", build: func(c *gcBuilder) string {
			cond := c.Const(tensor.MustFromSlice([]bool{true, false, true, false, false, true}, 3, 2, 1))
			return c.Op("Where", cond, c.X("x", 3, 2, 4), c.X("y")).Out()
		}},
	)
	// Variadic Sum and Mean with broadcasting, and a value used twice.
	cs = append(cs,
		gcCase{name: "Sum/broadcast3", build: func(c *gcBuilder) string {
			return c.Op("Sum", c.X("a", 2, 3, 4), c.X("b", 3, 1), c.X("c", 4)).Out()
		}},
		gcCase{name: "Mean/broadcast2", build: func(c *gcBuilder) string {
			return c.Op("Mean", c.X("a", 2, 3), c.X("b", 3)).Out()
		}},
		gcCase{name: "Mean/three", build: func(c *gcBuilder) string {
			return c.Op("Mean", c.X("a", 3, 2), c.X("b", 3, 2), c.X("c", 1)).Out()
		}},
		gcCase{name: "Mul/reused_operand", build: func(c *gcBuilder) string {
			x := c.X("x", 3, 4)
			return c.Op("Mul", c.Op("Mul", x, x).Out(), x).Out()
		}},
	)
	// Unary ops and activations.
	cs = append(cs,
		unaryCase("Neg", ""), unaryCase("Identity", ""), unaryCase("Exp", ""),
		unaryCase("Log", "pos"), unaryCase("Sqrt", "pos"), unaryCase("Reciprocal", "pos"),
		unaryCase("Abs", "away"), unaryCase("Erf", ""), unaryCase("Tanh", ""), unaryCase("Sigmoid", ""),
		unaryCase("Relu", "away"),
		gcCase{name: "LeakyRelu/default", build: func(c *gcBuilder) string { return c.Op("LeakyRelu", c.Away("x", 3, 4)).Out() }},
		gcCase{name: "LeakyRelu/alpha0.2", build: func(c *gcBuilder) string {
			return c.Op("LeakyRelu", c.Away("x", 3, 4)).With(aF("alpha", 0.2)).Out()
		}},
		gcCase{name: "Gelu/exact", opset: 20, build: func(c *gcBuilder) string { return c.Op("Gelu", c.X("x", 3, 4)).Out() }},
		gcCase{name: "Gelu/tanh", opset: 20, build: func(c *gcBuilder) string {
			return c.Op("Gelu", c.X("x", 3, 4)).With(aS("approximate", "tanh")).Out()
		}},
		gcCase{name: "Clip/min_max", build: func(c *gcBuilder) string {
			// Inputs land on both sides of both bounds; one within h = 1e-6
			// of a bound has probability ~1e-5 and the seed is fixed.
			return c.Op("Clip", c.Away("x", 4, 5), c.Const(tensor.Scalar(-0.6)), c.Const(tensor.Scalar(0.7))).Out()
		}},
		gcCase{name: "Clip/min_only", build: func(c *gcBuilder) string {
			return c.Op("Clip", c.Away("x", 4, 5), c.Const(tensor.Scalar(0.0))).Out()
		}},
		gcCase{name: "Cast/float32_to_float64", build: func(c *gcBuilder) string {
			v := make([]float32, 12)
			for i := range v {
				v[i] = float32(c.rng.NormFloat64())
			}
			x := c.input("x", tensor.MustFromSlice(v, 3, 4))
			return c.Op("Mul", c.Op("Cast", x).With(aI("to", int64(tensor.Float64))).Out(), c.Rand(3, 4)).Out()
		}},
		gcCase{name: "Cast/float64_to_float64", build: func(c *gcBuilder) string {
			return c.Op("Exp", c.Op("Cast", c.X("x", 3, 4)).With(aI("to", int64(tensor.Float64))).Out()).Out()
		}},
	)
	for _, op := range []string{"Softmax", "LogSoftmax"} {
		for _, axis := range []int64{0, 1, -1} {
			cs = append(cs, gcCase{name: fmt.Sprintf("%s/axis%d", op, axis), build: func(c *gcBuilder) string {
				return c.Op(op, c.X("x", 2, 3, 4)).With(aI("axis", axis)).Out()
			}})
		}
		cs = append(cs, gcCase{name: op + "/default_axis", build: func(c *gcBuilder) string {
			return c.Op(op, c.X("x", 3, 5)).Out()
		}})
	}
	// Convolutions: strides, asymmetric pads, dilations, groups, depthwise,
	// 1-D and 3-D, auto_pad.
	cs = append(cs,
		convCase("Conv/plain_bias", []int{2, 3, 5, 5}, []int{4, 3, 3, 3}, true),
		convCase("Conv/no_bias", []int{1, 2, 4, 4}, []int{3, 2, 2, 2}, false),
		convCase("Conv/stride2", []int{2, 2, 7, 6}, []int{3, 2, 3, 3}, true, aIs("strides", 2, 2)),
		convCase("Conv/stride_2x1_asym_pads", []int{1, 2, 6, 5}, []int{3, 2, 3, 2}, true,
			aIs("strides", 2, 1), aIs("pads", 0, 1, 2, 0)),
		convCase("Conv/dilation", []int{1, 2, 7, 7}, []int{2, 2, 3, 3}, true, aIs("dilations", 2, 1), aIs("pads", 1, 1, 1, 1)),
		convCase("Conv/groups2", []int{2, 4, 5, 5}, []int{6, 2, 3, 3}, true, aI("group", 2), aIs("pads", 1, 1, 1, 1)),
		convCase("Conv/depthwise", []int{2, 3, 5, 5}, []int{6, 1, 3, 3}, true, aI("group", 3), aIs("strides", 2, 2), aIs("pads", 1, 0, 1, 2)),
		convCase("Conv/all", []int{1, 4, 8, 7}, []int{4, 2, 3, 2}, true, aI("group", 2), aIs("strides", 2, 3),
			aIs("pads", 2, 0, 1, 1), aIs("dilations", 2, 2)),
		convCase("Conv/1d", []int{2, 3, 9}, []int{2, 3, 3}, true, aIs("strides", 2), aIs("pads", 1, 2)),
		convCase("Conv/3d", []int{1, 2, 4, 4, 3}, []int{2, 2, 2, 3, 2}, true, aIs("pads", 0, 1, 0, 1, 0, 1)),
		convCase("Conv/same_upper", []int{1, 2, 6, 6}, []int{2, 2, 3, 3}, true, aS("auto_pad", "SAME_UPPER"), aIs("strides", 2, 2)),
		convCase("Conv/1x1", []int{2, 5, 3, 3}, []int{4, 5, 1, 1}, true),
	)
	// Pooling.
	cs = append(cs,
		poolCase("MaxPool", "k2s2", []int{2, 3, 4, 6}, aIs("kernel_shape", 2, 2), aIs("strides", 2, 2)),
		poolCase("MaxPool", "k3s1_overlap", []int{1, 2, 5, 5}, aIs("kernel_shape", 3, 3)),
		poolCase("MaxPool", "pads_stride2", []int{1, 2, 5, 6}, aIs("kernel_shape", 3, 2), aIs("strides", 2, 2), aIs("pads", 1, 0, 1, 1)),
		poolCase("MaxPool", "ceil_mode", []int{1, 2, 5, 5}, aIs("kernel_shape", 2, 2), aIs("strides", 2, 2), aI("ceil_mode", 1)),
		poolCase("MaxPool", "dilation", []int{1, 2, 6, 6}, aIs("kernel_shape", 2, 2), aIs("dilations", 2, 2)),
		poolCase("MaxPool", "1d", []int{2, 2, 7}, aIs("kernel_shape", 3), aIs("strides", 2)),
		poolCase("AveragePool", "k2s2", []int{2, 3, 4, 6}, aIs("kernel_shape", 2, 2), aIs("strides", 2, 2)),
		poolCase("AveragePool", "k3s1_overlap", []int{1, 2, 5, 5}, aIs("kernel_shape", 3, 3)),
		poolCase("AveragePool", "pads_exclude", []int{1, 2, 5, 6}, aIs("kernel_shape", 3, 3), aIs("strides", 2, 2), aIs("pads", 1, 1, 1, 0)),
		poolCase("AveragePool", "pads_include", []int{1, 2, 5, 6}, aIs("kernel_shape", 3, 3), aIs("strides", 2, 2), aIs("pads", 1, 1, 1, 0),
			aI("count_include_pad", 1)),
		poolCase("AveragePool", "ceil_mode", []int{1, 2, 5, 5}, aIs("kernel_shape", 2, 2), aIs("strides", 2, 2), aI("ceil_mode", 1)),
		poolCase("AveragePool", "ceil_pads_include", []int{1, 2, 6, 5}, aIs("kernel_shape", 3, 3), aIs("strides", 2, 2), aIs("pads", 1, 1, 1, 1),
			aI("ceil_mode", 1), aI("count_include_pad", 1)),
		poolCase("AveragePool", "1d", []int{2, 2, 7}, aIs("kernel_shape", 3), aIs("strides", 2), aIs("pads", 1, 1)),
		gcCase{name: "GlobalAveragePool/2d", build: func(c *gcBuilder) string { return c.Op("GlobalAveragePool", c.X("x", 2, 3, 4, 5)).Out() }},
		gcCase{name: "GlobalAveragePool/1d", build: func(c *gcBuilder) string { return c.Op("GlobalAveragePool", c.X("x", 2, 3, 5)).Out() }},
	)
	// Normalisation and dropout.
	cs = append(cs,
		gcCase{name: "BatchNormTrain/nchw", build: func(c *gcBuilder) string {
			rm := c.Const(tensor.MustFromSlice([]float64{0.1, -0.2, 0.3}, 3))
			rv := c.Const(tensor.MustFromSlice([]float64{1, 0.5, 2}, 3))
			return c.G("BatchNormTrain", 5, c.X("x", 4, 3, 2, 3), c.X("scale", 3), c.X("b", 3), rm, rv).
				With(aF("epsilon", 1e-3), aF("momentum", 0.9)).Out()
		}},
		gcCase{name: "BatchNormTrain/nc", build: func(c *gcBuilder) string {
			rm := c.Const(tensor.MustFromSlice([]float64{0, 0}, 2))
			rv := c.Const(tensor.MustFromSlice([]float64{1, 1}, 2))
			return c.G("BatchNormTrain", 5, c.X("x", 5, 2), c.X("scale", 2), c.X("b", 2), rm, rv).Out()
		}},
		gcCase{name: "BatchNormTrain/default_eps", build: func(c *gcBuilder) string {
			// BatchNormalization rewritten by graph.TrainingGraph is checked
			// in TestGradCheckTrainingGraph.
			rm := c.Const(tensor.MustFromSlice([]float64{0.1, -0.2, 0.3}, 3))
			rv := c.Const(tensor.MustFromSlice([]float64{1, 0.5, 2}, 3))
			return c.G("BatchNormTrain", 5, c.X("x", 3, 3, 2, 2), c.X("scale", 3), c.X("b", 3), rm, rv).Out()
		}},
		gcCase{name: "LayerNormalization/last_axis", build: func(c *gcBuilder) string {
			return c.Op("LayerNormalization", c.X("x", 3, 5), c.X("scale", 5), c.X("b", 5)).Out()
		}},
		gcCase{name: "LayerNormalization/axis1_no_bias", build: func(c *gcBuilder) string {
			return c.Op("LayerNormalization", c.X("x", 2, 3, 4), c.X("scale", 3, 4)).With(aI("axis", 1), aF("epsilon", 1e-3)).Out()
		}},
		gcCase{name: "LayerNormalization/axis-2", build: func(c *gcBuilder) string {
			return c.Op("LayerNormalization", c.X("x", 2, 3, 4), c.X("scale", 3, 4), c.X("b", 3, 4)).With(aI("axis", -2)).Out()
		}},
		// Outside a replica group AllReduceSum is the identity; its rule
		// (the same reduction of the gradient) is checked across replicas
		// by strategy's sync BatchNorm test.
		gcCase{name: "AllReduceSum/single", build: func(c *gcBuilder) string {
			return c.G("AllReduceSum", 1, c.X("x", 3, 4)).Out()
		}},
		gcCase{name: "DropoutTrain/ratio0.3", build: func(c *gcBuilder) string {
			ratio := c.Const(tensor.Scalar(float32(0.3)))
			return c.G("DropoutTrain", 2, c.X("x", 4, 6), ratio, c.Const(tensor.Scalar(int64(7))), c.Const(tensor.Scalar(int64(3)))).Out()
		}},
		gcCase{name: "DropoutTrain/ratio0", build: func(c *gcBuilder) string {
			ratio := c.Const(tensor.Scalar(float32(0)))
			return c.G("DropoutTrain", 2, c.X("x", 3, 4), ratio, c.Const(tensor.Scalar(int64(1))), c.Const(tensor.Scalar(int64(0)))).Out()
		}},
		gcCase{name: "DropoutTrain/ratio1", build: func(c *gcBuilder) string {
			// Everything dropped: Y and the gradient are 0.
			ratio := c.Const(tensor.Scalar(float32(1)))
			return c.G("DropoutTrain", 2, c.X("x", 3, 4), ratio, c.Const(tensor.Scalar(int64(2))), c.Const(tensor.Scalar(int64(0)))).Out()
		}},
		gcCase{name: "Dropout/inference", build: func(c *gcBuilder) string {
			return c.Op("Dropout", c.X("x", 3, 4)).Out()
		}},
		gcCase{name: "Dropout/inference_ratio_input", build: func(c *gcBuilder) string {
			return c.Op("Dropout", c.X("x", 3, 4), c.Const(tensor.Scalar(float32(0.5)))).Out()
		}},
	)
	// Matrix products.
	for _, ta := range []int64{0, 1} {
		for _, tb := range []int64{0, 1} {
			a, b := []int{3, 4}, []int{4, 5}
			if ta == 1 {
				a = []int{4, 3}
			}
			if tb == 1 {
				b = []int{5, 4}
			}
			name := fmt.Sprintf("tA%d_tB%d", ta, tb)
			cs = append(cs,
				gemmCase(name+"/noC", a, b, nil, aI("transA", ta), aI("transB", tb)),
				gemmCase(name+"/C_row_alpha_beta", a, b, []int{5}, aI("transA", ta), aI("transB", tb), aF("alpha", 0.7), aF("beta", 1.3)),
				gemmCase(name+"/C_full_alpha", a, b, []int{3, 5}, aI("transA", ta), aI("transB", tb), aF("alpha", -1.5)),
			)
		}
	}
	cs = append(cs,
		gemmCase("C_col_beta", []int{3, 4}, []int{4, 5}, []int{3, 1}, aF("beta", 0.5)),
		gemmCase("C_1xN", []int{3, 4}, []int{5, 4}, []int{1, 5}, aI("transB", 1), aF("beta", 2)),
		gemmCase("C_scalar", []int{4, 3}, []int{4, 5}, []int{}, aI("transA", 1), aF("alpha", 0.25), aF("beta", -0.5)),
		gemmCase("C_1", []int{3, 4}, []int{4, 5}, []int{1}, aF("beta", 3)),
		binaryCase("MatMul", "2d", []int{3, 4}, []int{4, 5}, false),
		binaryCase("MatMul", "batched", []int{2, 3, 4}, []int{2, 4, 5}, false),
		binaryCase("MatMul", "batched_x_2d", []int{2, 3, 4}, []int{4, 5}, false),
		binaryCase("MatMul", "2d_x_batched", []int{3, 4}, []int{2, 4, 2}, false),
		binaryCase("MatMul", "batch_broadcast", []int{2, 1, 3, 4}, []int{3, 4, 2}, false),
	)
	// Shape and data movement.
	cs = append(cs,
		gcCase{name: "Reshape/minus1_and_0", build: func(c *gcBuilder) string {
			return c.Op("Mul", c.Op("Reshape", c.X("x", 2, 3, 4), c.Vec(0, -1, 2)).Out(), c.Rand(2, 6, 2)).Out()
		}},
		gcCase{name: "Flatten/axis2", build: func(c *gcBuilder) string {
			return c.Op("Flatten", c.X("x", 2, 3, 2, 2)).With(aI("axis", 2)).Out()
		}},
		gcCase{name: "Flatten/default", build: func(c *gcBuilder) string { return c.Op("Flatten", c.X("x", 2, 3, 2)).Out() }},
		gcCase{name: "Transpose/perm", build: func(c *gcBuilder) string {
			return c.Op("Transpose", c.X("x", 2, 3, 4)).With(aIs("perm", 1, 2, 0)).Out()
		}},
		gcCase{name: "Transpose/default", build: func(c *gcBuilder) string { return c.Op("Transpose", c.X("x", 2, 3, 4)).Out() }},
		gcCase{name: "Concat/axis1", build: func(c *gcBuilder) string {
			return c.Op("Concat", c.X("a", 2, 1, 3), c.X("b", 2, 3, 3), c.X("c", 2, 2, 3)).With(aI("axis", 1)).Out()
		}},
		gcCase{name: "Concat/axis-1_reused", build: func(c *gcBuilder) string {
			a := c.X("a", 2, 2)
			return c.Op("Concat", a, c.X("b", 2, 3), a).With(aI("axis", -1)).Out()
		}},
		gcCase{name: "Split/uneven", build: func(c *gcBuilder) string {
			outs := c.Op("Split", c.X("x", 2, 6), c.Vec(1, 3, 2)).Node()
			outs.Outputs = append(outs.Outputs, c.b.Fresh("split"), c.b.Fresh("split"))
			outs.SetAttr(aI("axis", 1))
			return c.Op("Concat", outs.Outputs[2], outs.Outputs[0]).With(aI("axis", 1)).Out()
		}},
		gcCase{name: "Split/equal_axis0", build: func(c *gcBuilder) string {
			n := c.Op("Split", c.X("x", 4, 3)).Node()
			n.Outputs = append(n.Outputs, c.b.Fresh("split"))
			return c.Op("Mul", n.Outputs[0], n.Outputs[1]).Out()
		}},
		gcCase{name: "Slice/negative_step", build: func(c *gcBuilder) string {
			return c.Op("Slice", c.X("x", 4, 6), c.Vec(-1, 1), c.Vec(0, 6), c.Vec(1, 0), c.Vec(-2, 2)).Out()
		}},
		gcCase{name: "Slice/no_axes", build: func(c *gcBuilder) string {
			return c.Op("Slice", c.X("x", 4, 6), c.Vec(1, -4), c.Vec(3, 1000)).Out()
		}},
		gcCase{name: "Slice/step_minus1_full", build: func(c *gcBuilder) string {
			return c.Op("Slice", c.X("x", 3, 5), c.Vec(-1), c.Vec(math.MinInt64), c.Vec(1), c.Vec(-1)).Out()
		}},
		gcCase{name: "Gather/repeated_axis0", build: func(c *gcBuilder) string {
			return c.Op("Gather", c.X("x", 4, 3), c.Ints([]int{2, 3}, 1, 3, 1, 0, 1, 3)).Out()
		}},
		gcCase{name: "Gather/axis1_negative", build: func(c *gcBuilder) string {
			return c.Op("Gather", c.X("x", 2, 4, 3), c.Vec(-1, 0, 3, 0)).With(aI("axis", 1)).Out()
		}},
		gcCase{name: "Gather/scalar_index", build: func(c *gcBuilder) string {
			return c.Op("Gather", c.X("x", 3, 4), c.Const(tensor.Scalar(int64(2)))).With(aI("axis", 1)).Out()
		}},
		gcCase{name: "Pad/constant", build: func(c *gcBuilder) string {
			return c.Op("Pad", c.X("x", 2, 3, 3), c.Vec(0, 1, 2, 1, 0, 1)).Out()
		}},
		gcCase{name: "Pad/constant_value", build: func(c *gcBuilder) string {
			return c.Op("Pad", c.X("x", 2, 3), c.Vec(1, 0, 0, 2), c.Const(tensor.Scalar(1.5))).Out()
		}},
		gcCase{name: "Expand/broadcast", build: func(c *gcBuilder) string {
			return c.Op("Expand", c.X("x", 3, 1), c.Vec(2, 3, 4)).Out()
		}},
		gcCase{name: "Expand/same_rank", build: func(c *gcBuilder) string {
			return c.Op("Expand", c.X("x", 1, 4), c.Vec(3, 1)).Out()
		}},
		gcCase{name: "Squeeze/axes", build: func(c *gcBuilder) string {
			return c.Op("Squeeze", c.X("x", 2, 1, 3, 1), c.Vec(1, -1)).Out()
		}},
		gcCase{name: "Squeeze/all", build: func(c *gcBuilder) string { return c.Op("Squeeze", c.X("x", 1, 3, 1)).Out() }},
		gcCase{name: "Unsqueeze/axes", build: func(c *gcBuilder) string {
			return c.Op("Unsqueeze", c.X("x", 2, 3), c.Vec(0, -1)).Out()
		}},
	)
	for _, op := range []string{"ReduceSum", "ReduceMean"} {
		for _, keep := range []int64{0, 1} {
			axes := func(c *gcBuilder, n *graph.NodeRef, ax ...int64) *graph.NodeRef {
				if op == "ReduceSum" {
					n.Node().Inputs = append(n.Node().Inputs, c.Vec(ax...))
					return n
				}
				return n.With(aIs("axes", ax...))
			}
			cs = append(cs,
				gcCase{name: fmt.Sprintf("%s/axes_0_2_keep%d", op, keep), build: func(c *gcBuilder) string {
					return axes(c, c.Op(op, c.X("x", 2, 3, 4)).With(aI("keepdims", keep)), 0, 2).Out()
				}},
				gcCase{name: fmt.Sprintf("%s/axis_-1_keep%d", op, keep), build: func(c *gcBuilder) string {
					return axes(c, c.Op(op, c.X("x", 2, 3, 4)).With(aI("keepdims", keep)), -1).Out()
				}},
				gcCase{name: fmt.Sprintf("%s/all_keep%d", op, keep), build: func(c *gcBuilder) string {
					return c.Op(op, c.X("x", 2, 3, 4)).With(aI("keepdims", keep)).Out()
				}},
			)
		}
	}
	cs = append(cs, gcCase{name: "ReduceMean/opset18_axes_input", opset: 18, build: func(c *gcBuilder) string {
		return c.Op("ReduceMean", c.X("x", 2, 3, 4), c.Vec(1)).With(aI("keepdims", 0)).Out()
	}})
	// Losses.
	labels := func(c *gcBuilder, n, classes int, shape ...int) string {
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(c.rng.IntN(classes))
		}
		return c.Ints(shape, v...)
	}
	onehot := func(c *gcBuilder, n, classes int) string {
		return c.Const(f64([]int{n, classes}, func(i int) float64 {
			if i%classes == (i/classes*7+3)%classes {
				return 1
			}
			return 0
		}))
	}
	soft := func(c *gcBuilder, n, classes int) string {
		return c.Const(f64([]int{n, classes}, func(i int) float64 { return 1 / float64(classes) * (1 + 0.5*math.Sin(float64(i))) }))
	}
	weights := func(c *gcBuilder, classes int) string {
		return c.Const(f64([]int{classes}, func(i int) float64 { return 0.5 + 0.3*float64(i) }))
	}
	for _, sce := range []struct {
		domain, op string
	}{{"", "SoftmaxCrossEntropyLoss"}, {graph.DomainGotrain, "SoftmaxCrossEntropy"}} {
		mk := func(c *gcBuilder, attrs []*graph.Attribute, in ...string) string {
			return c.b.OpN(sce.domain, sce.op, 1, in...).With(attrs...).Out()
		}
		cs = append(cs,
			gcCase{name: sce.op + "/mean", build: func(c *gcBuilder) string {
				return mk(c, nil, c.X("x", 5, 4), labels(c, 5, 4, 5))
			}},
			gcCase{name: sce.op + "/sum_weights", build: func(c *gcBuilder) string {
				return mk(c, []*graph.Attribute{aS("reduction", "sum")}, c.X("x", 5, 4), labels(c, 5, 4, 5), weights(c, 4))
			}},
			gcCase{name: sce.op + "/none_spatial", build: func(c *gcBuilder) string {
				return mk(c, []*graph.Attribute{aS("reduction", "none")}, c.X("x", 2, 3, 4), labels(c, 8, 3, 2, 4))
			}},
			gcCase{name: sce.op + "/mean_weights_ignore", build: func(c *gcBuilder) string {
				l := c.Ints([]int{6}, 0, 2, -1, 1, 2, -1)
				return mk(c, []*graph.Attribute{aI("ignore_index", -1)}, c.X("x", 6, 3), l, weights(c, 3))
			}},
		)
		if sce.domain == graph.DomainGotrain {
			cs = append(cs,
				gcCase{name: sce.op + "/label_smoothing", build: func(c *gcBuilder) string {
					return mk(c, []*graph.Attribute{aF("label_smoothing", 0.1)}, c.X("x", 5, 4), labels(c, 5, 4, 5))
				}},
				gcCase{name: sce.op + "/onehot_smoothing", build: func(c *gcBuilder) string {
					return mk(c, []*graph.Attribute{aF("label_smoothing", 0.2)}, c.X("x", 5, 4), onehot(c, 5, 4))
				}},
				gcCase{name: sce.op + "/soft_targets_sum", build: func(c *gcBuilder) string {
					return mk(c, []*graph.Attribute{aS("reduction", "sum")}, c.X("x", 5, 4), soft(c, 5, 4))
				}},
				gcCase{name: sce.op + "/smoothing_weights", build: func(c *gcBuilder) string {
					return mk(c, []*graph.Attribute{aF("label_smoothing", 0.15)}, c.X("x", 6, 3), labels(c, 6, 3, 6), weights(c, 3))
				}},
			)
		}
	}
	for _, red := range []string{"mean", "sum", "none"} {
		cs = append(cs, gcCase{name: "BCEWithLogits/" + red, build: func(c *gcBuilder) string {
			t := c.Const(f64([]int{4, 3}, func(i int) float64 { return []float64{0, 1, 0.3, 1, 0, 0.8}[i%6] }))
			return c.G("BCEWithLogits", 1, c.X("x", 4, 3), t).With(aS("reduction", red)).Out()
		}})
	}
	// Compositions: a value reaching the loss by several paths, and ops
	// chained so gradients of gradient-built values are exercised.
	cs = append(cs,
		gcCase{name: "Compose/residual_conv_bn_relu", build: func(c *gcBuilder) string {
			x := c.X("x", 2, 2, 4, 4)
			h := c.Op("Conv", x, c.X("w", 2, 2, 3, 3)).With(aIs("pads", 1, 1, 1, 1)).Out()
			rm := c.Const(tensor.MustFromSlice([]float64{0, 0}, 2))
			rv := c.Const(tensor.MustFromSlice([]float64{1, 1}, 2))
			h = c.G("BatchNormTrain", 5, h, c.X("s", 2), c.X("b", 2), rm, rv).Out()
			h = c.Op("Tanh", h).Out()
			return c.Op("GlobalAveragePool", c.Op("Add", h, x).Out()).Out()
		}},
	)
	return cs
}

// opKey is OpsWithGrad's name for a node's op.
func opKey(n *graph.Node) string {
	if d := graph.NormDomain(n.Domain); d != graph.DomainONNX {
		return d + "::" + n.OpType
	}
	return n.OpType
}

// TestGradCheck compares every gradient rule with central finite
// differences (see the comment at the top of this file for h and the
// tolerance), and fails when an op with a rule has no case.
func TestGradCheck(t *testing.T) {
	covered := map[string]bool{}
	cases, ran := gradCases(), 0
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ran++
			ops := gradCheck(t, tc, uint64(i))
			for _, op := range ops {
				covered[op] = true
			}
		})
	}
	if ran < len(cases) {
		t.Logf("%d of %d cases selected by -run: op coverage not checked", ran, len(cases))
		return
	}
	var missing []string
	for _, op := range graph.OpsWithGrad() {
		if !covered[op] {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		t.Errorf("ops with a gradient rule but no passing finite-difference case: %v", missing)
	}
}

// gradCheck runs one case and returns the ops its forward graph exercised.
func gradCheck(t *testing.T, tc gcCase, seed uint64) []string {
	t.Helper()
	opset := tc.opset
	if opset == 0 {
		opset = 17
	}
	c := &gcBuilder{b: graph.NewBuilder("gradcheck", opset), rng: rand.New(rand.NewPCG(seed, 0x9e3779b9)), feeds: map[string]*tensor.Tensor{}}
	y := tc.build(c)
	c.b.Output(y)
	m, err := c.b.Model()
	if err != nil {
		t.Fatalf("building: %v", err)
	}
	m.Opsets[graph.DomainGotrain] = 1
	var ops []string
	for _, n := range m.Graph.Nodes {
		if n.OpType != "Constant" {
			ops = append(ops, opKey(n))
		}
	}
	be := cpu.New(cpu.Options{Threads: 1})
	dev := be.Devices()[0]
	run := func(m *graph.Model, outs []string, feeds map[string]*tensor.Tensor) map[string]*tensor.Tensor {
		t.Helper()
		exe, err := be.Compile(m, dev, backend.CompileOptions{Outputs: outs})
		if err != nil {
			t.Fatalf("compiling: %v", err)
		}
		res, err := backend.RunHost(context.Background(), be, exe, dev, feeds)
		if err != nil {
			t.Fatalf("running: %v", err)
		}
		return res
	}
	yt := run(m, []string{y}, c.feeds)[y]
	if yt.DType() != tensor.Float64 {
		t.Fatalf("Y is %v; the check runs in float64", yt.DType())
	}
	// L = ReduceSum(Y * R), R a fixed random input.
	eb := graph.Extend(m)
	dims := make([]graph.Dim, yt.Rank())
	for i, d := range yt.Shape() {
		dims[i] = graph.D(int64(d))
	}
	r := eb.Input("gradcheck_R", tensor.Float64, dims...)
	c.feeds[r] = f64(yt.Shape(), func(int) float64 { return c.rng.NormFloat64() })
	loss := eb.Op("ReduceSum", eb.Op("Mul", y, r).Out()).With(aI("keepdims", 0)).Out()
	m.Graph.Outputs = []*graph.ValueInfo{{Name: loss}}

	gm := *m
	gm.Graph = m.Graph.Clone()
	grads, err := graph.Gradients(&gm, loss, c.wrt)
	if err != nil {
		t.Fatalf("gradients: %v", err)
	}
	outs := []string{loss}
	for _, w := range c.wrt {
		outs = append(outs, grads[w])
	}
	analytic := run(&gm, outs, c.feeds)

	exe, err := be.Compile(m, dev, backend.CompileOptions{Outputs: []string{loss}})
	if err != nil {
		t.Fatalf("compiling the loss: %v", err)
	}
	lossAt := func(feeds map[string]*tensor.Tensor) float64 {
		res, err := backend.RunHost(context.Background(), be, exe, dev, feeds)
		if err != nil {
			t.Fatalf("running the loss: %v", err)
		}
		return res[loss].AsFloat64(0)
	}
	if l0, l1 := lossAt(c.feeds), analytic[loss].AsFloat64(0); l0 != l1 {
		t.Errorf("the gradient graph computes loss %g, the forward graph %g", l1, l0)
	}
	worst := 0.0
	for _, w := range c.wrt {
		g := analytic[grads[w]]
		x := c.feeds[w]
		if !tensor.SameShape(g.Shape(), x.Shape()) {
			t.Fatalf("gradient of %q has shape %v, want %v", w, g.Shape(), x.Shape())
		}
		for i := 0; i < x.Len(); i++ {
			plus, minus := x.Clone(), x.Clone()
			var lo, hi float64
			switch d := x.Data().(type) {
			case []float64:
				v := d[i]
				plus.Float64s()[i], minus.Float64s()[i] = v+1e-6, v-1e-6
				hi, lo = v+1e-6, v-1e-6
			case []float32:
				v := d[i]
				plus.Float32s()[i], minus.Float32s()[i] = v+1e-3, v-1e-3
				hi, lo = float64(v+1e-3), float64(v-1e-3)
			default:
				t.Fatalf("input %q has dtype %v", w, x.DType())
			}
			feeds := map[string]*tensor.Tensor{}
			for k, v := range c.feeds {
				feeds[k] = v
			}
			feeds[w] = plus
			lp := lossAt(feeds)
			feeds[w] = minus
			lm := lossAt(feeds)
			num := (lp - lm) / (hi - lo)
			got := g.AsFloat64(i)
			diff := math.Abs(got - num)
			if !(diff <= 1e-6*(1+math.Abs(num))) { // NaN fails too
				t.Errorf("d L / d %s[%d]: autodiff %.9g, finite difference %.9g (diff %.3g)", w, i, got, num, diff)
			}
			worst = math.Max(worst, diff)
		}
	}
	if t.Failed() {
		return nil
	}
	t.Logf("max |autodiff - finite difference| = %.3g", worst)
	return ops
}

// TestGradCheckTrainingGraph differentiates through graph.TrainingGraph:
// an inference model with BatchNormalization and Dropout, rewritten into
// training mode, with the cross-entropy loss TrainingGraph adds. The
// gradients it outputs must match finite differences of its loss output in
// every parameter.
func TestGradCheckTrainingGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	gen := func(shape ...int) *tensor.Tensor { return f64(shape, func(int) float64 { return rng.NormFloat64() }) }
	b := graph.NewBuilder("bn_dropout", 17)
	x := b.Input("x", tensor.Float64, graph.D(4), graph.D(2), graph.D(3), graph.D(3))
	h := b.Op("Conv", x, b.Param("conv.w", gen(3, 2, 2, 2)), b.Param("conv.b", gen(3))).Out()
	h = b.Op("BatchNormalization", h, b.Param("bn.scale", gen(3)), b.Param("bn.bias", gen(3)),
		b.Param("bn.mean", tensor.MustFromSlice([]float64{0.1, 0, -0.1}, 3)), b.Param("bn.var", tensor.MustFromSlice([]float64{1, 2, 0.5}, 3))).
		With(aF("momentum", 0.8)).Out()
	h = b.Op("Dropout", b.Op("Flatten", b.Op("Tanh", h).Out()).Out(), b.Const(tensor.Scalar(float32(0.25)))).Out()
	y := b.Op("Gemm", h, b.Param("fc.w", gen(5, 12)), b.Param("fc.b", gen(5))).With(aI("transB", 1)).Out()
	b.Output(y)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy, LabelSmoothing: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Buffers) != 2 || tr.Seed == "" {
		t.Fatalf("the training graph has buffers %v and seed %q; want BatchNorm's two statistics and a Dropout seed", tr.Buffers, tr.Seed)
	}
	feeds := map[string]*tensor.Tensor{
		"x":       gen(4, 2, 3, 3),
		tr.Label:  tensor.MustFromSlice([]int64{0, 3, 4, 3}, 4),
		tr.Seed:   tensor.Scalar(int64(5)),
		tr.Offset: tensor.Scalar(int64(0)),
	}
	for _, name := range append(append([]string{}, tr.Params...), tr.Buffers...) {
		feeds[name] = m.Graph.Initializer(name)
	}
	be := cpu.New(cpu.Options{Threads: 1})
	dev := be.Devices()[0]
	exe, err := be.Compile(tr.Model, dev, backend.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := func(feeds map[string]*tensor.Tensor) map[string]*tensor.Tensor {
		res, err := backend.RunHost(context.Background(), be, exe, dev, feeds)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	base := run(feeds)
	names := append([]string{}, tr.Params...)
	sort.Strings(names)
	worst := paramGradCheck(t, tr, feeds, base, func(f map[string]*tensor.Tensor) float64 { return run(f)[tr.Loss].AsFloat64(0) })
	t.Logf("%d parameters %v: max |autodiff - finite difference| = %.3g", len(names), names, worst)
}

// paramGradCheck compares every parameter gradient of a training graph in
// base (its outputs for feeds, float64) with the central difference of the
// loss that lossAt computes for changed feeds, h = 1e-6, within
// 1e-6*(1+|numeric|) (the bound derived at the top of this file). It
// returns the largest difference.
func paramGradCheck(t *testing.T, tr *graph.Training, feeds, base map[string]*tensor.Tensor, lossAt func(map[string]*tensor.Tensor) float64) float64 {
	t.Helper()
	worst := 0.0
	for pi, p := range tr.Params {
		g := base[tr.Grads[pi]]
		w := feeds[p]
		for i := 0; i < w.Len(); i++ {
			plus, minus := w.Clone(), w.Clone()
			v := w.Float64s()[i]
			plus.Float64s()[i], minus.Float64s()[i] = v+1e-6, v-1e-6
			f := map[string]*tensor.Tensor{}
			for k, v := range feeds {
				f[k] = v
			}
			f[p] = plus
			lp := lossAt(f)
			f[p] = minus
			lm := lossAt(f)
			num := (lp - lm) / 2e-6
			diff := math.Abs(g.AsFloat64(i) - num)
			if !(diff <= 1e-6*(1+math.Abs(num))) { // NaN fails too
				t.Errorf("d loss / d %s[%d]: autodiff %.9g, finite difference %.9g", p, i, g.AsFloat64(i), num)
			}
			worst = math.Max(worst, diff)
		}
	}
	return worst
}
