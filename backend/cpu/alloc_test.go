package cpu_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/tensor"
)

// TestRunAllocatesNothing checks the compile-once, run-many promise: once
// planned, running an executable allocates nothing, for inference and for
// the training graph (forward, loss, backward) of the zoo's CNN and MLP.
func TestRunAllocatesNothing(t *testing.T) {
	for _, name := range []string{"cnn", "mlp", "resnet20"} {
		for _, training := range []bool{false, true} {
			m, err := models.Build(name, models.Options{Input: []int{3, 16, 16}, Classes: 10, Seed: 1, Dropout: 0.2})
			if err != nil {
				t.Fatal(err)
			}
			feeds := map[string]*tensor.Tensor{"input": tensor.New(tensor.Float32, 8, 3, 16, 16)}
			if training {
				tr, err := graph.TrainingGraph(m, graph.TrainingOptions{Loss: graph.CrossEntropy})
				if err != nil {
					t.Fatal(err)
				}
				feeds[tr.Label] = tensor.New(tensor.Int64, 8)
				for _, p := range append(append([]string{}, tr.Params...), tr.Buffers...) {
					feeds[p] = m.Graph.Initializer(p)
				}
				if tr.Seed != "" {
					feeds[tr.Seed], feeds[tr.Offset] = tensor.Scalar(int64(1)), tensor.Scalar(int64(0))
				}
				m = tr.Model
			}
			b := cpu.New(cpu.Options{Threads: 2})
			dev := b.Devices()[0]
			exe, err := b.Compile(m, dev, backend.CompileOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bufs := map[string]backend.Buffer{}
			for k, v := range feeds {
				if bufs[k], err = b.Upload(v, dev); err != nil {
					t.Fatal(err)
				}
			}
			ctx := context.Background()
			if _, err := exe.Run(ctx, bufs); err != nil { // plans
				t.Fatal(err)
			}
			allocs := testing.AllocsPerRun(10, func() {
				if _, err := exe.Run(ctx, bufs); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s training=%v: %.1f allocations per run", name, training, allocs)
			if allocs != 0 {
				t.Errorf("%s training=%v: %.1f allocations per run, want 0", name, training, allocs)
			}
		}
	}
}

// TestOverwrite checks that a buffer overwritten in place holds the new
// values (and the host tensor stays the caller's), that a tensor of another
// shape or dtype is refused, and that overwriting allocates nothing.
func TestOverwrite(t *testing.T) {
	b := cpu.New(cpu.Options{})
	dev := b.Devices()[0]
	buf, err := b.Upload(tensor.New(tensor.Float32, 2, 3), dev)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err := b.Overwrite(buf, src); err != nil {
		t.Fatal(err)
	}
	src.Float32s()[0] = 99 // the buffer must not share the caller's data
	got, err := b.Download(buf)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.Float32s(); g[0] != 1 || g[5] != 6 {
		t.Fatalf("buffer holds %v after overwriting with 1..6", g)
	}
	if err := b.Overwrite(buf, tensor.New(tensor.Float32, 3, 2)); err == nil {
		t.Error("overwrite with a [3 2] tensor of a [2 3] buffer succeeded")
	}
	if err := b.Overwrite(buf, tensor.New(tensor.Float64, 2, 3)); err == nil {
		t.Error("overwrite with a float64 tensor of a float32 buffer succeeded")
	}
	if n := testing.AllocsPerRun(100, func() { b.Overwrite(buf, src) }); n != 0 {
		t.Errorf("overwrite allocates %.0f times", n)
	}
}

// TestExecutableReleasesWorkers: an executable's pool workers stop once
// the executable is unreachable (a process that compiles many models
// does not collect parked goroutines).
func TestExecutableReleasesWorkers(t *testing.T) {
	m, err := models.Build("mlp", models.Options{Input: []int{1, 8, 8}, Classes: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(cpu.Options{Threads: 4})
	dev := b.Devices()[0]
	// Earlier tests' executables may still be waiting for a collection:
	// count once the number has settled.
	settle := func() int {
		n := -1
		for m := runtime.NumGoroutine(); m != n; m = runtime.NumGoroutine() {
			n = m
			runtime.GC()
			time.Sleep(20 * time.Millisecond)
		}
		return n
	}
	before := settle()
	x, err := b.Upload(tensor.New(tensor.Float32, 4, 1, 8, 8), dev)
	if err != nil {
		t.Fatal(err)
	}
	exes := make([]backend.Executable, 10)
	for i := range exes {
		exe, err := b.Compile(m, dev, backend.CompileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Run once, so that what a run holds on to is covered too.
		if _, err := exe.Run(context.Background(), map[string]backend.Buffer{"input": x}); err != nil {
			t.Fatal(err)
		}
		exes[i] = exe
	}
	if n := runtime.NumGoroutine(); n < before+30 {
		t.Fatalf("%d goroutines after compiling ten executables of 4 threads, %d before: where are the workers?", n, before)
	}
	runtime.KeepAlive(exes)
	// Cleanups run after a collection, on their own goroutine: give them
	// up to 10 s.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		runtime.GC()
		if runtime.NumGoroutine() <= before {
			return
		}
	}
	t.Fatalf("%d goroutines 10 s after the executables were dropped, %d before", runtime.NumGoroutine(), before)
}
