package checkpoint

import (
	"fmt"
	"io"
	"math"

	"github.com/gotrain/gotrain/train"
)

// ReduceLROnPlateau multiplies the learning rate by Factor when a monitored
// metric has not improved for Patience epochs, as Keras's callback does:
// after a reduction it waits Cooldown epochs before counting again, and it
// never takes the rate below MinLR. It acts through Context.SetLRScale, a
// factor on top of the optimizer's schedule, so a schedule keeps its shape
// and the reduction survives a resume (train.State.LRScale).
type ReduceLROnPlateau struct {
	Monitor  string  // "" means "val_loss"
	Factor   float64 // in (0, 1)
	Patience int
	Mode     Mode
	MinDelta float64
	Cooldown int
	MinLR    float64
	Log      io.Writer // where to report reductions; nil for silence

	mon      monitor
	wait     int
	cooldown int
	best     float64
	restored bool
}

// NewReduceLROnPlateau returns the callback with Keras's defaults: val_loss,
// factor 0.1, patience 10, min_delta 1e-4, no cooldown, min_lr 0.
func NewReduceLROnPlateau() *ReduceLROnPlateau {
	return &ReduceLROnPlateau{Factor: 0.1, Patience: 10, MinDelta: 1e-4}
}

// Name identifies the callback's state in train.State.Extra.
func (r *ReduceLROnPlateau) Name() string {
	m := r.Monitor
	if m == "" {
		m = "val_loss"
	}
	return "ReduceLROnPlateau(" + m + ")"
}

func (r *ReduceLROnPlateau) OnTrainBegin(c *train.Context) error {
	m, err := newMonitor("ReduceLROnPlateau", r.Monitor, r.Mode, r.MinDelta)
	if err != nil {
		return err
	}
	if !(r.Factor > 0 && r.Factor < 1) {
		return fmt.Errorf("ReduceLROnPlateau: factor %v: expected a number in (0, 1)", r.Factor)
	}
	if r.Patience < 0 || r.Cooldown < 0 || r.MinLR < 0 || math.IsNaN(r.MinLR) {
		return fmt.Errorf("ReduceLROnPlateau: patience %d, cooldown %d, min_lr %v: expected none negative", r.Patience, r.Cooldown, r.MinLR)
	}
	r.mon = m
	if r.restored {
		r.restored = false
		return nil
	}
	r.wait, r.cooldown, r.best = 0, 0, m.worst()
	return nil
}

func (r *ReduceLROnPlateau) OnEpochEnd(c *train.Context, epoch int, logs train.Logs) error {
	cur, err := r.mon.value("ReduceLROnPlateau", logs)
	if err != nil {
		return err
	}
	if r.cooldown > 0 {
		r.cooldown--
		r.wait = 0
	}
	if r.mon.improves(cur, r.best) {
		r.best, r.wait = cur, 0
		return nil
	}
	if r.cooldown > 0 {
		return nil
	}
	r.wait++
	if r.wait < r.Patience {
		return nil
	}
	old := c.LR()
	if !(old > r.MinLR) {
		return nil
	}
	scale := c.LRScale() * r.Factor
	if old*r.Factor < r.MinLR {
		scale = c.LRScale() * r.MinLR / old
	}
	c.SetLRScale(scale)
	r.cooldown, r.wait = r.Cooldown, 0
	if r.Log != nil {
		fmt.Fprintf(r.Log, "ReduceLROnPlateau: epoch %d: %s has not improved for %d epochs; learning rate %.4g -> %.4g\n",
			epoch+1, r.mon.name, r.Patience, old, math.Max(old*r.Factor, r.MinLR))
	}
	return nil
}

func (r *ReduceLROnPlateau) OnTrainEnd(*train.Context, train.Logs) error      { return nil }
func (r *ReduceLROnPlateau) OnEpochBegin(*train.Context, int) error           { return nil }
func (r *ReduceLROnPlateau) OnBatchBegin(*train.Context, int) error           { return nil }
func (r *ReduceLROnPlateau) OnBatchEnd(*train.Context, int, train.Logs) error { return nil }

// MarshalState encodes the wait and cooldown counters and the best value.
func (r *ReduceLROnPlateau) MarshalState() ([]byte, error) {
	var b bytesBuffer
	e := &encoder{w: &b}
	e.uvarint(stateVersion)
	e.varint(int64(r.wait))
	e.varint(int64(r.cooldown))
	e.float64(r.best)
	return b, e.err
}

// UnmarshalState restores what MarshalState encoded.
func (r *ReduceLROnPlateau) UnmarshalState(p []byte) error {
	d, err := decodeCallbackState(p)
	if err != nil {
		return err
	}
	wait, cool, best := d.varint(), d.varint(), d.float64()
	if err := finishDecode(d); err != nil {
		return err
	}
	r.wait, r.cooldown, r.best, r.restored = int(wait), int(cool), best, true
	return nil
}
