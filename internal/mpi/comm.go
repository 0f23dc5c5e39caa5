package mpi

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

type (
	handle = unsafe.Pointer // an OpenMPI handle (MPI_Comm, MPI_Request, ...)
	dtype  int
	op     int
)

// Datatypes and reduction ops, numbered as ompi.h numbers them.
const (
	dtByte dtype = iota
	dtFloat
	dtDouble
	dtInt64
)

const (
	opSum op = iota
	opMax
)

// Message tags: heartbeats on their own communicator, the ordered
// reduction's chain on the collectives' one.
const (
	tagHeartbeat = 1
	tagFold      = 2
)

// DefaultLibrary is the OpenMPI library Init loads when neither
// Options.Library nor $GOTRAIN_MPI_LIB names another: the soname of
// OpenMPI 3.x to 5.x.
const DefaultLibrary = "libmpi.so.40"

// Options tune Init. Zero values take the defaults.
type Options struct {
	// Library is the OpenMPI library to load (default: $GOTRAIN_MPI_LIB,
	// else DefaultLibrary).
	Library string
	// Timeout bounds the wait in one collective once every worker is known
	// to be alive (default 60 s): a worker that keeps sending heartbeats
	// but never arrives (a hang) ends the run with an error that names it.
	Timeout time.Duration
	// LostAfter is the silence after which a worker counts as lost
	// (default 10 s). Every worker's MPI thread sends a heartbeat to every
	// other every LostAfter/20, whatever its training is doing.
	LostAfter time.Duration
	// StartTimeout bounds Init's first exchange, which waits for the
	// slowest worker to start (default 10 min).
	StartTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Library == "" {
		o.Library = os.Getenv("GOTRAIN_MPI_LIB")
	}
	if o.Library == "" {
		o.Library = DefaultLibrary
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.LostAfter <= 0 {
		o.LostAfter = 10 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 10 * time.Minute
	}
}

// Supported says why this build cannot run multi-worker training (built
// without cgo), or nil.
func Supported() error {
	if !haveCgo {
		return fmt.Errorf("mpi: %w", load(""))
	}
	return nil
}

// Launched reports whether mpirun (OpenMPI's launcher) started this
// process, and the rank and world size it gave it, from the environment
// alone: nothing is loaded.
func Launched() (rank, size int, ok bool) {
	s, err1 := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_SIZE"))
	r, err2 := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_RANK"))
	if err1 != nil || err2 != nil || s < 1 || r < 0 || r >= s {
		return 0, 1, false
	}
	return r, s, true
}

// ErrWorker is wrapped by the errors of operations that fail because of
// another worker: lost (no heartbeat), hung (a collective timed out), or
// failed in an ordered reduction. The message names the worker.
var ErrWorker = errors.New("mpi")

// Comm is the world of worker processes: every collective is called by
// every worker, in the same order. A Comm is safe for concurrent use, but
// its collectives run one at a time.
type Comm struct {
	rank, size int
	hosts      []string
	pids       []int
	version    string
	o          Options

	jobs chan *job
	quit chan struct{} // closed when the MPI thread ends

	calls    sync.Mutex // one collective at a time, in the callers' order
	seq      atomic.Int64
	inside   atomic.Bool
	errMu    sync.Mutex
	err      error
	finished bool // MPI_Finalize has run: the MPI thread ends

	// The MPI thread's own state.
	coll, hb  handle // communicators of collectives and of heartbeats
	peers     []peer
	hbStopped bool
	pins      runtime.Pinner // heartbeat buffers, pinned for good
	abandoned []*job         // jobs whose buffers MPI may still use
}

// peer is what the MPI thread knows of another worker from its heartbeats.
type peer struct {
	heard    time.Time
	seq      int64 // collectives it had entered
	inside   bool  // whether it was waiting in one
	recv     []int64
	recvReq  handle
	send     []int64
	sendReq  handle
	everHeld bool
}

// job is one operation for the MPI thread: post starts its nonblocking
// requests, which the thread then tests until they complete; ctl, when
// set instead, runs on the thread as it is.
type job struct {
	what     string
	post     func(j *job) error
	ctl      func() error
	reqs     []*handle
	deadline time.Time
	posted   time.Time // when the MPI thread started it
	done     chan error
	pins     runtime.Pinner
}

// req returns a new request slot of the job.
func (j *job) req() *handle {
	h := new(handle)
	j.reqs = append(j.reqs, h)
	return h
}

var (
	initMu   sync.Mutex
	initDone bool
)

// Init loads OpenMPI, initialises MPI on a thread of its own (every MPI
// call of the process runs there), and exchanges the workers' host names
// and process ids for the messages that name a worker. MPI can be
// initialised once per process: a second Init fails.
func Init(o Options) (*Comm, error) {
	o.defaults()
	initMu.Lock()
	defer initMu.Unlock()
	if initDone {
		return nil, errors.New("mpi: MPI was initialised already in this process")
	}
	if err := load(o.Library); err != nil {
		if !haveCgo {
			return nil, fmt.Errorf("mpi: %w", err)
		}
		return nil, fmt.Errorf("mpi: cannot load OpenMPI (%s): %v; install it (Debian, Ubuntu: apt-get install openmpi-bin libopenmpi-dev) or name the library with GOTRAIN_MPI_LIB", o.Library, err)
	}
	initDone = true
	c := &Comm{o: o, jobs: make(chan *job), quit: make(chan struct{})}
	ready := make(chan error, 1)
	go c.thread(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	// Host names and process ids, for messages about a worker.
	me := fmt.Sprintf("%d %s", os.Getpid(), processorNameOf(c))
	all, err := c.allgather([]byte(me), o.StartTimeout)
	if err != nil {
		return nil, err
	}
	c.hosts, c.pids = make([]string, c.size), make([]int, c.size)
	for r, b := range all {
		pid, host, _ := strings.Cut(string(b), " ")
		c.pids[r], _ = strconv.Atoi(pid)
		c.hosts[r] = host
	}
	return c, nil
}

// processorNameOf asks the MPI thread for MPI_Get_processor_name.
func processorNameOf(c *Comm) string {
	var name string
	c.control("processor name", func() error { name = processorName(); return nil })
	return name
}

// thread is the MPI thread: it initialises MPI, then runs the jobs one at a
// time and sends and checks heartbeats between and during them.
func (c *Comm) thread(ready chan<- error) {
	runtime.LockOSThread() // never unlocked: MPI_THREAD_FUNNELED ties MPI to this thread
	defer close(c.quit)
	provided, err := initThread()
	if err == nil && provided < 1 {
		err = fmt.Errorf("the library provides thread level %d; gotrain needs MPI_THREAD_FUNNELED (1)", provided)
	}
	if err == nil {
		err = errorsReturn(world())
	}
	if err == nil {
		c.rank, c.size, err = rankSize(world())
	}
	if err == nil {
		c.coll, err = dup(world())
	}
	if err == nil {
		c.hb, err = dup(world())
	}
	if err != nil {
		ready <- fmt.Errorf("mpi: initialising: %w", err)
		return
	}
	c.version = libraryVersion()
	if err := c.startHeartbeats(); err != nil {
		ready <- fmt.Errorf("mpi: %w", err)
		return
	}
	ready <- nil
	c.loop()
}

// heartbeatEvery is the heartbeat interval.
func (c *Comm) heartbeatEvery() time.Duration {
	return max(c.o.LostAfter/20, 10*time.Millisecond)
}

func (c *Comm) loop() {
	every := c.heartbeatEvery()
	idle := time.NewTimer(every)
	nextBeat := time.Now()
	var cur *job
	polls := 0
	for {
		now := time.Now()
		if !now.Before(nextBeat) {
			c.heartbeat(now)
			nextBeat = now.Add(every)
		}
		if cur != nil && c.Err() != nil {
			c.abandon(cur, c.Err())
			cur = nil
		}
		if cur == nil {
			idle.Reset(time.Until(nextBeat))
			select {
			case j := <-c.jobs:
				if j.ctl != nil {
					j.done <- j.ctl()
					if c.finished {
						return
					}
					continue
				}
				if err := c.Err(); err != nil {
					j.done <- err
					continue
				}
				if err := j.post(j); err != nil {
					c.fail(fmt.Errorf("%s: %w", j.what, err))
					c.abandon(j, c.Err())
					continue
				}
				cur, polls = j, 0
				cur.posted = time.Now()
			case <-idle.C:
			}
			continue
		}
		done, err := testAll(cur.reqs)
		switch {
		case err != nil:
			c.fail(fmt.Errorf("%s: %w%s", cur.what, err, c.blame(now)))
			c.abandon(cur, c.Err())
			cur = nil
		case done:
			cur.done <- nil
			cur = nil
		case now.After(cur.deadline):
			c.fail(fmt.Errorf("%w: %s did not complete within %v%s", ErrWorker, cur.what, c.o.Timeout, c.blame(now)))
			c.abandon(cur, c.Err())
			cur = nil
		default:
			waited := now.Sub(cur.posted)
			if waited >= spinFor {
				polls++
			}
			pause(polls, waited)
		}
	}
}

// spinFor is how long a pending collective is polled back to back before
// the MPI thread sleeps between polls: long enough for a collective whose
// workers are all there to complete at full speed (MPI progresses only in
// MPI calls, and a collective takes several rounds), short enough that a
// worker waiting for a slower one does not burn the core it computes on.
const spinFor = 200 * time.Microsecond

// pause waits between polls of a pending request, polled since waited: not
// at all at first, then sleeps that grow to 200 us, which adds at most a
// fifth of a millisecond to a step that waits for a slower worker.
func pause(polls int, waited time.Duration) {
	if waited < spinFor {
		return
	}
	time.Sleep(time.Duration(min(polls, 8)) * 25 * time.Microsecond)
}

func testAll(reqs []*handle) (bool, error) {
	for _, r := range reqs {
		if *r == nil {
			continue // completed at an earlier poll
		}
		done, err := test(r)
		if err != nil {
			return false, err
		}
		if !done {
			return false, nil
		}
		*r = nil // MPI set it to MPI_REQUEST_NULL; nil marks it done here
	}
	return true, nil
}

// abandon ends a job with err while MPI may still hold its buffers: the job
// stays referenced, its memory pinned, for as long as the process runs.
func (c *Comm) abandon(j *job, err error) {
	c.abandoned = append(c.abandoned, j)
	j.done <- err
}

// fail records the first failure; every later operation returns it.
func (c *Comm) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

// Err is the failure that ended the world's operations, or nil.
func (c *Comm) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// worker names a worker for messages.
func (c *Comm) worker(r int) string {
	if r < len(c.hosts) && c.hosts[r] != "" {
		return fmt.Sprintf("worker rank %d (host %s, pid %d)", r, c.hosts[r], c.pids[r])
	}
	return fmt.Sprintf("worker rank %d", r)
}

// startHeartbeats posts a heartbeat receive from every other worker.
func (c *Comm) startHeartbeats() error {
	c.peers = make([]peer, c.size)
	now := time.Now()
	for r := range c.peers {
		if r == c.rank {
			continue
		}
		p := &c.peers[r]
		p.heard = now
		p.recv, p.send = make([]int64, 2), make([]int64, 2)
		c.pins.Pin(&p.recv[0])
		c.pins.Pin(&p.send[0])
		if err := irecv(unsafe.Pointer(&p.recv[0]), 16, r, tagHeartbeat, c.hb, &p.recvReq); err != nil {
			return err
		}
	}
	return nil
}

// heartbeat sends this worker's heartbeat to every other (unless the last
// one to that worker is still pending), takes in the heartbeats that
// arrived, and fails the world when a worker has been silent for
// LostAfter.
func (c *Comm) heartbeat(now time.Time) {
	for r := range c.peers {
		if r == c.rank {
			continue
		}
		p := &c.peers[r]
		for p.recvReq != nil {
			done, err := test(&p.recvReq)
			if err != nil || !done {
				break
			}
			p.recvReq = nil
			p.heard, p.seq, p.inside = now, p.recv[0], p.recv[1] != 0
			if c.hbStopped {
				break
			}
			if err := irecv(unsafe.Pointer(&p.recv[0]), 16, r, tagHeartbeat, c.hb, &p.recvReq); err != nil {
				break
			}
		}
		if p.sendReq != nil {
			if done, err := test(&p.sendReq); err == nil && done {
				p.sendReq = nil
			}
		}
		if p.sendReq == nil && !c.hbStopped {
			p.send[0] = c.seq.Load()
			p.send[1] = 0
			if c.inside.Load() {
				p.send[1] = 1
			}
			_ = isend(unsafe.Pointer(&p.send[0]), 16, r, tagHeartbeat, c.hb, &p.sendReq)
		}
		if !c.hbStopped && now.Sub(p.heard) > c.o.LostAfter && c.Err() == nil {
			where := "between collectives"
			if c.inside.Load() {
				where = fmt.Sprintf("waiting in collective #%d", c.seq.Load())
			}
			c.fail(fmt.Errorf("%w: lost %s: no heartbeat for %v (it was killed, stopped or cut off; its last collective #%d; rank %d was %s)",
				ErrWorker, c.worker(r), now.Sub(p.heard).Round(time.Second), p.seq, c.rank, where))
		}
	}
}

// blame lists the workers that the current collective waits for, from
// their last heartbeats: those that have not entered it, and those not
// heard from for three heartbeat intervals.
func (c *Comm) blame(now time.Time) string {
	seq := c.seq.Load()
	var parts []string
	for r := range c.peers {
		if r == c.rank {
			continue
		}
		p := &c.peers[r]
		silent := now.Sub(p.heard)
		switch {
		case silent > 3*c.heartbeatEvery():
			parts = append(parts, fmt.Sprintf("%s has not been heard from for %v", c.worker(r), silent.Round(time.Millisecond)))
		case p.seq < seq:
			parts = append(parts, fmt.Sprintf("%s has not reached it (it is at collective #%d)", c.worker(r), p.seq))
		}
	}
	if len(parts) == 0 {
		return " (every worker reached it)"
	}
	return ": " + strings.Join(parts, "; ")
}

// Rank is this worker's rank, 0 to Size()-1.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of workers.
func (c *Comm) Size() int { return c.size }

// Host is the host name of a worker.
func (c *Comm) Host(rank int) string { return c.hosts[rank] }

// Version is the library's MPI_Get_library_version.
func (c *Comm) Version() string { return strings.TrimSpace(c.version) }

// control runs f on the MPI thread.
func (c *Comm) control(what string, f func() error) error {
	j := &job{what: what, ctl: f, done: make(chan error, 1)}
	select {
	case c.jobs <- j:
	case <-c.quit:
		return fmt.Errorf("mpi: %s: MPI has been finalised", what)
	}
	return <-j.done
}

// collective runs one collective operation: post starts its requests on
// the MPI thread, buffers are pinned while MPI holds them.
func (c *Comm) collective(what string, timeout time.Duration, bufs []unsafe.Pointer, post func(j *job) error) error {
	if err := c.Err(); err != nil {
		return err
	}
	seq := c.seq.Load()
	j := &job{what: fmt.Sprintf("%s (collective #%d)", what, seq), post: post, deadline: time.Now().Add(timeout), done: make(chan error, 1)}
	for _, b := range bufs {
		if b != nil {
			j.pins.Pin(b)
		}
	}
	select {
	case c.jobs <- j:
	case <-c.quit:
		return fmt.Errorf("mpi: %s: MPI has been finalised", what)
	}
	err := <-j.done
	if err == nil {
		j.pins.Unpin()
	}
	return err
}

// enter and leave bracket a public collective: heartbeats carry the count
// of collectives entered and whether the worker waits in one.
func (c *Comm) enter() func() {
	c.calls.Lock()
	c.seq.Add(1)
	c.inside.Store(true)
	return func() {
		c.inside.Store(false)
		c.calls.Unlock()
	}
}

// AllreduceSum sums buf over the workers, in place, in the order OpenMPI
// chooses (fast; the result may differ in the last bits from another
// order, but every worker gets the same).
func (c *Comm) AllreduceSum(buf []float32) error {
	defer c.enter()()
	return c.allreduce("all-reduce", unsafe.Pointer(unsafe.SliceData(buf)), len(buf), dtFloat)
}

// AllreduceSum64 is AllreduceSum of float64 values.
func (c *Comm) AllreduceSum64(buf []float64) error {
	defer c.enter()()
	return c.allreduce("all-reduce", unsafe.Pointer(unsafe.SliceData(buf)), len(buf), dtDouble)
}

func (c *Comm) allreduce(what string, p unsafe.Pointer, n int, dt dtype) error {
	if n == 0 {
		return nil
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("mpi: %s of %d values: more than MPI's int counts", what, n)
	}
	return c.collective(what, c.o.Timeout, []unsafe.Pointer{p}, func(j *job) error {
		return iallreduce(p, n, dt, opSum, c.coll, j.req())
	})
}

// Bcast copies root's buf to every worker's buf (of the same length).
func (c *Comm) Bcast(buf []byte, root int) error {
	defer c.enter()()
	return c.bcast(buf, root, c.o.Timeout)
}

func (c *Comm) bcast(buf []byte, root int, timeout time.Duration) error {
	if len(buf) == 0 {
		return nil
	}
	if len(buf) > math.MaxInt32 {
		return fmt.Errorf("mpi: broadcast of %d bytes: more than MPI's int counts", len(buf))
	}
	p := unsafe.Pointer(&buf[0])
	return c.collective("broadcast", timeout, []unsafe.Pointer{p}, func(j *job) error {
		return ibcast(p, len(buf), root, c.coll, j.req())
	})
}

// BcastBytes returns root's b on every worker (others pass nil).
func (c *Comm) BcastBytes(b []byte, root int) ([]byte, error) {
	defer c.enter()()
	n := make([]byte, 8)
	if c.rank == root {
		putInt64(n, int64(len(b)))
	}
	if err := c.bcast(n, root, c.o.Timeout); err != nil {
		return nil, err
	}
	size := getInt64(n)
	if size < 0 || size > math.MaxInt32 {
		return nil, fmt.Errorf("mpi: broadcast of %d bytes: out of range", size)
	}
	if c.rank != root {
		b = make([]byte, size)
	}
	return b, c.bcast(b, root, c.o.Timeout)
}

// Allgather returns every worker's bytes, by rank.
func (c *Comm) Allgather(mine []byte) ([][]byte, error) {
	defer c.enter()()
	return c.allgather(mine, c.o.Timeout)
}

func (c *Comm) allgather(mine []byte, timeout time.Duration) ([][]byte, error) {
	// Lengths first, then the bytes.
	lens := make([]byte, 8*c.size)
	putInt64(lens[8*c.rank:], int64(len(mine)))
	if err := c.gatherv(lens[8*c.rank:8*c.rank+8], lens, fixed(c.size, 8), timeout); err != nil {
		return nil, err
	}
	counts := make([]int, c.size)
	total := 0
	for r := range counts {
		n := getInt64(lens[8*r:])
		if n < 0 || n > math.MaxInt32-int64(total) {
			return nil, fmt.Errorf("mpi: gather: %s sends %d bytes: out of range", c.worker(r), n)
		}
		counts[r] = int(n)
		total += int(n)
	}
	all := make([]byte, total)
	if err := c.gatherv(mine, all, counts, timeout); err != nil {
		return nil, err
	}
	out := make([][]byte, c.size)
	off := 0
	for r, n := range counts {
		out[r] = all[off : off+n : off+n]
		off += n
	}
	return out, nil
}

func fixed(n, v int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// gatherv gathers counts[r] bytes from each worker r into all, in rank order.
func (c *Comm) gatherv(mine, all []byte, counts []int, timeout time.Duration) error {
	displs := make([]int, len(counts))
	total := 0
	for r, n := range counts {
		displs[r] = total
		total += n
	}
	if total == 0 {
		return nil
	}
	cc, cd := cInts(counts), cInts(displs)
	// A worker that sends nothing still needs a valid pointer.
	var one [1]byte
	if len(mine) == 0 {
		mine = one[:]
	}
	if len(all) == 0 {
		all = one[:]
	}
	send, recv := unsafe.Pointer(&mine[0]), unsafe.Pointer(&all[0])
	pc, pd := unsafe.Pointer(&cc[0]), unsafe.Pointer(&cd[0])
	n := counts[c.rank]
	return c.collective("gather", timeout, []unsafe.Pointer{send, recv, pc, pd}, func(j *job) error {
		return iallgatherv(send, n, recv, pc, pd, c.coll, j.req())
	})
}

// Barrier returns when every worker has called it.
func (c *Comm) Barrier() error {
	defer c.enter()()
	return c.collective("barrier", c.o.Timeout, nil, func(j *job) error {
		return ibarrier(c.coll, j.req())
	})
}

// Fold is a reduction in rank order: worker 0 calls f(nil), and each
// worker r > 0 calls f with the value worker r-1's f returned (nil when no
// worker before it contributed), so the result is
// f_{N-1}(...f_1(f_0(nil))); every worker gets it. f returns prev (or nil)
// to contribute nothing, or a slice of n values (it may write into prev).
// The value passes from worker to worker, N-1 hops one after the other,
// and is then broadcast: slower than an all-reduce, for a fixed order of
// floating-point operations. When f fails on one worker, every worker's
// Fold fails.
func (c *Comm) Fold(n int, f func(prev []float32) ([]float32, error)) ([]float32, error) {
	defer c.enter()()
	if n+1 > math.MaxInt32/4 {
		return nil, fmt.Errorf("mpi: ordered reduction of %d values: more than MPI's int counts", n)
	}
	// The value, then a flag: 0 nothing yet, 1 a value, 2+r worker r failed.
	buf := make([]float32, n+1)
	bytes := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), 4*(n+1))
	p := unsafe.Pointer(&buf[0])
	if c.rank > 0 {
		err := c.collective(fmt.Sprintf("ordered reduction (receiving from %s)", c.worker(c.rank-1)), c.o.Timeout, []unsafe.Pointer{p}, func(j *job) error {
			return irecv(p, 4*(n+1), c.rank-1, tagFold, c.coll, j.req())
		})
		if err != nil {
			return nil, err
		}
	}
	var mine error
	if flag := buf[n]; flag < 2 {
		var prev []float32
		if flag == 1 {
			prev = buf[:n:n]
		}
		out, err := f(prev)
		switch {
		case err != nil:
			mine = err
			buf[n] = float32(2 + c.rank)
		case out == nil:
			buf[n] = 0
		case len(out) != n:
			mine = fmt.Errorf("mpi: ordered reduction: a contribution of %d values, expected %d", len(out), n)
			buf[n] = float32(2 + c.rank)
		default:
			if &out[0] != &buf[0] {
				copy(buf, out)
			}
			buf[n] = 1
		}
	}
	if c.rank < c.size-1 {
		err := c.collective(fmt.Sprintf("ordered reduction (sending to %s)", c.worker(c.rank+1)), c.o.Timeout, []unsafe.Pointer{p}, func(j *job) error {
			return isend(p, 4*(n+1), c.rank+1, tagFold, c.coll, j.req())
		})
		if err != nil {
			return nil, err
		}
	}
	if err := c.bcast(bytes, c.size-1, c.o.Timeout); err != nil {
		return nil, err
	}
	if mine != nil {
		return nil, mine
	}
	switch flag := buf[n]; {
	case flag == 0:
		return nil, nil
	case flag == 1:
		return buf[:n:n], nil
	default:
		return nil, fmt.Errorf("%w: %s failed in the ordered reduction", ErrWorker, c.worker(int(flag)-2))
	}
}

// AllreduceOrdered sums buf over the workers in rank order, in place:
// ((x_0 + x_1) + x_2) + ..., in float32, the same bits on every run.
func (c *Comm) AllreduceOrdered(buf []float32) error {
	sum, err := c.Fold(len(buf), func(prev []float32) ([]float32, error) {
		if prev == nil {
			return buf, nil
		}
		for i, v := range buf {
			prev[i] += v
		}
		return prev, nil
	})
	if err != nil {
		return err
	}
	copy(buf, sum)
	return nil
}

// Close ends MPI for this process: a barrier (every worker is done with its
// collectives), heartbeats stop, a second barrier (no heartbeat is on its
// way), and MPI_Finalize. After a failure it only reports it: the process
// should exit with an error, and mpirun ends the others.
func (c *Comm) Close() error {
	if err := c.Err(); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	c.control("stopping heartbeats", func() error { c.hbStopped = true; return nil })
	if err := c.Barrier(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		done <- c.control("finalising", func() error {
			for r := range c.peers {
				p := &c.peers[r]
				if p.recvReq != nil {
					if ok, err := test(&p.recvReq); err == nil && ok {
						p.recvReq = nil
					} else {
						cancel(&p.recvReq)
						p.recvReq = nil
					}
				}
			}
			c.finished = true
			return finalize()
		})
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(c.o.Timeout):
		return fmt.Errorf("mpi: MPI_Finalize did not return within %v", c.o.Timeout)
	}
}

func putInt64(b []byte, v int64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func getInt64(b []byte) int64 {
	var v int64
	for i := range 8 {
		v |= int64(b[i]) << (8 * i)
	}
	return v
}
