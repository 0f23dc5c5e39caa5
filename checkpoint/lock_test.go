package checkpoint

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const lockChildEnv = "GOTRAIN_LOCK_CHILD"

// TestLockChild is the child of TestLockTwoProcesses: it locks the folder
// named by the environment, says so, and unlocks when its stdin closes.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockChildEnv)
	if dir == "" {
		t.Skip("run by TestLockTwoProcesses only")
	}
	l, err := LockDir(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	io.Copy(io.Discard, os.Stdin)
	if err := l.Unlock(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("unlocked")
	os.Exit(0)
}

// startLockChild runs TestLockChild on dir and waits until it holds the lock.
func startLockChild(t *testing.T, dir string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if lines.Text() == "locked" {
			return cmd, in, lines
		}
		if strings.HasPrefix(lines.Text(), "error") {
			t.Fatal(lines.Text())
		}
	}
	t.Fatal("the child ended without locking")
	return nil, nil, nil
}

// Two processes and one folder: the second is refused while the first
// holds the lock, with an error naming the holder; once the first unlocks
// (the file is removed) or is killed (the file stays, the lock does not),
// the second takes it, and in the second case says whose it was.
func TestLockTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	host, _ := os.Hostname()
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill=%v", kill), func(t *testing.T) {
			dir := t.TempDir()
			cmd, in, lines := startLockChild(t, dir)
			pid := cmd.Process.Pid
			_, err := LockDir(dir)
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) || le.Holder == nil || le.Holder.PID != pid || le.Holder.Host != host || le.OtherHost {
				t.Fatalf("locking a folder the child holds: %v (%+v)", err, le)
			}
			for _, want := range []string{dir, fmt.Sprintf("PID %d on host %s since ", pid, host), filepath.Join(dir, LockFile), "TestLockChild"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if kill {
				cmd.Process.Signal(syscall.SIGKILL)
				cmd.Wait()
				if _, err := os.Stat(filepath.Join(dir, LockFile)); err != nil {
					t.Fatalf("the killed child's lock file is gone: %v", err)
				}
			} else {
				in.Close()
				for lines.Scan() && lines.Text() != "unlocked" {
				}
				cmd.Wait()
				if _, err := os.Stat(filepath.Join(dir, LockFile)); !os.IsNotExist(err) {
					t.Fatalf("the lock file is still there after Unlock: %v", err)
				}
			}
			l, err := LockDir(dir)
			if err != nil {
				t.Fatalf("after the child ended: %v", err)
			}
			defer l.Unlock()
			if kill != (l.Previous != nil) || (kill && l.Previous.PID != pid) {
				t.Errorf("Previous = %+v, want the killed child %d (kill=%v)", l.Previous, pid, kill)
			}
			h := readHolder(l.f)
			if h == nil || h.PID != os.Getpid() || h.Host != host || time.Since(h.Since) > time.Minute {
				t.Errorf("the lock file names %+v, want this process", h)
			}
		})
	}
}

func TestLockOneProcess(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A second lock of the same folder is refused, in the same process too.
	if _, err := LockDir(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", os.Getpid())) {
		t.Fatalf("second lock: %v", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(); err != nil {
		t.Errorf("second Unlock: %v", err)
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Errorf("files after Unlock: %v", got)
	}
	// A file left by a run on another host is not taken over.
	path := filepath.Join(dir, LockFile)
	os.WriteFile(path, []byte(`{"pid":4242,"host":"elsewhere.invalid","since":"2030-01-02T03:04:05Z"}`+"\n"), 0o644)
	_, err = LockDir(dir)
	var le *LockedError
	if !errors.As(err, &le) || !le.OtherHost || !strings.Contains(err.Error(), "PID 4242 on host elsewhere.invalid since 2030-01-02T03:04:05Z") || !strings.Contains(err.Error(), "remove "+path) {
		t.Fatalf("lock file of another host: %v", err)
	}
	// A damaged or empty file left behind on this host is taken over.
	os.WriteFile(path, []byte("{not json"), 0o644)
	l, err = LockDir(dir)
	if err != nil || l.Previous != nil {
		t.Fatalf("damaged lock file: %v, previous %+v", err, l)
	}
	l.Unlock()
	if _, err := LockDir(filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrLocked) {
		t.Errorf("locking a missing folder: %v", err)
	}
}
