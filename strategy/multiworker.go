package strategy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync/atomic"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/tensor"
)

// World is the group of worker processes that a multi-worker run spans
// (internal/mpi's Comm, over OpenMPI, is one). Every method but Rank and
// Size is collective: every worker calls it, in the same order, and it
// fails on every worker when one fails.
type World interface {
	Rank() int
	Size() int
	// AllreduceSum sums buf over the workers in place, in an order the
	// implementation chooses, with the same result on every worker.
	AllreduceSum(buf []float32) error
	// Fold reduces in rank order: worker r calls f with what worker r-1's
	// f returned (nil at worker 0, or when no worker before contributed)
	// and every worker gets the last worker's result (nil if none
	// contributed). f returns prev to contribute nothing.
	Fold(n int, f func(prev []float32) ([]float32, error)) ([]float32, error)
	// Allgather returns every worker's bytes, by rank.
	Allgather(mine []byte) ([][]byte, error)
	// BcastBytes returns root's bytes on every worker.
	BcastBytes(b []byte, root int) ([]byte, error)
}

// MultiWorker is the strategy of one worker process in a multi-worker run
// (Keras' MultiWorkerMirroredStrategy): every worker holds the whole model,
// takes its share of every global batch (Part), computes its share's
// gradient with its local replicas as Mirrored does, and the workers'
// gradients are summed across the World before every worker applies the
// same update. The data order, Dropout masks and loss weights are those of
// the global batch, so N workers train as one device does:
//
//   - By default each worker's share is split evenly and its weighted
//     gradient sum is all-reduced in the order the World chooses: results
//     equal single-device training's to float32 rounding.
//   - In deterministic mode shares are runs of whole micro-shards, and the
//     shards' weighted gradients are summed in shard order across the
//     workers (World.Fold): each worker starts its sum from the previous
//     workers' and passes it on, so the bits are single-device
//     deterministic training's, whatever the number of workers.
//
// BatchNorm statistics are per worker (its share's), averaged over the
// workers after every step, which equals averaging them when read since
// their update is linear; with sync BatchNorm the graphs' collectives sum
// the statistics over every replica of every worker. Validation splits
// each batch among the workers and gathers the results (in deterministic
// mode worker 0 evaluates and broadcasts, for single-device's bits), so
// every worker's callbacks see the same metrics.
//
// Weights, SetWeights, OptState and SetOptState are local: every worker
// holds the same values, so callbacks that read or restore weights may run
// on every worker without communicating. A stop that one worker asks for
// (RequestStop) is agreed on with the next step, so every worker stops
// after the same one (Stopping).
type MultiWorker struct {
	e     *engine
	world World
	// flat holds the gradients end to end for the reduction across
	// workers, and a count of failed workers; grads[i] is tr.Grads[i]'s
	// place in it.
	flat  []float32
	grads []gradSlot
	// stats holds the BatchNorm statistics end to end, and a count.
	stats     []float32
	stopAsked atomic.Bool
	stopping  bool
}

// gradSlot is one gradient's place in the flat vector.
type gradSlot struct {
	name   string
	shape  []int
	lo, hi int
}

