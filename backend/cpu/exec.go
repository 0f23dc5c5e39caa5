package cpu

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// executable is a compiled graph: the shared planner's schedules
// (backend/plan), one per input-shape signature, made concrete with CPU
// kernels and host tensors.
type executable struct {
	planner *plan.Planner
	dev     *Device
	pool    *Pool
	inputs  []*graph.ValueInfo
	outputs []string
	group   *Group
	rank    int
	plans   *plan.Cache[*hostPlan]
	last    *hostPlan
	// lastYield is when Run last yielded its goroutine (see yieldEvery).
	lastYield time.Time
}

// yieldEvery is how often Run lets its goroutine pass through the
// scheduler. A goroutine that runs kernel after kernel, much of it inside
// cgo calls, never does on its own, and after 10 ms on one scheduling tick
// Go's monitor thread treats it as one to preempt: it takes the P while the
// goroutine is in C and, having taken something, keeps polling every 20 us;
// each take also wakes a spinning thread, all on the cores the kernels are
// using. Measured on the MLP's inference loop (2 cores): ~8,000 context
// switches a second and 162k samples/s without the yield, ~1,000 and 172k
// with it. A yield per kernel would cost a thread wake-up each instead.
const yieldEvery = 5 * time.Millisecond

// fusions are the planner's fusions the CPU kernels implement: Conv and
// Gemm apply a ReLU as they write (k_conv.go, k_matmul.go), MaxPoolGrad
// masks by a ReLU's output (k_pool.go), and Conv pools 2x2 (k_conv.go).
var fusions = []plan.Fusion{plan.FuseConvRelu, plan.FuseGemmRelu, plan.FuseReluGradMask, plan.FuseConvPoolTrain, plan.FuseConvMaxPool}

// The fusions' attributes, as the kernels read them.
const (
	fusedActivation = plan.AttrFusedActivation
	fusedReluMask   = plan.AttrFusedReluMask
	fusedMaxPool    = plan.AttrFusedMaxPool
	fusedPoolTaps   = plan.AttrFusedPoolTaps
	fusedUnpool     = plan.AttrFusedUnpool
)

// hostPlan is a plan made concrete in host memory.
type hostPlan struct {
	p *plan.Plan
	// vals holds each value's tensor: constants, planned storage (views
	// of their block's tensor), view headers whose data follows their
	// source each run, and feeds and dynamic values, set as they run.
	vals    []*tensor.Tensor
	steps   []step
	result  map[string]backend.Buffer
	bufs    []*Buffer
	outputs []int
	// shapes are the input shapes planned for, in executable.inputs order.
	shapes [][]int
}

// step is one prepared node.
type step struct {
	ps      *plan.Step
	kernel  Kernel
	in, out []int
	inT     []*tensor.Tensor // reused argument slices
	outT    []*tensor.Tensor
}

func compile(m *graph.Model, dev *Device, o backend.CompileOptions) (*executable, error) {
	g := m.Graph
	e := &executable{dev: dev, inputs: g.Inputs, rank: o.Rank, plans: plan.NewCache[*hostPlan](plan.DefaultCacheSize)}
	if o.Collective != nil {
		grp, ok := o.Collective.(*Group)
		if !ok {
			return nil, fmt.Errorf("cpu backend: collective %T is not a CPU group", o.Collective)
		}
		if o.Rank < 0 || o.Rank >= grp.n {
			return nil, fmt.Errorf("cpu backend: rank %d outside a group of %d", o.Rank, grp.n)
		}
		e.group = grp
	}
	threads := dev.threads
	if o.Threads > 0 && o.Threads < threads {
		threads = o.Threads
	}
	e.pool = NewPool(threads)
	e.pool.slot = dev.id
	// The workers outlive nothing: once the executable is unreachable,
	// its pool stops them.
	runtime.AddCleanup(e, func(p *Pool) { p.Close() }, e.pool)
	pl, err := plan.New(m, e.hooks(), plan.Options{Outputs: o.Outputs, InPlace: o.InPlace})
	if err != nil {
		return nil, err
	}
	e.planner = pl
	e.outputs = pl.Outputs()
	// Plan now when every input shape is known, so errors surface at compile.
	if shapes, ok := pl.StaticShapes(o.InputShapes); ok {
		hp, err := e.plan(shapes, nil) // the declared dtypes
		if err != nil {
			return nil, err
		}
		e.plans.Put(plan.Signature(e.inputs, shapes), hp)
		e.last = hp
	}
	return e, nil
}

