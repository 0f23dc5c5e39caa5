package mpi

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// thread is the MPI thread: it initialises MPI, then runs the jobs one at a
// time and sends and checks heartbeats between and during them.
func (c *Comm) thread(ready chan<- error) {
	runtime.LockOSThread() // never unlocked: MPI_THREAD_FUNNELED ties MPI to this thread
	defer close(c.quit)
	provided, err := initThread()
	if err == nil && provided < 1 {
		err = fmt.Errorf("the library provides thread level %d; gotrain needs MPI_THREAD_FUNNELED (1)", provided)
	}
	if err == nil {
		err = errorsReturn(world())
	}
	if err == nil {
		c.rank, c.size, err = rankSize(world())
	}
	if err == nil {
		c.coll, err = dup(world())
	}
	if err == nil {
		c.hb, err = dup(world())
	}
	if err != nil {
		ready <- fmt.Errorf("mpi: initialising: %w", err)
		return
	}
	c.version = libraryVersion()
	if err := c.startHeartbeats(); err != nil {
		ready <- fmt.Errorf("mpi: %w", err)
		return
	}
	ready <- nil
	c.loop()
}

// heartbeatEvery is the heartbeat interval.
func (c *Comm) heartbeatEvery() time.Duration {
	return max(c.o.LostAfter/20, 10*time.Millisecond)
}

func (c *Comm) loop() {
	every := c.heartbeatEvery()
	idle := time.NewTimer(every)
	nextBeat := time.Now()
	var cur *job
	polls := 0
	for {
		now := time.Now()
		if !now.Before(nextBeat) {
			c.heartbeat(now)
			nextBeat = now.Add(every)
		}
		if cur != nil && c.Err() != nil {
			c.abandon(cur, c.Err())
			cur = nil
		}
		if cur == nil {
			idle.Reset(time.Until(nextBeat))
			select {
			case j := <-c.jobs:
				if j.ctl != nil {
					j.done <- j.ctl()
					if c.finished {
						return
					}
					continue
				}
				if err := c.Err(); err != nil {
					j.done <- err
					continue
				}
				if err := j.post(j); err != nil {
					c.fail(fmt.Errorf("%s: %w", j.what, err))
					c.abandon(j, c.Err())
					continue
				}
				cur, polls = j, 0
				cur.posted = time.Now()
			case <-idle.C:
			}
			continue
		}
		done, err := testAll(cur.reqs)
		switch {
		case err != nil:
			c.fail(fmt.Errorf("%s: %w%s", cur.what, err, c.blame(now)))
			c.abandon(cur, c.Err())
			cur = nil
		case done:
			cur.done <- nil
			cur = nil
		case now.After(cur.deadline):
			c.fail(fmt.Errorf("%w: %s did not complete within %v%s", ErrWorker, cur.what, c.o.Timeout, c.blame(now)))
			c.abandon(cur, c.Err())
			cur = nil
		default:
			waited := now.Sub(cur.posted)
			if waited >= spinFor {
				polls++
			}
			pause(polls, waited)
		}
	}
}

// spinFor is how long a pending collective is polled back to back before
// the MPI thread sleeps between polls. MPI progresses a collective's rounds
// only inside MPI calls, so a collective whose workers are all there runs
// at full speed only while polled; and a worker that waits for a slower
// one typically waits a few milliseconds, during which its own compute
// threads are idle. A sleeping thread locked to MPI wakes a millisecond or
// more late on a busy machine: measured on 2 workers of the seed CNN (a
// shared 2-core AMD EPYC), 5 ms of polling trained 30-40% faster than
// 200 us. Past it, a worker waiting for a straggler (or a hung one) sleeps.
// When mpirun started more workers than the machine has slots
// (oversubscribed), a waiting worker's polling would take a core from one
// that computes: it polls for 200 us only, as OpenMPI then yields too.
var spinFor = 5 * time.Millisecond

func init() {
	if os.Getenv("OMPI_MCA_mpi_oversubscribe") == "1" {
		spinFor = 200 * time.Microsecond
	}
}

// pause waits between polls of a pending request, polled since waited: not
// at all for spinFor, then sleeps that grow to 200 us.
func pause(polls int, waited time.Duration) {
	if waited < spinFor {
		return
	}
	time.Sleep(time.Duration(min(polls, 8)) * 25 * time.Microsecond)
}

