//go:build windows

package checkpoint

import (
	"errors"
	"os"
	"syscall"
)

// errSharingViolation is ERROR_SHARING_VIOLATION.
const errSharingViolation syscall.Errno = 32

// tryLock opens (or creates) path for writing with a share mode that lets
// others read it but not open it for writing: the file is locked until it
// is closed, or its process ends.
func tryLock(path string) (*os.File, bool, error) {
	p, err := syscall.UTF16PtrFromString(path)
	if err != nil {
		return nil, false, err
	}
	h, err := syscall.CreateFile(p, syscall.GENERIC_READ|syscall.GENERIC_WRITE, syscall.FILE_SHARE_READ, nil,
		syscall.OPEN_ALWAYS, syscall.FILE_ATTRIBUTE_NORMAL, 0)
	if errors.Is(err, errSharingViolation) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return os.NewFile(uintptr(h), path), true, nil
}

// unlockFile closes the file, which releases the lock, then removes it; if
// another run has opened it meanwhile, the removal fails and the file is
// that run's.
func unlockFile(f *os.File, path string) error {
	if err := f.Close(); err != nil {
		return err
	}
	os.Remove(path)
	return nil
}
