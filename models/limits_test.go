package models

import (
	"testing"

	"github.com/gotrain/gotrain/internal/memtest"
)

// What `gotrain models export` passes through from --classes and --input:
// sizes whose parameters would not fit are refused before they are made.
func TestBuildHugeOptions(t *testing.T) {
	cases := []struct {
		name  string
		model string
		o     Options
		want  []string
	}{
		{"a billion classes", "cnn", Options{Input: []int{1, 28, 28}, Classes: 1e9},
			[]string{"1000000000 classes", "parameter fc.weight [1000000000 1600]", "over the memory limit"}},
		{"a huge input", "mlp", Options{Input: []int{1, 100000, 100000}, Classes: 10},
			[]string{"input [1 100000 100000]", "parameter fc1.weight [512 10000000000]", "over the memory limit"}},
		// fc1 and fc3 take 61 MB each, under the 64 MiB limit; together not.
		{"parameters that add up", "mlp", Options{Input: []int{1, 100, 300}, Classes: 60000},
			[]string{"the parameters up to fc3.weight"}},
		{"classes past the bound", "cnn", Options{Input: []int{1, 28, 28}, Classes: 1 << 40},
			[]string{"1099511627776 classes: need between 2 and 1073741824"}},
		{"input past the bound", "cnn", Options{Input: []int{1, 1 << 40, 28}, Classes: 10},
			[]string{"dims must be in [1, 1073741824]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			memtest.Refused(t, func() error { _, err := Build(c.model, c.o); return err }, c.want...)
		})
	}
	// ResNet-20's parameters do not grow with the input (it pools
	// globally): a huge input is the data's problem, not the model's.
	if _, err := Build("resnet20", Options{Input: []int{3, 1 << 20, 1 << 20}, Classes: 10}); err != nil {
		t.Errorf("resnet20 for a huge input: %v", err)
	}
}
