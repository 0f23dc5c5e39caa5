package cuda

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// The executor: the shared planner's schedules (backend/plan), one per
// input-shape signature, made concrete in device memory.
//
// A plan's storage blocks are untyped bytes from the device's caching
// allocator, taken once when the plan is made; each value lives at its
// block's address plus its offset, a view at its root's address, an
// in-place output at its feed's. Constants (initializers, folded values)
// are uploaded once per executable. Each prepared kernel gets its int32
// tables uploaded once, its scratch in an arena that all steps share (they
// run one after another on one stream), and, when it can report bad data,
// a status word. A run enqueues every step's kernels and returns without
// waiting for the device; the status words are read at the device's next
// synchronisation (a Download). So a warm run allocates no device memory
// and meets the host only where the caller reads a result.
//
// Steps whose shapes depend on run-time values (dynamic steps, which
// training graphs do not have) read their inputs back to the host, are
// prepared and get their outputs' memory as they run.
//
// Once a plan without dynamic steps has run twice with the same buffers
// fed, its work is captured into a CUDA graph and replayed with one launch
// from then on (while the same buffers are fed), on hardware that can.

// fusions are the rewrites of the planner's private copy of the graph that
// the CUDA kernels implement: MaxPoolGrad learns its MaxPool's window (to
// gather), Conv applies a ReLU as it adds its bias, and MaxPoolGrad masks
// by a ReLU's output.
var fusions = []plan.Fusion{fusePoolWindow, plan.FuseConvRelu, plan.FuseReluGradMask}

type executable struct {
	b       *Backend
	dev     *Device
	planner *plan.Planner
	inputs  []*graph.ValueInfo
	isInput map[string]bool
	outputs []string
	plans   *plan.Cache[*devPlan]
	made    []*devPlan // every plan in the cache, to free when it empties
	last    *devPlan
	// consts are the constants uploaded, shared by the plans.
	consts map[*tensor.Tensor]*Buffer
	closed bool
}

// devPlan is a plan made concrete on the device.
type devPlan struct {
	e   *executable
	p   *plan.Plan
	mem *planMem
	// ptr, shape and dtype are each value's address, shape and dtype in
	// the current run: fixed for static values and constants, set each
	// run for feeds, views, in-place outputs and dynamic values.
	ptr   []Ptr
	shape [][]int
	dtype []tensor.DType
	// planned are the shapes planned (nil where unknown until run time).
	planned [][]int
	steps   []devStep
	// bound are the in-place outputs (their address is their feed's).
	bound []int
	// feedVals are the values of e.inputs, in order; inShapes their shapes
	// planned for.
	feedVals []int
	inShapes [][]int
	dynamic  bool
	// status holds a word per step whose kernel has a Status reader, then
	// one shared by the others; statusHost is where they are read.
	status      Ptr
	statusSteps []int
	statusHost  []byte
	pendingMark bool
	// dyn is the memory dynamic steps took in the last run.
	dyn []Ptr
	// outBufs are the buffers Run returns (views of the plan's storage).
	outBufs []*Buffer
	result  map[string]backend.Buffer
	// run state: the context of the current Run and the method value Do
	// calls (made once, so a run allocates nothing).
	ctx   context.Context
	runFn func() error
	// capture: the graph and the feed addresses it was captured with; the
	// feeds of the last run; noGraph after a capture failed.
	graph    Captured
	graphKey []Ptr
	lastKey  []Ptr
	key      []Ptr
	noGraph  bool
}

// planMem is the device memory a plan holds, freed when the plan is
// dropped (a cleanup: it must not point back to the plan).
type planMem struct {
	dev   *Device
	ptrs  []Ptr
	graph Captured
	// arenaOff and arenaN are the plan's status words in the device's
	// arena (arenaN 0: in an allocation of its own).
	arenaOff, arenaN int
}

func (m *planMem) free() {
	for _, p := range m.ptrs {
		m.dev.alloc.release(p) // already released when the device was closed
	}
	m.ptrs = nil
	if m.arenaN > 0 {
		m.dev.releaseStatus(m.arenaOff, m.arenaN)
		m.arenaN = 0
	}
	if m.graph != nil {
		g := m.graph
		m.graph = nil
		m.dev.hw.Do(g.Destroy)
	}
}

type devStep struct {
	ps   *plan.Step
	k    *Kernel
	call Call
	// word is the index of the step's status word.
	word int
}

