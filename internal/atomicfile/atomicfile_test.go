package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.onnx")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := Write(path, write("first")); err != nil {
		t.Fatal(err)
	}
	// A temporary file a killed writer left behind is cleared by the next write.
	stale := filepath.Join(dir, ".model.onnx.tmp-12345")
	if err := os.WriteFile(stale, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Write(path, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write returned %v, want it to wrap %v", err, boom)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("after a failed write the file holds %q, want the old %q", b, "first")
	}
	if err := Write(path, write("second")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "second" {
		t.Fatalf("file holds %q, want %q", b, "second")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "model.onnx" {
			t.Errorf("left behind: %s (IsTemp %v)", e.Name(), IsTemp(e.Name()))
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".ckpt-3.onnx.tmp-981": true, "dir/.state.ckpt.tmp-1": true,
		"ckpt-3.onnx": false, "state.ckpt.tmp-1": false, ".hidden": false,
	} {
		if got := IsTemp(name); got != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, got, want)
		}
	}
}
