package main

import (
	"strings"
	"testing"
)

// TestReport turns a sample of gpu-check.sh's results into the page: the
// machine line, each check, the suites, the accuracies, the throughput
// table with its ratio, and the target's verdict; a workload without a
// figure shows a dash, not a number.
func TestReport(t *testing.T) {
	page, err := report("testdata/run")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"on 2026-01-02T03:04:05Z: NVIDIA H200 (143771 MiB), driver 580.65.06, CUDA 13.0; the reference is PyTorch 2.11.0 with cuDNN 91002",
		"| pass (30 runs; largest difference from PyTorch 5.1e-06) |",
		"| node | 422 | 0 | 510 |",
		"| v1.22 | 674 | 0 | 1091 |",
		"| CUDA, mirrored on two streams of the GPU | 0.9708 |",
		"| train/cnn/256 | 200000 | 250000 | 0.80 |",
		"| train/cnn/1024 | - | - | - |",
		"within 1.5x of PyTorch with cuDNN (a ratio of at least 0.67): met (0.80).",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q:\n%s", want, page)
		}
	}
	if _, err := report("testdata/none"); err == nil || !strings.Contains(err.Error(), "gpu-check.sh") {
		t.Errorf("a folder without results: error %v", err)
	}
}