func compile(b *Backend, m *graph.Model, dev *Device, o backend.CompileOptions) (*executable, error) {
	g := m.Graph
	e := &executable{b: b, dev: dev, inputs: g.Inputs, plans: plan.NewCache[*devPlan](plan.DefaultCacheSize),
		consts: map[*tensor.Tensor]*Buffer{}, isInput: make(map[string]bool, len(g.Inputs))}
	for _, in := range g.Inputs {
		e.isInput[in.Name] = true
	}
	pl, err := plan.New(m, e.hooks(), plan.Options{Outputs: o.Outputs, InPlace: o.InPlace})
	if err != nil {
		return nil, err
	}
	e.planner = pl
	e.outputs = pl.Outputs()
	// Plan now when every input shape is known, so errors surface here.
	// Otherwise check what can be checked before the shapes are known.
	shapes, ok := pl.StaticShapes(o.InputShapes)
	if !ok {
		if err := hostOnlyFoldable(pl); err != nil {
			return nil, err
		}
	}
	if ok {
		dtypes := map[string]tensor.DType{}
		for _, in := range g.Inputs {
			dtypes[in.Name] = in.DType
		}
		dp, err := e.plan(shapes, dtypes)
		if err != nil {
			return nil, err
		}
		e.keep(plan.Signature(e.inputs, shapes), dp)
	}
	return e, nil
}

// hostOnlyFoldable checks, before shapes are known, that every node
// without a CUDA kernel can be folded on the host when the graph is
// planned: its inputs must all be constants or computed from constants and
// shapes only (Shape, Size). Any other such node is refused now, naming
// the op; one that passes is folded, or refused when planned.
func hostOnlyFoldable(pl *plan.Planner) error {
	g := pl.Model().Graph
	constant := map[string]bool{}
	for _, name := range g.InitializerNames() {
		constant[name] = true
	}
	for _, n := range pl.Order() {
		all := true
		for _, in := range n.Inputs {
			if in != "" && !constant[in] {
				all = false
			}
		}
		shapeOnly := graph.NormDomain(n.Domain) == graph.DomainONNX && (n.OpType == "Shape" || n.OpType == "Size")
		if (all || shapeOnly) && plan.Foldable(n) {
			for _, o := range n.Outputs {
				constant[o] = true
			}
			continue
		}
		if !HasKernel(n.Domain, n.OpType) {
			return plan.NoKernel("CUDA", n)
		}
	}
	return nil
}

func (e *executable) hooks() plan.Hooks {
	return plan.Hooks{
		Backend: "CUDA",
		// Nodes the host can evaluate pass here: those whose inputs turn
		// out constant are folded, and the others are refused by Prepare.
		Supports: func(n *graph.Node) bool { return HasKernel(n.Domain, n.OpType) || cpu.HasKernel(n.Domain, n.OpType) },
		View:     func(n *graph.Node) bool { return IsAlias(n.Domain, n.OpType) },
		Fusions:  fusions,
		Prepare: func(s *plan.Step) (any, error) {
			if !HasKernel(s.Node.Domain, s.Node.OpType) {
				return nil, plan.NoKernel("CUDA", s.Node)
			}
			return Prepare(&Prep{Node: s.Node, In: s.InTypes, Out: s.OutTypes, Opset: s.Opset})
		},
		Fold:    plan.HostFold(e.b.host),
		Storage: plan.Storage{Untyped: true, Align: 256},
	}
}

// keep puts a plan in the cache. A full cache is emptied first (see
// plan.Cache), and the plans it held free their memory: their buffers were
// valid until this run only.
func (e *executable) keep(sig string, dp *devPlan) {
	if _, ok := e.plans.Get(sig); !ok && e.plans.Len() >= e.plans.Max {
		for _, old := range e.made {
			old.mem.free()
		}
		e.made = e.made[:0]
	}
	e.plans.Put(sig, dp)
	e.made = append(e.made, dp)
	e.last = dp
}

// Outputs names what Run returns.
func (e *executable) Outputs() []string { return e.outputs }

// Close frees the executable's device memory now (it is freed when the
// executable is dropped otherwise). Buffers Run returned become invalid.
func (e *executable) Close() error {
	for _, dp := range e.made {
		dp.mem.free()
	}
	e.made = nil
	e.plans = plan.NewCache[*devPlan](plan.DefaultCacheSize)
	e.last = nil
	e.closed = true
	for _, c := range e.consts {
		c.Free()
	}
	clear(e.consts)
	return nil
}

