package cuda

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Elementwise kernels (kernels/elementwise.cu): unary math, broadcasting
// arithmetic and comparisons, variadic Sum/Max/Min/Mean, Where, Clip, Cast,
// Not, Expand and the activation gradients. float32 throughout, with int64
// and int32 where graphs need them (comparisons of labels, integer
// arithmetic on shapes); other dtypes are refused with an error naming the
// op.

var ewMod = newModule("elementwise", "elementwise.cu")

// ewFuncs holds the entry points by "op/dtype".
var ewFuncs = map[string]*Func{}

func ewDef(key, name, params, body string) {
	ewFuncs[key] = ewMod.Def(name, params, body)
}

var unaryDouble = map[string]string{
	"Abs": "UAbs", "Sigmoid": "USigmoid", "Tanh": "UTanh", "Erf": "UErf", "Sqrt": "USqrt",
	"Exp": "UExp", "Log": "ULog", "Gelu": "UGelu", "GeluTanh": "UGeluTanh",
}

var binaryOps = map[string]string{"Add": "BAdd", "Sub": "BSub", "Mul": "BMul", "Div": "BDiv", "Pow": "BPow",
	"Max": "BMax", "Min": "BMin"}
var compareOps = map[string]string{"Equal": "CEq", "Greater": "CGt", "Less": "CLt", "GreaterOrEqual": "CGe", "LessOrEqual": "CLe"}
var gradOps = map[string]string{"ReluGrad": "GRelu", "SigmoidGrad": "GSigmoid", "TanhGrad": "GTanh",
	"GeluGrad": "GGelu", "GeluGradTanh": "GGeluTanh"}

