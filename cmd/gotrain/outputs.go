package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gotrain/gotrain/checkpoint"
)

// runOutputs are the files a training run may write. A resumed run writes
// only some of them (best_model.onnx only when an epoch improves on the best
// of the whole run, the history only when an epoch completes), so the
// listing at the end names only what this run wrote, and says where the
// earlier files are.
type runOutputs struct {
	best         *checkpoint.ModelCheckpoint
	history      *checkpoint.HistoryLogger
	last, curves string
	out          string // the output folder
	resume       string // the state file resumed from; "" for a fresh run
}

// report prints the listing and returns the best model's path, or "" when
// there is none to evaluate.
func (o runOutputs) report(w io.Writer) string {
	bestPath := ""
	monitor := o.best.Monitor
	if monitor == "" {
		monitor = "val_loss"
	}
	switch written := o.best.Written(); {
	case len(written) > 0:
		bestPath = written[len(written)-1]
		fmt.Fprintf(w, "best model: %s\n", bestPath)
	case o.best.Earlier() != "":
		bestPath = o.best.Earlier()
		what := ""
		if v, ep, ok := o.best.Best(); ok {
			what = fmt.Sprintf(" (%s %s, epoch %d)", monitor, num(v), ep)
		}
		gone := ""
		if _, err := os.Stat(bestPath); err != nil {
			gone, bestPath = " (no longer there)", ""
		}
		if o.best.SaveBestOnly {
			fmt.Fprintf(w, "best model: not written: no epoch improved on the best since the resume; that one%s is %s%s\n", what, o.best.Earlier(), gone)
		} else {
			fmt.Fprintf(w, "best model: not written: no epoch was completed since the resume; the last one written is %s%s\n", o.best.Earlier(), gone)
		}
	default:
		fmt.Fprintln(w, "best model: not written: no epoch was completed with a finite "+monitor)
	}
	fmt.Fprintf(w, "last model: %s\n", o.last)
	if o.history.Wrote() {
		fmt.Fprintf(w, "history: %s\n", o.history.CSVPath)
	} else {
		fmt.Fprintln(w, "history: not written: no epoch was completed")
	}
	fmt.Fprintf(w, "learning curves: %s\n", o.curves)
	if o.resume != "" {
		if dir := filepath.Dir(o.resume); !sameFile(dir, o.out) {
			fmt.Fprintf(w, "earlier files (before the resume): %s\n", dir)
		}
	}
	return bestPath
}

// sameFile reports whether two paths name the same existing file or folder.
func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
