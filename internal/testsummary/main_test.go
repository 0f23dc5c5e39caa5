package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"github.com/gotrain/gotrain/a"}`,
		`{"Action":"run","Package":"github.com/gotrain/gotrain/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestOK","Output":"    a_test.go:9: quiet when passing\n"}`,
		`{"Action":"pass","Package":"github.com/gotrain/gotrain/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestBad","Output":"=== RUN   TestBad\n"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestBad","Output":"    a_test.go:12: got 2, want 3\n"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}`,
		`{"Action":"fail","Package":"github.com/gotrain/gotrain/a","Test":"TestBad"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestTorch","Output":"    a_test.go:20: missing: python modules torch\n"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestTorch","Output":"        (make deps)\n"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestTorch","Output":"--- SKIP: TestTorch (0.00s)\n"}`,
		`{"Action":"skip","Package":"github.com/gotrain/gotrain/a","Test":"TestTorch"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Test":"TestLong/sub","Output":"    a_test.go:30: trains for a few seconds\n"}`,
		`{"Action":"skip","Package":"github.com/gotrain/gotrain/a","Test":"TestLong/sub"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Output":"FAIL\n"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/a","Output":"FAIL\tgithub.com/gotrain/gotrain/a\t0.01s\n"}`,
		`{"Action":"fail","Package":"github.com/gotrain/gotrain/a"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/b","Test":"TestShort","Output":"    b_test.go:5: trains for a few seconds\n"}`,
		`{"Action":"skip","Package":"github.com/gotrain/gotrain/b","Test":"TestShort"}`,
		`{"Action":"output","Package":"github.com/gotrain/gotrain/b","Output":"ok  \tgithub.com/gotrain/gotrain/b\t0.02s\n"}`,
		`{"Action":"pass","Package":"github.com/gotrain/gotrain/b"}`,
		`not json: a build error line`,
	}, "\n") + "\n"
	var out bytes.Buffer
	if err := run(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL: TestBad (github.com/gotrain/gotrain/a)\n    a_test.go:12: got 2, want 3\n",
		"FAIL\tgithub.com/gotrain/gotrain/a\t0.01s\n",
		"ok  \tgithub.com/gotrain/gotrain/b\t0.02s\n",
		"not json: a build error line\n",
		"2 packages, 1 tests passed, 1 failed, 3 skipped; failing packages: github.com/gotrain/gotrain/a\n",
		"skipped (2): trains for a few seconds\n    a TestLong/sub\n    b TestShort\n",
		"skipped (1): missing: python modules torch (make deps)\n    a TestTorch\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "quiet when passing") || strings.Contains(got, "=== RUN") {
		t.Errorf("a passing test's output or go test's framing was printed:\n%s", got)
	}
	last := got[strings.LastIndex(strings.TrimSuffix(got, "\n"), "\n")+1:]
	if want := "3 tests skipped: 2 trains for a few seconds; 1 missing: python modules torch (make deps)\n"; last != want {
		t.Errorf("last line %q, want %q", last, want)
	}
	for _, c := range []struct{ in, want string }{
		{"", "0 tests skipped\n"},
		{`{"Action":"output","Package":"p","Test":"T","Output":"    p_test.go:1: why\n"}` + "\n" + `{"Action":"skip","Package":"p","Test":"T"}`, "1 test skipped: 1 why\n"},
	} {
		out.Reset()
		if err := run(strings.NewReader(c.in), &out); err != nil || !strings.HasSuffix(out.String(), "\n"+c.want) {
			t.Errorf("input %q: %v, output %q; want it to end with %q", c.in, err, out.String(), c.want)
		}
	}
}
