package cpu

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// executable is a compiled graph with its plans, one per input-shape
// signature.
type executable struct {
	m       *graph.Model
	dev     *Device
	pool    *Pool
	order   []*graph.Node // needed nodes in execution order
	inputs  []*graph.ValueInfo
	outputs []string
	inPlace map[string]string // output -> input
	group   *Group
	rank    int
	plans   map[string]*plan
	last    *plan
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

// slot is one value of a plan.
type slot struct {
	name  string
	t     *tensor.Tensor // the value; for feeds, set each run
	feed  bool           // a graph input (bound each run)
	alias int            // for views: the slot whose data this one shares (-1: none)
	bind  int            // for in-place outputs: the feed slot they overwrite (-1: none)
}

// step is one prepared node.
type step struct {
	node    *graph.Node
	kernel  Kernel
	in, out []int
	inT     []*tensor.Tensor // reused argument slices
	outT    []*tensor.Tensor
	dynamic bool // shapes depend on run-time values: infer and prepare each run
	view    bool // alias op: output shares input 0's data
}

type plan struct {
	slots   []*slot
	steps   []*step
	inputs  map[string]int
	outputs []int
	result  map[string]backend.Buffer
	bufs    []*Buffer
}

func compile(m *graph.Model, dev *Device, o backend.CompileOptions) (*executable, error) {
	g := m.Graph
	e := &executable{m: m, dev: dev, inputs: g.Inputs, inPlace: o.InPlace, plans: map[string]*plan{}, rank: o.Rank}
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
	e.outputs = o.Outputs
	if len(e.outputs) == 0 {
		for _, out := range g.Outputs {
			e.outputs = append(e.outputs, out.Name)
		}
	}
	// Fuse on a private copy; the caller's model is not touched.
	keep := append([]string{}, e.outputs...)
	for out := range o.InPlace {
		keep = append(keep, out)
	}
	if fg := fuse(g, keep); fg != g {
		fm := *m
		fm.Graph = fg
		e.m, g = &fm, fg
	}
	order, err := executionOrder(g, e.outputs, o.InPlace)
	if err != nil {
		return nil, err
	}
	e.order = order
	for _, n := range order {
		if !HasKernel(n.Domain, n.OpType) {
			return nil, &graph.UnsupportedOpError{Node: n, Reason: "no CPU kernel for " + opName(n)}
		}
	}
	// Plan now when every input shape is known, so errors surface at compile.
	shapes := map[string][]int{}
	ready := true
	for _, in := range g.Inputs {
		if s, ok := o.InputShapes[in.Name]; ok {
			shapes[in.Name] = s
		} else if s, ok := in.Type.Concrete(); ok {
			shapes[in.Name] = s
		} else {
			ready = false
		}
	}
	if ready {
		dtypes := map[string]tensor.DType{}
		for _, in := range g.Inputs {
			dtypes[in.Name] = in.DType
		}
		p, err := e.plan(shapes, dtypes)
		if err != nil {
			return nil, err
		}
		e.plans[signature(g.Inputs, shapes)] = p
		e.last = p
	}
	return e, nil
}

func opName(n *graph.Node) string {
	if n.Domain != "" {
		return n.Domain + "." + n.OpType
	}
	return n.OpType
}

// executionOrder returns the nodes needed for outputs in an order that
// respects data dependencies and, for in-place outputs, runs the writer after
// every other reader of the overwritten input.
func executionOrder(g *graph.Graph, outputs []string, inPlace map[string]string) ([]*graph.Node, error) {
	all, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	producer := g.Producers()
	known := map[string]bool{}
	for _, in := range g.Inputs {
		known[in.Name] = true
	}
	for _, name := range g.InitializerNames() {
		known[name] = true
	}
	need := map[*graph.Node]bool{}
	var stack []string
	for _, o := range outputs {
		if _, ok := producer[o]; !ok && !known[o] {
			return nil, fmt.Errorf("output %q is not a value of graph %q", o, g.Name)
		}
		stack = append(stack, o)
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n, ok := producer[v]
		if !ok || need[n] {
			continue
		}
		need[n] = true
		for _, in := range n.Inputs {
			if in != "" {
				stack = append(stack, in)
			}
		}
	}
	var order []*graph.Node
	for _, n := range all {
		if need[n] {
			order = append(order, n)
		}
	}
	if len(inPlace) == 0 {
		return order, nil
	}
	// Kahn's algorithm over the needed nodes with extra edges: every other
	// reader of an overwritten input precedes the node writing it.
	index := map[*graph.Node]int{}
	for i, n := range order {
		index[n] = i
	}
	succ := make([][]int, len(order))
	indeg := make([]int, len(order))
	edge := func(a, b int) {
		succ[a] = append(succ[a], b)
		indeg[b]++
	}
	for i, n := range order {
		for _, in := range n.Inputs {
			if p, ok := producer[in]; ok && need[p] {
				edge(index[p], i)
			}
		}
	}
	readers := map[string][]int{}
	for i, n := range order {
		for _, in := range n.Inputs {
			readers[in] = append(readers[in], i)
		}
	}
	for out, in := range inPlace {
		w, ok := producer[out]
		if !ok || !need[w] {
			continue
		}
		if g.Input(in) == nil {
			return nil, fmt.Errorf("in-place output %q: %q is not a graph input", out, in)
		}
		for _, r := range readers[in] {
			if r != index[w] {
				edge(r, index[w])
			}
		}
	}
	var queue, res []int
	for i := range order {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	for len(queue) > 0 {
		sort.Ints(queue) // keep the file's order where free: deterministic
		i := queue[0]
		queue = queue[1:]
		res = append(res, i)
		for _, s := range succ[i] {
			if indeg[s]--; indeg[s] == 0 {
				queue = append(queue, s)
			}
		}
	}
	if len(res) != len(order) {
		return nil, fmt.Errorf("in-place outputs %v cannot be ordered after the other readers of their inputs", inPlace)
	}
	out := make([]*graph.Node, len(res))
	for i, r := range res {
		out[i] = order[r]
	}
	return out, nil
}

func signature(inputs []*graph.ValueInfo, shapes map[string][]int) string {
	var b strings.Builder
	for _, in := range inputs {
		fmt.Fprint(&b, in.Name, shapes[in.Name], ";")
	}
	return b.String()
}

// plan prepares every node for the given input shapes.
func (e *executable) plan(shapes map[string][]int, dtypes map[string]tensor.DType) (*plan, error) {
	g := e.m.Graph
	p := &plan{inputs: map[string]int{}}
	slotOf := map[string]int{}
	types := graph.Types{}
	newSlot := func(name string) int {
		p.slots = append(p.slots, &slot{name: name, alias: -1, bind: -1})
		slotOf[name] = len(p.slots) - 1
		return len(p.slots) - 1
	}
	for _, name := range g.InitializerNames() {
		t := g.Initializer(name)
		types[name] = graph.TypeOf(t)
		p.slots[newSlot(name)].t = t
	}
	for _, in := range g.Inputs {
		s := newSlot(in.Name)
		p.slots[s].feed = true
		p.inputs[in.Name] = s
		dt := in.DType
		if d, ok := dtypes[in.Name]; ok {
			dt = d
		}
		types[in.Name] = graph.NewType(dt, graph.ShapeOf(shapes[in.Name]...))
	}
	for _, n := range e.order {
		outs, err := inferNode(e.m, n, types)
		if err != nil {
			return nil, err
		}
		in := make([]*graph.Type, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name != "" {
				in[i] = types[name]
				if in[i].Value == nil {
					allConst = false
				}
			}
		}
		st := &step{node: n, in: make([]int, len(n.Inputs)), out: make([]int, len(n.Outputs))}
		for i, name := range n.Inputs {
			st.in[i] = -1
			if name != "" {
				st.in[i] = slotOf[name]
			}
		}
		// Outputs whose values inference already knows (Shape of a
		// concrete shape, say) are constants: no step runs for them.
		known := len(outs) > 0
		for i, o := range n.Outputs {
			if o != "" && (i >= len(outs) || outs[i] == nil || outs[i].Value == nil) {
				known = false
			}
		}
		if known && foldable(n) {
			for i, o := range n.Outputs {
				if o != "" {
					s := newSlot(o)
					p.slots[s].t = outs[i].Value
					types[o] = outs[i]
				}
			}
			continue
		}
		// A node is planned statically only when its inputs' and outputs'
		// shapes are all known; otherwise it is prepared at run time.
		concrete := true
		for _, t := range in {
			if t != nil {
				if _, ok := t.Concrete(); !ok {
					concrete = false
				}
			}
		}
		for i, o := range n.Outputs {
			if o == "" {
				continue
			}
			if outs[i] == nil {
				return nil, graph.Errorf(n, "output %q has no inferred type", o)
			}
			if _, ok := outs[i].Concrete(); !ok {
				concrete = false
			}
		}
		info := kernels[kkey(n.Domain, n.OpType)]
		for i, o := range n.Outputs {
			st.out[i] = -1
			if o != "" {
				st.out[i] = newSlot(o)
			}
		}
		st.inT = make([]*tensor.Tensor, len(st.in))
		st.outT = make([]*tensor.Tensor, len(st.out))
		if !concrete {
			st.dynamic = true
			st.view = info.alias
			p.steps = append(p.steps, st)
			for i, o := range n.Outputs {
				if o != "" {
					types[o] = outs[i]
				}
			}
			continue
		}
		prep := &Prep{Node: n, In: in, Out: outs, Opset: e.m.OpsetOf(n), Pool: e.pool, Group: e.group, Rank: e.rank}
		if info.alias {
			st.view = true
		} else {
			k, err := info.factory(prep)
			if err != nil {
				return nil, wrapNodeErr(n, err)
			}
			st.kernel = k
		}
		if allConst && foldable(n) {
			// Constant folding: run now, keep the values.
			vals, err := runOnce(st, prep, in)
			if err != nil {
				return nil, err
			}
			for i, o := range n.Outputs {
				if o == "" {
					continue
				}
				p.slots[st.out[i]].t = vals[i]
				types[o] = graph.TypeOf(vals[i])
			}
			continue
		}
		for i, o := range n.Outputs {
			if o == "" {
				continue
			}
			t := *outs[i]
			t.Value = nil
			types[o] = &t
		}
		p.steps = append(p.steps, st)
	}
	for _, o := range e.outputs {
		s, ok := slotOf[o]
		if !ok {
			return nil, fmt.Errorf("output %q is not computed", o)
		}
		p.outputs = append(p.outputs, s)
	}
	if err := e.allocate(p, types); err != nil {
		return nil, err
	}
	p.result = make(map[string]backend.Buffer, len(p.outputs))
	for range p.outputs {
		p.bufs = append(p.bufs, &Buffer{dev: e.dev})
	}
	return p, nil
}

// foldable reports whether a node with constant inputs may be evaluated at
// plan time: everything but ops with random or run-varying results.
func foldable(n *graph.Node) bool {
	switch n.OpType {
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli":
		return false
	}
	return true
}

func runOnce(st *step, prep *Prep, in []*graph.Type) ([]*tensor.Tensor, error) {
	args := make([]*tensor.Tensor, len(in))
	for i, t := range in {
		if t != nil {
			args[i] = t.Value
		}
	}
	outs := make([]*tensor.Tensor, len(prep.Out))
	for i, o := range prep.Node.Outputs {
		if o == "" || prep.Out[i] == nil {
			continue
		}
		shape, _ := prep.Out[i].Concrete()
		if st.view {
			v, err := tensor.View(args[0], shape)
			if err != nil {
				return nil, graph.Errorf(prep.Node, "%v", err)
			}
			outs[i] = v
			continue
		}
		t, err := tensor.NewChecked(prep.Out[i].DType, shape)
		if err != nil {
			return nil, graph.Errorf(prep.Node, "output %q: %v", o, err)
		}
		outs[i] = t
	}
	if st.view {
		return outs, nil
	}
	if err := st.kernel(args, outs); err != nil {
		return nil, wrapNodeErr(prep.Node, err)
	}
	return outs, nil
}

func wrapNodeErr(n *graph.Node, err error) error {
	switch err.(type) {
	case *graph.NodeError, *graph.UnsupportedOpError:
		return err
	}
	return &graph.NodeError{Node: n, Err: err} // keeps the cause for errors.Is
}

// allocate assigns buffers to the plan's values, reusing a buffer once every
// value in it is dead. Views share their source's buffer; in-place outputs
// are bound to their input's feed each run.
func (e *executable) allocate(p *plan, types graph.Types) error {
	root := func(s int) int {
		for p.slots[s].alias >= 0 {
			s = p.slots[s].alias
		}
		return s
	}
	// Mark views and in-place bindings.
	for _, st := range p.steps {
		if st.view && !st.dynamic {
			p.slots[st.out[0]].alias = st.in[0]
		}
		for _, o := range st.out {
			if o < 0 {
				continue
			}
			if in, ok := e.inPlace[p.slots[o].name]; ok {
				fs, ok := p.inputs[in]
				if !ok {
					return fmt.Errorf("in-place output %q: %q is not a graph input", p.slots[o].name, in)
				}
				p.slots[o].bind = fs
			}
		}
	}
	// Last use (step index) of each root buffer; outputs live forever.
	const forever = 1 << 30
	lastUse := map[int]int{}
	for i, st := range p.steps {
		for _, s := range st.in {
			if s >= 0 {
				lastUse[root(s)] = i
			}
		}
		for _, s := range st.out {
			if s >= 0 {
				if _, ok := lastUse[root(s)]; !ok {
					lastUse[root(s)] = i
				}
			}
		}
	}
	for _, s := range p.outputs {
		lastUse[root(s)] = forever
	}
	pool := map[tensor.DType][]*tensor.Tensor{}
	take := func(dt tensor.DType, shape []int) (*tensor.Tensor, error) {
		n := tensor.NumElements(shape)
		list := pool[dt]
		best := -1
		for i, b := range list {
			if b.Len() >= n && (best < 0 || b.Len() < list[best].Len()) {
				best = i
			}
		}
		if best >= 0 && list[best].Len() <= 4*n+1024 {
			b := list[best]
			pool[dt] = append(list[:best], list[best+1:]...)
			return tensor.View(b, shape)
		}
		return tensor.NewChecked(dt, shape)
	}
	backing := map[int]*tensor.Tensor{} // root slot -> full buffer
	for i, st := range p.steps {
		if !st.dynamic {
			for _, s := range st.out {
				if s < 0 {
					continue
				}
				sl := p.slots[s]
				ty := types[sl.name]
				shape, _ := ty.Concrete()
				switch {
				case sl.alias >= 0:
					v, err := tensor.NewChecked(ty.DType, shape)
					if err != nil {
						return err
					}
					sl.t = v // data pointed at the source each run
				case sl.bind >= 0:
					feedT := types[p.slots[sl.bind].name]
					fs, _ := feedT.Concrete()
					if feedT.DType != ty.DType || !tensor.SameShape(fs, shape) {
						return fmt.Errorf("in-place output %q is %v but its input %q is %v", sl.name, ty, p.slots[sl.bind].name, feedT)
					}
				default:
					t, err := take(ty.DType, shape)
					if err != nil {
						return graph.Errorf(st.node, "output %q: %v", sl.name, err)
					}
					sl.t = t
					backing[s] = t
				}
			}
		}
		// Release buffers whose last reader was this step.
		for _, s := range append(append([]int{}, st.in...), st.out...) {
			if s < 0 {
				continue
			}
			r := root(s)
			if lastUse[r] == i && !p.slots[r].feed && p.slots[r].bind < 0 {
				if b, ok := backing[r]; ok {
					pool[b.DType()] = append(pool[b.DType()], fullBuffer(b))
					delete(backing, r)
				}
			}
		}
	}
	return nil
}

// fullBuffer returns the tensor as a 1-D buffer of its elements (for reuse).
func fullBuffer(t *tensor.Tensor) *tensor.Tensor {
	v, _ := tensor.View(t, []int{t.Len()})
	return v
}

// Outputs names what Run returns.
func (e *executable) Outputs() []string { return e.outputs }

// Run executes the graph.
func (e *executable) Run(ctx context.Context, feeds map[string]backend.Buffer) (map[string]backend.Buffer, error) {
	p := e.last
	match := p != nil
	for _, in := range e.inputs {
		b, ok := feeds[in.Name]
		if !ok {
			return nil, fmt.Errorf("input %q is missing (graph inputs: %s)", in.Name, inputNames(e.inputs))
		}
		cb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("input %q: buffer %T is not a CPU buffer", in.Name, b)
		}
		if e.dev.private && cb.dev != e.dev {
			return nil, fmt.Errorf("input %q: the buffer is on %v, the executable on %v, and the devices do not share memory (copy it first)", in.Name, cb.dev, e.dev)
		}
		if in.DType != tensor.Invalid && cb.t.DType() != in.DType {
			return nil, fmt.Errorf("input %q: expected %v, got %v", in.Name, in.DType, cb.t.DType())
		}
		if in.RankKnown {
			if len(in.Shape) != cb.t.Rank() {
				return nil, fmt.Errorf("input %q: expected shape %v, got %v", in.Name, in.Shape, cb.t.Shape())
			}
			for i, d := range in.Shape {
				if d.Known() && int(d.Size) != cb.t.Shape()[i] {
					return nil, fmt.Errorf("input %q: expected shape %v, got %v", in.Name, in.Shape, cb.t.Shape())
				}
			}
		}
		if match {
			if ft := p.slots[p.inputs[in.Name]].t; ft == nil || !tensor.SameShape(ft.Shape(), cb.t.Shape()) {
				match = false
			}
		}
	}
	for name := range feeds {
		if e.m.Graph.Input(name) == nil {
			return nil, fmt.Errorf("feed %q is not an input of the graph (inputs: %s)", name, inputNames(e.inputs))
		}
	}
	if !match {
		shapes := make(map[string][]int, len(e.inputs))
		for _, in := range e.inputs {
			shapes[in.Name] = feeds[in.Name].Shape()
		}
		sig := signature(e.inputs, shapes)
		p = e.plans[sig]
		if p == nil {
			dtypes := map[string]tensor.DType{}
			for name, b := range feeds {
				dtypes[name] = b.DType()
			}
			var err error
			p, err = e.plan(shapes, dtypes)
			if err != nil {
				return nil, err
			}
			if len(e.plans) > 16 { // bound the cache; shapes rarely vary more
				e.plans = map[string]*plan{}
			}
			e.plans[sig] = p
		}
		e.last = p
	}
	for name, s := range p.inputs {
		p.slots[s].t = feeds[name].(*Buffer).t
	}
	prof := profiling.Load()
	for _, st := range p.steps {
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
		if err := e.runStep(p, st); err != nil {
			return nil, err
		}
		if prof {
			recordOp(st.node, time.Since(t0))
		}
	}
	for i, s := range p.outputs {
		p.bufs[i].t = p.value(s)
		p.result[e.outputs[i]] = p.bufs[i]
	}
	return p.result, nil
}

// value is the tensor currently holding a slot's value.
func (p *plan) value(s int) *tensor.Tensor {
	sl := p.slots[s]
	if sl.bind >= 0 {
		return p.slots[sl.bind].t
	}
	return sl.t
}

func (e *executable) runStep(p *plan, st *step) error {
	for i, s := range st.in {
		st.inT[i] = nil
		if s >= 0 {
			st.inT[i] = p.value(s)
		}
	}
	if st.dynamic {
		return e.runDynamic(p, st)
	}
	for i, s := range st.out {
		st.outT[i] = nil
		if s < 0 {
			continue
		}
		st.outT[i] = p.value(s)
	}
	if st.view {
		return st.outT[0].ShareData(st.inT[0])
	}
	if err := st.kernel(st.inT, st.outT); err != nil {
		return wrapNodeErr(st.node, err)
	}
	return nil
}

// runDynamic infers, prepares and runs a node whose output shapes depend on
// run-time values. It allocates, which static plans avoid.
func (e *executable) runDynamic(p *plan, st *step) error {
	n := st.node
	types := graph.Types{}
	in := make([]*graph.Type, len(n.Inputs))
	for i, name := range n.Inputs {
		if name != "" && st.inT[i] != nil {
			in[i] = graph.TypeOf(st.inT[i])
			types[name] = in[i]
		}
	}
	outs, err := inferNode(e.m, n, types)
	if err != nil {
		return err
	}
	for i, o := range n.Outputs {
		if o == "" {
			continue
		}
		if _, ok := outs[i].Concrete(); !ok {
			return graph.Errorf(n, "cannot determine the shape of output %q from the inputs", o)
		}
	}
	prep := &Prep{Node: n, In: in, Out: outs, Opset: e.m.OpsetOf(n), Pool: e.pool, Group: e.group, Rank: e.rank}
	if !st.view {
		k, err := kernels[kkey(n.Domain, n.OpType)].factory(prep)
		if err != nil {
			return wrapNodeErr(n, err)
		}
		st.kernel = k
	}
	vals, err := runOnce(st, prep, in)
	if err != nil {
		return err
	}
	for i, s := range st.out {
		if s >= 0 {
			p.slots[s].t = vals[i]
		}
	}
	return nil
}

func inputNames(in []*graph.ValueInfo) string {
	names := make([]string, len(in))
	for i, v := range in {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
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

// inferNode is graph.InferNode for the executable's fused graph: a Conv
// that absorbed a 2x2/2 MaxPool (fuse.go) outputs the pooled shape.
func inferNode(m *graph.Model, n *graph.Node, types graph.Types) ([]*graph.Type, error) {
	outs, err := graph.InferNode(m, n, types)
	if err != nil || n.AttrInt(fusedMaxPool, 0) == 0 || len(outs) == 0 {
		return outs, err
	}
	y := outs[0]
	if len(y.Shape) != 4 {
		return nil, graph.Errorf(n, "the MaxPool fused into this Conv needs a 4-D output, got %v", y.Shape)
	}
	pooled := append(graph.Shape{}, y.Shape...)
	for i := 2; i < 4; i++ {
		d := y.Shape[i]
		if !d.Known() {
			pooled[i] = graph.Unknown
			continue
		}
		if d.Size < 2 {
			return nil, graph.Errorf(n, "output %v is smaller than the 2x2 window of the MaxPool fused into it", y.Shape)
		}
		pooled[i] = graph.D(d.Size / 2)
	}
	outs[0] = graph.NewType(y.DType, pooled)
	return outs, nil
}
