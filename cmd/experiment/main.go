// Command experiment runs gotrain's small-data experiment (`make
// experiment`): the seed CNN trained on 1,000 Fashion-MNIST images (MNIST
// when Fashion-MNIST is not installed) five ways — plain, with
// augmentation, with weight decay, with early stopping, and with all three
// — with several seeds each, and a report of test accuracy and the
// train/test gap that sets gotrain's numbers beside those of a PyTorch
// script trained on the same data from the same initial weights.
//
//	experiment run    -out out/experiment [-epochs 40] [-seeds 1,2,3] [-configs plain,augment,...]
//	experiment report -dir out/experiment -o docs/EXPERIMENT.md
//
// run draws the data (a stratified subset of the training split, split
// 800/200 into training and validation), writes it with the settings and
// each seed's initial weights to the output folder as NPY and JSON for the
// PyTorch script (scripts/experiment_torch.py), trains every configuration
// and seed with the Go API, and writes the results to gotrain.json. report
// reads gotrain.json and, when present, torch.json, and writes the tables.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// Setup is one of the five ways of training.
type Setup struct {
	Name    string `json:"name"`
	Label   string `json:"label"`
	Augment bool   `json:"augment"`
	Decay   bool   `json:"weight_decay"`
	Early   bool   `json:"early_stopping"`
}

// Setups are the configurations, in table order.
var Setups = []Setup{
	{Name: "plain", Label: "plain"},
	{Name: "augment", Label: "+ augmentation", Augment: true},
	{Name: "decay", Label: "+ weight decay", Decay: true},
	{Name: "early", Label: "+ early stopping", Early: true},
	{Name: "all", Label: "all three", Augment: true, Decay: true, Early: true},
}

func setupByName(name string) (Setup, bool) {
	for _, s := range Setups {
		if s.Name == name {
			return s, true
		}
	}
	return Setup{}, false
}

// Settings are everything both frameworks must agree on; run writes them
// to settings.json, which the PyTorch script reads.
type Settings struct {
	Dataset     string   `json:"dataset"`
	Subset      int      `json:"subset"`
	SubsetSeed  uint64   `json:"subset_seed"`
	ValFraction float64  `json:"val_fraction"`
	SplitSeed   uint64   `json:"split_seed"`
	TrainSize   int      `json:"train_size"`
	ValSize     int      `json:"val_size"`
	TestSize    int      `json:"test_size"`
	Model       string   `json:"model"`
	Epochs      int      `json:"epochs"`
	BatchSize   int      `json:"batch_size"`
	Optimizer   string   `json:"optimizer"`
	LR          float64  `json:"lr"`
	WeightDecay float64  `json:"weight_decay"`
	DecayMode   string   `json:"decay_mode"`
	Augment     string   `json:"augment"`
	Rotation    float64  `json:"rotation_degrees"`
	Shift       float64  `json:"shift_fraction"`
	Zoom        float64  `json:"zoom"`
	Monitor     string   `json:"monitor"`
	Patience    int      `json:"patience"`
	Seeds       []uint64 `json:"seeds"`
	Configs     []string `json:"configs"`
	Threads     int      `json:"threads"`
}

// Run is the outcome of one configuration and seed.
type Run struct {
	Config    string  `json:"config"`
	Seed      uint64  `json:"seed"`
	TestAcc   float64 `json:"test_accuracy"`
	TestLoss  float64 `json:"test_loss"`
	TrainAcc  float64 `json:"train_accuracy"`
	TrainLoss float64 `json:"train_loss"`
	Epochs    int     `json:"epochs"`
	BestEpoch int     `json:"best_val_epoch"`
	Seconds   float64 `json:"seconds"`
}

// Results is what a framework's side of the experiment writes.
type Results struct {
	Framework string    `json:"framework"`
	Version   string    `json:"version"`
	Date      string    `json:"date"`
	Settings  Settings  `json:"settings"`
	Runs      []Run     `json:"runs"`
	Machine   string    `json:"machine,omitempty"`
	Began     time.Time `json:"-"`
}

func main() {
	if err := mainErr(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "experiment:", err)
		os.Exit(1)
	}
}

