package graph

import (
	"github.com/gotrain/gotrain/tensor"
)

// Optimizer update ops.
//
// Domain ai.gotrain holds the fused update ops that package optim emits:
// each reads a parameter, its gradient and its optimizer state and writes
// their new values in one elementwise pass. They are built to run in place
// (an executor may hand an output the buffer of the input it replaces), and
// take the learning rate and the step as run-time inputs so that schedules
// and bias correction never need a recompile:
//
//	SGDUpdate(param, grad, lr, step, [grad_scale], [momentum_buf]) -> (param_out, [momentum_buf_out])
//	AdamUpdate(param, grad, m, v, lr, step, [grad_scale]) -> (param_out, m_out, v_out)
//	RMSpropUpdate(param, grad, square_avg, lr, step, [grad_scale], [momentum_buf], [grad_avg])
//	    -> (param_out, square_avg_out, [momentum_buf_out], [grad_avg_out])
//	AdagradUpdate(param, grad, sum, lr, step, [grad_scale]) -> (param_out, sum_out)
//	GlobalNormScale(g1, ..., gn) -> (scale, [total_norm])
//
// param, grad and the state are float32 tensors of one shape; lr is a float32
// scalar, step an int64 scalar holding the 1-based index of this update, and
// grad_scale a float32 scalar the gradient is multiplied by before anything
// else (GlobalNormScale's output, for clipping by global norm). Every update
// op takes the attributes clip_value (clamp the scaled gradient to
// [-clip_value, clip_value] when > 0), weight_decay, decoupled (1: decay
// as AdamW, p *= 1 - lr*weight_decay; 0: add weight_decay*p to the
// gradient) and lr_scale (a multiplier on lr, for parameter groups); SGDUpdate
// also takes decoupled_weight_decay, a decoupled decay beside the coupled
// one. Op-specific attributes: SGDUpdate momentum, dampening, nesterov;
// AdamUpdate beta1, beta2, epsilon, eps_mode ("pytorch" or "keras");
// RMSpropUpdate alpha, eps, momentum, centered; AdagradUpdate lr_decay, eps
// (its initial accumulator is the initial value of the sum input). The
// formulas, which follow
// PyTorch's torch.optim, are documented with the kernels (backend/cpu/k_optim.go)
// and in package optim.
//
// Domain ai.onnx.preview.training holds ONNX's own Adam, Momentum and
// Adagrad, which update any number of tensors at once: inputs R, T, then the
// tensors X1..Xn, their gradients G1..Gn and their state (V1..Vn, H1..Hn);
// outputs the new X, then the new state, in the same grouping.

func init() {
	// The attributes every fused update shares, and each one's own.
	common := func(own map[string]AttrType) map[string]AttrType {
		m := map[string]AttrType{"lr_scale": AttrFloat, "clip_value": AttrFloat, "weight_decay": AttrFloat, "decoupled": AttrInt}
		for k, v := range own {
			m[k] = v
		}
		return m
	}
	Register(&Schema{Domain: DomainGotrain, OpType: "SGDUpdate", MinInputs: 4, MaxInputs: 6, Infer: inferUpdate(1, 2, 3, []int{5}),
		Attrs: common(map[string]AttrType{"momentum": AttrFloat, "dampening": AttrFloat, "nesterov": AttrInt, "decoupled_weight_decay": AttrFloat})})
	Register(&Schema{Domain: DomainGotrain, OpType: "AdamUpdate", MinInputs: 6, MaxInputs: 7, Infer: inferUpdate(3, 4, 5, nil),
		Attrs: common(map[string]AttrType{"beta1": AttrFloat, "beta2": AttrFloat, "epsilon": AttrFloat, "eps_mode": AttrString})})
	Register(&Schema{Domain: DomainGotrain, OpType: "RMSpropUpdate", MinInputs: 5, MaxInputs: 8, Infer: inferUpdate(2, 3, 4, []int{6, 7}),
		Attrs: common(map[string]AttrType{"alpha": AttrFloat, "eps": AttrFloat, "momentum": AttrFloat, "centered": AttrInt})})
	Register(&Schema{Domain: DomainGotrain, OpType: "AdagradUpdate", MinInputs: 5, MaxInputs: 6, Infer: inferUpdate(2, 3, 4, nil),
		Attrs: common(map[string]AttrType{"lr_decay": AttrFloat, "eps": AttrFloat})})
	Register(&Schema{Domain: DomainGotrain, OpType: "GlobalNormScale", MinInputs: 1, MaxInputs: -1, Infer: inferGlobalNormScale,
		Attrs: map[string]AttrType{"max_norm": AttrFloat}})

	Register(&Schema{Domain: DomainTraining, OpType: "Adam", MinInputs: 6, MaxInputs: -1, Infer: inferTrainingOp(4)})
	Register(&Schema{Domain: DomainTraining, OpType: "Momentum", MinInputs: 5, MaxInputs: -1, Infer: inferTrainingOp(3)})
	Register(&Schema{Domain: DomainTraining, OpType: "Adagrad", MinInputs: 5, MaxInputs: -1, Infer: inferTrainingOp(3)})
}

