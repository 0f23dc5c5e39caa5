package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/gotrain/gotrain/train"
)

// epochLog prints training progress as Keras does:
//
//	Epoch 3/15
//	50/50 - 1.2s - 1342 samples/s - loss: 0.2051 - accuracy: 0.9387 - val_loss: 0.1507 - val_accuracy: 0.9550 - val_top5_accuracy: 0.9975
//
// one header and one line per epoch, numbers with 4 significant digits. On
// a terminal the line is a live bar while the epoch runs, replaced by the
// final line (with the validation metrics) when it ends. It is the fit's
// Progress function and a callback; it must come first among the callbacks
// so its line precedes their messages, which go through messages().
type epochLog struct {
	train.NopCallback
	w       io.Writer
	tty     bool
	epochs  int
	showLR  bool
	resume  string // "(resumed from ...)" for the first epoch header, or ""
	last    train.Progress
	barOpen bool      // a bar line without its newline is on the terminal
	drawn   time.Time // when the bar was last drawn
}

func newEpochLog(w io.Writer, epochs int, showLR bool) *epochLog {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &epochLog{w: w, tty: tty, epochs: epochs, showLR: showLR}
}

// resumed notes that the run continues from a training-state file, for the
// first epoch's header.
func (p *epochLog) resumed(path string, st *train.State) {
	done := plural(st.Epoch, "epoch")
	if st.BatchInEpoch > 0 {
		done += " and " + plural(st.BatchInEpoch, "batch")
	}
	p.resume = fmt.Sprintf(" (resumed from %s: %s done, step %d)", path, done, st.Step)
}

func (p *epochLog) OnEpochBegin(c *train.Context, epoch int) error {
	p.endBar()
	fmt.Fprintf(p.w, "Epoch %d/%d%s\n", epoch+1, p.epochs, p.resume)
	p.resume = ""
	p.last = train.Progress{}
	return nil
}

// progress is train.Config.Progress: it keeps the epoch's figures and, on
// a terminal, redraws the bar.
func (p *epochLog) progress(pr train.Progress) {
	p.last = pr
	// Ten redraws a second are enough for the eye.
	if !p.tty || (time.Since(p.drawn) < 100*time.Millisecond && pr.Batch < pr.Batches) {
		return
	}
	p.drawn = time.Now()
	const width = 30
	done := pr.Batch * width / max(pr.Batches, 1)
	bar := strings.Repeat("=", done)
	if done < width {
		bar += ">" + strings.Repeat(".", width-done-1)
	}
	eta := time.Duration(float64(pr.Elapsed) * float64(pr.Batches-pr.Batch) / float64(max(pr.Batch, 1)))
	fmt.Fprintf(p.w, "\r%d/%d [%s] - ETA %s - loss: %s - accuracy: %s\x1b[K", pr.Batch, pr.Batches, bar, eta.Round(time.Second), num(pr.Loss), num(pr.Accuracy))
	p.barOpen = true
}

func (p *epochLog) OnEpochEnd(c *train.Context, epoch int, logs train.Logs) error {
	var b strings.Builder
	if p.tty {
		b.WriteString("\r")
	}
	pr := p.last
	if pr.Batches > 0 {
		fmt.Fprintf(&b, "%d/%d - %s - %.0f samples/s - ", pr.Batches, pr.Batches, seconds(pr.Elapsed), pr.SamplesPerSec)
	}
	b.WriteString(formatLogs(logs, p.showLR))
	if p.tty {
		b.WriteString("\x1b[K")
	}
	fmt.Fprintln(p.w, b.String())
	p.barOpen = false
	return nil
}

func (p *epochLog) OnTrainEnd(*train.Context, train.Logs) error {
	p.endBar()
	return nil
}

// endBar ends an open bar line, so the next output starts a line.
func (p *epochLog) endBar() {
	if p.barOpen {
		fmt.Fprintln(p.w)
		p.barOpen = false
	}
}

// messages is the writer for other callbacks' messages: it ends an open
// bar line before each.
func (p *epochLog) messages() io.Writer { return messageWriter{p} }

type messageWriter struct{ p *epochLog }

func (m messageWriter) Write(b []byte) (int, error) {
	m.p.endBar()
	return m.p.w.Write(b)
}

// formatLogs writes an epoch's metrics as Keras does: loss, accuracy, the
// other training metrics, then the validation ones in the same order, as
// "name: value" with 4 significant digits; lr last when showLR.
func formatLogs(logs train.Logs, showLR bool) string {
	rank := func(k string) int {
		switch strings.TrimPrefix(k, "val_") {
		case "loss":
			return 0
		case "accuracy":
			return 1
		}
		return 2
	}
	var keys []string
	for k := range logs {
		if k != "lr" {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		va, vb := strings.HasPrefix(a, "val_"), strings.HasPrefix(b, "val_")
		if va != vb {
			return vb
		}
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return a < b
	})
	if _, ok := logs["lr"]; ok && showLR {
		keys = append(keys, "lr")
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + num(logs[k])
	}
	return strings.Join(parts, " - ")
}

// num formats a metric with 4 significant digits, keeping trailing zeros
// (0.9000, 0.08345, 2.303, 1.000e-05, 1235).
func num(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%#.4g", v), ".") }

// seconds formats a duration for an epoch line: 80ms, 1.2s, 12s, 3m05s.
func seconds(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}

// plural is "1 epoch", "2 epochs", "3 batches".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	if strings.HasSuffix(what, "ch") && !strings.HasSuffix(what, "och") { // batches, not epoches
		return fmt.Sprintf("%d %ses", n, what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}
