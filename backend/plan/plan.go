package plan

import (
	"fmt"
	"strings"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Hooks are what a backend tells the planner.
type Hooks struct {
	// Backend names the backend in errors ("no cpu kernel for Foo").
	Backend string
	// Supports reports whether the backend has a kernel for the node's op
	// (view ops included). Required.
	Supports func(n *graph.Node) bool
	// View reports whether the backend runs the node as a view: output 0
	// is input 0's storage under another shape and no kernel runs. Nil
	// means IsView.
	View func(n *graph.Node) bool
	// Fusions the backend has kernels for, applied in this order.
	Fusions []Fusion
	// Prepare readies the kernel of a static step (its InTypes and
	// OutTypes are concrete; constant inputs carry their values); what it
	// returns is kept as Step.Kernel. It is called once per step, in
	// execution order, when a plan is made. A configuration the backend
	// does not implement is a *graph.UnsupportedOpError. Required.
	Prepare func(s *Step) (any, error)
	// Fold evaluates a node whose inputs are all constants, on host
	// tensors: in holds the inputs (nil for omitted ones), and it returns
	// new host tensors of s.OutTypes. A device backend folds with a host
	// evaluator it is given: HostFold(the CPU backend), say. Nil: such
	// nodes run like any other.
	Fold func(s *Step, in []*tensor.Tensor) ([]*tensor.Tensor, error)
	// Storage says how values are packed into blocks.
	Storage Storage
}

// Storage says how the planner packs values into blocks.
type Storage struct {
	// Untyped blocks are sized in bytes and hold values of any dtype in
	// turn (device memory). Otherwise a block holds elements of one dtype
	// and serves only values of that dtype (host tensors, which are typed
	// slices).
	Untyped bool
	// Align rounds untyped blocks up to a multiple of this many bytes
	// (default 256).
	Align int64
}

// Options say what an executable computes.
type Options struct {
	// Outputs are the values the executable returns (default: the graph's
	// outputs).
	Outputs []string
	// InPlace maps an output to the graph input whose storage it
	// overwrites (see backend.CompileOptions.InPlace).
	InPlace map[string]string
}

// Kind says where a value comes from.
type Kind uint8

// Kinds of values.
const (
	// Const is known when the plan is made: an initializer or a folded
	// value, in Value.Const (host memory).
	Const Kind = iota
	// Feed is a graph input, bound at each run.
	Feed
	// Static is computed by a static step into planned storage.
	Static
	// Dynamic is computed by a dynamic step, which makes its storage when
	// it runs.
	Dynamic
)

// Value is one value of a plan.
type Value struct {
	Name string
	Kind Kind
	// Type is the value's dtype and shape: concrete for constants, feeds
	// and static values; for dynamic ones, what inference knew.
	Type *graph.Type
	// Const holds a constant's data.
	Const *tensor.Tensor
	// Block is the storage block holding a static value (a view: its
	// root's block), at byte Offset. -1 when the storage is not planned:
	// constants, feeds, in-place outputs, dynamic values and their views.
	Block  int
	Offset int64
	// Alias is, for the output of a static view step, the value whose
	// storage it shares: the root of the chain of views, never itself a
	// view. -1 otherwise.
	Alias int
	// Bind is, for an in-place output, the feed whose storage it
	// overwrites. -1 otherwise.
	Bind int
}

// Step is one node to run.
type Step struct {
	Node *graph.Node
	// In and Out index Plan.Values; -1 is an omitted optional value.
	In, Out []int
	// InTypes and OutTypes are the types the kernel sees (nil for omitted
	// values); for a dynamic step, what was known when planning.
	InTypes, OutTypes []*graph.Type
	// Opset is the opset the node follows.
	Opset int64
	// View steps run no kernel: output 0 is input 0's storage.
	View bool
	// Dynamic steps have shapes that depend on run-time values: the
	// backend infers them (InferStep), prepares a kernel and makes the
	// outputs' storage each time the step runs.
	Dynamic bool
	// Kernel is what Hooks.Prepare returned (static, non-view steps).
	Kernel any
}

// Block is one piece of storage the backend makes for a plan.
type Block struct {
	// DType is the elements' type; tensor.Invalid for untyped blocks.
	DType tensor.DType
	// Size is in elements of DType, or in bytes for untyped blocks.
	Size int64
	// First is the first value placed in the block (for error messages).
	First int
}

// Plan is an executable's schedule for one set of input shapes.
type Plan struct {
	Values []Value
	Steps  []*Step
	// Inputs maps each graph input to its value; Outputs are the values
	// returned, in Options.Outputs order.
	Inputs  map[string]int
	Outputs []int
	Blocks  []Block
}

// Root is the value whose storage v lives in: its Alias for a view, v
// itself otherwise.
func (p *Plan) Root(v int) int {
	if a := p.Values[v].Alias; a >= 0 {
		return a
	}
	return v
}

// Planner plans one graph for a backend, once per set of input shapes.
type Planner struct {
	hooks   Hooks
	model   *graph.Model // the private, fused copy
	order   []*graph.Node
	outputs []string
	inPlace map[string]string
	view    map[*graph.Node]bool
	w       work
}

// IsView reports whether n is one of ONNX's view ops: Reshape, Flatten,
// Squeeze, Unsqueeze and Identity, whose output is input 0's data under
// another shape.
func IsView(n *graph.Node) bool {
	if graph.NormDomain(n.Domain) != graph.DomainONNX {
		return false
	}
	switch n.OpType {
	case "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity":
		return true
	}
	return false
}

// NoKernel is the error for a node whose op the backend has no kernel for.
func NoKernel(backend string, n *graph.Node) *graph.UnsupportedOpError {
	return &graph.UnsupportedOpError{Node: n, Reason: "no " + backend + " kernel for " + opName(n)}
}

// IsNoKernel reports whether e is a NoKernel error (the op is missing,
// rather than one of its configurations).
func IsNoKernel(e *graph.UnsupportedOpError) bool {
	return e.Node != nil && strings.HasPrefix(e.Reason, "no ") && strings.HasSuffix(e.Reason, " kernel for "+opName(e.Node))
}

func opName(n *graph.Node) string {
	if n.Domain != "" {
		return n.Domain + "." + n.OpType
	}
	return n.OpType
}

// New prepares to plan m's graph: it fuses a private copy (m is not
// changed), orders the nodes the outputs need and checks that the backend
// has a kernel for each.
func New(m *graph.Model, h Hooks, o Options) (*Planner, error) {
	if h.Supports == nil || h.Prepare == nil {
		return nil, fmt.Errorf("plan: backend %q gives no Supports or Prepare hook", h.Backend)
	}
	if h.View == nil {
		h.View = IsView
	}
	if h.Storage.Untyped && h.Storage.Align <= 0 {
		h.Storage.Align = 256
	}
	p := &Planner{hooks: h, inPlace: o.InPlace}
	g := m.Graph
	p.outputs = o.Outputs
	if len(p.outputs) == 0 {
		for _, out := range g.Outputs {
			p.outputs = append(p.outputs, out.Name)
		}
	}
	keep := make(map[string]bool, len(p.outputs)+len(o.InPlace))
	for _, k := range p.outputs {
		keep[k] = true
	}
	for out := range o.InPlace {
		keep[out] = true
	}
	fg := g
	for _, f := range h.Fusions {
		fg = f.Rewrite(fg, keep)
	}
	p.model = m
	if fg != g {
		fm := *m
		fm.Graph = fg
		p.model = &fm
	}
	order, err := executionOrder(fg, p.outputs, o.InPlace, &p.w)
	if err != nil {
		return nil, err
	}
	p.order = order
	p.view = make(map[*graph.Node]bool)
	for _, n := range order {
		if !h.Supports(n) {
			return nil, NoKernel(h.Backend, n)
		}
		if h.View(n) {
			p.view[n] = true
		}
	}
	return p, nil
}

// Model is the model planned: the caller's, or a fused copy of it.
func (p *Planner) Model() *graph.Model { return p.model }

// Order is the execution order of the nodes the outputs need.
func (p *Planner) Order() []*graph.Node { return p.order }

// Outputs names the values the executable returns.
func (p *Planner) Outputs() []string { return p.outputs }

// StaticShapes returns every graph input's shape, from given or else from
// its declared type, and whether all are known: then a plan can be made
// before the first run.
func (p *Planner) StaticShapes(given map[string][]int) (map[string][]int, bool) {
	shapes := map[string][]int{}
	for _, in := range p.model.Graph.Inputs {
		if s, ok := given[in.Name]; ok {
			shapes[in.Name] = s
		} else if s, ok := in.Type.Concrete(); ok {
			shapes[in.Name] = s
		} else {
			return nil, false
		}
	}
	return shapes, true
}

// infer is graph.InferNode for the fused graph: each fusion corrects the
// types of the nodes it rewrote.
func (p *Planner) infer(n *graph.Node, types graph.Types) ([]*graph.Type, error) {
	for _, f := range p.hooks.Fusions {
		if f.InferNode != nil {
			if outs, ok, err := f.InferNode(p.model, n, types); ok {
				return outs, err
			}
		}
	}
	outs, err := graph.InferNode(p.model, n, types)
	if err != nil {
		return nil, err
	}
	for _, f := range p.hooks.Fusions {
		if f.Infer != nil {
			if outs, err = f.Infer(n, outs); err != nil {
				return nil, err
			}
		}
	}
	return outs, nil
}

// InferStep infers the output types of a dynamic step from the tensors it
// is given at run time (nil for omitted inputs): types for the kernel's
// factory, with concrete shapes. It fails when an output's shape does not
// follow from the inputs.
func (p *Planner) InferStep(s *Step, in []*tensor.Tensor) (ins, outs []*graph.Type, err error) {
	n := s.Node
	types := make(graph.Types, len(n.Inputs))
	ins = make([]*graph.Type, len(n.Inputs))
	for i, name := range n.Inputs {
		if name != "" && in[i] != nil {
			ins[i] = graph.TypeOf(in[i])
			types[name] = ins[i]
		}
	}
	outs, err = p.infer(n, types)
	if err != nil {
		return nil, nil, err
	}
	for i, o := range n.Outputs {
		if o == "" {
			continue
		}
		if outs[i] == nil {
			return nil, nil, graph.Errorf(n, "output %q has no inferred type", o)
		}
		if _, ok := outs[i].Concrete(); !ok {
			return nil, nil, graph.Errorf(n, "cannot determine the shape of output %q from the inputs", o)
		}
	}
	return ins, outs, nil
}

// Foldable reports whether a node with constant inputs may be evaluated at
// plan time: everything but ops with random or run-varying results.
func Foldable(n *graph.Node) bool {
	switch n.OpType {
	case "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli":
		return false
	}
	return true
}

// Plan plans every node for the given input shapes; dtypes overrides the
// declared dtypes of inputs (as fed).
func (p *Planner) Plan(shapes map[string][]int, dtypes map[string]tensor.DType) (*Plan, error) {
	g := p.model.Graph
	inits := g.InitializerNames()
	pl := &Plan{Inputs: make(map[string]int, len(g.Inputs)), Values: make([]Value, 0, len(inits)+len(g.Inputs)+len(p.order))}
	valueOf := make(map[string]int, cap(pl.Values))
	types := make(graph.Types, cap(pl.Values))
	newValue := func(name string, k Kind, t *graph.Type) int {
		pl.Values = append(pl.Values, Value{Name: name, Kind: k, Type: t, Block: -1, Alias: -1, Bind: -1})
		valueOf[name] = len(pl.Values) - 1
		types[name] = t
		return len(pl.Values) - 1
	}
	for _, name := range inits {
		t := g.Initializer(name)
		pl.Values[newValue(name, Const, graph.TypeOf(t))].Const = t
	}
	for _, in := range g.Inputs {
		dt := in.DType
		if d, ok := dtypes[in.Name]; ok {
			dt = d
		}
		pl.Inputs[in.Name] = newValue(in.Name, Feed, graph.NewType(dt, graph.ShapeOf(shapes[in.Name]...)))
	}
	for _, n := range p.order {
		p.w.add(1 + len(n.Inputs) + len(n.Outputs))
		outs, err := p.infer(n, types)
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
		// Outputs whose values inference already knows (Shape of a
		// concrete shape, say) are constants: no step runs for them.
		known := len(outs) > 0
		for i, o := range n.Outputs {
			if o != "" && (i >= len(outs) || outs[i] == nil || outs[i].Value == nil) {
				known = false
			}
		}
		if known && Foldable(n) {
			for i, o := range n.Outputs {
				if o != "" {
					pl.Values[newValue(o, Const, outs[i])].Const = outs[i].Value
				}
			}
			continue
		}
		st := &Step{Node: n, In: make([]int, len(n.Inputs)), Out: make([]int, len(n.Outputs)),
			InTypes: in, OutTypes: outs, Opset: p.model.OpsetOf(n), View: p.view[n]}
		for i, name := range n.Inputs {
			st.In[i] = -1
			if name != "" {
				st.In[i] = valueOf[name]
			}
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
		if !concrete {
			st.Dynamic = true
			for i, o := range n.Outputs {
				st.Out[i] = -1
				if o != "" {
					st.Out[i] = newValue(o, Dynamic, outs[i])
				}
			}
			pl.Steps = append(pl.Steps, st)
			continue
		}
		if allConst && Foldable(n) && (st.View || p.hooks.Fold != nil) {
			vals, err := p.fold(st)
			if err != nil {
				return nil, err
			}
			for i, o := range n.Outputs {
				if o != "" {
					pl.Values[newValue(o, Const, graph.TypeOf(vals[i]))].Const = vals[i]
				}
			}
			continue
		}
		if !st.View {
			k, err := p.hooks.Prepare(st)
			if err != nil {
				return nil, NodeErr(n, err)
			}
			st.Kernel = k
		}
		for i, o := range n.Outputs {
			st.Out[i] = -1
			if o == "" {
				continue
			}
			t := *outs[i]
			t.Value = nil
			st.Out[i] = newValue(o, Static, &t)
		}
		pl.Steps = append(pl.Steps, st)
	}
	for _, o := range p.outputs {
		v, ok := valueOf[o]
		if !ok {
			return nil, fmt.Errorf("output %q is not computed", o)
		}
		pl.Outputs = append(pl.Outputs, v)
	}
	if err := p.storage(pl); err != nil {
		return nil, err
	}
	return pl, nil
}

// fold evaluates a step whose inputs are all constants: a view on the
// host, anything else through Hooks.Fold.
func (p *Planner) fold(st *Step) ([]*tensor.Tensor, error) {
	n := st.Node
	args := make([]*tensor.Tensor, len(st.InTypes))
	for i, t := range st.InTypes {
		if t != nil {
			args[i] = t.Value
		}
	}
	if !st.View {
		vals, err := p.hooks.Fold(st, args)
		if err != nil {
			return nil, NodeErr(n, err)
		}
		if len(vals) < len(n.Outputs) {
			return nil, graph.Errorf(n, "folding gave %d outputs, the node has %d", len(vals), len(n.Outputs))
		}
		return vals, nil
	}
	vals := make([]*tensor.Tensor, len(n.Outputs))
	for i, o := range n.Outputs {
		if o == "" {
			continue
		}
		shape, _ := st.OutTypes[i].Concrete()
		v, err := tensor.View(args[0], shape)
		if err != nil {
			return nil, graph.Errorf(n, "%v", err)
		}
		vals[i] = v
	}
	return vals, nil
}

// NodeErr names the node in an error from its kernel that does not
// already (keeping the cause for errors.Is and errors.As).
func NodeErr(n *graph.Node, err error) error {
	switch err.(type) {
	case *graph.NodeError, *graph.UnsupportedOpError:
		return err
	}
	return &graph.NodeError{Node: n, Err: err} // keeps the cause for errors.Is
}

// work counts the planner's elementary operations (loop iterations and
// comparisons), so that tests can check that planning grows linearly
// with the graph without timing it.
type work struct{ n int64 }

func (w *work) add(k int) { w.n += int64(k) }
