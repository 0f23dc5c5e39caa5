package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"sync"

	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/tensor"
)

// Source is what a Loader reads: a Dataset, or an ImageFolder that decodes
// on demand. Read may be called from several goroutines at once.
type Source interface {
	Len() int
	SampleShape() augment.Shape
	Label(i int) int64
	Read(i int, dst []float32) error
}

// Transform changes one sample on its way into a batch: it writes the
// transformed src to dst. index is the sample's index in the Source, so a
// transform that draws random numbers from (epoch, index) gives the same
// result whichever worker runs it. *augment.Augmenter is one.
type Transform interface {
	Apply(dst, src []float32, epoch, index int) error
}

// Order is the shuffled order of n samples in an epoch: a permutation of
// [0, n) that depends only on (n, seed, epoch), by a Fisher-Yates shuffle
// driven by a SplitMix64 stream. Resuming training replays it exactly.
func Order(n int, seed uint64, epoch int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	state := augment.Mix(augment.Mix(seed) ^ uint64(int64(epoch)))
	next := func() uint64 {
		state += 0x9e3779b97f4a7c15
		return augment.Mix(state)
	}
	for i := n - 1; i > 0; i-- {
		// Lemire's unbiased bounded draw in [0, i].
		bound := uint64(i + 1)
		hi, lo := bits.Mul64(next(), bound)
		if lo < bound {
			thresh := -bound % bound
			for lo < thresh {
				hi, lo = bits.Mul64(next(), bound)
			}
		}
		j := int(hi)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// Loader yields a Source's samples in batches, epoch after epoch.
type Loader struct {
	Source        Source
	BatchSize     int
	Shuffle       bool   // shuffle each epoch by Order(n, Seed, epoch)
	Seed          uint64 // the shuffle seed
	DropRemainder bool   // drop the last batch if it is short
	Transform     Transform
	Workers       int   // goroutines reading and transforming (0: GOMAXPROCS)
	Prefetch      int   // batches ready or in the making ahead of the caller (0: 2)
	SampleShape   []int // the shape of one sample in a batch (nil: the source's image shape)
	// Part, when set, makes every batch hold only the samples [lo, hi)
	// of its global batch of size samples, where lo, hi = Part(size): one
	// worker's share in multi-worker training, so that a worker reads and
	// transforms only its own samples. Batch.Offset and Batch.Total place
	// the share in its global batch. A share may be empty.
	Part func(size int) (lo, hi int)
}

// Batch is one batch: X is [B, sample shape...], Y the labels [B], Indices
// the samples' indices in the Source and Number the batch's position in
// its epoch. With Loader.Part it is a share of a global batch of Total
// samples, starting at sample Offset; otherwise Offset is 0 and Total B.
type Batch struct {
	X, Y    *tensor.Tensor
	Indices []int
	Number  int
	Offset  int
	Total   int
	free    chan<- *Batch
}

// Release hands the batch's memory back to its loader for reuse. Call it
// when the batch's tensors are no longer used; it is optional.
func (b *Batch) Release() {
	if b.free == nil {
		return
	}
	select {
	case b.free <- b:
	default:
	}
}

// NumBatches is the number of batches of an epoch.
func (l *Loader) NumBatches() int { return l.BatchesFrom(0) }

func (l *Loader) check() error {
	if l.Source == nil {
		return errors.New("data: loader without a source")
	}
	if l.BatchSize <= 0 {
		return fmt.Errorf("data: batch size %d: expected at least 1", l.BatchSize)
	}
	if l.Workers < 0 || l.Prefetch < 0 {
		return fmt.Errorf("data: %d workers, prefetch %d: expected values >= 0", l.Workers, l.Prefetch)
	}
	s := l.Source.SampleShape()
	if l.SampleShape != nil {
		n, ok := tensor.MulDims(l.SampleShape)
		if !ok || n != int64(s.Size()) {
			return fmt.Errorf("data: sample shape %v does not hold images of %v", l.SampleShape, s)
		}
	}
	return tensor.CheckShape(fmt.Sprintf("data: batch of %d samples of %v", l.BatchSize, s), tensor.Float32, []int{l.BatchSize, s.C, s.H, s.W})
}

// Iterator yields one epoch's batches. It is used by one goroutine.
type Iterator struct {
	out    chan item
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

type item struct {
	b   *Batch
	err error
}

// Epoch starts producing the batches of epoch, from batch start (0 for a
// whole epoch; k resumes after k batches). The background work stops at
// the end of the epoch, on Close, or when ctx is cancelled.
func (l *Loader) Epoch(ctx context.Context, epoch, start int) (*Iterator, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	nb := l.NumBatches()
	if start < 0 || start > nb {
		return nil, fmt.Errorf("data: start batch %d of an epoch of %d batches", start, nb)
	}
	return l.epoch(ctx, epoch, start*l.BatchSize, start, nb-start), nil
}

// EpochFrom is Epoch from a position counted in samples: its batches take
// the epoch's order from sample skip on, BatchSize samples at a time (the
// last one short, or dropped with DropRemainder), and are numbered from
// first. A run resumed with another batch size than the one that counted
// the position so trains exactly the samples its epoch has left.
func (l *Loader) EpochFrom(ctx context.Context, epoch, skip, first int) (*Iterator, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if n := l.Source.Len(); skip < 0 || skip > n {
		return nil, fmt.Errorf("data: start at sample %d of an epoch of %d samples", skip, n)
	}
	if first < 0 {
		return nil, fmt.Errorf("data: first batch number %d: expected >= 0", first)
	}
	return l.epoch(ctx, epoch, skip, first, l.BatchesFrom(skip)), nil
}

// BatchesFrom is the number of batches of an epoch from sample skip on.
func (l *Loader) BatchesFrom(skip int) int {
	rest := l.Source.Len() - skip
	if l.BatchSize <= 0 || rest <= 0 {
		return 0
	}
	if l.DropRemainder {
		return rest / l.BatchSize
	}
	return (rest + l.BatchSize - 1) / l.BatchSize
}

// epoch produces count batches from sample skip, numbered from first.
func (l *Loader) epoch(ctx context.Context, epoch, skip, first, count int) *Iterator {
	workers := l.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	prefetch := l.Prefetch
	if prefetch == 0 {
		prefetch = 2
	}
	n := l.Source.Len()
	var order []int
	if l.Shuffle {
		order = Order(n, l.Seed, epoch)
	} else {
		order = make([]int, n)
		for i := range order {
			order[i] = i
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	it := &Iterator{out: make(chan item, prefetch-1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	p := &producer{l: l, epoch: epoch, order: order, workers: workers, free: make(chan *Batch, prefetch+1)}
	go func() {
		defer close(it.done)
		defer close(it.out)
		for j := range count {
			b, err := p.build(ctx, first+j, skip+j*l.BatchSize)
			if err == nil && ctx.Err() != nil {
				return
			}
			select {
			case it.out <- item{b, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return it
}

// Next returns the next batch, or io.EOF after the last. An error of a
// worker is returned once and ends the epoch.
func (it *Iterator) Next() (*Batch, error) {
	if it.err != nil {
		return nil, it.err
	}
	select {
	case x, ok := <-it.out:
		if !ok {
			if err := it.ctx.Err(); err != nil {
				it.err = err
			} else {
				it.err = io.EOF
			}
			return nil, it.err
		}
		if x.err != nil {
			it.err = x.err
			it.Close()
			return nil, x.err
		}
		return x.b, nil
	case <-it.ctx.Done():
		it.err = it.ctx.Err()
		return nil, it.err
	}
}

// Close stops the background work and waits for it to end. It is safe to
// call more than once, and after the last batch.
func (it *Iterator) Close() {
	it.cancel()
	<-it.done
}

type producer struct {
	l       *Loader
	epoch   int
	order   []int
	workers int
	free    chan *Batch
	scratch [][]float32
}

// build makes batch k, of the samples from position lo in the epoch's
// order, splitting them across the workers.
func (p *producer) build(ctx context.Context, k, lo int) (*Batch, error) {
	l := p.l
	hi := min(lo+l.BatchSize, len(p.order))
	total, off := hi-lo, 0
	if l.Part != nil {
		plo, phi := l.Part(total)
		if plo < 0 || plo > phi || phi > total {
			return nil, fmt.Errorf("data: batch %d: share [%d, %d) of a batch of %d samples", k, plo, phi, total)
		}
		off, lo, hi = plo, lo+plo, lo+phi
	}
	bs := hi - lo
	b := p.batch(bs)
	b.Number, b.Offset, b.Total = k, off, total
	copy(b.Indices, p.order[lo:hi])
	y := b.Y.Int64s()
	for j, i := range b.Indices {
		y[j] = l.Source.Label(i)
	}
	sz := l.Source.SampleShape().Size()
	x := b.X.Float32s()
	w := min(p.workers, bs)
	if l.Transform != nil && len(p.scratch) < w {
		for len(p.scratch) < w {
			p.scratch = append(p.scratch, make([]float32, sz))
		}
	}
	errs := make([]error, w)
	var wg sync.WaitGroup
	for g := range w {
		// Worker g takes samples g, g+w, ...: which worker handles a sample
		// does not matter, since a sample's result depends only on itself.
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					errs[g] = fmt.Errorf("data: epoch %d batch %d: %v", p.epoch, k, r)
				}
			}()
			for j := g; j < bs; j += w {
				if ctx.Err() != nil {
					return
				}
				i := b.Indices[j]
				dst := x[j*sz : (j+1)*sz]
				if l.Transform == nil {
					if err := l.Source.Read(i, dst); err != nil {
						errs[g] = err
						return
					}
					continue
				}
				src := p.scratch[g]
				if err := l.Source.Read(i, src); err != nil {
					errs[g] = err
					return
				}
				if err := l.Transform.Apply(dst, src, p.epoch, i); err != nil {
					errs[g] = fmt.Errorf("data: transforming sample %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}

// batch returns a batch of bs samples, reusing a released one if it fits.
func (p *producer) batch(bs int) *Batch {
	select {
	case b := <-p.free:
		if b.Y.Len() == bs {
			return b
		}
	default:
	}
	l := p.l
	shape := l.SampleShape
	if shape == nil {
		s := l.Source.SampleShape()
		shape = []int{s.C, s.H, s.W}
		if s.ChannelsLast {
			shape = []int{s.H, s.W, s.C}
		}
	}
	return &Batch{
		X:       tensor.New(tensor.Float32, append([]int{bs}, shape...)...),
		Y:       tensor.New(tensor.Int64, bs),
		Indices: make([]int, bs),
		free:    p.free,
	}
}
