package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"

	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// VolatileLogKeys are log entries that measure the run rather than the
// training (wall time, throughput); DiffStates does not compare them.
var VolatileLogKeys = map[string]bool{
	"time": true, "epoch_time": true, "duration": true, "seconds": true,
	"samples_per_sec": true, "samples_per_second": true, "throughput": true,
}

// DiffStates compares two training states bit for bit and returns an error
// describing the first difference, or nil when they are equal: epoch, step,
// batch position, the epoch in progress and its sums, learning-rate scale, weights, optimizer state, generator
// states, callback states and the history (less VolatileLogKeys). The
// configuration is not compared (a resumed run's may name its resume file).
// Floats are compared by their bits, so -0 differs from 0 and equal NaNs match.
func DiffStates(a, b *train.State) error {
	switch {
	case a.Epoch != b.Epoch:
		return fmt.Errorf("epoch %d vs %d", a.Epoch, b.Epoch)
	case a.Step != b.Step:
		return fmt.Errorf("step %d vs %d", a.Step, b.Step)
	case a.BatchInEpoch != b.BatchInEpoch:
		return fmt.Errorf("batch in epoch %d vs %d", a.BatchInEpoch, b.BatchInEpoch)
	case math.Float64bits(a.LRScale) != math.Float64bits(b.LRScale):
		return fmt.Errorf("learning-rate scale %v vs %v", a.LRScale, b.LRScale)
	case a.ModelHash != b.ModelHash:
		return fmt.Errorf("model hash %s vs %s", a.ModelHash, b.ModelHash)
	case a.DataHash != b.DataHash:
		return fmt.Errorf("data hash %s vs %s", a.DataHash, b.DataHash)
	}
	if err := diffPartial(a.Partial, b.Partial); err != nil {
		return err
	}
	if err := DiffTensors("weight", a.Weights, b.Weights); err != nil {
		return err
	}
	if err := DiffTensors("optimizer state", a.OptState, b.OptState); err != nil {
		return err
	}
	if err := diffBytes("generator state", a.RNG, b.RNG); err != nil {
		return err
	}
	if err := diffBytes("callback state", a.Extra, b.Extra); err != nil {
		return err
	}
	if len(a.History) != len(b.History) {
		return fmt.Errorf("history has %d vs %d epochs", len(a.History), len(b.History))
	}
	for i := range a.History {
		for _, k := range unionKeys(a.History[i], b.History[i]) {
			if VolatileLogKeys[k] {
				continue
			}
			x, okx := a.History[i][k]
			y, oky := b.History[i][k]
			if okx != oky || math.Float64bits(x) != math.Float64bits(y) {
				return fmt.Errorf("history epoch %d %q: %v vs %v", i+1, k, x, y)
			}
		}
	}
	return nil
}

func diffPartial(a, b *train.PartialEpoch) error {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil || b == nil:
		return fmt.Errorf("epoch in progress %v vs %v", a, b)
	case a.Samples != b.Samples || a.Counted != b.Counted:
		return fmt.Errorf("epoch in progress at sample %d (%d counted) vs %d (%d counted)", a.Samples, a.Counted, b.Samples, b.Counted)
	case math.Float64bits(a.Loss) != math.Float64bits(b.Loss):
		return fmt.Errorf("epoch in progress loss sum %v vs %v", a.Loss, b.Loss)
	case math.Float64bits(a.Correct) != math.Float64bits(b.Correct):
		return fmt.Errorf("epoch in progress correct count %v vs %v", a.Correct, b.Correct)
	}
	return nil
}

func unionKeys[V any](a, b map[string]V) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return sortedKeys(m)
}

func diffBytes(what string, a, b map[string][]byte) error {
	for _, k := range unionKeys(a, b) {
		x, okx := a[k]
		y, oky := b[k]
		if !okx || !oky {
			return fmt.Errorf("%s %q is present in only one state", what, k)
		}
		if !bytes.Equal(x, y) {
			return fmt.Errorf("%s %q differs", what, k)
		}
	}
	return nil
}

