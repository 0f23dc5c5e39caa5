package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gotrain/gotrain/internal/mpi"
	"github.com/gotrain/gotrain/internal/mpi/mpitest"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/tensor"
)

// What multi-worker training promises against one device is what mirrored
// training does (see the top of equivalence_test.go), for N worker
// processes under mpirun, each with its share of every batch:
//
//   - deterministic mode: the same losses, metrics, weights and
//     validation results, bit for bit, for any number of workers and of
//     local replicas, with uneven batches, batches with fewer shards than
//     workers, Dropout, L2 and decoupled weight decay, momentum, Adam and
//     clipping;
//   - default mode: one step's gradient within the float32 bound that
//     TestOneStepGradients derives, a worker left without samples
//     included;
//   - per-worker BatchNorm: what mirrored training with one replica per
//     worker computes;
//   - sync BatchNorm: one step's gradients and running statistics within
//     2e-5 of one device's, as TestSyncBatchNorm;
//   - a worker whose share fails makes every worker's step fail, and none
//     changes its weights.
//
// Every worker also checks at every step that all workers hold the same
// weights, bit for bit (CheckReplicas).
//
// The test runs this test binary under mpirun -np 2 and 3 (TestMain sends
// the processes to mwWorker); worker 0 writes what it computed to files,
// which the test compares with one device's results computed here.

func TestMain(m *testing.M) {
	if mpitest.Scenario() == "strategy" {
		os.Exit(mwWorker())
	}
	os.Exit(m.Run())
}

// mwDet are the deterministic cases: several steps, compared bit for bit.
var mwDet = []struct {
	name     string
	s        spec
	replicas int // local replicas of each worker
}{
	{"adam-dropout", spec{model: "cnn", dropout: 0.2, oc: optim.Config{Name: "adam", LR: 1e-3}}, 1},
	{"momentum-l2", spec{model: "cnn", oc: optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4}}, 1},
	{"adamw-dropout", spec{model: "cnn", dropout: 0.3, oc: optim.Config{Name: "adamw", LR: 1e-3, WeightDecay: 0.01, DecayMode: optim.DecayDecoupled}}, 1},
	{"nesterov-clip-mlp", spec{model: "mlp", oc: optim.Config{Name: "nesterov", LR: 0.05, Momentum: 0.9, ClipNorm: 1}}, 1},
	{"adam-dropout-2-local", spec{model: "cnn", dropout: 0.2, oc: optim.Config{Name: "adam", LR: 1e-3}}, 2},
}

// mwDetSizes are the deterministic cases' batches: uneven, and one with a
// single shard, fewer than the workers.
var mwDetSizes = []int{13, 12, 7, 2}

// mwGrad are the default mode's one-step gradient cases.
var mwGrad = []struct {
	model   string
	dropout float64
}{{"cnn", 0}, {"cnn", 0.3}, {"mlp", 0}}

// mwGradSizes: even, uneven, and fewer samples than 3 workers.
var mwGradSizes = []int{12, 7, 2}

// mwBNSizes are the per-worker BatchNorm case's batches (the last leaves a
// worker without samples when there are three).
var mwBNSizes = []int{12, 9, 12, 2}

// evalBatch is the batch every case evaluates after its steps.
func evalBatch() strategy.Batch { return batch(10, 99) }

func mwDetSpec(c spec) spec {
	c.deterministic, c.shard = true, 3
	return c
}

func mwBNSpec() spec {
	return spec{model: "vgg", oc: optim.Config{Name: "momentum", LR: 0.05, Momentum: 0.9}, smooth: true}
}

