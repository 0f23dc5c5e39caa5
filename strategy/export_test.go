package strategy

import (
	"context"
	"fmt"

	"github.com/gotrain/gotrain/backend"
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
	grads, err := e.reduce(ctx, units, outs, b.Size(), nil)
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

// WorkerGradients is Gradients for a worker of a multi-worker run: b is
// the global batch, of which the worker computes its share (Part); the
// gradient is reduced across the workers. BatchNorm statistics are updated
// and averaged over the workers as in a step.
func WorkerGradients(s Strategy, b Batch, seed int64) (map[string]*tensor.Tensor, error) {
	m := s.(*MultiWorker)
	e := m.e
	ctx := context.Background()
	n := b.Size()
	lo, hi := m.Part(n)
	part, err := sliceInputs(b, lo, hi)
	if err != nil {
		return nil, err
	}
	part.Offset, part.Total = lo, n
	var units []unit
	var outs []map[string]backend.Buffer
	if hi > lo {
		if units, outs, err = e.run(ctx, part, seed); err != nil {
			return nil, err
		}
	}
	if e.cfg.Deterministic {
		err = m.foldGrads(ctx, units, outs, n, nil)
	} else {
		err = m.sumGrads(ctx, units, outs, n, nil)
	}
	if err != nil {
		return nil, err
	}
	if err := e.syncStats(ctx, units); err != nil {
		return nil, err
	}
	if err := m.syncStats(len(units) > 0); err != nil {
		return nil, err
	}
	out := map[string]*tensor.Tensor{}
	for i, g := range m.grads {
		t := tensor.New(tensor.Float32, g.shape...)
		copy(t.Float32s(), m.flat[g.lo:g.hi])
		out[e.tr.Params[i]] = t
	}
	return out, nil
}

// Share is MultiWorker.Share for a Strategy.
func Share(s Strategy, b Batch) (Batch, error) { return s.(*MultiWorker).Share(b) }

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
