//go:build cgo

package cuda_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/backend/cuda/cudaemu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/tensor"
)

// The executor's tests run on the emulated backend (cuda-emu): the same
// executor, buffers, allocator and kernels as on a GPU, over the host
// emulator. gpu_exec_test.go runs some of them on a GPU too.

func emuBackend(t *testing.T, o cudaemu.Options) *cuda.Backend {
	t.Helper()
	b, err := cudaemu.Open(o)
	if err != nil {
		t.Skipf("no emulator here: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// trainingFeeds are a training graph's inputs for a batch of n: the
// model's initializers as parameters and buffers, random data, labels in
// [0, classes), and a Dropout seed.
func trainingFeeds(m *graph.Model, tr *graph.Training, n, classes int, seed uint64) map[string]*tensor.Tensor {
	r := rng(seed)
	feeds := map[string]*tensor.Tensor{}
	for _, in := range tr.Model.Graph.Inputs {
		switch {
		case m.Graph.Initializer(in.Name) != nil:
			feeds[in.Name] = m.Graph.Initializer(in.Name)
		case in.Name == tr.Label:
			feeds[in.Name] = randInt(r, int64(classes), n)
		case in.Name == tr.Seed:
			feeds[in.Name] = tensor.Scalar(int64(seed))
		case in.Name == tr.Offset:
			feeds[in.Name] = tensor.Scalar(int64(3))
		default:
			shape := []int{n}
			for _, d := range in.Shape[1:] {
				shape = append(shape, int(d.Size))
			}
			feeds[in.Name] = randF32(r, shape...)
		}
	}
	return feeds
}

// training builds a zoo model and its cross-entropy training graph.
func training(t *testing.T, name string, o models.Options) (*graph.Model, *graph.Training) {
	t.Helper()
	m, err := models.Build(name, o)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy})
	if err != nil {
		t.Fatal(err)
	}
	return m, tr
}

// closeRel checks |got-want| <= tol * max|want| over the tensor (and equal
// dtypes and shapes). The products on the two backends sum in different
// orders; that moves results by float32 rounding of the largest terms,
// while a wrong index moves them by their own size.
func closeRel(t *testing.T, what string, want, got *tensor.Tensor, tol float64) {
	t.Helper()
	if got == nil || want.DType() != got.DType() || !tensor.SameShape(want.Shape(), got.Shape()) {
		t.Fatalf("%s: got %v, want %v %v", what, got, want.DType(), want.Shape())
	}
	scale := 0.0
	for i := 0; i < want.Len(); i++ {
		scale = max(scale, math.Abs(want.AsFloat64(i)))
	}
	for i := 0; i < want.Len(); i++ {
		w, g := want.AsFloat64(i), got.AsFloat64(i)
		if !(math.Abs(w-g) <= tol*scale) && !(math.IsNaN(w) && math.IsNaN(g)) {
			t.Fatalf("%s: element %d is %v, want %v (tolerance %g of the largest, %g)", what, i, g, w, tol, scale)
		}
	}
}

// TestExecutorZoo compiles every zoo model's training and evaluation
// graphs on the emulated CUDA backend and on the CPU, runs one step on the
// same inputs, and compares every output: loss, accuracy count, every
// gradient, BatchNorm's new statistics.
func TestExecutorZoo(t *testing.T) {
	forBackends(t, func(t *testing.T, nb namedBackend) { executorZoo(t, nb.open(t, openOptions{devices: 1})) })
}

func executorZoo(t *testing.T, b *cuda.Backend) {
	host := cpu.New(cpu.Options{Threads: 1})
	for _, name := range models.Names() {
		t.Run(name, func(t *testing.T) {
			m, err := models.Build(name, models.Options{Input: []int{3, 12, 12}, Classes: 5, Dropout: 0.25, Seed: 1})
			if err != nil {
				t.Skipf("%s does not take 3x12x12 inputs: %v", name, err)
			}
			tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy, LabelSmoothing: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			feeds := trainingFeeds(m, tr, 4, 5, 7)
			for _, g := range []*graph.Model{tr.Model, tr.Eval} {
				in := map[string]*tensor.Tensor{}
				for _, v := range g.Graph.Inputs {
					in[v.Name] = feeds[v.Name]
				}
				want := runOn(t, host, g, in)
				got := runOn(t, b, g, in)
				for k, w := range want {
					closeRel(t, g.Graph.Name+" "+k, w, got[k], 1e-4)
				}
			}
		})
	}
}

func runOn(t *testing.T, b backend.Backend, m *graph.Model, feeds map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	d := b.Devices()[0]
	exe, err := b.Compile(m, d, backend.CompileOptions{})
	if err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	out, err := backend.RunHost(context.Background(), b, exe, d, feeds)
	if err != nil {
		t.Fatalf("%s: %v", b.Name(), err)
	}
	return out
}

// upload puts host tensors on a device.
func upload(t *testing.T, b backend.Backend, d backend.Device, ts map[string]*tensor.Tensor) map[string]backend.Buffer {
	t.Helper()
	out := map[string]backend.Buffer{}
	for k, v := range ts {
		buf, err := b.Upload(v, d)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = buf
	}
	return out
}

// TestExecutorWarmRunAllocatesNothing: once a training step has run (and
// been captured into a graph), running it again allocates neither Go
// memory nor device memory, and gives the same results.
func TestExecutorWarmRunAllocatesNothing(t *testing.T) {
	forBackends(t, warmRunAllocatesNothing)
}

func warmRunAllocatesNothing(t *testing.T, nb namedBackend) {
	for _, graphs := range []bool{false, true} {
		b := nb.open(t, openOptions{devices: 1, noGraphs: !graphs})
		d := b.Devices()[0].(*cuda.Device)
		m, tr := training(t, "cnn", models.Options{Input: []int{3, 16, 16}, Classes: 4, Dropout: 0.5, Seed: 2})
		exe, err := b.Compile(tr.Model, d, backend.CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		feeds := upload(t, b, d, trainingFeeds(m, tr, 2, 4, 3))
		ctx := context.Background()
		var first float64
		for i := 0; i < 3; i++ {
			out, err := exe.Run(ctx, feeds)
			if err != nil {
				t.Fatal(err)
			}
			l, err := b.Download(out[tr.Loss])
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = l.AsFloat64(0)
			} else if l.AsFloat64(0) != first {
				t.Fatalf("graphs=%v: run %d gives loss %v, the first gave %v", graphs, i, l.AsFloat64(0), first)
			}
		}
		raw := d.Stats().RawAllocs
		// The fewest of three measurements: see minAllocs.
		if a := minAllocs(20, func() {
			if _, err := exe.Run(ctx, feeds); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("graphs=%v: a warm run allocates %v times", graphs, a)
		}
		if n := d.Stats().RawAllocs - raw; n != 0 {
			t.Errorf("graphs=%v: a warm run allocated device memory %d times", graphs, n)
		}
		if g := d.Graphs(); graphs != (g.Captured > 0 && g.Launched > 3) {
			t.Errorf("graphs=%v: %d graphs captured, %d launched", graphs, g.Captured, g.Launched)
		}
	}
}

// TestExecutorStatusAtSync: a label out of range is found by the loss
// kernel on the device; Run returns without waiting, and the next Download
// returns the error naming the node.
func TestExecutorStatusAtSync(t *testing.T) {
	forBackends(t, func(t *testing.T, nb namedBackend) { statusAtSync(t, nb.open(t, openOptions{devices: 1})) })
}

func statusAtSync(t *testing.T, b *cuda.Backend) {
	d := b.Devices()[0]
	m, tr := training(t, "mlp", models.Options{Input: []int{1, 4, 4}, Classes: 3})
	exe, err := b.Compile(tr.Model, d, backend.CompileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host := trainingFeeds(m, tr, 2, 3, 1)
	host[tr.Label] = tensor.MustFromSlice([]int64{1, 7}, 2)
	out, err := exe.Run(context.Background(), upload(t, b, d, host))
	if err != nil {
		t.Fatalf("Run waits for nothing, so it cannot see the bad label: %v", err)
	}
	_, err = b.Download(out[tr.Loss])
	var ne *graph.NodeError
	if err == nil || !errors.As(err, &ne) || !strings.Contains(err.Error(), "label at position 1 is outside [0, 3)") {
		t.Fatalf("Download: error %v, want the loss node's error about label 1", err)
	}
	// The word is cleared once read: a good batch runs clean.
	host[tr.Label] = tensor.MustFromSlice([]int64{1, 2}, 2)
	if out, err = exe.Run(context.Background(), upload(t, b, d, host)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Download(out[tr.Loss]); err != nil {
		t.Fatalf("after the error was read: %v", err)
	}
}

// TestExecutorUnsupportedOp: an op without a CUDA kernel fails Compile with
// an UnsupportedOpError naming the op and the backend.
func TestExecutorUnsupportedOp(t *testing.T) {
	b := emuBackend(t, cudaemu.Options{})
	g := graph.NewGraph("u")
	g.Inputs = []*graph.ValueInfo{{Name: "x", Type: *graph.NewType(tensor.Float32, graph.ShapeOf(2, 3))}}
	g.Nodes = []*graph.Node{{Name: "e", OpType: "Einsum", Inputs: []string{"x"}, Outputs: []string{"y"},
		Attrs: map[string]*graph.Attribute{"equation": graph.AString("equation", "ij->ji")}}}
	g.Outputs = []*graph.ValueInfo{{Name: "y"}}
	_, err := b.Compile(graph.NewModel(g, 17), b.Devices()[0], backend.CompileOptions{})
	var u *graph.UnsupportedOpError
	if !errors.As(err, &u) || !strings.Contains(err.Error(), "no CUDA kernel for Einsum") {
		t.Fatalf("error %v, want an UnsupportedOpError naming Einsum and CUDA", err)
	}
}
