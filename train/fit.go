// Package train is gotrain's fit loop: epochs of shuffled (optionally
// augmented) batches, a training step through a strategy, metrics,
// validation after each epoch, a history, and callbacks that can stop
// training, read and restore weights, and drive the learning rate.
//
// The loop knows nothing of devices: it turns a model into a training graph
// (graph.TrainingGraph), an optimizer into an update graph (optim), and
// hands both to a strategy (SingleDevice or Mirrored), which runs them on
// a backend. Everything that decides what is computed — the data order, the
// per-sample augmentation, the Dropout masks, the learning rate — is a pure
// function of (seed, epoch, step, sample index), so training is
// deterministic and a run resumed from a State continues bit-identically.
package train

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// Config configures Fit.
type Config struct {
	Epochs    int
	BatchSize int
	Seed      uint64
	Optim     optim.Config
	Loss      graph.Loss
	// LabelSmoothing applies to cross-entropy.
	LabelSmoothing float64
	// Reduction is the loss's reduction over a batch: "mean" (default) or "sum".
	Reduction string
	// SyncBatchNorm computes BatchNorm statistics over all replicas of the
	// mirrored strategy (default: each replica its own share).
	SyncBatchNorm bool
	// TopK, when > 1, adds "top<K>_accuracy" to evaluation logs.
	TopK int
	// Freeze lists parameters (names or globs) kept constant.
	Freeze []string
	// Strategy names the strategy: "single" (default), "mirrored" or
	// "multiworker" (see strategy.Names).
	Strategy string
	// World is the worker processes of a "multiworker" run; Replicas then
	// counts each worker's local replicas.
	World    strategy.World
	Replicas int
	Backend  backend.Backend
	// Transform augments training samples (nil: none).
	Transform data.Transform
	// NoShuffle feeds the training data in its stored order every epoch
	// (Keras' shuffle=False). By default each epoch's order is a
	// permutation drawn from Seed and the epoch.
	NoShuffle bool
	// Workers and Prefetch size the input pipeline (0: defaults).
	Workers, Prefetch int
	DropRemainder     bool
	// CheckReplicas verifies replicas agree after each step (mirrored).
	CheckReplicas bool
	// Deterministic makes results bit-identical whatever the strategy and
	// replica count (see strategy.Config.Deterministic for the cost).
	Deterministic bool
	ShardSize     int
	Callbacks     []Callback
	// Progress, when set, is called after every batch (for progress bars).
	Progress func(p Progress)
	// Resume continues from a saved state.
	Resume *State
	// ConfigJSON is stored in training states to identify the run.
	ConfigJSON []byte
	// ModelHash identifies the model in training states.
	ModelHash string
	// DataHash identifies the training data in training states; a resume
	// into a run whose DataHash differs is refused ("" skips the check).
	DataHash string
}

// Progress is reported after each batch.
type Progress struct {
	Epoch, Epochs  int
	Batch, Batches int
	Samples        int
	SamplesPerSec  float64
	Loss, Accuracy float64 // running means over the epoch so far
	Elapsed        time.Duration
}

// Result is what Fit returns.
type Result struct {
	History []Logs
	// StopReason says why training ended ("epochs done", a callback's reason).
	StopReason string
	// Epochs is the number of epochs completed.
	Epochs int
	// Weights are the final weights (after any callback restored others).
	Weights map[string]*tensor.Tensor
}

// StatefulCallback is a callback whose state must survive a resume
// (EarlyStopping's best value and wait count, ...).
type StatefulCallback interface {
	Callback
	Name() string
	MarshalState() ([]byte, error)
	UnmarshalState([]byte) error
}

// ErrNonFinite is returned (wrapped) when the loss becomes NaN or Inf.
var ErrNonFinite = errors.New("the loss is not finite")

// Trainer holds a prepared training run: the training graph, the optimizer
// and the strategy. Fit makes one; Evaluate and Predict reuse its graphs.
type Trainer struct {
	Model    *graph.Model
	Training *graph.Training
	Update   *optim.Update
	Strategy strategy.Strategy
	Schedule optim.Schedule
	cfg      Config
	lrScale  float64
	step     int64
	history  []Logs
	partial  PartialEpoch // the epoch in progress
}

