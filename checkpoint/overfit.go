package checkpoint

import (
	"math"

	"github.com/gotrain/gotrain/train"
)

// OverfittingReport says how far a run's training and validation metrics
// moved apart: the gap at the epoch with the lowest validation loss and at
// the last epoch, whether (and after which epoch) the validation loss
// stopped improving while the training loss kept falling, and which
// defences against overfitting the run had on.
//
// Training metrics are the means over each epoch's batches, with
// augmentation and dropout on, as Keras reports them; validation metrics
// are computed after the epoch in inference mode. So at the first epochs
// the training loss can be above the validation loss, a negative gap.
type OverfittingReport struct {
	// Verdict is one of:
	//   "no_validation"   no val_loss in the history: nothing measures the gap
	//   "still_improving" the validation loss was lowest at the last epoch
	//   "overfitting"     after epoch DivergedAfter the validation loss did
	//                     not improve while the training loss kept falling
	//   "stalled"         after the best epoch neither loss improved
	Verdict string `json:"verdict"`
	Epochs  int    `json:"epochs"`
	// Best is the epoch with the lowest val_loss (the first, on ties), Last
	// the last epoch; nil without validation.
	Best *EpochGap `json:"best,omitempty"`
	Last *EpochGap `json:"last,omitempty"`
	// DivergedAfter is the 1-based epoch after which the validation loss
	// stopped improving while the training loss kept falling (Verdict
	// "overfitting"); 0 otherwise.
	DivergedAfter int `json:"diverged_after_epoch,omitempty"`
	// Defences are the run's defences against overfitting, as the caller
	// described them.
	Defences []Defence `json:"defences,omitempty"`
}

// EpochGap is one epoch's training and validation metrics and their gaps:
// LossGap is val_loss - loss; AccuracyGap is accuracy - val_accuracy (a
// fraction; nil when the run has no accuracy).
type EpochGap struct {
	Epoch       int      `json:"epoch"`
	Loss        float64  `json:"loss"`
	ValLoss     float64  `json:"val_loss"`
	LossGap     float64  `json:"loss_gap"`
	Accuracy    *float64 `json:"accuracy,omitempty"`
	ValAccuracy *float64 `json:"val_accuracy,omitempty"`
	AccuracyGap *float64 `json:"accuracy_gap,omitempty"`
}

// Defence is one defence against overfitting: whether it was on, its
// setting when on, and how to turn it on when off (for a CLI, the flag).
type Defence struct {
	Name    string `json:"name"`
	On      bool   `json:"on"`
	Setting string `json:"setting,omitempty"`
	Enable  string `json:"enable,omitempty"`
}

// Verdicts of an OverfittingReport.
const (
	VerdictNoValidation = "no_validation"
	VerdictImproving    = "still_improving"
	VerdictOverfitting  = "overfitting"
	VerdictStalled      = "stalled"
)

// Overfitting builds the report from a history (one Logs per epoch, as
// train.Result.History). Epochs whose loss or val_loss is missing or not
// finite are skipped.
func Overfitting(history []train.Logs, defences []Defence) OverfittingReport {
	r := OverfittingReport{Epochs: len(history), Defences: defences, Verdict: VerdictNoValidation}
	best, last := -1, -1
	for i, l := range history {
		if !finite(l, "val_loss") || !finite(l, "loss") {
			continue
		}
		if best < 0 || l["val_loss"] < history[best]["val_loss"] {
			best = i
		}
		last = i
	}
	if best < 0 {
		return r
	}
	r.Best, r.Last = gapAt(history, best), gapAt(history, last)
	switch {
	case best == last:
		r.Verdict = VerdictImproving
	case history[last]["loss"] < history[best]["loss"]:
		r.Verdict, r.DivergedAfter = VerdictOverfitting, best+1
	default:
		r.Verdict = VerdictStalled
	}
	return r
}

func finite(l train.Logs, k string) bool {
	v, ok := l[k]
	return ok && !math.IsNaN(v) && !math.IsInf(v, 0)
}

func gapAt(history []train.Logs, i int) *EpochGap {
	l := history[i]
	g := &EpochGap{Epoch: i + 1, Loss: l["loss"], ValLoss: l["val_loss"], LossGap: l["val_loss"] - l["loss"]}
	if finite(l, "accuracy") && finite(l, "val_accuracy") {
		a, v := l["accuracy"], l["val_accuracy"]
		d := a - v
		g.Accuracy, g.ValAccuracy, g.AccuracyGap = &a, &v, &d
	}
	return g
}