func testAll(reqs []*handle) (bool, error) {
	for _, r := range reqs {
		if *r == nil {
			continue // completed at an earlier poll
		}
		done, err := test(r)
		if err != nil {
			return false, err
		}
		if !done {
			return false, nil
		}
		*r = nil // MPI set it to MPI_REQUEST_NULL; nil marks it done here
	}
	return true, nil
}

// abandon ends a job with err while MPI may still hold its buffers: the job
// stays referenced, its memory pinned, for as long as the process runs.
func (c *Comm) abandon(j *job, err error) {
	c.abandoned = append(c.abandoned, j)
	j.done <- err
}

// fail records the first failure; every later operation returns it.
func (c *Comm) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

// Err is the failure that ended the world's operations, or nil.
func (c *Comm) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// worker names a worker for messages.
func (c *Comm) worker(r int) string {
	if r < len(c.hosts) && c.hosts[r] != "" {
		return fmt.Sprintf("worker rank %d (host %s, pid %d)", r, c.hosts[r], c.pids[r])
	}
	return fmt.Sprintf("worker rank %d", r)
}

// startHeartbeats posts a heartbeat receive from every other worker.
func (c *Comm) startHeartbeats() error {
	c.peers = make([]peer, c.size)
	now := time.Now()
	for r := range c.peers {
		if r == c.rank {
			continue
		}
		p := &c.peers[r]
		p.heard = now
		p.recv, p.send = make([]int64, 2), make([]int64, 2)
		c.pins.Pin(&p.recv[0])
		c.pins.Pin(&p.send[0])
		if err := irecv(unsafe.Pointer(&p.recv[0]), 16, r, tagHeartbeat, c.hb, &p.recvReq); err != nil {
			return err
		}
	}
	return nil
}

// heartbeat sends this worker's heartbeat to every other (unless the last
// one to that worker is still pending), takes in the heartbeats that
// arrived, and fails the world when a worker has been silent for
// LostAfter.
func (c *Comm) heartbeat(now time.Time) {
	for r := range c.peers {
		if r == c.rank {
			continue
		}
		p := &c.peers[r]
		for p.recvReq != nil {
			done, err := test(&p.recvReq)
			if err != nil || !done {
				break
			}
			p.recvReq = nil
			p.heard, p.seq, p.inside = now, p.recv[0], p.recv[1] != 0
			if c.hbStopped {
				break
			}
			if err := irecv(unsafe.Pointer(&p.recv[0]), 16, r, tagHeartbeat, c.hb, &p.recvReq); err != nil {
				break
			}
		}
		if p.sendReq != nil {
			if done, err := test(&p.sendReq); err == nil && done {
				p.sendReq = nil
			}
		}
		if p.sendReq == nil && !c.hbStopped {
			p.send[0] = c.seq.Load()
			p.send[1] = 0
			if c.inside.Load() {
				p.send[1] = 1
			}
			_ = isend(unsafe.Pointer(&p.send[0]), 16, r, tagHeartbeat, c.hb, &p.sendReq)
		}
		if !c.hbStopped && now.Sub(p.heard) > c.o.LostAfter && c.Err() == nil {
			where := "between collectives"
			if c.inside.Load() {
				where = fmt.Sprintf("waiting in collective #%d", c.seq.Load())
			}
			c.fail(fmt.Errorf("%w: lost %s: no heartbeat for %v (it was killed, stopped or cut off; its last collective #%d; rank %d was %s)",
				ErrWorker, c.worker(r), now.Sub(p.heard).Round(time.Second), p.seq, c.rank, where))
		}
	}
}

// blame lists the workers that the current collective waits for, from
// their last heartbeats: those that have not entered it, and those not
// heard from for three heartbeat intervals.
func (c *Comm) blame(now time.Time) string {
	seq := c.seq.Load()
	var parts []string
	for r := range c.peers {
		if r == c.rank {
			continue
		}
		p := &c.peers[r]
		silent := now.Sub(p.heard)
		switch {
		case silent > 3*c.heartbeatEvery():
			parts = append(parts, fmt.Sprintf("%s has not been heard from for %v", c.worker(r), silent.Round(time.Millisecond)))
		case p.seq < seq:
			parts = append(parts, fmt.Sprintf("%s has not reached it (it is at collective #%d)", c.worker(r), p.seq))
		}
	}
	if len(parts) == 0 {
		return " (every worker reached it)"
	}
	return ": " + strings.Join(parts, "; ")
}
