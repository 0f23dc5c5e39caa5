package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/mpi/mpitest"
	"github.com/gotrain/gotrain/train"
)

// mpiGotrain runs gotrain (this test binary, as TestCLIChild) under mpirun
// with np processes; it returns the job, started.
func mpiGotrain(t *testing.T, np int, mca []string, args ...string) *mpitest.Job {
	t.Helper()
	return mpitest.Start(t, mpitest.Options{NP: np, Program: os.Args[0], Args: []string{"-test.run=^TestCLIChild$"},
		Env: []string{cliChildEnv + "=" + strings.Join(args, "\n")}, MCA: mca})
}

// mpiRun runs gotrain under mpirun to its end and returns the output.
func mpiRun(t *testing.T, np int, args ...string) (string, error) {
	t.Helper()
	j := mpiGotrain(t, np, nil, args...)
	err, ok := j.Wait(5 * time.Minute)
	if !ok {
		t.Fatalf("mpirun -np %d gotrain ran past 5 minutes:\n%s", np, j.Output())
	}
	return j.Output(), err
}

// workerArgs are the multi-worker tests' settings: trainArgs' MLP, with the
// defences a run may have on, in deterministic mode.
func workerArgs(t *testing.T, out string, extra ...string) []string {
	return trainArgs(t, out, append([]string{"--deterministic", "--shard-size", "5", "--batch-size", "50", "--augment", "shift=0.1",
		"--weight-decay", "1e-3", "--clip-norm", "1", "--early-stopping", "val_loss:3", "--reduce-lr-on-plateau", "val_loss:1,factor=0.5"}, extra...)...)
}

// weightsOf returns a model file's initializers.
func weightsOf(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, name := range m.Graph.InitializerNames() {
		v := m.Graph.Initializer(name)
		for i := 0; i < v.Len(); i++ {
			out[name] = append(out[name], v.AsFloat64(i))
		}
	}
	return out
}

// sameRun compares two runs' histories and last models, bit for bit.
func sameRun(t *testing.T, want, got, what string) {
	t.Helper()
	hw, err1 := os.ReadFile(filepath.Join(want, "history.json"))
	hg, err2 := os.ReadFile(filepath.Join(got, "history.json"))
	if err1 != nil || err2 != nil {
		t.Fatalf("%v %v", err1, err2)
	}
	var a, b struct {
		Epochs []map[string]float64 `json:"epochs"`
	}
	if err := json.Unmarshal(hw, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(hg, &b); err != nil {
		t.Fatal(err)
	}
	if len(a.Epochs) == 0 || fmt.Sprint(a.Epochs) != fmt.Sprint(b.Epochs) {
		t.Errorf("%s: history %v, one process %v", what, b.Epochs, a.Epochs)
	}
	wa, wb := weightsOf(t, filepath.Join(want, "last_model.onnx")), weightsOf(t, filepath.Join(got, "last_model.onnx"))
	for name, v := range wa {
		for i := range v {
			if math.Float64bits(v[i]) != math.Float64bits(wb[name][i]) {
				t.Fatalf("%s: %s[%d] = %v, one process %v", what, name, i, wb[name][i], v[i])
			}
		}
	}
}

// TestMultiWorkerCLI trains with 2 and 3 workers in deterministic mode,
// with augmentation, weight decay, clipping, early stopping and the
// learning rate on plateau, and requires one process's history and
// weights bit for bit; only worker 0 writes the output folder. A run
// stopped after two epochs on 2 workers and resumed on 3 ends as the run
// straight does.
func TestMultiWorkerCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("mpirun runs")
	}
	mpitest.Mpirun(t)
	dir := t.TempDir()
	one := filepath.Join(dir, "one")
	gotrain(t, workerArgs(t, one, "--epochs", "4")...).expect(t, 0)
	for _, np := range []int{2, 3} {
		out := filepath.Join(dir, fmt.Sprintf("np%d", np))
		log, err := mpiRun(t, np, workerArgs(t, out, "--epochs", "4", "--strategy", "multiworker")...)
		if err != nil {
			t.Fatalf("mpirun -np %d: %v\n%s", np, err, log)
		}
		if !strings.Contains(log, fmt.Sprintf("multiworker strategy (%d workers of 1 replica)", np)) || strings.Count(log, "Epoch 1/4") != 1 {
			t.Errorf("the run does not say it has %d workers, or more than one worker printed:\n%s", np, log)
		}
		sameRun(t, one, out, fmt.Sprintf("%d workers", np))
		files, _ := os.ReadDir(out)
		var names []string
		for _, f := range files {
			names = append(names, f.Name())
		}
		if want := "best_model.onnx curves.png history.csv history.json last_model.onnx state.ckpt"; strings.Join(names, " ") != want {
			t.Errorf("--out holds %v, want %s (and each written once)", names, want)
		}
	}
	resumed := filepath.Join(dir, "resumed")
	if log, err := mpiRun(t, 2, workerArgs(t, resumed, "--epochs", "2", "--strategy", "multiworker")...); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	log, err := mpiRun(t, 3, workerArgs(t, resumed, "--epochs", "4", "--strategy", "multiworker", "--resume", filepath.Join(resumed, "state.ckpt"))...)
	if err != nil || !strings.Contains(log, "resumed at epoch 3") {
		t.Fatalf("resume on 3 workers: %v\n%s", err, log)
	}
	sameRun(t, one, resumed, "2 epochs on 2 workers, resumed on 3")
}