// inferUpdate checks the inputs of a fused update op whose tensors shaped
// like the parameter come first (param, grad, then nState state slots), then
// lr at lrAt, step at stepAt, the optional grad_scale right after, and the
// optional state inputs at the positions listed in optional. Output 0 is the
// new parameter; output k >= 1 the new value of the k-th state tensor, the
// required slots first, then the optional ones in order.
func inferUpdate(nState, lrAt, stepAt int, optional []int) InferFunc {
	return func(n *Node, in []*Type, _ int64) ([]*Type, error) {
		if err := requireInputs(n, in, stepAt+1); err != nil {
			return nil, err
		}
		p := in[0]
		if p.DType != tensor.Float32 {
			return nil, Errorf(n, "param (input 0) must be float32, got %v", p.DType)
		}
		// Tensors shaped like the parameter: grad, the required state slots
		// and the optional ones.
		like := []int{}
		for i := 1; i < lrAt; i++ {
			like = append(like, i)
		}
		for _, i := range optional {
			if i < len(in) && in[i] != nil {
				like = append(like, i)
			}
		}
		for _, i := range like {
			if err := sameParamType(n, p, in[i], i); err != nil {
				return nil, err
			}
		}
		if err := scalarInput(n, in[lrAt], lrAt, "lr", tensor.Float32); err != nil {
			return nil, err
		}
		if err := scalarInput(n, in[stepAt], stepAt, "step", tensor.Int64); err != nil {
			return nil, err
		}
		if gs := stepAt + 1; gs < len(in) && in[gs] != nil {
			if err := scalarInput(n, in[gs], gs, "grad_scale", tensor.Float32); err != nil {
				return nil, err
			}
		}
		out := []*Type{same(p)}
		for i := 0; i < nState; i++ {
			out = append(out, same(p))
		}
		for range optional {
			out = append(out, same(p))
		}
		return out, nil
	}
}

// sameParamType checks that input i has the parameter's dtype and shape.
func sameParamType(n *Node, p, t *Type, i int) error {
	if t.DType != p.DType {
		return Errorf(n, "input %d (%s) has dtype %v; the parameter (input 0) is %v", i, n.Input(i), t.DType, p.DType)
	}
	if p.RankKnown && t.RankKnown && !shapesCompatible(p.Shape, t.Shape) {
		return Errorf(n, "input %d (%s) has shape %v; the parameter (input 0) is %v", i, n.Input(i), t.Shape, p.Shape)
	}
	return nil
}

// shapesCompatible reports whether two shapes may be equal: same rank and
// no pair of known dims that differ.
func shapesCompatible(a, b Shape) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Known() && b[i].Known() && a[i].Size != b[i].Size {
			return false
		}
	}
	return true
}

// scalarInput checks that input i is a scalar (or a one-element tensor) of dtype dt.
func scalarInput(n *Node, t *Type, i int, what string, dt tensor.DType) error {
	if t.DType != dt {
		return Errorf(n, "%s (input %d) must be %v, got %v", what, i, dt, t.DType)
	}
	if t.RankKnown {
		for _, d := range t.Shape {
			if d.Known() && d.Size != 1 {
				return Errorf(n, "%s (input %d) must be a scalar, got shape %v", what, i, t.Shape)
			}
		}
	}
	return nil
}

func inferGlobalNormScale(n *Node, in []*Type, _ int64) ([]*Type, error) {
	for i, t := range in {
		if t == nil {
			return nil, Errorf(n, "input %d is required", i)
		}
		if t.DType != tensor.Float32 {
			return nil, Errorf(n, "input %d (%s) must be float32, got %v", i, n.Input(i), t.DType)
		}
	}
	if a := n.Attr("max_norm"); a == nil || !(a.F > 0) {
		return nil, Errorf(n, "attribute max_norm must be given and positive")
	}
	return []*Type{NewType(tensor.Float32, Shape{}), NewType(tensor.Float32, Shape{})}, nil
}

// inferTrainingOp checks ONNX's training ops: R, T, then groups tensors of
// n each (X, G and the state), with outputs X_new then the new state.
func inferTrainingOp(groups int) InferFunc {
	return func(n *Node, in []*Type, _ int64) ([]*Type, error) {
		if err := requireInputs(n, in, len(in)); err != nil {
			return nil, err
		}
		if (len(in)-2)%groups != 0 {
			return nil, Errorf(n, "has %d inputs; %s takes R, T and %d groups of equally many tensors", len(in), n.OpType, groups)
		}
		if !in[0].DType.IsFloat() {
			return nil, Errorf(n, "R (input 0) must be a floating-point scalar, got %v", in[0].DType)
		}
		if in[1].DType != tensor.Int64 {
			return nil, Errorf(n, "T (input 1) must be int64, got %v", in[1].DType)
		}
		k := (len(in) - 2) / groups
		for j := 0; j < k; j++ {
			x := in[2+j]
			if x.DType != tensor.Float32 && x.DType != tensor.Float64 {
				return nil, Errorf(n, "input %d (%s) must be float or double, got %v", 2+j, n.Input(2+j), x.DType)
			}
			for g := 1; g < groups; g++ {
				if err := sameParamType(n, x, in[2+g*k+j], 2+g*k+j); err != nil {
					return nil, err
				}
			}
		}
		// Outputs: X_new for each tensor, then each state group (not G).
		var out []*Type
		for g := 0; g < groups; g++ {
			if g == 1 {
				continue
			}
			for j := 0; j < k; j++ {
				out = append(out, same(in[2+g*k+j]))
			}
		}
		return out, nil
	}
}
