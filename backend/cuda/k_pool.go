package cuda

import (
	"strings"

	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Pooling kernels (kernels/pool.cu).

var plMod = newModule("pool", "pool.cu")

var (
	poolMax     = plMod.Def("pool_max_f32", "float* y, i64* ind, const float* x, const int* geo, int colMajor, int chunks", "pool_max<float>(y, ind, x, geo, colMajor, chunks);")
	poolAvg     = plMod.Def("pool_avg_f32", "float* y, const float* x, const int* geo, int n, int includePad", "pool_avg<float>(y, x, geo, n, includePad);")
	poolAvgGrad = plMod.Def("pool_avg_grad_f32", "float* dx, const float* dy, const int* geo, int n, int includePad", "pool_avg_grad<float>(dx, dy, geo, n, includePad);")
	poolMaxGrad = plMod.Def("pool_max_grad_f32", "float* dx, const float* dy, const i64* ind, const float* x, int planes, int inPlane, int outPlane, int relu, int* status",
		"pool_max_grad<float>(dx, dy, ind, x, planes, inPlane, outPlane, relu, status);")
	poolMaxGradGather = plMod.Def("pool_max_grad_gather_f32", "float* dx, const float* dy, const i64* ind, const float* x, const int* geo, int relu, int chunks",
		"pool_max_grad_gather<float>(dx, dy, ind, x, geo, relu, chunks);")
	poolIndCheck = plMod.Def("pool_ind_check_k", "const i64* ind, int n, int inPlane, int outPlane, int* status", "pool_ind_check(ind, n, inPlane, outPlane, status);")
	poolGlobal   = plMod.Def("pool_global_f32", "float* y, const float* x, int planes, int inner, int isMax", "pool_global<float>(y, x, planes, inner, isMax);")
)

func init() {
	Register(graph.DomainONNX, "MaxPool", maxPoolFactory)
	Register(graph.DomainONNX, "AveragePool", avgPoolFactory(false))
	Register(graph.DomainGotrain, "AveragePoolGrad", avgPoolFactory(true))
	Register(graph.DomainGotrain, "MaxPoolGrad", maxPoolGradFactory)
	Register(graph.DomainONNX, "GlobalMaxPool", globalPoolFactory(true))
	Register(graph.DomainONNX, "GlobalAveragePool", globalPoolFactory(false))
}

// poolGeo resolves the window over x (N x C x up to 3 spatial dims).
func poolGeo(p *Prep, x []int) ([]int32, int, error) {
	if len(x) < 3 {
		return nil, 0, Errorf(p, "input X has shape %v, expected N x C x D1 x ... (rank >= 3)", x)
	}
	sp := len(x) - 2
	if sp > 3 {
		return nil, 0, Unsupported(p, "%d spatial dims (at most 3 are implemented)", sp)
	}
	if _, err := numel(p, x, "X"); err != nil {
		return nil, 0, err
	}
	w, err := graph.ResolvePoolWindow(p.Node, x[2:])
	if err != nil {
		return nil, 0, err
	}
	geo := make([]int32, 21)
	off := 3 - sp
	for i := 0; i < 3; i++ {
		in, out, k, s, d, pb, pe := 1, 1, 1, 1, 1, 0, 0
		if i >= off {
			j := i - off
			in, out, k, s, d, pb, pe = w.In[j], w.Out[j], w.Kernel[j], w.Strides[j], w.Dilations[j], w.PadBegin[j], w.PadEnd[j]
		}
		for f, v := range []int{in, out, k, s, d, pb, pe} {
			geo[3*f+i] = int32(v)
		}
	}
	return geo, x[0] * x[1], nil
}

func maxPoolFactory(p *Prep) (*Kernel, error) {
	if err := needF32(p, 0, "X"); err != nil {
		return nil, err
	}
	geo, planes, err := poolGeo(p, p.InShape(0))
	if err != nil {
		return nil, err
	}
	n, err := numel(p, p.OutShape(0), "Y")
	if err != nil {
		return nil, err
	}
	col := int(p.Node.AttrInt("storage_order", 0))
	return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
		if n == 0 {
			return nil
		}
		grid, block, chunks := planeGrid(planes, n/planes)
		return c.S.Launch(poolMax, grid, block, 0, c.A(P(c.Out[0]), P(optOut(c, 1)), P(c.In[0]), P(c.Consts[0]), I(col), I(chunks)))
	}}, nil
}