// NewTrainer builds the training graph, the update and the strategy
// (strategy.Build).
func NewTrainer(m *graph.Model, cfg Config) (*Trainer, error) {
	if cfg.Backend == nil {
		return nil, fmt.Errorf("train: no backend")
	}
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("train: batch size %d: must be positive", cfg.BatchSize)
	}
	if cfg.Epochs < 0 {
		return nil, fmt.Errorf("train: epochs %d: must not be negative", cfg.Epochs)
	}
	if cfg.TopK < 0 {
		return nil, fmt.Errorf("train: top-k %d: must not be negative", cfg.TopK)
	}
	// Top-k over more classes than the model scores is 1 whatever it
	// learns: a metric that says nothing.
	if o := m.Graph.Outputs; cfg.TopK > 1 && len(o) > 0 && o[0].RankKnown && len(o[0].Shape) == 2 && o[0].Shape[1].Known() && int64(cfg.TopK) > o[0].Shape[1].Size {
		return nil, fmt.Errorf("train: top-k %d: the model scores %d classes", cfg.TopK, o[0].Shape[1].Size)
	}
	su, err := strategy.Build(m, strategy.BuildConfig{Strategy: cfg.Strategy, Backend: cfg.Backend,
		Training: graph.TrainingOptions{Loss: cfg.Loss, LabelSmoothing: cfg.LabelSmoothing, Freeze: cfg.Freeze, Reduction: cfg.Reduction,
			SyncBatchNorm: cfg.SyncBatchNorm, ClassLabels: true},
		Optim: cfg.Optim, Replicas: cfg.Replicas, CheckReplicas: cfg.CheckReplicas, Deterministic: cfg.Deterministic, ShardSize: cfg.ShardSize,
		World: cfg.World})
	if err != nil {
		return nil, err
	}
	tr, up, st := su.Training, su.Update, su.Strategy
	return &Trainer{Model: m, Training: tr, Update: up, Strategy: st, Schedule: up.Config.Schedule, cfg: cfg, lrScale: 1}, nil
}

// ParamsOf classifies the trainable parameters for the optimizer.
//
// Deprecated: use strategy.ParamsOf.
func ParamsOf(m *graph.Model, tr *graph.Training) []optim.Param { return strategy.ParamsOf(m, tr) }

// perSample is what a batch's loss is multiplied by to add it to a sum
// over samples: its size for a mean, 1 for a sum.
func (t *Trainer) perSample(n int) float64 {
	if t.Training.SumLoss {
		return 1
	}
	return float64(n)
}

// LR is the learning rate of optimizer step `step` in `epoch`.
func (t *Trainer) LR(step int64, epoch int) float64 {
	return t.Schedule.LR(step, epoch) * t.lrScale
}

// inputName is the model's single data input.
func (t *Trainer) inputName() (string, error) {
	if len(t.Training.Data) != 1 {
		return "", fmt.Errorf("train: the model has %d inputs; the fit loop feeds models with one", len(t.Training.Data))
	}
	return t.Training.Data[0], nil
}

// CheckData verifies, before any work, that a dataset fits the model: the
// sample shape against the model input, and the labels against the class
// count of the output.
func (t *Trainer) CheckData(src data.Source, what string) error {
	name, err := t.inputName()
	if err != nil {
		return err
	}
	in := t.Model.Graph.Input(name)
	shape := src.SampleShape()
	want := in.Shape
	if in.RankKnown && len(want) > 0 {
		got := []int{shape.C, shape.H, shape.W}
		if len(want) == 4 {
			// NCHW or NHWC; a symbolic dim accepts any size.
			w := want[1:]
			fits := func(d graph.Dim, n int) bool { return !d.Known() || d.Size == int64(n) }
			nchw := fits(w[0], shape.C) && fits(w[1], shape.H) && fits(w[2], shape.W)
			nhwc := fits(w[2], shape.C) && fits(w[0], shape.H) && fits(w[1], shape.W)
			if !nchw && !nhwc {
				return fmt.Errorf("%s: samples are %dx%dx%d (CxHxW) but model input %q is %v; resize the data (--resize) or export the model for this input shape", what, got[0], got[1], got[2], name, want)
			}
		} else if len(want) == 2 && want[1].Known() && int(want[1].Size) != shape.Size() {
			return fmt.Errorf("%s: samples have %d values but model input %q is %v", what, shape.Size(), name, want)
		}
	}
	return t.checkLabels(src, what)
}

