package bench

import (
	"fmt"
	"os"
	"testing"

	"github.com/gotrain/gotrain/backend/cpu"
)

// TestMain prints the kernels in use (scripts/bench.sh's report shows the
// line) and, when GOTRAIN_PROFILE_OPS is set, the CPU backend's per-op
// times after the benchmarks.
func TestMain(m *testing.M) {
	fmt.Println("kernels:", cpu.KernelInfo())
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
