package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// cmdBench measures a model's throughput on this machine: inference, or
// training steps (forward, backward, update) under a strategy, with an
// optional per-op time table. `make bench` runs the full comparison with
// PyTorch and ONNX Runtime.
func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "measure a model's inference or training throughput",
		Args:  noArgs,
		Example: `  gotrain bench --model cnn --input 3x32x32 --batch 32 --train
  gotrain bench --model m.onnx --batch 256 --profile
  mpirun -np 2 --bind-to none gotrain bench --train --strategy multiworker --threads 1
  gotrain bench --backend cuda --model cnn --batch 256 --train`,
	}
	fs := cmd.Flags()
	model := fs.String("model", "cnn", "ONNX file or built-in model")
	be := fs.String("backend", "cpu", "backend (cpu, or cuda in a build with CUDA)")
	input := fs.String("input", "3x32x32", "sample shape CxHxW for a built-in model")
	classes := fs.Int("classes", 10, "classes for a built-in model")
	batchSize := fs.Int("batch", 32, "batch size")
	trainMode := fs.Bool("train", false, "time training steps (Adam) instead of inference")
	strat := fs.String("strategy", "single", "single, mirrored, or multiworker under mpirun (with --train; --batch is the global batch)")
	replicas := fs.Int("replicas", 2, "mirrored replicas (multiworker: 1 a worker)")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	seconds := fs.Float64("seconds", 3, "how long to measure")
	profile := fs.Bool("profile", false, "print the time spent per op type")
	det := fs.Bool("deterministic", false, "with --train: deterministic mode (micro-shards of 8, one thread per replica)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		switch {
		case *batchSize < 1:
			return usagef("--batch %d: must be at least 1", *batchSize)
		case !(*seconds > 0) || math.IsInf(*seconds, 0): // NaN included
			return usagef("--seconds %g: must be a positive number", *seconds)
		case *replicas < 1:
			return usagef("--replicas %d: must be at least 1", *replicas)
		case *threads < 0:
			return usagef("--threads %d: must not be negative", *threads)
		case *strat != "single" && *strat != "mirrored" && *strat != "multiworker":
			return usagef("--strategy %q: expected single, mirrored or multiworker", *strat)
		}
		// Settings of training steps would be ignored when timing inference.
		for _, name := range []string{"strategy", "replicas", "deterministic"} {
			if fs.Changed(name) && !*trainMode {
				return usagef("--%s %s applies to training steps: it needs --train", name, fs.Lookup(name).Value)
			}
		}
		var w *world
		var timed *timedWorld
		if *strat == "multiworker" {
			f := defaultTrainFlags()
			f.Strategy = *strat
			var err error
			if w, err = openWorld(&f); err != nil {
				return err
			}
			timed = &timedWorld{World: w.comm}
			if !w.primary() {
				stdout = io.Discard
			}
		}
		if isModelFile(*model) {
			if err := checkModelPath(*model); err != nil {
				return err
			}
		} else if err := checkZooFlags(*model, *classes, 0); err != nil {
			return err
		}
		m, err := loadModel(*model, *input, *classes, nil, 1)
		if err != nil {
			return err
		}
		if len(m.Graph.Inputs) != 1 {
			return fmt.Errorf("model %s has %d inputs; bench feeds models with one", *model, len(m.Graph.Inputs))
		}
		in := m.Graph.Inputs[0]
		shape := intShape(in.Shape)
		shape[0] = *batchSize
		for i, d := range shape {
			if d < 0 {
				return fmt.Errorf("input %q has an unknown dim %d (%v)", in.Name, i, in.Shape)
			}
		}
		r := rand.New(rand.NewPCG(1, 2))
		x, err := tensor.NewChecked(tensor.Float32, shape)
		if err != nil {
			return fmt.Errorf("--batch %d: input %q: %w", *batchSize, in.Name, err)
		}
		for i := range x.Float32s() {
			x.Float32s()[i] = float32(r.NormFloat64())
		}
		devices := 1
		if *trainMode && *strat == "mirrored" {
			devices = *replicas
		}
		b, err := openBackend(*be, devices, *threads)
		if err != nil {
			return err
		}
		// A device backend queues work and returns: the clock stops once
		// the device has done what was queued.
		sync := func() error { return nil }
		if s, ok := b.(interface{ Sync() error }); ok {
			sync = s.Sync
		}
		var step func() error
		if *trainMode {
			bc := strategy.BuildConfig{Strategy: *strat, Backend: b, Training: graph.TrainingOptions{Loss: graph.CrossEntropy},
				Optim: optim.Config{Name: "adam", LR: 1e-3}, Replicas: devices, Deterministic: *det}
			if timed != nil {
				bc.World = timed
			}
			su, err := strategy.Build(m, bc)
			if err != nil {
				return err
			}
			st := su.Strategy
			classesOut := int64(*classes)
			if o := m.Graph.Outputs[0]; o.RankKnown && len(o.Shape) > 1 && o.Shape[1].Known() {
				classesOut = o.Shape[1].Size
			}
			y, err := tensor.NewChecked(tensor.Int64, []int{*batchSize})
			if err != nil {
				return fmt.Errorf("--batch %d: labels: %w", *batchSize, err)
			}
			for i := range y.Int64s() {
				y.Int64s()[i] = int64(i) % classesOut
			}
			batch := strategy.Batch{Inputs: map[string]*tensor.Tensor{in.Name: x}, Labels: y}
			if w != nil {
				w.mw = st.(*strategy.MultiWorker)
				if batch, err = w.mw.Share(batch); err != nil {
					return err
				}
			}
			n := int64(0)
			step = func() error {
				n++
				_, err := st.Step(context.Background(), batch, 1e-3, n, n)
				return err
			}
		} else {
			exe, err := b.Compile(m, b.Devices()[0], backend.CompileOptions{})
			if err != nil {
				return err
			}
			buf, err := b.Upload(x, b.Devices()[0])
			if err != nil {
				return err
			}
			feeds := map[string]backend.Buffer{in.Name: buf}
			step = func() error {
				_, err := exe.Run(context.Background(), feeds)
				return err
			}
		}
		for i := 0; i < 3; i++ { // plan and warm up
			if err := step(); err != nil {
				return err
			}
		}
		if err := sync(); err != nil {
			return err
		}
		cpu.EnableProfile(*profile)
		defer cpu.EnableProfile(false)
		if timed != nil {
			timed.spent = 0
		}
		began := time.Now()
		steps := 0
		for {
			if err := step(); err != nil {
				return err
			}
			steps++
			done := time.Since(began).Seconds() >= *seconds
			if w == nil && done {
				break
			}
			if w != nil {
				// Workers stop after the same step: worker 0's clock decides.
				if done && w.primary() {
					w.mw.RequestStop()
				}
				if w.mw.Stopping() {
					break
				}
			}
		}
		if err := sync(); err != nil {
			return err
		}
		el := time.Since(began)
		what := "inference"
		if *trainMode {
			what = "training (" + *strat + ")"
			if *det {
				what = "training (" + *strat + ", deterministic)"
			}
		}
		if *be == "cpu" {
			fmt.Fprintln(stdout, cpu.KernelInfo())
		}
		if w != nil {
			if d, ok := b.Devices()[0].(*cpu.Device); ok {
				what = fmt.Sprintf("training (multiworker, %s x %s)", plural(w.workers(), "worker"), plural(d.Threads(), "thread"))
			} else {
				what = fmt.Sprintf("training (multiworker, %s)", plural(w.workers(), "worker"))
			}
		}
		if *be != "cpu" {
			what += " on " + *be
		}
		fmt.Fprintf(stdout, "%s %s, batch %d: %.0f samples/s (%d steps, %.2f ms/step)\n", *model, what, *batchSize,
			float64(steps**batchSize)/el.Seconds(), steps, el.Seconds()*1000/float64(steps))
		if w != nil {
			alone, err := allreduceAlone(w, w.mw.ReducedBytes())
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "  all-reduced per step: %d bytes; in collectives: %.2f ms/step (%.0f%%, waits for the slower worker included); that all-reduce alone: %.0f us (best of 21)\n",
				w.mw.ReducedBytes(), timed.spent.Seconds()*1000/float64(steps), 100*timed.spent.Seconds()/el.Seconds(), alone.Seconds()*1e6)
			return w.end(nil, false)
		}
		if *profile {
			for _, t := range cpu.ProfileTable() {
				fmt.Fprintf(stdout, "  %-28s %8.3f ms/step  %5.1f%%\n", t.Op, t.Total.Seconds()*1000/float64(steps), 100*t.Total.Seconds()/el.Seconds())
			}
		}
		return nil
	}
	return cmd
}

