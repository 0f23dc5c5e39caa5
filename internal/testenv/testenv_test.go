package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissing runs a test that calls Missing in a child process: with CI
// unset it must skip, with CI=true it must fail, both saying what is
// missing.
func TestMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Require(t, filepath.Join(t.TempDir(), "absent"), "nowhere")
		t.Log("Require returned for a missing file")
		return
	}
	for _, c := range []struct {
		ci       string
		fails    bool
		verdict  string
		mentions string
	}{
		{"", false, "--- SKIP: TestMissing", "missing: "},
		{"false", false, "--- SKIP: TestMissing", "missing: "},
		{"true", true, "--- FAIL: TestMissing", "CI=true"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails || !strings.Contains(string(out), c.verdict) || !strings.Contains(string(out), c.mentions) ||
			!strings.Contains(string(out), "(from nowhere)") || strings.Contains(string(out), "Require returned") {
			t.Errorf("CI=%q: %v\n%s", c.ci, err, out)
		}
	}
}

func TestRootFixtureShared(t *testing.T) {
	root := Root(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("Root %s holds no go.mod", root)
	}
	if p := Fixture(t, "testdata/golden/cnn/cnn.onnx"); !strings.HasPrefix(p, root) {
		t.Errorf("Fixture outside the module: %s", p)
	}
	if _, ok := Shared(t, "no/such/shared/folder"); ok {
		t.Error("Shared found a folder that does not exist")
	}
}
