package checkpoint

import (
	"slices"
	"strings"
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

func TestConfigChanges(t *testing.T) {
	tests := []struct {
		stored, current string
		want            []ConfigChange
		err             string
	}{
		{`{"lr":0.001,"epochs":10,"data":"mnist"}`, `{"data":"mnist","epochs":12,"lr":0.0005}`,
			[]ConfigChange{{"epochs", "10", "12"}, {"lr", "0.001", "0.0005"}}, ""},
		{`{"lr":1,"tags":{"a":1,"b":2}}`, `{"lr":1.0,"tags":{"b":2,"a":1}}`, nil, ""}, // equal values, other spelling
		{`{"old_key":1,"x":"a"}`, `{"new_key":2,"x":"a"}`, nil, ""},                   // keys of other versions
		{``, `{"x":1}`, nil, ""},
		{`{"x":`, `{"x":1}`, nil, "stored training configuration"},
		{`{"x":1}`, `[1]`, nil, "the training configuration"},
	}
	for _, tc := range tests {
		got, err := ConfigChanges([]byte(tc.stored), []byte(tc.current))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s vs %s: error %v, want %q", tc.stored, tc.current, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s vs %s: %v, %v; want %v", tc.stored, tc.current, got, err, tc.want)
		}
	}
}