// NewMultiWorker makes this worker's strategy: cfg describes its local
// replicas (Replicas 0 or 1: one device; more: Mirrored over that many
// devices of cfg.Backend), cfg.World the workers. Every worker must build
// it with the same model, optimizer and initial weights.
func NewMultiWorker(cfg Config) (*MultiWorker, error) {
	world := cfg.World
	if world == nil || world.Size() < 1 {
		return nil, errors.New("multi-worker: no world of workers (Config.World)")
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.Replicas < 0 {
		return nil, fmt.Errorf("multi-worker: local replica count %d: need at least 1", cfg.Replicas)
	}
	if cfg.Backend != nil && cfg.Replicas > len(cfg.Backend.Devices()) {
		return nil, fmt.Errorf("multi-worker: %d local replicas but backend %s has %d devices", cfg.Replicas, cfg.Backend.Name(), len(cfg.Backend.Devices()))
	}
	if cfg.Training != nil && cfg.Training.Collective {
		cfg.outer = world.AllreduceSum
	}
	e, err := newEngine(cfg)
	if err != nil {
		return nil, err
	}
	m := &MultiWorker{e: e, world: world}
	for i, g := range e.tr.Grads {
		p := e.params[e.tr.Params[i]]
		if p.DType() != tensor.Float32 {
			return nil, fmt.Errorf("multi-worker: parameter %q is %v; gradients are reduced across workers as float32", e.tr.Params[i], p.DType())
		}
		n := tensor.NumElements(p.Shape())
		m.grads = append(m.grads, gradSlot{name: g, shape: p.Shape(), lo: len(m.flat), hi: len(m.flat) + n})
		m.flat = append(m.flat, make([]float32, n)...)
	}
	m.flat = append(m.flat, 0) // the count of workers whose step failed
	// Every worker must start from the same model and weights.
	if err := m.checkWorkers("at the start (another model, or other initial weights?)"); err != nil {
		return nil, err
	}
	return m, nil
}

// newMultiWorker is NewMultiWorker as a Kind's New.
func newMultiWorker(cfg Config) (Strategy, error) {
	m, err := NewMultiWorker(cfg)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Rank and Workers are this worker's place in the world and its size.
func (m *MultiWorker) Rank() int    { return m.world.Rank() }
func (m *MultiWorker) Workers() int { return m.world.Size() }

// Replicas is this worker's number of local replicas.
func (m *MultiWorker) Replicas() int { return m.e.Replicas() }

// Part is this worker's share [lo, hi) of a global batch of n samples: an
// even split, or in deterministic mode a run of whole micro-shards.
func (m *MultiWorker) Part(n int) (lo, hi int) {
	W, r := m.world.Size(), m.world.Rank()
	if m.e.cfg.Deterministic {
		size := m.e.shardSize()
		s := (n + size - 1) / size
		return min(r*s/W*size, n), min((r+1)*s/W*size, n)
	}
	s := split(n, W)[r]
	return s[0], s[1]
}

// Share returns this worker's part of a global batch b (Part), placed in
// it (Offset, Total): what Step takes, for a caller that holds the whole
// batch. It shares b's memory.
func (m *MultiWorker) Share(b Batch) (Batch, error) {
	lo, hi := m.Part(b.Size())
	part, err := sliceInputs(b, lo, hi)
	part.Offset, part.Total = lo, b.Size()
	return part, err
}

// ReducedBytes is what a step reduces across the workers, in bytes: the
// gradients (float32) and the BatchNorm statistics, not counting the few
// bytes of each worker's losses.
func (m *MultiWorker) ReducedBytes() int {
	n := len(m.flat)
	if len(m.e.tr.Buffers) > 0 && !m.e.tr.Collective {
		for _, name := range m.e.tr.Buffers {
			n += tensor.NumElements(m.e.reps[0].buffers[name].Shape())
		}
		n++
	}
	return 4 * n
}

// RequestStop asks the run to stop; every worker learns of it with the next
// step (Stopping). It may be called from any goroutine (a signal handler).
func (m *MultiWorker) RequestStop() { m.stopAsked.Store(true) }

// Stopping reports whether some worker asked to stop by the last step: the
// same answer on every worker after the same step.
func (m *MultiWorker) Stopping() bool { return m.stopping }

// Step trains on this worker's share of a global batch: batch holds samples
// [Offset, Offset+Size()) of a global batch of Total samples, as Part says.
// The result is the global batch's.
func (m *MultiWorker) Step(ctx context.Context, batch Batch, lr float64, step int64, seed int64) (StepResult, error) {
	total := batch.total()
	n := batch.Size()
	if lo, hi := m.Part(total); batch.Offset != lo || batch.Offset+n != hi {
		return StepResult{}, fmt.Errorf("multi-worker: worker %d got samples [%d, %d) of a batch of %d; its share is [%d, %d)", m.Rank(), batch.Offset, batch.Offset+n, total, lo, hi)
	}
	e := m.e
	if e.cfg.CheckReplicas {
		if err := e.checkReplicas(); err != nil {
			return StepResult{}, err
		}
	}
	if err := e.saveStats(); err != nil {
		return StepResult{}, err
	}
	// A worker whose share fails still takes part in the step's
	// collectives, so that the others learn of it and fail too.
	var units []unit
	var outs []map[string]backend.Buffer
	var terms []term
	var failed error
	if n > 0 {
		units, outs, failed = e.run(ctx, batch, seed)
		if failed == nil {
			terms, failed = e.terms(units, outs, total)
		}
		if failed != nil {
			units, outs, terms = nil, nil, nil
		}
	}
	var err error
	if e.cfg.Deterministic {
		err = m.foldGrads(ctx, units, outs, total, failed)
	} else {
		err = m.sumGrads(ctx, units, outs, total, failed)
	}
	if failed != nil {
		return StepResult{}, e.restoreStats(failed)
	}
	if err != nil {
		return StepResult{}, e.restoreStats(err)
	}
	res, err := m.agree(terms, total)
	if err != nil {
		return res, err
	}
	grads := map[string]backend.Buffer{}
	for _, g := range m.grads {
		t, err := tensor.FromSlice(m.flat[g.lo:g.hi], g.shape...)
		if err != nil {
			return res, err
		}
		if grads[g.name], err = m.e.in.put("grad:"+g.name, t); err != nil {
			return res, err
		}
	}
	if err := e.applyUpdate(ctx, grads, lr, step); err != nil {
		return res, err
	}
	if err := e.syncStats(ctx, units); err != nil {
		return res, err
	}
	if err := m.syncStats(len(units) > 0); err != nil {
		return res, err
	}
	if err := e.broadcast(); err != nil {
		return res, err
	}
	if m.e.cfg.CheckReplicas {
		if err := m.checkWorkers("after the update"); err != nil {
			return res, err
		}
	}
	return res, nil
}

// sumGrads puts this worker's weighted gradient sum in flat (zeros when it
// has no samples) and all-reduces it, with a count of failed workers in
// the last element: a worker that failed (failed, or here) still takes
// part, so that every worker's step fails.
func (m *MultiWorker) sumGrads(ctx context.Context, units []unit, outs []map[string]backend.Buffer, total int, failed error) error {
	flat := m.flat[:len(m.flat)-1]
	if failed == nil && len(units) > 0 {
		grads, err := m.e.reduce(ctx, units, outs, total, nil)
		if err == nil {
			err = m.download(grads, flat)
		}
		failed = err
	} else {
		clear(flat)
	}
	m.flat[len(m.flat)-1] = 0
	if failed != nil {
		clear(flat)
		m.flat[len(m.flat)-1] = 1
	}
	if err := m.world.AllreduceSum(m.flat); err != nil {
		return fmt.Errorf("multi-worker: all-reduce of the gradients: %w", err)
	}
	if failed != nil {
		return failed
	}
	if f := m.flat[len(m.flat)-1]; f != 0 {
		return fmt.Errorf("multi-worker: %d other worker(s) failed this step (their messages say why)", int(f))
	}
	return nil
}

// foldGrads sums the shards' weighted gradients in shard order across the
// workers: each starts from the previous workers' sum (World.Fold) and
// adds its shards with the reduction graph, as one device would.
func (m *MultiWorker) foldGrads(ctx context.Context, units []unit, outs []map[string]backend.Buffer, total int, failed error) error {
	flat := m.flat[:len(m.flat)-1]
	sum, err := m.world.Fold(len(flat), func(prev []float32) ([]float32, error) {
		if failed != nil {
			return nil, failed
		}
		if len(units) == 0 {
			return prev, nil
		}
		var prefix map[string]backend.Buffer
		if prev != nil {
			prefix = map[string]backend.Buffer{}
			for _, g := range m.grads {
				t, err := tensor.FromSlice(prev[g.lo:g.hi], g.shape...)
				if err != nil {
					return nil, err
				}
				if prefix[g.name], err = m.e.in.put(reducePrefixName(g.name), t); err != nil {
					return nil, err
				}
			}
		}
		grads, err := m.e.reduce(ctx, units, outs, total, prefix)
		if err != nil {
			return nil, err
		}
		return flat, m.download(grads, flat)
	})
	if failed != nil {
		return failed
	}
	if err != nil {
		return fmt.Errorf("multi-worker: ordered reduction of the gradients: %w", err)
	}
	if sum == nil {
		return errors.New("multi-worker: no worker had a sample of the batch")
	}
	copy(flat, sum)
	return nil
}

// download copies gradient buffers into their places in flat.
func (m *MultiWorker) download(grads map[string]backend.Buffer, flat []float32) error {
	for _, g := range m.grads {
		t, err := m.e.b.Download(grads[g.name])
		if err != nil {
			return err
		}
		copy(flat[g.lo:g.hi], t.Float32s())
	}
	return nil
}

// agree gathers every worker's loss terms and stop request and returns the
// global batch's result: the terms summed in unit order, which is rank
// order, as one device sums them.
func (m *MultiWorker) agree(terms []term, total int) (StepResult, error) {
	mine := make([]byte, 1, 1+16*len(terms))
	if m.stopAsked.Load() {
		mine[0] = 1
	}
	for _, t := range terms {
		mine = binary.LittleEndian.AppendUint64(mine, math.Float64bits(t.loss))
		mine = binary.LittleEndian.AppendUint64(mine, math.Float64bits(t.correct))
	}
	all, err := m.world.Allgather(mine)
	if err != nil {
		return StepResult{}, fmt.Errorf("multi-worker: gathering the step's losses: %w", err)
	}
	var everyone []term
	for r, b := range all {
		if len(b) < 1 || (len(b)-1)%16 != 0 {
			return StepResult{}, fmt.Errorf("multi-worker: worker %d sent %d bytes of losses", r, len(b))
		}
		if b[0] != 0 {
			m.stopping = true
		}
		for b = b[1:]; len(b) > 0; b = b[16:] {
			everyone = append(everyone, term{math.Float64frombits(binary.LittleEndian.Uint64(b)), math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))})
		}
	}
	return sumTerms(everyone, total), nil
}

