package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/gotrain/gotrain/checkpoint"
)

func newCompareCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compare RUN_DIR...",
		Short: "compare runs: best validation metrics, gaps, and their validation curves in one PNG",
		Long: `Compare training runs side by side: for each run folder (train's --out, or
its history.json) the best validation loss and accuracy, the train/validation
gap at the best and the last epoch, where validation loss stopped improving,
and which defences against overfitting were on. The validation curves of all
runs are drawn in one PNG: how to see which defence helped.`,
		Example: `  gotrain compare out/plain out/augment out/weight-decay out/early-stopping --out compare.png`,
	}
	fs := cmd.Flags()
	out := fs.String("out", "compare.png", "PNG file for the runs' validation curves")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if len(args) == 0 {
			return usagef("need at least one run folder (train's --out) or history.json")
		}
		var runs []compareRun
		var reports []checkpoint.OverfittingReport
		for _, a := range args {
			path := a
			if st, err := os.Stat(a); err == nil && st.IsDir() {
				path = filepath.Join(a, "history.json")
			}
			b, err := readHistoryFile(path)
			if err != nil {
				return err
			}
			h, rep, err := checkpoint.ReadHistory(b)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if len(h) == 0 {
				return fmt.Errorf("%s: no epochs", path)
			}
			if rep == nil {
				// A history written without the report: the gaps still
				// follow from the epochs, the defences are not known.
				r := checkpoint.Overfitting(h, nil)
				rep = &r
			}
			runs = append(runs, compareRun{Label: a, History: h})
			reports = append(reports, *rep)
		}
		labels(runs)
		printCompare(stdout, runs, reports)
		fmt.Fprintln(stdout)
		curves := 0
		for _, r := range runs {
			if len(series(r.History, "val_loss")) > 0 {
				curves++
			} else {
				fmt.Fprintf(stdout, "%s: no validation data, so no curve\n", r.Label)
			}
		}
		if curves == 0 {
			fmt.Fprintln(stdout, "validation curves: none drawn: no run has validation data")
			return nil
		}
		if err := plotCompare(*out, runs); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "validation curves: %s\n", *out)
		return nil
	}
	return cmd
}

// maxHistorySize bounds a history.json: a few hundred bytes an epoch.
const maxHistorySize = 64 << 20

// readHistoryFile reads a run's history.json, up to maxHistorySize (a
// path such as /dev/zero is not read to the end).
func readHistoryFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("run %s: %v (expected a train --out folder or its history.json)", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxHistorySize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxHistorySize {
		return nil, fmt.Errorf("%s: larger than %d MiB: not a history.json that train wrote", path, maxHistorySize>>20)
	}
	return b, nil
}

// labels shortens the runs' labels to their folder names where those are
// distinct.
func labels(runs []compareRun) {
	seen := map[string]int{}
	short := make([]string, len(runs))
	for i, r := range runs {
		p := strings.TrimSuffix(r.Label, "/history.json")
		if strings.HasSuffix(p, ".json") {
			p = strings.TrimSuffix(p, ".json")
		}
		short[i] = filepath.Base(filepath.Clean(p))
		seen[short[i]]++
	}
	for i := range runs {
		if seen[short[i]] == 1 {
			runs[i].Label = short[i]
		}
	}
}

// printCompare prints one row per run.
func printCompare(w io.Writer, runs []compareRun, reports []checkpoint.OverfittingReport) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tepochs\tbest epoch\tval_loss\tval_accuracy\tgap at best (loss, acc)\tgap at last (loss, acc)\toverfitting after\tdefences on")
	for i, r := range reports {
		row := []string{runs[i].Label, strconv.Itoa(r.Epochs)}
		if r.Best == nil {
			row = append(row, "-", "-", "-", "-", "-", "no validation")
		} else {
			acc := "-"
			if r.Best.ValAccuracy != nil {
				acc = fmt.Sprintf("%.2f%%", 100**r.Best.ValAccuracy)
			}
			after := "-"
			switch r.Verdict {
			case checkpoint.VerdictOverfitting:
				after = "epoch " + strconv.Itoa(r.DivergedAfter)
			case checkpoint.VerdictImproving:
				after = "still improving"
			case checkpoint.VerdictStalled:
				after = "stalled"
			}
			row = append(row, strconv.Itoa(r.Best.Epoch), num(r.Best.ValLoss), acc, gapCell(r.Best), gapCell(r.Last), after)
		}
		var on []string
		for _, d := range r.Defences {
			if d.On {
				on = append(on, d.Name)
			}
		}
		switch {
		case r.Defences == nil:
			row = append(row, "(not recorded)")
		case len(on) == 0:
			row = append(row, "none")
		default:
			row = append(row, strings.Join(on, ", "))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// gapCell is an epoch's loss gap and accuracy gap (points).
func gapCell(g *checkpoint.EpochGap) string {
	s := signed(g.LossGap)
	if g.AccuracyGap != nil {
		s += ", " + signedPoints(*g.AccuracyGap)
	}
	return s
}
