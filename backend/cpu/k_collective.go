package cpu

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func init() {
	Register(graph.DomainGotrain, "AllReduceSum", allReduceFactory)
}

// Group is a CPU replica group: its members' AllReduceSum nodes meet at a
// barrier, each member then sums every member's input in rank order (so all
// get bit-identical results), and a second barrier keeps inputs alive until
// everyone has read them. Members run the same graph, so their collective
// ops meet in the same order. On a backend with private memory no member
// reads another's buffers: each copies its input into the group's own
// staging memory, as a transfer between devices would, and every member
// sums from there. With an outer sum (SetOuter), member 0 sums, hands the
// sum to outer, and the others copy the result.
type Group struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	gen     uint64 // barrier generation
	arrived int
	ins     [][]float32
	stage   [][]float32 // private memory: the members' inputs, copied
	err     error
	outer   func([]float32) error
	shared  []float32 // member 0's result (a copy on private memory), with an outer sum
}

// NewCollective makes a group of the given devices (one member each).
func (b *Backend) NewCollective(devices []backend.Device) (backend.Collective, error) {
	for _, d := range devices {
		if _, err := b.device(d); err != nil {
			return nil, err
		}
	}
	if len(devices) < 1 {
		return nil, errors.New("cpu backend: a group needs at least one member")
	}
	g := &Group{n: len(devices), ins: make([][]float32, len(devices))}
	if b.private {
		g.stage = make([][]float32, len(devices))
	}
	g.cond = sync.NewCond(&g.mu)
	return g, nil
}

// Size is the number of members.
func (g *Group) Size() int { return g.n }

// SetOuter makes every collective op combine the group's sum with others'
// through outer (see backend.OuterCollective). Call it before any op runs.
func (g *Group) SetOuter(outer func([]float32) error) {
	g.mu.Lock()
	g.outer = outer
	g.mu.Unlock()
}

// Abort fails every pending and future collective op until Reset.
func (g *Group) Abort(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.cond.Broadcast()
	g.mu.Unlock()
}

// Reset clears an abort and the barrier for the next step.
func (g *Group) Reset() {
	g.mu.Lock()
	g.err, g.arrived = nil, 0
	for i := range g.ins {
		g.ins[i] = nil
	}
	g.gen++
	g.cond.Broadcast()
	g.mu.Unlock()
}

// barrier waits until every member has arrived (or the group is aborted).
func (g *Group) barrier() error {
	gen := g.gen
	g.arrived++
	if g.arrived == g.n {
		g.arrived = 0
		g.gen++
		g.cond.Broadcast()
		return g.err
	}
	for gen == g.gen && g.err == nil {
		g.cond.Wait()
	}
	return g.err
}

func (g *Group) allReduce(rank int, in, out []float32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if g.stage != nil {
		g.stage[rank] = append(g.stage[rank][:0], in...)
		in = g.stage[rank]
	}
	g.ins[rank] = in
	if err := g.barrier(); err != nil {
		return err
	}
	if g.outer == nil || rank == 0 {
		for i := range out {
			var s float32
			for r := 0; r < g.n; r++ {
				s += g.ins[r][i]
			}
			out[i] = s
		}
	}
	if g.outer == nil {
		return g.barrier()
	}
	if rank == 0 {
		// The others wait at the barrier meanwhile (cond.Wait releases mu).
		outer := g.outer
		g.mu.Unlock()
		err := outer(out)
		g.mu.Lock()
		if err != nil && g.err == nil {
			// As Abort: the others may have left the first barrier already.
			g.err = fmt.Errorf("all-reduce beyond the group: %w", err)
			g.cond.Broadcast()
		}
		if g.stage != nil {
			g.shared = append(g.shared[:0], out...) // no member reads another's memory
		} else {
			g.shared = out
		}
	}
	if err := g.barrier(); err != nil {
		return err
	}
	if rank != 0 {
		copy(out, g.shared)
	}
	return g.barrier() // member 0's result stays unchanged until every member has it
}

func allReduceFactory(p *Prep) (Kernel, error) {
	if p.Group == nil {
		// Outside a group the sum over one member is the identity.
		return func(in, out []*tensor.Tensor) error {
			out[0].CopyFrom(in[0])
			return nil
		}, nil
	}
	if p.In[0].DType != tensor.Float32 {
		return nil, Unsupported(p, "AllReduceSum of %v across replicas", p.In[0].DType)
	}
	g, rank := p.Group, p.Rank
	return func(in, out []*tensor.Tensor) error {
		a, b := in[0].Float32s(), out[0].Float32s()
		if err := g.allReduce(rank, a, b); err != nil {
			return fmt.Errorf("all-reduce with the other replicas: %w", err)
		}
		return nil
	}, nil
}