func mainErr(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("expected a command: run or report (experiment run -h, experiment report -h)")
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stdout, stderr)
	case "report":
		return cmdReport(args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: expected run or report", args[0])
}

func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(p), 10, 64)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("-seeds %q: expected positive integers separated by commas, e.g. 1,2,3", s)
		}
		out = append(out, v)
	}
	return out, nil
}

func parseConfigs(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if _, ok := setupByName(p); !ok {
			var names []string
			for _, s := range Setups {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("-configs: unknown configuration %q (have %s)", p, strings.Join(names, ", "))
		}
		out = append(out, p)
	}
	return out, nil
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("experiment run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "out/experiment", "output folder: data and initial weights as NPY, settings.json, gotrain.json")
	dataset := fs.String("dataset", "auto", "fashion-mnist, mnist, or auto (Fashion-MNIST when installed, else MNIST)")
	st := Settings{Subset: 1000, SubsetSeed: 2026, ValFraction: 0.2, SplitSeed: 2026, Model: "cnn", Optimizer: "adam",
		DecayMode: "l2", Monitor: "val_loss"}
	fs.IntVar(&st.Subset, "subset", st.Subset, "training images drawn (stratified) from the training split")
	fs.IntVar(&st.Epochs, "epochs", 40, "epochs (the most, with early stopping)")
	fs.IntVar(&st.BatchSize, "batch-size", 32, "batch size")
	fs.Float64Var(&st.LR, "lr", 1e-3, "Adam's learning rate")
	fs.Float64Var(&st.WeightDecay, "weight-decay", 5e-3, "L2 weight decay of the weight-decay configurations (added to the gradient of weights, not biases)")
	fs.StringVar(&st.Augment, "augment", "rotation=10,shift=0.1,zoom=0.1", "augmentation spec of the augmentation configurations (rotation, shift and zoom only)")
	fs.IntVar(&st.Patience, "patience", 5, "early stopping's patience in epochs (monitoring val_loss)")
	fs.IntVar(&st.Threads, "threads", 2, "CPU threads")
	seeds := fs.String("seeds", "1,2,3", "seeds (each drives initial weights, data order and augmentation)")
	configs := fs.String("configs", "plain,augment,decay,early,all", "configurations to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if st.Seeds, err = parseSeeds(*seeds); err != nil {
		return err
	}
	if st.Configs, err = parseConfigs(*configs); err != nil {
		return err
	}
	switch {
	case st.Epochs < 1:
		return fmt.Errorf("-epochs %d: must be at least 1", st.Epochs)
	case st.BatchSize < 1:
		return fmt.Errorf("-batch-size %d: must be at least 1", st.BatchSize)
	case !(st.LR > 0):
		return fmt.Errorf("-lr %g: must be positive", st.LR)
	case !(st.WeightDecay >= 0):
		return fmt.Errorf("-weight-decay %g: must not be negative", st.WeightDecay)
	case st.Patience < 0:
		return fmt.Errorf("-patience %d: must not be negative", st.Patience)
	case st.Threads < 1:
		return fmt.Errorf("-threads %d: must be at least 1", st.Threads)
	case st.Subset < 10:
		return fmt.Errorf("-subset %d: must be at least 10 (one image per class)", st.Subset)
	}
	ac, err := augment.ParseSpec(st.Augment)
	if err != nil {
		return fmt.Errorf("-augment: %w", err)
	}
	if err := torchAugment(ac, &st); err != nil {
		return err
	}

	trainSet, val, test, err := loadData(*dataset, &st, stdout)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(*out, "init"), 0o755); err != nil {
		return fmt.Errorf("-out %s: %w", *out, err)
	}
	if err := exportData(*out, trainSet, val, test); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(*out, "settings.json"), st); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res := Results{Framework: "gotrain", Version: "Go " + strings.TrimPrefix(runtime.Version(), "go"), Date: time.Now().UTC().Format("2006-01-02 15:04 MST"),
		Settings: st, Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), plural(st.Threads, "thread", "threads"))}
	began := time.Now()
	for _, seed := range st.Seeds {
		if err := exportInit(*out, seed); err != nil {
			return err
		}
	}
	for _, name := range st.Configs {
		s, _ := setupByName(name)
		for _, seed := range st.Seeds {
			r, err := runOne(ctx, s, seed, st, ac, trainSet, val, test)
			if err != nil {
				return fmt.Errorf("%s, seed %d: %w", s.Name, seed, err)
			}
			res.Runs = append(res.Runs, r)
			fmt.Fprintf(stdout, "gotrain  %-8s seed %d: test %.2f%%  train %.2f%%  gap %5.2f  epochs %2d (best val epoch %2d)  %.0fs\n",
				s.Name, seed, 100*r.TestAcc, 100*r.TrainAcc, 100*(r.TrainAcc-r.TestAcc), r.Epochs, r.BestEpoch, r.Seconds)
		}
	}
	path := filepath.Join(*out, "gotrain.json")
	if err := writeJSON(path, res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gotrain: %d runs in %s; results in %s\n", len(res.Runs), time.Since(began).Round(time.Second), path)
	return nil
}

