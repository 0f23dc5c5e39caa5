// Package workpool runs parallel loops on a fixed set of goroutines.
//
// A training or inference step is a run of parallel loops with little
// between them, and a parked goroutine takes a long time to wake: the
// runtime must wake a sleeping thread, and in a virtual machine the idle
// CPU under it too (about 0.1 ms a loop, measured on a 2-core EPYC VM: a
// third of an MLP's batch-256 inference step). So a worker keeps looking
// for its next task for a while after finishing one (spinChecks, a few
// tens of microseconds), yielding its thread to any other goroutine that
// is ready, before it parks; and the caller, its own part done, looks
// briefly for the workers' completion before it blocks. Loops come from
// one caller at a time: a caller that finds the pool busy (another
// goroutine's loop, or a loop started from inside a loop) runs its loop
// alone. A loop allocates nothing beyond what the caller's closure needs.
//
// The CPU backend's kernels split their work over a pool per executable.
package workpool

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Pool is a set of worker goroutines for parallel loops; the zero value
// is not usable (New makes one).
type Pool struct {
	n       int
	busy    sync.Mutex
	workers []*worker
	closed  atomic.Bool
}

// worker is one worker goroutine's mailbox. The caller writes task, then
// bumps posted; the worker runs it and stores posted's value in done.
type worker struct {
	posted  atomic.Uint64
	done    atomic.Uint64
	task    chunk
	parked  atomic.Bool   // the worker is blocked (or about to) on wake
	waiting atomic.Bool   // the caller is blocked (or about to) on fin
	wake    chan struct{} // capacity 1: a task was posted while parked
	fin     chan struct{} // capacity 1: a task finished while the caller waited
}

type chunk struct {
	fn     func(lo, hi int)
	lo, hi int
}

// spinChecks is how many times a worker looks for a new task, yielding in
// between, before it parks (about 20-40 us on the 2-core EPYC); the
// caller looks as many times for its workers to finish before it blocks.
const spinChecks = 200

// New starts a pool of n workers (n <= 0: GOMAXPROCS), the caller
// counted: n-1 goroutines. A pool of one runs everything on the caller's
// goroutine.
func New(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n}
	for i := 0; i < n-1; i++ {
		w := &worker{wake: make(chan struct{}, 1), fin: make(chan struct{}, 1)}
		p.workers = append(p.workers, w)
		go w.loop(&p.closed)
	}
	return p
}

func (w *worker) loop(closed *atomic.Bool) {
	var seen uint64
	for {
		s := w.posted.Load()
		for spins := 0; s == seen; spins++ {
			if closed.Load() {
				return
			}
			if spins < spinChecks {
				runtime.Gosched()
			} else {
				// Park; the caller wakes the worker if it saw it parked,
				// and the worker looks once more after saying so, so a
				// task posted in between is not missed.
				w.parked.Store(true)
				if w.posted.Load() == seen && !closed.Load() {
					<-w.wake
				}
				w.parked.Store(false)
				spins = 0
			}
			s = w.posted.Load()
		}
		seen = s
		w.task.fn(w.task.lo, w.task.hi)
		w.done.Store(s)
		if w.waiting.Load() {
			select {
			case w.fin <- struct{}{}:
			default:
			}
		}
	}
}

// post hands the worker a task.
func (w *worker) post(c chunk) {
	w.task = c
	w.posted.Add(1)
	if w.parked.Load() {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns once the worker has finished its last task.
func (w *worker) wait() {
	s := w.posted.Load()
	for spins := 0; w.done.Load() != s; spins++ {
		if spins < spinChecks {
			runtime.Gosched()
			continue
		}
		w.waiting.Store(true)
		if w.done.Load() != s {
			<-w.fin
		}
		w.waiting.Store(false)
	}
	w.task.fn = nil // do not keep the caller's data alive
}

// Size is the number of workers, the caller counted.
func (p *Pool) Size() int { return p.n }

// Close stops the workers (once the loop running, if any, is done).
// Loops started after it run on the caller.
func (p *Pool) Close() {
	p.busy.Lock()
	defer p.busy.Unlock()
	if p.closed.Swap(true) {
		return
	}
	for _, w := range p.workers {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// For runs fn over [0, n) split into at most Size() contiguous chunks of
// at least grain items each; the caller's goroutine takes the first chunk.
// It returns when all chunks are done.
func (p *Pool) For(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	chunks := p.n
	if m := (n + grain - 1) / grain; m < chunks {
		chunks = m
	}
	if chunks <= 1 || len(p.workers) == 0 || p.closed.Load() || !p.busy.TryLock() {
		fn(0, n)
		return
	}
	defer p.busy.Unlock()
	step := (n + chunks - 1) / chunks
	used := 0
	for lo := step; lo < n; lo += step {
		p.workers[used].post(chunk{fn, lo, min(lo+step, n)})
		used++
	}
	fn(0, min(step, n))
	for _, w := range p.workers[:used] {
		w.wait()
	}
}
