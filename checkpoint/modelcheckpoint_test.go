package checkpoint

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/train"
)

// bestEpochIn is the epoch (1-based) whose weights an exported file holds,
// or 0 when there is no file.
func bestEpochIn(t *testing.T, path string) float32 {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return m.Graph.Initializer("b").Float32s()[0]
}

// TestModelCheckpointResumeElsewhere trains two epochs (best val_loss 0.3
// at epoch 2), then resumes with the same callback pointed at the same
// folder spelled differently, at the folder moved, at a new folder, and
// with a state stored under the name the callback had when it held its
// whole path. A worse epoch 3 (0.4) must write nothing anywhere; a better
// epoch 4 (0.2) writes this run's file; the log says where the best was.
func TestModelCheckpointResumeElsewhere(t *testing.T) {
	logs := seq("val_loss", 0.5, 0.3, 0.4, 0.2)
	first := func(dir string) (map[string][]byte, *fakeFit) {
		mc := &ModelCheckpoint{Path: filepath.Join(dir, "best_model.onnx"), SaveBestOnly: true}
		f := newFakeFit(t, mc)
		if _, err := f.run(0, logs[:2]); err != nil {
			t.Fatal(err)
		}
		extra, err := CollectState(f.cbs)
		if err != nil {
			t.Fatal(err)
		}
		if got := bestEpochIn(t, mc.Path); got != 2 {
			t.Fatalf("the first run's best file holds epoch %v, want 2", got)
		}
		return extra, f
	}
	cases := []struct {
		name string
		// prepare makes the folder of the first run, and returns the path
		// the resumed callback writes to and the earlier best's path.
		prepare  func(t *testing.T, root string) (path, earlier string)
		legacy   bool
		logWants []string // "" for a silent resume
	}{
		{"same folder, relative", func(t *testing.T, root string) (string, string) {
			t.Chdir(root)
			return filepath.Join("run", "best_model.onnx"), filepath.Join(root, "run", "best_model.onnx")
		}, false, nil},
		{"folder moved", func(t *testing.T, root string) (string, string) {
			if err := os.Rename(filepath.Join(root, "run"), filepath.Join(root, "moved")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(root, "moved", "best_model.onnx"), filepath.Join(root, "run", "best_model.onnx")
		}, false, []string{"run/best_model.onnx (no longer there), not ", "moved/best_model.onnx is replaced only when an epoch improves"}},
		{"new folder", func(t *testing.T, root string) (string, string) {
			os.Mkdir(filepath.Join(root, "new"), 0o755)
			return filepath.Join(root, "new", "best_model.onnx"), filepath.Join(root, "run", "best_model.onnx")
		}, false, []string{"new/best_model.onnx does not exist", "val_loss 0.3, epoch 2", "run/best_model.onnx; "}},
		{"new folder, state under a former name", func(t *testing.T, root string) (string, string) {
			os.Mkdir(filepath.Join(root, "new"), 0o755)
			return filepath.Join(root, "new", "best_model.onnx"), filepath.Join(root, "run", "best_model.onnx")
		}, true, []string{"does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			os.Mkdir(filepath.Join(root, "run"), 0o755)
			extra, f1 := first(filepath.Join(root, "run"))
			if tc.legacy {
				b := extra["ModelCheckpoint(best_model.onnx)"]
				if b == nil {
					t.Fatalf("state names %v, want ModelCheckpoint(best_model.onnx)", extra)
				}
				extra = map[string][]byte{"ModelCheckpoint(" + filepath.Join(root, "run", "best_model.onnx") + ")": b}
			}
			path, earlier := tc.prepare(t, root)
			var log bytes.Buffer
			mc := &ModelCheckpoint{Path: path, SaveBestOnly: true, Log: &log}
			f := newFakeFit(t, mc)
			f.step, f.history = f1.step, f1.history
			if err := RestoreState(f.cbs, extra); err != nil {
				t.Fatal(err)
			}
			if _, err := f.run(2, logs[:3]); err != nil {
				t.Fatal(err)
			}
			if len(mc.Written()) != 0 {
				t.Fatalf("a worse epoch wrote %v", mc.Written())
			}
			want := float32(2) // the first run's best, where the folder holds it
			if strings.HasPrefix(tc.name, "new folder") {
				want = 0
			}
			if got := bestEpochIn(t, path); got != want {
				t.Fatalf("%s holds epoch %v after a worse epoch, want %v", path, got, want)
			}
			if mc.Earlier() != earlier {
				t.Errorf("Earlier() = %q, want %q", mc.Earlier(), earlier)
			}
			if v, ep, ok := mc.Best(); !ok || v != 0.3 || ep != 2 {
				t.Errorf("Best() = %v, %d, %v; want 0.3 at epoch 2", v, ep, ok)
			}
			for _, w := range tc.logWants {
				if !strings.Contains(log.String(), w) {
					t.Errorf("log %q does not say %q", log.String(), w)
				}
			}
			if tc.logWants == nil && log.Len() != 0 {
				t.Errorf("resuming in place logged %q", log.String())
			}
			// The state goes on: a better epoch 4 is written here.
			extra, err := CollectState(f.cbs)
			if err != nil {
				t.Fatal(err)
			}
			mc2 := &ModelCheckpoint{Path: path, SaveBestOnly: true}
			g := newFakeFit(t, mc2)
			g.step, g.history = f.step, f.history
			if err := RestoreState(g.cbs, extra); err != nil {
				t.Fatal(err)
			}
			if _, err := g.run(3, logs); err != nil {
				t.Fatal(err)
			}
			if got := bestEpochIn(t, path); got != 4 || len(mc2.Written()) != 1 {
				t.Errorf("after a better epoch 4, %s holds epoch %v; written %v", path, got, mc2.Written())
			}
		})
	}
}

// Two checkpoints writing files of one name into two folders collide
// unless one has an ID.
func TestModelCheckpointID(t *testing.T) {
	a := &ModelCheckpoint{Path: "x/best.onnx"}
	b := &ModelCheckpoint{Path: "y/best.onnx"}
	if _, err := CollectState([]train.Callback{a, b}); err == nil {
		t.Error("two checkpoints of one file name collected without error")
	}
	b.ID = "best-y"
	if _, err := CollectState([]train.Callback{a, b}); err != nil {
		t.Error(err)
	}
	if !a.FormerName("ModelCheckpoint(/old/x/best.onnx)") || a.FormerName("ModelCheckpoint(/old/x/last.onnx)") || b.FormerName("ModelCheckpoint(y/best.onnx)") {
		t.Error("FormerName matches the wrong keys")
	}
}