func init() {
	for op, f := range unaryDouble {
		ewDef(op+"/f32", "ew_"+op+"_f32", "float* y, const float* x, int n", "ew_unary_d<float, "+f+">(y, x, n);")
	}
	ewDef("Relu/f32", "ew_relu_f32", "float* y, const float* x, int n", "ew_relu<float>(y, x, n);")
	ewDef("LeakyRelu/f32", "ew_leaky_relu_f32", "float* y, const float* x, int n, float alpha", "ew_leaky_relu<float>(y, x, n, alpha);")
	ewDef("Reciprocal/f32", "ew_reciprocal_f32", "float* y, const float* x, int n", "ew_reciprocal<float>(y, x, n);")
	for _, sfx := range []string{"f32", "i64", "i32"} {
		t := ctypeOf(sfx)
		ewDef("Neg/"+sfx, "ew_neg_"+sfx, fmt.Sprintf("%s* y, const %s* x, int n", t, t), fmt.Sprintf("ew_neg<%s>(y, x, n);", t))
		for op, f := range binaryOps {
			if sfx != "f32" && op == "Pow" {
				continue
			}
			ewDef(op+"/"+sfx, "ew_"+op+"_"+sfx, fmt.Sprintf("%s* y, const %s* a, const %s* b, const int* geo, int n", t, t, t),
				fmt.Sprintf("ew_binary<%s, %s, %s>(y, a, b, geo, n);", t, t, f))
		}
		for op, f := range compareOps {
			ewDef(op+"/"+sfx, "ew_"+op+"_"+sfx, fmt.Sprintf("u8* y, const %s* a, const %s* b, const int* geo, int n", t, t),
				fmt.Sprintf("ew_binary<%s, u8, %s>(y, a, b, geo, n);", t, f))
		}
		ewDef("Clip/"+sfx, "ew_clip_"+sfx, fmt.Sprintf("%s* y, const %s* x, const %s* lo, const %s* hi, int n", t, t, t, t),
			fmt.Sprintf("ew_clip<%s>(y, x, lo, hi, n);", t))
		ewDef("Scale/"+sfx, "ew_scale_"+sfx, fmt.Sprintf("%s* y, int n, %s s", t, map[string]string{"f32": "float", "i64": "i64", "i32": "int"}[sfx]),
			fmt.Sprintf("ew_scale<%s>(y, n, s);", t))
	}
	for _, sfx := range []string{"f32", "f64", "i64", "i32", "u8"} {
		t := ctypeOf(sfx)
		ewDef("Where/"+sfx, "ew_where_"+sfx, fmt.Sprintf("%s* y, const u8* c, const %s* a, const %s* b, const int* geo, int n", t, t, t),
			fmt.Sprintf("ew_where<%s>(y, c, a, b, geo, n);", t))
		ewDef("Bcast/"+sfx, "ew_bcast_"+sfx, fmt.Sprintf("%s* y, const %s* x, const int* geo, int n", t, t),
			fmt.Sprintf("ew_bcast<%s>(y, x, geo, n);", t))
		for _, dst := range []string{"f32", "f64", "i64", "i32", "u8"} {
			if dst == sfx {
				continue
			}
			d := ctypeOf(dst)
			body := fmt.Sprintf("ew_cast<%s, %s>(y, x, n);", t, d)
			if dst == "u8" {
				body = fmt.Sprintf("ew_cast_bool<%s>(y, x, n);", t)
			}
			ewDef("Cast/"+sfx+"/"+dst, "ew_cast_"+sfx+"_"+dst, fmt.Sprintf("%s* y, const %s* x, int n", d, t), body)
		}
	}
	for op, f := range gradOps {
		ewDef(op+"/f32", "ew_"+op+"_f32", "float* y, const float* dy, const float* v, const int* geo, int n",
			"ew_binary<float, float, "+f+">(y, dy, v, geo, n);")
	}
	ewDef("LeakyReluGrad/f32", "ew_leaky_relu_grad_f32", "float* y, const float* dy, const float* x, const int* geo, int n, float alpha",
		"ew_leaky_relu_grad<float>(y, dy, x, geo, n, alpha);")
	ewDef("Not/u8", "ew_not_u8", "u8* y, const u8* x, int n", "ew_not(y, x, n);")

	for _, op := range []string{"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Gelu", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal"} {
		Register(graph.DomainONNX, op, unaryFactory(op))
	}
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow"} {
		Register(graph.DomainONNX, op, binaryFactory(op))
	}
	for op := range compareOps {
		Register(graph.DomainONNX, op, binaryFactory(op))
	}
	for _, op := range []string{"Max", "Min", "Sum", "Mean"} {
		Register(graph.DomainONNX, op, variadicFactory(op))
	}
	for _, op := range []string{"ReluGrad", "SigmoidGrad", "TanhGrad", "LeakyReluGrad", "GeluGrad"} {
		Register(graph.DomainGotrain, op, binaryFactory(op))
	}
	Register(graph.DomainONNX, "Where", whereFactory)
	Register(graph.DomainONNX, "Clip", clipFactory)
	Register(graph.DomainONNX, "Cast", castFactory)
	Register(graph.DomainONNX, "CastLike", castFactory)
	Register(graph.DomainONNX, "Not", notFactory)
	Register(graph.DomainONNX, "Expand", expandFactory)
	for _, op := range []string{"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"} {
		RegisterAlias(graph.DomainONNX, op)
	}
}

// ewFunc looks up an entry point, or refuses the dtype.
func ewFunc(p *Prep, key string, dt tensor.DType) (*Func, error) {
	sfx, ok := suffixOf(dt)
	if ok {
		if f := ewFuncs[key+"/"+sfx]; f != nil {
			return f, nil
		}
	}
	return nil, Unsupported(p, "%s of %v", p.Node.OpType, dt)
}

func unaryFactory(op string) Factory {
	return func(p *Prep) (*Kernel, error) {
		key := op
		if op == "Gelu" {
			switch a := p.Node.AttrString("approximate", "none"); a {
			case "none":
			case "tanh":
				key = "GeluTanh"
			default:
				return nil, Errorf(p, "attribute approximate is %q; want \"none\" or \"tanh\"", a)
			}
		}
		f, err := ewFunc(p, key, p.In[0].DType)
		if err != nil {
			return nil, err
		}
		n, err := numel(p, p.OutShape(0), "output 0")
		if err != nil {
			return nil, err
		}
		if op == "LeakyRelu" {
			return flatKernel(f, n, F(p.Node.AttrFloat("alpha", 0.01))), nil
		}
		return flatKernel(f, n), nil
	}
}

