package tensor_test

import (
	"testing"

	"github.com/gotrain/gotrain/tensor"
)

// TestFromSliceShapes: a shape whose dims multiply to the slice's length
// but that has negative dims ([-1, -1] for one element) or overflows is
// refused, not wrapped into a tensor that panics when it is cloned.
func TestFromSliceShapes(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     int
		shape []int
		ok    bool
	}{
		{"fits", 6, []int{2, 3}, true},
		{"scalar", 1, nil, true},
		{"empty", 0, []int{0, 5}, true},
		{"two negatives", 1, []int{-1, -1}, false},
		{"negatives times three", 3, []int{1, 3, -1, -1}, false},
		{"negative zero", 0, []int{-1, 0}, false},
		{"overflow to a fit", 0, []int{1 << 32, 1 << 32}, false},
		{"too few", 5, []int{2, 3}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			x, err := tensor.FromSlice(make([]float32, c.n), c.shape...)
			if (err == nil) != c.ok {
				t.Fatalf("FromSlice(%d values, %v): err %v, want ok=%v", c.n, c.shape, err, c.ok)
			}
			if err == nil {
				x.Clone() // must not panic
			}
			_, err = tensor.FromRaw16(tensor.Float16, make([]uint16, c.n), c.shape...)
			if (err == nil) != c.ok {
				t.Fatalf("FromRaw16(%d values, %v): err %v, want ok=%v", c.n, c.shape, err, c.ok)
			}
		})
	}
}
