package checkpoint

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gotrain/gotrain/train"
)

// Format is what a ModelCheckpoint writes.
type Format int

const (
	// ONNX writes the model with the current weights as an ONNX file (Export).
	ONNX Format = iota
	// TrainingState writes a resumable training-state file (SaveState).
	TrainingState
)

func (f Format) String() string {
	if f == TrainingState {
		return "training state"
	}
	return "onnx"
}

// ModelCheckpoint saves the model, or the whole training state, during
// training, as Keras's ModelCheckpoint does:
//
//   - Path is a template filled at each save: "{epoch}" is the 1-based epoch
//     number, "{batch}" the 1-based batch within the epoch, "{step}" the
//     optimizer step, and any log name its value: "ckpt-{epoch:02d}-{val_loss:.4f}.onnx".
//   - By default it saves at the end of every epoch; EveryEpochs > 1 saves
//     every that many epochs, and EveryBatches > 0 saves every that many
//     batches instead (counted across epochs), with the batch's logs.
//   - With SaveBestOnly it saves only when Monitor improves on the best value
//     it has seen (Mode and MinDelta as for EarlyStopping); a NaN never does.
//
// It never saves weights that hold NaN or ±Inf (after a divergence, say):
// it skips that save and says so, so the last good checkpoint stays the last
// one written. Every file is written atomically.
//
// When Format is TrainingState, its file holds the states of the Stateful
// callbacks as the fit loop collects them at that moment; put ModelCheckpoint
// after the other callbacks so that their epoch-end updates are included.
//
// Its state in a training-state file (the best value and its epoch, the
// last file written, as an absolute path) is stored under a name made of
// Path's file name, not its folder, so a run resumed into a folder spelled
// or placed differently (relative or absolute, moved, another output
// folder) still knows its best: with SaveBestOnly, an epoch is written only
// when it beats the best of the whole run. If the folder holds no such file
// yet, nothing is written until an epoch improves on that best, and the
// Log says where the best model was written before (Earlier).
type ModelCheckpoint struct {
	Path         string
	Format       Format
	Monitor      string // "" means "val_loss"; used with SaveBestOnly
	Mode         Mode
	MinDelta     float64
	SaveBestOnly bool
	EveryEpochs  int               // save every N epochs (0 or 1: every epoch)
	EveryBatches int               // when > 0, save every N batches instead of at epoch ends
	Metadata     map[string]string // extra metadata_props for ONNX files (the training configuration)
	Log          io.Writer         // where to report saves and skips; nil for silence
	// ID names the callback's state in a training-state file; "" means
	// Path's file name. Set it when two ModelCheckpoints of one run write
	// files of the same name into different folders.
	ID string

	tmpl        *pathTemplate
	mon         monitor
	best        float64
	bestEpoch   int // 1-based; 0 when unknown
	sinceEpochs int
	sinceBatch  int
	lastPath    string
	restored    bool
	earlier     string   // the last file written before a resume
	written     []string // files written since OnTrainBegin
}

// Name identifies the callback's state in train.State.Extra: the ID, by
// default Path's file name, so that it does not depend on the folder.
func (mc *ModelCheckpoint) Name() string { return "ModelCheckpoint(" + mc.id() + ")" }

func (mc *ModelCheckpoint) id() string {
	if mc.ID != "" {
		return mc.ID
	}
	return filepath.Base(mc.Path)
}

// FormerName recognises the name states were stored under before names
// left out the folder, "ModelCheckpoint(<folder>/<file>)", for the same
// file name (train.FormerNamed).
func (mc *ModelCheckpoint) FormerName(key string) bool {
	inner, ok := strings.CutPrefix(key, "ModelCheckpoint(")
	if !ok || mc.ID != "" || !strings.HasSuffix(inner, ")") {
		return false
	}
	return filepath.Base(strings.TrimSuffix(inner, ")")) == filepath.Base(mc.Path)
}

// LastSaved is the path of the last file written, or "".
func (mc *ModelCheckpoint) LastSaved() string { return mc.lastPath }

// Written lists the files written since training (or a resume) began, in
// order; a file written several times is listed once.
func (mc *ModelCheckpoint) Written() []string { return mc.written }

// Earlier is the last file written before the resume this run continues
// (an absolute path), or "" for a run that was not resumed or had written
// nothing.
func (mc *ModelCheckpoint) Earlier() string { return mc.earlier }

