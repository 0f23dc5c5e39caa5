package cpu_test

import (
	"flag"
	"testing"

	"github.com/gotrain/gotrain/backend/conformance"
	"github.com/gotrain/gotrain/backend/cpu"
)

var updateFloor = flag.Bool("update", false, "rewrite testdata/conformance/*.txt with the ONNX tests that pass now")

// TestConformance runs every ONNX backend test found on this machine (see
// conformance.DefaultSuites) on the CPU backend. A test whose ops and
// dtypes are all supported must pass, and every test of the floor
// (testdata/conformance/SUITE.txt) must pass; the others are counted per
// op and logged.
func TestConformance(t *testing.T) {
	conformance.Test(t, cpu.New(cpu.Options{Threads: 1}), conformance.Options{
		Floor:         "testdata/conformance",
		Update:        *updateFloor,
		UpdateCommand: "make conformance-floor",
	})
}