// Fit trains the model on train (validating on val when not nil).
func Fit(ctx context.Context, m *graph.Model, trainSet, val data.Source, cfg Config) (*Result, error) {
	t, err := NewTrainer(m, cfg)
	if err != nil {
		return nil, err
	}
	return t.Fit(ctx, trainSet, val)
}

// Fit runs the epochs.
func (t *Trainer) Fit(ctx context.Context, trainSet, val data.Source) (*Result, error) {
	cfg := t.cfg
	if err := t.CheckData(trainSet, "training data"); err != nil {
		return nil, err
	}
	if val != nil {
		if err := t.CheckData(val, "validation data"); err != nil {
			return nil, err
		}
	}
	input, _ := t.inputName()
	loader := &data.Loader{Source: trainSet, BatchSize: cfg.BatchSize, Shuffle: !cfg.NoShuffle, Seed: cfg.Seed, DropRemainder: cfg.DropRemainder, Part: t.part(),
		Transform: cfg.Transform, Workers: cfg.Workers, Prefetch: cfg.Prefetch, SampleShape: t.sampleShape(input)}
	nb := loader.NumBatches()
	if nb == 0 {
		return nil, fmt.Errorf("train: %d training samples make no batch of %d", trainSet.Len(), cfg.BatchSize)
	}
	if err := t.checkShares(trainSet.Len()); err != nil {
		return nil, err
	}
	// A cosine schedule without an explicit length decays over the run.
	t.Schedule.SetTotal(int64(cfg.Epochs * nb))
	startEpoch, startBatch := 0, 0
	var from PartialEpoch // where the first epoch starts, and its sums so far
	ctxCB := t.context()
	if r := cfg.Resume; r != nil {
		if err := t.restore(r); err != nil {
			return nil, err
		}
		startEpoch, startBatch = r.Epoch, r.BatchInEpoch
		p, err := resumePosition(r, cfg.BatchSize, trainSet.Len())
		if err != nil {
			return nil, err
		}
		from = p
	}
	for _, cb := range cfg.Callbacks {
		if err := cb.OnTrainBegin(ctxCB); err != nil {
			return nil, err
		}
	}
	res := &Result{StopReason: "epochs done"}
	var lastLogs Logs
	for epoch := startEpoch; epoch < cfg.Epochs; epoch++ {
		ctxCB.Epoch = epoch
		for _, cb := range cfg.Callbacks {
			if err := cb.OnEpochBegin(ctxCB, epoch); err != nil {
				return nil, err
			}
		}
		logs, stopped, err := t.runEpoch(ctx, loader, input, epoch, startBatch, from, ctxCB)
		startBatch, from = 0, PartialEpoch{}
		if err != nil {
			return nil, err
		}
		if stopped {
			res.StopReason = ctxCB.stopReason
			res.Epochs = epoch
			break
		}
		if val != nil {
			vl, err := t.Evaluate(ctx, val)
			if err != nil {
				return nil, fmt.Errorf("validation after epoch %d: %w", epoch+1, err)
			}
			for k, v := range vl {
				logs["val_"+k] = v
			}
		}
		logs["lr"] = t.LR(t.step+1, epoch)
		t.history = append(t.history, logs)
		lastLogs = logs
		res.Epochs = epoch + 1
		for _, cb := range cfg.Callbacks {
			if err := cb.OnEpochEnd(ctxCB, epoch, logs); err != nil {
				return nil, err
			}
		}
		if stop, why := ctxCB.Stopped(); stop {
			res.StopReason = why
			break
		}
	}
	for _, cb := range cfg.Callbacks {
		if err := cb.OnTrainEnd(ctxCB, lastLogs); err != nil {
			return nil, err
		}
	}
	res.History = t.history
	w, err := t.Strategy.Weights()
	if err != nil {
		return nil, err
	}
	res.Weights = w
	return res, nil
}

