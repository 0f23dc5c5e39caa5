package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/train"
)

// What a resume may change. A training-state file continues one run; a
// resume whose settings change what is trained would silently be another
// run, so the settings stored in the state (its configuration JSON) are
// compared with this run's:
//
//   - How long and how it is optimized may change, and the change is
//     printed: --epochs, --lr, --momentum, --schedule, --weight-decay,
//     --decay-mode, --clip-norm, --early-stopping (monitor and patience),
//     --save-best-only, --out, --threads, --backend, --top-k, and --model's
//     file name (the model itself must have the same structure: its hash is
//     checked).
//   - --batch-size may change, even mid-epoch: the position in the epoch is
//     stored in samples, so the epoch trains exactly the samples it has left.
//   - --strategy and --replicas may change only when both runs are
//     --deterministic with the same --shard-size, where the result does not
//     depend on them.
//   - The number of workers of a multiworker run (mpirun -np) is not a
//     setting: it may change, and in deterministic mode the run goes on bit
//     for bit as it would have.
//   - Everything that defines the data, the model, the loss or the
//     optimizer's state is refused, naming the setting (resumeRefused); so
//     is training data whose content differs under the same name (its hash
//     is stored in the state). To train on from those weights with other
//     settings, start a new run from a model the first run wrote.
var resumeRefused = map[string]string{
	"data":            "the training data",
	"subset":          "the training data",
	"resize":          "the training data",
	"val_split":       "the split between training and validation data",
	"val_data":        "the validation data, against which the best model so far was chosen",
	"seed":            "the data order, augmentation and dropout",
	"shuffle":         "the data order",
	"augment":         "the augmentation",
	"input":           "the model",
	"classes":         "the model",
	"loss":            "the loss",
	"label_smoothing": "the loss",
	"reduction":       "the loss",
	"optimizer":       "the optimizer, whose state would not fit",
	"freeze":          "which parameters are trained",
	"sync_batchnorm":  "the BatchNorm statistics",
	"deterministic":   "how gradients are reduced",
}

// resumed is a --resume state, read and checked before the data is loaded.
type resumed struct {
	path    string
	state   *train.State
	old     trainFlags // the stored run's settings
	changes []string   // "--lr 0.001 -> 0.0005"
}

// openResume reads --resume with read (os.ReadFile, or worker 0's copy
// in a multi-worker run) and refuses a resume that cannot continue the
// stored run (see resumeRefused), naming the settings; it returns nil
// without --resume. f is this run's configuration, with --replicas
// resolved.
func openResume(f *trainFlags, read func(path string) ([]byte, error)) (*resumed, error) {
	if f.Resume == "" {
		return nil, nil
	}
	data, err := read(f.Resume)
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	st, err := checkpoint.ParseState(data, f.Resume)
	if err != nil {
		return nil, err
	}
	// The stored configuration holds the input scale resolved from the
	// data (auto -> 1/255), which this run knows only once the data is
	// loaded; the scale is compared then, by the setting the state keeps
	// (runScale.setting), so it is left out here.
	var curMap map[string]json.RawMessage
	raw, _ := json.Marshal(f)
	if err := json.Unmarshal(raw, &curMap); err != nil {
		return nil, err
	}
	delete(curMap, "scale")
	cur, _ := json.Marshal(curMap)
	changes, err := checkpoint.ConfigChanges(st.Config, cur)
	if err != nil {
		return nil, fmt.Errorf("--resume %s: %w", f.Resume, err)
	}
	var old trainFlags
	if len(st.Config) > 0 {
		if err := json.Unmarshal(st.Config, &old); err != nil {
			return nil, fmt.Errorf("--resume %s: the stored training configuration: %w", f.Resume, err)
		}
	}
	r := &resumed{path: f.Resume, state: st, old: old}
	var refused []string
	for _, c := range changes {
		if c.Key == "resume" {
			continue
		}
		d := fmt.Sprintf("--%s %s -> %s", strings.ReplaceAll(c.Key, "_", "-"), showJSON(c.Old), showJSON(c.New))
		if why := refusal(c.Key, &old, f); why != "" {
			refused = append(refused, d+" ("+why+")")
			continue
		}
		r.changes = append(r.changes, d)
	}
	if len(refused) > 0 {
		return nil, usagef("--resume %s: a resume continues the run that wrote the state, and these settings differ from it: %s; "+
			"to train on from its weights with them, start a new run with --model set to a model that run wrote (best_model.onnx, last_model.onnx)",
			f.Resume, strings.Join(refused, "; "))
	}
	done := st.Epoch // epochs complete, plus the one in progress
	if st.BatchInEpoch > 0 || (st.Partial != nil && st.Partial.Samples > 0) {
		done++
	}
	if f.Epochs < done {
		return nil, usagef("--epochs %d: the state in %s is at epoch %d already (--epochs counts all of the run's epochs)", f.Epochs, f.Resume, done)
	}
	return r, nil
}

// refusal says why a resume cannot change key, or "" if it can.
func refusal(key string, old, cur *trainFlags) string {
	if what, ok := resumeRefused[key]; ok {
		return "it changes " + what
	}
	switch key {
	case "strategy", "replicas":
		if key == "replicas" && old.Replicas == 0 {
			return "" // stored unresolved ("one per core") by an older gotrain
		}
		if !old.Deterministic || !cur.Deterministic || old.ShardSize != cur.ShardSize {
			return "the result depends on it, except when both runs are --deterministic with the same --shard-size"
		}
	case "shard_size":
		if old.Deterministic || cur.Deterministic {
			return "it changes how --deterministic splits each batch"
		}
	}
	return ""
}

// showJSON prints a JSON value as a flag value: strings unquoted, except
// the empty one.
func showJSON(raw string) string {
	var s string
	if json.Unmarshal([]byte(raw), &s) == nil {
		if s == "" {
			return `""`
		}
		if strings.ContainsAny(s, " \t") {
			return strconv.Quote(s)
		}
		return s
	}
	return raw
}

// checkScale refuses a resume whose input scale, resolved for the
// training data, is not the one the state was made with: the weights were
// trained on inputs of that scale. Another spelling of the same scale
// (auto for digits' 1/16) is no change. States that stored no scale pass.
func (r *resumed) checkScale(s *runScale, flagValue string) error {
	if r == nil || r.old.Scale == "" || r.old.Scale == s.scale.String() {
		return nil
	}
	return usagef("--resume %s: the state was made with input scale %s, this run's is %s (--scale %s); resume with --scale %s, "+
		"or start a new run with --model set to a model that run wrote (best_model.onnx, last_model.onnx)", r.path, r.old.Scale, s.scale, flagValue, r.old.Scale)
}

// start checks that the state belongs to the model being trained, says
// where training resumes and what changed, and returns the state.
func (r *resumed) start(modelHash string, stdout io.Writer) (*train.State, error) {
	if r == nil {
		return nil, nil
	}
	if modelHash != "" && r.state.ModelHash != modelHash {
		return nil, fmt.Errorf("load state %s: %w: the file was written for model %s, the model being trained is %s",
			r.path, checkpoint.ErrOtherModel, r.state.ModelHash, modelHash)
	}
	fmt.Fprintf(stdout, "resumed at %s from %s\n", r.state.ResumePoint(), r.path)
	if len(r.changes) > 0 {
		fmt.Fprintf(stdout, "changed since the state was written: %s\n", strings.Join(r.changes, ", "))
	}
	return r.state, nil
}