// mwWorker is one worker process: it runs every case and worker 0 writes
// the results into $MW_DIR.
func mwWorker() int {
	world, err := mpi.Init(mpi.Options{Timeout: 2 * time.Minute})
	if err != nil {
		fmt.Println("FAIL:", err)
		return 1
	}
	dir := os.Getenv("MW_DIR")
	t := &workerT{rank: world.Rank()}
	ctx := context.Background()
	save := func(name string, res map[string]*tensor.Tensor) {
		if world.Rank() == 0 {
			if err := tensor.WriteNPZ(filepath.Join(dir, name+".npz"), res); err != nil {
				t.Fatalf("%v", err)
			}
		}
	}
	// build makes a worker's strategy; t.Fatalf ends the process.
	build := func(s spec, local int) strategy.Strategy {
		s.world, s.replicas = world, local
		st, err := s.make()
		if err != nil {
			t.Fatalf("building %+v: %v", s, err)
		}
		return st
	}
	// steps runs global batches of the given sizes, the worker taking its
	// share of each, and records losses, metrics, weights and an
	// evaluation.
	steps := func(st strategy.Strategy, lr float64, sizes []int) map[string]*tensor.Tensor {
		res := map[string]*tensor.Tensor{}
		var loss, correct []float64
		for i, n := range sizes {
			part, err := strategy.Share(st, batch(n, uint64(i)))
			if err != nil {
				t.Fatalf("%v", err)
			}
			r, err := st.Step(ctx, part, lr, int64(i+1), int64(100+i))
			if err != nil {
				t.Fatalf("step %d: %v", i+1, err)
			}
			if r.Samples != n {
				t.Fatalf("step %d: %d samples, want the global batch's %d", i+1, r.Samples, n)
			}
			loss, correct = append(loss, r.Loss), append(correct, r.Correct)
		}
		res["loss"] = tensor.MustFromSlice(loss, len(loss))
		res["correct"] = tensor.MustFromSlice(correct, len(correct))
		w, err := st.Weights()
		if err != nil {
			t.Fatalf("%v", err)
		}
		for name, v := range w {
			res["w:"+name] = v
		}
		ev, err := st.Evaluate(ctx, evalBatch())
		if err != nil {
			t.Fatalf("evaluate: %v", err)
		}
		res["eval"] = tensor.MustFromSlice([]float64{ev.Loss, ev.Correct, float64(ev.Samples)}, 3)
		res["output"] = ev.Output
		return res
	}
	for _, c := range mwDet {
		save("det-"+c.name, steps(build(mwDetSpec(c.s), c.replicas), c.s.oc.LR, mwDetSizes))
	}
	for _, c := range mwGrad {
		for _, n := range mwGradSizes {
			st := build(spec{model: c.model, dropout: c.dropout, oc: optim.Config{Name: "sgd", LR: 0.1}, smooth: true}, 1)
			g, err := strategy.WorkerGradients(st, batch(n, 5), 77)
			if err != nil {
				t.Fatalf("gradients: %v", err)
			}
			save(fmt.Sprintf("grad-%s-%g-%d", c.model, c.dropout, n), g)
		}
	}
	// One thread a worker, as each of mirrored training's replicas has one
	// (kernels split sums by thread).
	bn := mwBNSpec()
	bn.threads = 1
	save("bn", steps(build(bn, 1), 0.05, mwBNSizes))
	for _, n := range []int{12, 7} {
		s := mwBNSpec()
		s.sync = true
		st := build(s, 1)
		b := batch(n, 3)
		g, err := strategy.WorkerGradients(st, b, 77)
		if err != nil {
			t.Fatalf("sync BatchNorm gradients: %v", err)
		}
		part, err := strategy.Share(st, b)
		if err != nil {
			t.Fatalf("%v", err)
		}
		if _, err := st.Step(ctx, part, 0.05, 1, 0); err != nil {
			t.Fatalf("sync BatchNorm step: %v", err)
		}
		w, err := st.Weights()
		if err != nil {
			t.Fatalf("%v", err)
		}
		for name, v := range w {
			g["w:"+name] = v
		}
		save(fmt.Sprintf("syncbn-%d", n), g)
	}
	// A bad label in the last worker's share fails the step on every
	// worker; the weights stay, and the next step runs.
	for _, det := range []bool{false, true} {
		s := spec{model: "mlp", oc: optim.Config{Name: "sgd", LR: 0.1}}
		if det {
			s = mwDetSpec(s)
		}
		st := build(s, 1)
		before, _ := st.Weights()
		b := batch(12, 1)
		b.Labels.Int64s()[11] = 99
		part, _ := strategy.Share(st, b)
		_, err := st.Step(ctx, part, 0.1, 1, 0)
		msg := "<nil>"
		if err != nil {
			msg = err.Error()
		}
		after, _ := st.Weights()
		for name, w := range before {
			if rel(w, after[name]) != 0 {
				t.Fatalf("det=%v: %s changed in a failed step", det, name)
			}
		}
		next, _ := strategy.Share(st, batch(12, 2))
		if _, err := st.Step(ctx, next, 0.1, 1, 0); err != nil {
			t.Fatalf("det=%v: the step after the failed one: %v", det, err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("fail-%v-rank%d.txt", det, world.Rank())), []byte(msg), 0o644); err != nil {
			t.Fatalf("%v", err)
		}
	}
	// Workers that start from other weights are refused, on every worker.
	s := spec{model: "mlp", oc: optim.Config{Name: "sgd", LR: 0.1}, world: world, seed: uint64(4 + world.Rank())}
	_, err = s.make()
	msg := "<nil>"
	if err != nil {
		msg = err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("start-rank%d.txt", world.Rank())), []byte(msg), 0o644); err != nil {
		t.Fatalf("%v", err)
	}
	if err := world.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	fmt.Printf("ok rank %d\n", world.Rank())
	return 0
}