// plan has the planner plan the graph for these shapes and makes the plan
// concrete on the device.
func (e *executable) plan(shapes map[string][]int, dtypes map[string]tensor.DType) (*devPlan, error) {
	for _, in := range e.inputs {
		if dt, ok := dtypes[in.Name]; ok {
			if err := deviceDType(dt); err != nil {
				return nil, err
			}
		}
	}
	p, err := e.planner.Plan(shapes, dtypes)
	if err != nil {
		return nil, err
	}
	dp := &devPlan{e: e, p: p, mem: &planMem{dev: e.dev}, ptr: make([]Ptr, len(p.Values)),
		shape: make([][]int, len(p.Values)), planned: make([][]int, len(p.Values)), dtype: make([]tensor.DType, len(p.Values)), steps: make([]devStep, len(p.Steps))}
	dp.runFn = dp.run
	runtime.AddCleanup(dp, (*planMem).free, dp.mem)
	for i := range p.Values {
		v := &p.Values[i]
		dp.dtype[i] = v.Type.DType
		if s, ok := v.Type.Concrete(); ok {
			dp.shape[i] = s
		}
		dp.planned[i] = dp.shape[i]
		if v.Kind != plan.Dynamic {
			if err := deviceDType(v.Type.DType); err != nil {
				return nil, fmt.Errorf("value %q: %w", v.Name, err)
			}
		}
		if v.Bind >= 0 {
			dp.bound = append(dp.bound, i)
		}
	}
	for _, in := range e.inputs {
		dp.feedVals = append(dp.feedVals, p.Inputs[in.Name])
		dp.inShapes = append(dp.inShapes, append([]int(nil), shapes[in.Name]...))
	}
	dp.key = make([]Ptr, len(dp.feedVals))
	err = e.dev.hw.Do(func() error { return dp.materialize() })
	if err != nil {
		dp.mem.free()
		return nil, err
	}
	return dp, nil
}

// align256 rounds n up to a multiple of 256 bytes.
func align256(n int64) int64 { return (n + 255) &^ 255 }

// alloc takes n bytes (at least 8) for the plan's lifetime.
func (dp *devPlan) alloc(n int64) (Ptr, error) {
	p, err := dp.e.dev.alloc.alloc(max(align256(n), 8))
	if err != nil {
		return 0, err
	}
	dp.mem.ptrs = append(dp.mem.ptrs, p)
	return p, nil
}

// materialize takes the plan's memory and prepares its steps (inside Do).
func (dp *devPlan) materialize() error {
	e, p, hw := dp.e, dp.p, dp.e.dev.hw
	// Constants the steps read or the run returns.
	needConst := func(v int) error {
		if v < 0 || p.Values[v].Kind != plan.Const || dp.ptr[v] != 0 {
			return nil
		}
		t := p.Values[v].Const
		buf, ok := e.consts[t]
		if !ok {
			var err error
			if buf, err = e.dev.newBufferIn(t.DType(), t.Shape()); err != nil {
				return err
			}
			raw, err := HostBytes(t)
			if err != nil {
				return err
			}
			if len(raw) > 0 {
				if err := hw.Write(buf.ptr, raw); err != nil {
					return err
				}
			}
			e.consts[t] = buf
		}
		dp.ptr[v] = buf.ptr
		return nil
	}
	for _, st := range p.Steps {
		for _, v := range st.In {
			if err := needConst(v); err != nil {
				return err
			}
		}
	}
	for _, v := range p.Outputs {
		if err := needConst(v); err != nil {
			return err
		}
	}
	// Storage blocks, and the static values in them.
	blocks := make([]Ptr, len(p.Blocks))
	for i, b := range p.Blocks {
		var err error
		if blocks[i], err = dp.alloc(b.Size); err != nil {
			return fmt.Errorf("%s backend: storage for %q: %w", e.b.name, p.Values[b.First].Name, err)
		}
	}
	for i := range p.Values {
		if v := &p.Values[i]; v.Kind == plan.Static && v.Alias < 0 && v.Bind < 0 && v.Block >= 0 {
			dp.ptr[i] = blocks[v.Block] + Ptr(v.Offset)
		}
	}
	// Kernels: tables, scratch, status words.
	var scratch int64
	for i, ps := range p.Steps {
		st := &dp.steps[i]
		st.ps, st.word = ps, -1
		if ps.Dynamic {
			dp.dynamic = true
		}
		st.call.In = make([]Ptr, len(ps.In))
		st.call.Out = make([]Ptr, len(ps.Out))
		if ps.Kernel == nil {
			continue
		}
		st.k = ps.Kernel.(*Kernel)
		var need int64
		for _, s := range st.k.Scratch {
			need += align256(s)
		}
		scratch = max(scratch, need)
		for _, c := range st.k.Consts {
			ptr, err := dp.alloc(int64(4 * len(c)))
			if err != nil {
				return err
			}
			if len(c) > 0 {
				if err := hw.Write(ptr, int32Bytes(c)); err != nil {
					return err
				}
			}
			st.call.Consts = append(st.call.Consts, ptr)
		}
		if st.k.Status != nil {
			st.word = len(dp.statusSteps)
			dp.statusSteps = append(dp.statusSteps, i)
		}
	}
	if scratch > 0 {
		base, err := dp.alloc(scratch)
		if err != nil {
			return err
		}
		for i := range dp.steps {
			st := &dp.steps[i]
			if st.k == nil {
				continue
			}
			off := Ptr(0)
			st.call.Scratch = make([]Ptr, len(st.k.Scratch))
			for j, s := range st.k.Scratch {
				st.call.Scratch[j] = base + off
				off += Ptr(align256(s))
			}
		}
	}
	// One word per step with a Status reader, and one for the others.
	words := len(dp.statusSteps) + 1
	sp, off, ok, err := e.dev.takeStatus(words)
	if err != nil {
		return err
	}
	if ok {
		dp.status, dp.mem.arenaOff, dp.mem.arenaN = sp, off, words
	} else {
		if dp.status, err = dp.alloc(int64(4 * words)); err != nil {
			return err
		}
		if err := hw.Memset32(dp.status, 0, words); err != nil {
			return err
		}
		dp.statusHost = make([]byte, 4*words)
	}
	for i := range dp.steps {
		st := &dp.steps[i]
		w := st.word
		if w < 0 {
			w = words - 1
		}
		st.call.Status = dp.status + Ptr(4*w)
		st.call.S = hw
	}
	dp.result = make(map[string]backend.Buffer, len(p.Outputs))
	for range p.Outputs {
		dp.outBufs = append(dp.outBufs, &Buffer{dev: e.dev, owner: dp})
	}
	return nil
}

