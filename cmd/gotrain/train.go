package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/mpi"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/strategy"
	"github.com/gotrain/gotrain/train"
)

// trainFlags are the train command's settings; a YAML or JSON config file
// sets the same keys, and flags given on the command line override it.
type trainFlags struct {
	Model          string  `json:"model"`
	Input          string  `json:"input"`
	Classes        int     `json:"classes"`
	Data           string  `json:"data"`
	Subset         int     `json:"subset"`
	ValSplit       float64 `json:"val_split"`
	ValData        string  `json:"val_data"`
	Resize         string  `json:"resize"`
	Scale          string  `json:"scale"`
	Epochs         int     `json:"epochs"`
	BatchSize      int     `json:"batch_size"`
	Shuffle        bool    `json:"shuffle"`
	Optimizer      string  `json:"optimizer"`
	LR             float64 `json:"lr"`
	Momentum       float64 `json:"momentum"`
	Schedule       string  `json:"schedule"`
	WeightDecay    float64 `json:"weight_decay"`
	DecayMode      string  `json:"decay_mode"`
	DecayBiasNorm  bool    `json:"decay_bias_norm"`
	ClipNorm       float64 `json:"clip_norm"`
	Loss           string  `json:"loss"`
	LabelSmoothing float64 `json:"label_smoothing"`
	Augment        string  `json:"augment"`
	EarlyStopping  string  `json:"early_stopping"`
	Plateau        string  `json:"reduce_lr_on_plateau"`
	Out            string  `json:"out"`
	SaveBestOnly   bool    `json:"save_best_only"`
	Resume         string  `json:"resume"`
	Strategy       string  `json:"strategy"`
	Replicas       int     `json:"replicas"`
	Backend        string  `json:"backend"`
	Threads        int     `json:"threads"`
	Seed           uint64  `json:"seed"`
	Freeze         string  `json:"freeze"`
	Reduction      string  `json:"reduction"`
	TopK           int     `json:"top_k"`
	Deterministic  bool    `json:"deterministic"`
	ShardSize      int     `json:"shard_size"`
	SyncBatchNorm  bool    `json:"sync_batchnorm"`
	WorkerTimeout  float64 `json:"worker_timeout"`

	args []string // the command line, for the resume hint
}

func defaultTrainFlags() trainFlags {
	return trainFlags{Data: "mnist", Scale: "auto", ValSplit: 0.1, Epochs: 10, BatchSize: 32, Shuffle: true, Optimizer: "adam",
		DecayMode: "l2", Loss: "cross_entropy", Out: "out", SaveBestOnly: true, Strategy: "single", Backend: "cpu", Seed: 1, WorkerTimeout: 60}
}

