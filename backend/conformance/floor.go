package conformance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/internal/testenv"
)

// A floor is the list of a suite's tests that pass on a backend, committed
// beside the backend's tests (FLOOR/SUITE.txt, one test name a line, #
// comments). The backend's conformance test fails when a test of the floor
// fails or turns unsupported, and says how to raise the floor when more
// pass. A suite the floor lists that this machine lacks is skipped, with
// the reason, except under CI (CI=true), where it is a failure: CI has
// every suite (make deps installs Debian's; v1.22 sits in ../shared).

// Options configure Test.
type Options struct {
	// Floor is the folder of the backend's floor files; "" for none.
	Floor string
	// Update rewrites the floor files of the suites present with the
	// tests that pass now.
	Update bool
	// UpdateCommand is the command that updates the floor, named when
	// more tests pass than the floor lists and written into its files.
	UpdateCommand string
}

// Test runs every suite found on this machine (see DefaultSuites) on the
// backend's first device, one subtest per suite and test: a test must pass
// or be unsupported, and every test of the floor must pass. The per-suite
// totals and the ops most missing are logged.
func Test(t *testing.T, b backend.Backend, o Options) {
	floors := map[string]map[string]bool{}
	if o.Floor != "" {
		var err error
		if floors, err = ReadFloors(o.Floor); err != nil {
			t.Fatal(err)
		}
	} else if o.Update {
		t.Fatal("conformance: Update needs a Floor folder")
	}
	suites := DefaultSuites()
	present := map[string]bool{}
	for _, s := range suites {
		present[s.Name] = true
	}
	for _, name := range slices.Sorted(maps.Keys(floors)) {
		if present[name] {
			continue
		}
		_, why := FindSuite(name)
		n := len(floors[name])
		t.Run(name, func(t *testing.T) {
			if testenv.CI() {
				t.Errorf("the floor lists %d tests of suite %s, which is missing: %v", n, name, why)
			} else {
				t.Skipf("%v; the floor's %d tests of it are not checked (under CI=true this fails)", why, n)
			}
		})
	}
	if len(suites) == 0 {
		t.Skip("no ONNX test data here: install libonnx-testdata (make deps)")
	}
	for _, s := range suites {
		cases, err := Cases(s)
		if err != nil {
			t.Error(err)
			continue
		}
		floor := floors[s.Name]
		t.Run(s.Name, func(t *testing.T) {
			results := make([]Result, 0, len(cases))
			for _, c := range cases {
				t.Run(c.Name, func(t *testing.T) {
					r := RunCase(context.Background(), b, c)
					results = append(results, r)
					switch r.Status {
					case Fail:
						inFloor := ""
						if floor[c.Name] {
							inFloor = " (a test of the floor)"
						}
						t.Errorf("%s/%s failed%s: %s", c.Suite, c.Name, inFloor, r.Reason)
					case Unsupported:
						if floor[c.Name] {
							t.Errorf("%s/%s is in the floor but is now unsupported (%s): %s", c.Suite, c.Name, strings.Join(r.Missing, ","), r.Reason)
						} else {
							t.Logf("unsupported (%s): %s", strings.Join(r.Missing, ","), r.Reason)
						}
					}
				})
			}
			t.Log(Summary(s.Name, results))
			if o.Floor == "" || !isKnown(s.Name) {
				return
			}
			gone, more := CheckFloor(floor, results)
			for _, name := range gone {
				t.Errorf("%s/%s is in the floor (%s) but the suite has no such test", s.Name, name, floorPath(o.Floor, s.Name))
			}
			switch {
			case o.Update:
				if err := WriteFloor(floorPath(o.Floor, s.Name), s.Name, b.Name(), o.UpdateCommand, results); err != nil {
					t.Error(err)
				}
			case floor == nil:
				t.Logf("suite %s has no floor %s: %s writes it", s.Name, floorPath(o.Floor, s.Name), o.UpdateCommand)
			case len(more) > 0:
				t.Logf("%d tests of suite %s pass that its floor does not list (%s): %s raises the floor", len(more), s.Name, firstFew(more, 5), o.UpdateCommand)
			}
		})
	}
}

func isKnown(suite string) bool {
	for _, s := range KnownSuites() {
		if s == suite {
			return true
		}
	}
	return false
}

func floorPath(dir, suite string) string { return filepath.Join(dir, suite+".txt") }

// CheckFloor compares a suite's results with its floor: gone lists the
// floor's tests the suite no longer has, more the passing tests the floor
// lacks. (A floor test that fails or is unsupported is reported as its
// case runs.)
func CheckFloor(floor map[string]bool, results []Result) (gone, more []string) {
	seen := make(map[string]bool, len(results))
	for _, r := range results {
		seen[r.Name] = true
		if r.Status == Pass && !floor[r.Name] {
			more = append(more, r.Name)
		}
	}
	for name := range floor {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	sort.Strings(gone)
	return gone, more
}

// ReadFloors reads every SUITE.txt of a floor folder (suite -> test names).
func ReadFloors(dir string) (map[string]map[string]bool, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		if _, err := os.Stat(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	out := map[string]map[string]bool{}
	for _, p := range paths {
		suite := strings.TrimSuffix(filepath.Base(p), ".txt")
		if !isKnown(suite) {
			return nil, fmt.Errorf("conformance floor %s: %q is not a known suite (%v)", p, suite, KnownSuites())
		}
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		names, err := readFloor(f, p)
		f.Close()
		if err != nil {
			return nil, err
		}
		out[suite] = names
	}
	return out, nil
}

func readFloor(r io.Reader, path string) (map[string]bool, error) {
	names := map[string]bool{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if strings.ContainsAny(s, " \t/\\") {
			return nil, fmt.Errorf("%s:%d: %q is not a test name (one folder name a line expected)", path, line, s)
		}
		if names[s] {
			return nil, fmt.Errorf("%s:%d: test %s is listed twice", path, line, s)
		}
		names[s] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// WriteFloor writes (atomically) the floor of a suite: the tests that
// passed, sorted.
func WriteFloor(path, suite, backendName, updateCommand string, results []Result) error {
	var pass []string
	for _, r := range results {
		if r.Status == Pass {
			pass = append(pass, r.Name)
		}
	}
	sort.Strings(pass)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		fmt.Fprintf(bw, "# The %d tests of ONNX's %s suite that pass on the %s backend: its\n", len(pass), suite, backendName)
		fmt.Fprintf(bw, "# conformance test fails when one of them fails or turns unsupported.\n")
		if updateCommand != "" {
			fmt.Fprintf(bw, "# Regenerated by: %s\n", updateCommand)
		}
		for _, name := range pass {
			fmt.Fprintln(bw, name)
		}
		return bw.Flush()
	})
}

// Summary is a line of a suite's totals and the ops most missing.
func Summary(suite string, results []Result) string {
	var pass, fail, unsup int
	missing := map[string]int{}
	for _, r := range results {
		switch r.Status {
		case Pass:
			pass++
		case Fail:
			fail++
		case Unsupported:
			unsup++
			for _, m := range r.Missing {
				missing[m]++
			}
		}
	}
	keys := slices.Sorted(maps.Keys(missing))
	sort.SliceStable(keys, func(i, j int) bool { return missing[keys[i]] > missing[keys[j]] })
	if len(keys) > 15 {
		keys = keys[:15]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Itoa(missing[k])
	}
	return fmt.Sprintf("suite %s: %d passed, %d failed, %d unsupported; most missing: %s", suite, pass, fail, unsup, strings.Join(parts, " "))
}

func firstFew(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + ", ..."
}
