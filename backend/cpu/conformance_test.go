package cpu_test

import (
	"context"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/internal/testenv"
)

// TestConformance runs every ONNX backend test found on this machine (see
// backend.DefaultSuites) on the CPU backend. A test whose ops and dtypes are
// all supported must pass; the others are counted per op and logged.
func TestConformance(t *testing.T) {
	testenv.Require(t, filepath.Join(backend.DebianTestData, "node"), "Debian's libonnx-testdata")
	suites := backend.DefaultSuites()
	b := cpu.New(cpu.Options{Threads: 1})
	for _, s := range suites {
		cases, err := backend.Cases(s)
		if err != nil {
			t.Fatal(err)
		}
		var results []backend.Result
		t.Run(s.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					r := backend.RunCase(context.Background(), b, c)
					results = append(results, r)
					switch r.Status {
					case backend.Fail:
						t.Errorf("%s/%s failed: %s", c.Suite, c.Name, r.Reason)
					case backend.Unsupported:
						t.Logf("unsupported (%s): %s", strings.Join(r.Missing, ","), r.Reason)
					}
				})
			}
		})
		logSummary(t, s.Name, results)
	}
}

func logSummary(t *testing.T, suite string, results []backend.Result) {
	var pass, fail, unsup int
	missing := map[string]int{}
	for _, r := range results {
		switch r.Status {
		case backend.Pass:
			pass++
		case backend.Fail:
			fail++
		case backend.Unsupported:
			unsup++
			for _, m := range r.Missing {
				missing[m]++
			}
		}
	}
	var keys []string
	for k := range missing {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return missing[keys[i]] > missing[keys[j]] })
	if len(keys) > 15 {
		keys = keys[:15]
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.Itoa(missing[k]))
	}
	t.Logf("suite %s: %d passed, %d failed, %d unsupported; most missing: %s", suite, pass, fail, unsup, strings.Join(parts, " "))
}
