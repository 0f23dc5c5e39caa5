// Package mpitest runs tests' workers under OpenMPI's mpirun: a test
// re-executes its own test binary as the N processes of an MPI world, and
// the binary's TestMain sends each of them to the scenario the test named
// (see Scenario), instead of running the tests.
//
// mpirun comes from Debian's openmpi-bin, which `make deps` installs.
// Without it a test is skipped with a "missing: " reason, and fails under
// CI=true, where every requirement must be installed (testenv.Missing).
package mpitest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/internal/mpi"
	"github.com/gotrain/gotrain/internal/testenv"
)

// EnvScenario names the scenario a worker runs.
const EnvScenario = "GOTRAIN_MPI_SCENARIO"

// Scenario is the scenario this process runs as a worker, or "" when it is
// not a worker.
func Scenario() string { return os.Getenv(EnvScenario) }

// Mpirun returns mpirun's path, or skips t (fails it under CI) when
// OpenMPI is not installed.
func Mpirun(t testing.TB) string {
	t.Helper()
	if err := mpi.Supported(); err != nil {
		t.Skip(err) // a build without cgo has no multi-worker training to test
	}
	p, err := exec.LookPath("mpirun")
	if err != nil {
		testenv.Missing(t, "mpirun (Debian's openmpi-bin; make deps installs it)")
	}
	return p
}

// Job is a running mpirun.
type Job struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	pids []int // workers to end at Kill
	out  bytes.Buffer
	line chan string
	done chan struct{}
	err  error
}

// Options configure Start.
type Options struct {
	NP       int      // processes
	Scenario string   // what the workers run
	Env      []string // more KEY=VALUE for the workers
	MCA      []string // mpirun --mca KEY VALUE pairs, flattened
	Args     []string // the program's arguments
	Program  string   // default: this test binary
}

// Start launches mpirun -np NP on the program (this test binary by
// default) with the scenario and environment, in a process group of its
// own so that Kill ends all of it.
func Start(t testing.TB, o Options) *Job {
	t.Helper()
	mpirun := Mpirun(t)
	prog := o.Program
	if prog == "" {
		prog = os.Args[0]
	}
	args := []string{"--oversubscribe", "--allow-run-as-root", "-np", strconv.Itoa(o.NP)}
	for i := 0; i+1 < len(o.MCA); i += 2 {
		args = append(args, "--mca", o.MCA[i], o.MCA[i+1])
	}
	env := append(os.Environ(), EnvScenario+"="+o.Scenario)
	env = append(env, o.Env...)
	for _, kv := range append([]string{EnvScenario + "=" + o.Scenario}, o.Env...) {
		k, _, _ := strings.Cut(kv, "=")
		args = append(args, "-x", k)
	}
	args = append(args, prog)
	args = append(args, o.Args...)
	cmd := exec.Command(mpirun, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	j := &Job{cmd: cmd, line: make(chan string, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", mpirun, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			j.mu.Lock()
			j.out.WriteString(sc.Text() + "\n")
			j.mu.Unlock()
			select {
			case j.line <- sc.Text():
			default:
			}
		}
		close(j.line)
	}()
	go func() {
		j.err = cmd.Wait()
		pw.Close()
		close(j.done)
	}()
	t.Cleanup(func() { j.Kill() })
	return j
}

// Pid is mpirun's process id.
func (j *Job) Pid() int { return j.cmd.Process.Pid }

// Output is everything printed so far.
func (j *Job) Output() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.out.String()
}

// WaitLine waits for a line containing s and returns it.
func (j *Job) WaitLine(s string, timeout time.Duration) (string, error) {
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-j.line:
			if !ok {
				return "", fmt.Errorf("mpirun ended before printing %q", s)
			}
			if strings.Contains(l, s) {
				return l, nil
			}
		case <-deadline:
			return "", fmt.Errorf("no line with %q within %v", s, timeout)
		}
	}
}

// Wait waits for mpirun to end, at most timeout; it reports the exit
// error (nil for status 0) and whether it ended in time.
func (j *Job) Wait(timeout time.Duration) (error, bool) {
	select {
	case <-j.done:
		return j.err, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Track adds a worker's process id to those Kill ends: mpirun puts its
// workers in process groups of their own.
func (j *Job) Track(pid int) {
	j.mu.Lock()
	j.pids = append(j.pids, pid)
	j.mu.Unlock()
}

// Kill ends mpirun, if still running: SIGTERM first (mpirun then ends its
// workers); after 5 s SIGKILL to its process group and to the tracked
// workers.
func (j *Job) Kill() {
	select {
	case <-j.done:
		return
	default:
	}
	syscall.Kill(j.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-j.done:
		return
	case <-time.After(5 * time.Second):
	}
	j.mu.Lock()
	for _, p := range j.pids {
		syscall.Kill(p, syscall.SIGKILL)
	}
	j.mu.Unlock()
	syscall.Kill(-j.cmd.Process.Pid, syscall.SIGKILL)
	<-j.done
}

// Run runs a job to its end (at most timeout) and returns its output and
// exit error; a job that runs past timeout is killed and fails t.
func Run(t testing.TB, o Options, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	j := Start(t, o)
	select {
	case <-j.done:
	case <-ctx.Done():
		j.Kill()
		t.Fatalf("mpirun -np %d (%s) ran past %v:\n%s", o.NP, o.Scenario, timeout, j.Output())
	}
	return j.Output(), j.err
}
