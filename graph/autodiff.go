package graph

// GradRule emits the nodes that compute the gradients of a node's inputs.
// dOut[i] names the gradient flowing into n.Outputs[i] ("" when none does);
// the rule returns one name per input of n, "" for an input that gets no
// gradient. Rules are registered in the op's Schema, beside its inference.
type GradRule func(c *GradContext, n *Node, dOut []string) ([]string, error)

// GradContext is what a gradient rule builds with: the builder of the
// training graph and the forward values' types.
type GradContext struct {
	B     *Builder
	Types Types
}
