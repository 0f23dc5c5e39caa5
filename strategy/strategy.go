// Package strategy runs training steps on a backend: one device
// (SingleDevice) or N replicas with a gradient all-reduce (Mirrored). A
// strategy decides how a step runs, never what it computes: every strategy
// computes the gradient of the mean loss over the global batch, applies the
// same optimizer update once, and keeps one set of weights.
//
// A step is three compiled graphs: the training graph (forward, loss,
// backward) on each replica, a reduction graph that takes the replicas'
// gradients to their batch-weighted mean in a fixed order, and the
// optimizer's update graph, which overwrites the parameters and the
// optimizer state in place. Parameters and optimizer state live on the
// first device (the master copy). On a backend whose devices share memory
// (the CPU) every replica reads them there. On a backend whose devices do
// not (GPUs; the CPU backend with PrivateMemory), each other replica keeps
// its own copy: the replicas' gradients are copied to the first device for
// the reduction, and the updated weights are copied back to every replica
// after the update, with the backend's Copier where it has one, else
// through the host. BatchNorm normalises with each replica's share; the
// running statistics the replicas update are averaged on the first device
// after every step and copied back to each replica, so that all replicas,
// and the weights a run is resumed from, hold the same values. A step that
// fails leaves the weights and statistics as they were.
//
// A global batch is split among the replicas in contiguous shares; when it
// has fewer samples than there are replicas (the last batch of an epoch),
// the replicas left without a sample sit the step out.
//
// Build assembles a run: the training graph, the optimizer's update graph
// and a strategy chosen by name.
package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
)

// Batch is one global batch: the model's data inputs and the labels.
type Batch struct {
	Inputs map[string]*tensor.Tensor // by the model's input name; dim 0 is the batch
	Labels *tensor.Tensor
	// Offset and Total place the batch in a global batch of which it is a
	// share (one worker's, in multi-worker training): its samples are
	// [Offset, Offset+Size()) of Total. Total 0: the batch is whole.
	Offset, Total int
}

// total is the size of the global batch.
func (b Batch) total() int {
	if b.Total > 0 {
		return b.Total
	}
	return b.Size()
}

// Size is the number of samples.
func (b Batch) Size() int {
	for _, t := range b.Inputs {
		if t.Rank() > 0 {
			return t.Shape()[0]
		}
	}
	return 0
}

// StepResult reports a step.
type StepResult struct {
	Loss    float64 // mean loss over the batch
	Correct float64 // correctly classified samples (classification)
	Samples int
}

// EvalResult reports the evaluation of a batch.
type EvalResult struct {
	Loss    float64
	Correct float64
	Samples int
	Output  *tensor.Tensor // the model output the loss applies to
}

// Strategy runs training and evaluation steps.
type Strategy interface {
	// Step runs forward, backward, reduction and the update with learning
	// rate lr as optimizer step number `step` (1-based); seed drives Dropout.
	Step(ctx context.Context, b Batch, lr float64, step int64, seed int64) (StepResult, error)
	// Evaluate runs the model in inference mode with the loss and metric.
	Evaluate(ctx context.Context, b Batch) (EvalResult, error)
	// Weights returns host copies of the parameters and buffers by name.
	Weights() (map[string]*tensor.Tensor, error)
	// SetWeights replaces parameters and buffers by name.
	SetWeights(w map[string]*tensor.Tensor) error
	// OptState returns host copies of the optimizer state by slot name.
	OptState() (map[string]*tensor.Tensor, error)
	// SetOptState replaces optimizer state by slot name.
	SetOptState(s map[string]*tensor.Tensor) error
	// Replicas is the number of replicas.
	Replicas() int
}

// Config assembles a strategy.
type Config struct {
	Backend  backend.Backend
	Training *graph.Training
	Update   *optim.Update
	// Init holds the initial parameter and buffer values by name.
	Init map[string]*tensor.Tensor
	// Replicas is the replica count for Mirrored (0: one per device).
	Replicas int
	// CheckReplicas verifies before each step that every replica's copy of
	// the weights equals the master copy, and its BatchNorm statistics the
	// first replica's, bit for bit, and fails the step naming the replica
	// and the tensor that differ. It costs a download of every copy per
	// step. On a backend whose devices share memory the replicas hold no
	// copies of the weights (they read the master), so there is nothing
	// to compare but the statistics, a few values per channel.
	CheckReplicas bool
	// Deterministic makes the weights bit-identical whatever the replica
	// count: every batch is cut into micro-shards of ShardSize samples
	// (default 8), each shard's gradient is computed on one thread, and the
	// shards' gradients are reduced in shard order. It costs intra-op
	// parallelism (replicas run single-threaded) and a copy of each
	// shard's gradients, and is refused for models with BatchNorm, whose
	// statistics depend on the split.
	Deterministic bool
	ShardSize     int
	// World is the worker processes of a multi-worker run (MultiWorker);
	// the other strategies ignore it.
	World World

	// outer, set by MultiWorker, extends sync BatchNorm's collectives to
	// the other workers.
	outer func([]float32) error
}

type replica struct {
	dev   backend.Device
	train backend.Executable
	eval  backend.Executable
	// buffers holds this replica's BatchNorm statistics (updated in place).
	buffers map[string]backend.Buffer
	params  map[string]backend.Buffer // this replica's copy (== master on shared memory)
	// in holds the batch share, labels and scalars fed to train, kept from
	// step to step; feeds is the map handed to it, refilled each step.
	in    feeder
	feeds map[string]backend.Buffer
}

// feeder keeps the device buffers that a step uploads (batch shares,
// labels, scalars) from one step to the next and overwrites them in place
// where the backend can (backend.Overwriter) and dtype and shape are
// unchanged, so a step does not allocate new ones.
type feeder struct {
	b    backend.Backend
	dev  backend.Device
	bufs map[string]backend.Buffer
}