// syncStats averages the BatchNorm statistics over the workers that had
// samples in the step (each worker's local replicas first), and gives them
// to every replica. Under sync BatchNorm every replica computed the same
// statistics already.
func (m *MultiWorker) syncStats(active bool) error {
	tr := m.e.tr
	if len(tr.Buffers) == 0 || tr.Collective {
		return nil
	}
	local := map[string]*tensor.Tensor{} // every local replica holds the same
	for _, name := range tr.Buffers {
		t, err := m.e.b.Download(m.e.reps[0].buffers[name])
		if err != nil {
			return err
		}
		local[name] = t
	}
	m.stats = m.stats[:0]
	for _, name := range tr.Buffers {
		t := local[name]
		if t.DType() != tensor.Float32 {
			return fmt.Errorf("multi-worker: BatchNorm statistic %q is %v; averaging over workers takes float32", name, t.DType())
		}
		if active {
			m.stats = append(m.stats, t.Float32s()...)
		} else {
			m.stats = append(m.stats, make([]float32, t.Len())...)
		}
	}
	count := float32(0)
	if active {
		count = 1
	}
	m.stats = append(m.stats, count)
	if err := m.world.AllreduceSum(m.stats); err != nil {
		return fmt.Errorf("multi-worker: all-reduce of the BatchNorm statistics: %w", err)
	}
	workers := m.stats[len(m.stats)-1]
	if workers == 0 {
		return errors.New("multi-worker: no worker had a sample of the batch")
	}
	mean := map[string]*tensor.Tensor{}
	var err error
	off := 0
	for _, name := range tr.Buffers {
		t := local[name]
		v := make([]float32, t.Len())
		for i := range v {
			v[i] = m.stats[off+i] / workers
		}
		off += len(v)
		if mean[name], err = tensor.FromSlice(v, t.Shape()...); err != nil {
			return err
		}
	}
	return m.e.SetWeights(mean)
}

