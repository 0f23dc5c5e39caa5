package graph

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gotrain/gotrain/tensor"
)

// TopoSort returns the nodes in an order where every node follows the
// producers of its inputs. It fails on a cycle, naming a node on it, and on
// an input that nothing produces.
func (g *Graph) TopoSort() ([]*Node, error) {
	producer := map[string]int{}
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == "" {
				continue
			}
			if j, dup := producer[o]; dup {
				return nil, Errorf(n, "output %q is also produced by %s", o, g.Nodes[j])
			}
			producer[o] = i
		}
	}
	available := map[string]bool{}
	for _, in := range g.Inputs {
		available[in.Name] = true
	}
	for _, name := range g.initNames {
		available[name] = true
	}
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in == "" || available[in] {
				continue
			}
			if _, ok := producer[in]; !ok {
				return nil, Errorf(n, "input %q is not a graph input, an initializer or any node's output", in)
			}
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(g.Nodes))
	order := make([]*Node, 0, len(g.Nodes))
	// Iterative DFS keeps deep graphs from exhausting the stack.
	type frame struct{ node, next int }
	for root := range g.Nodes {
		if state[root] != unvisited {
			continue
		}
		stack := []frame{{root, 0}}
		state[root] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			n := g.Nodes[top.node]
			if top.next < len(n.Inputs) {
				in := n.Inputs[top.next]
				top.next++
				if in == "" || available[in] {
					continue
				}
				p := producer[in]
				switch state[p] {
				case visiting:
					return nil, Errorf(g.Nodes[p], "the graph has a cycle through value %q", in)
				case unvisited:
					state[p] = visiting
					stack = append(stack, frame{p, 0})
				}
				continue
			}
			state[top.node] = done
			order = append(order, n)
			stack = stack[:len(stack)-1]
		}
	}
	return order, nil
}

// Types maps value names to what is known of them.
type Types map[string]*Type

// InferShapes runs shape inference over the graph in topological order.
// Graph inputs take their declared types unless inputs overrides them (to
// give a concrete batch size, say); initializers are known values. The
// result holds every value's type. Unknown ops fail with an
// UnsupportedOpError; inference failures name the node.
func InferShapes(m *Model, inputs map[string]*Type) (Types, error) {
	g := m.Graph
	order, err := g.TopoSort()
	if err != nil {
		return nil, err
	}
	types := Types{}
	for _, name := range g.initNames {
		types[name] = TypeOf(g.inits[name])
	}
	for _, in := range g.Inputs {
		if t, ok := inputs[in.Name]; ok {
			types[in.Name] = t
		} else {
			t := in.Type
			types[in.Name] = &t
		}
	}
	for _, n := range order {
		outs, err := InferNode(m, n, types)
		if err != nil {
			return nil, err
		}
		for i, o := range n.Outputs {
			if o != "" && i < len(outs) {
				types[o] = outs[i]
			}
		}
	}
	return types, nil
}

// InferNode infers one node's output types from the types of its inputs.
func InferNode(m *Model, n *Node, types Types) ([]*Type, error) {
	s := Lookup(n.Domain, n.OpType)
	if s == nil {
		return nil, &UnsupportedOpError{Node: n}
	}
	in := make([]*Type, len(n.Inputs))
	for i, name := range n.Inputs {
		if name == "" {
			continue
		}
		t, ok := types[name]
		if !ok {
			return nil, Errorf(n, "input %q has no type", name)
		}
		in[i] = t
	}
	if len(in) < s.MinInputs || (s.MaxInputs >= 0 && len(in) > s.MaxInputs) {
		return nil, Errorf(n, "has %d inputs; %s takes %s", len(in), n.OpType, arity(s))
	}
	opset := m.OpsetOf(n)
	if err := CheckAttrs(n, opset); err != nil {
		return nil, err
	}
	outs, err := s.Infer(n, in, opset)
	if err != nil {
		var ne *NodeError
		var ue *UnsupportedOpError
		if errors.As(err, &ne) || errors.As(err, &ue) {
			return nil, err
		}
		return nil, Errorf(n, "%v", err)
	}
	if err := checkOutputs(n, outs); err != nil {
		return nil, err
	}
	if len(outs) < len(n.Outputs) {
		// Optional outputs the schema did not type are left unknown.
		for len(outs) < len(n.Outputs) {
			outs = append(outs, nil)
		}
	}
	return outs, nil
}

func arity(s *Schema) string {
	switch {
	case s.MaxInputs < 0:
		return fmt.Sprintf("at least %d", s.MinInputs)
	case s.MinInputs == s.MaxInputs:
		return fmt.Sprint(s.MinInputs)
	}
	return fmt.Sprintf("%d to %d", s.MinInputs, s.MaxInputs)
}

// Validate checks the model: every op known, every input available, no
// cycle, declared output types consistent with inference, and graph inputs
// typed. It returns all problems found, one per line.
func Validate(m *Model) error {
	g := m.Graph
	var problems []string
	for _, n := range g.Nodes {
		if Lookup(n.Domain, n.OpType) == nil {
			problems = append(problems, (&UnsupportedOpError{Node: n}).Error())
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	for _, in := range g.Inputs {
		if in.DType == tensor.Invalid {
			problems = append(problems, fmt.Sprintf("graph input %q has no tensor type", in.Name))
		}
	}
	types, err := InferShapes(m, nil)
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		for _, out := range g.Outputs {
			t, ok := types[out.Name]
			if !ok {
				problems = append(problems, fmt.Sprintf("graph output %q is not produced by any node", out.Name))
				continue
			}
			if t != nil && out.DType != tensor.Invalid && t.DType != out.DType {
				problems = append(problems, fmt.Sprintf("graph output %q is declared %v but computed as %v", out.Name, out.DType, t.DType))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}