// flatKernel launches f(output 0, input 0, n, extra...) over n elements.
func flatKernel(f *Func, n int, extra ...Arg) *Kernel {
	return &Kernel{Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		a := append(c.A(P(c.Out[0]), P(c.In[0]), I(n)), extra...)
		return c.S.Launch(f, grid1(n), block1, 0, a)
	}}
}

// binaryFactory serves the arithmetic ops, comparisons and activation
// gradients: y = f(in0, in1) with broadcasting.
func binaryFactory(op string) Factory {
	return func(p *Prep) (*Kernel, error) {
		if len(p.In) != 2 || !p.hasIn(0) || !p.hasIn(1) {
			return nil, Errorf(p, "expected 2 inputs")
		}
		if p.In[0].DType != p.In[1].DType {
			if op == "Pow" { // ONNX allows another exponent dtype
				return nil, Unsupported(p, "Pow of %v to a %v exponent", p.In[0].DType, p.In[1].DType)
			}
			return nil, Errorf(p, "inputs have dtypes %v and %v; they must match", p.In[0].DType, p.In[1].DType)
		}
		key := op
		if op == "GeluGrad" {
			switch a := p.Node.AttrString("approximate", "none"); a {
			case "none":
			case "tanh":
				key = "GeluGradTanh"
			default:
				return nil, Errorf(p, "attribute approximate is %q; want \"none\" or \"tanh\"", a)
			}
		}
		f, err := ewFunc(p, key, p.In[0].DType)
		if err != nil {
			return nil, err
		}
		out := p.OutShape(0)
		n, err := numel(p, out, "output 0")
		if err != nil {
			return nil, err
		}
		geo, err := bcastGeo(out, p.InShape(0), p.InShape(1))
		if err != nil {
			return nil, Errorf(p, "%v", err)
		}
		alpha := p.Node.AttrFloat("alpha", 0.01)
		return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
			if n == 0 {
				return nil
			}
			if op == "LeakyReluGrad" {
				return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(c.Consts[0]), I(n), F(alpha)))
			}
			return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(c.Consts[0]), I(n)))
		}}, nil
	}
}

// variadicFactory: the output starts as input 0 broadcast, the other inputs
// are folded in one by one (the CPU's order), and Mean divides by the count.
func variadicFactory(op string) Factory {
	return func(p *Prep) (*Kernel, error) {
		dt := p.In[0].DType
		fold := map[string]string{"Max": "Max", "Min": "Min", "Sum": "Add", "Mean": "Add"}[op]
		ff, err := ewFunc(p, fold, dt)
		if err != nil {
			return nil, err
		}
		bf, err := ewFunc(p, "Bcast", dt)
		if err != nil {
			return nil, err
		}
		if (op == "Mean" || op == "Sum") && dt != tensor.Float32 {
			return nil, Unsupported(p, "%s of %v", op, dt)
		}
		sf := ewFuncs["Scale/f32"]
		out := p.OutShape(0)
		n, err := numel(p, out, "output 0")
		if err != nil {
			return nil, err
		}
		k := &Kernel{}
		for i := range p.In {
			if !p.hasIn(i) {
				return nil, Errorf(p, "input %d is missing", i)
			}
			if p.In[i].DType != dt {
				return nil, Errorf(p, "input %d has dtype %v; expected %v", i, p.In[i].DType, dt)
			}
			var geo []int32
			if i == 0 {
				geo, err = bcastGeo(out, p.InShape(0))
			} else {
				geo, err = bcastGeo(out, out, p.InShape(i))
			}
			if err != nil {
				return nil, Errorf(p, "input %d: %v", i, err)
			}
			k.Consts = append(k.Consts, geo)
		}
		count := float32(len(p.In))
		k.Run = func(c *Call) error {
			if n == 0 {
				return nil
			}
			if err := c.S.Launch(bf, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.Consts[0]), I(n))); err != nil {
				return err
			}
			for i := 1; i < len(c.In); i++ {
				if err := c.S.Launch(ff, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.Out[0]), P(c.In[i]), P(c.Consts[i]), I(n))); err != nil {
					return err
				}
			}
			if op == "Mean" {
				return c.S.Launch(sf, grid1(n), block1, 0, c.A(P(c.Out[0]), I(n), F(count)))
			}
			return nil
		}
		return k, nil
	}
}