// checkShares refuses, before any work, batches that would leave a
// replica without a sample under sync BatchNorm, whose collective needs
// every replica. (Without it such replicas sit the step out.)
func (t *Trainer) checkShares(n int) error {
	r := t.Strategy.Replicas()
	if !t.Training.Collective || r < 2 {
		return nil
	}
	bs := t.cfg.BatchSize
	if bs < r {
		return fmt.Errorf("train: sync BatchNorm needs a sample on each of the %d replicas (--replicas), but batches have %d (--batch-size)", r, bs)
	}
	if rem := n % bs; rem != 0 && rem < r && !t.cfg.DropRemainder {
		return fmt.Errorf("train: sync BatchNorm needs a sample on each of the %d replicas (--replicas), but %d samples in batches of %d (--batch-size) leave a last batch of %d: change either, or drop the partial batch (DropRemainder)", r, n, bs, rem)
	}
	return nil
}

// part is the share of every global batch that this process trains on:
// all of it, except for a worker of a multi-worker run.
func (t *Trainer) part() func(int) (int, int) {
	if p, ok := t.Strategy.(interface{ Part(n int) (lo, hi int) }); ok {
		return p.Part
	}
	return nil
}

func (t *Trainer) sampleShape(input string) []int {
	in := t.Model.Graph.Input(input)
	if in == nil || !in.RankKnown {
		return nil
	}
	var s []int
	for _, d := range in.Shape[1:] {
		if !d.Known() {
			return nil
		}
		s = append(s, int(d.Size))
	}
	return s
}

// resumePosition is where a resumed run's first epoch starts. A state
// without a position in samples (written before it was stored) was made
// with this run's batch size, as resuming then required; its sums are
// lost, so the resumed epoch's logs average only the batches after it.
func resumePosition(s *State, batchSize, n int) (PartialEpoch, error) {
	var p PartialEpoch
	switch {
	case s.Partial != nil:
		p = *s.Partial
	case s.BatchInEpoch > 0:
		p.Samples = min(int64(s.BatchInEpoch)*int64(batchSize), int64(n))
	}
	if p.Samples < 0 || p.Counted < 0 || p.Counted > p.Samples {
		return p, fmt.Errorf("train: the state's position in epoch %d (%d samples, %d counted) is not valid", s.Epoch+1, p.Samples, p.Counted)
	}
	if p.Samples > int64(n) {
		return p, fmt.Errorf("train: the state is %d samples into epoch %d, but the training data has %d samples", p.Samples, s.Epoch+1, n)
	}
	return p, nil
}

