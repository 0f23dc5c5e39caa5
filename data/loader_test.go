package data

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gotrain/gotrain/data/augment"
)

// synth makes n images of c x h x w whose values encode (sample, position),
// with labels cycling through classes.
func synth(t testing.TB, n, c, h, w, classes int) *Dataset {
	x := make([]float32, n*c*h*w)
	for i := range x {
		x[i] = float32(i%(c*h*w)) + 1000*float32(i/(c*h*w))
	}
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % classes)
	}
	d, err := NewDataset(x, y, n, c, h, w, NCHW, classes, "synth")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResizeBilinear(t *testing.T) {
	var got []float32
	resizeBilinear([]float32{0, 100}, 1, 2, 1, 4, func(_, _ int, v float32) { got = append(got, v) })
	if !slices.Equal(got, []float32{0, 25, 75, 100}) {
		t.Errorf("upsampling [0 100] to 4: %v, want [0 25 75 100]", got)
	}
}

func TestOrder(t *testing.T) {
	a := Order(1000, 7, 3)
	if !slices.Equal(a, Order(1000, 7, 3)) {
		t.Fatal("Order is not a function of its arguments")
	}
	if slices.Equal(a, Order(1000, 7, 4)) || slices.Equal(a, Order(1000, 8, 3)) {
		t.Error("Order does not change with the epoch or seed")
	}
	s := slices.Clone(a)
	slices.Sort(s)
	for i, v := range s {
		if v != i {
			t.Fatalf("Order is not a permutation: %v", s[:10])
		}
	}
	// each element lands in the first half about half the time (200 epochs:
	// binomial sd 0.035, allow 0.25 for the worst of 10 elements)
	for e := range 10 {
		k := 0
		for ep := range 200 {
			if slices.Index(Order(10, 1, ep), e) < 5 {
				k++
			}
		}
		if f := float64(k) / 200; f < 0.25 || f > 0.75 {
			t.Errorf("element %d in the first half %v of the time", e, f)
		}
	}
}

func TestSplitAndSubsets(t *testing.T) {
	d := synth(t, 103, 1, 2, 2, 3) // classes of 35, 34, 34
	tr, va, err := d.Split(0.2, 5)
	if err != nil {
		t.Fatal(err)
	}
	if va.Len() != 21 || tr.Len() != 82 {
		t.Fatalf("split 0.2 of 103: %d train, %d val", tr.Len(), va.Len())
	}
	count := func(ds *Dataset) []int {
		c := make([]int, 3)
		for _, y := range ds.Labels() {
			c[y]++
		}
		return c
	}
	// 0.2 * (35, 34, 34) = (7, 6.8, 6.8) -> 7 + 7 + 7 = 21
	if got := count(va); !slices.Equal(got, []int{7, 7, 7}) {
		t.Errorf("validation classes %v, want [7 7 7]", got)
	}
	// disjoint, and together all samples: the first pixel encodes the index
	seen := map[float32]bool{}
	for _, ds := range []*Dataset{tr, va} {
		for i := range ds.Len() {
			v := ds.Sample(i)[0]
			if seen[v] {
				t.Fatalf("sample %v in both parts", v)
			}
			seen[v] = true
		}
	}
	if len(seen) != 103 {
		t.Errorf("%d distinct samples after split", len(seen))
	}
	tr2, _, _ := d.Split(0.2, 5)
	tr3, _, _ := d.Split(0.2, 6)
	if !slices.Equal(tr.X.Float32s(), tr2.X.Float32s()) || slices.Equal(tr.X.Float32s(), tr3.X.Float32s()) {
		t.Error("the split does not follow the seed")
	}
	for _, bad := range []float64{0, 1, -0.5, math.NaN(), 0.001} {
		if _, _, err := d.Split(bad, 1); err == nil {
			t.Errorf("Split(%v) accepted", bad)
		}
	}
	s, err := d.StratifiedSubset(10, 1)
	if err != nil {
		t.Fatal(err)
	}
	// 10/103 * (35, 34, 34) = (3.40, 3.30, 3.30): floors 3,3,3, the largest remainder gets one more
	if got := count(s); !slices.Equal(got, []int{4, 3, 3}) {
		t.Errorf("stratified 10: classes %v, want [4 3 3]", got)
	}
	h, _ := d.Head(5)
	if h.Len() != 5 || h.Sample(4)[0] != 4000 {
		t.Errorf("Head(5): %d samples, last starts with %v", h.Len(), h.Sample(4)[0])
	}
}