func newTrainCmd(cmdline []string) *cobra.Command {
	f := defaultTrainFlags()
	var config string
	cmd := &cobra.Command{
		Use:   "train",
		Short: "train a model (the default command)",
		Long: `Train a model: an ONNX file or a built-in model, on a built-in dataset, an
image folder, an .npz file or X.npy,Y.npy. Writes best_model.onnx,
last_model.onnx, history.csv/json, curves.png and state.ckpt to --out, and
ends with an overfitting report: the train/validation gap at the best and
last epoch, where validation loss stopped improving, and which defences
(augmentation, weight decay, early stopping) were off.`,
		Example: `  gotrain train --model cnn.onnx --data mnist --strategy mirrored
  gotrain train --model cnn --input 1x28x28 --data fashion-mnist --subset 1000 --augment rotation=10,shift=0.1 \
      --weight-decay 5e-4 --early-stopping val_loss:5 --out out/run1
  gotrain train --model mlp --input 784 --data mnist --reduce-lr-on-plateau val_loss:3,factor=0.5
  gotrain train --config run.yaml --epochs 20`,
		Args: noArgs,
	}
	fs := cmd.Flags()
	fs.StringVar(&config, "config", "", "YAML or JSON file: flat keys named as the flags (batch_size or batch-size) or nested sections (optimizer:, augment:, schedule:, early_stopping:, reduce_lr_on_plateau:); flags override it")
	f.define(fs)
	registerTrainCompletions(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := f.applyConfig(config, fs); err != nil {
			return err
		}
		f.args = cmdline
		if len(cmdline) > 0 && cmdline[0] == "train" {
			f.args = cmdline[1:]
		}
		return runTrain(f, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	return cmd
}

// applyConfig reads a config file (when path is not "") into f, keeping
// the settings the command line gave (parsed into f from fs).
func (f *trainFlags) applyConfig(path string, fs *pflag.FlagSet) error {
	if path == "" {
		return nil
	}
	g := defaultTrainFlags()
	if err := readConfig(path, &g); err != nil {
		return err
	}
	if err := overrideFromFlags(&g, f, fs); err != nil {
		return err
	}
	*f = g
	return nil
}

// define declares the train command's flags on fs, bound to f's fields.
// A flag's name is its field's json key with "-" for "_" (config files
// use either), so overrideFromFlags and readConfig find the field.
func (f *trainFlags) define(fs *pflag.FlagSet) {
	fs.StringVar(&f.Model, "model", f.Model, "ONNX file, or a built-in model name (see 'gotrain models list')")
	fs.StringVar(&f.Input, "input", f.Input, "sample shape CxHxW for a built-in model, or a feature count (784) for the MLP (default: the data's)")
	fs.IntVar(&f.Classes, "classes", f.Classes, "class count of a built-in model and of the data, whose labels may use only some of them (0: the data's)")
	fs.StringVar(&f.Data, "data", f.Data, "dataset: mnist, fashion-mnist, digits, an image folder, an .npz file, or X.npy,Y.npy")
	fs.IntVar(&f.Subset, "subset", f.Subset, "train on a stratified subset of N samples (0: all)")
	fs.Float64Var(&f.ValSplit, "val-split", f.ValSplit, "fraction held out for validation (stratified, seeded) when --val-data is not set; 0: no validation (nothing then measures overfitting)")
	fs.StringVar(&f.ValData, "val-data", f.ValData, "validation dataset (same forms as --data; 'test' for the dataset's test split)")
	fs.StringVar(&f.Resize, "resize", f.Resize, "resize image-folder samples to HxW")
	fs.StringVar(&f.Scale, "scale", f.Scale, scaleUsage)
	fs.IntVar(&f.Epochs, "epochs", f.Epochs, "epochs")
	fs.IntVar(&f.BatchSize, "batch-size", f.BatchSize, "global batch size")
	fs.BoolVar(&f.Shuffle, "shuffle", f.Shuffle, "shuffle the training data each epoch (an order drawn from --seed and the epoch); --shuffle=false keeps the stored order")
	fs.StringVar(&f.Optimizer, "optimizer", f.Optimizer, "sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad")
	fs.Float64Var(&f.LR, "lr", f.LR, "learning rate (0: the optimizer's PyTorch default)")
	fs.Float64Var(&f.Momentum, "momentum", f.Momentum, "momentum in [0, 1) (sgd, momentum, nesterov, rmsprop)")
	fs.StringVar(&f.Schedule, "schedule", f.Schedule, "learning-rate schedule, e.g. cosine:warmup=500 or step:size=10,gamma=0.1")
	fs.Float64Var(&f.WeightDecay, "weight-decay", f.WeightDecay, "weight decay coefficient (of weights only, unless --decay-bias-norm)")
	fs.StringVar(&f.DecayMode, "decay-mode", f.DecayMode, "l2 (added to the gradient) or decoupled (AdamW-style; adamw always decouples)")
	fs.BoolVar(&f.DecayBiasNorm, "decay-bias-norm", f.DecayBiasNorm, "decay biases and normalization scales and shifts too (PyTorch's default)")
	fs.Float64Var(&f.ClipNorm, "clip-norm", f.ClipNorm, "clip gradients by global norm (0: off)")
	fs.StringVar(&f.Loss, "loss", f.Loss, "cross_entropy, cross_entropy_onehot, bce, mse or l1 (these four on the class labels one-hot encoded), or graph (the model computes it)")
	fs.Float64Var(&f.LabelSmoothing, "label-smoothing", f.LabelSmoothing, "label smoothing for cross-entropy")
	fs.StringVar(&f.Augment, "augment", f.Augment, "augmentation spec, e.g. rotation=20,shift=0.1,hflip,zoom=0.1")
	fs.StringVar(&f.EarlyStopping, "early-stopping", f.EarlyStopping, "MONITOR:PATIENCE, e.g. val_loss:5 (restores the best weights)")
	fs.StringVar(&f.Plateau, "reduce-lr-on-plateau", f.Plateau, "MONITOR:PATIENCE[,factor=0.1][,min_lr=0][,cooldown=0][,min_delta=1e-4]: lower the learning rate when MONITOR stalls (Keras' ReduceLROnPlateau)")
	fs.StringVar(&f.Out, "out", f.Out, "output folder: best_model.onnx, last_model.onnx, history.csv/json, curves.png, state.ckpt")
	fs.BoolVar(&f.SaveBestOnly, "save-best-only", f.SaveBestOnly, "write best_model.onnx only when the validation loss improves")
	fs.StringVar(&f.Resume, "resume", f.Resume, "continue from a training-state file (state.ckpt)")
	fs.StringVar(&f.Strategy, "strategy", f.Strategy, "single, mirrored, or multiworker (one of the processes of 'mpirun -np N gotrain train ...': see README)")
	fs.IntVar(&f.Replicas, "replicas", f.Replicas, "mirrored replicas (0: one per core, or one per GPU); multiworker: each worker's local replicas (0: one)")
	fs.StringVar(&f.Backend, "backend", f.Backend, "backend: cpu, or cuda in a build with CUDA (make build-cuda)")
	fs.IntVar(&f.Threads, "threads", f.Threads, "worker threads (0: all cores)")
	fs.Uint64Var(&f.Seed, "seed", f.Seed, "random seed (initial weights of a built-in model, data order, augmentation, dropout)")
	fs.StringVar(&f.Freeze, "freeze", f.Freeze, "comma-separated parameter names or globs to keep constant")
	fs.StringVar(&f.Reduction, "reduction", f.Reduction, "the loss's reduction over a batch: mean or sum")
	fs.IntVar(&f.TopK, "top-k", f.TopK, "also report top-K validation accuracy (0: 5 when there are at least 10 classes)")
	fs.BoolVar(&f.Deterministic, "deterministic", f.Deterministic, "bit-identical results whatever the strategy and replica count (slower: see README)")
	fs.IntVar(&f.ShardSize, "shard-size", f.ShardSize, "micro-shard size of --deterministic (0: 8)")
	fs.BoolVar(&f.SyncBatchNorm, "sync-batchnorm", f.SyncBatchNorm, "mirrored, multiworker: compute BatchNorm statistics over all replicas (of all workers)")
	fs.Float64Var(&f.WorkerTimeout, "worker-timeout", f.WorkerTimeout, "multiworker: seconds a worker waits in a collective for a live worker that does not arrive (a worker silent for 10 s counts as lost)")
}

// validate checks every setting before any work starts.
func (f *trainFlags) validate() error {
	if f.Augment == "none" {
		f.Augment = "" // one spelling of "no augmentation" from here on
	}
	switch {
	case f.Model == "":
		return usagef("--model is required (an .onnx file or one of %v)", models.Names())
	case f.Reduction != "" && f.Reduction != "mean" && f.Reduction != "sum":
		return usagef("--reduction %q: expected mean or sum", f.Reduction)
	case f.TopK < 0:
		return usagef("--top-k %d: must not be negative", f.TopK)
	case f.ShardSize < 0:
		return usagef("--shard-size %d: must not be negative", f.ShardSize)
	case f.Epochs < 1:
		return usagef("--epochs %d: must be at least 1", f.Epochs)
	case f.BatchSize < 1:
		return usagef("--batch-size %d: must be at least 1", f.BatchSize)
	case !(f.ValSplit >= 0 && f.ValSplit < 1): // NaN included
		return usagef("--val-split %g: must be in [0, 1)", f.ValSplit)
	case f.LR < 0:
		return usagef("--lr %g: must not be negative", f.LR)
	case f.WeightDecay < 0:
		return usagef("--weight-decay %g: must not be negative", f.WeightDecay)
	case f.DecayMode != "l2" && f.DecayMode != "decoupled":
		return usagef("--decay-mode %q: expected l2 or decoupled", f.DecayMode)
	case f.Strategy != "single" && f.Strategy != "mirrored" && f.Strategy != "multiworker":
		return usagef("--strategy %q: expected single, mirrored or multiworker", f.Strategy)
	case !(f.WorkerTimeout > 0):
		return usagef("--worker-timeout %g: must be positive (seconds)", f.WorkerTimeout)
	case f.Replicas < 0:
		return usagef("--replicas %d: must not be negative", f.Replicas)
	case f.Threads < 0:
		return usagef("--threads %d: must not be negative", f.Threads)
	case f.Subset < 0:
		return usagef("--subset %d: must not be negative", f.Subset)
	case f.Classes < 0:
		return usagef("--classes %d: must not be negative", f.Classes)
	case !(f.LabelSmoothing >= 0 && f.LabelSmoothing < 1):
		return usagef("--label-smoothing %g: must be in [0, 1)", f.LabelSmoothing)
	case f.Momentum < 0 || f.Momentum >= 1:
		return usagef("--momentum %g: must be in [0, 1)", f.Momentum)
	}
	if f.Strategy == "single" && f.Replicas > 1 {
		return usagef("--replicas %d needs --strategy mirrored", f.Replicas)
	}
	if err := f.checkUnused(); err != nil {
		return err
	}
	if _, err := os.Stat(f.Model); err != nil && strings.HasSuffix(f.Model, ".onnx") {
		return usagef("--model: %v", err)
	}
	if !isModelFile(f.Model) && !slices.Contains(models.Names(), f.Model) {
		return usagef("--model %q: no such .onnx file, and not a built-in model (%s)", f.Model, strings.Join(models.Names(), ", "))
	}
	if f.Input != "" {
		in, err := parseInput(f.Input)
		if err != nil {
			return usagef("--input: %v", err)
		}
		if !isModelFile(f.Model) && len(in) == 1 && !models.TakesFlatInput(f.Model) {
			return usagef("--input %s: %s takes CxHxW input, e.g. 1x28x28 (a feature count is for models that flatten their input: %s)", f.Input, f.Model, strings.Join(flatModels(), ", "))
		}
	}
	if f.Resize != "" {
		if _, _, err := parseHW(f.Resize); err != nil {
			return err
		}
		if !isFolder(f.Data) {
			return usagef("--resize %s resizes the images of an image folder; --data %q is not one (its samples have one size)", f.Resize, f.Data)
		}
	}
	if _, err := data.ParseScale(f.Scale); err != nil {
		return usagef("--scale: %v", err)
	}
	switch graph.Loss(f.Loss) {
	case graph.CrossEntropy, graph.CrossEntropyOneHot, graph.BCEWithLogits, graph.MSE, graph.L1, graph.GraphLoss:
	default:
		return usagef("--loss %q: expected cross_entropy, cross_entropy_onehot, bce, mse, l1 or graph", f.Loss)
	}
	if _, err := f.optimConfig(); err != nil {
		return err
	}
	if err := checkDataSpec("--data", f.Data); err != nil {
		return err
	}
	if f.ValData != "" && f.ValData != "test" {
		if err := checkDataSpec("--val-data", f.ValData); err != nil {
			return err
		}
	}
	if rank, _, _ := mpi.Launched(); f.Resume != "" && rank == 0 { // worker 0 reads it for all
		if _, err := os.Stat(f.Resume); err != nil {
			return usagef("--resume: %v", err)
		}
	}
	if f.Augment != "" {
		if _, err := augment.ParseSpec(f.Augment); err != nil {
			return usagef("--augment: %v", err)
		}
	}
	noVal := f.ValSplit == 0 && f.ValData == ""
	if f.EarlyStopping != "" {
		mon, _, err := parseEarly(f.EarlyStopping)
		if err != nil {
			return err
		}
		if noVal && strings.HasPrefix(mon, "val_") {
			return usagef("--early-stopping %s: monitors %s, but --val-split 0 and no --val-data leave no validation data", f.EarlyStopping, mon)
		}
	}
	if f.Plateau != "" {
		r, err := parsePlateau(f.Plateau)
		if err != nil {
			return err
		}
		if noVal && strings.HasPrefix(r.Monitor, "val_") {
			return usagef("--reduce-lr-on-plateau %s: monitors %s, but --val-split 0 and no --val-data leave no validation data", f.Plateau, r.Monitor)
		}
	}
	return nil
}

// checkUnused refuses settings that this run would ignore, naming what
// they need: a setting that silently does nothing is a run other than the
// one the user asked for.
func (f *trainFlags) checkUnused() error {
	loss := graph.Loss(f.Loss)
	noVal := f.ValSplit == 0 && f.ValData == ""
	switch {
	case f.LabelSmoothing != 0 && loss != graph.CrossEntropy && loss != graph.CrossEntropyOneHot:
		return usagef("--label-smoothing %g applies to cross-entropy (cross_entropy, cross_entropy_onehot), not to --loss %s", f.LabelSmoothing, f.Loss)
	case f.Input != "" && isModelFile(f.Model):
		return usagef("--input %s shapes a built-in model; %s is an ONNX file, whose input shape is its own", f.Input, f.Model)
	case f.SyncBatchNorm && f.Strategy != "mirrored" && f.Strategy != "multiworker":
		return usagef("--sync-batchnorm computes BatchNorm statistics over replicas or workers: it needs --strategy mirrored or multiworker")
	case f.ShardSize != 0 && !f.Deterministic:
		return usagef("--shard-size %d is the micro-shard size of --deterministic, which is off", f.ShardSize)
	case f.DecayBiasNorm && f.WeightDecay == 0:
		return usagef("--decay-bias-norm says which parameters weight decay shrinks; it needs --weight-decay")
	case f.DecayMode == "decoupled" && f.WeightDecay == 0:
		return usagef("--decay-mode decoupled says how weight decay is applied; it needs --weight-decay")
	case f.TopK != 0 && noVal:
		return usagef("--top-k %d is a validation metric, but --val-split 0 and no --val-data leave no validation data", f.TopK)
	}
	return nil
}

// isFolder says whether path is an existing folder.
func isFolder(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// plateauKeys are the options of --reduce-lr-on-plateau after
// MONITOR:PATIENCE, as Keras names them.
var plateauKeys = []string{"factor", "min_lr", "cooldown", "min_delta"}

// parsePlateau reads --reduce-lr-on-plateau's
// MONITOR:PATIENCE[,factor=F][,min_lr=LR][,cooldown=N][,min_delta=D] into
// the callback, with Keras' defaults for what is not given.
func parsePlateau(s string) (*checkpoint.ReduceLROnPlateau, error) {
	usage := func(format string, args ...any) error {
		return usagef("--reduce-lr-on-plateau %q: %s (form: MONITOR:PATIENCE[,factor=0.1][,min_lr=0][,cooldown=0][,min_delta=1e-4], e.g. val_loss:3,factor=0.5)", s, fmt.Sprintf(format, args...))
	}
	head, rest, _ := strings.Cut(s, ",")
	mon, pat, ok := strings.Cut(head, ":")
	p, err := strconv.Atoi(pat)
	if !ok || err != nil || p < 0 || mon == "" {
		return nil, usage("expected MONITOR:PATIENCE first")
	}
	if !slices.Contains([]string{"loss", "accuracy", "val_loss", "val_accuracy"}, mon) {
		return nil, usage("monitor %q: expected loss, accuracy, val_loss or val_accuracy", mon)
	}
	r := checkpoint.NewReduceLROnPlateau()
	r.Monitor, r.Patience = mon, p
	seen := map[string]bool{}
	for _, kv := range strings.Split(rest, ",") {
		if rest == "" {
			break
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !slices.Contains(plateauKeys, k) {
			return nil, usage("%q: expected key=value with key one of %s", kv, strings.Join(plateauKeys, ", "))
		}
		if seen[k] {
			return nil, usage("%s given twice", k)
		}
		seen[k] = true
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, usage("%s=%s: expected a number", k, v)
		}
		switch k {
		case "factor":
			if !(x > 0 && x < 1) {
				return nil, usage("factor=%s: expected a number in (0, 1)", v)
			}
			r.Factor = x
		case "min_lr":
			if x < 0 {
				return nil, usage("min_lr=%s: must not be negative", v)
			}
			r.MinLR = x
		case "cooldown":
			if x < 0 || x != math.Trunc(x) {
				return nil, usage("cooldown=%s: expected a whole number of epochs", v)
			}
			r.Cooldown = int(x)
		case "min_delta":
			if x < 0 {
				return nil, usage("min_delta=%s: must not be negative", v)
			}
			r.MinDelta = x
		}
	}
	return r, nil
}

func parseEarly(s string) (string, int, error) {
	mon, pat, ok := strings.Cut(s, ":")
	p, err := strconv.Atoi(pat)
	if !ok || err != nil || p < 0 || mon == "" {
		return "", 0, usagef("--early-stopping %q: expected MONITOR:PATIENCE, e.g. val_loss:5", s)
	}
	if !slices.Contains([]string{"loss", "accuracy", "val_loss", "val_accuracy"}, mon) {
		return "", 0, usagef("--early-stopping %q: monitor %q: expected loss, accuracy, val_loss or val_accuracy", s, mon)
	}
	return mon, p, nil
}

// optimConfig turns the optimizer flags into an optim.Config and checks
// it, naming the flag of a bad field.
func (f *trainFlags) optimConfig() (optim.Config, error) {
	oc := optim.Config{Name: f.Optimizer, LR: f.LR, Momentum: f.Momentum, WeightDecay: f.WeightDecay, DecayBiasNorm: f.DecayBiasNorm, ClipNorm: f.ClipNorm}
	oc.DecayMode = optim.DecayL2
	if f.DecayMode == "decoupled" {
		oc.DecayMode = optim.DecayDecoupled
	}
	if strings.EqualFold(f.Optimizer, "adamw") {
		oc.DecayMode = optim.DecayDecoupled // what AdamW is
	}
	if f.Schedule != "" {
		sc, err := optim.ParseSchedule(f.Schedule)
		if err != nil {
			return oc, usagef("--schedule: %v", err)
		}
		oc.Schedule = sc
	}
	if _, err := oc.Normalized(); err != nil {
		flagOf := map[string]string{"Name": "--optimizer", "LR": "--lr", "Momentum": "--momentum",
			"WeightDecay": "--weight-decay", "ClipNorm": "--clip-norm", "DecayMode": "--decay-mode"}
		var fe *optim.FieldError
		if errors.As(err, &fe) {
			name := flagOf[fe.Field]
			if name == "" && strings.HasPrefix(fe.Field, "Schedule") {
				name = "--schedule"
			}
			if name != "" {
				return oc, usagef("%s: %s", name, fe.Msg)
			}
		}
		return oc, usagef("optimizer flags: %v", err)
	}
	return oc, nil
}

// isModelFile says whether --model names an ONNX file rather than a
// built-in model.
func isModelFile(spec string) bool {
	if st, err := os.Stat(spec); err == nil && !st.IsDir() {
		return true
	}
	return strings.HasSuffix(spec, ".onnx")
}

// parseHW reads --resize's HxW.
func parseHW(s string) (int, int, error) {
	h, w, ok := strings.Cut(s, "x")
	hi, err1 := strconv.Atoi(h)
	wi, err2 := strconv.Atoi(w)
	if !ok || err1 != nil || err2 != nil || hi <= 0 || wi <= 0 {
		return 0, 0, usagef("--resize %q: expected HxW, e.g. 32x32", s)
	}
	return hi, wi, nil
}

// checkDataSpec checks that a dataset flag names a built-in dataset or
// files that exist, before anything is loaded.
func checkDataSpec(flagName, spec string) error {
	if slices.Contains(data.BuiltinNames(), spec) {
		return nil
	}
	files := []string{spec}
	if x, y, ok := strings.Cut(spec, ","); ok {
		files = []string{x, y}
	}
	for _, p := range files {
		if _, err := os.Stat(p); err != nil {
			return usagef("%s %q: not a built-in dataset (%s), an .npz file, X.npy,Y.npy, or a folder: %v", flagName, spec, strings.Join(data.BuiltinNames(), ", "), err)
		}
	}
	return nil
}

// loadData resolves --data into a training and (maybe) test dataset.
func loadData(spec string, resize string) (trainSet, test *data.Dataset, err error) {
	for _, n := range data.BuiltinNames() {
		if spec == n {
			return data.Builtin(spec)
		}
	}
	if x, y, ok := strings.Cut(spec, ","); ok {
		d, err := data.LoadNPY(x, y, 0)
		return d, nil, err
	}
	if strings.HasSuffix(spec, ".npz") {
		d, err := data.LoadNPZ(spec, "", "", 0)
		return d, nil, err
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, nil, usagef("--data %q: not a built-in dataset (%v), an .npz file, X.npy,Y.npy, or a folder: %v", spec, data.BuiltinNames(), err)
	}
	if !st.IsDir() {
		return nil, nil, usagef("--data %q: expected a folder of class subfolders, an .npz file, or X.npy,Y.npy", spec)
	}
	var o data.FolderOptions
	if resize != "" {
		if o.Height, o.Width, err = parseHW(resize); err != nil {
			return nil, nil, err
		}
	}
	d, err := data.LoadImageFolder(spec, o)
	return d, nil, err
}

// parseShape reads a sample shape CxHxW.
func parseShape(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, "x") {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, usagef("shape %q: expected CxHxW with positive integers, e.g. 1x28x28", s)
		}
		out = append(out, n)
	}
	if len(out) != 3 {
		return nil, usagef("shape %q: expected three dims CxHxW", s)
	}
	return out, nil
}

// parseInput reads a built-in model's --input: a sample shape CxHxW, or a
// feature count (784) for a model that flattens its input.
func parseInput(s string) ([]int, error) {
	if !strings.Contains(s, "x") {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, usagef("shape %q: expected CxHxW (e.g. 1x28x28) or a feature count (e.g. 784)", s)
		}
		return []int{n}, nil
	}
	return parseShape(s)
}

