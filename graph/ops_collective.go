package graph

// AllReduceSum (ai.gotrain) sums its input over the replicas of a group:
// every replica gets the same sum. It is how sync BatchNorm shares batch
// statistics. Outside a group it is the identity. Its gradient is the same
// reduction of the output gradients: each replica's input reaches every
// replica's output.

func init() {
	Register(&Schema{Domain: DomainGotrain, OpType: "AllReduceSum", MinInputs: 1, MaxInputs: 1, Attrs: map[string]AttrType{},
		Infer: func(n *Node, in []*Type, opset int64) ([]*Type, error) {
			return []*Type{same(in[0])}, nil
		}})
	RegisterGrad(DomainGotrain, "AllReduceSum", func(c *GradContext, n *Node, d []string) ([]string, error) {
		return []string{c.GOp("AllReduceSum", 1, d[0]).Out()}, nil
	})
}