// hooks are what the planner needs of the CPU backend: its kernel
// registry, its fusions, and kernel factories to prepare and to fold with.
func (e *executable) hooks() plan.Hooks {
	return plan.Hooks{
		Backend:  "CPU",
		Supports: func(n *graph.Node) bool { return HasKernel(n.Domain, n.OpType) },
		View:     func(n *graph.Node) bool { return kernels[kkey(n.Domain, n.OpType)].alias },
		Fusions:  fusions,
		Prepare: func(s *plan.Step) (any, error) {
			return e.factory(s.Node, s.InTypes, s.OutTypes, s.Opset)
		},
		Fold: func(s *plan.Step, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
			k, err := e.factory(s.Node, s.InTypes, s.OutTypes, s.Opset)
			if err != nil {
				return nil, err
			}
			return runOnce(k, s.Node, s.OutTypes, in)
		},
	}
}

// factory prepares the CPU kernel of a node with these types.
func (e *executable) factory(n *graph.Node, in, out []*graph.Type, opset int64) (Kernel, error) {
	prep := &Prep{Node: n, In: in, Out: out, Opset: opset, Pool: e.pool, Group: e.group, Rank: e.rank}
	return kernels[kkey(n.Domain, n.OpType)].factory(prep)
}

// runOnce runs a kernel into new output tensors.
func runOnce(k Kernel, n *graph.Node, types []*graph.Type, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	outs := make([]*tensor.Tensor, len(types))
	for i, o := range n.Outputs {
		if o == "" || types[i] == nil {
			continue
		}
		shape, _ := types[i].Concrete()
		t, err := tensor.NewChecked(types[i].DType, shape)
		if err != nil {
			return nil, graph.Errorf(n, "output %q: %v", o, err)
		}
		outs[i] = t
	}
	if err := k(in, outs); err != nil {
		return nil, plan.NodeErr(n, err)
	}
	return outs, nil
}

