package mpi_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gotrain/gotrain/internal/mpi"
	"github.com/gotrain/gotrain/internal/mpi/mpitest"
)

// TestMain sends the processes that mpirun starts to their scenario.
func TestMain(m *testing.M) {
	if s := mpitest.Scenario(); s != "" {
		os.Exit(worker(s))
	}
	os.Exit(m.Run())
}

// worker runs one scenario as a rank of an MPI world and returns the exit
// status; it prints "FAIL rank R: ..." for a failed check.
func worker(scenario string) int {
	o := mpi.Options{}
	if v := os.Getenv("TEST_LOST_AFTER"); v != "" {
		o.LostAfter, _ = time.ParseDuration(v)
	}
	if v := os.Getenv("TEST_TIMEOUT"); v != "" {
		o.Timeout, _ = time.ParseDuration(v)
	}
	c, err := mpi.Init(o)
	if err != nil {
		fmt.Println("FAIL init:", err)
		return 1
	}
	fmt.Printf("ready rank %d pid %d\n", c.Rank(), os.Getpid())
	var fails []string
	fail := func(format string, args ...any) {
		fails = append(fails, fmt.Sprintf(format, args...))
	}
	switch scenario {
	case "collectives":
		collectives(c, fail)
	case "loop": // collectives until something ends the world
		for i := 0; ; i++ {
			buf := []float32{1}
			if err := c.AllreduceSum(buf); err != nil {
				fmt.Printf("rank %d: step %d: %v\n", c.Rank(), i, err)
				return 3
			}
			if i == 20 {
				fmt.Printf("running rank %d\n", c.Rank())
			}
			time.Sleep(10 * time.Millisecond)
		}
	case "hang": // rank 1 stops taking part, but lives on
		for i := 0; ; i++ {
			if c.Rank() == 1 && i == 5 {
				fmt.Printf("rank 1 hangs\n")
				time.Sleep(time.Hour)
			}
			if err := c.AllreduceSum([]float32{1}); err != nil {
				fmt.Printf("rank %d: step %d: %v\n", c.Rank(), i, err)
				return 3
			}
		}
	default:
		fail("unknown scenario %q", scenario)
	}
	if err := c.Close(); err != nil {
		fail("close: %v", err)
	}
	for _, f := range fails {
		fmt.Printf("FAIL rank %d: %s\n", c.Rank(), f)
	}
	if len(fails) > 0 {
		return 1
	}
	fmt.Printf("ok rank %d\n", c.Rank())
	return 0
}

// contribution is rank r's values in the reductions: chosen so that the
// order of float32 additions changes the result.
func contribution(r, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(math.Pow(10, float64((r*3+i)%8))) * (1 + float32(r)/3 + float32(i)/7)
		if (r+i)%2 == 1 {
			out[i] = -out[i]
		}
	}
	return out
}