func int32Bytes(v []int32) []byte {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return raw
}

// readStatus reads the plan's status words (inside Do, the stream waited
// for), given when the arena's copy holds them, and clears those set: the
// first set word is the error.
func (dp *devPlan) readStatus(host []byte) error {
	hw := dp.e.dev.hw
	if host == nil {
		host = dp.statusHost
		if err := hw.Read(host, dp.status); err != nil {
			return err
		}
	}
	var first error
	words := len(host) / 4
	for w := 0; w < words; w++ {
		code := int32(binary.LittleEndian.Uint32(host[4*w:]))
		if code == 0 {
			continue
		}
		if first == nil {
			if w < len(dp.statusSteps) {
				st := &dp.steps[dp.statusSteps[w]]
				first = plan.NodeErr(st.ps.Node, st.k.Status(code))
			} else {
				first = fmt.Errorf("%s backend: a kernel without a status reader set its status word to %d", dp.e.b.name, code)
			}
		}
		if err := hw.Memset32(dp.status+Ptr(4*w), 0, 1); err != nil {
			return err
		}
	}
	return first
}

// Run executes the graph: it enqueues the work and returns without waiting
// for the device. The buffers returned stay valid until the next Run.
func (e *executable) Run(ctx context.Context, feeds map[string]backend.Buffer) (map[string]backend.Buffer, error) {
	if e.closed {
		return nil, fmt.Errorf("%s backend: the executable was closed", e.b.name)
	}
	if err := plan.CheckFeeds(e.inputs, feeds); err != nil {
		return nil, err
	}
	dp := e.last
	match := dp != nil
	for k, in := range e.inputs {
		b := feeds[in.Name]
		cb, ok := b.(*Buffer)
		if !ok {
			return nil, fmt.Errorf("input %q: buffer %T is not a CUDA buffer", in.Name, b)
		}
		if cb.dev != e.dev {
			return nil, fmt.Errorf("input %q: the buffer is on %v, the executable on %v (copy it first)", in.Name, cb.dev, e.dev)
		}
		if cb.freed {
			return nil, fmt.Errorf("input %q: the buffer was freed", in.Name)
		}
		if match && (!tensor.SameShape(dp.inShapes[k], cb.shape) || dp.dtype[dp.feedVals[k]] != cb.dt) {
			match = false
		}
	}
	if !match {
		shapes := make(map[string][]int, len(e.inputs))
		for _, in := range e.inputs {
			shapes[in.Name] = feeds[in.Name].Shape()
		}
		sig := plan.Signature(e.inputs, shapes)
		var ok bool
		if dp, ok = e.plans.Get(sig); !ok || !dp.sameDTypes(feeds) {
			dtypes := map[string]tensor.DType{}
			for name, b := range feeds {
				dtypes[name] = b.DType()
			}
			var err error
			if dp, err = e.plan(shapes, dtypes); err != nil {
				return nil, err
			}
			e.keep(sig, dp)
		}
		e.last = dp
	}
	for k, in := range e.inputs {
		cb := feeds[in.Name].(*Buffer)
		v := dp.feedVals[k]
		dp.ptr[v], dp.shape[v] = cb.ptr, cb.shape
		dp.key[k] = cb.ptr
	}
	dp.ctx = ctx
	err := e.dev.hw.Do(dp.runFn)
	dp.ctx = nil
	e.dev.addPending(dp)
	if err != nil {
		return nil, err
	}
	for i, s := range dp.p.Outputs {
		b := dp.outBufs[i]
		b.ptr, b.shape, b.dt = dp.ptr[s], dp.shape[s], dp.dtype[s]
		b.bytes = int64(tensor.NumElements(b.shape)) * int64(b.dt.Size())
		dp.result[e.outputs[i]] = b
	}
	return dp.result, nil
}