// plan has the planner plan the graph for these shapes and makes the plan
// concrete: one host tensor per storage block, and each value a view of
// its block.
func (e *executable) plan(shapes map[string][]int, dtypes map[string]tensor.DType) (*hostPlan, error) {
	p, err := e.planner.Plan(shapes, dtypes)
	if err != nil {
		return nil, err
	}
	hp := &hostPlan{p: p, vals: make([]*tensor.Tensor, len(p.Values)), steps: make([]step, len(p.Steps)), outputs: p.Outputs}
	for i := range p.Values {
		if v := &p.Values[i]; v.Kind == plan.Const {
			hp.vals[i] = v.Const
		}
	}
	blocks := make([]*tensor.Tensor, len(p.Blocks))
	for i, ps := range p.Steps {
		st := &hp.steps[i]
		st.ps, st.in, st.out = ps, ps.In, ps.Out
		st.inT = make([]*tensor.Tensor, len(ps.In))
		st.outT = make([]*tensor.Tensor, len(ps.Out))
		if ps.Kernel != nil {
			st.kernel = ps.Kernel.(Kernel)
		}
		if ps.Dynamic {
			continue
		}
		for _, s := range ps.Out {
			if s < 0 {
				continue
			}
			v := &p.Values[s]
			shape, _ := v.Type.Concrete()
			switch {
			case v.Alias >= 0 && v.Block >= 0:
				hp.vals[s], err = tensor.View(blocks[v.Block], shape)
			case v.Alias >= 0:
				// Its data points at the source's each run.
				hp.vals[s], err = tensor.NewChecked(v.Type.DType, shape)
			case v.Block >= 0:
				b := blocks[v.Block]
				if b == nil {
					blk := p.Blocks[v.Block]
					if b, err = tensor.NewChecked(blk.DType, []int{int(blk.Size)}); err != nil {
						return nil, graph.Errorf(ps.Node, "output %q: %v", v.Name, err)
					}
					blocks[v.Block] = b
				}
				hp.vals[s], err = tensor.View(b, shape)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	for _, in := range e.inputs {
		hp.shapes = append(hp.shapes, append([]int(nil), shapes[in.Name]...))
	}
	hp.result = make(map[string]backend.Buffer, len(p.Outputs))
	for range p.Outputs {
		hp.bufs = append(hp.bufs, &Buffer{dev: e.dev})
	}
	return hp, nil
}

// Outputs names what Run returns.
func (e *executable) Outputs() []string { return e.outputs }

// Run executes the graph.
func (e *executable) Run(ctx context.Context, feeds map[string]backend.Buffer) (map[string]backend.Buffer, error) {
	if err := plan.CheckFeeds(e.inputs, feeds); err != nil {
		return nil, err
	}
	hp := e.last
	match := hp != nil
	for k, in := range e.inputs {
		b := feeds[in.Name]
		cb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("input %q: buffer %T is not a CPU buffer", in.Name, b)
		}
		if e.dev.private && cb.dev != e.dev {
			return nil, fmt.Errorf("input %q: the buffer is on %v, the executable on %v, and the devices do not share memory (copy it first)", in.Name, cb.dev, e.dev)
		}
		if match {
			if !tensor.SameShape(hp.shapes[k], cb.t.Shape()) {
				match = false
			}
		}
	}
	if !match {
		shapes := make(map[string][]int, len(e.inputs))
		for _, in := range e.inputs {
			shapes[in.Name] = feeds[in.Name].Shape()
		}
		sig := plan.Signature(e.inputs, shapes)
		var ok bool
		if hp, ok = e.plans.Get(sig); !ok {
			dtypes := map[string]tensor.DType{}
			for name, b := range feeds {
				dtypes[name] = b.DType()
			}
			var err error
			if hp, err = e.plan(shapes, dtypes); err != nil {
				return nil, err
			}
			e.plans.Put(sig, hp)
		}
		e.last = hp
	}
	for name, s := range hp.p.Inputs {
		hp.vals[s] = feeds[name].(*Buffer).t
	}
	prof := profiling.Load()
	for i := range hp.steps {
		st := &hp.steps[i]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if now := time.Now(); now.Sub(e.lastYield) >= yieldEvery {
			e.lastYield = now
			runtime.Gosched()
		}
		var t0 time.Time
		if prof {
			t0 = time.Now()
		}
		if err := e.runStep(hp, st); err != nil {
			return nil, err
		}
		if prof {
			recordOp(st.ps.Node, time.Since(t0))
		}
	}
	for i, s := range hp.outputs {
		hp.bufs[i].t = hp.value(s)
		hp.result[e.outputs[i]] = hp.bufs[i]
	}
	return hp.result, nil
}

// value is the tensor currently holding a value: an in-place output's is
// its feed's.
func (hp *hostPlan) value(s int) *tensor.Tensor {
	if b := hp.p.Values[s].Bind; b >= 0 {
		return hp.vals[b]
	}
	return hp.vals[s]
}

func (e *executable) runStep(hp *hostPlan, st *step) error {
	for i, s := range st.in {
		st.inT[i] = nil
		if s >= 0 {
			st.inT[i] = hp.value(s)
		}
	}
	if st.ps.Dynamic {
		return e.runDynamic(hp, st)
	}
	for i, s := range st.out {
		st.outT[i] = nil
		if s >= 0 {
			st.outT[i] = hp.value(s)
		}
	}
	if st.ps.View {
		return st.outT[0].ShareData(st.inT[0])
	}
	if err := st.kernel(st.inT, st.outT); err != nil {
		return plan.NodeErr(st.ps.Node, err)
	}
	return nil
}

// runDynamic infers, prepares and runs a node whose output shapes depend on
// run-time values. It allocates, which static plans avoid.
func (e *executable) runDynamic(hp *hostPlan, st *step) error {
	n := st.ps.Node
	ins, outs, err := e.planner.InferStep(st.ps, st.inT)
	if err != nil {
		return err
	}
	var vals []*tensor.Tensor
	if st.ps.View {
		vals = make([]*tensor.Tensor, len(outs))
		for i, o := range n.Outputs {
			if o == "" {
				continue
			}
			shape, _ := outs[i].Concrete()
			if vals[i], err = tensor.View(st.inT[0], shape); err != nil {
				return graph.Errorf(n, "%v", err)
			}
		}
	} else {
		k, err := e.factory(n, ins, outs, st.ps.Opset)
		if err != nil {
			return plan.NodeErr(n, err)
		}
		if vals, err = runOnce(k, n, outs, st.inT); err != nil {
			return err
		}
	}
	for i, s := range st.out {
		if s >= 0 {
			hp.vals[s] = vals[i]
		}
	}
	return nil
}

// Op profiling: when enabled, every executable adds each node's run time
// to a table by op type (for `gotrain bench --profile` and tuning).
var (
	profiling atomic.Bool
	profMu    sync.Mutex
	profTable = map[string]*OpTime{}
)

// OpTime is the accumulated run time of one op type.
type OpTime struct {
	Op    string
	Calls int
	Total time.Duration
}

// EnableProfile turns op timing on or off and clears the table.
func EnableProfile(on bool) {
	profMu.Lock()
	profTable = map[string]*OpTime{}
	profMu.Unlock()
	profiling.Store(on)
}

// ProfileTable returns the op timings, the most expensive first.
func ProfileTable() []OpTime {
	profMu.Lock()
	defer profMu.Unlock()
	out := make([]OpTime, 0, len(profTable))
	for _, t := range profTable {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Total > out[j].Total })
	return out
}

func recordOp(n *graph.Node, d time.Duration) {
	profMu.Lock()
	defer profMu.Unlock()
	t := profTable[n.OpType]
	if t == nil {
		t = &OpTime{Op: n.OpType}
		profTable[n.OpType] = t
	}
	t.Calls++
	t.Total += d
}
