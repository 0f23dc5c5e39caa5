package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// An output folder is locked while a training run writes into it, so that
// two runs never mix their files (nor trip over each other's temporary
// files). The lock is advisory: a lock file, LockFile in the folder, that
// the operating system locks (flock on Unix, an exclusive share mode on
// Windows) and that holds the holder's PID, host, start time and command.
// The operating system releases the lock when its holder dies however it
// dies, so a lock file left by a killed run on the same host is taken over
// (DirLock.Previous says whose it was). A lock file naming another host is
// not: this host cannot tell whether that run still writes, so LockDir
// refuses and says which file to remove once it has stopped.

// LockFile is the name of an output folder's lock file.
const LockFile = ".lock"

// ErrLocked is what a *LockedError matches with errors.Is.
var ErrLocked = errors.New("folder is locked by another run")

// Holder describes the process that holds (or held) a folder's lock.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
	Command string    `json:"command,omitempty"`
}

func (h *Holder) String() string {
	s := fmt.Sprintf("PID %d on host %s since %s", h.PID, h.Host, h.Since.Format(time.RFC3339))
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	return s
}

// LockedError says that another run holds a folder's lock, and who.
type LockedError struct {
	Dir    string
	Path   string  // the lock file
	Holder *Holder // nil when the file could not be read (being written)
	// OtherHost is set when the file names another host: the lock may be
	// stale, which only that host can tell.
	OtherHost bool
}

func (e *LockedError) Error() string {
	who := "another run (its lock file " + e.Path + " is being written)"
	if e.Holder != nil {
		who = e.Holder.String()
	}
	if e.OtherHost {
		return fmt.Sprintf("folder %s is locked by %s; this host cannot tell whether that run is still writing: once it has stopped, remove %s", e.Dir, who, e.Path)
	}
	return fmt.Sprintf("folder %s is in use by %s (lock file %s)", e.Dir, who, e.Path)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// DirLock is a held folder lock.
type DirLock struct {
	path string
	f    *os.File
	// Previous is the holder named by a lock file that was left behind (by
	// a run that died without unlocking) and taken over; nil otherwise.
	Previous *Holder
}

// LockDir takes dir's lock without waiting, or returns a *LockedError
// naming the holder. The folder must exist. Unlock releases it.
func LockDir(dir string) (*DirLock, error) {
	path := filepath.Join(dir, LockFile)
	me := currentHolder()
	// A holder unlocking removes the file; a lock taken on the removed file
	// between our open and our lock is worthless, so try again.
	for range 100 {
		f, ok, err := tryLock(path)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if !ok {
			b, _ := os.ReadFile(path)
			return nil, &LockedError{Dir: dir, Path: path, Holder: parseHolder(b)}
		}
		if !stillAt(f, path) {
			f.Close()
			continue
		}
		prev := readHolder(f)
		if prev != nil && prev.Host != me.Host {
			f.Close()
			return nil, &LockedError{Dir: dir, Path: path, Holder: prev, OtherHost: true}
		}
		b, _ := json.Marshal(me)
		if err := writeHolder(f, append(b, '\n')); err != nil {
			unlockFile(f, path)
			return nil, fmt.Errorf("lock %s: writing %s: %w", dir, path, err)
		}
		return &DirLock{path: path, f: f, Previous: prev}, nil
	}
	return nil, fmt.Errorf("lock %s: %s keeps being replaced", dir, path)
}

// Unlock releases the lock and removes the lock file. Calling it twice is
// harmless.
func (l *DirLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	if !stillAt(f, l.path) { // removed by hand: leave what is there now
		return f.Close()
	}
	return unlockFile(f, l.path)
}

func currentHolder() *Holder {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	cmd := strings.Join(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...), " ")
	if len(cmd) > 300 {
		cmd = cmd[:300] + "..."
	}
	return &Holder{PID: os.Getpid(), Host: host, Since: time.Now().UTC().Truncate(time.Second), Command: cmd}
}

// stillAt reports whether path is still the file f has open.
func stillAt(f *os.File, path string) bool {
	a, err1 := f.Stat()
	b, err2 := os.Stat(path)
	return err1 == nil && err2 == nil && os.SameFile(a, b)
}

// readHolder reads the holder a lock file names, or nil (empty, damaged).
func readHolder(f *os.File) *Holder {
	st, err := f.Stat()
	if err != nil || st.Size() == 0 || st.Size() > 64<<10 {
		return nil
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil
	}
	return parseHolder(b)
}

func parseHolder(b []byte) *Holder {
	var h Holder
	if len(b) == 0 || len(b) > 64<<10 || json.Unmarshal(b, &h) != nil || h.PID <= 0 {
		return nil
	}
	return &h
}

func writeHolder(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Sync()
}

// removeThenClose removes the lock file while still holding its lock (a
// process that opened it meanwhile finds it gone once it has the lock, and
// tries again), then releases the lock by closing it.
func removeThenClose(f *os.File, path string) error {
	err := os.Remove(path)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
