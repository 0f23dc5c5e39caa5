package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// trainArgs are the settings of the resume tests: a small MLP on the test
// dataset, one thread.
func trainArgs(t *testing.T, out string, extra ...string) []string {
	set := dataset(t)
	args := append([]string{"train", "--model", "mlp", "--data", set.name, "--batch-size", "64", "--lr", "0.003", "--seed", "7",
		"--threads", "1", "--out", out}, set.subset...)
	return append(args, extra...)
}

// A resumed run lists only the files it wrote: resumed into a new folder
// with no epoch left to train, it writes no best model and no history, and
// says where the earlier ones are.
func TestResumeListsWhatItWrote(t *testing.T) {
	dir := t.TempDir()
	run1, run2 := filepath.Join(dir, "run1"), filepath.Join(dir, "run2")
	gotrain(t, trainArgs(t, run1, "--epochs", "2")...).expect(t, 0)
	r := gotrain(t, trainArgs(t, run2, "--epochs", "2", "--resume", filepath.Join(run1, "state.ckpt"))...)
	r.expect(t, 0)
	_, listing, _ := strings.Cut(r.stdout, "\ndone in ")
	for _, name := range []string{"best_model.onnx", "history.csv"} {
		if _, err := os.Stat(filepath.Join(run2, name)); err == nil {
			t.Errorf("%s was written though no epoch ran", name)
		}
		if strings.Contains(listing, filepath.Join(run2, name)) {
			t.Errorf("the listing names %s, which this run did not write:\n%s", filepath.Join(run2, name), r.stdout)
		}
	}
	for _, want := range []string{
		"best model: not written: no epoch improved on the best since the resume; that one (val_loss ",
		"is " + filepath.Join(run1, "best_model.onnx") + "\n",
		"history: not written",
		"last model: " + filepath.Join(run2, "last_model.onnx"),
		"earlier files (before the resume): " + run1,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output does not say %q:\n%s", want, r.stdout)
		}
	}
}

const cliChildEnv = "GOTRAIN_CLI_CHILD"

// TestCLIChild runs gotrain with the arguments in the environment (one per
// line), for tests that need a second process.
func TestCLIChild(t *testing.T) {
	args := os.Getenv(cliChildEnv)
	if args == "" {
		t.Skip("run by tests that need a second gotrain process")
	}
	os.Exit(run(strings.Split(args, "\n"), os.Stdout, os.Stderr))
}

// Two trainings into one --out: while one runs, the other is refused with
// a message naming it; once the first is killed, its lock file is taken over.
func TestTwoTrainingsOneOut(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a training process")
	}
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChild$")
	cmd.Env = append(os.Environ(), cliChildEnv+"="+strings.Join(trainArgs(t, out, "--epochs", "100000"), "\n"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := cmd.Process.Pid
	lock := filepath.Join(out, checkpoint.LockFile)
	for end := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(lock); err == nil && strings.Contains(string(b), fmt.Sprintf(`"pid":%d,`, pid)) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("the first training did not lock %s", out)
		}
	}
	host, _ := os.Hostname()
	r := gotrain(t, trainArgs(t, out, "--epochs", "1")...)
	r.expect(t, 1, "--out: folder "+out+" is in use by PID "+strconv.Itoa(pid)+" on host "+host, "lock file "+lock)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	r = gotrain(t, trainArgs(t, out, "--epochs", "1")...)
	r.expect(t, 0)
	if want := "note: .lock was left by PID " + strconv.Itoa(pid); !strings.Contains(r.stdout, want) {
		t.Errorf("output does not say %q:\n%s", want, r.stdout)
	}
	if _, err := os.Stat(lock); !os.IsNotExist(err) {
		t.Errorf("the lock file is still there after the run: %v", err)
	}
}

