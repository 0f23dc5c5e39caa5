//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package checkpoint

import (
	"errors"
	"io/fs"
	"os"
)

// tryLock creates path exclusively. Without an operating-system lock that
// ends with its process, a lock file left by a killed run is not taken
// over: LockDir names its holder, and it must be removed by hand.
func tryLock(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}

func unlockFile(f *os.File, path string) error { return removeThenClose(f, path) }
