package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gotrain/gotrain/internal/mpi"
	"github.com/gotrain/gotrain/strategy"
)

// Multi-worker training: `mpirun -np N gotrain train --strategy
// multiworker ...` starts N processes that train one model together
// (strategy.MultiWorker). Every worker loads the model and the data itself
// (the same paths on every machine), takes its share of every batch and
// runs every callback that decides something (early stopping, the learning
// rate on plateau, the stop on Ctrl-C), on the same metrics, so that all
// decide alike. Worker 0 alone writes the output folder and prints; a
// --resume state is read by worker 0 and sent to the others.

// world is this process's place in a multi-worker run; a nil *world is a
// run of one process.
type world struct {
	comm *mpi.Comm
	mw   *strategy.MultiWorker // set once the run is assembled
}

// openWorld joins the MPI world for --strategy multiworker. Under mpirun
// with more than one process another strategy is refused: every process
// would train a model of its own and write the same files.
func openWorld(f *trainFlags) (*world, error) {
	_, size, launched := mpi.Launched()
	if f.Strategy != "multiworker" {
		if launched && size > 1 {
			return nil, usagef("mpirun started %d processes, but --strategy is %s: each would train a model of its own and write the same files; pass --strategy multiworker", size, f.Strategy)
		}
		return nil, nil
	}
	c, err := mpi.Init(mpi.Options{Timeout: time.Duration(f.WorkerTimeout * float64(time.Second))})
	if err != nil {
		return nil, fmt.Errorf("--strategy multiworker: %w", err)
	}
	return &world{comm: c}, nil
}

// primary reports whether this process writes the outputs and prints: the
// only process, or worker 0.
func (w *world) primary() bool { return w == nil || w.comm.Rank() == 0 }

// workers is the number of worker processes.
func (w *world) workers() int {
	if w == nil {
		return 1
	}
	return w.comm.Size()
}

// strategyWorld is the world as the strategy takes it (nil for one process).
func (w *world) strategyWorld() strategy.World {
	if w == nil {
		return nil
	}
	return w.comm
}

// agree is the Ctrl-C handler's Agree: a signal asks every worker to stop,
// and all learn of it with the next step (strategy.MultiWorker).
func (w *world) agree(signalled bool) bool {
	if w.mw == nil {
		return false // no step has run
	}
	if signalled {
		w.mw.RequestStop()
	}
	return w.mw.Stopping()
}

// readShared returns the bytes of the file at path as worker 0 reads it,
// on every worker (the file need exist only on worker 0's machine).
func (w *world) readShared(path string) ([]byte, error) {
	if w == nil {
		return os.ReadFile(path)
	}
	var data []byte
	var rerr error
	if w.primary() {
		data, rerr = os.ReadFile(path)
		if rerr == nil && len(data) == 0 {
			rerr = fmt.Errorf("%s: empty file", path)
		}
	}
	got, err := w.comm.BcastBytes(data, 0)
	switch {
	case rerr != nil:
		return nil, rerr
	case err != nil:
		return nil, err
	case len(got) == 0:
		return nil, fmt.Errorf("worker 0 could not read %s", path)
	}
	return got, nil
}

// end finishes the process's part in the world after the run returned
// err. After a run that completed, every worker calls MPI_Finalize. After
// an error, or Ctrl-C (when mpirun is ending the workers already), the
// process exits without it, and mpirun ends the others. Worker 0 reports
// Ctrl-C for all; another worker's errors name it.
func (w *world) end(err error, interrupted bool) error {
	if w == nil {
		return err
	}
	if err == nil {
		return w.comm.Close()
	}
	if w.primary() {
		return err
	}
	if interrupted {
		return quietError{err}
	}
	var ue usageError
	if errors.As(err, &ue) {
		return usageError{fmt.Errorf("worker rank %d: %w", w.comm.Rank(), err)}
	}
	return fmt.Errorf("worker rank %d: %w", w.comm.Rank(), err)
}

// workerThreads is a worker's default thread count: its machine's cores
// shared among the workers mpirun started on it.
func workerThreads() int {
	local, err := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_LOCAL_SIZE"))
	if err != nil || local < 1 {
		local = 1
	}
	return max(1, numCPU()/local)
}
