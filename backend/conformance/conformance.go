// Package conformance runs ONNX's backend test suites against any
// registered backend, as net/http/httptest serves tests of HTTP code: it
// is test support, kept out of the production backend package.
//
// A test is a folder with model.onnx and test_data_set_N/{input,output}_K.pb;
// every data set must reproduce its outputs within ONNX's own tolerances
// (rtol 1e-3, atol 1e-7, shapes and dtypes exact). A test the backend cannot
// run (an op or dtype it lacks) is counted as unsupported, never silently
// dropped.
//
// A backend's own test calls Test, which also holds the backend to its
// floor: committed lists of the tests that pass (floor.go). The gotrain
// conformance command runs the same cases on a backend named on its
// command line (Open).
package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/plan"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/graph/onnxpb"
	"github.com/gotrain/gotrain/internal/onnxdata"
	"github.com/gotrain/gotrain/tensor"
)

// Tolerances of ONNX's test runner.
const (
	RTol = 1e-3
	ATol = 1e-7
)

// Suite is a folder of ONNX backend tests.
type Suite struct {
	Name string
	Dir  string
}

// EnvTestData names an environment variable with extra suite folders
// (separated by the OS path list separator).
const EnvTestData = "GOTRAIN_ONNX_TESTS"

// debianSuites are the suites of Debian's libonnx-testdata; v122 is the
// name of ONNX 1.22's node tests, kept beside the project.
var debianSuites = []string{"node", "pytorch-converted", "pytorch-operator", "simple"}

const (
	v122    = "v1.22"
	v122Dir = "shared/onnx-node-tests/v1.22.0"
)

// KnownSuites names the suites DefaultSuites looks for.
func KnownSuites() []string { return append(append([]string{}, debianSuites...), v122) }

// FindSuite locates a known suite, or says where it looked and how to get
// it.
func FindSuite(name string) (Suite, error) {
	for _, s := range debianSuites {
		if s == name {
			dir := filepath.Join(onnxdata.Debian, s)
			if !isDir(dir) {
				return Suite{}, fmt.Errorf("suite %s: no folder %s (install Debian's libonnx-testdata: make deps)", name, dir)
			}
			return Suite{Name: s, Dir: dir}, nil
		}
	}
	if name == v122 {
		dir := findUp(filepath.FromSlash(v122Dir))
		if dir == "" {
			wd, _ := os.Getwd()
			return Suite{}, fmt.Errorf("suite %s: no %s in %s or any folder above it (the suite lives in ../shared beside the project)", name, v122Dir, wd)
		}
		return Suite{Name: name, Dir: dir}, nil
	}
	return Suite{}, fmt.Errorf("suite %q is not one of %v", name, KnownSuites())
}