func collectives(c *mpi.Comm, fail func(string, ...any)) {
	rank, size := c.Rank(), c.Size()
	if r, s, ok := mpi.Launched(); !ok || r != rank || s != size {
		fail("Launched() = %d, %d, %v; MPI says rank %d of %d", r, s, ok, rank, size)
	}
	const n = 1000
	// Ordered: the rank-order float32 fold, bit for bit.
	want := contribution(0, n)
	for r := 1; r < size; r++ {
		for i, v := range contribution(r, n) {
			want[i] += v
		}
	}
	got := contribution(rank, n)
	if err := c.AllreduceOrdered(got); err != nil {
		fail("AllreduceOrdered: %v", err)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			fail("AllreduceOrdered[%d] = %v, want the rank-order sum %v", i, got[i], want[i])
			break
		}
	}
	// Free order: within float32 rounding of the exact sum (3 terms of at
	// most 1e7 each: a few ulps of the largest).
	free := contribution(rank, n)
	if err := c.AllreduceSum(free); err != nil {
		fail("AllreduceSum: %v", err)
	}
	for i := range want {
		exact := 0.0
		scale := 0.0
		for r := 0; r < size; r++ {
			v := float64(contribution(r, n)[i])
			exact += v
			scale = math.Max(scale, math.Abs(v))
		}
		if d := math.Abs(float64(free[i]) - exact); d > 4*scale*math.Pow(2, -24) {
			fail("AllreduceSum[%d] = %v, exact sum %v", i, free[i], exact)
			break
		}
	}
	f64 := []float64{float64(rank), 0.5}
	if err := c.AllreduceSum64(f64); err != nil || f64[0] != float64(size*(size-1)/2) || f64[1] != 0.5*float64(size) {
		fail("AllreduceSum64 = %v, %v", f64, err)
	}
	// Fold where worker 0 contributes nothing, and each worker sees its
	// predecessor's value.
	res, err := c.Fold(3, func(prev []float32) ([]float32, error) {
		if rank == 0 {
			if prev != nil {
				return nil, fmt.Errorf("worker 0 got %v", prev)
			}
			return nil, nil
		}
		if rank == 1 && prev != nil {
			return nil, fmt.Errorf("worker 1 got %v after worker 0 gave nothing", prev)
		}
		if prev == nil {
			return []float32{float32(rank), 0, 1}, nil
		}
		prev[1] = prev[0]
		prev[0] = float32(rank)
		prev[2]++
		return prev, nil
	})
	if want := []float32{float32(size - 1), float32(size - 2), float32(size - 1)}; err != nil || (size > 1 && fmt.Sprint(res) != fmt.Sprint(want)) {
		fail("Fold = %v, %v; want %v", res, err, want)
	}
	// A failing contribution fails every worker's Fold, naming the worker.
	_, err = c.Fold(2, func(prev []float32) ([]float32, error) {
		if rank == size-1 {
			return nil, errors.New("a contribution fails")
		}
		return []float32{1, 2}, nil
	})
	switch {
	case rank == size-1 && (err == nil || err.Error() != "a contribution fails"):
		fail("Fold failing here returned %v", err)
	case rank != size-1 && (err == nil || !strings.Contains(err.Error(), fmt.Sprintf("worker rank %d", size-1))):
		fail("Fold failing on rank %d returned %v", size-1, err)
	}
	// Broadcasts and gathers, with an empty contribution.
	b := make([]byte, 5)
	if rank == size-1 {
		copy(b, "hello")
	}
	if err := c.Bcast(b, size-1); err != nil || string(b) != "hello" {
		fail("Bcast = %q, %v", b, err)
	}
	var mine []byte
	if rank == 0 {
		mine = bytes.Repeat([]byte("x"), 100000)
	}
	bb, err := c.BcastBytes(mine, 0)
	if err != nil || len(bb) != 100000 || bb[99999] != 'x' {
		fail("BcastBytes: %d bytes, %v", len(bb), err)
	}
	all, err := c.Allgather([]byte(strings.Repeat(strconv.Itoa(rank), rank)))
	if err != nil || len(all) != size {
		fail("Allgather = %q, %v", all, err)
	} else {
		for r, a := range all {
			if string(a) != strings.Repeat(strconv.Itoa(r), r) {
				fail("Allgather[%d] = %q", r, a)
			}
		}
	}
	if err := c.Barrier(); err != nil {
		fail("Barrier: %v", err)
	}
	if c.Host(rank) == "" || !strings.Contains(c.Version(), "Open MPI") {
		fail("host %q, library %q", c.Host(rank), c.Version())
	}
}

func TestCollectives(t *testing.T) {
	for _, np := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) {
			out, err := mpitest.Run(t, mpitest.Options{NP: np, Scenario: "collectives"}, 2*time.Minute)
			if err != nil || strings.Count(out, "ok rank") != np || strings.Contains(out, "FAIL") {
				t.Fatalf("mpirun -np %d: %v\n%s", np, err, out)
			}
		})
	}
}

// waitReady waits for every rank's "ready" line and tracks its pid;
// it returns the pids by rank.
func waitReady(t *testing.T, j *mpitest.Job, np int) []int {
	t.Helper()
	pids := make([]int, np)
	for range np {
		l, err := j.WaitLine("ready rank", time.Minute)
		if err != nil {
			t.Fatalf("%v\n%s", err, j.Output())
		}
		var r, pid int
		if _, err := fmt.Sscanf(l, "ready rank %d pid %d", &r, &pid); err != nil || r < 0 || r >= np {
			t.Fatalf("bad line %q", l)
		}
		pids[r] = pid
		j.Track(pid)
	}
	return pids
}

