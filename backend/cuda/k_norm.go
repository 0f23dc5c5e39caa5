package cuda

import (
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Normalisation kernels (kernels/norm.cu).

var nmMod = newModule("norm", "norm.cu")

var (
	bnCoef  = nmMod.Def("bn_coef_k", "float* coef, const float* scale, const float* bias, const float* mean, const float* var, int c, double eps", "bn_coef(coef, scale, bias, mean, var, c, eps);")
	bnApply = nmMod.Def("bn_apply_k", "float* y, const float* x, const float* coef, int n, int c, int s", "bn_apply(y, x, coef, n, c, s);")
	bnTrain = nmMod.Def("bn_train_k", "float* y, float* rm, float* rv, float* sm, float* si, const float* x, const float* scale, const float* bias, const float* rmIn, const float* rvIn, int n, int c, int s, double eps, double momentum",
		"bn_train(y, rm, rv, sm, si, x, scale, bias, rmIn, rvIn, n, c, s, eps, momentum);")
	bnGrad = nmMod.Def("bn_grad_k", "float* dx, float* dscale, float* dbias, const float* dy, const float* x, const float* scale, const float* mean, const float* invStd, int n, int c, int s",
		"bn_grad(dx, dscale, dbias, dy, x, scale, mean, invStd, n, c, s);")
	lnForward = nmMod.Def("ln_forward_k", "float* y, float* meanOut, float* invOut, const float* x, const float* scale, const float* bias, int inner, double eps",
		"ln_forward(y, meanOut, invOut, x, scale, bias, inner, eps);")
	lnGradX      = nmMod.Def("ln_grad_x_k", "float* dx, const float* dy, const float* x, const float* scale, const float* mean, const float* invStd, int inner", "ln_grad_x(dx, dy, x, scale, mean, invStd, inner);")
	lnGradParams = nmMod.Def("ln_grad_params_k", "float* dscale, float* dbias, const float* dy, const float* x, const float* mean, const float* invStd, int rows, int inner",
		"ln_grad_params(dscale, dbias, dy, x, mean, invStd, rows, inner);")
)

func init() {
	Register(graph.DomainONNX, "BatchNormalization", bnFactory)
	Register(graph.DomainGotrain, "BatchNormTrain", bnTrainFactory)
	Register(graph.DomainGotrain, "BatchNormGrad", bnGradFactory)
	Register(graph.DomainONNX, "LayerNormalization", lnFactory)
	Register(graph.DomainGotrain, "LayerNormGrad", lnGradFactory)
}

// ncs splits N x C x D1... into N, C and the spatial size.
func ncs(p *Prep, x []int) (n, c, s int, err error) {
	if len(x) < 2 {
		return 0, 0, 0, Errorf(p, "input X has shape %v, expected N x C x ... (rank >= 2)", x)
	}
	if _, err := numel(p, x, "X"); err != nil {
		return 0, 0, 0, err
	}
	return x[0], x[1], tensor.NumElements(x[2:]), nil
}

func checkVecs(p *Prep, c, first int, names ...string) error {
	for i, name := range names {
		if err := needF32(p, first+i, name); err != nil {
			return err
		}
		if sh := p.InShape(first + i); len(sh) != 1 || sh[0] != c {
			return Errorf(p, "input %s has shape %v, expected [%d]", name, sh, c)
		}
	}
	return nil
}

// bnFactory: BatchNormalization in inference mode (training graphs use
// BatchNormTrain).
func bnFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "X"); err != nil {
		return nil, err
	}
	n, c, s, err := ncs(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	if p.Node.AttrInt("spatial", 1) == 0 {
		return nil, Unsupported(p, "spatial=0 (per-element statistics)")
	}
	if err := checkVecs(p, c, 1, "scale", "B", "input_mean", "input_var"); err != nil {
		return nil, err
	}
	training := p.Node.AttrInt("training_mode", 0) != 0
	if p.Opset < 14 {
		training = false
		for _, o := range p.Node.Outputs[1:] {
			training = training || o != ""
		}
	}
	if training {
		return nil, Unsupported(p, "training-mode BatchNormalization (training graphs use BatchNormTrain)")
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	total := n * c * s
	return &Kernel{Scratch: []int64{8 * int64(max(c, 1))}, Run: func(k *Call) error {
		if total == 0 {
			return nil
		}
		if err := k.S.Launch(bnCoef, grid1(c), block1, 0, k.A(P(k.Scratch[0]), P(k.In[1]), P(k.In[2]), P(k.In[3]), P(k.In[4]), I(c), D(eps))); err != nil {
			return err
		}
		return k.S.Launch(bnApply, grid1(total), block1, 0, k.A(P(k.Out[0]), P(k.In[0]), P(k.Scratch[0]), I(total), I(c), I(s)))
	}}, nil
}

func bnTrainFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "X"); err != nil {
		return nil, err
	}
	n, c, s, err := ncs(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	if err := checkVecs(p, c, 1, "scale", "B", "running_mean", "running_var"); err != nil {
		return nil, err
	}
	if n*s < 2 {
		return nil, Errorf(p, "input X has shape %v: batch-norm training needs more than one value per channel", p.InShape(0))
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	momentum := float64(p.Node.AttrFloat("momentum", 0.9))
	return &Kernel{Run: func(k *Call) error {
		if c == 0 {
			return nil
		}
		return k.S.Launch(bnTrain, Dim3{c, 1, 1}, block1, 0, k.A(P(optOut(k, 0)), P(optOut(k, 1)), P(optOut(k, 2)), P(optOut(k, 3)), P(optOut(k, 4)),
			P(k.In[0]), P(k.In[1]), P(k.In[2]), P(k.In[3]), P(k.In[4]), I(n), I(c), I(s), D(eps), D(momentum)))
	}}, nil
}

func bnGradFactory(p *Prep) (*Kernel, error) {
	for i, name := range []string{"dY", "X"} {
		if err := needF32(p, i, name); err != nil {
			return nil, err
		}
	}
	n, c, s, err := ncs(p, p.InShape(1))
	if err != nil {
		return nil, err
	}
	if !tensor.SameShape(p.InShape(0), p.InShape(1)) {
		return nil, Errorf(p, "dY is %v but X is %v; they must match", p.In[0], p.In[1])
	}
	if err := checkVecs(p, c, 2, "scale", "saved_mean", "saved_inv_std"); err != nil {
		return nil, err
	}
	return &Kernel{Run: func(k *Call) error {
		if c == 0 || n*s == 0 {
			return nil
		}
		return k.S.Launch(bnGrad, Dim3{c, 1, 1}, block1, 0, k.A(P(optOut(k, 0)), P(optOut(k, 1)), P(optOut(k, 2)),
			P(k.In[0]), P(k.In[1]), P(k.In[2]), P(k.In[3]), P(k.In[4]), I(n), I(c), I(s)))
	}}, nil
}

// lnGeom splits X at axis into rows of inner elements and checks that the
// parameters (inputs first..) have exactly the row's shape (broadcast
// parameters are refused).
func lnGeom(p *Prep, x []int, first int, names ...string) (rows, inner int, err error) {
	a, err := graph.NormAxis(p.Node.AttrInt("axis", -1), len(x))
	if err != nil {
		return 0, 0, Errorf(p, "attribute axis: %v", err)
	}
	if _, err := numel(p, x, "X"); err != nil {
		return 0, 0, err
	}
	rows, inner = tensor.NumElements(x[:a]), tensor.NumElements(x[a:])
	for i, name := range names {
		if !p.hasIn(first + i) {
			continue
		}
		if err := needF32(p, first+i, name); err != nil {
			return 0, 0, err
		}
		sh := p.InShape(first + i)
		if tensor.NumElements(sh) != inner || len(sh) > len(x)-a || !tensor.SameShape(sh, x[len(x)-len(sh):]) {
			return 0, 0, Unsupported(p, "input %s of shape %v over rows %v (only parameters shaped like the row)", name, sh, x[a:])
		}
	}
	return rows, inner, nil
}

func lnFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "X"); err != nil {
		return nil, err
	}
	rows, inner, err := lnGeom(p, p.InShape(0), 1, "Scale", "B")
	if err != nil {
		return nil, err
	}
	if !p.hasIn(1) {
		return nil, Errorf(p, "input Scale is required")
	}
	for i := 1; i < 3; i++ {
		if p.hasOut(i) && p.Out[i].DType != tensor.Float32 {
			return nil, Unsupported(p, "output %d of %v", i, p.Out[i].DType)
		}
	}
	eps := float64(p.Node.AttrFloat("epsilon", 1e-5))
	return &Kernel{Run: func(k *Call) error {
		if rows == 0 || inner == 0 {
			return nil
		}
		return k.S.Launch(lnForward, Dim3{rows, 1, 1}, block1, 0, k.A(P(optOut(k, 0)), P(optOut(k, 1)), P(optOut(k, 2)),
			P(k.In[0]), P(k.In[1]), P(optIn(k, 2)), I(inner), D(eps)))
	}}, nil
}

