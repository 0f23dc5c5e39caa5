package cpu

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestConstantOps(t *testing.T) {
	cases := []struct {
		attr *graph.Attribute
		want string
	}{
		{graph.ATensor("value", tensor.MustFromSlice([]int32{4, 5}, 2)), "int32[2][4 5]"},
		{graph.AFloat("value_float", 1.5), "float32[][1.5]"},
		{graph.AFloats("value_floats", 1, 2), "float32[2][1 2]"},
		{graph.AInt("value_int", -3), "int64[][-3]"},
		{graph.AInts("value_ints", 7, 8, 9), "int64[3][7 8 9]"},
		{&graph.Attribute{Name: "value_strings", Type: graph.AttrStrings, Strings: []string{"a", "b"}}, `string[2]["a" "b"]`},
	}
	for _, c := range cases {
		y := mustRun(t, node("Constant", 0, 1, c.attr), 13)[0]
		if got := y.String(); got != c.want {
			t.Errorf("Constant %s: got %s, want %s", c.attr.Name, got, c.want)
		}
	}
	if _, err := runNode(node("Constant", 0, 1), 13); err == nil {
		t.Error("a Constant without a value attribute was accepted")
	}

	y := mustRun(t, node("ConstantOfShape", 1, 1, graph.ATensor("value", tensor.MustFromSlice([]int32{6}, 1))), 13, ints64(tensor.Int64, 2, 0, 3))[0]
	if y.DType() != tensor.Int32 || !tensor.SameShape(y.Shape(), []int{2, 0, 3}) {
		t.Errorf("ConstantOfShape: %v", y)
	}
	y = mustRun(t, node("ConstantOfShape", 1, 1), 13, ints64(tensor.Int64, 2, 2))[0]
	if got := y.String(); got != "float32[2 2][0 0 0 0]" {
		t.Errorf("ConstantOfShape default: %s", got)
	}

	for _, c := range []struct {
		start, limit, delta *tensor.Tensor
		want                string
	}{
		{tensor.Scalar(int32(10)), tensor.Scalar(int32(4)), tensor.Scalar(int32(-3)), "int32[2][10 7]"},
		{tensor.Scalar(int64(0)), tensor.Scalar(int64(7)), tensor.Scalar(int64(3)), "int64[3][0 3 6]"},
		{tensor.Scalar(int64(5)), tensor.Scalar(int64(1)), tensor.Scalar(int64(1)), "int64[0][]"},
		{tensor.Scalar(float32(1)), tensor.Scalar(float32(2)), tensor.Scalar(float32(0.25)), "float32[4][1 1.25 1.5 1.75]"},
	} {
		y := mustRun(t, node("Range", 3, 1), 11, c.start, c.limit, c.delta)[0]
		if got := y.String(); got != c.want {
			t.Errorf("Range(%v, %v, %v) = %s, want %s", c.start, c.limit, c.delta, got, c.want)
		}
	}
	if _, err := runNode(node("Range", 3, 1), 11, tensor.Scalar(int64(0)), tensor.Scalar(int64(3)), tensor.Scalar(int64(0))); err == nil {
		t.Error("Range with delta 0 was accepted")
	}

	for _, k := range []int64{-1, 0, 2} {
		y := mustRun(t, node("EyeLike", 1, 1, graph.AInt("k", k), graph.AInt("dtype", int64(tensor.Int64))), 9, tensor.New(tensor.Float32, 3, 4))[0]
		for i, v := range y.Int64s() {
			r, c := i/4, i%4
			want := int64(0)
			if int64(c-r) == k {
				want = 1
			}
			if v != want {
				t.Fatalf("EyeLike k=%d: element (%d,%d) = %d, want %d", k, r, c, v, want)
			}
		}
	}
}
