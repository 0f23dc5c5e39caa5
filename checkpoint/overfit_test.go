package checkpoint

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/train"
)

// epochs builds a history from parallel loss and val_loss series (NaN:
// the metric is missing that epoch).
func epochs(loss, val []float64) []train.Logs {
	out := make([]train.Logs, len(loss))
	for i := range loss {
		out[i] = train.Logs{"loss": loss[i]}
		if !math.IsNaN(val[i]) {
			out[i]["val_loss"] = val[i]
		}
	}
	return out
}

func TestOverfitting(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name           string
		loss, val      []float64
		verdict        string
		best, last     int
		divergedAfter  int
		bestGap, lastG float64
	}{
		{"no validation", []float64{1, 0.5}, []float64{nan, nan}, VerdictNoValidation, 0, 0, 0, 0, 0},
		{"still improving", []float64{1, 0.5, 0.25}, []float64{1.5, 1, 0.75}, VerdictImproving, 3, 3, 0, 0.5, 0.5},
		// val_loss lowest at epoch 2, training loss falls on: overfitting after 2.
		{"overfitting", []float64{1, 0.5, 0.25, 0.125}, []float64{1.5, 0.75, 1, 1.25}, VerdictOverfitting, 2, 4, 2, 0.25, 1.125},
		// Both flat after the best epoch.
		{"stalled", []float64{1, 0.5, 0.5, 0.75}, []float64{1.5, 0.75, 1, 1}, VerdictStalled, 2, 4, 0, 0.25, 0.25},
		// Ties keep the first epoch; a missing val_loss is skipped.
		{"ties and gaps", []float64{1, 0.5, 0.25, 0.125}, []float64{0.75, nan, 0.75, 1}, VerdictOverfitting, 1, 4, 1, -0.25, 0.875},
		// A non-finite val_loss never counts as the best.
		{"non-finite", []float64{1, 0.5}, []float64{math.Inf(-1), 0.75}, VerdictImproving, 2, 2, 0, 0.25, 0.25},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Overfitting(epochs(c.loss, c.val), []Defence{{Name: "augmentation"}})
			if r.Verdict != c.verdict || r.DivergedAfter != c.divergedAfter || r.Epochs != len(c.loss) || len(r.Defences) != 1 {
				t.Fatalf("report %+v: want verdict %s, diverged after %d", r, c.verdict, c.divergedAfter)
			}
			if c.best == 0 {
				if r.Best != nil || r.Last != nil {
					t.Errorf("best %+v, last %+v without validation", r.Best, r.Last)
				}
				return
			}
			if r.Best.Epoch != c.best || r.Last.Epoch != c.last || r.Best.LossGap != c.bestGap || r.Last.LossGap != c.lastG {
				t.Errorf("best %+v, last %+v; want epochs %d, %d with loss gaps %g, %g", r.Best, r.Last, c.best, c.last, c.bestGap, c.lastG)
			}
			if r.Best.AccuracyGap != nil {
				t.Errorf("accuracy gap %v without accuracy", *r.Best.AccuracyGap)
			}
		})
	}
	h := []train.Logs{{"loss": 1, "val_loss": 2, "accuracy": 0.75, "val_accuracy": 0.5}}
	r := Overfitting(h, nil)
	if g := r.Best; g.AccuracyGap == nil || *g.AccuracyGap != 0.25 || *g.Accuracy != 0.75 || *g.ValAccuracy != 0.5 {
		t.Errorf("accuracy gap: %+v", g)
	}
}

// TestHistoryReport: with Report, history.json is an object with the
// epochs and the report over them, rewritten each epoch; ReadHistory reads
// it and the plain array form back.
func TestHistoryReport(t *testing.T) {
	dir := t.TempDir()
	def := []Defence{{Name: "weight decay", On: true, Setting: "0.0005 l2"}, {Name: "early stopping", Enable: "--early-stopping val_loss:5"}}
	h := &HistoryLogger{JSONPath: filepath.Join(dir, "h.json"), Report: true, Defences: def}
	logs := []train.Logs{
		{"loss": 1, "val_loss": 1.5},
		{"loss": 0.5, "val_loss": 0.75, "accuracy": 0.5},
		{"loss": 0.25, "val_loss": math.NaN()},
		{"loss": 0.125, "val_loss": 1},
	}
	f := newFakeFit(t, h)
	if _, err := f.run(0, logs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(h.JSONPath)
	if err != nil {
		t.Fatal(err)
	}
	wantStart := `{
  "epochs": [
    {"epoch": 1, "loss": 1, "val_loss": 1.5},
    {"epoch": 2, "accuracy": 0.5, "loss": 0.5, "val_loss": 0.75},
    {"epoch": 3, "loss": 0.25, "val_loss": null},
    {"epoch": 4, "loss": 0.125, "val_loss": 1}
  ],
  "overfitting": {
    "verdict": "overfitting",
`
	if !strings.HasPrefix(string(b), wantStart) || !strings.HasSuffix(string(b), "\n  }\n}\n") {
		t.Errorf("history JSON:\n%s\nwant it to start:\n%s", b, wantStart)
	}
	var any map[string]any
	if err := json.Unmarshal(b, &any); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	rows, rep, err := ReadHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[1]["accuracy"] != 0.5 || !math.IsNaN(rows[2]["val_loss"]) || rows[3]["epoch"] != 4 {
		t.Errorf("rows read back: %v", rows)
	}
	want := Overfitting(h.Rows(), def)
	if rep == nil || !reflect.DeepEqual(*rep, want) {
		t.Errorf("report read back %+v, want %+v", rep, want)
	}
	if rep.Verdict != VerdictOverfitting || rep.DivergedAfter != 2 || rep.Last.Epoch != 4 {
		t.Errorf("report %+v: want overfitting after epoch 2, last epoch 4", rep)
	}

	// The array form, as HistoryLogger writes without Report.
	rows, rep, err = ReadHistory([]byte(`[{"epoch": 1, "loss": 2}, {"epoch": 2, "loss": null}]`))
	if err != nil || rep != nil || len(rows) != 2 || rows[0]["loss"] != 2 || !math.IsNaN(rows[1]["loss"]) {
		t.Errorf("array form: %v, %v, %v", rows, rep, err)
	}
	for _, bad := range []string{``, `{"overfitting": {}}`, `[1, 2]`, `{"epochs": 3}`, `not json`} {
		if _, _, err := ReadHistory([]byte(bad)); err == nil {
			t.Errorf("ReadHistory(%q) succeeded", bad)
		}
	}
}
