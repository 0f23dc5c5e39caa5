package cuda

import (
	"errors"
	"fmt"
	"testing"
)

// hostMemory stands in for a device's cuMemAlloc/cuMemFree: addresses from
// a counter, a capacity, and a record of what is held, so the allocator's
// bookkeeping can be checked exactly.
type hostMemory struct {
	next, held, capacity int64
	blocks               map[Ptr]int64
}

func (h *hostMemory) alloc(n int64) (Ptr, error) {
	if h.held+n > h.capacity {
		return 0, fmt.Errorf("cuMemAlloc of %d: %w", n, errOutOfMemory)
	}
	h.next += n + 4096
	p := Ptr(h.next)
	h.blocks[p] = n
	h.held += n
	return p, nil
}

func (h *hostMemory) free(p Ptr) error {
	n, ok := h.blocks[p]
	if !ok {
		return fmt.Errorf("double free of %#x", uint64(p))
	}
	delete(h.blocks, p)
	h.held -= n
	return nil
}

func TestSizeClass(t *testing.T) {
	for _, c := range []struct{ n, want int64 }{
		{0, 512}, {1, 512}, {512, 512}, {513, 640}, {640, 640}, {641, 768}, {1000, 1024}, {1025, 1280},
		{3 << 20, 3 << 20}, {3<<20 + 1, 3<<20 + 1<<19},
	} {
		if got := sizeClass(c.n); got != c.want {
			t.Errorf("sizeClass(%d) = %d, want %d", c.n, got, c.want)
		}
		if got := sizeClass(c.n); got < c.n || (c.n > 512 && float64(got) > 1.25*float64(c.n)+1) || got%8 != 0 {
			t.Errorf("sizeClass(%d) = %d: not within 25%% or not a multiple of 8", c.n, got)
		}
	}
}

// TestAllocatorSteadyState: a loop that allocates and frees the same sizes
// every "step" calls the device's allocator only in the first step.
func TestAllocatorSteadyState(t *testing.T) {
	h := &hostMemory{capacity: 1 << 30, blocks: map[Ptr]int64{}}
	a := newAllocator(h.alloc, h.free)
	sizes := []int64{4, 100, 4096, 5000, 5000, 1 << 20, 3<<20 + 17}
	for step := 0; step < 5; step++ {
		var ps []Ptr
		for _, n := range sizes {
			p, err := a.alloc(n)
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, p)
		}
		for _, p := range ps {
			if err := a.release(p); err != nil {
				t.Fatal(err)
			}
		}
		if s := a.snapshot(); s.RawAllocs != len(sizes) {
			t.Fatalf("step %d: %d device allocations, want %d (all in the first step)", step, s.RawAllocs, len(sizes))
		}
	}
	s := a.snapshot()
	if s.InUse != 0 || s.Cached != h.held {
		t.Fatalf("stats %+v; the device holds %d", s, h.held)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if h.held != 0 || len(h.blocks) != 0 {
		t.Fatalf("after close the device still holds %d bytes in %d blocks", h.held, len(h.blocks))
	}
}

// TestAllocatorOOM: out of memory releases the cache and retries; a request
// larger than the device fails with an error naming the sizes.
func TestAllocatorOOM(t *testing.T) {
	h := &hostMemory{capacity: 10 << 20, blocks: map[Ptr]int64{}}
	a := newAllocator(h.alloc, h.free)
	p, err := a.alloc(6 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.release(p); err != nil {
		t.Fatal(err)
	}
	// 6 MiB is cached; 8 MiB does not fit beside it until the cache goes.
	q, err := a.alloc(8 << 20)
	if err != nil {
		t.Fatalf("after releasing the cache the request should fit: %v", err)
	}
	if s := a.snapshot(); s.Cached != 0 || s.RawFrees != 1 {
		t.Fatalf("stats %+v: want the cached block freed", s)
	}
	if _, err := a.alloc(64 << 20); err == nil || !errors.Is(err, errOutOfMemory) {
		t.Fatalf("a request beyond the device: error %v, want out of memory", err)
	}
	if err := a.release(q); err != nil {
		t.Fatal(err)
	}
	if err := a.release(q); err == nil {
		t.Fatal("freeing a block twice: no error")
	}
	if err := a.release(12345); err == nil {
		t.Fatal("freeing an unknown address: no error")
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if h.held != 0 {
		t.Fatalf("after close the device holds %d bytes", h.held)
	}
}

// TestAllocatorCloseFreesLive: close frees blocks still handed out too.
func TestAllocatorCloseFreesLive(t *testing.T) {
	h := &hostMemory{capacity: 1 << 30, blocks: map[Ptr]int64{}}
	a := newAllocator(h.alloc, h.free)
	for _, n := range []int64{10, 1 << 16, 1 << 22} {
		if _, err := a.alloc(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if h.held != 0 || len(h.blocks) != 0 {
		t.Fatalf("after close the device holds %d bytes", h.held)
	}
}