func TestLayoutAndNormalize(t *testing.T) {
	d := synth(t, 4, 3, 2, 5, 2)
	back := d.WithLayout(NHWC).WithLayout(NCHW)
	if !slices.Equal(back.X.Float32s(), d.X.Float32s()) {
		t.Error("NCHW -> NHWC -> NCHW changed the data")
	}
	hwc := d.WithLayout(NHWC)
	// sample 1, channel 2, row 1, col 3
	if a, b := d.Sample(1)[2*10+1*5+3], hwc.Sample(1)[(1*5+3)*3+2]; a != b {
		t.Errorf("layouts disagree: %v vs %v", a, b)
	}
	for _, ds := range []*Dataset{d.WithLayout(NCHW), hwc} {
		ds = ds.WithLayout(ds.Layout)
		c, _ := ds.Subset([]int{0, 1, 2, 3})
		if _, _, err := Standardize(c); err != nil {
			t.Fatal(err)
		}
		mean, std := c.ChannelStats()
		for ch := range 3 {
			// float32 values of magnitude ~3000 before normalising: 1e-4
			if math.Abs(mean[ch]) > 1e-4 || math.Abs(std[ch]-1) > 1e-4 {
				t.Errorf("%v channel %d after Standardize: mean %v std %v", ds.Layout, ch, mean[ch], std[ch])
			}
		}
	}
	if err := d.Normalize([]float64{0}, []float64{1}); err == nil {
		t.Error("Normalize accepted 1 channel's statistics for 3")
	}
	if err := d.Normalize([]float64{0, 0, 0}, []float64{1, 0, 1}); err == nil {
		t.Error("Normalize accepted a zero std")
	}
	cases := []struct {
		shape  []int
		layout Layout
		sample []int
	}{
		{[]int{-1, 3, 2, 5}, NCHW, []int{3, 2, 5}},
		{[]int{-1, 2, 5, 3}, NHWC, []int{2, 5, 3}},
		{[]int{8, 30}, NCHW, []int{30}},
	}
	for _, tc := range cases {
		got, ss, err := d.ForInput(tc.shape)
		if err != nil || got.Layout != tc.layout || !slices.Equal(ss, tc.sample) {
			t.Errorf("ForInput(%v) = %v %v %v", tc.shape, got, ss, err)
		}
	}
	if _, _, err := d.ForInput([]int{-1, 1, 28, 28}); err == nil {
		t.Error("ForInput accepted a mismatched input")
	}
	if l, c, h, w, err := ImageInput([]int{-1, 32, 32, 3}); err != nil || l != NHWC || c != 3 || h != 32 || w != 32 {
		t.Errorf("ImageInput NHWC: %v %d %d %d %v", l, c, h, w, err)
	}
}

// epochBatches collects an epoch's batches as (indices, first values, labels).
func epochBatches(t *testing.T, l *Loader, epoch, start int) [][]float32 {
	t.Helper()
	it, err := l.Epoch(context.Background(), epoch, start)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out [][]float32
	for {
		b, err := it.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		row := slices.Clone(b.X.Float32s())
		for j, i := range b.Indices {
			if b.Y.Int64s()[j] != l.Source.Label(i) {
				t.Fatalf("batch %d: label of sample %d is %d, want %d", b.Number, i, b.Y.Int64s()[j], l.Source.Label(i))
			}
			row = append(row, float32(i))
		}
		out = append(out, row)
		b.Release()
	}
}