func newFeeder(b backend.Backend, dev backend.Device) feeder {
	return feeder{b: b, dev: dev, bufs: map[string]backend.Buffer{}}
}

// put returns a buffer on the feeder's device holding t's values.
func (f *feeder) put(name string, t *tensor.Tensor) (backend.Buffer, error) {
	if buf, ok := f.bufs[name]; ok && buf.DType() == t.DType() && tensor.SameShape(buf.Shape(), t.Shape()) {
		if ow, ok := f.b.(backend.Overwriter); ok {
			return buf, ow.Overwrite(buf, t)
		}
	}
	buf, err := f.b.Upload(t, f.dev)
	if err != nil {
		return nil, err
	}
	f.bufs[name] = buf
	return buf, nil
}

type engine struct {
	cfg      Config
	b        backend.Backend
	tr       *graph.Training
	reps     []*replica
	shared   bool
	params   map[string]backend.Buffer // master copies, on the first device
	state    map[string]backend.Buffer
	update   backend.Executable
	reduces  map[reductionKey]*reduction
	group    backend.Collective // sync BatchNorm's replica group, or nil
	outIndex map[string]int
	// in holds the update's and the reduction's scalar inputs on the first
	// device; updateFeeds is the map handed to the update, refilled each step.
	in          feeder
	updateFeeds map[string]backend.Buffer
	// kept[u] holds unit u's loss, metric and gradients copied onto the
	// first device (see keep), reused from step to step.
	kept []map[string]backend.Buffer
	// keptNames are what keep copies: the loss, the gradients and the
	// metric.
	keptNames []string
	// means averages the replicas' BatchNorm statistics, by replica count
	// (see syncStats); keptStats[r] holds replica r's statistics copied
	// onto the first device.
	means     map[int]*statsMean
	keptStats []map[string]backend.Buffer
	// savedStats holds the statistics as a step found them, on the first
	// device, to put back if the step fails.
	savedStats map[string]backend.Buffer
}

// statsMean is the compiled mean of the replicas' BatchNorm statistics:
// in[j][i] is the feed name of the j-th replica's tr.Buffers[i].
type statsMean struct {
	exe   backend.Executable
	in    [][]string
	feeds map[string]backend.Buffer
}

// unit is a contiguous run of samples [lo, hi) of a global batch that one
// replica computes in one run of the training graph.
type unit struct{ lo, hi, rep int }

// reduction is the compiled gradient reduction for one unit count, with
// its feed names (weight and gradients of each unit) and feed map.
type reduction struct {
	exe     backend.Executable
	weights []string   // weights[u]
	grads   [][]string // grads[u][i] for e.tr.Grads[i]
	feeds   map[string]backend.Buffer
}

// SharedMemory is implemented by backends whose devices can read each
// other's buffers directly (the CPU backend).
type SharedMemory interface {
	SharedMemory() bool
}

// NewSingleDevice runs every step on the backend's first device.
func NewSingleDevice(cfg Config) (Strategy, error) {
	cfg.Replicas = 1
	return newEngine(cfg)
}

// NewMirrored runs N replicas, each on its own device, splitting every
// global batch evenly among them (the first replicas take one more sample
// when it does not divide; when the batch has fewer samples than there are
// replicas, the last replicas have none and sit the step out, except under
// sync BatchNorm, whose collective needs every replica).
func NewMirrored(cfg Config) (Strategy, error) {
	devs := cfg.Backend.Devices()
	if cfg.Replicas == 0 {
		cfg.Replicas = len(devs)
	}
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("mirrored: replica count %d: need at least 1", cfg.Replicas)
	}
	if cfg.Replicas > len(devs) {
		return nil, fmt.Errorf("mirrored: %d replicas but backend %s has %d devices", cfg.Replicas, cfg.Backend.Name(), len(devs))
	}
	return newEngine(cfg)
}

