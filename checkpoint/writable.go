package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

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
	f, err := os.CreateTemp(dir, atomicfile.TempPattern(filepath.Base(path), "probe-"))
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