// runEpoch trains one epoch from sample from.Samples of its order, with
// its sums so far in from; the first batch is numbered start. It reports
// whether a callback (or an interrupt) stopped training mid-epoch.
func (t *Trainer) runEpoch(ctx context.Context, loader *data.Loader, input string, epoch, start int, from PartialEpoch, cb *Context) (Logs, bool, error) {
	it, err := loader.EpochFrom(ctx, epoch, int(from.Samples), start)
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	nb := start + loader.BatchesFrom(int(from.Samples))
	t.partial = from
	sums := &t.partial
	trained := 0 // samples trained by this call, for the throughput
	began := time.Now()
	for k := start; ; k++ {
		b, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
		for _, c := range t.cfg.Callbacks {
			if err := c.OnBatchBegin(cb, k); err != nil {
				return nil, false, err
			}
		}
		step := t.step + 1
		lr := t.LR(step, epoch)
		seed := int64(augment.Mix(t.cfg.Seed ^ augment.Mix(uint64(step))))
		r, err := t.Strategy.Step(ctx, strategy.Batch{Inputs: map[string]*tensor.Tensor{input: b.X}, Labels: b.Y, Offset: b.Offset, Total: b.Total}, lr, step, seed)
		b.Release()
		if err != nil {
			return nil, false, fmt.Errorf("epoch %d, step %d: %w", epoch+1, step, err)
		}
		if math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0) {
			return nil, false, fmt.Errorf("epoch %d, step %d: %w (%v); training stopped", epoch+1, step, ErrNonFinite, r.Loss)
		}
		t.step = step
		cb.Step = step
		sums.Loss += r.Loss * t.perSample(r.Samples)
		sums.Correct += r.Correct
		sums.Samples += int64(r.Samples)
		sums.Counted += int64(r.Samples)
		trained += r.Samples
		logs := Logs{"loss": r.Loss}
		if t.Training.Correct != "" {
			logs["accuracy"] = r.Correct / float64(r.Samples)
		}
		if t.cfg.Progress != nil {
			el := time.Since(began)
			p := Progress{Epoch: epoch + 1, Epochs: t.cfg.Epochs, Batch: k + 1, Batches: nb, Samples: int(sums.Samples),
				Loss: sums.Loss / float64(sums.Counted), Elapsed: el, SamplesPerSec: float64(trained) / el.Seconds()}
			if t.Training.Correct != "" {
				p.Accuracy = sums.Correct / float64(sums.Counted)
			}
			t.cfg.Progress(p)
		}
		// A snapshot taken by a batch callback resumes after this batch.
		cb.batchInEpoch = k + 1
		for _, c := range t.cfg.Callbacks {
			if err := c.OnBatchEnd(cb, k, logs); err != nil {
				return nil, false, err
			}
		}
		if stop, _ := cb.Stopped(); stop && k+1 < nb {
			return nil, true, nil
		}
	}
	cb.batchInEpoch = 0
	logs := Logs{}
	if n := sums.Counted; n > 0 { // none after a resume from a state without sums past the epoch's last batch
		logs["loss"] = sums.Loss / float64(n)
		if t.Training.Correct != "" {
			logs["accuracy"] = sums.Correct / float64(n)
		}
	}
	t.partial = PartialEpoch{}
	return logs, false, nil
}

