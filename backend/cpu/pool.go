package cpu

import (
	"sync"

	"github.com/gotrain/gotrain/internal/workpool"
)

// Pool runs a kernel's parallel loops (internal/workpool: workers that
// spin briefly before they park). Each executable owns one, sized to its
// device's share of the cores, so replicas of the mirrored strategy do not
// fight over threads.
type Pool struct {
	*workpool.Pool
	// slot is the device index, so that pools of one device share a
	// cPool; cp is that pool, looked up on first use.
	slot   int
	cpOnce sync.Once
	cp     cPool
}

// NewPool starts a pool of n workers (n <= 0: GOMAXPROCS). A pool of one
// runs everything on the caller's goroutine.
func NewPool(n int) *Pool { return &Pool{Pool: workpool.New(n)} }

// cpool returns the C kernels' pool for this pool's device, or nil.
func (p *Pool) cpool() cPool {
	p.cpOnce.Do(func() { p.cp = cPoolFor(p.slot, p.Size()) })
	return p.cp
}
