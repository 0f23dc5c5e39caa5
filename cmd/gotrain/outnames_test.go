package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestOutputFiles(t *testing.T) {
	tests := []struct {
		names []string
		files []string
	}{
		{[]string{"logits", "probs"}, []string{"logits.npy", "probs.npy"}},
		{[]string{"a/b", "a_b"}, []string{"a_b_2.npy", "a_b.npy"}}, // the unchanged name keeps its file
		{[]string{"a/b", "a\\b"}, []string{"a_b.npy", "a_b_2.npy"}},
		{[]string{"a/b", "a_b", "a_b_2"}, []string{"a_b_3.npy", "a_b.npy", "a_b_2.npy"}}, // a suffix never takes another output's file
		{[]string{"Out", "out"}, []string{"Out.npy", "out_2.npy"}},                       // case-insensitive file systems
		{[]string{""}, []string{"output.npy"}},
	}
	for _, tc := range tests {
		got := outputFiles(tc.names)
		var files []string
		for i, f := range got {
			files = append(files, f.name)
			if renamed := f.name != sanitize(tc.names[i])+".npy" && tc.names[i] != ""; renamed != (f.note != "") {
				t.Errorf("%q: output %q -> %s, note %q", tc.names, tc.names[i], f.name, f.note)
			}
		}
		if !slices.Equal(files, tc.files) {
			t.Errorf("%q: files %v, want %v", tc.names, files, tc.files)
		}
	}
}

// Outputs whose file names collide once sanitized each get their own file,
// and the listing says which were renamed.
func TestRunCollidingOutputs(t *testing.T) {
	dir := t.TempDir()
	b := graph.NewBuilder("three", 17)
	x := b.Input("x", tensor.Float32, graph.D(2))
	b.Output(b.Op("Identity", x).Named("a/b").Out())
	b.Output(b.Op("Neg", x).Named("a_b").Out())
	b.Output(b.Op("Abs", b.Op("Neg", x).Out()).Named("A_B").Out())
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "three.onnx")
	if err := graph.Save(m, model); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "x.npy")
	writeNPY(t, in, []float32{-1, 2}, 2)
	out := filepath.Join(dir, "out")
	r := gotrain(t, "run", "--model", model, "--input", in, "--output-dir", out)
	r.expect(t, 0)
	want := map[string][]float32{"a_b.npy": {1, -2}, "a_b_2.npy": {-1, 2}, "A_B_3.npy": {1, 2}}
	for name, v := range want {
		if got := readNPY(t, filepath.Join(out, name)).Float32s(); !slices.Equal(got, v) {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	ents, _ := os.ReadDir(out)
	if len(ents) != 3 {
		t.Errorf("%d files written, want 3", len(ents))
	}
	for _, line := range []string{
		"a/b: [2] -> " + filepath.Join(out, "a_b_2.npy") + ` (renamed: output "a_b" also maps to a_b.npy)`,
		"a_b: [2] -> " + filepath.Join(out, "a_b.npy") + "\n",
		"A_B: [2] -> " + filepath.Join(out, "A_B_3.npy") + ` (renamed: output "a_b" also maps to a_b.npy)`,
	} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("output does not say %q:\n%s", line, r.stdout)
		}
	}
}
