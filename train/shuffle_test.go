package train_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/train"
)

// orderRecorder is a Transform that copies samples unchanged and records
// the index of each, per epoch, in the order the loader reads them.
type orderRecorder struct {
	mu    sync.Mutex
	order map[int][]int
}

func (r *orderRecorder) Apply(dst, src []float32, epoch, index int) error {
	copy(dst, src)
	r.mu.Lock()
	r.order[epoch] = append(r.order[epoch], index)
	r.mu.Unlock()
	return nil
}

// TestShuffle: by default each epoch reads the training data in the order
// data.Order draws from the seed and the epoch; with NoShuffle every epoch
// reads it in its stored order.
func TestShuffle(t *testing.T) {
	const n, epochs = 12, 3
	x := make([]float32, n*4)
	y := make([]int64, n)
	for i := range x {
		x[i] = float32(i%5) / 5
	}
	for i := range y {
		y[i] = int64(i % 3)
	}
	d, err := data.NewDataset(x, y, n, 1, 2, 2, data.NCHW, 3, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, noShuffle := range []bool{false, true} {
		m, err := models.Build("mlp", models.Options{Input: []int{1, 2, 2}, Classes: 3, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		rec := &orderRecorder{order: map[int][]int{}}
		// One worker reads the samples of a batch in order.
		_, err = train.Fit(context.Background(), m, d, nil, train.Config{Epochs: epochs, BatchSize: 4, Seed: 5,
			Optim: optim.Config{Name: "sgd", LR: 0.01}, Backend: cpu.New(cpu.Options{}), Transform: rec, Workers: 1, NoShuffle: noShuffle})
		if err != nil {
			t.Fatal(err)
		}
		inOrder := make([]int, n)
		for i := range inOrder {
			inOrder[i] = i
		}
		for e := range epochs {
			want := data.Order(n, 5, e)
			if noShuffle {
				want = inOrder
			}
			if !slices.Equal(rec.order[e], want) {
				t.Errorf("NoShuffle %v, epoch %d: order %v, want %v", noShuffle, e, rec.order[e], want)
			}
		}
		if !noShuffle && slices.Equal(rec.order[0], inOrder) {
			t.Errorf("shuffled epoch 0 is in stored order: %v", rec.order[0])
		}
	}
}