// DefaultSuites returns the suites present on this machine: Debian's node,
// pytorch-converted, pytorch-operator and simple sets; the v1.22.0 node
// tests beside the project (shared/onnx-node-tests/v1.22.0, looked up from
// the working directory upwards); and folders named in GOTRAIN_ONNX_TESTS.
func DefaultSuites() []Suite {
	var out []Suite
	for _, name := range KnownSuites() {
		if s, err := FindSuite(name); err == nil {
			out = append(out, s)
		}
	}
	for _, dir := range filepath.SplitList(os.Getenv(EnvTestData)) {
		if dir != "" && isDir(dir) {
			out = append(out, Suite{Name: filepath.Base(dir), Dir: dir})
		}
	}
	return out
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if p := filepath.Join(dir, rel); isDir(p) {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Case is one test folder.
type Case struct {
	Suite string
	Name  string
	Dir   string
}

// Cases lists the tests of a suite, sorted by name. A folder given directly
// (holding model.onnx) is one case.
func Cases(s Suite) ([]Case, error) {
	if _, err := os.Stat(filepath.Join(s.Dir, "model.onnx")); err == nil {
		return []Case{{Suite: s.Name, Name: filepath.Base(s.Dir), Dir: s.Dir}}, nil
	}
	entries, err := os.ReadDir(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("conformance suite %s: %w", s.Name, err)
	}
	var out []Case
	for _, e := range entries {
		dir := filepath.Join(s.Dir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "model.onnx")); err == nil {
			out = append(out, Case{Suite: s.Name, Name: e.Name(), Dir: dir})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Status is a test's outcome.
type Status int

// Outcomes.
const (
	Pass Status = iota
	Fail
	Unsupported
)

func (s Status) String() string {
	return [...]string{"pass", "fail", "unsupported"}[s]
}

// Result is one test's outcome.
type Result struct {
	Case
	Status Status
	Ops    []string // op types of the model (domain-qualified outside ai.onnx)
	Reason string   // why it failed or is unsupported
	// Missing lists what made it unsupported: op types, or "dtype:X".
	Missing []string
}

// knownBadData lists tests whose data contradicts the ONNX specification
// that a later suite checks, so no backend can pass both. They are reported
// as unsupported with the reason, never counted as passed.
var knownBadData = map[string]string{
	// ONNX 1.12 generated these by truncating float32 to bfloat16; ONNX 1.14
	// made Cast round to nearest even, which the v1.22 tests check.
	"node/test_cast_FLOAT_to_BFLOAT16":              "expected output truncates to bfloat16; ONNX >= 1.14 rounds to nearest even (checked by v1.22)",
	"node/test_castlike_FLOAT_to_BFLOAT16":          "expected output truncates to bfloat16; ONNX >= 1.14 rounds to nearest even (checked by v1.22)",
	"node/test_castlike_FLOAT_to_BFLOAT16_expanded": "expected output truncates to bfloat16; ONNX >= 1.14 rounds to nearest even (checked by v1.22)",
	// The node has no epsilon attribute (default 1e-6) but the expected
	// outputs were computed with 1e-2; v1.22's copy sets epsilon and passes.
	"node/test_adam_multiple": "expected outputs use epsilon 1e-2, the node leaves the default 1e-6 (v1.22's copy sets it)",
	// The 'like' input's data is [1] while the model declares [3,4].
	"node/test_castlike_BFLOAT16_to_FLOAT":          "input 'like' data has shape [1], the model declares [3,4]",
	"node/test_castlike_BFLOAT16_to_FLOAT_expanded": "input 'like' data has shape [1], the model declares [3,4]",
}

// RunCase loads, compiles and runs one test on the backend's first device.
func RunCase(ctx context.Context, b backend.Backend, c Case) Result {
	r := Result{Case: c}
	if why, bad := knownBadData[c.Suite+"/"+c.Name]; bad {
		r.Status, r.Reason, r.Missing = Unsupported, "known bad test data: "+why, []string{"bad-test-data"}
		if m, err := graph.Load(filepath.Join(c.Dir, "model.onnx")); err == nil {
			r.Ops = modelOps(m)
		}
		return r
	}
	m, err := graph.Load(filepath.Join(c.Dir, "model.onnx"))
	if err != nil {
		return unsupportedOrFail(r, err)
	}
	r.Ops = modelOps(m)
	sets, _ := filepath.Glob(filepath.Join(c.Dir, "test_data_set_*"))
	sort.Strings(sets)
	if len(sets) == 0 {
		r.Status, r.Reason = Fail, "no test_data_set_* folder"
		return r
	}
	devs := b.Devices()
	if len(devs) == 0 {
		r.Status, r.Reason = Fail, fmt.Sprintf("backend %s has no device", b.Name())
		return r
	}
	dev := devs[0]
	var exe backend.Executable
	for _, set := range sets {
		inputs, err := readPBs(set, "input")
		if err != nil {
			return unsupportedOrFail(r, err)
		}
		want, err := readPBs(set, "output")
		if err != nil {
			return unsupportedOrFail(r, err)
		}
		g := m.Graph
		if len(inputs) > len(g.Inputs) {
			r.Status, r.Reason = Fail, fmt.Sprintf("%d inputs in %s but the graph has %d", len(inputs), set, len(g.Inputs))
			return r
		}
		feeds := map[string]*tensor.Tensor{}
		shapes := map[string][]int{}
		for i, t := range inputs {
			t = as16(t, g.Inputs[i].DType)
			inputs[i] = t
			feeds[g.Inputs[i].Name] = t
			shapes[g.Inputs[i].Name] = t.Shape()
		}
		if exe == nil {
			exe, err = b.Compile(m, dev, backend.CompileOptions{InputShapes: shapes})
			if err != nil {
				return unsupportedOrFail(r, err)
			}
		}
		got, err := backend.RunHost(ctx, b, exe, dev, feeds)
		if err != nil {
			return unsupportedOrFail(r, err)
		}
		for i, w := range want {
			if i >= len(g.Outputs) {
				break
			}
			name := g.Outputs[i].Name
			if err := Compare(as16(w, g.Outputs[i].DType), got[name]); err != nil {
				r.Status, r.Reason = Fail, fmt.Sprintf("%s: output %q: %v", filepath.Base(set), name, err)
				return r
			}
		}
	}
	r.Status = Pass
	return r
}

func unsupportedOrFail(r Result, err error) Result {
	var uo *graph.UnsupportedOpError
	var ut *graph.UnsupportedTypeError
	var ud *tensor.UnsupportedDTypeError
	switch {
	case errors.As(err, &uo):
		r.Status = Unsupported
		if uo.Reason != "" && !plan.IsNoKernel(uo) {
			r.Missing = []string{uo.Node.OpType + ":" + uo.Reason}
		} else {
			r.Missing = []string{uo.Node.OpType}
		}
	case errors.As(err, &ut):
		r.Status = Unsupported
		r.Missing = []string{"type:" + ut.Kind}
	case errors.As(err, &ud):
		r.Status = Unsupported
		r.Missing = []string{"dtype:" + ud.DType}
	default:
		r.Status = Fail
	}
	r.Reason = err.Error()
	return r
}

func modelOps(m *graph.Model) []string {
	seen := map[string]bool{}
	var ops []string
	for _, n := range m.Graph.Nodes {
		op := n.OpType
		if d := graph.NormDomain(n.Domain); d != "" {
			op = d + "." + op
		}
		if !seen[op] {
			seen[op] = true
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	return ops
}

// as16 reinterprets 16-bit data as the float16 or bfloat16 the model
// declares: ONNX 1.12's test data stores bfloat16 tensors as UINT16.
func as16(t *tensor.Tensor, declared tensor.DType) *tensor.Tensor {
	if t.DType() != tensor.Uint16 || (declared != tensor.BFloat16 && declared != tensor.Float16) {
		return t
	}
	r, err := tensor.FromRaw16(declared, t.Raw16(), t.Shape()...)
	if err != nil {
		return t
	}
	return r
}

// readPBs reads prefix_0.pb, prefix_1.pb, ... from a data-set folder.
func readPBs(dir, prefix string) ([]*tensor.Tensor, error) {
	var out []*tensor.Tensor
	for i := 0; ; i++ {
		path := filepath.Join(dir, fmt.Sprintf("%s_%d.pb", prefix, i))
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var tp onnxpb.TensorProto
		if err := proto.Unmarshal(data, &tp); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(tp.GetDims()) == 0 && tp.GetDataType() == 0 {
			// Not a TensorProto: a sequence or optional value.
			return nil, &graph.UnsupportedTypeError{Value: path, Kind: "sequence or optional"}
		}
		t, err := tensor.FromProto(&tp, dir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, t)
	}
}

// Compare checks got against want as ONNX's runner does: same dtype and
// shape, and |got-want| <= atol + rtol*|want| elementwise, NaN matching NaN.
func Compare(want, got *tensor.Tensor) error {
	if got == nil {
		return fmt.Errorf("missing")
	}
	if want.DType() != got.DType() {
		return fmt.Errorf("dtype %v, expected %v", got.DType(), want.DType())
	}
	if !tensor.SameShape(want.Shape(), got.Shape()) {
		return fmt.Errorf("shape %v, expected %v", got.Shape(), want.Shape())
	}
	if want.DType() == tensor.String {
		w, g := want.Data().([]string), got.Data().([]string)
		for i := range w {
			if w[i] != g[i] {
				return fmt.Errorf("element %d is %q, expected %q", i, g[i], w[i])
			}
		}
		return nil
	}
	n := want.Len()
	worst, at := 0.0, -1
	for i := 0; i < n; i++ {
		w, g := want.AsFloat64(i), got.AsFloat64(i)
		if math.IsNaN(w) || math.IsNaN(g) {
			if math.IsNaN(w) != math.IsNaN(g) {
				return fmt.Errorf("element %d is %v, expected %v", i, g, w)
			}
			continue
		}
		if math.IsInf(w, 0) || math.IsInf(g, 0) {
			if w != g {
				return fmt.Errorf("element %d is %v, expected %v", i, g, w)
			}
			continue
		}
		d := math.Abs(g - w)
		if d > ATol+RTol*math.Abs(w) {
			if excess := d - RTol*math.Abs(w); excess > worst || at < 0 {
				worst, at = excess, i
			}
		}
	}
	if at >= 0 {
		return fmt.Errorf("element %d is %v, expected %v (rtol %g, atol %g)", at, got.AsFloat64(at), want.AsFloat64(at), RTol, ATol)
	}
	return nil
}

// OpCount is the tally of one op over a conformance run.
type OpCount struct {
	Op                      string
	Pass, Fail, Unsupported int
}

// Tally counts results per op: each test counts once for every op it uses.
func Tally(results []Result) []OpCount {
	m := map[string]*OpCount{}
	for _, r := range results {
		for _, op := range r.Ops {
			c := m[op]
			if c == nil {
				c = &OpCount{Op: op}
				m[op] = c
			}
			switch r.Status {
			case Pass:
				c.Pass++
			case Fail:
				c.Fail++
			case Unsupported:
				c.Unsupported++
			}
		}
	}
	out := make([]OpCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Op < out[j].Op })
	return out
}
