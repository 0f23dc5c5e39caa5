package plan

import (
	"context"
	"fmt"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// HostFold returns a Fold hook that evaluates a node on another backend
// whose buffers are host memory (the CPU backend, say), so that a backend
// with device memory folds constants on the host: the node is compiled
// alone, its constant inputs as initializers, and run once.
func HostFold(host backend.Backend) func(s *Step, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	return func(s *Step, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
		devs := host.Devices()
		if len(devs) == 0 {
			return nil, fmt.Errorf("plan: host backend %s has no device to fold constants on", host.Name())
		}
		n := *s.Node
		n.Opset = s.Opset
		g := graph.NewGraph("fold")
		for i, name := range n.Inputs {
			if name != "" && in[i] != nil && g.Initializer(name) == nil {
				g.SetInitializer(name, in[i])
			}
		}
		g.Nodes = []*graph.Node{&n}
		for _, o := range n.Outputs {
			if o != "" {
				g.Outputs = append(g.Outputs, &graph.ValueInfo{Name: o})
			}
		}
		m := graph.NewModel(g, s.Opset)
		m.Opsets[graph.NormDomain(n.Domain)] = s.Opset
		exe, err := host.Compile(m, devs[0], backend.CompileOptions{})
		if err != nil {
			return nil, err
		}
		res, err := backend.RunHost(context.Background(), host, exe, devs[0], nil)
		if err != nil {
			return nil, err
		}
		outs := make([]*tensor.Tensor, len(n.Outputs))
		for i, o := range n.Outputs {
			if o != "" {
				outs[i] = res[o]
			}
		}
		return outs, nil
	}
}
