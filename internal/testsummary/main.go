// Command testsummary reads `go test -json` on its standard input and
// prints what a person needs from it: each package's result line, the
// output of every test that failed (as it happens), and at the end the
// skipped tests grouped by reason, ending with one line that counts them.
// It exits 0 whatever the tests did, so a pipeline run with pipefail
// keeps go test's own exit status; it exits 1 only when it cannot read
// its input.
//
//	set -o pipefail; go test -json ./... | go run ./internal/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output events
}

type key struct{ pkg, test string }

// summary accumulates a run.
type summary struct {
	out             io.Writer
	logs            map[key][]string // output of tests still running
	passed, failed  int
	skipped         map[string][]string // reason -> "pkg TestName"
	failedPkgs      []string
	packagesTotal   int
	nonTestFailures int
}

func newSummary(out io.Writer) *summary {
	return &summary{out: out, logs: map[key][]string{}, skipped: map[string][]string{}}
}

// logPrefix is the file:line prefix testing puts before a logged line.
var logPrefix = regexp.MustCompile(`^\s*[\w.-]+\.go:\d+: `)

func (s *summary) add(e event) {
	switch e.Action {
	case "build-output":
		fmt.Fprint(s.out, e.Output)
		return
	case "build-fail":
		s.nonTestFailures++
		return
	}
	if e.Test == "" {
		s.packageEvent(e)
		return
	}
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output":
		s.logs[k] = append(s.logs[k], e.Output)
	case "pass":
		s.passed++
		delete(s.logs, k)
	case "fail":
		s.failed++
		fmt.Fprintf(s.out, "--- FAIL: %s (%s)\n", e.Test, e.Package)
		for _, l := range s.logs[k] {
			if !framing(l) {
				fmt.Fprint(s.out, l)
			}
		}
		delete(s.logs, k)
	case "skip":
		r := reason(s.logs[k])
		s.skipped[r] = append(s.skipped[r], shortPkg(e.Package)+" "+e.Test)
		delete(s.logs, k)
	}
}

func (s *summary) packageEvent(e event) {
	switch e.Action {
	case "output":
		if l := e.Output; l != "PASS\n" && l != "FAIL\n" && !framing(l) {
			fmt.Fprint(s.out, l)
		}
	case "pass", "skip":
		s.packagesTotal++
	case "fail":
		s.packagesTotal++
		s.failedPkgs = append(s.failedPkgs, e.Package)
	}
}

// framing says whether a line is go test's own bookkeeping rather than
// something a test said.
func framing(l string) bool {
	t := strings.TrimSpace(l)
	for _, p := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- SKIP", "--- FAIL"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// reason is what a skipped test said last: the message of its final log
// call (t.Skip's), without the file:line prefix, continuation lines joined.
func reason(lines []string) string {
	var msg []string
	for _, l := range lines {
		if framing(l) {
			continue
		}
		if logPrefix.MatchString(l) {
			msg = []string{logPrefix.ReplaceAllString(strings.TrimRight(l, "\n"), "")}
		} else if len(msg) > 0 {
			msg = append(msg, strings.TrimSpace(l))
		}
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}

func shortPkg(p string) string {
	return strings.TrimPrefix(p, "github.com/gotrain/gotrain/")
}

// report prints the skipped tests by reason and the closing lines.
func (s *summary) report() {
	total := 0
	reasons := make([]string, 0, len(s.skipped))
	for r, tests := range s.skipped {
		reasons = append(reasons, r)
		total += len(tests)
	}
	sort.Slice(reasons, func(i, j int) bool {
		a, b := len(s.skipped[reasons[i]]), len(s.skipped[reasons[j]])
		return a > b || (a == b && reasons[i] < reasons[j])
	})
	fmt.Fprintf(s.out, "\n%d packages, %d tests passed, %d failed, %d skipped", s.packagesTotal, s.passed, s.failed, total)
	if len(s.failedPkgs) > 0 {
		fmt.Fprintf(s.out, "; failing packages: %s", strings.Join(s.failedPkgs, ", "))
	}
	fmt.Fprintln(s.out)
	var parts []string
	for _, r := range reasons {
		tests := s.skipped[r]
		sort.Strings(tests)
		fmt.Fprintf(s.out, "skipped (%d): %s\n    %s\n", len(tests), r, strings.Join(tests, "\n    "))
		parts = append(parts, fmt.Sprintf("%d %s", len(tests), r))
	}
	line := fmt.Sprintf("%d tests skipped", total)
	if total == 1 {
		line = "1 test skipped"
	}
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, "; ")
	}
	fmt.Fprintln(s.out, line)
}

func run(in io.Reader, out io.Writer) error {
	s := newSummary(out)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not an event (go test prints build errors this way when it
			// cannot start the test binary): pass it through.
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		s.add(e)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	s.report()
	return nil
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsummary:", err)
		os.Exit(1)
	}
}
