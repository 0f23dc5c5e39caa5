// Package atomicfile writes files so that readers see either the old
// content or the complete new one, also across a crash or SIGKILL: the data
// goes to a temporary file in the target's folder, which is synced, renamed
// over the target, and the folder synced. Every file gotrain writes that
// matters (checkpoints, exported models, NPY/NPZ, histories, plots) goes
// through it.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// tempMarker is part of every temporary file's name: ".<base>.tmp-<random>".
// The leading dot and the suffix keep a temporary file from matching the
// target's pattern (ckpt-*.onnx, *.ckpt), so a file left behind by a killed
// process is never mistaken for the file it was to become.
const tempMarker = ".tmp-"

// IsTemp reports whether a file name is one of the temporary files that
// atomic writes use before renaming into place.
func IsTemp(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".") && strings.Contains(base, tempMarker)
}

// TempPattern is the os.CreateTemp pattern of a temporary file for target
// base, with suffix after the marker (before the random part).
func TempPattern(base, suffix string) string { return "." + base + tempMarker + suffix + "*" }

// Temp is a temporary file that will replace path.
type Temp struct {
	path string
	f    *os.File
	w    *bufio.Writer
	done bool // closed and ready (or renamed)
}

// Create starts a temporary file beside path. It first removes temporary
// files that a killed writer of the same target left behind, so repeated
// crashes do not fill the disk (one writer per target is assumed).
func Create(path string) (*Temp, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return nil, fmt.Errorf("write %q: not a file name", path)
	}
	removeStale(dir, base)
	f, err := os.CreateTemp(dir, TempPattern(base, ""))
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &Temp{path: path, f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// Writer is where the new content goes (buffered).
func (t *Temp) Writer() io.Writer { return t.w }

// Close flushes and syncs the temporary file and makes it world-readable,
// ready for Rename; on failure it removes it.
func (t *Temp) Close() error {
	err := t.w.Flush()
	if err == nil {
		err = t.f.Chmod(0o644)
	}
	if err == nil {
		if err = t.f.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	if cerr := t.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(t.f.Name())
		t.done = true
		return fmt.Errorf("write %s: %w", t.path, err)
	}
	return nil
}

// Rename moves the closed temporary file over its target and syncs the
// folder (some filesystems cannot sync a folder; the file is complete
// either way).
func (t *Temp) Rename() error {
	if err := os.Rename(t.f.Name(), t.path); err != nil {
		os.Remove(t.f.Name())
		t.done = true
		return fmt.Errorf("write %s: %w", t.path, err)
	}
	t.done = true
	if d, err := os.Open(filepath.Dir(t.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Discard removes the temporary file unless it was renamed; deferring it
// cleans up after any failure.
func (t *Temp) Discard() {
	if !t.done {
		t.f.Close()
		os.Remove(t.f.Name())
		t.done = true
	}
}

// Write writes path atomically with write. When write or any step fails,
// the temporary file is removed and path is left as it was.
func Write(path string, write func(w io.Writer) error) error {
	t, err := Create(path)
	if err != nil {
		return err
	}
	defer t.Discard()
	if err := write(t.Writer()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := t.Close(); err != nil {
		return err
	}
	return t.Rename()
}

func removeStale(dir, base string) {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	matches, _ := filepath.Glob(filepath.Join(dir, "."+r.Replace(base)+tempMarker+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}