// Evaluate computes the mean loss and accuracy over a dataset in inference
// mode (no augmentation, in order).
func (t *Trainer) Evaluate(ctx context.Context, src data.Source) (Logs, error) {
	input, err := t.inputName()
	if err != nil {
		return nil, err
	}
	loader := &data.Loader{Source: src, BatchSize: max(t.cfg.BatchSize, 256), Workers: t.cfg.Workers, SampleShape: t.sampleShape(input)}
	it, err := loader.Epoch(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var loss, correct, topk float64
	var n int
	for {
		b, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		r, err := t.Strategy.Evaluate(ctx, strategy.Batch{Inputs: map[string]*tensor.Tensor{input: b.X}, Labels: b.Y})
		b.Release()
		if err != nil {
			return nil, err
		}
		loss += r.Loss * t.perSample(r.Samples)
		correct += r.Correct
		n += r.Samples
		if t.cfg.TopK > 1 {
			topk += topKCorrect(r.Output, b.Y, t.cfg.TopK)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("train: no samples to evaluate")
	}
	logs := Logs{"loss": loss / float64(n)}
	if t.Training.Correct != "" {
		logs["accuracy"] = correct / float64(n)
		if t.cfg.TopK > 1 {
			logs[fmt.Sprintf("top%d_accuracy", t.cfg.TopK)] = topk / float64(n)
		}
	}
	return logs, nil
}

// topKCorrect counts the rows of scores whose label is among the k highest
// scores (ties broken towards the lower class index, as argmax does).
func topKCorrect(scores, labels *tensor.Tensor, k int) float64 {
	if scores == nil || labels == nil || scores.Rank() != 2 || labels.DType() != tensor.Int64 {
		return 0
	}
	n, c := scores.Shape()[0], scores.Shape()[1]
	s, y := scores.Float32s(), labels.Int64s()
	hits := 0
	for i := 0; i < n && i < len(y); i++ {
		row := s[i*c : (i+1)*c]
		l := int(y[i])
		if l < 0 || l >= c {
			continue
		}
		above := 0
		for j, v := range row {
			if v > row[l] || (v == row[l] && j < l) {
				above++
			}
		}
		if above < k {
			hits++
		}
	}
	return float64(hits)
}

// context builds the callbacks' view of this trainer.
func (t *Trainer) context() *Context {
	c := &Context{}
	c.hooks = Hooks{
		Weights:    t.Strategy.Weights,
		SetWeights: t.Strategy.SetWeights,
		LRScale:    func() float64 { return t.lrScale },
		SetLRScale: func(s float64) { t.lrScale = s },
		LR:         func() float64 { return t.LR(t.step+1, c.Epoch) },
		Snapshot:   func() (*State, error) { return t.snapshot(c) },
		Model:      func() *graph.Model { return t.Model },
		History:    func() []Logs { return t.history },
	}
	return c
}

func (t *Trainer) snapshot(c *Context) (*State, error) {
	w, err := t.Strategy.Weights()
	if err != nil {
		return nil, err
	}
	os, err := t.Strategy.OptState()
	if err != nil {
		return nil, err
	}
	s := &State{Epoch: c.Epoch, Step: t.step, BatchInEpoch: c.batchInEpoch, Weights: w, OptState: os,
		LRScale: t.lrScale, Config: t.cfg.ConfigJSON, ModelHash: t.cfg.ModelHash, Extra: map[string][]byte{},
		History: append([]Logs{}, t.history...), RNG: map[string][]byte{}, DataHash: t.cfg.DataHash}
	if c.batchInEpoch == 0 {
		// At an epoch boundary the snapshot resumes at the next epoch.
		s.Epoch = c.Epoch + 1
	} else {
		p := t.partial
		s.Partial = &p
	}
	seed := make([]byte, 8)
	binary.LittleEndian.PutUint64(seed, t.cfg.Seed)
	s.RNG["seed"] = seed
	for _, cb := range t.cfg.Callbacks {
		if sc, ok := cb.(StatefulCallback); ok {
			b, err := sc.MarshalState()
			if err != nil {
				return nil, fmt.Errorf("callback %s: %w", sc.Name(), err)
			}
			s.Extra[sc.Name()] = b
		}
	}
	return s, nil
}

func (t *Trainer) restore(s *State) error {
	if t.cfg.ModelHash != "" && s.ModelHash != "" && s.ModelHash != t.cfg.ModelHash {
		return fmt.Errorf("train: the checkpoint belongs to another model (hash %s, this model %s)", s.ModelHash, t.cfg.ModelHash)
	}
	// Callbacks first: a setting kept in the state (the input scale, say)
	// names what changed, where the data hash below could only say that
	// the data differ.
	for _, cb := range t.cfg.Callbacks {
		if sc, ok := cb.(StatefulCallback); ok {
			if b, ok := StateOf(sc, s.Extra); ok {
				if err := sc.UnmarshalState(b); err != nil {
					return fmt.Errorf("callback %s: %w", sc.Name(), err)
				}
			}
		}
	}
	if t.cfg.DataHash != "" && s.DataHash != "" && s.DataHash != t.cfg.DataHash {
		return fmt.Errorf("train: the checkpoint was made on other training data (data hash %s, this run's %s); resuming would not continue the same run", s.DataHash, t.cfg.DataHash)
	}
	if seed, ok := s.RNG["seed"]; ok && len(seed) == 8 && binary.LittleEndian.Uint64(seed) != t.cfg.Seed {
		return fmt.Errorf("train: the checkpoint was made with seed %d, this run has seed %d", binary.LittleEndian.Uint64(seed), t.cfg.Seed)
	}
	if err := t.Strategy.SetWeights(s.Weights); err != nil {
		return fmt.Errorf("train: restoring weights: %w", err)
	}
	if err := t.Strategy.SetOptState(s.OptState); err != nil {
		return fmt.Errorf("train: restoring optimizer state: %w", err)
	}
	t.step = s.Step
	t.lrScale = s.LRScale
	if t.lrScale == 0 {
		t.lrScale = 1
	}
	t.history = append([]Logs{}, s.History...)
	return nil
}