// checkWorkers verifies that every worker holds the same parameters, bit
// for bit (a checksum of each worker's, gathered); when is said in the
// error.
func (m *MultiWorker) checkWorkers(when string) error {
	h := crc32.NewIEEE()
	binary.Write(h, binary.LittleEndian, int64(len(m.flat)))
	for _, p := range m.e.tr.Params {
		t, err := m.e.b.Download(m.e.params[p])
		if err != nil {
			return err
		}
		if err := binary.Write(h, binary.LittleEndian, t.Data()); err != nil {
			return err
		}
	}
	all, err := m.world.Allgather(binary.LittleEndian.AppendUint32(nil, h.Sum32()))
	if err != nil {
		return err
	}
	for r, b := range all {
		if !bytes.Equal(b, all[0]) {
			return fmt.Errorf("multi-worker: worker %d's weights differ from worker 0's %s", r, when)
		}
	}
	return nil
}

// Evaluate evaluates a whole batch, which every worker passes: each
// evaluates its even share and the results are gathered (in deterministic
// mode worker 0 evaluates the whole batch and broadcasts the result, so
// that the figures are one device's, bit for bit).
func (m *MultiWorker) Evaluate(ctx context.Context, batch Batch) (EvalResult, error) {
	if m.world.Size() == 1 {
		return m.e.Evaluate(ctx, batch)
	}
	n := batch.Size()
	if m.e.cfg.Deterministic {
		var mine []byte
		var err error
		if m.world.Rank() == 0 {
			var res EvalResult
			if res, err = m.e.Evaluate(ctx, batch); err == nil {
				mine, err = encodeEval(res)
			}
			if err != nil {
				mine = nil // the others learn of the failure from the empty broadcast
			}
		}
		got, berr := m.world.BcastBytes(mine, 0)
		if err != nil {
			return EvalResult{}, err
		}
		if berr != nil {
			return EvalResult{}, fmt.Errorf("multi-worker: broadcasting the evaluation: %w", berr)
		}
		if len(got) == 0 {
			return EvalResult{}, errors.New("multi-worker: worker 0 failed to evaluate the batch")
		}
		return decodeEval(got)
	}
	s := split(n, m.world.Size())[m.world.Rank()]
	var mine []byte // empty: no samples; one byte: this worker failed
	var evalErr error
	if s[1] > s[0] {
		part, err := sliceInputs(batch, s[0], s[1])
		var res EvalResult
		if err == nil {
			res, err = m.e.Evaluate(ctx, part)
		}
		if err == nil {
			mine, err = encodeEval(res)
		}
		if err != nil {
			mine, evalErr = []byte{0}, err // the others must not wait for this worker
		}
	}
	all, err := m.world.Allgather(mine)
	if evalErr != nil {
		return EvalResult{}, evalErr
	}
	if err != nil {
		return EvalResult{}, fmt.Errorf("multi-worker: gathering the evaluation: %w", err)
	}
	out := EvalResult{Samples: n}
	var rows []*tensor.Tensor
	for r, b := range all {
		if len(b) == 0 {
			continue // no samples
		}
		if len(b) == 1 {
			return EvalResult{}, fmt.Errorf("multi-worker: worker %d failed to evaluate its share of the batch", r)
		}
		res, err := decodeEval(b)
		if err != nil {
			return EvalResult{}, fmt.Errorf("multi-worker: worker %d's evaluation: %w", r, err)
		}
		w := float64(res.Samples) / float64(n)
		if m.e.tr.SumLoss {
			w = 1
		}
		out.Loss += w * res.Loss
		out.Correct += res.Correct
		if res.Output != nil {
			rows = append(rows, res.Output)
		}
	}
	if len(rows) > 0 {
		if out.Output, err = concatRows(rows); err != nil {
			return EvalResult{}, err
		}
	}
	return out, nil
}

