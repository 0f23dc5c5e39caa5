//go:build unix

package bench

import (
	"runtime"
	"syscall"
)

// peakRSSMB is the process's peak resident set in MB (ru_maxrss: KB on
// Linux, bytes on Darwin).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20)
	}
	return float64(ru.Maxrss) / (1 << 10)
}

// cpuSeconds is the CPU time the process has used so far (user and
// system, all threads): on a shared machine it moves far less with the
// others' load than wall time does.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
