package mpi

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unsafe"
)

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
	lens, myLen := make([]byte, 8*c.size), make([]byte, 8) // MPI forbids a send buffer inside the receive buffer
	putInt64(myLen, int64(len(mine)))
	if err := c.gatherv(myLen, lens, fixed(c.size, 8), timeout); err != nil {
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

func putInt64(b []byte, v int64) { binary.LittleEndian.PutUint64(b, uint64(v)) }

func getInt64(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) }
