package checkpoint

import (
	"testing"

	"github.com/gotrain/gotrain/data"
)

func TestDataHash(t *testing.T) {
	mk := func(edit func(x []float32, y []int64)) *data.Dataset {
		x := make([]float32, 6*2*2*3)
		for i := range x {
			x[i] = float32(i) / 7
		}
		y := []int64{0, 1, 2, 0, 1, 2}
		if edit != nil {
			edit(x, y)
		}
		d, err := data.NewDataset(x, y, 6, 3, 2, 2, data.NCHW, 3, "t")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	hash := func(d *data.Dataset) string {
		h, err := DataHash(d)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	base := hash(mk(nil))
	if again := hash(mk(nil)); again != base {
		t.Fatalf("equal data, hashes %s and %s", base, again)
	}
	head, _ := mk(nil).Head(5)
	others := map[string]*data.Dataset{
		"a value": mk(func(x []float32, _ []int64) { x[40] = -x[40] }),
		"a label": mk(func(_ []float32, y []int64) { y[3] = 2 }),
		"the order": mk(func(x []float32, y []int64) {
			y[0], y[1] = y[1], y[0]
			for i := range 12 {
				x[i], x[12+i] = x[12+i], x[i]
			}
		}),
		"a subset": head,
		"layout":   mk(nil).WithLayout(data.NHWC),
	}
	for what, d := range others {
		if h := hash(d); h == base {
			t.Errorf("changing %s keeps the hash %s", what, h)
		}
	}
}
