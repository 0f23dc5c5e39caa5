package checkpoint

import (
	"math"
	"strings"
	"testing"
)

// The expected strings are what Python's str.format gives for the same
// field and value (checked with /usr/bin/python3 when written).
func TestPathTemplate(t *testing.T) {
	tests := []struct {
		tmpl string
		ints map[string]int64
		logs map[string]float64
		want string // or the error's text, when err
		err  bool
	}{
		{"ckpt-{epoch:02d}-{val_loss:.4f}.onnx", map[string]int64{"epoch": 3}, map[string]float64{"val_loss": 0.123456}, "ckpt-03-0.1235.onnx", false},
		{"{epoch}", map[string]int64{"epoch": 7}, nil, "7", false},
		{"{loss}", nil, map[string]float64{"loss": 0.5}, "0.5", false},
		{"{loss}", nil, map[string]float64{"loss": 1}, "1.0", false},
		{"{loss}", nil, map[string]float64{"loss": 1e-5}, "1e-05", false},
		{"{loss:e}", nil, map[string]float64{"loss": 12345.678}, "1.234568e+04", false},
		{"{acc:.1%}", nil, map[string]float64{"acc": 0.257}, "25.7%", false},
		{"{epoch:+04d}", map[string]int64{"epoch": 5}, nil, "+005", false},
		{"{loss:8.3f}", nil, map[string]float64{"loss": 3.14159}, "   3.142", false},
		{"{loss:g}", nil, map[string]float64{"loss": 0.0001234}, "0.0001234", false},
		{"{loss:.2f}", nil, map[string]float64{"loss": math.NaN()}, "nan", false},
		{"{loss:06.2f}", nil, map[string]float64{"loss": -1.5}, "-01.50", false},
		{"{{x}}-{epoch:03}", map[string]int64{"epoch": 9}, nil, "{x}-009", false},
		{"{nope}.onnx", map[string]int64{"epoch": 1}, map[string]float64{"loss": 1}, "{nope} names no known value (known: epoch, loss)", true},
		{"{epoch.onnx", nil, nil, "is not closed", true},
		{"a}b", nil, nil, "single '}'", true},
		{"{loss:q}", nil, nil, `spec "q"`, true},
		{"{:d}", nil, nil, "needs a name", true},
		{"{loss:d}", nil, map[string]float64{"loss": 0.5}, "0.5 is not an integer", true},
	}
	for _, tc := range tests {
		pt, err := parseTemplate(tc.tmpl)
		var got string
		if err == nil {
			got, err = pt.render(tc.ints, tc.logs)
		}
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.tmpl) {
				t.Errorf("%q: error %v, want one naming the template and containing %q", tc.tmpl, err, tc.want)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.tmpl, got, err, tc.want)
		}
	}
}
