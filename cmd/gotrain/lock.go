package main

import (
	"fmt"
	"io"

	"github.com/gotrain/gotrain/checkpoint"
)

// lockOut takes the output folder's lock for the run (see checkpoint.LockDir),
// so that two runs never write into one folder at once, and says so when it
// takes over a lock file that a killed run left behind.
func lockOut(dir string, stdout io.Writer) (*checkpoint.DirLock, error) {
	l, err := checkpoint.LockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--out: %w", err)
	}
	if p := l.Previous; p != nil {
		fmt.Fprintf(stdout, "note: %s was left by %s, which has ended; taking it over\n", checkpoint.LockFile, p)
	}
	return l, nil
}