// flatModels lists the built-in models that take a feature count.
func flatModels() []string {
	var out []string
	for _, n := range models.Names() {
		if models.TakesFlatInput(n) {
			out = append(out, n)
		}
	}
	return out
}

// loadModel reads an .onnx file or builds a zoo model for the data.
func loadModel(spec, input string, classes int, d *data.Dataset, seed uint64) (*graph.Model, error) {
	if isModelFile(spec) {
		return graph.Load(spec)
	}
	shape := []int{}
	if input != "" {
		s, err := parseInput(input)
		if err != nil {
			return nil, err
		}
		shape = s
	} else if d != nil {
		ss := d.SampleShape()
		shape = []int{ss.C, ss.H, ss.W}
	}
	if d != nil && classes == 0 {
		classes = d.Classes
	}
	o := models.Options{Input: shape, Classes: classes, Seed: seed}
	m, err := models.Build(spec, o)
	if errors.Is(err, models.ErrInputTooSmall) {
		return nil, tooSmall(spec, o, err)
	}
	return m, err
}

// tooSmall explains a built-in model that does not fit its input: the
// layer that runs out of pixels (in err), the smallest square input the
// model takes, and the built-in models that take this input.
func tooSmall(name string, o models.Options, err error) error {
	c := o.Input[0]
	need := ""
	for s := 1; s <= 512; s++ {
		if _, e := models.Build(name, models.Options{Input: []int{c, s, s}, Classes: o.Classes}); e == nil {
			need = fmt.Sprintf("; %s needs at least %dx%d pixels: --resize %dx%d (image folders) or larger", name, s, s, s, s)
			break
		}
	}
	var fit []string
	for _, n := range models.Names() {
		if _, e := models.Build(n, models.Options{Input: o.Input, Classes: o.Classes}); e == nil {
			fit = append(fit, n)
		}
	}
	alt := ""
	if len(fit) > 0 {
		alt = fmt.Sprintf(", or a built-in model that fits %s: %s", dimsString(o.Input), strings.Join(fit, ", "))
	}
	return fmt.Errorf("model %s for input %s: %w%s%s", name, dimsString(o.Input), err, need, alt)
}

