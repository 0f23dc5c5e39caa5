package checkpoint

import (
	"fmt"
	"io"
	"math"

	"github.com/gotrain/gotrain/train"
)

// TerminateOnNaN stops training as soon as the loss of a batch (or of an
// epoch, for loops that report only those) is NaN or infinite. It does not
// touch any file: the checkpoints written before the divergence stay, and
// ModelCheckpoint refuses to write non-finite weights over them.
type TerminateOnNaN struct {
	Log io.Writer // where to say why it stopped; nil for silence

	reason string
}

// Terminated returns the reason it stopped training, or "".
func (t *TerminateOnNaN) Terminated() string { return t.reason }

func (t *TerminateOnNaN) check(c *train.Context, where string, logs train.Logs) {
	l, ok := logs["loss"]
	if !ok || !(math.IsNaN(l) || math.IsInf(l, 0)) || t.reason != "" {
		return
	}
	t.reason = fmt.Sprintf("loss is %v at %s (step %d); training stopped, the checkpoints written before it are kept", l, where, c.Step)
	c.StopTraining(t.reason)
	if t.Log != nil {
		fmt.Fprintln(t.Log, "TerminateOnNaN: "+t.reason)
	}
}

func (t *TerminateOnNaN) OnTrainBegin(*train.Context) error { t.reason = ""; return nil }

func (t *TerminateOnNaN) OnBatchEnd(c *train.Context, batch int, logs train.Logs) error {
	t.check(c, fmt.Sprintf("epoch %d batch %d", c.Epoch+1, batch+1), logs)
	return nil
}

func (t *TerminateOnNaN) OnEpochEnd(c *train.Context, epoch int, logs train.Logs) error {
	t.check(c, fmt.Sprintf("the end of epoch %d", epoch+1), logs)
	return nil
}

func (t *TerminateOnNaN) OnTrainEnd(*train.Context, train.Logs) error { return nil }
func (t *TerminateOnNaN) OnEpochBegin(*train.Context, int) error      { return nil }
func (t *TerminateOnNaN) OnBatchBegin(*train.Context, int) error      { return nil }
