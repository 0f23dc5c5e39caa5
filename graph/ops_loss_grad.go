package graph

// Gradient rules of the losses. Softmax cross-entropy differentiates with
// respect to the scores through the log-probabilities the forward op
// already computed: d/dscores = softmax - target, scaled by the reduction.

func init() {
	sceGrad := func(c *GradContext, n *Node, d []string) ([]string, error) {
		if d[0] == "" {
			return make([]string, len(n.Inputs)), nil
		}
		logp := ensureOutput(c, n, 1, n.Name+"_log_prob")
		inputs := []string{d[0], logp, n.Inputs[1]}
		if w := n.Input(2); w != "" {
			inputs = append(inputs, w)
		}
		r := c.GOp("SoftmaxCrossEntropyGrad", 1, inputs...)
		for _, a := range []string{"reduction", "ignore_index", "label_smoothing"} {
			if at := n.Attr(a); at != nil {
				r.With(at)
			}
		}
		out := make([]string, len(n.Inputs))
		out[0] = r.Out()
		return out, nil
	}
	RegisterGrad("", "SoftmaxCrossEntropyLoss", sceGrad)
	RegisterGrad(DomainGotrain, "SoftmaxCrossEntropy", sceGrad)
	RegisterGrad(DomainGotrain, "BCEWithLogits", func(c *GradContext, n *Node, d []string) ([]string, error) {
		r := c.GOp("BCEWithLogitsGrad", 1, d[0], n.Inputs[0], n.Inputs[1])
		if at := n.Attr("reduction"); at != nil {
			r.With(at)
		}
		return []string{r.Out(), ""}, nil
	})
}