func openBackend(name string, devices, threads int) (backend.Backend, error) {
	opts := map[string]string{}
	if devices > 0 {
		opts["devices"] = strconv.Itoa(devices)
	}
	if threads > 0 {
		opts["threads"] = strconv.Itoa(threads)
	}
	b, err := backend.Open(name, opts)
	if err != nil {
		return nil, usagef("--backend: %v", err)
	}
	return b, nil
}

func runTrain(f trainFlags, stdout, stderr io.Writer) error {
	if err := f.validate(); err != nil {
		return err
	}
	w, err := openWorld(&f)
	if err != nil {
		return err
	}
	interrupted, err := train1(f, w, stdout)
	return w.end(err, interrupted)
}

// train1 is one process's part of a training run (the only one, or a
// worker of a multi-worker run); it reports whether Ctrl-C stopped it.
func train1(f trainFlags, w *world, stdout io.Writer) (bool, error) {
	primary := w.primary()
	if !primary {
		stdout = io.Discard // worker 0 prints for all
	}
	devices, threads := 1, f.Threads
	switch f.Strategy {
	case "mirrored":
		devices = f.Replicas
		if devices == 0 && f.Backend == "cpu" {
			devices = max(1, threadsOf(f.Threads))
		}
		// Elsewhere 0 leaves it to the backend: one device per GPU.
	case "multiworker":
		devices = max(1, f.Replicas)
		if threads == 0 {
			threads = workerThreads()
		}
	}
	b, err := openBackend(f.Backend, devices, threads)
	if err != nil {
		return false, err
	}
	oc, err := f.optimConfig()
	if err != nil {
		return false, err
	}
	if primary { // the output folder is worker 0's
		if err := os.MkdirAll(f.Out, 0o755); err != nil {
			return false, fmt.Errorf("--out %s: %w", f.Out, err)
		}
		lock, err := lockOut(f.Out, stdout)
		if err != nil {
			return false, err
		}
		defer lock.Unlock()
	}
	if f.Strategy == "mirrored" || f.Strategy == "multiworker" {
		f.Replicas = devices // stored resolved, so that a resume can compare it
	}
	resume, err := openResume(&f, w.readShared)
	if err != nil {
		return false, err
	}
	best := filepath.Join(f.Out, "best_model.onnx")
	last := filepath.Join(f.Out, "last_model.onnx")
	statePath := filepath.Join(f.Out, "state.ckpt")
	for _, p := range []string{best, last, statePath} {
		if !primary {
			break
		}
		if err := checkpoint.CheckWritable(p); err != nil {
			return false, fmt.Errorf("--out: %w", err)
		}
	}
	trainSet, test, err := loadData(f.Data, f.Resize)
	if err != nil {
		return false, err
	}
	if err := setClasses(f.Classes, trainSet, test); err != nil {
		return false, err
	}
	loaded := trainSet // label errors name samples by their place in the file
	features := isFeatures(trainSet)
	if f.Augment != "" && features {
		return false, usagef("--augment %s: the samples of %s are %d features each (an [N, F] array), not images; augmentation warps images",
			f.Augment, trainSet.Source, trainSet.SampleShape().Size())
	}
	// One input scale for the run; validation and test data as the
	// training data.
	scale, err := newRunScale(f.Scale, trainSet)
	if err != nil {
		return false, err
	}
	if err := resume.checkScale(scale, f.Scale); err != nil {
		return false, err
	}
	for _, d := range []*data.Dataset{trainSet, test} {
		if err := scale.apply(d); err != nil {
			return false, err
		}
	}
	if f.Subset > 0 {
		if trainSet, err = trainSet.StratifiedSubset(f.Subset, f.Seed); err != nil {
			return false, err
		}
	}
	var val *data.Dataset
	switch {
	case f.ValData == "test":
		if test == nil {
			return false, usagef("--val-data test: dataset %q has no test split", f.Data)
		}
		val = test
	case f.ValData != "":
		if val, _, err = loadData(f.ValData, f.Resize); err != nil {
			return false, err
		}
		if err := setClasses(f.Classes, val); err != nil {
			return false, err
		}
		if err := scale.apply(val); err != nil {
			return false, err
		}
	case f.ValSplit > 0:
		if trainSet, val, err = trainSet.Split(f.ValSplit, f.Seed); err != nil {
			return false, err
		}
	}
	m, err := loadModel(f.Model, f.Input, f.Classes, trainSet, f.Seed)
	if err != nil {
		return false, err
	}
	in := m.Graph.Inputs
	if len(in) != 1 {
		return false, fmt.Errorf("model %s has %d inputs; training feeds models with one image input", f.Model, len(in))
	}
	// Lay the data out as the model expects.
	fit, _, err := trainSet.ForInput(intShape(in[0].Shape))
	if err != nil {
		return false, misfit(f.Model, in[0], trainSet)
	}
	trainSet = fit
	if val != nil {
		if val, _, err = val.ForInput(intShape(in[0].Shape)); err != nil {
			return false, fmt.Errorf("validation data: %w", err)
		}
	}
	if err := checkClasses(f.Model, m, loaded, graph.Loss(f.Loss)); err != nil {
		return false, err
	}
	if f.TopK > trainSet.Classes {
		return false, usagef("--top-k %d: the data has only %d classes", f.TopK, trainSet.Classes)
	}
	if err := checkSyncBatchNorm(f, m, trainSet.Len()); err != nil {
		return false, err
	}
	// A cosine schedule without total=N decays over the whole run.
	oc.Schedule.SetTotal(int64(f.Epochs * ((trainSet.Len() + f.BatchSize - 1) / f.BatchSize)))
	var tf data.Transform
	if f.Augment != "" {
		ac, _ := augment.ParseSpec(f.Augment)
		if ac.Seed == 0 {
			ac.Seed = f.Seed
		}
		ss := trainSet.SampleShape()
		a, err := augment.New(ac, ss)
		if err != nil {
			return false, usagef("--augment: %v", err)
		}
		tf = a
	}
	f.Scale = scale.scale.String() // the config records the scale used
	cfgJSON, _ := json.Marshal(f)
	meta := map[string]string{checkpoint.MetaConfig: string(cfgJSON), checkpoint.MetaInputScale: f.Scale}
	if names := trainSet.Names; len(names) > 0 {
		b, _ := json.Marshal(names)
		meta[metaClassNames] = string(b)
	}
	// The epoch lines come first, so callbacks' messages follow them; those
	// messages go through log, which ends a progress bar's line first.
	epochs := newEpochLog(stdout, f.Epochs, f.Schedule != "" || f.Plateau != "")
	log := epochs.messages()
	cbs := []train.Callback{epochs, scale.setting()}
	if f.EarlyStopping != "" {
		mon, pat, _ := parseEarly(f.EarlyStopping)
		es := checkpoint.NewEarlyStopping(mon, pat)
		es.RestoreBestWeights = true
		es.Log = log
		cbs = append(cbs, es)
	}
	if f.Plateau != "" {
		r, _ := parsePlateau(f.Plateau)
		r.Log = log
		cbs = append(cbs, r)
	}
	monitor := "val_loss"
	if val == nil {
		monitor = "loss"
	}
	outs := runOutputs{best: &checkpoint.ModelCheckpoint{Path: best, Monitor: monitor, SaveBestOnly: f.SaveBestOnly, Metadata: meta, Log: log},
		history: &checkpoint.HistoryLogger{CSVPath: filepath.Join(f.Out, "history.csv"), JSONPath: filepath.Join(f.Out, "history.json"),
			Report: true, Defences: f.defences(features)},
		last: last, curves: filepath.Join(f.Out, "curves.png"), out: f.Out, resume: f.Resume}
	if primary {
		cbs = append(cbs, outs.best, outs.history, &checkpoint.ModelCheckpoint{Path: statePath, Format: checkpoint.TrainingState})
	}
	// Ctrl-C stops after the current step and writes a resumable state;
	// it goes last so the other callbacks' state is in that file. Workers
	// of a multi-worker run stop together, after the same step, and worker
	// 0 writes the state.
	intr := &checkpoint.Interrupt{Path: statePath, Out: log, ResumeCommand: resumeCommand(f.args)}
	if w != nil {
		intr.Agree = w.agree
		intr.ResumeCommand = fmt.Sprintf("mpirun -np %d %s", w.workers(), intr.ResumeCommand)
		if !primary {
			intr.Path = ""
		}
	}
	cbs = append(cbs, intr)
	intr.Listen() // a Ctrl-C while the graphs compile stops after the first batch
	defer intr.Close()
	topK := f.TopK
	if topK == 0 && trainSet.Classes >= 10 {
		topK = 5
	}
	ctx := context.Background()
	cfg := train.Config{Epochs: f.Epochs, BatchSize: f.BatchSize, Seed: f.Seed, Optim: oc, Loss: graph.Loss(f.Loss),
		LabelSmoothing: f.LabelSmoothing, Reduction: f.Reduction, TopK: topK, Strategy: f.Strategy, Replicas: f.Replicas, World: w.strategyWorld(),
		Backend: b, Transform: tf, Deterministic: f.Deterministic, ShardSize: f.ShardSize, SyncBatchNorm: f.SyncBatchNorm,
		NoShuffle: !f.Shuffle, Callbacks: cbs, ConfigJSON: cfgJSON, ModelHash: checkpoint.ModelHash(m), Progress: epochs.progress}
	if f.Freeze != "" {
		cfg.Freeze = strings.Split(f.Freeze, ",")
	}
	if cfg.DataHash, err = checkpoint.DataHash(trainSet); err != nil {
		return false, err
	}
	if cfg.Resume, err = resume.start(cfg.ModelHash, stdout); err != nil {
		return false, err
	}
	if cfg.Resume != nil {
		epochs.resumed(f.Resume, cfg.Resume)
	}
	how := f.Strategy + " strategy"
	if w != nil {
		how = fmt.Sprintf("multiworker strategy (%s of %s)", plural(w.workers(), "worker"), plural(f.Replicas, "replica"))
	}
	fmt.Fprintf(stdout, "training %s on %s: %d samples (validation %d), %s, batch %d, %s, %s on %s\n",
		f.Model, f.Data, trainSet.Len(), lenOf(val), plural(f.Epochs, "epoch"), f.BatchSize, f.Optimizer, how, b.Name())
	fmt.Fprintln(stdout, scale)
	began := time.Now()
	trainer, err := train.NewTrainer(m, cfg)
	if err != nil {
		return false, err
	}
	if w != nil {
		w.mw = trainer.Strategy.(*strategy.MultiWorker)
	}
	res, err := trainer.Fit(ctx, trainSet, sourceOf(val))
	if err != nil {
		return false, err
	}
	if intr.Interrupted() {
		return true, fmt.Errorf("interrupted; the training state is in %s", statePath)
	}
	if !primary {
		return false, nil // the files and the report are worker 0's
	}
	if err := checkpoint.Export(m, res.Weights, meta, last); err != nil {
		return false, err
	}
	bestEpoch, bestVal := 0, 0.0
	for i, l := range res.History {
		if v, ok := l[monitor]; ok && (bestEpoch == 0 || v < bestVal) {
			bestEpoch, bestVal = i+1, v
		}
	}
	stopEpoch := 0
	if strings.HasPrefix(res.StopReason, "early stopping") {
		stopEpoch = res.Epochs
	}
	if err := plotCurves(outs.curves, res.History, curveMarks{Monitor: monitor, Best: bestEpoch, Stop: stopEpoch}); err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "\ndone in %s: %s (%s); best %s %s at epoch %d\n", time.Since(began).Round(time.Second), plural(res.Epochs, "epoch"), res.StopReason, monitor, num(bestVal), bestEpoch)
	printReport(stdout, checkpoint.Overfitting(res.History, outs.history.Defences), lenOf(val))
	fmt.Fprintln(stdout)
	if best := outs.report(stdout); best != "" && test != nil && f.ValData != "test" {
		fmt.Fprintf(stdout, "evaluate on the test split with: gotrain eval --model %s --data %s\n", best, f.Data)
	}
	return false, nil
}

