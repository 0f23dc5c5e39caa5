package bench

import (
	"os"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
)

// TestMain prints the CPU backend's per-op times after the benchmarks when
// GOTRAIN_PROFILE_OPS is set.
func TestMain(m *testing.M) {
	prof := os.Getenv("GOTRAIN_PROFILE_OPS") != ""
	cpu.EnableProfile(prof)
	code := m.Run()
	if prof {
		for _, t := range cpu.ProfileTable() {
			os.Stderr.WriteString(t.Op + " " + t.Total.String() + "\n")
		}
	}
	os.Exit(code)
}