// allreduceAlone times an all-reduce of n bytes with every worker ready
// (after a barrier): the best of 21, what it costs when nothing else on
// the machine gets in the way.
func allreduceAlone(w *world, n int) (time.Duration, error) {
	buf := make([]float32, n/4)
	var times []time.Duration
	for range 21 {
		if err := w.comm.Barrier(); err != nil {
			return 0, err
		}
		t := time.Now()
		if err := w.comm.AllreduceSum(buf); err != nil {
			return 0, err
		}
		times = append(times, time.Since(t))
	}
	return slices.Min(times), nil
}

// timedWorld measures the time a worker spends in collectives (waiting
// for the others included).
type timedWorld struct {
	strategy.World
	spent time.Duration
}

func (t *timedWorld) AllreduceSum(buf []float32) error {
	defer t.since(time.Now())
	return t.World.AllreduceSum(buf)
}

func (t *timedWorld) Fold(n int, f func([]float32) ([]float32, error)) ([]float32, error) {
	defer t.since(time.Now())
	return t.World.Fold(n, f)
}

func (t *timedWorld) Allgather(b []byte) ([][]byte, error) {
	defer t.since(time.Now())
	return t.World.Allgather(b)
}

func (t *timedWorld) since(start time.Time) { t.spent += time.Since(start) }