// checkSyncBatchNorm refuses --sync-batchnorm where it would do nothing (a
// model without BatchNorm) or cannot run: its collective needs a sample on
// every replica, in every batch of an epoch of n samples. (train checks
// the batches too, in the Go API's terms.)
func checkSyncBatchNorm(f trainFlags, m *graph.Model, n int) error {
	if !f.SyncBatchNorm {
		return nil
	}
	if !slices.ContainsFunc(m.Graph.Nodes, func(nd *graph.Node) bool { return nd.OpType == "BatchNormalization" }) {
		return usagef("--sync-batchnorm: model %s has no BatchNormalization, whose statistics it would compute over the replicas", f.Model)
	}
	r, bs := f.Replicas, f.BatchSize
	if bs < r {
		return usagef("--sync-batchnorm needs a sample on each of the --replicas %d replicas, but --batch-size %d is smaller", r, bs)
	}
	if rem := n % bs; rem != 0 && rem < r {
		return usagef("--sync-batchnorm needs a sample on each of the --replicas %d replicas, but %d training samples in batches of --batch-size %d leave a last batch of %d: "+
			"change --batch-size, --replicas or the number of training samples (--subset, --val-split)", r, n, bs, rem)
	}
	return nil
}

// isFeatures says whether d's samples are feature vectors rather than
// images: an [N, F] array is loaded as N images of 1x1xF.
func isFeatures(d *data.Dataset) bool {
	s := d.SampleShape()
	return s.C == 1 && s.H == 1
}