// avgPoolFactory: AveragePool(X), or AveragePoolGrad(dY, X).
func avgPoolFactory(grad bool) Factory {
	return func(p *Prep) (*Kernel, error) {
		xi := 0
		if grad {
			xi = 1
			if err := needF32(p, 0, "dY"); err != nil {
				return nil, err
			}
		}
		if err := needF32(p, xi, "X"); err != nil {
			return nil, err
		}
		x := p.InShape(xi)
		geo, planes, err := poolGeo(p, x)
		if err != nil {
			return nil, err
		}
		incl := int(p.Node.AttrInt("count_include_pad", 0))
		if grad {
			dy := p.InShape(0)
			outPlane := int(geo[3] * geo[4] * geo[5])
			if len(dy) != len(x) || tensor.NumElements(dy) != planes*outPlane {
				return nil, Errorf(p, "dY has shape %v; AveragePool over X %v gives another", dy, x)
			}
			n := tensor.NumElements(x)
			return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
				if n == 0 {
					return nil
				}
				return c.S.Launch(poolAvgGrad, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.Consts[0]), I(n), I(incl)))
			}}, nil
		}
		n, err := numel(p, p.OutShape(0), "Y")
		if err != nil {
			return nil, err
		}
		return &Kernel{Consts: [][]int32{geo}, Run: func(c *Call) error {
			if n == 0 {
				return nil
			}
			return c.S.Launch(poolAvg, grid1(n), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.Consts[0]), I(n), I(incl)))
		}}, nil
	}
}

// windowAttr prefixes the MaxPool attributes that fusePoolWindow copies
// onto the MaxPoolGrad of its Indices.
const windowAttr = "gotrain_cuda_window_"

// fusePoolWindow gives each MaxPoolGrad whose Indices come from a MaxPool
// in the graph that MaxPool's window (as attributes under windowAttr), so
// that its kernel can gather: one thread per input element instead of one
// per plane. It is a rewrite of the planner's private copy of the graph,
// as the fusions are; the values do not change.
var fusePoolWindow = plan.Fusion{Name: "MaxPoolGrad window", Rewrite: func(g *graph.Graph, keep map[string]bool) *graph.Graph {
	var out *graph.Graph
	var producers map[string]*graph.Node
	for i, n := range g.Nodes {
		if n.OpType != "MaxPoolGrad" || graph.NormDomain(n.Domain) != graph.DomainGotrain || len(n.Inputs) < 3 {
			continue
		}
		if producers == nil {
			producers = g.Producers()
		}
		mp := producers[n.Inputs[1]]
		if mp == nil || mp.OpType != "MaxPool" || graph.NormDomain(mp.Domain) != graph.DomainONNX ||
			len(mp.Outputs) < 2 || mp.Outputs[1] != n.Inputs[1] || len(mp.Inputs) == 0 || mp.Inputs[0] != n.Inputs[2] {
			continue
		}
		if out == nil {
			out = g.Clone()
		}
		for name, a := range mp.Attrs {
			c := *a
			c.Name = windowAttr + name
			out.Nodes[i].SetAttr(&c)
		}
		out.Nodes[i].SetAttr(graph.AInt(windowAttr+"known", 1))
	}
	if out == nil {
		return g
	}
	return out
}}

// poolWindowOf resolves the MaxPool window fusePoolWindow recorded on a
// MaxPoolGrad, over X's shape; nil when none was recorded.
func poolWindowOf(p *Prep, x []int) ([]int32, error) {
	if p.Node.AttrInt(windowAttr+"known", 0) == 0 {
		return nil, nil
	}
	mp := &graph.Node{Name: p.Node.Name, OpType: "MaxPool", Attrs: map[string]*graph.Attribute{}}
	for name, a := range p.Node.Attrs {
		if rest, ok := strings.CutPrefix(name, windowAttr); ok && rest != "known" {
			c := *a
			c.Name = rest
			mp.Attrs[rest] = &c
		}
	}
	geo, _, err := poolGeo(&Prep{Node: mp, In: p.In[2:], Opset: p.Opset}, x)
	return geo, err
}

