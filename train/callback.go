package train

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Logs are the metrics of a batch or an epoch by name: "loss", "accuracy",
// and with validation "val_loss", "val_accuracy"; "lr" is the learning rate.
type Logs map[string]float64

// Callback hooks into the fit loop. Every method may return an error, which
// ends training with that error. Embed NopCallback to implement only some.
type Callback interface {
	OnTrainBegin(c *Context) error
	OnTrainEnd(c *Context, logs Logs) error
	OnEpochBegin(c *Context, epoch int) error
	OnEpochEnd(c *Context, epoch int, logs Logs) error
	OnBatchBegin(c *Context, batch int) error
	OnBatchEnd(c *Context, batch int, logs Logs) error
}

// NopCallback implements Callback with methods that do nothing.
type NopCallback struct{}

func (NopCallback) OnTrainBegin(*Context) error          { return nil }
func (NopCallback) OnTrainEnd(*Context, Logs) error      { return nil }
func (NopCallback) OnEpochBegin(*Context, int) error     { return nil }
func (NopCallback) OnEpochEnd(*Context, int, Logs) error { return nil }
func (NopCallback) OnBatchBegin(*Context, int) error     { return nil }
func (NopCallback) OnBatchEnd(*Context, int, Logs) error { return nil }

// State is everything needed to continue training exactly where it stopped:
// written by checkpoint's training-state files and read back by Resume.
type State struct {
	Epoch        int                       // epochs completed
	Step         int64                     // optimizer steps taken
	BatchInEpoch int                       // batches of the current epoch already done (0 at an epoch boundary)
	Weights      map[string]*tensor.Tensor // trainable parameters and buffers (BatchNorm statistics)
	OptState     map[string]*tensor.Tensor // optimizer slots by "<param>.<slot>"
	LRScale      float64                   // the factor callbacks (ReduceLROnPlateau) applied to the schedule
	RNG          map[string][]byte         // generator states by owner ("shuffle", "dropout", ...)
	Extra        map[string][]byte         // callback state by callback name (EarlyStopping's best, ...)
	Config       []byte                    // the training configuration as JSON
	ModelHash    string                    // identifies the model the state belongs to
	History      []Logs                    // per-epoch logs so far
	// Partial is the epoch in progress at a mid-epoch snapshot: its position
	// in samples and its running sums. It is nil at an epoch boundary, and
	// in states written before it was stored.
	Partial *PartialEpoch
	// DataHash identifies the training data (Config.DataHash); "" if unknown.
	DataHash string
}

// ResumePoint says where training resumes from s: "epoch E, step S" (E
// 1-based, the epoch that runs next), and for a mid-epoch state how far
// into that epoch.
func (s *State) ResumePoint() string {
	e := s.Epoch + 1
	at := fmt.Sprintf("epoch %d, step %d", e, s.Step)
	switch {
	case s.Partial != nil && s.Partial.Samples > 0:
		at += fmt.Sprintf(" (%d samples of epoch %d done)", s.Partial.Samples, e)
	case s.BatchInEpoch > 0:
		at += fmt.Sprintf(" (%d batches of epoch %d done; the state has no running sums, so epoch %d's loss and accuracy will average only the batches after the resume)",
			s.BatchInEpoch, e, e)
	}
	return at
}

// PartialEpoch is how far an epoch has got: the position in its shuffled
// order, counted in samples so that a run resumed with another batch size
// trains exactly the samples left, and the sums its logs average, so that
// the resumed epoch's logs equal those of an uninterrupted epoch.
type PartialEpoch struct {
	Samples int64   // samples of the epoch trained so far
	Counted int64   // samples the sums cover: Samples, less any the sums lost (a resume from a state without them)
	Loss    float64 // the sum of the per-sample loss over the counted samples ("loss" = Loss / Counted)
	Correct float64 // correctly classified samples among them ("accuracy" = Correct / Counted)
}

// Context is what callbacks see of the running fit: the epoch and step,
// the weights (as host tensors, never device buffers), the learning rate,
// and a way to stop.
type Context struct {
	Epoch int   // the current epoch, 0-based
	Step  int64 // optimizer steps taken so far

	stop         bool
	stopReason   string
	batchInEpoch int
	hooks        Hooks
}

// Hooks are the fit loop's operations that a Context exposes.
type Hooks struct {
	Weights    func() (map[string]*tensor.Tensor, error)
	SetWeights func(map[string]*tensor.Tensor) error
	LRScale    func() float64
	SetLRScale func(float64)
	LR         func() float64
	Snapshot   func() (*State, error)
	Model      func() *graph.Model
	History    func() []Logs
}

// NewContext makes a Context over the given hooks (the fit loop does this;
// tests of callbacks may too).
func NewContext(h Hooks) *Context { return &Context{hooks: h} }

// StopTraining asks the loop to stop at the end of the current epoch (or,
// when called from a batch hook, after the current batch).
func (c *Context) StopTraining(reason string) {
	if !c.stop {
		c.stop, c.stopReason = true, reason
	}
}

// Stopped reports whether a stop was requested, and why.
func (c *Context) Stopped() (bool, string) { return c.stop, c.stopReason }

// Weights returns a copy of the current weights (parameters and BatchNorm
// statistics) by initializer name.
func (c *Context) Weights() (map[string]*tensor.Tensor, error) { return c.hooks.Weights() }

// SetWeights replaces weights by name (all replicas of a strategy).
func (c *Context) SetWeights(w map[string]*tensor.Tensor) error { return c.hooks.SetWeights(w) }

// LR is the learning rate of the next step.
func (c *Context) LR() float64 { return c.hooks.LR() }

// LRScale is the factor applied on top of the schedule (1 at the start).
func (c *Context) LRScale() float64 { return c.hooks.LRScale() }

// SetLRScale sets the factor applied on top of the schedule.
func (c *Context) SetLRScale(s float64) { c.hooks.SetLRScale(s) }

// Snapshot captures the full training state for a resumable checkpoint.
func (c *Context) Snapshot() (*State, error) { return c.hooks.Snapshot() }

// Model is the model being trained, in inference form with its original
// initializers; export replaces them with Weights.
func (c *Context) Model() *graph.Model { return c.hooks.Model() }

// History returns the per-epoch logs so far.
func (c *Context) History() []Logs { return c.hooks.History() }

// FormerNamed is a callback whose state may be stored under a name it had
// before (ModelCheckpoint's once held its whole path); FormerName reports
// whether a key of State.Extra is such a name.
type FormerNamed interface {
	FormerName(key string) bool
}

// StateOf finds a callback's state in State.Extra: under its Name, else
// under the one former name that matches (several matching are ambiguous,
// and none is taken).
func StateOf(cb interface{ Name() string }, extra map[string][]byte) ([]byte, bool) {
	if b, ok := extra[cb.Name()]; ok {
		return b, true
	}
	fn, ok := cb.(FormerNamed)
	if !ok {
		return nil, false
	}
	var found []byte
	n := 0
	for k, b := range extra {
		if fn.FormerName(k) {
			found, n = b, n+1
		}
	}
	return found, n == 1
}
