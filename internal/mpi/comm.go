package mpi

import (
	"errors"
	"fmt"
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
)

const opSum op = 0

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
	heard   time.Time
	seq     int64 // collectives it had entered
	inside  bool  // whether it was waiting in one
	recv    []int64
	recvReq handle
	send    []int64
	sendReq handle
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

// Rank is this worker's rank, 0 to Size()-1.
func (c *Comm) Rank() int { return c.rank }

// Size is the number of workers.
func (c *Comm) Size() int { return c.size }

// Host is the host name of a worker.
func (c *Comm) Host(rank int) string { return c.hosts[rank] }

// Version is the library's MPI_Get_library_version.
func (c *Comm) Version() string { return strings.TrimSpace(c.version) }

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