// DiffTensors compares two tensor maps bit for bit and describes the first
// difference (a name in one map only, a dtype or shape, an element), or
// returns nil. what names the kind of tensor in the message ("weight").
func DiffTensors(what string, a, b map[string]*tensor.Tensor) error {
	for _, k := range unionKeys(a, b) {
		x, y := a[k], b[k]
		if x == nil || y == nil {
			return fmt.Errorf("%s %q is present in only one state", what, k)
		}
		if x.DType() != y.DType() || !tensor.SameShape(x.Shape(), y.Shape()) {
			return fmt.Errorf("%s %q is %v%v vs %v%v", what, k, x.DType(), x.Shape(), y.DType(), y.Shape())
		}
		var bx, by bytesBuffer
		ex, ey := &encoder{w: &bx}, &encoder{w: &by}
		ex.tensor(k, x)
		ey.tensor(k, y)
		if ex.err != nil || ey.err != nil {
			return fmt.Errorf("%s %q: %v %v", what, k, ex.err, ey.err)
		}
		if !bytes.Equal(bx, by) {
			for i := 0; i < x.Len(); i++ {
				if math.Float64bits(x.AsFloat64(i)) != math.Float64bits(y.AsFloat64(i)) {
					return fmt.Errorf("%s %q element %d: %v vs %v", what, k, i, x.AsFloat64(i), y.AsFloat64(i))
				}
			}
			return fmt.Errorf("%s %q differs", what, k)
		}
	}
	return nil
}

// FitFunc runs training for a test of resumption: from scratch when
// resumeFrom is "", else from that training-state file, until epochs
// epochs are complete in all, and returns the final state (taken before
// OnTrainEnd, see Interrupt).
type FitFunc func(epochs int, resumeFrom string) (*train.State, error)

// VerifyResume checks that resuming is exact: it trains total epochs
// straight; then split epochs, saves that state to a file in dir with
// SaveState, reads it back with LoadState, and trains from it to total
// epochs; and compares the two final states with DiffStates. It returns
// nil when they are identical bit for bit.
func VerifyResume(dir string, total, split int, fit FitFunc) error {
	if split <= 0 || split >= total {
		return fmt.Errorf("verify resume: split %d: expected 0 < split < total (%d)", split, total)
	}
	straight, err := fit(total, "")
	if err != nil {
		return fmt.Errorf("verify resume: %d epochs straight: %w", total, err)
	}
	first, err := fit(split, "")
	if err != nil {
		return fmt.Errorf("verify resume: first %d epochs: %w", split, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("resume-after-%d.ckpt", split))
	if err := SaveState(path, first); err != nil {
		return fmt.Errorf("verify resume: %w", err)
	}
	back, err := LoadState(path, first.ModelHash)
	if err != nil {
		return fmt.Errorf("verify resume: %w", err)
	}
	if err := DiffStates(first, back); err != nil {
		return fmt.Errorf("verify resume: the state file does not round-trip: %w", err)
	}
	resumed, err := fit(total, path)
	if err != nil {
		return fmt.Errorf("verify resume: epochs %d..%d resumed: %w", split+1, total, err)
	}
	if err := DiffStates(straight, resumed); err != nil {
		return fmt.Errorf("verify resume: %d+%d epochs differ from %d straight: %w", split, total-split, total, err)
	}
	return nil
}

// ConfigChange is a setting whose value differs between the configuration
// a training state was written with and the configuration of the run that
// resumes it. Old and New are the values' JSON text.
type ConfigChange struct {
	Key      string
	Old, New string
}

// ConfigChanges compares two training configurations, JSON objects such as
// train.State.Config and train.Config.ConfigJSON, and lists the keys whose
// values differ, in sorted order. A key present in only one of them (a
// setting added or removed between versions) is not a change. Two values
// are equal when they decode to the same JSON value (so 1 and 1.0 are).
// Either configuration being empty gives no changes.
func ConfigChanges(stored, current []byte) ([]ConfigChange, error) {
	if len(bytes.TrimSpace(stored)) == 0 || len(bytes.TrimSpace(current)) == 0 {
		return nil, nil
	}
	var a, b map[string]json.RawMessage
	if err := json.Unmarshal(stored, &a); err != nil {
		return nil, fmt.Errorf("the stored training configuration: %w", err)
	}
	if err := json.Unmarshal(current, &b); err != nil {
		return nil, fmt.Errorf("the training configuration: %w", err)
	}
	var out []ConfigChange
	for _, k := range sortedKeys(a) {
		y, ok := b[k]
		if !ok || sameJSON(a[k], y) {
			continue
		}
		out = append(out, ConfigChange{Key: k, Old: string(a[k]), New: string(y)})
	}
	return out, nil
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}
