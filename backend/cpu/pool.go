package cpu

import (
	"runtime"
	"sync"
)

// Pool runs parallel loops on a fixed set of worker goroutines. Each
// executable owns one, sized to its device's share of the cores, so replicas
// of the mirrored strategy do not fight over threads.
type Pool struct {
	n     int
	tasks chan func()
}

// NewPool starts a pool of n workers (n <= 0: GOMAXPROCS). A pool of one
// runs everything on the caller's goroutine.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n}
	if n > 1 {
		p.tasks = make(chan func(), n)
		for i := 0; i < n-1; i++ {
			go func() {
				for f := range p.tasks {
					f()
				}
			}()
		}
	}
	return p
}

// Size is the number of workers.
func (p *Pool) Size() int { return p.n }

// Close stops the workers.
func (p *Pool) Close() {
	if p.tasks != nil {
		close(p.tasks)
		p.tasks = nil
	}
}

// For runs fn over [0, n) split into at most Size() contiguous chunks of
// at least grain items each; the caller's goroutine takes one chunk. It
// returns when all chunks are done.
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
	if chunks <= 1 || p.tasks == nil {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + chunks - 1) / chunks
	for lo := step; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		lo := lo
		p.tasks <- func() { fn(lo, hi); wg.Done() }
	}
	fn(0, min(step, n))
	wg.Wait()
}
