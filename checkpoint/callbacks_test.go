package checkpoint

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/train"
)

func ptr(v float64) *float64 { return &v }

func TestEarlyStopping(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name        string
		es          EarlyStopping
		logs        []train.Logs
		wantRan     int     // epochs run
		wantStopped int     // 0-based epoch it stopped at, -1 none
		wantWeight  float32 // value of "b" after training: the epoch (1-based) the weights come from
		wantSets    int     // SetWeights calls
	}{
		{"patience 0 stops at first non-improvement",
			EarlyStopping{Patience: 0}, seq("val_loss", 1, 0.9, 0.95, 0.8), 3, 2, 3, 0},
		{"patience 2",
			EarlyStopping{Patience: 2}, seq("val_loss", 1, 0.9, 0.95, 0.96, 0.5), 4, 3, 4, 0},
		{"improvements reset the wait",
			EarlyStopping{Patience: 1}, seq("val_loss", 1, 0.9, 0.8, 0.7), 4, -1, 4, 0},
		{"min_delta: a small gain is no improvement",
			EarlyStopping{Patience: 1, MinDelta: 0.1}, seq("val_loss", 1, 0.95, 0.85, 0.8), 2, 1, 2, 0},
		{"min_delta: a large gain is",
			EarlyStopping{Patience: 1, MinDelta: 0.1}, seq("val_loss", 1, 0.85, 0.7, 0.55), 4, -1, 4, 0},
		{"auto mode: accuracy goes up",
			EarlyStopping{Monitor: "val_accuracy", Patience: 1}, seq("val_accuracy", 0.5, 0.6, 0.55, 0.7), 3, 2, 3, 0},
		{"auto mode: acc suffix goes up",
			EarlyStopping{Monitor: "val_acc", Patience: 1}, seq("val_acc", 0.5, 0.6, 0.7, 0.8), 4, -1, 4, 0},
		{"explicit min on an accuracy",
			EarlyStopping{Monitor: "val_accuracy", Mode: Min, Patience: 1}, seq("val_accuracy", 0.5, 0.6, 0.7), 2, 1, 2, 0},
		{"explicit max on a loss",
			EarlyStopping{Mode: Max, Patience: 1}, seq("val_loss", 1, 0.9, 2), 2, 1, 2, 0},
		{"baseline not reached: improvements still count toward patience",
			EarlyStopping{Patience: 2, Baseline: ptr(0.5)}, seq("val_loss", 1, 0.9, 0.8, 0.4), 2, 1, 2, 0},
		{"baseline reached resets the wait",
			EarlyStopping{Patience: 2, Baseline: ptr(0.5)}, seq("val_loss", 0.4, 0.45, 0.46, 0.3), 3, 2, 3, 0},
		{"start_from_epoch ignores early epochs",
			EarlyStopping{Patience: 0, StartFromEpoch: 2}, seq("val_loss", 1, 2, 3, 2.5, 2.6), 5, 4, 5, 0},
		{"without start_from_epoch the same run stops at once",
			EarlyStopping{Patience: 0}, seq("val_loss", 1, 2, 3, 2.5, 2.6), 2, 1, 2, 0},
		{"NaN never improves",
			EarlyStopping{Patience: 1}, seq("val_loss", 1, nan, 0.5), 2, 1, 2, 0},
		{"restore on early stop",
			EarlyStopping{Patience: 1, RestoreBestWeights: true}, seq("val_loss", 1, 0.5, 0.7, 0.8), 3, 2, 2, 1},
		{"restore also when the epochs run out",
			EarlyStopping{Patience: 10, RestoreBestWeights: true}, seq("val_loss", 1, 0.5, 0.7, 0.8), 4, -1, 2, 1},
		{"no restore when the last epoch is the best",
			EarlyStopping{Patience: 10, RestoreBestWeights: true}, seq("val_loss", 1, 0.5, 0.4), 3, -1, 3, 0},
		{"no improvement ever restores the first epoch looked at",
			EarlyStopping{Patience: 10, RestoreBestWeights: true, StartFromEpoch: 1}, seq("val_loss", 1, nan, nan), 3, -1, 2, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.es
			f := newFakeFit(t, &es)
			ran, err := f.run(0, tc.logs)
			if err != nil {
				t.Fatal(err)
			}
			if ran != tc.wantRan || es.StoppedEpoch() != tc.wantStopped {
				t.Errorf("ran %d epochs, stopped at %d; want %d, %d", ran, es.StoppedEpoch(), tc.wantRan, tc.wantStopped)
			}
			if got := f.weights["b"].Float32s()[0]; got != tc.wantWeight {
				t.Errorf("final weights are from epoch %v, want %v", got, tc.wantWeight)
			}
			if f.setCalls != tc.wantSets {
				t.Errorf("SetWeights called %d times, want %d", f.setCalls, tc.wantSets)
			}
			stopped, reason := f.ctx.Stopped()
			if stopped != (tc.wantStopped >= 0) {
				t.Errorf("Stopped() = %v (%q)", stopped, reason)
			}
			if stopped && !strings.Contains(reason, es.mon.name) {
				t.Errorf("stop reason %q does not name the metric", reason)
			}
		})
	}
}

func TestCallbackConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cb   train.Callback
		want string
	}{
		{"missing monitor", &EarlyStopping{}, `"val_loss" is not in the logs`},
		{"bad mode", &EarlyStopping{Mode: "up"}, `mode "up"`},
		{"negative patience", &EarlyStopping{Patience: -1}, "patience -1"},
		{"plateau factor", &ReduceLROnPlateau{Factor: 1.5}, "factor 1.5"},
		{"plateau missing monitor", &ReduceLROnPlateau{Factor: 0.5, Monitor: "val_acc"}, `"val_acc" is not in the logs`},
		{"template key", &ModelCheckpoint{Path: "{epoch}-{val_los}.onnx"}, "{val_los} names no known value"},
		{"template syntax", &ModelCheckpoint{Path: "{epoch.onnx"}, "is not closed"},
		{"checkpoint folder missing", &ModelCheckpoint{Path: "/nonexistent-dir/x/{epoch}.onnx"}, "does not exist"},
		{"save best without monitor", &ModelCheckpoint{Path: "best.onnx", SaveBestOnly: true, Monitor: "val_auc"}, `"val_auc" is not in the logs`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if mc, ok := tc.cb.(*ModelCheckpoint); ok && !filepath.IsAbs(mc.Path) {
				mc.Path = filepath.Join(t.TempDir(), mc.Path)
			}
			f := newFakeFit(t, tc.cb)
			_, err := f.run(0, []train.Logs{{"loss": 1}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestReduceLROnPlateau(t *testing.T) {
	tests := []struct {
		name   string
		r      ReduceLROnPlateau
		logs   []train.Logs
		wantLR []float64 // learning rate after each epoch
	}{
		{"cooldown 1 and min_lr",
			ReduceLROnPlateau{Factor: 0.5, Patience: 1, Cooldown: 1, MinLR: 0.2},
			seq("val_loss", 1, 1, 1, 1, 1, 1), []float64{1, 0.5, 0.25, 0.2, 0.2, 0.2}},
		{"patience 2, cooldown 2, min_delta",
			ReduceLROnPlateau{Factor: 0.1, Patience: 2, Cooldown: 2, MinDelta: 0.1},
			seq("val_loss", 1, 0.95, 0.8, 0.85, 0.9, 0.7, 0.7, 0.7), []float64{1, 1, 1, 1, 0.1, 0.1, 0.1, 0.01}},
		{"accuracy in auto mode goes up",
			ReduceLROnPlateau{Monitor: "val_accuracy", Factor: 0.5, Patience: 1},
			seq("val_accuracy", 0.5, 0.6, 0.6, 0.7, 0.65), []float64{1, 1, 0.5, 0.5, 0.25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			var lrs []float64
			f := newFakeFit(t, &r)
			f.cbs = append(f.cbs, &epochEndFunc{func(c *train.Context) { lrs = append(lrs, c.LR()) }})
			if _, err := f.run(0, tc.logs); err != nil {
				t.Fatal(err)
			}
			// The scale is a product of factors: exact up to a few roundings.
			for i := range tc.wantLR {
				if math.Abs(lrs[i]-tc.wantLR[i]) > 1e-12 {
					t.Fatalf("learning rates %v, want %v", lrs, tc.wantLR)
				}
			}
		})
	}
}

type epochEndFunc struct{ fn func(c *train.Context) }

func (e *epochEndFunc) OnTrainBegin(*train.Context) error { return nil }
func (e *epochEndFunc) OnTrainEnd(*train.Context, train.Logs) error {
	return nil
}
func (e *epochEndFunc) OnEpochBegin(*train.Context, int) error { return nil }
func (e *epochEndFunc) OnEpochEnd(c *train.Context, _ int, _ train.Logs) error {
	e.fn(c)
	return nil
}
func (e *epochEndFunc) OnBatchBegin(*train.Context, int) error           { return nil }
func (e *epochEndFunc) OnBatchEnd(*train.Context, int, train.Logs) error { return nil }

// A run stopped after k epochs whose callbacks are restored from the state
// must stop, restore and reduce exactly as the run straight through does.
func TestStatefulResume(t *testing.T) {
	logs := seq("val_loss", 1, 0.8, 0.9, 0.7, 0.75, 0.76, 0.74, 0.73, 0.9, 0.95)
	mk := func() []train.Callback {
		return []train.Callback{
			&EarlyStopping{Patience: 3, RestoreBestWeights: true, MinDelta: 0.005},
			&ReduceLROnPlateau{Factor: 0.5, Patience: 1, Cooldown: 1},
		}
	}
	straight := newFakeFit(t, mk()...)
	ranAll, err := straight.run(0, logs)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k < ranAll; k++ {
		first := newFakeFit(t, mk()...)
		if _, err := first.run(0, logs[:k]); err != nil {
			t.Fatal(err)
		}
		// The state is taken at the last epoch end, before OnTrainEnd's restore.
		extra, err := CollectState(first.cbs)
		if err != nil {
			t.Fatal(err)
		}
		second := newFakeFit(t, mk()...)
		second.scale, second.step, second.history = first.scale, first.step, first.history
		if err := RestoreState(second.cbs, extra); err != nil {
			t.Fatal(err)
		}
		ran, err := second.run(k, logs)
		if err != nil {
			t.Fatal(err)
		}
		esA, esB := straight.cbs[0].(*EarlyStopping), second.cbs[0].(*EarlyStopping)
		if k+ran != ranAll || esA.StoppedEpoch() != esB.StoppedEpoch() {
			t.Errorf("split at %d: ran %d+%d epochs, stopped at %d; straight ran %d, stopped at %d",
				k, k, ran, esB.StoppedEpoch(), ranAll, esA.StoppedEpoch())
		}
		if a, b := straight.weights["b"].Float32s()[0], second.weights["b"].Float32s()[0]; a != b {
			t.Errorf("split at %d: final weights from epoch %v, straight %v", k, b, a)
		}
		if math.Float64bits(straight.scale) != math.Float64bits(second.scale) {
			t.Errorf("split at %d: lr scale %v, straight %v", k, second.scale, straight.scale)
		}
	}
}

func TestCollectStateDuplicateNames(t *testing.T) {
	_, err := CollectState([]train.Callback{&EarlyStopping{}, &EarlyStopping{Monitor: "val_loss"}})
	if err == nil || !strings.Contains(err.Error(), "EarlyStopping(val_loss)") {
		t.Fatalf("error %v, want one naming the duplicate", err)
	}
	if err := RestoreState([]train.Callback{&EarlyStopping{}}, map[string][]byte{"EarlyStopping(val_loss)": {9}}); err == nil {
		t.Fatal("a damaged callback state was accepted")
	}
}

func TestModelCheckpoint(t *testing.T) {
	tests := []struct {
		name    string
		mc      ModelCheckpoint
		logs    []train.Logs
		batches int
		want    []string // files written, sorted
		last    string   // file whose weights are checked
		lastEp  float32  // the epoch (1-based) whose weights it holds
	}{
		{"templates", ModelCheckpoint{Path: "ckpt-{epoch:02d}-{val_loss:.4f}.onnx"},
			seq("val_loss", 0.5, 0.25, 0.125), 1,
			[]string{"ckpt-01-0.5000.onnx", "ckpt-02-0.2500.onnx", "ckpt-03-0.1250.onnx"}, "ckpt-02-0.2500.onnx", 2},
		{"save best only, one file", ModelCheckpoint{Path: "best.onnx", SaveBestOnly: true},
			seq("val_loss", 0.5, 0.7, 0.4, 0.45), 1, []string{"best.onnx"}, "best.onnx", 3},
		{"save best only, templated", ModelCheckpoint{Path: "best-{epoch}.onnx", SaveBestOnly: true},
			seq("val_loss", 0.5, 0.7, 0.4, 0.45), 1, []string{"best-1.onnx", "best-3.onnx"}, "best-3.onnx", 3},
		{"save best only on accuracy", ModelCheckpoint{Path: "acc-{epoch}.onnx", SaveBestOnly: true, Monitor: "val_accuracy"},
			seq("val_accuracy", 0.5, 0.7, 0.4, 0.8), 1, []string{"acc-1.onnx", "acc-2.onnx", "acc-4.onnx"}, "acc-4.onnx", 4},
		{"every 2 epochs", ModelCheckpoint{Path: "e{epoch}.onnx", EveryEpochs: 2},
			seq("val_loss", 1, 1, 1, 1, 1), 1, []string{"e2.onnx", "e4.onnx"}, "e4.onnx", 4},
		{"every 3 batches", ModelCheckpoint{Path: "b-{epoch}-{batch}-{step}.onnx", EveryBatches: 3},
			seq("val_loss", 1, 1, 1), 2, []string{"b-2-1-3.onnx", "b-3-2-6.onnx"}, "", 0},
		{"training state", ModelCheckpoint{Path: "s-{epoch}.ckpt", Format: TrainingState, EveryEpochs: 2},
			seq("val_loss", 1, 1, 1, 1), 1, []string{"s-2.ckpt", "s-4.ckpt"}, "s-2.ckpt", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mc := tc.mc
			mc.Path = filepath.Join(dir, mc.Path)
			f := newFakeFit(t, &mc)
			f.batches = tc.batches
			if _, err := f.run(0, tc.logs); err != nil {
				t.Fatal(err)
			}
			if got := listDir(t, dir); !slices.Equal(got, tc.want) {
				t.Fatalf("files %v, want %v", got, tc.want)
			}
			if tc.last == "" {
				return
			}
			path := filepath.Join(dir, tc.last)
			if mc.Format == TrainingState {
				s, err := LoadState(path, ModelHash(f.model))
				if err != nil {
					t.Fatal(err)
				}
				if s.Weights["b"].Float32s()[0] != tc.lastEp || s.Epoch != int(tc.lastEp)-1 {
					t.Errorf("%s holds epoch %d with weights of epoch %v, want %v", tc.last, s.Epoch, s.Weights["b"].Float32s()[0], tc.lastEp)
				}
				return
			}
			m, err := graph.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Graph.Initializer("b").Float32s()[0]; got != tc.lastEp {
				t.Errorf("%s holds weights of epoch %v, want %v", tc.last, got, tc.lastEp)
			}
			if got := m.Metadata["gotrain.epoch"]; got != strconv.Itoa(int(tc.lastEp)) {
				t.Errorf("%s: metadata gotrain.epoch = %q, want %v", tc.last, got, tc.lastEp)
			}
		})
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// After a divergence, ModelCheckpoint must not write NaN weights over the
// last good checkpoint, and TerminateOnNaN stops the run in that batch.
func TestNaNKeepsLastGoodCheckpoint(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	tn := &TerminateOnNaN{Log: &log}
	mc := &ModelCheckpoint{Path: filepath.Join(dir, "last.onnx"), Log: &log}
	f := newFakeFit(t, tn, mc)
	f.batches = 3
	f.batchLog = func(e, b int) train.Logs {
		if e == 2 && b == 1 {
			fill(f.weights["w"], float32(math.NaN()))
			return train.Logs{"loss": math.NaN()}
		}
		return train.Logs{"loss": 1}
	}
	logs := seq("val_loss", 1, 1, 1, 1)
	logs[2] = train.Logs{"loss": math.NaN(), "val_loss": math.NaN()}
	ran, err := f.run(0, logs)
	if err != nil {
		t.Fatal(err)
	}
	if ran != 3 {
		t.Errorf("ran %d epochs, want 3 (stopped in the third)", ran)
	}
	if f.step != 8 {
		t.Errorf("%d steps, want 8 (stopped after the NaN batch)", f.step)
	}
	_, reason := f.ctx.Stopped()
	if !strings.Contains(reason, "loss is NaN at epoch 3 batch 2") || tn.Terminated() != reason {
		t.Errorf("stop reason %q", reason)
	}
	m, err := graph.Load(filepath.Join(dir, "last.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graph.Initializer("b").Float32s()[0]; got != 2 {
		t.Errorf("last.onnx holds weights of epoch %v, want 2 (the last good one)", got)
	}
	if !strings.Contains(log.String(), "not writing") {
		t.Errorf("log %q does not say the save was skipped", log.String())
	}
}

func TestHistoryLogger(t *testing.T) {
	dir := t.TempDir()
	h := &HistoryLogger{CSVPath: filepath.Join(dir, "h.csv"), JSONPath: filepath.Join(dir, "h.json")}
	logs := []train.Logs{
		{"loss": 0.5, "accuracy": 0.25},
		{"loss": 0.25, "accuracy": 0.5, "val_loss": math.NaN()},
		{"loss": 0.1, "lr": 1e-05},
	}
	f := newFakeFit(t, h)
	f.history = []train.Logs{{"loss": 1}} // a resumed run: one epoch before
	if _, err := f.run(1, append([]train.Logs{nil}, logs...)); err != nil {
		t.Fatal(err)
	}
	csv, _ := os.ReadFile(h.CSVPath)
	wantCSV := "epoch,accuracy,loss,lr,val_loss\n1,,1,,\n2,0.25,0.5,,\n3,0.5,0.25,,NaN\n4,,0.1,1e-05,\n"
	if string(csv) != wantCSV {
		t.Errorf("CSV:\n%s\nwant:\n%s", csv, wantCSV)
	}
	js, _ := os.ReadFile(h.JSONPath)
	wantJSON := `[
  {"epoch": 1, "loss": 1},
  {"epoch": 2, "accuracy": 0.25, "loss": 0.5},
  {"epoch": 3, "accuracy": 0.5, "loss": 0.25, "val_loss": null},
  {"epoch": 4, "loss": 0.1, "lr": 1e-05}
]
`
	if string(js) != wantJSON {
		t.Errorf("JSON:\n%s\nwant:\n%s", js, wantJSON)
	}
	if got := listDir(t, dir); !slices.Equal(got, []string{"h.csv", "h.json"}) {
		t.Errorf("files %v: temporary files were left", got)
	}
	if !h.Wrote() {
		t.Error("Wrote() is false after three epochs")
	}
	// A resumed run that completes no epoch writes nothing, and says so.
	g := newFakeFit(t, h)
	g.history = f.history
	if _, err := g.run(4, append(logs, nil)); err != nil {
		t.Fatal(err)
	}
	if h.Wrote() {
		t.Error("Wrote() is true after a run of no epoch")
	}
}

func TestInterruptOnSIGINT(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	in := &Interrupt{Path: filepath.Join(dir, "interrupted.ckpt"), ResumeCommand: "gotrain train --model m.onnx", Out: &out}
	f := newFakeFit(t, in)
	f.batches = 4
	sent := false
	f.batchLog = func(e, b int) train.Logs {
		if e == 1 && b == 1 && !sent {
			sent = true
			if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !in.got.Load() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		return train.Logs{"loss": 1}
	}
	ran, err := f.run(0, seq("val_loss", 1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !in.Interrupted() || ran != 2 || f.step != 6 {
		t.Fatalf("interrupted=%v after %d epochs, %d steps; want true, 2, 6 (stopped after the batch running)", in.Interrupted(), ran, f.step)
	}
	want := "training interrupted at epoch 2 step 6; resume with: gotrain train --model m.onnx --resume " + in.Path + "\n"
	if out.String() != want {
		t.Errorf("message %q, want %q", out.String(), want)
	}
	s, err := LoadState(in.Path, ModelHash(f.model))
	if err != nil {
		t.Fatal(err)
	}
	if s.Step != 6 || s.Epoch != 1 {
		t.Errorf("state at step %d epoch %d, want 6, 1", s.Step, s.Epoch)
	}
}

// TestInterruptListenEarly: a signal that arrives after Listen but before
// training begins (while graphs compile) stops the run after its first
// batch, with a state to resume from, instead of killing the process.
func TestInterruptListenEarly(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	in := &Interrupt{Path: filepath.Join(dir, "early.ckpt"), Out: &out, Signals: []os.Signal{syscall.SIGUSR1}}
	in.Listen()
	defer in.Close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !in.got.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	f := newFakeFit(t, in)
	f.batches = 4
	ran, err := f.run(0, seq("val_loss", 1, 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	if !in.Interrupted() || ran != 1 || f.step != 1 {
		t.Fatalf("interrupted=%v after %d epochs, %d steps; want true, 1, 1 (stopped after the first batch)", in.Interrupted(), ran, f.step)
	}
	if _, err := LoadState(in.Path, ModelHash(f.model)); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptAgree: with Agree, a signal only asks for the stop, and a
// run stops where Agree decides; here the decision comes one batch after
// the request, as a multi-worker step carries it. A worker that got no
// signal stops at the same batch and writes the state; one with no Path
// writes nothing.
func TestInterruptAgree(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name      string
		signalled bool // this worker got the signal
		path      string
	}{{"signalled, no state", true, ""}, {"other worker, writes the state", false, filepath.Join(dir, "state.ckpt")}} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			asked, decided := false, false
			in := &Interrupt{Path: c.path, ResumeCommand: "mpirun -np 2 gotrain train", Out: &out, Signals: []os.Signal{syscall.SIGUSR2},
				Agree: func(sig bool) bool {
					if sig != (c.signalled && asked) {
						t.Errorf("Agree(%v) after the signal was %v", sig, asked)
					}
					return decided
				}}
			f := newFakeFit(t, in)
			f.batches = 4
			f.batchLog = func(e, b int) train.Logs {
				if asked {
					decided = true // the step after the request carries it to every worker
				}
				if e == 1 && b == 1 {
					asked = true
					if c.signalled {
						in.Trigger()
					}
				}
				return train.Logs{"loss": 1}
			}
			ran, err := f.run(0, seq("val_loss", 1, 1, 1))
			if err != nil {
				t.Fatal(err)
			}
			if !in.Interrupted() || ran != 2 || f.step != 7 {
				t.Fatalf("interrupted=%v after %d epochs, %d steps; want true, 2, 7 (the batch after the request)", in.Interrupted(), ran, f.step)
			}
			if c.path == "" {
				if out.Len() > 0 {
					t.Errorf("a worker without the state printed %q", out.String())
				}
				return
			}
			s, err := LoadState(c.path, ModelHash(f.model))
			if err != nil {
				t.Fatal(err)
			}
			if s.Step != 7 {
				t.Errorf("state at step %d, want 7", s.Step)
			}
		})
	}
}