// sliceInputs is samples [lo, hi) of a batch.
func sliceInputs(b Batch, lo, hi int) (Batch, error) {
	out := Batch{Inputs: map[string]*tensor.Tensor{}}
	for name, t := range b.Inputs {
		s, err := sliceBatch(t, lo, hi)
		if err != nil {
			return out, err
		}
		out.Inputs[name] = s
	}
	if b.Labels != nil {
		s, err := sliceBatch(b.Labels, lo, hi)
		if err != nil {
			return out, err
		}
		out.Labels = s
	}
	return out, nil
}

// encodeEval and decodeEval carry an EvalResult between workers: samples,
// loss and correct count, then the output as NPY.
func encodeEval(r EvalResult) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte(1)
	binary.Write(&b, binary.LittleEndian, int64(r.Samples))
	binary.Write(&b, binary.LittleEndian, math.Float64bits(r.Loss))
	binary.Write(&b, binary.LittleEndian, math.Float64bits(r.Correct))
	if r.Output != nil {
		if err := tensor.WriteNPY(&b, r.Output); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

func decodeEval(p []byte) (EvalResult, error) {
	if len(p) < 25 || p[0] != 1 {
		return EvalResult{}, fmt.Errorf("an evaluation result of %d bytes", len(p))
	}
	le := binary.LittleEndian
	r := EvalResult{Samples: int(int64(le.Uint64(p[1:]))), Loss: math.Float64frombits(le.Uint64(p[9:])), Correct: math.Float64frombits(le.Uint64(p[17:]))}
	if len(p) > 25 {
		t, err := tensor.ReadNPY(bytes.NewReader(p[25:]))
		if err != nil {
			return r, err
		}
		r.Output = t
	}
	return r, nil
}

// concatRows joins tensors along dim 0.
func concatRows(ts []*tensor.Tensor) (*tensor.Tensor, error) {
	first := ts[0]
	rows := 0
	for _, t := range ts {
		if t.DType() != first.DType() || t.Rank() != first.Rank() || !tensor.SameShape(t.Shape()[1:], first.Shape()[1:]) {
			return nil, fmt.Errorf("multi-worker: evaluation outputs %v%v and %v%v do not stack", first.DType(), first.Shape(), t.DType(), t.Shape())
		}
		rows += t.Shape()[0]
	}
	shape := append([]int{rows}, first.Shape()[1:]...)
	out := tensor.New(first.DType(), shape...)
	var buf bytes.Buffer
	for _, t := range ts {
		if err := binary.Write(&buf, binary.LittleEndian, t.Data()); err != nil {
			return nil, err
		}
	}
	if err := binary.Read(bytes.NewReader(buf.Bytes()), binary.LittleEndian, out.Data()); err != nil {
		return nil, err
	}
	return out, nil
}

// Weights, SetWeights, OptState and SetOptState are the local engine's:
// every worker holds the same values.
func (m *MultiWorker) Weights() (map[string]*tensor.Tensor, error)   { return m.e.Weights() }
func (m *MultiWorker) SetWeights(w map[string]*tensor.Tensor) error  { return m.e.SetWeights(w) }
func (m *MultiWorker) OptState() (map[string]*tensor.Tensor, error)  { return m.e.OptState() }
func (m *MultiWorker) SetOptState(s map[string]*tensor.Tensor) error { return m.e.SetOptState(s) }
