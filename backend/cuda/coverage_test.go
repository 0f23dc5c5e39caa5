package cuda_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// TestCoverage builds every graph the trainer compiles for the model zoo and
// the golden models (training, evaluation, every optimizer's update with
// clipping, the mirrored strategy's gradient reduction) without a device,
// and prepares every node with the CUDA registry at concrete shapes. A node
// whose value inference already knows, or whose inputs are all constants,
// is folded on the host when planned and needs no kernel. Any other node
// must have a CUDA kernel whose factory accepts it.

// recorder is a backend that notes every graph compiled on it and lets the
// CPU backend compile it (so the strategy is built exactly as in training).
type recorder struct {
	backend.Backend
	graphs []recorded
}

type recorded struct {
	what string
	m    *graph.Model
}

func (r *recorder) Compile(m *graph.Model, d backend.Device, o backend.CompileOptions) (backend.Executable, error) {
	r.graphs = append(r.graphs, recorded{m.Graph.Name, m})
	return r.Backend.Compile(m, d, o)
}

func goldenModels(t *testing.T) map[string]graph.Loss {
	out := map[string]graph.Loss{}
	for _, d := range []string{"../../../shared/golden", "../../shared/golden"} {
		if _, err := os.Stat(filepath.Join(d, "cnn.onnx")); err == nil {
			out[filepath.Join(d, "cnn.onnx")] = graph.CrossEntropy
			out[filepath.Join(d, "mlp.onnx")] = graph.CrossEntropy
			break
		}
	}
	if len(out) == 0 {
		t.Log("shared/golden not found: its cnn.onnx and mlp.onnx are not covered in this run")
	}
	for name, loss := range map[string]graph.Loss{"resnet_bn": graph.CrossEntropy, "dropout_matmul": graph.BCEWithLogits, "layernorm_mlp": graph.CrossEntropy} {
		out[filepath.Join("../../train/testdata/goldens", name, "model.onnx")] = loss
	}
	return out
}

func TestCoverage(t *testing.T) {
	rec := &recorder{Backend: cpu.New(cpu.Options{Devices: 2, Threads: 2})}
	build := func(name string, m *graph.Model, o graph.TrainingOptions, opt string) {
		t.Helper()
		tr, err := graph.TrainingGraph(m, o)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		up, err := optim.BuildUpdate(optim.Config{Name: opt, LR: 0.1, ClipNorm: 1, WeightDecay: 1e-4}, train.ParamsOf(m, tr))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		init := map[string]*tensor.Tensor{}
		for _, n := range m.Graph.InitializerNames() {
			init[n] = m.Graph.Initializer(n)
		}
		if _, err := strategy.NewMirrored(strategy.Config{Backend: rec, Training: tr, Update: up, Init: init, Replicas: 2}); err != nil {
			t.Fatalf("%s with %s: %v", name, opt, err)
		}
		rec.graphs = append(rec.graphs, recorded{name + " (inference)", m})
	}
	opts := []string{"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"}
	for i, name := range models.Names() {
		for _, softmax := range []bool{false, true} {
			m, err := models.Build(name, models.Options{Input: []int{3, 32, 32}, Classes: 10, Dropout: 0.3, Softmax: softmax})
			if err != nil {
				t.Fatal(err)
			}
			build(name, m, graph.TrainingOptions{Loss: graph.CrossEntropy, LabelSmoothing: 0.1}, opts[i%len(opts)])
		}
	}
	for _, opt := range opts {
		m, err := models.Build("mlp", models.Options{Input: []int{1, 8, 8}, Classes: 10})
		if err != nil {
			t.Fatal(err)
		}
		build("mlp", m, graph.TrainingOptions{Loss: graph.CrossEntropy}, opt)
	}
	for _, loss := range []graph.Loss{graph.CrossEntropyOneHot, graph.BCEWithLogits, graph.MSE, graph.L1} {
		m, err := models.Build("mlp", models.Options{Input: []int{1, 8, 8}, Classes: 10})
		if err != nil {
			t.Fatal(err)
		}
		red := ""
		if loss == graph.MSE || loss == graph.L1 {
			red = "sum" // a mean needs the batch size in the graph
		}
		build("mlp/"+string(loss), m, graph.TrainingOptions{Loss: loss, Reduction: red}, "adam")
	}
	for file, loss := range goldenModels(t) {
		m, err := graph.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		build(file, m, graph.TrainingOptions{Loss: loss}, "adamw")
	}

	ops := map[string]bool{}
	folded := map[string]bool{}
	for _, g := range rec.graphs {
		for op, f := range prepareAll(t, g.what, g.m) {
			if f {
				folded[op] = true
			} else {
				ops[op] = true
			}
		}
	}
	list := func(m map[string]bool) string {
		var l []string
		for k := range m {
			l = append(l, k)
		}
		sort.Strings(l)
		return strings.Join(l, " ")
	}
	t.Logf("%d graphs; ops run by CUDA kernels: %s", len(rec.graphs), list(ops))
	t.Logf("ops folded on the host: %s", list(folded))
	if len(ops) < 40 {
		t.Fatalf("only %d op types seen; the graphs were not built as expected", len(ops))
	}
}

