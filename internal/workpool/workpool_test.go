package workpool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// coverCheck runs p.For(n, grain) with a body that counts each index, and
// reports an error unless every index of [0, n) ran exactly once (Errorf:
// it is also called from other goroutines).
func coverCheck(t *testing.T, p *Pool, n, grain int) {
	t.Helper()
	hits := make([]atomic.Int32, max(n, 0))
	p.For(n, grain, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			hits[i].Add(1)
		}
	})
	for i := range hits {
		if h := hits[i].Load(); h != 1 {
			t.Errorf("For(%d, %d): index %d ran %d times", n, grain, i, h)
			return
		}
	}
}

func TestPoolCovers(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4} {
		p := New(size)
		for _, c := range []struct{ n, grain int }{
			{0, 1}, {1, 1}, {2, 1}, {3, 1}, {7, 2}, {64, 16}, {1000, 1}, {1001, 300}, {5, 0},
		} {
			// Repeated, so that workers are caught spinning, parked and
			// in between.
			for rep := 0; rep < 200; rep++ {
				coverCheck(t, p, c.n, c.grain)
			}
		}
		p.Close()
	}
}

// TestPoolWakesParkedWorkers pauses past the spin window between loops,
// so the workers park and must be woken for the next one.
func TestPoolWakesParkedWorkers(t *testing.T) {
	p := New(3)
	defer p.Close()
	for rep := 0; rep < 20; rep++ {
		coverCheck(t, p, 300, 1)
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPoolNestedAndConcurrent starts loops from inside a loop and from
// several goroutines at once: a caller that finds the pool busy runs its
// loop alone, so every loop completes, each index once.
func TestPoolNestedAndConcurrent(t *testing.T) {
	p := New(2)
	defer p.Close()
	var inner atomic.Int64
	p.For(4, 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			p.For(10, 1, func(lo, hi int) { inner.Add(int64(hi - lo)) })
		}
	})
	if got := inner.Load(); got != 40 {
		t.Fatalf("nested loops covered %d indices, want 40", got)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 100; rep++ {
				coverCheck(t, p, 257, 8)
			}
		}()
	}
	wg.Wait()
}

// TestPoolClosed: after Close, loops still run, on the caller.
func TestPoolClosed(t *testing.T) {
	p := New(4)
	p.Close()
	p.Close() // twice is harmless
	coverCheck(t, p, 100, 1)
}