func TestLoaderBatches(t *testing.T) {
	d := synth(t, 10, 1, 2, 2, 3)
	cases := []struct {
		drop  bool
		sizes []int
	}{{false, []int{4, 4, 2}}, {true, []int{4, 4}}}
	for _, tc := range cases {
		l := &Loader{Source: d, BatchSize: 4, Shuffle: true, Seed: 3, DropRemainder: tc.drop}
		if l.NumBatches() != len(tc.sizes) {
			t.Errorf("drop=%v: %d batches", tc.drop, l.NumBatches())
		}
		it, err := l.Epoch(context.Background(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for k := 0; ; k++ {
			b, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.X.Shape()[0] != tc.sizes[k] || b.Number != k {
				t.Errorf("batch %d: shape %v number %d", k, b.X.Shape(), b.Number)
			}
			for j, i := range b.Indices {
				if !slices.Equal(b.X.Float32s()[j*4:(j+1)*4], d.Sample(i)) {
					t.Fatalf("batch %d row %d is not sample %d", k, j, i)
				}
			}
			idx = append(idx, b.Indices...)
		}
		it.Close()
		want := Order(10, 3, 1)
		if !tc.drop && !slices.Equal(idx, want) {
			t.Errorf("epoch order %v, want Order(10, 3, 1) = %v", idx, want)
		}
	}
}

// augmenter makes the augmentation spec says for d's samples.
func augmenter(t *testing.T, d *Dataset, spec string) *augment.Augmenter {
	t.Helper()
	cfg, err := augment.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	a, err := augment.New(cfg, d.SampleShape())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestLoaderWorkers: with augmentation, 1 and 4 workers give identical
// batches, and resuming at batch k gives the rest of the epoch.
func TestLoaderWorkers(t *testing.T) {
	d := synth(t, 50, 3, 8, 8, 5)
	a := augmenter(t, d, "rotation=20,shift=0.1,zoom=0.1,hflip,cutout=3,seed=11")
	mk := func(workers, prefetch int) *Loader {
		return &Loader{Source: d, BatchSize: 8, Shuffle: true, Seed: 1, Transform: a, Workers: workers, Prefetch: prefetch}
	}
	one := epochBatches(t, mk(1, 1), 2, 0)
	four := epochBatches(t, mk(4, 3), 2, 0)
	if len(one) != 7 || len(four) != 7 {
		t.Fatalf("%d and %d batches, want 7", len(one), len(four))
	}
	for k := range one {
		if !slices.Equal(one[k], four[k]) {
			t.Fatalf("batch %d differs between 1 and 4 workers", k)
		}
	}
	tail := epochBatches(t, mk(2, 2), 2, 4)
	if len(tail) != 3 || !slices.Equal(tail[0], one[4]) || !slices.Equal(tail[2], one[6]) {
		t.Error("resuming at batch 4 does not give batches 4..6")
	}
	other := epochBatches(t, mk(2, 2), 3, 0)
	if slices.Equal(other[0], one[0]) {
		t.Error("epochs 2 and 3 gave the same first batch")
	}
	if _, err := mk(1, 1).Epoch(context.Background(), 0, 8); err == nil {
		t.Error("start batch past the end accepted")
	}
}

// TestLoaderEpochFrom: resuming at a sample position with another batch
// size yields exactly the samples the epoch has left, in its order, in
// batches of the new size numbered from the given first number.
func TestLoaderEpochFrom(t *testing.T) {
	d := synth(t, 23, 1, 2, 2, 3)
	order := Order(23, 5, 2)
	cases := []struct {
		skip, bs, first int
		sizes           []int
		drop            bool
	}{
		{8, 6, 2, []int{6, 6, 3}, false}, // 8 samples done in batches of 4, now batches of 6
		{8, 6, 2, []int{6, 6}, true},
		{0, 10, 0, []int{10, 10, 3}, false},
		{21, 4, 7, []int{2}, false},
		{21, 4, 7, nil, true},
		{23, 4, 5, nil, false}, // the epoch's last sample was done
	}
	for _, tc := range cases {
		l := &Loader{Source: d, BatchSize: tc.bs, Shuffle: true, Seed: 5, DropRemainder: tc.drop, Workers: 2}
		if got := l.BatchesFrom(tc.skip); got != len(tc.sizes) {
			t.Errorf("%+v: BatchesFrom = %d, want %d", tc, got, len(tc.sizes))
		}
		it, err := l.EpochFrom(context.Background(), 2, tc.skip, tc.first)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int
		for k := 0; ; k++ {
			b, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if k >= len(tc.sizes) || b.Y.Len() != tc.sizes[k] || b.Number != tc.first+k {
				t.Fatalf("%+v: batch %d has %d samples, number %d", tc, k, b.Y.Len(), b.Number)
			}
			for j, i := range b.Indices {
				if !slices.Equal(b.X.Float32s()[j*4:(j+1)*4], d.Sample(i)) {
					t.Fatalf("%+v: batch %d row %d is not sample %d", tc, k, j, i)
				}
			}
			idx = append(idx, b.Indices...)
		}
		it.Close()
		want := order[tc.skip:]
		if tc.drop {
			want = want[:len(want)/tc.bs*tc.bs]
		}
		if !slices.Equal(idx, want) {
			t.Errorf("%+v: samples %v, want %v", tc, idx, want)
		}
	}
	l := &Loader{Source: d, BatchSize: 4}
	for _, skip := range []int{-1, 24} {
		if _, err := l.EpochFrom(context.Background(), 0, skip, 0); err == nil || !strings.Contains(err.Error(), "sample") {
			t.Errorf("skip %d: %v", skip, err)
		}
	}
}

// TestLoaderPart: the shares of three workers, each loaded with Part, put
// together are the batches of the whole, each worker reads only its own
// samples, and an empty share is a batch of no samples.
func TestLoaderPart(t *testing.T) {
	d := synth(t, 10, 3, 8, 8, 5)
	a := augmenter(t, d, "rotation=20,shift=0.1,seed=5")
	// 10 samples in batches of 4: 4, 4, 2; three workers take 1, 1, 2 of
	// a batch of 4, and 0, 1, 1 of the last.
	share := func(w int) func(int) (int, int) {
		return func(n int) (int, int) { return w * n / 3, (w + 1) * n / 3 }
	}
	whole := epochBatches(t, &Loader{Source: d, BatchSize: 4, Shuffle: true, Seed: 2, Transform: a}, 1, 0)
	parts := make([][][]float32, 3)
	index := make([][][]float32, 3)
	for w := range parts {
		src := &failing{Dataset: d, bad: -1}
		l := &Loader{Source: src, BatchSize: 4, Shuffle: true, Seed: 2, Transform: a, Part: share(w)}
		it, err := l.Epoch(context.Background(), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; ; k++ {
			b, err := it.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			total := min(4, 10-4*k)
			lo, hi := share(w)(total)
			if b.Total != total || b.Offset != lo || b.X.Shape()[0] != hi-lo || len(b.Indices) != hi-lo {
				t.Fatalf("worker %d batch %d: offset %d total %d shape %v, want [%d, %d) of %d", w, k, b.Offset, b.Total, b.X.Shape(), lo, hi, total)
			}
			parts[w] = append(parts[w], append([]float32{}, b.X.Float32s()...))
			var idx []float32
			for _, i := range b.Indices {
				idx = append(idx, float32(i))
			}
			index[w] = append(index[w], idx)
		}
		it.Close()
		if want := []int{2, 3, 5}[w]; src.reads.Load() != int64(want) {
			t.Errorf("worker %d read %d samples, want its %d", w, src.reads.Load(), want)
		}
	}
	for k := range whole {
		var joined []float32
		for w := range parts {
			joined = append(joined, parts[w][k]...)
		}
		for w := range parts {
			joined = append(joined, index[w][k]...) // epochBatches appends the indices
		}
		if !slices.Equal(joined, whole[k]) {
			t.Fatalf("batch %d: the workers' shares do not make the whole batch", k)
		}
	}
	bad := &Loader{Source: d, BatchSize: 4, Part: func(n int) (int, int) { return 1, n + 1 }}
	it, err := bad.Epoch(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if _, err := it.Next(); err == nil || !strings.Contains(err.Error(), "share [1, 5) of a batch of 4") {
		t.Errorf("a share outside the batch: %v", err)
	}
}

// failing reads sample bad with an error and counts reads.
type failing struct {
	*Dataset
	bad   int
	reads atomic.Int64
	delay time.Duration
}

func (f *failing) Read(i int, dst []float32) error {
	f.reads.Add(1)
	time.Sleep(f.delay)
	if i == f.bad {
		return fmt.Errorf("sample %d: disk on fire", i)
	}
	return f.Dataset.Read(i, dst)
}

func TestLoaderErrorsAndShutdown(t *testing.T) {
	base := runtime.NumGoroutine()
	d := synth(t, 40, 1, 2, 2, 2)
	src := &failing{Dataset: d, bad: 21}
	l := &Loader{Source: src, BatchSize: 4, Workers: 3, Prefetch: 2}
	it, err := l.Epoch(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got error
	for k := 0; k < 20; k++ {
		if _, got = it.Next(); got != nil {
			break
		}
	}
	if got == nil || !strings.Contains(got.Error(), "disk on fire") {
		t.Fatalf("error from a worker: %v", got)
	}
	if _, err := it.Next(); err == nil {
		t.Error("Next after an error returned a batch")
	}
	it.Close()

	// prefetch is bounded: with nobody reading, at most Prefetch batches
	// (here 2 of 4 samples) are read
	src2 := &failing{Dataset: d, bad: -1}
	l2 := &Loader{Source: src2, BatchSize: 4, Workers: 2, Prefetch: 2}
	it2, err := l2.Epoch(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := src2.reads.Load(); n > 8 {
		t.Errorf("%d samples read ahead with prefetch 2 of batches of 4", n)
	}
	it2.Close() // early stop

	// a cancelled context ends the epoch with its error
	src3 := &failing{Dataset: d, bad: -1, delay: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	it3, _ := (&Loader{Source: src3, BatchSize: 4}).Epoch(ctx, 0, 0)
	if _, err := it3.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	var e error
	for range 20 {
		if _, e = it3.Next(); e != nil {
			break
		}
	}
	if !errors.Is(e, context.Canceled) {
		t.Errorf("after cancel: %v", e)
	}
	it3.Close()

	time.Sleep(20 * time.Millisecond)
	if n := runtime.NumGoroutine(); n > base {
		t.Errorf("%d goroutines after the iterators closed, %d before", n, base)
	}
	if _, err := (&Loader{Source: d}).Epoch(context.Background(), 0, 0); err == nil {
		t.Error("batch size 0 accepted")
	}
	if _, err := (&Loader{Source: d, BatchSize: 2, SampleShape: []int{5}}).Epoch(context.Background(), 0, 0); err == nil {
		t.Error("a sample shape of the wrong size accepted")
	}
}
