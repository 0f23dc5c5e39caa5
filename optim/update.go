package optim

import (
	"fmt"
	"sort"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Names of the update model's scalar inputs and of its clipping values.
const (
	LRInput   = "lr"   // float32 scalar
	StepInput = "step" // int64 scalar, the 1-based index of the update
	// GradScaleValue is GlobalNormScale's output when ClipNorm > 0: the
	// factor all gradients are multiplied by.
	GradScaleValue = "grad_scale"
	// GradNormValue is the global gradient norm before clipping (computed
	// only when ClipNorm > 0); name it in the backend's CompileOptions.Outputs
	// next to the update outputs to log it.
	GradNormValue = "grad_norm"
)

// GradName is the update model's input for a parameter's gradient.
func GradName(param string) string { return "grad:" + param }

// SlotName is the update model's input for a state slot of a parameter.
func SlotName(param, slot string) string { return param + ":" + slot }

// NextName is the output holding the new value of an input (a parameter
// or a slot).
func NextName(input string) string { return input + ":next" }

// Update is an optimizer step as a model for a backend to compile.
type Update struct {
	// Model computes one step; see the package doc for its inputs and outputs.
	Model *graph.Model
	// InPlace maps each output to the input whose buffer it overwrites
	// (for backend.CompileOptions.InPlace).
	InPlace map[string]string
	// Config is the normalized configuration the model was built from.
	Config Config
	// Params are the parameters updated, in input order.
	Params []Param
	// Slots are the names of the state slots every parameter has.
	Slots []string
	// Settings are the resolved learning-rate multiplier and weight decay
	// of each parameter, by name.
	Settings map[string]Setting
}

// StateNames lists the slot inputs of every parameter ("<param>:<slot>"),
// parameter by parameter: the optimizer state to save and restore.
func (u *Update) StateNames() []string {
	var s []string
	for _, p := range u.Params {
		for _, slot := range u.Slots {
			s = append(s, SlotName(p.Name, slot))
		}
	}
	return s
}

// BuildUpdate validates cfg and params and builds the update model.
func BuildUpdate(cfg Config, params []Param) (*Update, error) {
	c, err := cfg.Normalized()
	if err != nil {
		return nil, err
	}
	if err := checkParams(params, c.Slots()); err != nil {
		return nil, err
	}
	u := &Update{Config: c, Params: append([]Param(nil), params...), Slots: c.Slots(),
		InPlace: map[string]string{}, Settings: map[string]Setting{}}
	g := graph.NewGraph("optim_" + c.Name)
	f32 := func(shape []int) graph.Type {
		return *graph.NewType(tensor.Float32, graph.ShapeOf(shape...))
	}
	input := func(name string, t graph.Type) {
		g.Inputs = append(g.Inputs, &graph.ValueInfo{Name: name, Type: t})
	}
	input(LRInput, f32(nil))
	input(StepInput, *graph.NewType(tensor.Int64, graph.Shape{}))
	for _, p := range params {
		input(p.Name, f32(p.Shape))
		input(GradName(p.Name), f32(p.Shape))
		for _, s := range u.Slots {
			input(SlotName(p.Name, s), f32(p.Shape))
		}
	}
	scale := ""
	if c.ClipNorm > 0 && len(params) > 0 {
		grads := make([]string, len(params))
		for i, p := range params {
			grads[i] = GradName(p.Name)
		}
		scale = GradScaleValue
		g.Nodes = append(g.Nodes, &graph.Node{Name: "clip_by_global_norm", OpType: "GlobalNormScale",
			Domain: graph.DomainGotrain, Inputs: grads, Outputs: []string{GradScaleValue, GradNormValue},
			Attrs: attrs(graph.AFloat("max_norm", float32(c.ClipNorm)))})
	}
	for _, p := range params {
		set := c.Resolve(p)
		u.Settings[p.Name] = set
		n := updateNode(c, p, set, scale)
		g.Nodes = append(g.Nodes, n)
		// Output k replaces input states[k].
		states := []string{p.Name}
		for _, s := range u.Slots {
			states = append(states, SlotName(p.Name, s))
		}
		for k, out := range n.Outputs {
			if out != "" {
				u.InPlace[out] = nodeStateInput(n, k)
			}
		}
		for _, s := range states {
			g.Outputs = append(g.Outputs, &graph.ValueInfo{Name: NextName(s), Type: f32(p.Shape)})
		}
	}
	m := graph.NewModel(g, 17)
	m.Opsets[graph.DomainGotrain] = 1
	if _, err := graph.InferShapes(m, nil); err != nil {
		return nil, fmt.Errorf("optim: the update model is invalid: %w", err)
	}
	u.Model = m
	return u, nil
}

// updateNode emits the fused update op of one parameter. Inputs and outputs
// follow the op layouts of graph/ops_optim.go; optional ones left out are "".
func updateNode(c Config, p Param, set Setting, scale string) *graph.Node {
	slot := func(s string) string { return SlotName(p.Name, s) }
	next := func(v string) string { return NextName(v) }
	decoupled := c.DecayMode == DecayDecoupled
	coupledWD, decoupledWD := set.WeightDecay, 0.0
	if decoupled {
		coupledWD, decoupledWD = 0, set.WeightDecay
	}
	n := &graph.Node{Name: "update:" + p.Name, Domain: graph.DomainGotrain}
	common := []*graph.Attribute{
		graph.AFloat("lr_scale", float32(set.LRScale)),
		graph.AFloat("clip_value", float32(c.ClipValue)),
	}
	flag := func(b bool) int64 {
		if b {
			return 1
		}
		return 0
	}
	switch c.Name {
	case SGD, Momentum, Nesterov:
		n.OpType = "SGDUpdate"
		n.Inputs = []string{p.Name, GradName(p.Name), LRInput, StepInput, scale}
		n.Outputs = []string{next(p.Name)}
		if c.Momentum != 0 {
			n.Inputs = append(n.Inputs, slot("momentum"))
			n.Outputs = append(n.Outputs, next(slot("momentum")))
		}
		n.Attrs = attrs(append(common,
			graph.AFloat("momentum", float32(c.Momentum)),
			graph.AFloat("dampening", float32(c.Dampening)),
			graph.AInt("nesterov", flag(c.Name == Nesterov)),
			graph.AFloat("weight_decay", float32(coupledWD)),
			graph.AFloat("decoupled_weight_decay", float32(decoupledWD)))...)
	case Adam, AdamW:
		n.OpType = "AdamUpdate"
		n.Inputs = []string{p.Name, GradName(p.Name), slot("m"), slot("v"), LRInput, StepInput, scale}
		n.Outputs = []string{next(p.Name), next(slot("m")), next(slot("v"))}
		n.Attrs = attrs(append(common,
			graph.AFloat("beta1", float32(c.Beta1)),
			graph.AFloat("beta2", float32(c.Beta2)),
			graph.AFloat("epsilon", float32(c.Eps)),
			graph.AString("eps_mode", string(c.EpsMode)),
			graph.AFloat("weight_decay", float32(set.WeightDecay)),
			graph.AInt("decoupled", flag(decoupled)))...)
	case RMSprop:
		n.OpType = "RMSpropUpdate"
		n.Inputs = []string{p.Name, GradName(p.Name), slot("square_avg"), LRInput, StepInput, scale, "", ""}
		n.Outputs = []string{next(p.Name), next(slot("square_avg")), "", ""}
		if c.Momentum > 0 {
			n.Inputs[6], n.Outputs[2] = slot("momentum"), next(slot("momentum"))
		}
		if c.Centered {
			n.Inputs[7], n.Outputs[3] = slot("grad_avg"), next(slot("grad_avg"))
		}
		n.Attrs = attrs(append(common,
			graph.AFloat("alpha", float32(c.Alpha)),
			graph.AFloat("eps", float32(c.Eps)),
			graph.AFloat("momentum", float32(c.Momentum)),
			graph.AInt("centered", flag(c.Centered)),
			graph.AFloat("weight_decay", float32(set.WeightDecay)),
			graph.AInt("decoupled", flag(decoupled)))...)
	case Adagrad:
		n.OpType = "AdagradUpdate"
		n.Inputs = []string{p.Name, GradName(p.Name), slot("sum"), LRInput, StepInput, scale}
		n.Outputs = []string{next(p.Name), next(slot("sum"))}
		n.Attrs = attrs(append(common,
			graph.AFloat("lr_decay", float32(c.LRDecay)),
			graph.AFloat("eps", float32(c.Eps)),
			graph.AFloat("weight_decay", float32(set.WeightDecay)),
			graph.AInt("decoupled", flag(decoupled)))...)
	}
	// Drop trailing omitted inputs and outputs: "" only marks a gap.
	for len(n.Inputs) > 0 && n.Inputs[len(n.Inputs)-1] == "" {
		n.Inputs = n.Inputs[:len(n.Inputs)-1]
	}
	for len(n.Outputs) > 0 && n.Outputs[len(n.Outputs)-1] == "" {
		n.Outputs = n.Outputs[:len(n.Outputs)-1]
	}
	return n
}

// nodeStateInput returns the input whose value output k of an update node
// replaces: NextName(x) replaces x.
func nodeStateInput(n *graph.Node, k int) string {
	out := n.Outputs[k]
	return out[:len(out)-len(":next")]
}

func attrs(as ...*graph.Attribute) map[string]*graph.Attribute {
	m := make(map[string]*graph.Attribute, len(as))
	for _, a := range as {
		m[a.Name] = a
	}
	return m
}

// checkParams rejects empty, duplicate and colliding names and bad shapes.
func checkParams(params []Param, slots []string) error {
	owner := map[string]string{
		LRInput: "the lr input", StepInput: "the step input",
		GradScaleValue: "the clipping scale", GradNormValue: "the gradient norm",
	}
	claim := func(value, who string) error {
		if prev, dup := owner[value]; dup {
			return fmt.Errorf("optim: %s and %s both need the value name %q", who, prev, value)
		}
		owner[value] = who
		return nil
	}
	for i, p := range params {
		if p.Name == "" {
			return fmt.Errorf("optim: parameter %d has no name", i)
		}
		who := fmt.Sprintf("parameter %q", p.Name)
		for _, d := range p.Shape {
			if d < 0 {
				return fmt.Errorf("optim: %s has a negative dim in shape %v", who, p.Shape)
			}
		}
		if p.Kind < Weight || p.Kind > Norm {
			return fmt.Errorf("optim: %s has unknown kind %d", who, int(p.Kind))
		}
		names := []string{p.Name, GradName(p.Name), NextName(p.Name)}
		for _, s := range slots {
			names = append(names, SlotName(p.Name, s), NextName(SlotName(p.Name, s)))
		}
		for _, v := range names {
			if err := claim(v, who); err != nil {
				return err
			}
		}
	}
	return nil
}

// InitState returns the initial optimizer state for params by slot input
// name: zeros, except Adagrad's sum, which starts at InitialAccumulator.
func InitState(cfg Config, params []Param) (map[string]*tensor.Tensor, error) {
	c, err := cfg.Normalized()
	if err != nil {
		return nil, err
	}
	if err := checkParams(params, c.Slots()); err != nil {
		return nil, err
	}
	state := map[string]*tensor.Tensor{}
	for _, p := range params {
		for _, s := range c.Slots() {
			t, err := tensor.NewChecked(tensor.Float32, p.Shape)
			if err != nil {
				return nil, fmt.Errorf("optim: parameter %q: %w", p.Name, err)
			}
			if s == "sum" && c.InitialAccumulator != 0 {
				v := float32(c.InitialAccumulator)
				d := t.Float32s()
				for i := range d {
					d[i] = v
				}
			}
			state[SlotName(p.Name, s)] = t
		}
	}
	return state, nil
}

// InitState is InitState for the update's own config and parameters.
func (u *Update) InitState() (map[string]*tensor.Tensor, error) {
	return InitState(u.Config, u.Params)
}

// CheckState verifies a restored optimizer state: every slot present,
// float32, shaped like its parameter, and nothing else. It names the first
// problem of each kind.
func (u *Update) CheckState(state map[string]*tensor.Tensor) error {
	want := map[string]bool{}
	for _, p := range u.Params {
		for _, s := range u.Slots {
			name := SlotName(p.Name, s)
			want[name] = true
			t, ok := state[name]
			if !ok || t == nil {
				return fmt.Errorf("optim: state %q (%s slot of %q) is missing", name, s, p.Name)
			}
			if t.DType() != tensor.Float32 {
				return fmt.Errorf("optim: state %q is %v; want float32", name, t.DType())
			}
			if !tensor.SameShape(t.Shape(), p.Shape) {
				return fmt.Errorf("optim: state %q has shape %v; parameter %q has %v", name, t.Shape(), p.Name, p.Shape)
			}
		}
	}
	var extra []string
	for name := range state {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("optim: state %q belongs to no slot of this %s optimizer (slots: %v)", extra[0], u.Config.Name, u.Slots)
	}
	return nil
}
