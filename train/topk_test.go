package train

import (
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

func TestTopKCorrect(t *testing.T) {
	scores := tensor.MustFromSlice([]float32{
		0.1, 0.5, 0.2, 0.9, // label 1 is 2nd
		1, 1, 0, 0, // label 1 ties with 0: 2nd
		0, 0, 0, 3, // label 0 ties with 1 and 2, below 3: 2nd
	}, 3, 4)
	labels := tensor.MustFromSlice([]int64{1, 1, 0}, 3)
	for _, c := range []struct {
		k    int
		want float64
	}{{1, 0}, {2, 3}, {3, 3}} {
		if got := topKCorrect(scores, labels, c.k); got != c.want {
			t.Errorf("top-%d: %v correct, want %v", c.k, got, c.want)
		}
	}
}