// prepareAll prepares every node of m at batch size 4 and reports each op
// type as run (false) or folded (true). It fails the test for a node the
// CUDA backend cannot run.
func prepareAll(t *testing.T, what string, m *graph.Model) map[string]bool {
	t.Helper()
	const batch = 4
	in := map[string]*graph.Type{}
	for _, v := range m.Graph.Inputs {
		s := append(graph.Shape{}, v.Type.Shape...)
		for i, d := range s {
			if !d.Known() {
				s[i] = graph.D(batch)
			}
		}
		in[v.Name] = graph.NewType(v.Type.DType, s)
	}
	types, err := graph.InferShapes(m, in)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	order, err := m.Graph.TopoSort()
	if err != nil {
		t.Fatal(err)
	}
	constant := map[string]bool{}
	for _, name := range m.Graph.InitializerNames() {
		constant[name] = true
	}
	seen := map[string]bool{}
	for _, n := range order {
		op := graph.NormDomain(n.Domain) + "::" + n.OpType
		ins := make([]*graph.Type, len(n.Inputs))
		allConst := true
		for i, name := range n.Inputs {
			if name == "" {
				continue
			}
			ins[i] = types[name]
			if !constant[name] && types[name].Value == nil {
				allConst = false
			}
		}
		outs := make([]*graph.Type, len(n.Outputs))
		known := len(n.Outputs) > 0
		for i, o := range n.Outputs {
			if o != "" {
				outs[i] = types[o]
				if outs[i] == nil || outs[i].Value == nil {
					known = false
				}
			}
		}
		if known || allConst {
			for _, o := range n.Outputs {
				constant[o] = true
			}
			if _, ok := seen[op]; !ok {
				seen[op] = true
			}
			continue
		}
		seen[op] = false
		if !cuda.HasKernel(n.Domain, n.OpType) {
			t.Errorf("%s: node %s: no CUDA kernel for %s", what, n.Name, op)
			continue
		}
		if _, err := cuda.Prepare(&cuda.Prep{Node: n, In: ins, Out: outs, Opset: m.OpsetOf(n)}); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	return seen
}

// TestUnsupportedOp: an op without a CUDA kernel fails preparation with an
// error naming the op and the backend.
func TestUnsupportedOp(t *testing.T) {
	n := &graph.Node{Name: "e", OpType: "Einsum", Inputs: []string{"a"}, Outputs: []string{"b"}}
	ty := graph.NewType(tensor.Float32, graph.ShapeOf(2, 2))
	_, err := cuda.Prepare(&cuda.Prep{Node: n, In: []*graph.Type{ty}, Out: []*graph.Type{ty}, Opset: 17})
	var u *graph.UnsupportedOpError
	if err == nil || !strings.Contains(err.Error(), "no CUDA kernel for Einsum") {
		t.Fatalf("error %v, want one naming Einsum and CUDA", err)
	}
	if !asUnsupported(err, &u) {
		t.Fatalf("error %T is not a *graph.UnsupportedOpError", err)
	}
}

func asUnsupported(err error, u **graph.UnsupportedOpError) bool {
	e, ok := err.(*graph.UnsupportedOpError)
	*u = e
	return ok
}
