package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/checkpoint"
)

// metaClassNames is the model metadata key under which train records the
// data's class names (a JSON array), for predict.
const metaClassNames = "gotrain.class_names"

// defences lists the run's defences against overfitting, with the flag
// that turns each on; augmentation only for data that are images
// (features says they are feature vectors).
func (f *trainFlags) defences(features bool) []checkpoint.Defence {
	var out []checkpoint.Defence
	aug := checkpoint.Defence{Name: "augmentation", Enable: "--augment rotation=10,shift=0.1,zoom=0.1"}
	if f.Augment != "" {
		aug.On, aug.Setting, aug.Enable = true, f.Augment, ""
	}
	if !features {
		out = append(out, aug)
	}
	wd := checkpoint.Defence{Name: "weight decay", Enable: "--weight-decay 5e-4"}
	if f.WeightDecay > 0 {
		mode := f.DecayMode
		if strings.EqualFold(f.Optimizer, "adamw") {
			mode = "decoupled"
		}
		wd.On, wd.Setting, wd.Enable = true, strconv.FormatFloat(f.WeightDecay, 'g', -1, 64)+" "+mode, ""
	}
	es := checkpoint.Defence{Name: "early stopping", Enable: "--early-stopping val_loss:5"}
	if f.ValSplit == 0 && f.ValData == "" {
		es.Enable = "--val-split 0.1 " + es.Enable // val_loss needs validation data
	}
	if f.EarlyStopping != "" {
		es.On, es.Setting, es.Enable = true, f.EarlyStopping, ""
	}
	return append(out, wd, es)
}

// printReport prints the overfitting report after a run.
func printReport(w io.Writer, r checkpoint.OverfittingReport, valSamples int) {
	fmt.Fprintf(w, "\nOverfitting report")
	if r.Best == nil {
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, " (validation: %d samples; training metrics are means over each epoch's batches, with any augmentation and dropout)\n", valSamples)
		fmt.Fprintf(w, "  best epoch %-4s %s\n", strconv.Itoa(r.Best.Epoch)+":", gapLine(r.Best))
		fmt.Fprintf(w, "  last epoch %-4s %s\n", strconv.Itoa(r.Last.Epoch)+":", gapLine(r.Last))
	}
	fmt.Fprintf(w, "  %s\n", verdictText(r))
	var on, off []string
	for _, d := range r.Defences {
		if d.On {
			on = append(on, fmt.Sprintf("%s (%s)", d.Name, d.Setting))
		} else {
			off = append(off, fmt.Sprintf("%s (%s)", d.Name, d.Enable))
		}
	}
	if len(on) > 0 {
		fmt.Fprintf(w, "  defences on:  %s\n", strings.Join(on, ", "))
	}
	if len(off) > 0 {
		fmt.Fprintf(w, "  defences off: %s\n", strings.Join(off, ", "))
	}
}

// gapLine is one epoch's train/validation figures and gaps.
func gapLine(g *checkpoint.EpochGap) string {
	s := fmt.Sprintf("loss %s, val_loss %s (gap %s)", num(g.Loss), num(g.ValLoss), signed(g.LossGap))
	if g.AccuracyGap != nil {
		s += fmt.Sprintf("; accuracy %s, val_accuracy %s (gap %s points)", num(*g.Accuracy), num(*g.ValAccuracy), signedPoints(*g.AccuracyGap))
	}
	return s
}

func signed(v float64) string {
	if v >= 0 {
		return "+" + num(v)
	}
	return num(v)
}

// signedPoints is a fraction's difference in percentage points.
func signedPoints(v float64) string { return fmt.Sprintf("%+.2f", 100*v) }

// verdictText says in words what the report found.
func verdictText(r checkpoint.OverfittingReport) string {
	switch r.Verdict {
	case checkpoint.VerdictNoValidation:
		return "no validation data (--val-split 0): nothing measured the gap; hold data out with --val-split 0.1 or --val-data"
	case checkpoint.VerdictImproving:
		return fmt.Sprintf("validation loss was still falling at the last epoch (%d): no sign of overfitting yet; more epochs may help", r.Last.Epoch)
	case checkpoint.VerdictOverfitting:
		return fmt.Sprintf("overfitting after epoch %d: validation loss stopped improving there while training loss kept falling (%s -> %s); the loss gap grew from %s to %s",
			r.DivergedAfter, num(r.Best.Loss), num(r.Last.Loss), signed(r.Best.LossGap), signed(r.Last.LossGap))
	case checkpoint.VerdictStalled:
		return fmt.Sprintf("stalled: neither validation nor training loss improved after epoch %d; a lower learning rate (--reduce-lr-on-plateau val_loss:3) may help", r.Best.Epoch)
	}
	return r.Verdict
}