// Best is the best monitored value of the whole run so far and its epoch
// (1-based); ok is false before any save with SaveBestOnly.
func (mc *ModelCheckpoint) Best() (value float64, epoch int, ok bool) {
	if !mc.SaveBestOnly || math.IsInf(mc.best, 0) || math.IsNaN(mc.best) {
		return 0, 0, false
	}
	return mc.best, mc.bestEpoch, true
}

// Validate checks the template, mode and frequencies and that the folder
// the files go to exists and is writable. OnTrainBegin calls it; the CLI may
// call it earlier.
func (mc *ModelCheckpoint) Validate() error {
	t, err := parseTemplate(mc.Path)
	if err != nil {
		return fmt.Errorf("ModelCheckpoint: %w", err)
	}
	if mc.Path == "" {
		return fmt.Errorf("ModelCheckpoint: empty path")
	}
	m, err := newMonitor("ModelCheckpoint", mc.Monitor, mc.Mode, mc.MinDelta)
	if err != nil {
		return err
	}
	if mc.EveryEpochs < 0 || mc.EveryBatches < 0 {
		return fmt.Errorf("ModelCheckpoint: every %d epochs / %d batches: expected >= 0", mc.EveryEpochs, mc.EveryBatches)
	}
	if dir := filepath.Dir(mc.Path); !strings.ContainsAny(dir, "{}") {
		if err := CheckWritable(filepath.Join(dir, "checkpoint")); err != nil {
			return fmt.Errorf("ModelCheckpoint %q: %w", mc.Path, err)
		}
	}
	mc.tmpl, mc.mon = t, m
	return nil
}

func (mc *ModelCheckpoint) OnTrainBegin(c *train.Context) error {
	if err := mc.Validate(); err != nil {
		return err
	}
	mc.written = nil
	if mc.restored {
		mc.restored = false
		mc.reportEarlierBest()
		return nil
	}
	mc.best, mc.bestEpoch, mc.sinceEpochs, mc.sinceBatch, mc.lastPath, mc.earlier = mc.mon.worst(), 0, 0, 0, "", ""
	return nil
}

// reportEarlierBest says, on a resume, where the best model so far is when
// this run's Path does not hold it (another folder, a moved one).
func (mc *ModelCheckpoint) reportEarlierBest() {
	v, ep, ok := mc.Best()
	if !ok || mc.earlier == "" || strings.ContainsAny(mc.Path, "{}") {
		return
	}
	here, herr := os.Stat(mc.Path)
	there, terr := os.Stat(mc.earlier)
	if herr == nil && terr == nil && os.SameFile(here, there) {
		return
	}
	gone := ""
	if terr != nil {
		gone = " (no longer there)"
	}
	best := fmt.Sprintf("the best so far (%s %.4g, epoch %d) was written to %s%s", mc.mon.name, v, ep, mc.earlier, gone)
	if herr != nil {
		mc.logf("ModelCheckpoint: %s does not exist; %s; %s is written when an epoch improves on it\n", mc.Path, best, mc.Path)
	} else {
		mc.logf("ModelCheckpoint: %s, not %s; %s is replaced only when an epoch improves on it\n", best, mc.Path, mc.Path)
	}
}

func (mc *ModelCheckpoint) OnBatchEnd(c *train.Context, batch int, logs train.Logs) error {
	if mc.EveryBatches <= 0 {
		return nil
	}
	mc.sinceBatch++
	if mc.sinceBatch < mc.EveryBatches {
		return nil
	}
	mc.sinceBatch = 0
	return mc.maybeSave(c, c.Epoch, batch+1, logs)
}

func (mc *ModelCheckpoint) OnEpochEnd(c *train.Context, epoch int, logs train.Logs) error {
	if mc.EveryBatches > 0 {
		return nil
	}
	mc.sinceEpochs++
	if mc.sinceEpochs < max(mc.EveryEpochs, 1) {
		return nil
	}
	mc.sinceEpochs = 0
	return mc.maybeSave(c, epoch, 0, logs)
}