// torchAugment checks that the augmentation spec uses only what the
// PyTorch script reproduces (rotation, shift, zoom with constant zero fill)
// and records those ranges in the settings.
func torchAugment(c augment.Config, st *Settings) error {
	want := augment.Config{RotationRange: c.RotationRange, WidthShift: c.WidthShift, HeightShift: c.WidthShift, ZoomRange: c.ZoomRange, Seed: c.Seed}
	if c.Seed != 0 {
		return fmt.Errorf("-augment %q: leave out seed=; each run's seed drives its augmentation", st.Augment)
	}
	if c.String() != want.String() || c.WidthShift >= 1 {
		return fmt.Errorf("-augment %q: the experiment (and its PyTorch script) supports rotation=DEG, shift=FRACTION (< 1) and zoom=V only", st.Augment)
	}
	if c.ZoomRange != [2]float64{} && math.Abs(c.ZoomRange[0]+c.ZoomRange[1]-2) > 1e-9 {
		return fmt.Errorf("-augment %q: zoom must be symmetric about 1 (zoom=V)", st.Augment)
	}
	st.Rotation, st.Shift = c.RotationRange, c.WidthShift
	if c.ZoomRange != [2]float64{} {
		st.Zoom = math.Round((c.ZoomRange[1]-1)*1e9) / 1e9
	}
	return nil
}

