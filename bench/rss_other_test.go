//go:build !unix

package bench

// peakRSSMB is unknown off Unix.
func peakRSSMB() float64 { return 0 }

// cpuSeconds is unknown off Unix.
func cpuSeconds() float64 { return 0 }
