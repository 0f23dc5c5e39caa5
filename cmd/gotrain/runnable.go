package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// inspect's verdict: whether the CPU backend can run the model. It fails
// (so the command exits non-zero) naming what it cannot run: an op without
// a CPU kernel, or a kernel that refuses the op's dtype or attributes when
// the model is compiled. Compiling needs concrete input shapes; a batch
// dim that is symbolic is taken as 1, and when other dims are symbolic too
// a shape error at those made-up sizes proves nothing, so it is reported
// without failing.

// reportRunnable prints the verdict and returns an error when gotrain
// cannot run the model. missing lists the op types without a kernel.
func reportRunnable(w io.Writer, m *graph.Model, missing []string, skip bool) error {
	if skip {
		fmt.Fprintln(w, "runnability not checked (--no-check)")
		return nil
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		missing = slices.Compact(missing)
		fmt.Fprintf(w, "ops gotrain cannot run yet: %s\n", strings.Join(missing, ", "))
		return fmt.Errorf("gotrain cannot run this model: no CPU kernel for %s", strings.Join(missing, ", "))
	}
	if err := graph.Validate(m); err != nil {
		fmt.Fprintf(w, "invalid: %v\n", err)
		return fmt.Errorf("the model is invalid: %w", err)
	}
	guessed, err := compileCheck(m)
	switch {
	case err == nil:
		fmt.Fprintln(w, "gotrain can run every op of this model")
		return nil
	case unsupported(err):
		fmt.Fprintf(w, "unsupported: %v\n", err)
		return fmt.Errorf("gotrain cannot run this model: %w", err)
	case guessed:
		fmt.Fprintf(w, "every op has a CPU kernel; compiling with the symbolic dims taken as 1 failed, which proves nothing at other sizes: %v\n", err)
		return nil
	}
	fmt.Fprintf(w, "cannot compile: %v\n", err)
	return fmt.Errorf("gotrain cannot run this model: %w", err)
}

// compileCheck compiles m for the CPU backend at concrete input shapes (a
// symbolic dim taken as 1). guessed says whether a dim other than the
// batch dim had to be made up.
func compileCheck(m *graph.Model) (guessed bool, err error) {
	shapes := map[string][]int{}
	for _, in := range m.Graph.Inputs {
		if !in.RankKnown {
			return true, fmt.Errorf("input %q has no known rank", in.Name)
		}
		s := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			s[i] = int(d.Size)
			if !d.Known() {
				s[i] = 1
				guessed = guessed || i > 0
			}
		}
		shapes[in.Name] = s
	}
	b := cpu.New(cpu.Options{Devices: 1, Threads: 1})
	_, err = b.Compile(m, b.Devices()[0], backend.CompileOptions{InputShapes: shapes})
	return guessed, err
}

// unsupported says whether err means the backend lacks an op, a dtype or
// a value type (rather than that the model is wrong).
func unsupported(err error) bool {
	var uo *graph.UnsupportedOpError
	var ut *graph.UnsupportedTypeError
	var ud *tensor.UnsupportedDTypeError
	return errors.As(err, &uo) || errors.As(err, &ut) || errors.As(err, &ud)
}
