package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Softmax, LogSoftmax and their gradients (gotrain domain).
//
// Before opset 13 ONNX coerces the input to 2-D at the axis (default 1) and
// normalises each row of the flattened trailing dims; from 13 (and for the
// gradient ops) it normalises along the single axis (default -1). Both are
// `outer` groups of `n` values spaced `inner` apart: the old semantics is
// inner == 1 with n the product of the trailing dims.

func init() {
	Register(graph.DomainONNX, "Softmax", softmaxFactory("Softmax"))
	Register(graph.DomainONNX, "LogSoftmax", softmaxFactory("LogSoftmax"))
	Register(graph.DomainGotrain, "SoftmaxGrad", softmaxFactory("SoftmaxGrad"))
	Register(graph.DomainGotrain, "LogSoftmaxGrad", softmaxFactory("LogSoftmaxGrad"))
}

// softmaxGeometry splits shape into outer groups of n elements at stride inner.
func softmaxGeometry(p *Prep, shape []int, coerce2D bool, axis int64) (outer, n, inner int, err error) {
	rank := len(shape)
	if rank == 0 {
		return 1, 1, 1, nil
	}
	a, e := graph.NormAxis(axis, rank)
	if e != nil {
		return 0, 0, 0, Errorf(p, "%v", e)
	}
	if coerce2D {
		return tensor.NumElements(shape[:a]), tensor.NumElements(shape[a:]), 1, nil
	}
	return tensor.NumElements(shape[:a]), shape[a], tensor.NumElements(shape[a+1:]), nil
}

func softmaxFactory(op string) Factory {
	return floatFactory(func(p *Prep) (Kernel, error) { return softmaxK[float32](p, op) },
		func(p *Prep) (Kernel, error) { return softmaxK[float64](p, op) })
}

func softmaxK[T elemFloat](p *Prep, op string) (Kernel, error) {
	if err := needConcrete(p); err != nil {
		return nil, err
	}
	grad := op == "SoftmaxGrad" || op == "LogSoftmaxGrad"
	coerce := !grad && p.Opset > 0 && p.Opset < 13
	def := int64(-1)
	if coerce {
		def = 1
	}
	outer, n, inner, err := softmaxGeometry(p, p.InShape(0), coerce, p.Node.AttrInt("axis", def))
	if err != nil {
		return nil, err
	}
	if grad && !tensor.SameShape(p.InShape(0), p.InShape(1)) {
		return nil, Errorf(p, "dY has shape %v but Y has %v", p.InShape(0), p.InShape(1))
	}
	var group func(y, x, x2 []T, stride int)
	switch op {
	case "Softmax":
		group = softmaxGroup[T]
	case "LogSoftmax":
		group = logSoftmaxGroup[T]
	case "SoftmaxGrad":
		group = softmaxGradGroup[T]
	case "LogSoftmaxGrad":
		group = logSoftmaxGradGroup[T]
	}
	// The chunk function is made once and reads the call's slices through
	// these variables, so a run allocates nothing.
	var x, x2, y []T
	span := max(n-1, 0)*inner + 1
	chunk := func(lo, hi int) {
		for j := lo; j < hi; j++ {
			base := (j/inner)*n*inner + j%inner
			var b2 []T
			if grad {
				b2 = x2[base : base+span]
			}
			group(y[base:base+span], x[base:base+span], b2, inner)
		}
	}
	return func(in, out []*tensor.Tensor) error {
		defer func() { x, x2, y = nil, nil, nil }()
		var err error
		if x, err = dataOf[T](p, in[0], "input 0"); err != nil {
			return err
		}
		if grad {
			if x2, err = dataOf[T](p, in[1], "input 1"); err != nil {
				return err
			}
		}
		if y, err = dataOf[T](p, out[0], "output 0"); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		p.Pool.For(outer*inner, max(1, ewGrain/4/n), chunk)
		return nil
	}, nil
}

func groupMax[T elemFloat](x []T, s int) T {
	m := T(math.Inf(-1))
	for i := 0; i < len(x); i += s {
		m = max(m, x[i])
	}
	return m
}

func softmaxGroup[T elemFloat](y, x, _ []T, s int) {
	m := float64(groupMax(x, s))
	sum := 0.0
	for i := 0; i < len(x); i += s {
		e := math.Exp(float64(x[i]) - m)
		y[i] = T(e)
		sum += e
	}
	inv := 1 / sum
	for i := 0; i < len(y); i += s {
		y[i] = T(float64(y[i]) * inv)
	}
}

func logSoftmaxGroup[T elemFloat](y, x, _ []T, s int) {
	m := float64(groupMax(x, s))
	sum := 0.0
	for i := 0; i < len(x); i += s {
		sum += math.Exp(float64(x[i]) - m)
	}
	c := m + math.Log(sum)
	for i := 0; i < len(x); i += s {
		y[i] = T(float64(x[i]) - c)
	}
}

// softmaxGradGroup: dX = Y * (dY - sum(dY * Y)).
func softmaxGradGroup[T elemFloat](dx, dy, y []T, s int) {
	dot := 0.0
	for i := 0; i < len(dy); i += s {
		dot += float64(dy[i]) * float64(y[i])
	}
	for i := 0; i < len(dy); i += s {
		dx[i] = T(float64(y[i]) * (float64(dy[i]) - dot))
	}
}

// logSoftmaxGradGroup: dX = dY - exp(Y) * sum(dY), Y the log-probabilities.
func logSoftmaxGradGroup[T elemFloat](dx, dy, y []T, s int) {
	sum := 0.0
	for i := 0; i < len(dy); i += s {
		sum += float64(dy[i])
	}
	for i := 0; i < len(dy); i += s {
		dx[i] = T(float64(dy[i]) - math.Exp(float64(y[i]))*sum)
	}
}
