// Package testenv is how gotrain's tests find what they need beyond the Go
// toolchain — the project's committed fixtures, Debian's packages (ONNX's
// test data, Python with PyTorch and ONNX), the ONNX Runtime library — and
// what a test does when one is missing.
//
// Outside CI a missing requirement skips the test with a reason that says
// what is missing and how to install it. With CI=true it fails the test
// instead: `make test`, which CI runs, installs every requirement, so a
// missing one there is a broken setup that must not pass as a skip. The
// skip reasons all start with "missing: ", which the summary `make test`
// prints groups by.
//
// Optional extras (Shared: data beside the project that only adds
// comparisons to what the committed fixtures already check) never fail.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/internal/onnxdata"
)

// DebianPython is Debian's interpreter, where python3-torch, python3-onnx
// and python3-numpy install their modules (an interpreter first on PATH,
// such as a pyenv shim, may lack them).
const DebianPython = "/usr/bin/python3"

// CI reports whether the tests run under CI (CI=true or CI=1), where a
// missing requirement fails.
func CI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1" || v == "yes"
}

// Missing skips t, or fails it under CI, saying what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := "missing: " + fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("%s (CI=true: every requirement must be installed; run make deps)", msg)
	}
	t.Skip(msg)
}

// Require returns path when it exists, else calls Missing naming it and
// what provides it (e.g. "Debian's libonnx-testdata", "scripts/make_goldens.py").
func Require(t testing.TB, path, providedBy string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s (from %s)", path, providedBy)
	}
	return path
}

// DebianONNX returns the folder of one of ONNX 1.12's backend test suites
// ("node", "pytorch-converted", "pytorch-operator", "simple") where
// Debian's libonnx-testdata installs it, else calls Missing.
func DebianONNX(t testing.TB, suite string) string {
	t.Helper()
	return Require(t, filepath.Join(onnxdata.Debian, suite), "Debian's libonnx-testdata")
}

// Python returns Debian's interpreter after checking that it imports every
// module named, else calls Missing.
func Python(t testing.TB, modules ...string) string {
	t.Helper()
	if _, err := os.Stat(DebianPython); err != nil {
		Missing(t, "%s (Debian's python3; make deps installs it)", DebianPython)
	}
	if len(modules) > 0 {
		code := "import " + strings.Join(modules, ", ")
		if out, err := exec.Command(DebianPython, "-c", code).CombinedOutput(); err != nil {
			Missing(t, "python modules %s for %s (Debian's python3-torch, python3-onnx, python3-numpy; make deps installs them): %v: %s",
				strings.Join(modules, ", "), DebianPython, err, lastLine(out))
		}
	}
	return DebianPython
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// Root returns the module root: the nearest folder above the working
// directory (a test's package folder) that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Fixture returns the committed fixture at rel (slash-separated, relative
// to the module root), failing the test when it is absent: fixtures are
// part of the project, so a missing one is a broken checkout, never a
// reason to skip.
func Fixture(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Root(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s is missing (committed under the module root; regenerate with scripts/make_goldens.py): %v", rel, err)
	}
	return p
}

// Shared returns the folder shared/<rel> beside the project (looked up
// from the module root upwards) and whether it is there. Shared data is an
// optional extra: tests compare against it when present and say so when
// not, without failing under CI.
//
// GOTRAIN_SHARED_DIR names that folder instead, where the project's copy
// has nothing beside it (a GPU machine given the binaries and the data).
func Shared(t testing.TB, rel string) (string, bool) {
	t.Helper()
	if env := os.Getenv("GOTRAIN_SHARED_DIR"); env != "" {
		p := filepath.Join(env, filepath.FromSlash(rel))
		_, err := os.Stat(p)
		return p, err == nil
	}
	dir := filepath.Dir(Root(t))
	for {
		p := filepath.Join(dir, "shared", filepath.FromSlash(rel))
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// SeedGoldens returns the folders of the PyTorch golden sets of a seed
// model ("cnn" or "mlp"): the committed one (testdata/golden/<model>) and,
// for the CNN, the full-size set of the shared data (shared/golden) when it
// is beside the project. Both have one layout (testdata/golden/README.md).
func SeedGoldens(t testing.TB, model string) []string {
	t.Helper()
	dirs := []string{Fixture(t, "testdata/golden/"+model)}
	if model == "cnn" {
		if d, ok := Shared(t, "golden"); ok {
			dirs = append(dirs, d)
		} else {
			t.Log("shared/golden is not beside the project: the committed golden set only")
		}
	}
	return dirs
}