// misfit explains a model input the data does not fit, with both shapes
// and what to change.
func misfit(model string, in *graph.ValueInfo, d *data.Dataset) error {
	s := d.SampleShape()
	hint := fmt.Sprintf("export the model for this data (gotrain models export NAME --input %dx%dx%d), pass a built-in model name with --input %dx%dx%d, or --resize HxW for an image folder", s.C, s.H, s.W, s.C, s.H, s.W)
	return fmt.Errorf("model %s input %q is %v but the data %s has samples of %dx%dx%d (CxHxW); %s",
		model, in.Name, in.Shape, d.Source, s.C, s.H, s.W, hint)
}

// checkClasses compares the model's class scores with the data's labels
// and classes: every label must be one of the model's classes, and the
// data must name as many classes (--classes sets that count when the
// labels use only some of them).
func checkClasses(model string, m *graph.Model, d *data.Dataset, loss graph.Loss) error {
	if loss == graph.GraphLoss {
		return nil
	}
	if err := checkLabelRange(model, m, d); err != nil {
		if d.Classes > 1 {
			err = fmt.Errorf("%w; if the label is right, the model needs the data's %d classes (--classes %d with a built-in model; an ONNX file exported for them)", err, d.Classes, d.Classes)
		}
		return err
	}
	out := m.Graph.Outputs[0]
	sh := out.Shape
	if len(sh) != 2 || !sh[1].Known() || sh[1].Size == 1 {
		return nil // one score per sample: the trainer checks the labels
	}
	if k := int(sh[1].Size); k != d.Classes {
		return fmt.Errorf("model %s output %q is %v (%d classes) but the data %s has %d classes; pass --classes %d if its labels use only some of the model's classes, else export the model with --classes %d (or pass --classes %d with a built-in model)",
			model, out.Name, sh, k, d.Source, d.Classes, k, d.Classes, d.Classes)
	}
	return nil
}

