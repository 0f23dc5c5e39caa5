package cuda

import (
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Dropout (kernels/dropout.cu). DropoutTrain draws the CPU backend's masks
// bit for bit; ONNX's Dropout runs in inference mode only (its
// training-mode mask is a Mersenne Twister stream, which training graphs
// never use: they rewrite Dropout into DropoutTrain).

var drMod = newModule("dropout", "dropout.cu")

var (
	drTrain    = drMod.Def("dr_train_f32", "float* y, u8* mask, const float* x, const float* ratio, const i64* seed, const i64* offset, int rows, int per, int* status", "dr_train<float>(y, mask, x, ratio, seed, offset, rows, per, status);")
	drIdentity = drMod.Def("dr_identity_f32", "float* y, u8* mask, const float* x, int n", "dr_identity<float>(y, mask, x, n);")
	// DropoutBitsFunc writes graph.DropoutBits for elements [0, n) of one
	// sample: (out, seed, sample, n). Tests use it to check the hash.
	DropoutBitsFunc = drMod.Def("dr_bits_k", "u64* out, i64 seed, i64 sample, int n", "dr_bits(out, seed, sample, n);")
)

func init() {
	Register(graph.DomainGotrain, "DropoutTrain", dropoutTrainFactory)
	Register(graph.DomainONNX, "Dropout", dropoutFactory)
}

func dropoutTrainFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "X"); err != nil {
		return nil, err
	}
	for i, c := range []struct {
		name string
		dt   tensor.DType
	}{{"ratio", tensor.Float32}, {"seed", tensor.Int64}, {"offset", tensor.Int64}} {
		if !p.hasIn(1+i) || p.In[1+i].DType != c.dt || tensor.NumElements(p.InShape(1+i)) != 1 {
			return nil, Errorf(p, "input %s is %v, expected a %v scalar", c.name, p.In[1+i], c.dt)
		}
	}
	xs := p.InShape(0)
	n, err := numel(p, xs, "X")
	if err != nil {
		return nil, err
	}
	rows, per := 1, 1
	if len(xs) > 0 {
		rows = xs[0]
		per = tensor.NumElements(xs[1:])
	}
	return &Kernel{
		Status: func(int32) error { return Errorf(p, "ratio is outside [0, 1]") },
		Run: func(c *Call) error {
			if n == 0 {
				return nil
			}
			return c.S.Launch(drTrain, grid1(n), block1, 0, c.A(P(c.Out[0]), P(optOut(c, 1)), P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.In[3]),
				I(rows), I(per), P(c.Status)))
		}}, nil
}

// dropoutFactory: inference mode, which is all a graph without a
// training_mode input (or with a constant false one) can be.
func dropoutFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "X"); err != nil {
		return nil, err
	}
	if p.Opset >= 12 && p.hasIn(2) {
		v := p.In[2].Value
		if v == nil || v.Len() != 1 || v.Bools() == nil {
			return nil, Unsupported(p, "Dropout with a training_mode input that is not a constant")
		}
		if v.Bools()[0] {
			return nil, Unsupported(p, "training-mode Dropout (training graphs use DropoutTrain)")
		}
	}
	if p.hasOut(1) && p.Out[1].DType != tensor.Bool {
		return nil, Unsupported(p, "a mask of %v", p.Out[1].DType)
	}
	n, err := numel(p, p.InShape(0), "X")
	if err != nil {
		return nil, err
	}
	return &Kernel{Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		return c.S.Launch(drIdentity, grid1(n), block1, 0, c.A(P(c.Out[0]), P(optOut(c, 1)), P(c.In[0]), I(n)))
	}}, nil
}