// sameDTypes reports whether the feeds have the dtypes the plan was made
// for.
func (dp *devPlan) sameDTypes(feeds map[string]backend.Buffer) bool {
	for k, in := range dp.e.inputs {
		if feeds[in.Name].DType() != dp.dtype[dp.feedVals[k]] {
			return false
		}
	}
	return true
}

// run enqueues the plan's work (inside Do): a captured graph when one
// matches the feeds, else step by step, capturing when the feeds repeat.
func (dp *devPlan) run() error {
	for _, v := range dp.bound {
		b := dp.p.Values[v].Bind
		dp.ptr[v], dp.shape[v] = dp.ptr[b], dp.shape[b]
	}
	for _, m := range dp.dyn {
		dp.e.dev.alloc.release(m)
	}
	dp.dyn = dp.dyn[:0]
	if dp.dynamic || !dp.e.dev.graphs || dp.noGraph {
		return dp.runSteps()
	}
	if dp.graph != nil && slices.Equal(dp.graphKey, dp.key) {
		if err := dp.ctx.Err(); err != nil {
			return err
		}
		dp.setViews()
		dp.e.dev.launched.Add(1)
		return dp.graph.Launch()
	}
	if !slices.Equal(dp.lastKey, dp.key) {
		dp.lastKey = append(dp.lastKey[:0], dp.key...)
		return dp.runSteps()
	}
	return dp.capture()
}

// capture records the steps into a graph and launches it. If the
// hardware cannot capture, or anything fails while it records, the plan
// runs step by step from then on.
func (dp *devPlan) capture() error {
	hw := dp.e.dev.hw
	if err := hw.BeginCapture(); err != nil {
		dp.noGraph = true
		return dp.runSteps()
	}
	err := dp.runSteps()
	g, cerr := hw.EndCapture()
	if err != nil || cerr != nil {
		dp.noGraph = true
		if g != nil {
			g.Destroy()
		}
		if ce := dp.ctx.Err(); ce != nil {
			return ce
		}
		// What failed inside the capture ran nothing: run it for real, so
		// that a real error is reported as it would be without graphs.
		return dp.runSteps()
	}
	if dp.graph != nil {
		dp.graph.Destroy()
	}
	dp.graph, dp.mem.graph = g, g
	dp.graphKey = append(dp.graphKey[:0], dp.key...)
	dp.e.dev.captured.Add(1)
	dp.e.dev.launched.Add(1)
	return g.Launch()
}

// setViews gives the views their sources' addresses and shapes (what the
// view steps do when the steps run one by one).
func (dp *devPlan) setViews() {
	for i := range dp.steps {
		if st := &dp.steps[i]; st.ps.View {
			dp.ptr[st.ps.Out[0]], dp.shape[st.ps.Out[0]] = dp.ptr[st.ps.In[0]], dp.planned[st.ps.Out[0]]
		}
	}
}