// checkLabelRange checks that every label of d is one of the classes the
// model's output [N, K] scores, naming the first that is not.
func checkLabelRange(model string, m *graph.Model, d *data.Dataset) error {
	out := m.Graph.Outputs[0]
	sh := out.Shape
	if len(sh) != 2 || !sh[1].Known() || sh[1].Size == 1 {
		return nil
	}
	if i := d.FirstLabelFrom(sh[1].Size); i >= 0 {
		return fmt.Errorf("%s: label %d of sample %d is out of range for the %d classes of model %s (output %q is %v)",
			d.LabelFile(), d.Label(i), i, sh[1].Size, model, out.Name, sh)
	}
	return nil
}

// setClasses applies --classes to the datasets (nil ones skipped).
func setClasses(n int, sets ...*data.Dataset) error {
	if n == 0 {
		return nil
	}
	for _, d := range sets {
		if d == nil {
			continue
		}
		if err := d.SetClasses(n); err != nil {
			return usagef("--classes %d: %v", n, err)
		}
	}
	return nil
}

// resumeCommand is the command line that restarts this run, without any
// --resume it had.
func resumeCommand(args []string) string {
	var keep []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--resume" || a == "-resume" {
			i++
			continue
		}
		if strings.HasPrefix(a, "--resume=") || strings.HasPrefix(a, "-resume=") {
			continue
		}
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		keep = append(keep, a)
	}
	return strings.TrimSpace("gotrain train " + strings.Join(keep, " "))
}

func sourceOf(d *data.Dataset) data.Source {
	if d == nil {
		return nil
	}
	return d
}

func lenOf(d *data.Dataset) int {
	if d == nil {
		return 0
	}
	return d.Len()
}

func threadsOf(n int) int {
	if n > 0 {
		return n
	}
	return numCPU()
}

func intShape(s graph.Shape) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d.Size)
		if !d.Known() {
			out[i] = -1
		}
	}
	return out
}
