package strategy

import (
	"context"
	"fmt"

	"github.com/gotrain/gotrain/tensor"
)

// Test hooks, compiled into the package's tests only.

// Gradients returns the gradient of a batch's loss as a step computes it
// (replicas, reduction), without applying the update; BatchNorm statistics
// are updated as in a step.
func Gradients(s Strategy, b Batch, seed int64) (map[string]*tensor.Tensor, error) {
	e := s.(*engine)
	ctx := context.Background()
	units, outs, err := e.run(ctx, b, seed)
	if err != nil {
		return nil, err
	}
	grads, _, err := e.reduce(ctx, units, outs, b.Size())
	if err != nil {
		return nil, err
	}
	if err := e.syncStats(ctx, units); err != nil {
		return nil, err
	}
	out := map[string]*tensor.Tensor{}
	for i, p := range e.tr.Params {
		if out[p], err = e.b.Download(grads[e.tr.Grads[i]]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UnitGradients runs the replicas on a batch and returns each unit's
// gradient (the mean over its samples) and its weight in the batch's
// gradient, without reducing or applying them. A single device in
// deterministic mode with shards of one sample gives per-sample gradients.
func UnitGradients(s Strategy, b Batch, seed int64) ([]map[string]*tensor.Tensor, []float64, error) {
	e := s.(*engine)
	units, outs, err := e.run(context.Background(), b, seed)
	if err != nil {
		return nil, nil, err
	}
	grads := make([]map[string]*tensor.Tensor, len(units))
	weights := make([]float64, len(units))
	for u, un := range units {
		weights[u] = e.weight(un, b.Size())
		grads[u] = map[string]*tensor.Tensor{}
		for i, p := range e.tr.Params {
			if grads[u][p], err = e.b.Download(outs[u][e.tr.Grads[i]]); err != nil {
				return nil, nil, err
			}
		}
	}
	return grads, weights, nil
}

// CorruptReplica adds 1 to element i of replica r's copy of parameter or
// BatchNorm statistic p, as a faulty copy would leave it. It fails where
// the replica has no copy of its own (a parameter on shared memory).
func CorruptReplica(s Strategy, r int, p string, i int) error {
	e := s.(*engine)
	if r < 1 || r >= len(e.reps) {
		return fmt.Errorf("no replica %d", r)
	}
	rep := e.reps[r]
	bufs := rep.buffers
	if _, ok := e.params[p]; ok {
		if e.shared {
			return fmt.Errorf("replica %d reads the master copy of %q", r, p)
		}
		bufs = rep.params
	}
	buf, ok := bufs[p]
	if !ok {
		return fmt.Errorf("no parameter or statistic %q", p)
	}
	t, err := e.b.Download(buf)
	if err != nil {
		return err
	}
	t.Float32s()[i]++
	bufs[p], err = e.b.Upload(t, rep.dev)
	return err
}
