package cuda

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
)

// allocator is a caching allocator of device memory. Requests are rounded
// up to size classes (512 bytes, then four classes per power of two, so at
// most a quarter is wasted) and freed blocks are kept per class for the
// next request of that class: once a training step has run, the next steps
// find every block they need in the cache and never call the device's
// allocator. When the device runs out of memory, the cache is released and
// the request tried once more. close frees everything, cached or not.
//
// The allocator itself is plain Go over two functions (the device's
// cuMemAlloc and cuMemFree), so its bookkeeping is tested without a device.
type allocator struct {
	mu    sync.Mutex
	raw   func(n int64) (Ptr, error)
	free  func(p Ptr) error
	cache map[int64][]Ptr
	live  map[Ptr]int64 // handed out, by class size
	stats AllocStats
}

// AllocStats counts an allocator's work.
type AllocStats struct {
	RawAllocs, RawFrees int   // calls of the device's allocator
	InUse, Cached       int64 // bytes handed out, bytes kept for reuse
	Peak                int64 // most bytes held from the device at once
}

func newAllocator(raw func(int64) (Ptr, error), free func(Ptr) error) *allocator {
	return &allocator{raw: raw, free: free, cache: map[int64][]Ptr{}, live: map[Ptr]int64{}}
}

// sizeClass rounds n up to its class.
func sizeClass(n int64) int64 {
	if n <= 512 {
		return 512
	}
	e := bits.Len64(uint64(n - 1)) // 2^(e-1) < n <= 2^e
	step := int64(1) << (e - 3)    // a quarter of 2^(e-1)
	return (n + step - 1) / step * step
}

// errOutOfMemory marks the device's out-of-memory failure (set by the
// device layer's raw function).
var errOutOfMemory = errors.New("out of device memory")

func (a *allocator) alloc(n int64) (Ptr, error) {
	if n < 0 {
		return 0, fmt.Errorf("cuda: allocation of %d bytes", n)
	}
	c := sizeClass(n)
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.cache[c]; len(l) > 0 {
		p := l[len(l)-1]
		a.cache[c] = l[:len(l)-1]
		a.live[p] = c
		a.stats.Cached -= c
		a.stats.InUse += c
		return p, nil
	}
	p, err := a.raw(c)
	if err != nil && errors.Is(err, errOutOfMemory) {
		if terr := a.trimLocked(); terr != nil {
			return 0, terr
		}
		p, err = a.raw(c)
	}
	if err != nil {
		return 0, fmt.Errorf("cuda: allocating %d bytes (%d in use, %d cached): %w", c, a.stats.InUse, a.stats.Cached, err)
	}
	a.stats.RawAllocs++
	a.live[p] = c
	a.stats.InUse += c
	a.stats.Peak = max(a.stats.Peak, a.stats.InUse+a.stats.Cached)
	return p, nil
}

// release returns a block to the cache. It fails on a block the allocator
// did not hand out (or handed back already).
func (a *allocator) release(p Ptr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.live[p]
	if !ok {
		return fmt.Errorf("cuda: freeing %#x, which is not an allocated block", uint64(p))
	}
	delete(a.live, p)
	a.cache[c] = append(a.cache[c], p)
	a.stats.InUse -= c
	a.stats.Cached += c
	return nil
}

// trim frees every cached block.
func (a *allocator) trim() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.trimLocked()
}

func (a *allocator) trimLocked() error {
	var first error
	for c, l := range a.cache {
		for _, p := range l {
			if err := a.free(p); err != nil && first == nil {
				first = err
			}
			a.stats.RawFrees++
		}
		a.stats.Cached -= c * int64(len(l))
		delete(a.cache, c)
	}
	return first
}

// close frees every block, cached or handed out.
func (a *allocator) close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	first := a.trimLocked()
	for p, c := range a.live {
		if err := a.free(p); err != nil && first == nil {
			first = err
		}
		a.stats.RawFrees++
		a.stats.InUse -= c
		delete(a.live, p)
	}
	return first
}

func (a *allocator) snapshot() AllocStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}
