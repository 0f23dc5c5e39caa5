package checkpoint

import (
	"fmt"
	"io"

	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// EarlyStopping stops training when a monitored metric has stopped
// improving, with Keras's semantics:
//
//   - An epoch improves when the metric beats the best so far by more than
//     MinDelta (downwards in min mode, upwards in max mode; auto picks max for
//     accuracy-like names).
//   - Wait counts epochs since the last improvement; training stops at the
//     end of an epoch (not the first) where Wait >= Patience.
//   - With Baseline set, an improvement resets Wait only if it also beats the
//     baseline, so training stops after Patience epochs that fail to reach
//     it, improving or not.
//   - Epochs before StartFromEpoch (0-based) are not looked at.
//
// With RestoreBestWeights, the weights of the best epoch are put back when
// training ends, whether EarlyStopping stopped it or the epochs ran out (Keras
// restores only in the first case). They are restored in OnTrainEnd, so a
// ModelCheckpoint at the stopping epoch saves that epoch's own weights.
//
// Its state (best value, wait, best weights) is Stateful, so a resumed run
// stops at the same epoch as an uninterrupted one.
type EarlyStopping struct {
	Monitor            string   // metric to watch; "" means "val_loss"
	MinDelta           float64  // smallest change that counts as an improvement
	Patience           int      // epochs without improvement before stopping
	Mode               Mode     // Auto (""), Min or Max
	Baseline           *float64 // value the metric must beat; nil for none
	StartFromEpoch     int      // first 0-based epoch that counts
	RestoreBestWeights bool
	Log                io.Writer // where to say that it stopped or restored; nil for silence

	mon          monitor
	wait         int
	best         float64
	bestEpoch    int
	stoppedEpoch int // -1 when it has not stopped training
	lastEpoch    int
	bestWeights  map[string]*tensor.Tensor
	restored     bool // state came from UnmarshalState; OnTrainBegin keeps it
}

// NewEarlyStopping returns an EarlyStopping with Keras's defaults
// (val_loss, min_delta 0, patience 0, mode auto) and the given patience.
func NewEarlyStopping(monitor string, patience int) *EarlyStopping {
	return &EarlyStopping{Monitor: monitor, Patience: patience}
}

// Name identifies the callback's state in train.State.Extra.
func (es *EarlyStopping) Name() string { return "EarlyStopping(" + es.monitorName() + ")" }

func (es *EarlyStopping) monitorName() string {
	if es.Monitor == "" {
		return "val_loss"
	}
	return es.Monitor
}

// StoppedEpoch is the 0-based epoch at whose end it stopped training, or -1.
func (es *EarlyStopping) StoppedEpoch() int { return es.stoppedEpoch }

// Best returns the best value seen and its 0-based epoch (-1 when none was seen).
func (es *EarlyStopping) Best() (float64, int) { return es.best, es.bestEpoch }

func (es *EarlyStopping) reset() {
	es.wait, es.best, es.bestEpoch, es.stoppedEpoch, es.lastEpoch = 0, es.mon.worst(), -1, -1, -1
	es.bestWeights = nil
}

func (es *EarlyStopping) init() error {
	m, err := newMonitor("EarlyStopping", es.Monitor, es.Mode, es.MinDelta)
	if err != nil {
		return err
	}
	if es.Patience < 0 {
		return fmt.Errorf("EarlyStopping: patience %d: expected >= 0", es.Patience)
	}
	es.mon = m
	return nil
}

func (es *EarlyStopping) OnTrainBegin(c *train.Context) error {
	if err := es.init(); err != nil {
		return err
	}
	if es.restored {
		es.restored = false
		return nil
	}
	es.reset()
	return nil
}

func (es *EarlyStopping) OnEpochEnd(c *train.Context, epoch int, logs train.Logs) error {
	es.lastEpoch = epoch
	if epoch < es.StartFromEpoch {
		return nil
	}
	cur, err := es.mon.value("EarlyStopping", logs)
	if err != nil {
		return err
	}
	if es.RestoreBestWeights && es.bestWeights == nil {
		// With no improvement ever, the first epoch looked at is the best.
		if err := es.keepWeights(c, epoch); err != nil {
			return err
		}
	}
	es.wait++
	if es.mon.improves(cur, es.best) {
		es.best, es.bestEpoch = cur, epoch
		if es.RestoreBestWeights {
			if err := es.keepWeights(c, epoch); err != nil {
				return err
			}
		}
		if es.Baseline == nil || es.mon.improves(cur, *es.Baseline) {
			es.wait = 0
			return nil
		}
	}
	if es.wait >= es.Patience && epoch > 0 {
		es.stoppedEpoch = epoch
		c.StopTraining(fmt.Sprintf("early stopping: %s has not improved for %d epochs (best %.4g at epoch %d)",
			es.mon.name, es.wait, es.best, es.bestEpoch+1))
	}
	return nil
}

func (es *EarlyStopping) keepWeights(c *train.Context, epoch int) error {
	w, err := c.Weights()
	if err != nil {
		return fmt.Errorf("EarlyStopping: read weights at epoch %d: %w", epoch+1, err)
	}
	es.bestWeights = w
	if es.bestEpoch < 0 {
		es.bestEpoch = epoch
	}
	return nil
}

func (es *EarlyStopping) OnTrainEnd(c *train.Context, _ train.Logs) error {
	if !es.RestoreBestWeights || es.bestWeights == nil || es.bestEpoch == es.lastEpoch {
		return nil
	}
	if err := c.SetWeights(es.bestWeights); err != nil {
		return fmt.Errorf("EarlyStopping: restore the weights of epoch %d: %w", es.bestEpoch+1, err)
	}
	if es.Log != nil {
		fmt.Fprintf(es.Log, "EarlyStopping: restored the weights of epoch %d (%s %.4g)\n", es.bestEpoch+1, es.mon.name, es.best)
	}
	return nil
}

func (es *EarlyStopping) OnEpochBegin(*train.Context, int) error           { return nil }
func (es *EarlyStopping) OnBatchBegin(*train.Context, int) error           { return nil }
func (es *EarlyStopping) OnBatchEnd(*train.Context, int, train.Logs) error { return nil }

// MarshalState encodes the best value and epoch, the wait counter and the
// best weights.
func (es *EarlyStopping) MarshalState() ([]byte, error) {
	var b bytesBuffer
	e := &encoder{w: &b}
	e.uvarint(stateVersion)
	e.varint(int64(es.wait))
	e.float64(es.best)
	e.varint(int64(es.bestEpoch))
	e.varint(int64(es.stoppedEpoch))
	e.varint(int64(es.lastEpoch))
	e.bool(es.bestWeights != nil)
	if es.bestWeights != nil {
		e.tensorMap(es.bestWeights)
	}
	return b, e.err
}

// UnmarshalState restores what MarshalState encoded.
func (es *EarlyStopping) UnmarshalState(p []byte) error {
	d, err := decodeCallbackState(p)
	if err != nil {
		return err
	}
	wait, best, bestEpoch := d.varint(), d.float64(), d.varint()
	stopped, last := d.varint(), d.varint()
	var w map[string]*tensor.Tensor
	if d.bool() {
		w = d.tensorMap()
	}
	if err := finishDecode(d); err != nil {
		return err
	}
	es.wait, es.best, es.bestEpoch = int(wait), best, int(bestEpoch)
	es.stoppedEpoch, es.lastEpoch, es.bestWeights = int(stopped), int(last), w
	es.restored = true
	return nil
}