func whereFactory(p *Prep) (*Kernel, error) {
	if p.In[0].DType != tensor.Bool {
		return nil, Errorf(p, "condition has dtype %v; expected bool", p.In[0].DType)
	}
	if p.In[1].DType != p.In[2].DType {
		return nil, Errorf(p, "inputs X and Y have dtypes %v and %v; they must match", p.In[1].DType, p.In[2].DType)
	}
	f, err := ewFunc(p, "Where", p.In[1].DType)
	if err != nil {
		return nil, err
	}
	out := p.OutShape(0)
	n, err := numel(p, out, "output 0")
	if err != nil {
		return nil, err
	}
	geo, err := bcastGeo(out, p.InShape(0), p.InShape(1), p.InShape(2))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.Consts[0]), I(n)))
	}}, nil
}

// clipFactory: bounds from inputs 1 and 2 (opset 11 on) are device
// scalars the kernel reads; before opset 11 they are attributes, which
// this backend does not implement (graphs it trains use opset 17).
func clipFactory(p *Prep) (*Kernel, error) {
	if p.Opset < 11 {
		return nil, Unsupported(p, "Clip before opset 11 (bounds as attributes)")
	}
	f, err := ewFunc(p, "Clip", p.In[0].DType)
	if err != nil {
		return nil, err
	}
	n, err := numel(p, p.OutShape(0), "output 0")
	if err != nil {
		return nil, err
	}
	for i := 1; i < 3; i++ {
		if p.hasIn(i) && (p.In[i].DType != p.In[0].DType || tensor.NumElements(p.InShape(i)) != 1) {
			return nil, Errorf(p, "input %d is %v; expected a %v scalar", i, p.In[i], p.In[0].DType)
		}
	}
	return &Kernel{Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		var lo, hi Ptr
		if len(c.In) > 1 {
			lo = c.In[1]
		}
		if len(c.In) > 2 {
			hi = c.In[2]
		}
		return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(lo), P(hi), I(n)))
	}}, nil
}

func castFactory(p *Prep) (*Kernel, error) {
	from, to := p.In[0].DType, p.Out[0].DType
	n, err := numel(p, p.OutShape(0), "output 0")
	if err != nil {
		return nil, err
	}
	bytes := int64(n) * dtypeSize(to)
	if from == to || (from == tensor.Bool && to == tensor.Uint8) {
		return &Kernel{Run: func(c *Call) error {
			if c.Out[0] == c.In[0] || bytes == 0 {
				return nil
			}
			return c.S.Copy(c.Out[0], c.In[0], bytes)
		}}, nil
	}
	fs, ok1 := suffixOf(from)
	ts, ok2 := suffixOf(to)
	f := ewFuncs["Cast/"+fs+"/"+ts]
	if !ok1 || !ok2 || f == nil || to == tensor.Uint8 || (from == tensor.Uint8 && to == tensor.Bool) {
		return nil, Unsupported(p, "Cast from %v to %v", from, to)
	}
	return flatKernel(f, n), nil
}

func notFactory(p *Prep) (*Kernel, error) {
	if p.In[0].DType != tensor.Bool {
		return nil, Unsupported(p, "Not of %v", p.In[0].DType)
	}
	n, err := numel(p, p.OutShape(0), "output 0")
	if err != nil {
		return nil, err
	}
	return flatKernel(ewFuncs["Not/u8"], n), nil
}

// expandFactory broadcasts input 0 to the output shape (input 1, the
// target shape, is already folded into the inferred output type).
func expandFactory(p *Prep) (*Kernel, error) {
	f, err := ewFunc(p, "Bcast", p.In[0].DType)
	if err != nil {
		return nil, err
	}
	out := p.OutShape(0)
	n, err := numel(p, out, "output 0")
	if err != nil {
		return nil, err
	}
	geo, err := bcastGeo(out, p.InShape(0))
	if err != nil {
		return nil, Errorf(p, "%v", err)
	}
	return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		return c.S.Launch(f, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.Consts[0]), I(n)))
	}}, nil
}