func (dp *devPlan) runSteps() error {
	for i := range dp.steps {
		st := &dp.steps[i]
		if err := dp.ctx.Err(); err != nil {
			return err
		}
		ps := st.ps
		if ps.Dynamic {
			if err := dp.runDynamic(st); err != nil {
				return err
			}
			continue
		}
		if ps.View {
			dp.ptr[ps.Out[0]], dp.shape[ps.Out[0]] = dp.ptr[ps.In[0]], dp.planned[ps.Out[0]]
			continue
		}
		for j, s := range ps.In {
			st.call.In[j] = 0
			if s >= 0 {
				st.call.In[j] = dp.ptr[s]
			}
		}
		for j, s := range ps.Out {
			st.call.Out[j] = 0
			if s >= 0 {
				st.call.Out[j] = dp.ptr[s]
			}
		}
		if err := st.k.Run(&st.call); err != nil {
			return plan.NodeErr(ps.Node, err)
		}
	}
	return nil
}

// host reads a value back (inside Do; waits for the stream).
func (dp *devPlan) host(v int) (*tensor.Tensor, error) {
	if c := dp.p.Values[v].Const; c != nil {
		return c, nil
	}
	dt, shape := dp.dtype[v], dp.shape[v]
	raw := make([]byte, tensor.NumElements(shape)*dt.Size())
	if err := dp.e.dev.hw.Read(raw, dp.ptr[v]); err != nil {
		return nil, err
	}
	return FromHostBytes(dt, shape, raw)
}

// runDynamic infers, prepares and runs a step whose shapes depend on
// run-time values: its inputs are read back to the host first (a
// synchronisation), and its outputs get memory until the next run.
func (dp *devPlan) runDynamic(st *devStep) error {
	ps, n := st.ps, st.ps.Node
	hw := dp.e.dev.hw
	in := make([]*tensor.Tensor, len(ps.In))
	for i, s := range ps.In {
		if s >= 0 {
			var err error
			if in[i], err = dp.host(s); err != nil {
				return err
			}
		}
	}
	ins, outs, err := dp.e.planner.InferStep(ps, in)
	if err != nil {
		return err
	}
	setOut := func(i int, p Ptr) {
		s := ps.Out[i]
		shape, _ := outs[i].Concrete()
		dp.ptr[s], dp.shape[s], dp.dtype[s] = p, shape, outs[i].DType
	}
	if ps.View {
		setOut(0, dp.ptr[ps.In[0]])
		return nil
	}
	k, err := Prepare(&Prep{Node: n, In: ins, Out: outs, Opset: ps.Opset})
	if err != nil {
		return plan.NodeErr(n, err)
	}
	take := func(bytes int64) (Ptr, error) {
		p, err := dp.e.dev.alloc.alloc(max(align256(bytes), 8))
		if err == nil {
			dp.dyn = append(dp.dyn, p)
		}
		return p, err
	}
	call := Call{S: hw, In: make([]Ptr, len(ps.In)), Out: make([]Ptr, len(ps.Out))}
	for i, s := range ps.In {
		if s >= 0 {
			call.In[i] = dp.ptr[s]
		}
	}
	for i, s := range ps.Out {
		if s < 0 || outs[i] == nil {
			continue
		}
		if err := deviceDType(outs[i].DType); err != nil {
			return plan.NodeErr(n, err)
		}
		shape, _ := outs[i].Concrete()
		p, err := take(int64(tensor.NumElements(shape) * outs[i].DType.Size()))
		if err != nil {
			return err
		}
		setOut(i, p)
		call.Out[i] = p
	}
	for _, s := range k.Scratch {
		p, err := take(s)
		if err != nil {
			return err
		}
		call.Scratch = append(call.Scratch, p)
	}
	for _, c := range k.Consts {
		p, err := take(int64(4 * len(c)))
		if err != nil {
			return err
		}
		if len(c) > 0 {
			if err := hw.Write(p, int32Bytes(c)); err != nil {
				return err
			}
		}
		call.Consts = append(call.Consts, p)
	}
	if call.Status, err = take(4); err != nil {
		return err
	}
	if err := hw.Memset32(call.Status, 0, 1); err != nil {
		return err
	}
	if err := k.Run(&call); err != nil {
		return plan.NodeErr(n, err)
	}
	// The step already meets the host: read its status word now.
	var word [4]byte
	if err := hw.Read(word[:], call.Status); err != nil {
		return err
	}
	if code := int32(binary.LittleEndian.Uint32(word[:])); code != 0 {
		if k.Status == nil {
			return graph.Errorf(n, "the kernel set its status word to %d", code)
		}
		return plan.NodeErr(n, k.Status(code))
	}
	return nil
}
