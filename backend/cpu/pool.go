package cpu

import (
	"runtime"
	"sync"
)

// Pool runs parallel loops on a fixed set of worker goroutines. Each
// executable owns one, sized to its device's share of the cores, so replicas
// of the mirrored strategy do not fight over threads. A pool serves one
// caller at a time (the executable's Run); its chunk descriptors are
// allocated once, so a loop allocates nothing beyond what the caller's
// closure itself needs.
type Pool struct {
	n int
	// slot is the device index, so that pools of one device share a
	// cPool; cp is that pool, looked up on first use.
	slot   int
	cpOnce sync.Once
	cp     cPool
	tasks  chan *chunk
	jobs   []chunk
	wg     sync.WaitGroup
}

type chunk struct {
	fn     func(lo, hi int)
	lo, hi int
	wg     *sync.WaitGroup
}

// NewPool starts a pool of n workers (n <= 0: GOMAXPROCS). A pool of one
// runs everything on the caller's goroutine.
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	p := &Pool{n: n, jobs: make([]chunk, n)}
	if n > 1 {
		tasks := make(chan *chunk, n)
		p.tasks = tasks
		for i := 0; i < n-1; i++ {
			go func() {
				for c := range tasks { // the local copy: Close clears p.tasks
					c.fn(c.lo, c.hi)
					c.wg.Done()
				}
			}()
		}
	}
	return p
}

// Size is the number of workers.
func (p *Pool) Size() int { return p.n }

// cpool returns the C kernels' pool for this pool's device, or nil.
func (p *Pool) cpool() cPool {
	p.cpOnce.Do(func() { p.cp = cPoolFor(p.slot, p.n) })
	return p.cp
}

// Close stops the workers.
func (p *Pool) Close() {
	if p.tasks != nil {
		close(p.tasks)
		p.tasks = nil
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
	if chunks <= 1 || p.tasks == nil {
		fn(0, n)
		return
	}
	step := (n + chunks - 1) / chunks
	i := 1
	for lo := step; lo < n; lo += step {
		c := &p.jobs[i]
		c.fn, c.lo, c.hi, c.wg = fn, lo, min(lo+step, n), &p.wg
		p.wg.Add(1)
		p.tasks <- c
		i++
	}
	fn(0, min(step, n))
	p.wg.Wait()
	for j := 1; j < i; j++ {
		p.jobs[j].fn = nil // do not keep the caller's data alive
	}
}
