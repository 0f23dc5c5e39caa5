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