func lnGradFactory(p *Prep) (*Kernel, error) {
	for i, name := range []string{"dY", "X", "scale", "mean", "inv_std"} {
		if err := needF32(p, i, name); err != nil {
			return nil, err
		}
	}
	x := p.InShape(1)
	if !tensor.SameShape(p.InShape(0), x) {
		return nil, Errorf(p, "dY is %v but X is %v; they must match", p.In[0], p.In[1])
	}
	rows, inner, err := lnGeom(p, x, 2, "scale")
	if err != nil {
		return nil, err
	}
	for i, name := range []string{"mean", "inv_std"} {
		if tensor.NumElements(p.InShape(3+i)) != rows {
			return nil, Errorf(p, "input %s has shape %v, expected %d values (one per normalised row)", name, p.InShape(3+i), rows)
		}
	}
	return &Kernel{Run: func(k *Call) error {
		if rows == 0 || inner == 0 {
			return nil
		}
		if dx := optOut(k, 0); dx != 0 {
			if err := k.S.Launch(lnGradX, Dim3{rows, 1, 1}, block1, 0, k.A(P(dx), P(k.In[0]), P(k.In[1]), P(k.In[2]), P(k.In[3]), P(k.In[4]), I(inner))); err != nil {
				return err
			}
		}
		ds, db := optOut(k, 1), optOut(k, 2)
		if ds == 0 && db == 0 {
			return nil
		}
		return k.S.Launch(lnGradParams, grid1(inner), block1, 0, k.A(P(ds), P(db), P(k.In[0]), P(k.In[1]), P(k.In[3]), P(k.In[4]), I(rows), I(inner)))
	}}, nil
}
