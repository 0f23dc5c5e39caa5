package checkpoint

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/train"
)

// HistoryLogger writes the per-epoch logs to a CSV file, a JSON file, or
// both, rewriting them atomically at the end of every epoch so that a crash
// leaves the history of the epochs completed so far.
//
// Each row has "epoch" (1-based) first, then every metric in sorted order; the
// columns are the union of the keys of all rows, and a row without a metric
// leaves its cell empty (CSV) or omits it (JSON). Values are written with the
// fewest digits that read back exactly; in JSON a NaN or infinite value is
// null, in CSV it is NaN, +Inf or -Inf.
//
// On a resumed run it starts from Context.History, so the files continue the
// history of the interrupted run rather than restarting it.
//
// With Report set, the JSON file is an object instead of an array:
//
//	{
//	  "epochs": [
//	    {"epoch": 1, "loss": ...},
//	    ...
//	  ],
//	  "overfitting": {"verdict": ..., "best": {...}, "last": {...}, ...}
//	}
//
// where "overfitting" is Overfitting(rows, Defences) over the epochs so
// far; ReadHistory reads either form.
type HistoryLogger struct {
	CSVPath  string // "" for no CSV file
	JSONPath string // "" for no JSON file
	Report   bool   // add the overfitting report to the JSON file
	Defences []Defence

	rows  []train.Logs
	wrote bool
}

// Wrote reports whether the files were written since training (or a
// resume) began: a resumed run that completes no epoch writes none.
func (h *HistoryLogger) Wrote() bool { return h.wrote }

// Validate checks that the output folders exist and are writable.
func (h *HistoryLogger) Validate() error {
	for _, p := range []string{h.CSVPath, h.JSONPath} {
		if p != "" {
			if err := CheckWritable(p); err != nil {
				return fmt.Errorf("history: %w", err)
			}
		}
	}
	return nil
}

func (h *HistoryLogger) OnTrainBegin(c *train.Context) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.rows, h.wrote = nil, false
	for i, l := range c.History() {
		h.rows = append(h.rows, withEpoch(l, i))
	}
	return nil
}

func withEpoch(l train.Logs, epoch int) train.Logs {
	r := make(train.Logs, len(l)+1)
	for k, v := range l {
		r[k] = v
	}
	if _, ok := r["epoch"]; !ok {
		r["epoch"] = float64(epoch + 1)
	}
	return r
}

func (h *HistoryLogger) OnEpochEnd(c *train.Context, epoch int, logs train.Logs) error {
	r := withEpoch(logs, epoch)
	r["epoch"] = float64(epoch + 1)
	h.rows = append(h.rows, r)
	return h.flush()
}

// Rows returns the rows logged so far.
func (h *HistoryLogger) Rows() []train.Logs { return h.rows }

func (h *HistoryLogger) columns() []string {
	seen := map[string]bool{}
	for _, r := range h.rows {
		for k := range r {
			seen[k] = true
		}
	}
	delete(seen, "epoch")
	return append([]string{"epoch"}, sortedKeys(seen)...)
}

func (h *HistoryLogger) flush() error {
	cols := h.columns()
	if h.CSVPath != "" {
		err := atomicfile.Write(h.CSVPath, func(w io.Writer) error { return writeCSV(w, cols, h.rows) })
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	if h.JSONPath != "" {
		write := func(w io.Writer) error { return writeJSON(w, cols, h.rows, "") }
		if h.Report {
			write = func(w io.Writer) error { return writeReportJSON(w, cols, h.rows, h.Defences) }
		}
		err := atomicfile.Write(h.JSONPath, write)
		if err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	h.wrote = true
	return nil
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func writeCSV(w io.Writer, cols []string, rows []train.Logs) error {
	bw := bufio.NewWriter(w)
	for i, c := range cols {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(csvField(c))
	}
	bw.WriteByte('\n')
	for _, r := range rows {
		for i, c := range cols {
			if i > 0 {
				bw.WriteByte(',')
			}
			if v, ok := r[c]; ok {
				bw.WriteString(formatNumber(v))
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// csvField quotes a header name that holds a comma, quote or newline.
func csvField(s string) string {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// writeJSON writes the rows as an array of objects, one a line, each line
// indented by indent and two spaces.
func writeJSON(w io.Writer, cols []string, rows []train.Logs, indent string) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("[")
	for i, r := range rows {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n" + indent + "  {")
		first := true
		for _, c := range cols {
			v, ok := r[c]
			if !ok {
				continue
			}
			if !first {
				bw.WriteString(", ")
			}
			first = false
			k, _ := json.Marshal(c)
			bw.Write(k)
			bw.WriteString(": ")
			if math.IsNaN(v) || math.IsInf(v, 0) {
				bw.WriteString("null")
			} else {
				bw.WriteString(formatNumber(v))
			}
		}
		bw.WriteString("}")
	}
	bw.WriteString("\n" + indent + "]\n")
	return bw.Flush()
}

// writeReportJSON writes {"epochs": rows, "overfitting": report}.
func writeReportJSON(w io.Writer, cols []string, rows []train.Logs, defences []Defence) error {
	report, err := json.MarshalIndent(Overfitting(rows, defences), "  ", "  ")
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, "{\n  \"epochs\": "); err != nil {
		return err
	}
	var arr strings.Builder
	if err := writeJSON(&arr, cols, rows, "  "); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s,\n  \"overfitting\": %s\n}\n", strings.TrimSuffix(arr.String(), "\n"), report)
	return err
}

// ReadHistory reads a history JSON file as HistoryLogger writes it: an
// array of epochs, or, with Report, an object with the epochs and the
// overfitting report (nil for the array form). NaN and infinite values,
// written as null, come back as NaN.
func ReadHistory(b []byte) ([]train.Logs, *OverfittingReport, error) {
	var doc struct {
		Epochs      []map[string]*float64 `json:"epochs"`
		Overfitting *OverfittingReport    `json:"overfitting"`
	}
	t := strings.TrimSpace(string(b))
	if strings.HasPrefix(t, "[") {
		if err := json.Unmarshal(b, &doc.Epochs); err != nil {
			return nil, nil, fmt.Errorf("history: %w", err)
		}
	} else if err := json.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("history: %w", err)
	} else if doc.Epochs == nil {
		return nil, nil, fmt.Errorf("history: no \"epochs\" array")
	}
	rows := make([]train.Logs, len(doc.Epochs))
	for i, e := range doc.Epochs {
		rows[i] = train.Logs{}
		for k, v := range e {
			if v == nil {
				rows[i][k] = math.NaN()
			} else {
				rows[i][k] = *v
			}
		}
	}
	return rows, doc.Overfitting, nil
}

func (h *HistoryLogger) OnTrainEnd(*train.Context, train.Logs) error      { return nil }
func (h *HistoryLogger) OnEpochBegin(*train.Context, int) error           { return nil }
func (h *HistoryLogger) OnBatchBegin(*train.Context, int) error           { return nil }
func (h *HistoryLogger) OnBatchEnd(*train.Context, int, train.Logs) error { return nil }