// workerT ends a worker process on a failure, saying why.
type workerT struct{ rank int }

func (w *workerT) Fatalf(format string, args ...any) {
	fmt.Printf("FAIL rank %d: %s\n", w.rank, fmt.Sprintf(format, args...))
	os.Exit(1)
}

// bitsEqual returns where two tensors' bits differ, or "".
func bitsEqual(a, b *tensor.Tensor) string {
	if a == nil || b == nil || a.Len() != b.Len() {
		return fmt.Sprintf("shapes %v and %v", shapeOf(a), shapeOf(b))
	}
	for i := 0; i < a.Len(); i++ {
		x, y := a.AsFloat64(i), b.AsFloat64(i)
		if math.Float64bits(x) != math.Float64bits(y) {
			return fmt.Sprintf("element %d: %v, one device %v", i, y, x)
		}
	}
	return ""
}

func shapeOf(t *tensor.Tensor) []int {
	if t == nil {
		return nil
	}
	return t.Shape()
}

// runOne is what one device (or mirrored replicas) computes for a case:
// the steps' losses, metrics, weights and the evaluation, as mwWorker
// records them.
func runOne(t *testing.T, s spec, lr float64, sizes []int) map[string]*tensor.Tensor {
	t.Helper()
	st := s.mustBuild(t)
	res := map[string]*tensor.Tensor{}
	var loss, correct []float64
	for i, n := range sizes {
		r, err := st.Step(context.Background(), batch(n, uint64(i)), lr, int64(i+1), int64(100+i))
		if err != nil {
			t.Fatal(err)
		}
		loss, correct = append(loss, r.Loss), append(correct, r.Correct)
	}
	res["loss"] = tensor.MustFromSlice(loss, len(loss))
	res["correct"] = tensor.MustFromSlice(correct, len(correct))
	w, err := st.Weights()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range w {
		res["w:"+name] = v
	}
	ev, err := st.Evaluate(context.Background(), evalBatch())
	if err != nil {
		t.Fatal(err)
	}
	res["eval"] = tensor.MustFromSlice([]float64{ev.Loss, ev.Correct, float64(ev.Samples)}, 3)
	res["output"] = ev.Output
	return res
}

func TestMultiWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: mpirun runs")
	}
	for _, np := range []int{2, 3} {
		t.Run(fmt.Sprintf("workers=%d", np), func(t *testing.T) {
			dir := t.TempDir()
			out, err := mpitest.Run(t, mpitest.Options{NP: np, Scenario: "strategy", Env: []string{"MW_DIR=" + dir}}, 8*time.Minute)
			if err != nil || strings.Count(out, "ok rank") != np {
				t.Fatalf("mpirun -np %d: %v\n%s", np, err, out)
			}
			load := func(name string) map[string]*tensor.Tensor {
				t.Helper()
				r, err := tensor.ReadNPZ(filepath.Join(dir, name+".npz"))
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			t.Run("deterministic", func(t *testing.T) {
				for _, c := range mwDet {
					want := runOne(t, mwDetSpec(c.s), c.s.oc.LR, mwDetSizes)
					got := load("det-" + c.name)
					if len(got) != len(want) {
						t.Fatalf("%s: %d results, one device %d", c.name, len(got), len(want))
					}
					for k, w := range want {
						if d := bitsEqual(w, got[k]); d != "" {
							t.Errorf("%s, %d workers: %s is not one device's bit for bit: %s", c.name, np, k, d)
						}
					}
				}
			})
			t.Run("gradients", func(t *testing.T) {
				for _, c := range mwGrad {
					for _, n := range mwGradSizes {
						base := spec{model: c.model, dropout: c.dropout, oc: optim.Config{Name: "sgd", LR: 0.1}, smooth: true}
						want, bound := gradientBound(t, base, batch(n, 5))
						got := load(fmt.Sprintf("grad-%s-%g-%d", c.model, c.dropout, n))
						worst := ""
						for name, g := range want {
							d := rel(g, got[name])
							if !(d <= bound[name]) {
								t.Errorf("%s dropout %g batch %d, %d workers: the gradient of %s differs by %.3g relative, bound %.3g", c.model, c.dropout, n, np, name, d, bound[name])
							}
							worst += fmt.Sprintf(" %.2g/%.2g", d, bound[name])
						}
						t.Logf("%s dropout %g batch %d: differences/bounds%s", c.model, c.dropout, n, worst)
					}
				}
			})
			t.Run("batchnorm", func(t *testing.T) {
				// Per-worker statistics are mirrored training's per-replica
				// statistics with one replica (of one thread) per worker,
				// and so are the gradients. With two workers
				// every sum has two terms, which any order adds alike: bit
				// for bit. With three, OpenMPI may group the three terms of
				// the gradients' sum otherwise than the reduction graph:
				// float32 rounding, ~1e-7 relative per step (smooth net, no
				// branch can flip); 1e-5 after four steps leaves a margin of
				// a hundred.
				s := mwBNSpec()
				s.replicas = np
				want := runOne(t, s, 0.05, mwBNSizes)
				got := load("bn")
				for k, w := range want {
					if k == "output" || k == "eval" {
						continue // evaluated on shares: compared below
					}
					if np == 2 {
						if d := bitsEqual(w, got[k]); d != "" {
							t.Errorf("%s is not mirrored training's bit for bit: %s", k, d)
						}
					} else if d := rel(w, got[k]); !(d <= 1e-5) {
						t.Errorf("%s differs from mirrored training's by %.3g relative", k, d)
					}
				}
				// Validation on shares: each worker's mean loss weighted
				// by its share, against the whole batch's; float32
				// rounding of the loss's mean over 10 samples, and of the
				// logits of a smaller product: 1e-5 relative.
				if d := rel(want["output"], got["output"]); !(d <= 1e-5) {
					t.Errorf("evaluation outputs differ by %.3g relative", d)
				}
				we, ge := want["eval"].Float64s(), got["eval"].Float64s()
				if !(math.Abs(we[0]-ge[0]) <= 1e-5*math.Abs(we[0])) || we[1] != ge[1] || we[2] != ge[2] {
					t.Errorf("evaluation (loss, correct, samples) %v, mirrored %v", ge, we)
				}
			})
			t.Run("sync-batchnorm", func(t *testing.T) {
				const bound = 2e-5 // as TestSyncBatchNorm, whose comment derives it
				for _, n := range []int{12, 7} {
					s := mwBNSpec()
					st := s.mustBuild(t)
					b := batch(n, 3)
					want := gradients(t, st, b)
					if _, err := st.Step(context.Background(), b, 0.05, 1, 0); err != nil {
						t.Fatal(err)
					}
					w, err := st.Weights()
					if err != nil {
						t.Fatal(err)
					}
					for name, v := range w {
						if strings.Contains(name, "running") {
							want["w:"+name] = v
						}
					}
					got := load(fmt.Sprintf("syncbn-%d", n))
					for k, v := range want {
						if d := rel(v, got[k]); !(d <= bound) {
							t.Errorf("batch %d: %s differs by %.3g relative", n, k, d)
						}
					}
				}
			})
			t.Run("start", func(t *testing.T) {
				for r := range np {
					b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("start-rank%d.txt", r)))
					if err != nil {
						t.Fatal(err)
					}
					if !strings.Contains(string(b), "worker 1's weights differ from worker 0's at the start") {
						t.Errorf("worker %d, initial weights that differ: error %q", r, b)
					}
				}
			})
			t.Run("failure", func(t *testing.T) {
				for _, det := range []bool{false, true} {
					for r := range np {
						b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("fail-%v-rank%d.txt", det, r)))
						if err != nil {
							t.Fatal(err)
						}
						msg := string(b)
						want := "other worker"
						if r == np-1 {
							want = "99" // the bad label, in the last worker's share
						}
						if det && r != np-1 {
							want = fmt.Sprintf("worker rank %d", np-1)
						}
						if !strings.Contains(msg, want) {
							t.Errorf("deterministic %v, worker %d: error %q, want one with %q", det, r, msg, want)
						}
					}
				}
			})
		})
	}
}

// TestMultiWorkerNeedsWorld: the strategy is refused without a world.
func TestMultiWorkerNeedsWorld(t *testing.T) {
	_, err := spec{model: "mlp", oc: optim.Config{Name: "sgd", LR: 0.1}, world: nilWorld{}}.build(t)
	if err == nil || !strings.Contains(err.Error(), "no world") {
		t.Errorf("error %v", err)
	}
}

// nilWorld is a world of no workers.
type nilWorld struct{}

func (nilWorld) Rank() int                          { return 0 }
func (nilWorld) Size() int                          { return 0 }
func (nilWorld) AllreduceSum([]float32) error       { return errors.New("no workers") }
func (nilWorld) Allgather([]byte) ([][]byte, error) { return nil, errors.New("no workers") }
func (nilWorld) BcastBytes([]byte, int) ([]byte, error) {
	return nil, errors.New("no workers")
}
func (nilWorld) Fold(int, func([]float32) ([]float32, error)) ([]float32, error) {
	return nil, errors.New("no workers")
}