func (mc *ModelCheckpoint) maybeSave(c *train.Context, epoch, batch int, logs train.Logs) error {
	if mc.SaveBestOnly {
		cur, err := mc.mon.value("ModelCheckpoint", logs)
		if err != nil {
			return err
		}
		if !mc.mon.improves(cur, mc.best) {
			return nil
		}
		mc.best, mc.bestEpoch = cur, epoch+1
	}
	ints := map[string]int64{"epoch": int64(epoch) + 1, "step": c.Step}
	if batch > 0 {
		ints["batch"] = int64(batch)
	}
	path, err := mc.tmpl.render(ints, logs)
	if err != nil {
		return fmt.Errorf("ModelCheckpoint: %w", err)
	}
	if l, ok := logs["loss"]; ok && (math.IsNaN(l) || math.IsInf(l, 0)) {
		mc.logf("ModelCheckpoint: not writing %s: loss is %v; keeping %s\n", path, l, mc.lastOr())
		return nil
	}
	switch mc.Format {
	case TrainingState:
		s, err := c.Snapshot()
		if err != nil {
			return fmt.Errorf("ModelCheckpoint %s: %w", path, err)
		}
		if bad := nonFinite(s.Weights); bad != "" {
			mc.logf("ModelCheckpoint: not writing %s: weight %q holds NaN or Inf; keeping %s\n", path, bad, mc.lastOr())
			return nil
		}
		if err := SaveState(path, s); err != nil {
			return fmt.Errorf("ModelCheckpoint: %w", err)
		}
	default:
		w, err := c.Weights()
		if err != nil {
			return fmt.Errorf("ModelCheckpoint %s: %w", path, err)
		}
		if bad := nonFinite(w); bad != "" {
			mc.logf("ModelCheckpoint: not writing %s: weight %q holds NaN or Inf; keeping %s\n", path, bad, mc.lastOr())
			return nil
		}
		meta := TrainingMetadata(nil, epoch+1, c.Step, logs)
		for k, v := range mc.Metadata {
			meta[k] = v
		}
		if err := Export(c.Model(), w, meta, path); err != nil {
			return fmt.Errorf("ModelCheckpoint: %w", err)
		}
	}
	mc.lastPath = path
	if !slices.Contains(mc.written, path) {
		mc.written = append(mc.written, path)
	}
	mc.logf("ModelCheckpoint: wrote %s (%s, epoch %d)\n", path, mc.Format, epoch+1)
	return nil
}

func (mc *ModelCheckpoint) lastOr() string {
	if mc.lastPath == "" {
		return "no earlier checkpoint"
	}
	return mc.lastPath
}

func (mc *ModelCheckpoint) logf(format string, args ...any) {
	if mc.Log != nil {
		fmt.Fprintf(mc.Log, format, args...)
	}
}

func (mc *ModelCheckpoint) OnTrainEnd(*train.Context, train.Logs) error { return nil }
func (mc *ModelCheckpoint) OnEpochBegin(*train.Context, int) error      { return nil }
func (mc *ModelCheckpoint) OnBatchBegin(*train.Context, int) error      { return nil }

// MarshalState encodes the best value, the save counters, the last path
// (absolute, so that it stays meaningful from another working folder) and
// the best value's epoch.
func (mc *ModelCheckpoint) MarshalState() ([]byte, error) {
	var b bytesBuffer
	e := &encoder{w: &b}
	e.uvarint(stateVersion)
	e.float64(mc.best)
	e.varint(int64(mc.sinceEpochs))
	e.varint(int64(mc.sinceBatch))
	last := mc.lastPath
	if abs, err := filepath.Abs(last); last != "" && err == nil {
		last = abs
	}
	e.string(last)
	e.varint(int64(mc.bestEpoch)) // added later: absent from older states
	return b, e.err
}

// UnmarshalState restores what MarshalState encoded.
func (mc *ModelCheckpoint) UnmarshalState(p []byte) error {
	d, err := decodeCallbackState(p)
	if err != nil {
		return err
	}
	best, se, sb, last := d.float64(), d.varint(), d.varint(), d.string()
	var bestEpoch int64
	if d.err == nil && len(d.b) > 0 {
		bestEpoch = d.varint()
	}
	if err := finishDecode(d); err != nil {
		return err
	}
	mc.best, mc.sinceEpochs, mc.sinceBatch, mc.lastPath, mc.bestEpoch = best, int(se), int(sb), last, int(bestEpoch)
	mc.earlier, mc.written, mc.restored = last, nil, true
	return nil
}