// loadData draws the experiment's data: a stratified subset of the
// training split, split into training and validation, and the whole test
// split, all scaled to [0, 1].
func loadData(name string, st *Settings, stdout io.Writer) (trainSet, val, test *data.Dataset, err error) {
	var full *data.Dataset
	switch name {
	case "auto":
		full, test, err = data.Builtin("fashion-mnist")
		st.Dataset = "fashion-mnist"
		if err != nil {
			fmt.Fprintf(stdout, "Fashion-MNIST is not available (%v); using MNIST\n", err)
			full, test, err = data.Builtin("mnist")
			st.Dataset = "mnist"
		}
	case "fashion-mnist", "mnist":
		full, test, err = data.Builtin(name)
		st.Dataset = name
	default:
		return nil, nil, nil, fmt.Errorf("-dataset %q: expected fashion-mnist, mnist or auto", name)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if test == nil {
		return nil, nil, nil, fmt.Errorf("dataset %s has no test split", st.Dataset)
	}
	sub, err := full.StratifiedSubset(st.Subset, st.SubsetSeed)
	if err != nil {
		return nil, nil, nil, err
	}
	if trainSet, val, err = sub.Split(st.ValFraction, st.SplitSeed); err != nil {
		return nil, nil, nil, err
	}
	for _, d := range []*data.Dataset{trainSet, val, test} {
		d.Rescale(1 / 255.0)
	}
	st.TrainSize, st.ValSize, st.TestSize = trainSet.Len(), val.Len(), test.Len()
	fmt.Fprintf(stdout, "data: %s, %d training images drawn (stratified, seed %d) and split %d train / %d validation; %d test images\n",
		st.Dataset, st.Subset, st.SubsetSeed, st.TrainSize, st.ValSize, st.TestSize)
	return trainSet, val, test, nil
}

// exportData writes the three datasets as NPY (images float32 [N, 1, 28,
// 28] in [0, 1], labels int64 [N]) for the PyTorch script.
func exportData(dir string, sets ...*data.Dataset) error {
	for i, name := range []string{"train", "val", "test"} {
		d := sets[i]
		if err := tensor.WriteNPYFile(filepath.Join(dir, name+"_x.npy"), d.X); err != nil {
			return err
		}
		if err := tensor.WriteNPYFile(filepath.Join(dir, name+"_y.npy"), d.Y); err != nil {
			return err
		}
	}
	return nil
}

func buildModel(seed uint64) (*graph.Model, error) {
	return models.Build("cnn", models.Options{Input: []int{1, 28, 28}, Classes: 10, Seed: seed})
}

// exportInit writes the initial weights of a seed's model, one NPY file per
// initializer, so the PyTorch script starts from the same weights.
func exportInit(dir string, seed uint64) error {
	m, err := buildModel(seed)
	if err != nil {
		return err
	}
	d := filepath.Join(dir, "init", fmt.Sprintf("seed%d", seed))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	for _, name := range m.Graph.InitializerNames() {
		if err := tensor.WriteNPYFile(filepath.Join(d, name+".npy"), m.Graph.Initializer(name)); err != nil {
			return err
		}
	}
	return nil
}

// runOne trains one configuration with one seed and evaluates the result
// (the restored best weights, with early stopping) on the training images
// and the test split.
func runOne(ctx context.Context, s Setup, seed uint64, st Settings, ac augment.Config, trainSet, val, test *data.Dataset) (Run, error) {
	began := time.Now()
	m, err := buildModel(seed)
	if err != nil {
		return Run{}, err
	}
	cfg := train.Config{Epochs: st.Epochs, BatchSize: st.BatchSize, Seed: seed, Strategy: "single",
		Backend: cpu.New(cpu.Options{Threads: st.Threads}),
		Optim:   optim.Config{Name: st.Optimizer, LR: st.LR}}
	if s.Augment {
		ac.Seed = seed
		a, err := augment.New(ac, trainSet.SampleShape())
		if err != nil {
			return Run{}, err
		}
		cfg.Transform = a
	}
	if s.Decay {
		cfg.Optim.WeightDecay = st.WeightDecay
		cfg.Optim.DecayMode = optim.DecayL2
	}
	if s.Early {
		es := checkpoint.NewEarlyStopping(st.Monitor, st.Patience)
		es.RestoreBestWeights = true
		cfg.Callbacks = append(cfg.Callbacks, es)
	}
	tr, err := train.NewTrainer(m, cfg)
	if err != nil {
		return Run{}, err
	}
	// Every configuration sees the validation set, so every history has
	// val_loss; only early stopping acts on it.
	res, err := tr.Fit(ctx, trainSet, val)
	if err != nil {
		return Run{}, err
	}
	trainLogs, err := tr.Evaluate(ctx, trainSet)
	if err != nil {
		return Run{}, err
	}
	testLogs, err := tr.Evaluate(ctx, test)
	if err != nil {
		return Run{}, err
	}
	r := Run{Config: s.Name, Seed: seed, TestAcc: testLogs["accuracy"], TestLoss: testLogs["loss"],
		TrainAcc: trainLogs["accuracy"], TrainLoss: trainLogs["loss"], Epochs: res.Epochs, Seconds: time.Since(began).Seconds()}
	best := 0.0
	for i, l := range res.History {
		if v, ok := l["val_loss"]; ok && (r.BestEpoch == 0 || v < best) {
			r.BestEpoch, best = i+1, v
		}
	}
	return r, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(r.Runs) == 0 {
		return nil, fmt.Errorf("%s: no runs", path)
	}
	for i, run := range r.Runs {
		if _, ok := setupByName(run.Config); !ok {
			return nil, fmt.Errorf("%s: run %d has unknown configuration %q", path, i, run.Config)
		}
		for _, v := range []float64{run.TestAcc, run.TrainAcc} {
			if !(v >= 0 && v <= 1) {
				return nil, fmt.Errorf("%s: run %d (%s, seed %d): accuracy %v outside [0, 1]", path, i, run.Config, run.Seed, v)
			}
		}
	}
	return &r, nil
}
