package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/checkpoint"
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