func maxPoolGradFactory(p *Prep) (*Kernel, error) {
	for i, name := range []string{"dY", "", "X"} {
		if name != "" {
			if err := needF32(p, i, name); err != nil {
				return nil, err
			}
		}
	}
	dy, idx, x := p.InShape(0), p.InShape(1), p.InShape(2)
	if p.In[1].DType != tensor.Int64 {
		return nil, Errorf(p, "Indices have dtype %v; expected int64", p.In[1].DType)
	}
	if len(x) < 2 {
		return nil, Errorf(p, "input X has shape %v, expected N x C x ...", x)
	}
	if !tensor.SameShape(dy, idx) {
		return nil, Errorf(p, "dY has shape %v but Indices has %v; both are MaxPool's output shape", dy, idx)
	}
	if len(dy) != len(x) || dy[0] != x[0] || dy[1] != x[1] {
		return nil, Errorf(p, "dY has shape %v, which is not a pooling of X %v", dy, x)
	}
	if _, err := numel(p, x, "X"); err != nil {
		return nil, err
	}
	planes := x[0] * x[1]
	inPlane, outPlane := 0, 0
	if planes > 0 {
		inPlane, outPlane = tensor.NumElements(x)/planes, tensor.NumElements(dy)/planes
	}
	relu := int(p.Node.AttrInt(plan.AttrFusedReluMask, 0))
	status := func(w int32) error {
		o := int(w) - 1
		pl := o / max(outPlane, 1)
		return Errorf(p, "Indices[%d] lies outside its plane [%d, %d) of X", o, pl*inPlane, (pl+1)*inPlane)
	}
	geo, err := poolWindowOf(p, x)
	if err != nil {
		return nil, err
	}
	if geo != nil && int(geo[3]*geo[4]*geo[5]) == outPlane && len(x) <= 5 {
		// The window is known: check the Indices, then gather.
		nIn, nOut := planes*inPlane, planes*outPlane
		return &Kernel{Consts: [][]int32{geo}, Status: status, Run: func(c *Call) error {
			if nIn == 0 {
				return nil
			}
			if nOut > 0 {
				if err := c.S.Launch(poolIndCheck, grid1(nOut), block1, 0, c.A(P(c.In[1]), I(nOut), I(inPlane), I(outPlane), P(c.Status))); err != nil {
					return err
				}
			}
			grid, block, chunks := planeGrid(planes, inPlane)
			return c.S.Launch(poolMaxGradGather, grid, block, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(c.In[2]), P(c.Consts[0]), I(relu), I(chunks)))
		}}, nil
	}
	return &Kernel{
		Status: status,
		Run: func(c *Call) error {
			if planes == 0 {
				return nil
			}
			return c.S.Launch(poolMaxGrad, grid1(planes), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), P(c.In[1]), P(c.In[2]),
				I(planes), I(inPlane), I(outPlane), I(relu), P(c.Status)))
		}}, nil
}

func globalPoolFactory(isMax bool) Factory {
	return func(p *Prep) (*Kernel, error) {
		if err := needF32(p, 0, "X"); err != nil {
			return nil, err
		}
		x := p.InShape(0)
		if len(x) < 2 {
			return nil, Errorf(p, "input X has shape %v, expected N x C x ...", x)
		}
		if _, err := numel(p, x, "X"); err != nil {
			return nil, err
		}
		planes, inner := x[0]*x[1], tensor.NumElements(x[2:])
		m := 0
		if isMax {
			m = 1
		}
		return &Kernel{Run: func(c *Call) error {
			if planes == 0 {
				return nil
			}
			return c.S.Launch(poolGlobal, grid1(planes), block1, 0, c.A(P(c.Out[0]), P(c.In[0]), I(planes), I(inner), I(m)))
		}}, nil
	}
}