func newEngine(cfg Config) (*engine, error) {
	if cfg.Backend == nil || cfg.Training == nil || cfg.Update == nil {
		return nil, fmt.Errorf("strategy: Backend, Training and Update are required")
	}
	if cfg.Deterministic && len(cfg.Training.Buffers) > 0 {
		return nil, fmt.Errorf("strategy: deterministic mode does not support BatchNorm (its batch statistics depend on how the batch is split)")
	}
	if cfg.ShardSize < 0 {
		return nil, fmt.Errorf("strategy: shard size %d: must be positive", cfg.ShardSize)
	}
	devs := cfg.Backend.Devices()
	if len(devs) < cfg.Replicas {
		return nil, fmt.Errorf("strategy: %d replicas but %d devices", cfg.Replicas, len(devs))
	}
	e := &engine{cfg: cfg, b: cfg.Backend, tr: cfg.Training, params: map[string]backend.Buffer{}, state: map[string]backend.Buffer{}}
	e.keptNames = append([]string{e.tr.Loss}, e.tr.Grads...)
	if e.tr.Correct != "" {
		e.keptNames = append(e.keptNames, e.tr.Correct)
	}
	if sm, ok := cfg.Backend.(SharedMemory); ok {
		e.shared = sm.SharedMemory()
	}
	dev0 := devs[0]
	upload := func(name string, d backend.Device) (backend.Buffer, error) {
		t, ok := cfg.Init[name]
		if !ok {
			return nil, fmt.Errorf("strategy: no initial value for %q", name)
		}
		return cfg.Backend.Upload(t, d)
	}
	for _, p := range e.tr.Params {
		buf, err := upload(p, dev0)
		if err != nil {
			return nil, err
		}
		e.params[p] = buf
	}
	st, err := cfg.Update.InitState()
	if err != nil {
		return nil, err
	}
	for name, t := range st {
		buf, err := cfg.Backend.Upload(t, dev0)
		if err != nil {
			return nil, err
		}
		e.state[name] = buf
	}
	e.outIndex = map[string]int{}
	inPlace := map[string]string{}
	for i, nb := range e.tr.NewBuffers {
		inPlace[nb] = e.tr.Buffers[i]
	}
	if e.tr.Collective && (cfg.Replicas > 1 || cfg.outer != nil) {
		cb, ok := cfg.Backend.(backend.Collectives)
		if !ok {
			return nil, fmt.Errorf("strategy: sync BatchNorm needs a backend with collectives; %s has none", cfg.Backend.Name())
		}
		if e.group, err = cb.NewCollective(devs[:cfg.Replicas]); err != nil {
			return nil, err
		}
		if cfg.outer != nil {
			og, ok := e.group.(backend.OuterCollective)
			if !ok {
				return nil, fmt.Errorf("strategy: sync BatchNorm across workers needs collectives that reach other processes; backend %s's do not", cfg.Backend.Name())
			}
			og.SetOuter(cfg.outer)
		}
	}
	for r := 0; r < cfg.Replicas; r++ {
		rep := &replica{dev: devs[r], buffers: map[string]backend.Buffer{}, params: e.params,
			in: newFeeder(cfg.Backend, devs[r]), feeds: map[string]backend.Buffer{}}
		for _, name := range e.tr.Buffers {
			buf, err := upload(name, devs[r])
			if err != nil {
				return nil, err
			}
			rep.buffers[name] = buf
		}
		if r > 0 && !e.shared {
			rep.params = map[string]backend.Buffer{}
			for _, p := range e.tr.Params {
				buf, err := upload(p, devs[r])
				if err != nil {
					return nil, err
				}
				rep.params[p] = buf
			}
		}
		co := backend.CompileOptions{InPlace: inPlace, Collective: e.group, Rank: r}
		if cfg.Deterministic {
			co.Threads = 1 // kernels' results must not depend on a thread count
		}
		rep.train, err = cfg.Backend.Compile(e.tr.Model, devs[r], co)
		if err != nil {
			return nil, fmt.Errorf("strategy: compiling the training graph: %w", err)
		}
		if r == 0 {
			eo := backend.CompileOptions{}
			if cfg.Deterministic {
				eo.Threads = 1 // as training: evaluations must not depend on a thread count either
			}
			rep.eval, err = cfg.Backend.Compile(e.tr.Eval, devs[r], eo)
			if err != nil {
				return nil, fmt.Errorf("strategy: compiling the evaluation graph: %w", err)
			}
		}
		e.reps = append(e.reps, rep)
	}
	e.in, e.updateFeeds = newFeeder(cfg.Backend, dev0), map[string]backend.Buffer{}
	e.update, err = cfg.Backend.Compile(cfg.Update.Model, dev0, backend.CompileOptions{InPlace: cfg.Update.InPlace})
	if err != nil {
		return nil, fmt.Errorf("strategy: compiling the optimizer update: %w", err)
	}
	if cfg.Replicas > 1 {
		if _, err := e.reducer(cfg.Replicas, false); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// errPeerFailed is what a replica group is aborted with when one replica
// fails: the others' errors then only echo it.
var errPeerFailed = errors.New("another replica failed")

// bucketElems is the size under which gradients are reduced together in
// one flat bucket: a model with many small tensors (biases, norms) then
// costs one reduction, not one per tensor.
const bucketElems = 1 << 15

// reduceModel builds sum_r w_r * g_r for every gradient, r in fixed order.
// Inputs are "g<r>:<grad>" and the weights "w<r>" (float32 scalars);
// outputs "sum:<grad>". Small gradients are flattened into one bucket per
// replica, reduced once, and split back. With prefix the sum starts from
// the inputs "p:<grad>": Sum folds its inputs in one by one from the first,
// so p + w_0 g_0 + w_1 g_1 computes what one sum over earlier units and
// these would, bit for bit (multi-worker's ordered reduction).
func reduceModel(tr *graph.Training, replicas int, prefix bool) (*graph.Model, error) {
	b := graph.NewBuilder("allreduce", 17)
	w := make([]string, replicas)
	for r := range w {
		w[r] = b.Input(reduceWeightName(r), tensor.Float32)
	}
	types, err := graph.InferShapes(tr.Model, nil)
	if err != nil {
		return nil, err
	}
	in := func(r int, g string) string {
		t := types[g]
		return b.Input(reduceGradName(r, g), t.DType, t.Shape...)
	}
	var bucket []string
	var sizes []int64
	for _, g := range tr.Grads {
		t := types[g]
		shape, ok := t.Concrete()
		if ok && t.DType == tensor.Float32 && tensor.NumElements(shape) < bucketElems && len(tr.Grads) > 1 {
			bucket = append(bucket, g)
			sizes = append(sizes, int64(tensor.NumElements(shape)))
			continue
		}
		var parts []string
		if prefix {
			parts = append(parts, b.Input(reducePrefixName(g), t.DType, t.Shape...))
		}
		for r := range replicas {
			parts = append(parts, b.Op("Mul", in(r, g), w[r]).Out())
		}
		b.Op("Sum", parts...).Named("sum:" + g)
		b.Output("sum:" + g)
	}
	if len(bucket) > 0 {
		flat := b.Const(tensor.MustFromSlice([]int64{-1}, 1))
		concat := func(pieces []string) string {
			if len(pieces) == 1 {
				return pieces[0]
			}
			return b.Op("Concat", pieces...).With(graph.AInt("axis", 0)).Out()
		}
		var parts []string
		if prefix {
			pieces := make([]string, len(bucket))
			for i, g := range bucket {
				t := types[g]
				pieces[i] = b.Op("Reshape", b.Input(reducePrefixName(g), t.DType, t.Shape...), flat).Out()
			}
			parts = append(parts, concat(pieces))
		}
		for r := range replicas {
			pieces := make([]string, len(bucket))
			for i, g := range bucket {
				pieces[i] = b.Op("Reshape", in(r, g), flat).Out()
			}
			parts = append(parts, b.Op("Mul", concat(pieces), w[r]).Out())
		}
		sum := b.Op("Sum", parts...).Out()
		outs := []string{sum}
		if len(bucket) > 1 {
			outs = b.OpN(graph.DomainONNX, "Split", len(bucket), sum, b.Const(tensor.MustFromSlice(sizes, len(sizes)))).
				With(graph.AInt("axis", 0)).Outs()
		}
		for i, g := range bucket {
			shape, _ := types[g].Concrete()
			dims := make([]int64, len(shape))
			for j, d := range shape {
				dims[j] = int64(d)
			}
			b.Op("Reshape", outs[i], b.Const(tensor.MustFromSlice(dims, len(dims)))).Named("sum:" + g)
			b.Output("sum:" + g)
		}
	}
	return b.Model()
}

// reduceWeightName, reduceGradName and reducePrefixName name the
// reduction's inputs: unit u's weight and its gradient g, and the value
// the sum of g starts from.
func reduceWeightName(u int) string         { return fmt.Sprintf("w%d", u) }
func reduceGradName(u int, g string) string { return fmt.Sprintf("g%d:%s", u, g) }
func reducePrefixName(g string) string      { return "p:" + g }

// reductionKey identifies a compiled reduction: its unit count and whether
// its sums start from a prefix.
type reductionKey struct {
	units  int
	prefix bool
}

func (e *engine) Replicas() int { return len(e.reps) }

func (e *engine) shardSize() int {
	if e.cfg.ShardSize > 0 {
		return e.cfg.ShardSize
	}
	return 8
}

// shards cuts n samples into runs of size (the last one shorter).
func shards(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// reducer returns the gradient reduction over k units (after a prefix),
// compiled on first use.
func (e *engine) reducer(k int, prefix bool) (*reduction, error) {
	key := reductionKey{k, prefix}
	if red, ok := e.reduces[key]; ok {
		return red, nil
	}
	rm, err := reduceModel(e.tr, k, prefix)
	if err != nil {
		return nil, err
	}
	ex, err := e.b.Compile(rm, e.reps[0].dev, backend.CompileOptions{})
	if err != nil {
		return nil, fmt.Errorf("strategy: compiling the gradient reduction: %w", err)
	}
	red := &reduction{exe: ex, weights: make([]string, k), grads: make([][]string, k), feeds: map[string]backend.Buffer{}}
	for u := range k {
		red.weights[u] = reduceWeightName(u)
		for _, g := range e.tr.Grads {
			red.grads[u] = append(red.grads[u], reduceGradName(u, g))
		}
	}
	if e.reduces == nil {
		e.reduces = map[reductionKey]*reduction{}
	}
	e.reduces[key] = red
	return red, nil
}

// keep copies unit u's loss, metric and gradients out of the buffers its
// run returned (the executable reuses them at its next run, and on private
// memory they are on the replica's device) into kept[u], on the first
// device.
func (e *engine) keep(u int, o map[string]backend.Buffer) (map[string]backend.Buffer, error) {
	kept := e.kept[u]
	for _, name := range e.keptNames {
		buf, err := e.copyTo(kept[name], e.reps[0].dev, o[name])
		if err != nil {
			return nil, fmt.Errorf("copying %q to %v: %w", name, e.reps[0].dev, err)
		}
		kept[name] = buf
	}
	return kept, nil
}

// copyTo returns a buffer on dev holding src's values: dst, overwritten,
// when it is a buffer on dev of src's dtype and shape, else a new one. It
// copies with the backend's Copier where it has one, else through the
// host.
func (e *engine) copyTo(dst backend.Buffer, dev backend.Device, src backend.Buffer) (backend.Buffer, error) {
	fits := dst != nil && dst.Device() == dev && dst.DType() == src.DType() && tensor.SameShape(dst.Shape(), src.Shape())
	if c, ok := e.b.(backend.Copier); ok && fits {
		return dst, c.Copy(dst, src)
	}
	t, err := e.b.Download(src)
	if err != nil {
		return nil, err
	}
	if ow, ok := e.b.(backend.Overwriter); ok && fits {
		return dst, ow.Overwrite(dst, t)
	}
	return e.b.Upload(t, dev)
}

// split returns each replica's [lo, hi) share of n samples.
func split(n, r int) [][2]int {
	out := make([][2]int, r)
	lo := 0
	for i := 0; i < r; i++ {
		size := n / r
		if i < n%r {
			size++
		}
		out[i] = [2]int{lo, lo + size}
		lo += size
	}
	return out
}

// units cuts a batch of n samples into the step's units of work: one share
// per replica that has a sample, or, in deterministic mode, micro-shards
// that the replicas take in contiguous runs. Units are in sample order.
func (e *engine) units(n int) []unit {
	R := len(e.reps)
	var out []unit
	if e.cfg.Deterministic {
		sh := shards(n, e.shardSize())
		for r := 0; r < R; r++ {
			for u := r * len(sh) / R; u < (r+1)*len(sh)/R; u++ {
				out = append(out, unit{sh[u][0], sh[u][1], r})
			}
		}
		return out
	}
	for r, s := range split(n, R) {
		if s[1] > s[0] {
			out = append(out, unit{s[0], s[1], r})
		}
	}
	return out
}

// sliceBatch returns samples [lo, hi) of a batch as a view of its data
// (Upload copies it to the device; a copy here would be a second one).
func sliceBatch(t *tensor.Tensor, lo, hi int) (*tensor.Tensor, error) {
	inner := tensor.NumElements(t.Shape()[1:])
	shape := append([]int{hi - lo}, t.Shape()[1:]...)
	var part *tensor.Tensor
	var err error
	switch d := t.Data().(type) {
	case []float32:
		part, err = tensor.FromSlice(d[lo*inner:hi*inner], shape...)
	case []float64:
		part, err = tensor.FromSlice(d[lo*inner:hi*inner], shape...)
	case []int64:
		part, err = tensor.FromSlice(d[lo*inner:hi*inner], shape...)
	case []int32:
		part, err = tensor.FromSlice(d[lo*inner:hi*inner], shape...)
	case []uint8:
		part, err = tensor.FromSlice(d[lo*inner:hi*inner], shape...)
	case []bool:
		part, err = tensor.FromSlice(d[lo*inner:hi*inner], shape...)
	default:
		return nil, fmt.Errorf("strategy: cannot split a %v batch", t.DType())
	}
	return part, err
}

func scalarF(t *tensor.Tensor) float64 {
	if t == nil || t.Len() == 0 {
		return 0
	}
	return t.AsFloat64(0)
}

func (e *engine) Step(ctx context.Context, batch Batch, lr float64, step int64, seed int64) (StepResult, error) {
	if e.cfg.CheckReplicas {
		if err := e.checkReplicas(); err != nil {
			return StepResult{}, err
		}
	}
	if err := e.saveStats(); err != nil {
		return StepResult{}, err
	}
	units, outs, err := e.run(ctx, batch, seed)
	if err != nil {
		return StepResult{}, e.restoreStats(err)
	}
	terms, err := e.terms(units, outs, batch.total())
	if err != nil {
		return StepResult{}, err
	}
	res := sumTerms(terms, batch.total())
	grads, err := e.reduce(ctx, units, outs, batch.total(), nil)
	if err != nil {
		return res, err
	}
	if err := e.applyUpdate(ctx, grads, lr, step); err != nil {
		return res, err
	}
	if err := e.syncStats(ctx, units); err != nil {
		return res, err
	}
	return res, e.broadcast()
}

// run runs the replicas on their units of the batch and returns each
// unit's outputs (loss, metric, gradients), on the first device where the
// devices do not share memory.
func (e *engine) run(ctx context.Context, batch Batch, seed int64) ([]unit, []map[string]backend.Buffer, error) {
	n := batch.Size()
	R := len(e.reps)
	if n < 1 {
		return nil, nil, fmt.Errorf("strategy: the batch has no samples")
	}
	if e.group != nil && n < R {
		return nil, nil, fmt.Errorf("strategy: a batch of %d samples leaves %d of the %d replicas without a sample, and sync BatchNorm needs every replica in its collective", n, R-n, R)
	}
	if batch.Labels == nil && e.tr.Label != "" {
		return nil, nil, fmt.Errorf("strategy: the batch has no labels")
	}
	units := e.units(n)
	perRep := make([][]int, R) // unit indices of each replica
	for u, un := range units {
		perRep[un.rep] = append(perRep[un.rep], u)
	}
	for len(e.kept) < len(units) {
		e.kept = append(e.kept, map[string]backend.Buffer{})
	}
	outs := make([]map[string]backend.Buffer, len(units))
	errs := make([]error, R)
	var wg sync.WaitGroup
	for r, rep := range e.reps {
		if len(perRep[r]) == 0 {
			continue
		}
		wg.Add(1)
		go func(r int, rep *replica) {
			defer wg.Done()
			for _, u := range perRep[r] {
				o, err := e.runReplica(ctx, rep, batch, [2]int{units[u].lo, units[u].hi}, seed)
				// The executable reuses its output buffers at its next
				// run, and on private memory they are on this replica's
				// device: keep copies on the first device.
				if err == nil && (len(perRep[r]) > 1 || (r > 0 && !e.shared)) {
					o, err = e.keep(u, o)
				}
				if err != nil {
					errs[r] = err
					if e.group != nil {
						// The others may wait for this replica in a collective.
						e.group.Abort(fmt.Errorf("replica %d failed: %w", r, errPeerFailed))
					}
					return
				}
				outs[u] = o
			}
		}(r, rep)
	}
	wg.Wait()
	if e.group != nil {
		e.group.Reset()
	}
	// The first failure is the cause; others may only report the abort.
	for r, err := range errs {
		if err != nil && !errors.Is(err, errPeerFailed) {
			return nil, nil, fmt.Errorf("replica %d: %w", r, err)
		}
	}
	for r, err := range errs {
		if err != nil {
			return nil, nil, fmt.Errorf("replica %d: %w", r, err)
		}
	}
	return units, outs, nil
}

// weight is what unit u's mean loss and gradient are multiplied by in the
// batch's: its share of the n samples (1 when the loss sums over samples).
func (e *engine) weight(un unit, n int) float64 {
	if e.tr.SumLoss {
		return 1 // the global loss is the sum of the units' sums
	}
	return float64(un.hi-un.lo) / float64(n)
}

// term is a unit's part of a step's loss and metric: its mean loss times
// its weight, and its count of correct answers.
type term struct{ loss, correct float64 }

// terms returns the units' terms, weighted as shares of n samples.
func (e *engine) terms(units []unit, outs []map[string]backend.Buffer, n int) ([]term, error) {
	terms := make([]term, len(units))
	for u := range units {
		lt, err := e.b.Download(outs[u][e.tr.Loss])
		if err != nil {
			return nil, err
		}
		terms[u].loss = e.weight(units[u], n) * scalarF(lt)
		if e.tr.Correct != "" {
			ct, err := e.b.Download(outs[u][e.tr.Correct])
			if err != nil {
				return nil, err
			}
			terms[u].correct = scalarF(ct)
		}
	}
	return terms, nil
}

// sumTerms is a batch's result: the batch-weighted mean loss and the
// correct answers of its units, summed in unit order.
func sumTerms(terms []term, samples int) StepResult {
	res := StepResult{Samples: samples}
	for _, t := range terms {
		res.Loss += t.loss
		res.Correct += t.correct
	}
	return res
}

// reduce returns the batch's gradient from its units' outputs: their sum
// weighted by the units' shares of n samples, in unit order. With prefix
// (the ordered reduction of a multi-worker run) the sum starts from
// prefix's values. A lone unit of weight 1 is its own sum.
func (e *engine) reduce(ctx context.Context, units []unit, outs []map[string]backend.Buffer, n int, prefix map[string]backend.Buffer) (map[string]backend.Buffer, error) {
	grads := map[string]backend.Buffer{}
	if len(units) == 1 && prefix == nil && (e.tr.LossScale != "" || e.weight(units[0], n) == 1) {
		for _, g := range e.tr.Grads {
			grads[g] = outs[0][g]
		}
		return grads, nil
	}
	red, err := e.reducer(len(units), prefix != nil)
	if err != nil {
		return nil, err
	}
	for u := range units {
		w := float32(e.weight(units[u], n))
		if e.tr.LossScale != "" {
			w = 1 // the graphs weighted their losses already
		}
		buf, err := e.in.put(red.weights[u], tensor.Scalar(w))
		if err != nil {
			return nil, err
		}
		red.feeds[red.weights[u]] = buf
		for i, g := range e.tr.Grads {
			red.feeds[red.grads[u][i]] = outs[u][g]
		}
	}
	for g, buf := range prefix {
		red.feeds[reducePrefixName(g)] = buf
	}
	sums, err := red.exe.Run(ctx, red.feeds)
	if err != nil {
		return nil, fmt.Errorf("all-reduce: %w", err)
	}
	for _, g := range e.tr.Grads {
		grads[g] = sums["sum:"+g]
	}
	return grads, nil
}

func (e *engine) runReplica(ctx context.Context, rep *replica, batch Batch, share [2]int, seed int64) (map[string]backend.Buffer, error) {
	feeds := rep.feeds
	whole := share[0] == 0 && share[1] == batch.Size()
	put := func(name string, t *tensor.Tensor) error {
		buf, err := rep.in.put(name, t)
		if err != nil {
			return fmt.Errorf("input %q: %w", name, err)
		}
		feeds[name] = buf
		return nil
	}
	putShare := func(name string, t *tensor.Tensor) error {
		if !whole {
			var err error
			if t, err = sliceBatch(t, share[0], share[1]); err != nil {
				return err
			}
		}
		return put(name, t)
	}
	for _, name := range e.tr.Data {
		t, ok := batch.Inputs[name]
		if !ok {
			return nil, fmt.Errorf("the batch lacks model input %q", name)
		}
		if err := putShare(name, t); err != nil {
			return nil, err
		}
	}
	if e.tr.Label != "" {
		if err := putShare(e.tr.Label, batch.Labels); err != nil {
			return nil, err
		}
	}
	if e.tr.LossScale != "" {
		w := float32(share[1]-share[0]) / float32(batch.total())
		if e.tr.SumLoss {
			w = 1
		}
		if err := put(e.tr.LossScale, tensor.Scalar(w)); err != nil {
			return nil, err
		}
	}
	if e.tr.Seed != "" {
		if err := put(e.tr.Seed, tensor.Scalar(seed)); err != nil {
			return nil, err
		}
		// Dropout masks depend on the sample's index in the global batch.
		if err := put(e.tr.Offset, tensor.Scalar(int64(batch.Offset+share[0]))); err != nil {
			return nil, err
		}
	}
	for name, buf := range rep.params {
		feeds[name] = buf
	}
	for name, buf := range rep.buffers {
		feeds[name] = buf
	}
	return rep.train.Run(ctx, feeds)
}

func (e *engine) applyUpdate(ctx context.Context, grads map[string]backend.Buffer, lr float64, step int64) error {
	lrBuf, err := e.in.put(optim.LRInput, tensor.Scalar(float32(lr)))
	if err != nil {
		return err
	}
	stepBuf, err := e.in.put(optim.StepInput, tensor.Scalar(step))
	if err != nil {
		return err
	}
	feeds := e.updateFeeds
	feeds[optim.LRInput], feeds[optim.StepInput] = lrBuf, stepBuf
	for i, p := range e.tr.Params {
		feeds[p] = e.params[p]
		feeds[optim.GradName(p)] = grads[e.tr.Grads[i]]
	}
	for name, buf := range e.state {
		feeds[name] = buf
	}
	if _, err := e.update.Run(ctx, feeds); err != nil {
		return fmt.Errorf("optimizer update: %w", err)
	}
	return nil
}

// broadcast copies the master parameters into the other replicas' copies
// (private memory only: on shared memory the replicas read the master).
func (e *engine) broadcast() error {
	if e.shared {
		return nil
	}
	for r, rep := range e.reps[1:] {
		for _, p := range e.tr.Params {
			buf, err := e.copyTo(rep.params[p], rep.dev, e.params[p])
			if err != nil {
				return fmt.Errorf("strategy: copying %q to replica %d: %w", p, r+1, err)
			}
			rep.params[p] = buf
		}
	}
	return nil
}

// checkReplicas verifies that every replica's copy of the weights equals
// the master copy, and its BatchNorm statistics the first replica's, bit
// for bit. On a shared-memory backend the replicas hold no copies of the
// parameters (they read the master buffers): only the statistics, a few
// values per channel, are compared.
func (e *engine) checkReplicas() error {
	if len(e.reps) == 1 {
		return nil
	}
	// compare checks every other replica's copy of name against master,
	// which is "the master copy" or "replica 0's".
	compare := func(what, name, master string, buf backend.Buffer, of func(*replica) backend.Buffer) error {
		want, err := e.b.Download(buf)
		if err != nil {
			return err
		}
		for r, rep := range e.reps[1:] {
			got, err := e.b.Download(of(rep))
			if err != nil {
				return err
			}
			if i := firstDiff(want, got); i >= 0 {
				return fmt.Errorf("strategy: replica %d's copy of %s %q differs from %s at element %d (%v, not %v)",
					r+1, what, name, master, i, got.AsFloat64(i), want.AsFloat64(i))
			}
		}
		return nil
	}
	if !e.shared {
		for _, p := range e.tr.Params {
			if err := compare("weight", p, "the master copy", e.params[p], func(r *replica) backend.Buffer { return r.params[p] }); err != nil {
				return err
			}
		}
	}
	for _, name := range e.tr.Buffers {
		if err := compare("statistic", name, "replica 0's", e.reps[0].buffers[name], func(r *replica) backend.Buffer { return r.buffers[name] }); err != nil {
			return err
		}
	}
	return nil
}

// firstDiff returns the index of the first element whose bits differ
// between a and b (0 when their shapes or dtypes differ), or -1.
func firstDiff(a, b *tensor.Tensor) int {
	if a.DType() != b.DType() || !tensor.SameShape(a.Shape(), b.Shape()) {
		return 0
	}
	switch x := a.Data().(type) {
	case []float32:
		y := b.Float32s()
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				return i
			}
		}
	case []float64:
		y := b.Float64s()
		for i := range x {
			if math.Float64bits(x[i]) != math.Float64bits(y[i]) {
				return i
			}
		}
	case []uint16: // float16, bfloat16
		y := b.Raw16()
		for i := range x {
			if x[i] != y[i] {
				return i
			}
		}
	default:
		for i := 0; i < a.Len(); i++ {
			if a.AsFloat64(i) != b.AsFloat64(i) {
				return i
			}
		}
	}
	return -1
}

func (e *engine) Evaluate(ctx context.Context, batch Batch) (EvalResult, error) {
	rep := e.reps[0]
	feeds := map[string]backend.Buffer{}
	for _, name := range e.tr.Data {
		t, ok := batch.Inputs[name]
		if !ok {
			return EvalResult{}, fmt.Errorf("the batch lacks model input %q", name)
		}
		buf, err := e.b.Upload(t, rep.dev)
		if err != nil {
			return EvalResult{}, err
		}
		feeds[name] = buf
	}
	if e.tr.Label != "" {
		if batch.Labels == nil {
			return EvalResult{}, fmt.Errorf("the batch has no labels")
		}
		buf, err := e.b.Upload(batch.Labels, rep.dev)
		if err != nil {
			return EvalResult{}, err
		}
		feeds[e.tr.Label] = buf
	}
	for name, buf := range e.params {
		feeds[name] = buf
	}
	for name, buf := range rep.buffers {
		feeds[name] = buf // every replica holds the same statistics
	}
	outs, err := rep.eval.Run(ctx, feeds)
	if err != nil {
		return EvalResult{}, err
	}
	res := EvalResult{Samples: batch.Size()}
	names := rep.eval.Outputs()
	lt, err := e.b.Download(outs[names[0]])
	if err != nil {
		return res, err
	}
	res.Loss = scalarF(lt)
	if e.tr.Correct != "" {
		ct, err := e.b.Download(outs[names[1]])
		if err != nil {
			return res, err
		}
		res.Correct = scalarF(ct)
	}
	res.Output, err = e.b.Download(outs[names[len(names)-1]])
	return res, err
}

// syncStats gives every replica the mean of the BatchNorm statistics that
// the step's active replicas computed. Each replica updates its running
// statistics from its own share's batch statistics (per-replica
// BatchNorm); the update is linear, so averaging after every step equals
// keeping each replica's statistics and averaging them when they are read,
// and it keeps every replica, and a resumed run, on the same values.
// Under sync BatchNorm the replicas computed the same statistics already.
func (e *engine) syncStats(ctx context.Context, units []unit) error {
	if len(e.tr.Buffers) == 0 || len(e.reps) == 1 || e.group != nil {
		return nil
	}
	var active []int // replicas that had samples, in order
	for _, un := range units {
		if len(active) == 0 || active[len(active)-1] != un.rep {
			active = append(active, un.rep)
		}
	}
	rep0 := e.reps[0]
	src := rep0.buffers
	if len(active) > 1 {
		m, err := e.statsMeaner(len(active))
		if err != nil {
			return err
		}
		for len(e.keptStats) < len(e.reps) {
			e.keptStats = append(e.keptStats, map[string]backend.Buffer{})
		}
		for j, r := range active {
			rep := e.reps[r]
			for i, name := range e.tr.Buffers {
				buf := rep.buffers[name]
				if !e.shared && rep.dev != rep0.dev {
					kept, err := e.copyTo(e.keptStats[r][name], rep0.dev, buf)
					if err != nil {
						return fmt.Errorf("strategy: copying replica %d's %q: %w", r, name, err)
					}
					e.keptStats[r][name], buf = kept, kept
				}
				m.feeds[m.in[j][i]] = buf
			}
		}
		outs, err := m.exe.Run(ctx, m.feeds)
		if err != nil {
			return fmt.Errorf("strategy: averaging BatchNorm statistics: %w", err)
		}
		src = map[string]backend.Buffer{}
		for _, name := range e.tr.Buffers {
			src[name] = outs["mean:"+name]
		}
	}
	for r, rep := range e.reps {
		for _, name := range e.tr.Buffers {
			if rep.buffers[name] == src[name] {
				continue
			}
			buf, err := e.copyTo(rep.buffers[name], rep.dev, src[name])
			if err != nil {
				return fmt.Errorf("strategy: copying %q to replica %d: %w", name, r, err)
			}
			rep.buffers[name] = buf
		}
	}
	return nil
}

// saveStats keeps a copy of the BatchNorm statistics as the step finds
// them (every replica holds the same), for restoreStats.
func (e *engine) saveStats() error {
	if e.savedStats == nil {
		e.savedStats = map[string]backend.Buffer{}
	}
	rep0 := e.reps[0]
	for _, name := range e.tr.Buffers {
		buf, err := e.copyTo(e.savedStats[name], rep0.dev, rep0.buffers[name])
		if err != nil {
			return fmt.Errorf("strategy: saving %q: %w", name, err)
		}
		e.savedStats[name] = buf
	}
	return nil
}

// restoreStats puts the statistics saveStats kept back on every replica
// after the step failed with err (replicas that ran their forward pass
// updated theirs in place), so that a failed step changes nothing. It
// returns err.
func (e *engine) restoreStats(err error) error {
	for r, rep := range e.reps {
		for _, name := range e.tr.Buffers {
			buf, cerr := e.copyTo(rep.buffers[name], rep.dev, e.savedStats[name])
			if cerr != nil {
				return errors.Join(err, fmt.Errorf("strategy: restoring replica %d's %q: %w", r, name, cerr))
			}
			rep.buffers[name] = buf
		}
	}
	return err
}

// statsMeaner returns the mean of the statistics over k replicas, compiled
// on first use: Sum in replica order, divided by k.
func (e *engine) statsMeaner(k int) (*statsMean, error) {
	if m, ok := e.means[k]; ok {
		return m, nil
	}
	types, err := graph.InferShapes(e.tr.Model, nil)
	if err != nil {
		return nil, err
	}
	b := graph.NewBuilder("statsmean", 17)
	m := &statsMean{in: make([][]string, k), feeds: map[string]backend.Buffer{}}
	for _, name := range e.tr.Buffers {
		t := types[name]
		var div string
		switch t.DType {
		case tensor.Float32:
			div = b.Const(tensor.Scalar(float32(k)))
		case tensor.Float64:
			div = b.Const(tensor.Scalar(float64(k)))
		default:
			return nil, fmt.Errorf("strategy: BatchNorm statistic %q is %v; averaging over replicas takes float32 or float64", name, t.DType)
		}
		parts := make([]string, k)
		for j := range parts {
			parts[j] = b.Input(fmt.Sprintf("s%d:%s", j, name), t.DType, t.Shape...)
			m.in[j] = append(m.in[j], parts[j])
		}
		sum := parts[0]
		if k > 1 {
			sum = b.Op("Sum", parts...).Out()
		}
		b.Op("Div", sum, div).Named("mean:" + name)
		b.Output("mean:" + name)
	}
	model, err := b.Model()
	if err != nil {
		return nil, err
	}
	if m.exe, err = e.b.Compile(model, e.reps[0].dev, backend.CompileOptions{}); err != nil {
		return nil, fmt.Errorf("strategy: compiling the BatchNorm statistics' mean: %w", err)
	}
	if e.means == nil {
		e.means = map[int]*statsMean{}
	}
	e.means[k] = m
	return m, nil
}

// Weights returns the parameters and the BatchNorm statistics (which every
// replica holds the same of after each step).
func (e *engine) Weights() (map[string]*tensor.Tensor, error) {
	out := map[string]*tensor.Tensor{}
	for name, buf := range e.reps[0].buffers {
		t, err := e.b.Download(buf)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	for name, buf := range e.params {
		t, err := e.b.Download(buf)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

// SetWeights replaces parameters and BatchNorm statistics by name. It
// checks every name, dtype and shape before it changes anything. Values
// go to the first device, and from there to the other replicas by
// explicit copies (the parameters only on private memory; the statistics,
// which every replica keeps, always).
func (e *engine) SetWeights(w map[string]*tensor.Tensor) error {
	names := make([]string, 0, len(w))
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	rep0 := e.reps[0]
	for _, name := range names {
		t := w[name]
		old, ok := e.params[name]
		what := "weight"
		if !ok {
			old, ok = rep0.buffers[name]
			what = "buffer"
		}
		if !ok {
			return fmt.Errorf("%q is not a parameter or buffer of the model", name)
		}
		if old.DType() != t.DType() || !tensor.SameShape(old.Shape(), t.Shape()) {
			return fmt.Errorf("%s %q: expected %v%v, got %v%v", what, name, old.DType(), old.Shape(), t.DType(), t.Shape())
		}
	}
	for _, name := range names {
		buf, err := e.b.Upload(w[name], rep0.dev)
		if err != nil {
			return err
		}
		if _, ok := e.params[name]; ok {
			e.params[name] = buf
			continue
		}
		rep0.buffers[name] = buf
		for r, rep := range e.reps[1:] {
			if rep.buffers[name], err = e.copyTo(rep.buffers[name], rep.dev, buf); err != nil {
				return fmt.Errorf("strategy: copying %q to replica %d: %w", name, r+1, err)
			}
		}
	}
	return e.broadcast()
}

func (e *engine) OptState() (map[string]*tensor.Tensor, error) {
	out := map[string]*tensor.Tensor{}
	for name, buf := range e.state {
		t, err := e.b.Download(buf)
		if err != nil {
			return nil, err
		}
		out[name] = t
	}
	return out, nil
}

func (e *engine) SetOptState(s map[string]*tensor.Tensor) error {
	for name, t := range s {
		old, ok := e.state[name]
		if !ok {
			return fmt.Errorf("%q is not optimizer state of this run", name)
		}
		if !tensor.SameShape(old.Shape(), t.Shape()) {
			return fmt.Errorf("optimizer state %q: expected shape %v, got %v", name, old.Shape(), t.Shape())
		}
		buf, err := e.b.Upload(t, e.reps[0].dev)
		if err != nil {
			return err
		}
		e.state[name] = buf
	}
	return nil
}