// workerPids returns the process ids of mpirun's workers by rank.
func workerPids(t *testing.T, mpirun, np int) map[int]int {
	t.Helper()
	out := map[int]int{}
	for end := time.Now().Add(time.Minute); len(out) < np; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("found workers %v of mpirun %d, want %d", out, mpirun, np)
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...
			_, rest, ok := strings.Cut(string(b), ") ")
			f := strings.Fields(rest)
			if !ok || len(f) < 2 || f[1] != strconv.Itoa(mpirun) {
				continue
			}
			dir := filepath.Dir(p)
			env, err := os.ReadFile(filepath.Join(dir, "environ"))
			if err != nil {
				continue
			}
			for _, kv := range bytes.Split(env, []byte{0}) {
				if r, ok := strings.CutPrefix(string(kv), "OMPI_COMM_WORLD_RANK="); ok {
					rank, _ := strconv.Atoi(r)
					pid, _ := strconv.Atoi(filepath.Base(dir))
					out[rank] = pid
				}
			}
		}
	}
	return out
}

// waitState waits for the run's first training state (an epoch done).
func waitState(t *testing.T, j *mpitest.Job, path string) {
	t.Helper()
	for end := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("no %s after 2 minutes:\n%s", path, j.Output())
		}
	}
}

// TestMultiWorkerKilled kills worker 1 with SIGKILL while it trains: the
// others end, with a non-zero status, within 60 s, with a message that
// names rank 1, and the last training state loads and resumes.
func TestMultiWorkerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("mpirun runs")
	}
	mpitest.Mpirun(t)
	out := filepath.Join(t.TempDir(), "run")
	state := filepath.Join(out, "state.ckpt")
	j := mpiGotrain(t, 3, nil, trainArgs(t, out, "--epochs", "100000", "--strategy", "multiworker")...)
	pids := workerPids(t, j.Pid(), 3)
	for _, p := range pids {
		j.Track(p)
	}
	waitState(t, j, state)
	time.Sleep(100 * time.Millisecond) // into an epoch
	syscall.Kill(pids[1], syscall.SIGKILL)
	began := time.Now()
	err, ended := j.Wait(60 * time.Second)
	if !ended {
		t.Fatalf("mpirun still runs 60 s after worker 1 was killed:\n%s", j.Output())
	}
	if err == nil || !strings.Contains(j.Output(), "rank 1") {
		t.Fatalf("mpirun ended with %v, and a message naming rank 1 is wanted:\n%s", err, j.Output())
	}
	t.Logf("the job ended %v after the kill", time.Since(began).Round(time.Millisecond))
	resumeWorkers(t, out, loadState(t, state))
}

func loadState(t *testing.T, path string) *train.State {
	t.Helper()
	st, err := checkpoint.LoadState(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// resumeWorkers resumes a multi-worker run from its state in out, on 2
// workers, for one epoch more than the state began.
func resumeWorkers(t *testing.T, out string, st *train.State) {
	t.Helper()
	log, err := mpiRun(t, 2, trainArgs(t, out, "--epochs", strconv.Itoa(st.Epoch+2), "--strategy", "multiworker",
		"--resume", filepath.Join(out, "state.ckpt"))...)
	if err != nil || !strings.Contains(log, "resumed at epoch") {
		t.Fatalf("resuming: %v\n%s", err, log)
	}
}

// TestMultiWorkerInterrupt sends SIGINT to mpirun, as Ctrl-C does: every
// worker stops after its current step, worker 0 writes the state of that
// step, and it resumes.
func TestMultiWorkerInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("mpirun runs")
	}
	mpitest.Mpirun(t)
	out := filepath.Join(t.TempDir(), "run")
	state := filepath.Join(out, "state.ckpt")
	// mpirun sends SIGTERM a second after Ctrl-C, and SIGKILL a second
	// later (odls_base_sigkill_timeout, 1 s by default); 3 s leaves the
	// workers time on a loaded machine.
	j := mpiGotrain(t, 2, []string{"odls_base_sigkill_timeout", "3"}, trainArgs(t, out, "--epochs", "100000", "--strategy", "multiworker")...)
	waitState(t, j, state)
	before := loadState(t, state)
	syscall.Kill(j.Pid(), syscall.SIGINT)
	err, ended := j.Wait(60 * time.Second)
	if !ended || err == nil {
		t.Fatalf("after SIGINT mpirun ended %v with %v:\n%s", ended, err, j.Output())
	}
	o := j.Output()
	for _, want := range []string{"training interrupted at epoch", "resume with: mpirun -np 2 gotrain train", "interrupted; the training state is in " + state} {
		if strings.Count(o, want) != 1 {
			t.Errorf("the output does not say %q once:\n%s", want, o)
		}
	}
	after := loadState(t, state)
	if after.Step <= before.Step {
		t.Fatalf("the state is at step %d, as before the interrupt: no state was written at the stop", after.Step)
	}
	resumeWorkers(t, out, after)
}

// TestMultiWorkerFlags: under mpirun another strategy is refused, and the
// worker timeout must be positive.
func TestMultiWorkerFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("mpirun runs")
	}
	mpitest.Mpirun(t)
	out := filepath.Join(t.TempDir(), "run")
	log, err := mpiRun(t, 2, trainArgs(t, out, "--epochs", "1")...)
	if err == nil || !strings.Contains(log, "mpirun started 2 processes, but --strategy is single") {
		t.Errorf("--strategy single under mpirun -np 2: %v\n%s", err, log)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the refused run created %s", out)
	}
	gotrain(t, trainArgs(t, out, "--epochs", "1", "--strategy", "multiworker", "--worker-timeout", "0")...).expect(t, 2, "--worker-timeout 0: must be positive")
}
