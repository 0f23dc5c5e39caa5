package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// tempMarker is part of every temporary file's name: ".<base>.tmp-<random>".
// The leading dot and the suffix keep a temporary file from matching the
// target's pattern (ckpt-*.onnx, *.ckpt), so a file left behind by a killed
// process is never mistaken for a checkpoint.
const tempMarker = ".tmp-"

// IsTemp reports whether a file name is one of the temporary files that
// atomic writes use before renaming into place.
func IsTemp(name string) bool {
	base := filepath.Base(name)
	return strings.HasPrefix(base, ".") && strings.Contains(base, tempMarker)
}

// WriteFileAtomic writes a file so that readers see either the old content or
// the complete new one, also across a crash or SIGKILL: it writes a temporary
// file in the same folder, syncs it to disk, renames it over path and syncs
// the folder. When write or any step fails, the temporary file is removed and
// path is left as it was.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return fmt.Errorf("write %q: not a file name", path)
	}
	removeStaleTemps(dir, base)
	f, err := os.CreateTemp(dir, "."+base+tempMarker+"*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// The rename is durable only once the folder's entry is on disk. Some
	// filesystems cannot sync a folder; the file itself is complete either way.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// removeStaleTemps deletes temporary files that a killed writer of the same
// target left behind, so repeated crashes do not fill the disk with them. One
// writer per target is assumed, as for every checkpoint path.
func removeStaleTemps(dir, base string) {
	matches, _ := filepath.Glob(filepath.Join(dir, "."+globEscape(base)+tempMarker+"*"))
	for _, m := range matches {
		os.Remove(m)
	}
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// CheckWritable verifies, before training starts, that a file can later be
// written at path: its folder exists and is a folder, a file can be created
// and removed there, and path itself is not a folder. Call it for every
// export and checkpoint path so that a typo fails now, not after hours of
// training.
func CheckWritable(path string) error {
	if path == "" {
		return errors.New("output path is empty")
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("output path %s is a folder, expected a file name", path)
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("output path %s: folder %s does not exist", path, dir)
	case err != nil:
		return fmt.Errorf("output path %s: %w", path, err)
	case !st.IsDir():
		return fmt.Errorf("output path %s: %s is not a folder", path, dir)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMarker+"probe-*")
	if err != nil {
		return fmt.Errorf("output path %s: folder %s is not writable: %w", path, dir, err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("output path %s: cannot remove probe file %s: %w", path, name, err)
	}
	return nil
}
