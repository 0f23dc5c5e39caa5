package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/ortcheck"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

var shapes = map[string][]int{"cnn": {3, 32, 32}, "mlp": {1, 28, 28}}

func model(b *testing.B, name string) *graph.Model {
	m, err := models.Build(name, models.Options{Input: shapes[name], Classes: 10, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func randn(shape ...int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(1, 1))
	t := tensor.New(tensor.Float32, shape...)
	for i := range t.Float32s() {
		t.Float32s()[i] = float32(r.NormFloat64())
	}
	return t
}

// cpuClock measures the CPU time per step of a benchmark's timed loop.
type cpuClock float64

func startCPU() cpuClock { return cpuClock(cpuSeconds()) }

// report adds the CPU time per step (all threads, ms) to the benchmark.
func (c cpuClock) report(b *testing.B) {
	if t := cpuSeconds(); t > 0 && b.N > 0 {
		b.ReportMetric((t-float64(c))*1000/float64(b.N), "cpu-ms/step")
	}
}

// reportPeak adds the process's peak resident memory (MB, getrusage's
// ru_maxrss, as torch_bench.py measures PyTorch's) to the benchmark. It is
// the peak of the whole process so far, so scripts/bench.sh runs each
// benchmark in a process of its own to measure it.
func reportPeak(b *testing.B) {
	if mb := peakRSSMB(); mb > 0 {
		b.ReportMetric(mb, "MB-peak-rss")
	}
}

func BenchmarkInfer(b *testing.B) {
	for _, name := range []string{"cnn", "mlp"} {
		b.Run(name+"/256", func(b *testing.B) {
			m := model(b, name)
			be := cpu.New(cpu.Options{})
			dev := be.Devices()[0]
			exe, err := be.Compile(m, dev, backend.CompileOptions{})
			if err != nil {
				b.Fatal(err)
			}
			x, err := be.Upload(randn(append([]int{256}, shapes[name]...)...), dev)
			if err != nil {
				b.Fatal(err)
			}
			feeds := map[string]backend.Buffer{"input": x}
			ctx := context.Background()
			if _, err := exe.Run(ctx, feeds); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			clk := startCPU()
			for i := 0; i < b.N; i++ {
				if _, err := exe.Run(ctx, feeds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "samples/s")
			clk.report(b)
			reportPeak(b)
		})
	}
}

func BenchmarkORTInfer(b *testing.B) {
	ortcheck.Require(b)
	for _, name := range []string{"cnn", "mlp"} {
		b.Run(name+"/256", func(b *testing.B) {
			path := filepath.Join(b.TempDir(), name+".onnx")
			if err := graph.Save(model(b, name), path); err != nil {
				b.Fatal(err)
			}
			s, err := ortcheck.NewSession(path, "input", "logits", append([]int{256}, shapes[name]...), runtime.GOMAXPROCS(0))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.Run(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*256)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// trainStrategy prepares Adam training of a zoo model.
func trainStrategy(b *testing.B, name string, replicas int) (strategy.Strategy, *graph.Training) {
	m := model(b, name)
	strat := "single"
	if replicas > 1 {
		strat = "mirrored"
	}
	su, err := strategy.Build(m, strategy.BuildConfig{Strategy: strat, Backend: cpu.New(cpu.Options{Devices: replicas}),
		Training: graph.TrainingOptions{Loss: graph.CrossEntropy}, Optim: optim.Config{Name: "adam", LR: 1e-3}})
	if err != nil {
		b.Fatal(err)
	}
	return su.Strategy, su.Training
}

// trainBatch is a batch of random inputs with labels.
func trainBatch(name string, batch int) strategy.Batch {
	x := randn(append([]int{batch}, shapes[name]...)...)
	y := tensor.New(tensor.Int64, batch)
	for i := range y.Int64s() {
		y.Int64s()[i] = int64(i % 10)
	}
	return strategy.Batch{Inputs: map[string]*tensor.Tensor{"input": x}, Labels: y}
}

// warmSteps runs three steps (plans are made at the first).
func warmSteps(b *testing.B, st strategy.Strategy, bt strategy.Batch) {
	for i := 0; i < 3; i++ {
		if _, err := st.Step(context.Background(), bt, 1e-3, int64(i+1), 0); err != nil {
			b.Fatal(err)
		}
	}
}

func benchTrain(b *testing.B, name string, batch, replicas int) {
	st, _ := trainStrategy(b, name, replicas)
	bt := trainBatch(name, batch)
	ctx := context.Background()
	warmSteps(b, st, bt)
	b.ResetTimer()
	clk := startCPU()
	for i := 0; i < b.N; i++ {
		if _, err := st.Step(ctx, bt, 1e-3, int64(i+4), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "samples/s")
	clk.report(b)
	reportPeak(b)
}

func BenchmarkTrain(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
	}{{"cnn", 32}, {"cnn", 64}, {"mlp", 64}} {
		b.Run(fmt.Sprintf("%s/%d", c.name, c.batch), func(b *testing.B) { benchTrain(b, c.name, c.batch, 1) })
	}
}

func BenchmarkTrainMirrored2(b *testing.B) {
	b.Run("cnn/32", func(b *testing.B) { benchTrain(b, "cnn", 32, 2) })
}

// BenchmarkMirroredPaired trains the seed CNN at batch 32 under the
// mirrored strategy (2 replicas) and on one device in alternating blocks
// of 10 steps, in one process, and reports the ratio of their speeds
// (mirrored/single): the slow spells of a shared machine fall on both
// alike, which separate benchmarks' best rounds do not ensure.
func BenchmarkMirroredPaired(b *testing.B) {
	b.Run("cnn/32", func(b *testing.B) {
		const batch, block = 32, 10
		single, _ := trainStrategy(b, "cnn", 1)
		mirrored, _ := trainStrategy(b, "cnn", 2)
		bt := trainBatch("cnn", batch)
		warmSteps(b, single, bt)
		warmSteps(b, mirrored, bt)
		ctx := context.Background()
		var took [2]time.Duration
		step := int64(4)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for s, st := range []strategy.Strategy{single, mirrored} {
				t0 := time.Now()
				for k := 0; k < block; k++ {
					if _, err := st.Step(ctx, bt, 1e-3, step, 0); err != nil {
						b.Fatal(err)
					}
					step++
				}
				took[s] += time.Since(t0)
			}
		}
		samples := float64(b.N * block * batch)
		b.ReportMetric(samples/took[1].Seconds(), "samples/s")
		b.ReportMetric(samples/took[0].Seconds(), "single-samples/s")
		b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "mirrored/single")
	})
}