// A resume prints where it resumes and what changed; it refuses settings
// that would make it another run, naming them, and training data whose
// content changed under the same name.
func TestResumeConfigChanges(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	gotrain(t, trainArgs(t, run, "--epochs", "2")...).expect(t, 0)
	state := filepath.Join(run, "state.ckpt")
	st, err := checkpoint.LoadState(state, "")
	if err != nil {
		t.Fatal(err)
	}
	absent := map[string][]string{"the same scale, spelled out": {"--scale"}} // not in stdout
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string // in stdout when code is 0, else in stderr
	}{
		{"lr, epochs, batch size", []string{"--lr", "0.001", "--batch-size", "32", "--epochs", "4"}, 0,
			[]string{"resumed at epoch 3", "changed since the state was written: --batch-size 64 -> 32, --epochs 2 -> 4, --lr 0.003 -> 0.001, --out " + run + " -> "}},
		{"early stopping", []string{"--early-stopping", "val_loss:2"}, 0, []string{`--early-stopping "" -> val_loss:2`}},
		{"seed and augmentation", []string{"--seed", "8", "--augment", "shift=0.1"}, 2,
			[]string{"--augment \"\" -> shift=0.1 (it changes the augmentation)", "--seed 7 -> 8 (it changes the data order", "start a new run with --model"}},
		{"optimizer", []string{"--optimizer", "sgd"}, 2, []string{"--optimizer adam -> sgd (it changes the optimizer"}},
		{"shuffle", []string{"--shuffle=false"}, 2, []string{"--shuffle true -> false (it changes the data order"}},
		{"validation split", []string{"--val-split", "0.2"}, 2, []string{"--val-split 0.1 -> 0.2"}},
		{"strategy", []string{"--strategy", "mirrored", "--replicas", "2"}, 2, []string{"--strategy single -> mirrored (the result depends on it"}},
		{"fewer epochs", []string{"--epochs", "1"}, 2, []string{"--epochs 1: the state in " + state + " is at epoch 2 already"}},
		// The state stores the scale auto resolved to (1/16 for digits):
		// naming that scale changes nothing, another one is refused
		// before training.
		{"the same scale, spelled out", []string{"--scale", "1/16"}, 0, []string{"changed since the state was written: --epochs 2 -> 3, --out "}},
		{"another scale", []string{"--scale", "none"}, 2, []string{"--resume " + state, "input scale 1/16", "--scale none", "resume with --scale 1/16"}},
		// Last, as it goes on in the first run's folder.
		{"in place", nil, 0, []string{fmt.Sprintf("resumed at epoch 3, step %d from %s\nchanged since the state was written: --epochs 2 -> 3\n", st.Step, state),
			fmt.Sprintf("Epoch 3/3 (resumed from %s: 2 epochs done, step %d)", state, st.Step)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			epochs := []string{"--epochs", "3"}
			if slices.Contains(tc.args, "--epochs") {
				epochs = nil
			}
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if tc.args == nil {
				out = run
			}
			args := append(trainArgs(t, out, epochs...), "--resume", state)
			r := gotrain(t, append(args, tc.args...)...)
			if tc.code != 0 {
				r.expect(t, tc.code, tc.want...)
				return
			}
			r.expect(t, 0)
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output does not say %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range absent[tc.name] {
				if strings.Contains(r.stdout, w) {
					t.Errorf("output says %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// Strategy and replicas may change when both runs are deterministic.
func TestResumeDeterministicReplicas(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	gotrain(t, trainArgs(t, run, "--epochs", "1", "--deterministic")...).expect(t, 0)
	r := gotrain(t, trainArgs(t, filepath.Join(dir, "more"), "--epochs", "2", "--deterministic", "--strategy", "mirrored", "--replicas", "2",
		"--resume", filepath.Join(run, "state.ckpt"))...)
	r.expect(t, 0)
	if want := "--replicas 0 -> 2, --strategy single -> mirrored"; !strings.Contains(r.stdout, want) {
		t.Errorf("output does not say %q:\n%s", want, r.stdout)
	}
	// Numbers in messages have 4 significant digits, as the epoch lines.
	if !regexp.MustCompile(`the best so far \(val_loss 0\.\d{4}, epoch 1\)`).MatchString(r.stdout) {
		t.Errorf("ModelCheckpoint's message on the best so far:\n%s", r.stdout)
	}
}

// Training data whose content changed under the same file name is refused.
func TestResumeOtherDataSameName(t *testing.T) {
	dir := t.TempDir()
	x := make([]float32, 60*64)
	for i := range x {
		x[i] = float32(i%17) / 17
	}
	y := make([]int64, 60)
	for i := range y {
		y[i] = int64(i % 3)
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	writeNPY(t, xp, x, 60, 1, 8, 8)
	writeNPY(t, yp, y, 60)
	run := filepath.Join(dir, "run")
	args := func(epochs string, extra ...string) []string {
		return append([]string{"train", "--model", "mlp", "--data", xp + "," + yp, "--epochs", epochs, "--threads", "1", "--out", run}, extra...)
	}
	gotrain(t, args("1")...).expect(t, 0)
	x[7] = 0.5
	writeNPY(t, xp, x, 60, 1, 8, 8)
	gotrain(t, args("2", "--resume", filepath.Join(run, "state.ckpt"))...).expect(t, 1, "other training data")
}

// A training stopped by SIGINT wherever it is (mid-epoch, most likely)
// and resumed writes the same history.json, byte for byte, and the same
// last model as a training that was never stopped.
func TestInterruptResumeHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a training process")
	}
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	gotrain(t, trainArgs(t, straight, "--epochs", "3", "--batch-size", "8")...).expect(t, 0)
	want, err := os.ReadFile(filepath.Join(straight, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	wantModel, err := graph.Load(filepath.Join(straight, "last_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	midEpoch := false
	for attempt, delay := range []time.Duration{300, 100, 30, 10} {
		out := filepath.Join(dir, fmt.Sprintf("stopped%d", attempt))
		cmd := exec.Command(os.Args[0], "-test.run=^TestCLIChild$")
		cmd.Env = append(os.Environ(), cliChildEnv+"="+strings.Join(trainArgs(t, out, "--epochs", "3", "--batch-size", "8"), "\n"))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		for lines.Scan() && !strings.HasPrefix(lines.Text(), "training ") {
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		var rest strings.Builder
		for lines.Scan() {
			rest.WriteString(lines.Text() + "\n")
		}
		if err := cmd.Wait(); err == nil {
			t.Logf("attempt %d: the training ended before the signal", attempt)
			continue
		}
		if !strings.Contains(rest.String(), "training interrupted at epoch") {
			t.Fatalf("the interrupted training says:\n%s", rest.String())
		}
		state := filepath.Join(out, "state.ckpt")
		st, err := checkpoint.LoadState(state, "")
		if err != nil {
			t.Fatal(err)
		}
		midEpoch = st.Partial != nil
		t.Logf("interrupted at %s", st.ResumePoint())
		r := gotrain(t, trainArgs(t, out, "--epochs", "3", "--batch-size", "8", "--resume", state)...)
		r.expect(t, 0)
		got, _ := os.ReadFile(filepath.Join(out, "history.json"))
		if !bytes.Equal(got, want) {
			t.Fatalf("history.json after the resume:\n%s\nuninterrupted:\n%s", got, want)
		}
		gotModel, err := graph.Load(filepath.Join(out, "last_model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range wantModel.Graph.InitializerNames() {
			a, b := wantModel.Graph.Initializer(name), gotModel.Graph.Initializer(name)
			if err := checkpoint.DiffTensors("weight", map[string]*tensor.Tensor{name: a}, map[string]*tensor.Tensor{name: b}); err != nil {
				t.Fatalf("last_model.onnx after the resume: %v", err)
			}
		}
		if midEpoch {
			return
		}
	}
	if !midEpoch {
		t.Error("no signal landed mid-epoch; the test did not test what it should")
	}
}