// TestKilledWorker kills one worker with SIGKILL in the middle of its
// collectives: the others must end, non-zero, within 60 s, with a message
// that names the lost rank (mpirun notices the death and says which).
func TestKilledWorker(t *testing.T) {
	for _, np := range []int{2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) {
			j := mpitest.Start(t, mpitest.Options{NP: np, Scenario: "loop"})
			pids := waitReady(t, j, np)
			if _, err := j.WaitLine("running rank", time.Minute); err != nil {
				t.Fatalf("%v\n%s", err, j.Output())
			}
			syscall.Kill(pids[1], syscall.SIGKILL)
			began := time.Now()
			err, ended := j.Wait(60 * time.Second)
			out := j.Output()
			if !ended {
				t.Fatalf("the job still runs 60 s after rank 1 was killed:\n%s", out)
			}
			if err == nil {
				t.Fatalf("mpirun exited 0 after rank 1 was killed:\n%s", out)
			}
			if !strings.Contains(out, "rank 1") || !strings.Contains(out, "signal 9") {
				t.Fatalf("no message names rank 1's death:\n%s", out)
			}
			t.Logf("ended %v after the kill: %v", time.Since(began).Round(time.Millisecond), err)
		})
	}
}

// TestStoppedWorker stops one worker (SIGSTOP): mpirun sees nothing, so the
// others must find out by themselves, from the missing heartbeats, and end
// with an error that names it.
func TestStoppedWorker(t *testing.T) {
	j := mpitest.Start(t, mpitest.Options{NP: 3, Scenario: "loop", Env: []string{"TEST_LOST_AFTER=3s"}})
	pids := waitReady(t, j, 3)
	if _, err := j.WaitLine("running rank", time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, j.Output())
	}
	syscall.Kill(pids[1], syscall.SIGSTOP)
	defer syscall.Kill(pids[1], syscall.SIGCONT)
	l, err := j.WaitLine("no heartbeat", 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, j.Output())
	}
	if !strings.Contains(l, "lost worker rank 1 (") {
		t.Fatalf("the message does not name rank 1: %q", l)
	}
	if err, ended := j.Wait(60 * time.Second); !ended || err == nil {
		t.Fatalf("mpirun ended %v with %v:\n%s", ended, err, j.Output())
	}
}

// TestHungWorker: a worker that lives (its heartbeats go on) but stops
// taking part in the collectives is named by the others' timeout.
func TestHungWorker(t *testing.T) {
	j := mpitest.Start(t, mpitest.Options{NP: 3, Scenario: "hang", Env: []string{"TEST_TIMEOUT=3s"}})
	waitReady(t, j, 3)
	l, err := j.WaitLine("did not complete within 3s", 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, j.Output())
	}
	if !strings.Contains(l, "worker rank 1 (") || !strings.Contains(l, "has not reached it") {
		t.Fatalf("the message does not name rank 1: %q", l)
	}
	if err, ended := j.Wait(60 * time.Second); !ended || err == nil {
		t.Fatalf("mpirun ended %v with %v:\n%s", ended, err, j.Output())
	}
}

func TestLaunchedOutsideMpirun(t *testing.T) {
	t.Setenv("OMPI_COMM_WORLD_SIZE", "")
	t.Setenv("OMPI_COMM_WORLD_RANK", "")
	if r, s, ok := mpi.Launched(); ok || r != 0 || s != 1 {
		t.Fatalf("Launched() = %d, %d, %v outside mpirun", r, s, ok)
	}
	t.Setenv("OMPI_COMM_WORLD_SIZE", "4")
	t.Setenv("OMPI_COMM_WORLD_RANK", "4")
	if _, _, ok := mpi.Launched(); ok {
		t.Fatal("Launched() accepts rank 4 of 4")
	}
}

func TestMissingLibrary(t *testing.T) {
	_, err := mpi.Init(mpi.Options{Library: "libmpi-that-does-not-exist.so"})
	want := "libmpi-that-does-not-exist.so"
	if mpi.Supported() != nil {
		want = "CGO_ENABLED=1" // the build without cgo says how to get one with
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Init with a missing library: %v; want a message with %q", err, want)
	}
}
