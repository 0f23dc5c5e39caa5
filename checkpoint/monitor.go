package checkpoint

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// Mode says whether a monitored metric improves by going down or up.
type Mode string

// Modes. Auto follows Keras: a metric whose name contains "acc" (accuracy,
// val_acc, ...) or "auc" improves upwards, every other metric downwards.
const (
	Auto Mode = "auto"
	Min  Mode = "min"
	Max  Mode = "max"
)

// monitor is a metric name with its direction and the smallest change that
// counts as an improvement.
type monitor struct {
	name     string
	max      bool
	minDelta float64
}

func newMonitor(who, name string, mode Mode, minDelta float64) (monitor, error) {
	if name == "" {
		name = "val_loss"
	}
	m := monitor{name: name, minDelta: math.Abs(minDelta)}
	switch mode {
	case Auto, "":
		m.max = strings.Contains(name, "acc") || strings.Contains(name, "auc")
	case Min:
	case Max:
		m.max = true
	default:
		return m, fmt.Errorf("%s: mode %q: expected auto, min or max", who, mode)
	}
	if math.IsNaN(minDelta) || math.IsInf(minDelta, 0) {
		return m, fmt.Errorf("%s: min_delta %v: expected a finite number", who, minDelta)
	}
	return m, nil
}

// worst is the starting "best": every finite value improves on it.
func (m monitor) worst() float64 {
	if m.max {
		return math.Inf(-1)
	}
	return math.Inf(1)
}

// improves reports whether cur beats ref by more than minDelta. NaN never
// improves on anything.
func (m monitor) improves(cur, ref float64) bool {
	if m.max {
		return cur-m.minDelta > ref
	}
	return cur+m.minDelta < ref
}

// value reads the monitored metric, with an error listing what the logs hold
// when it is absent (a validation metric without validation data, a typo).
func (m monitor) value(who string, logs train.Logs) (float64, error) {
	v, ok := logs[m.name]
	if !ok {
		return 0, fmt.Errorf("%s: monitored metric %q is not in the logs (they hold: %s)", who, m.name, strings.Join(sortedKeys(logs), ", "))
	}
	return v, nil
}

// Stateful is implemented by callbacks whose state must survive a resume for
// training to continue exactly: EarlyStopping's best value, patience counter
// and best weights, ReduceLROnPlateau's counters, ModelCheckpoint's best.
// Names are unique within one fit's callbacks. A restored state takes the
// place of the reset that OnTrainBegin would otherwise do, so restoring may
// happen before or after OnTrainBegin.
type Stateful interface {
	Name() string
	MarshalState() ([]byte, error)
	UnmarshalState([]byte) error
}

// CollectState gathers the state of every Stateful callback by name, for
// train.State.Extra.
func CollectState(cbs []train.Callback) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, cb := range cbs {
		s, ok := cb.(Stateful)
		if !ok {
			continue
		}
		name := s.Name()
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("two callbacks are named %q; their states would collide", name)
		}
		b, err := s.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("callback %s: save state: %w", name, err)
		}
		out[name] = b
	}
	return out, nil
}

// RestoreState gives every Stateful callback its state from extra (under
// its name, or a former one: train.StateOf). A callback without an entry
// (added since the state was written) starts fresh; entries without a
// callback (removed since) are ignored.
func RestoreState(cbs []train.Callback, extra map[string][]byte) error {
	for _, cb := range cbs {
		s, ok := cb.(Stateful)
		if !ok {
			continue
		}
		b, ok := train.StateOf(s, extra)
		if !ok {
			continue
		}
		if err := s.UnmarshalState(b); err != nil {
			return fmt.Errorf("callback %s: restore state: %w", s.Name(), err)
		}
	}
	return nil
}

// stateVersion prefixes each callback's state so a later layout can be told apart.
const stateVersion = 1

var errStateVersion = errors.New("callback state has an unknown layout")

func decodeCallbackState(b []byte) (*decoder, error) {
	d := &decoder{b: b}
	if v := d.uvarint(); d.err != nil || v != stateVersion {
		return nil, fmt.Errorf("%w (version %d, expected %d)", errStateVersion, v, stateVersion)
	}
	return d, nil
}

func finishDecode(d *decoder) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the end", len(d.b))
	}
	return d.err
}

// nonFinite returns the name of the first weight (in sorted order) holding
// NaN or ±Inf, or "" when all are finite.
func nonFinite(w map[string]*tensor.Tensor) string {
	for _, k := range sortedKeys(w) {
		t := w[k]
		if t == nil {
			continue
		}
		switch d := t.Data().(type) {
		case []float32:
			for _, v := range d {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return k
				}
			}
		case []float64:
			for _, v := range d {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return k
				}
			}
		}
	}
	return ""
}
