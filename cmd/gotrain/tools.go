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
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/conformance"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/atomicfile"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/tensor"
)

func numCPU() int { return runtime.GOMAXPROCS(0) }

// classify runs the model over a dataset in batches and returns the output
// rows (scores or probabilities).
func classify(ctx context.Context, b backend.Backend, m *graph.Model, d *data.Dataset, bs int) ([][]float32, error) {
	exe, err := b.Compile(m, b.Devices()[0], backend.CompileOptions{})
	if err != nil {
		return nil, err
	}
	in := m.Graph.Inputs[0].Name
	out := m.Graph.Outputs[0].Name
	var rows [][]float32
	loader := &data.Loader{Source: d, BatchSize: bs, SampleShape: intShape(m.Graph.Inputs[0].Shape)[1:]}
	it, err := loader.Epoch(ctx, 0, 0)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for {
		batch, err := it.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		res, err := backend.RunHost(ctx, b, exe, b.Devices()[0], map[string]*tensor.Tensor{in: batch.X})
		if err != nil {
			return nil, err
		}
		y := res[out]
		n, sh := batch.X.Shape()[0], y.Shape()
		k := 1 // [N]: one score per sample
		if len(sh) == 2 {
			k = sh[1]
		}
		if len(sh) < 1 || len(sh) > 2 || sh[0] != n || k < 1 || y.DType() != tensor.Float32 {
			return nil, fmt.Errorf("model output %q is %v%v for a batch of %d: eval needs class scores [N, K], or one score per sample ([N] or [N, 1])", out, y.DType(), sh, n)
		}
		f := y.Float32s()
		for i := range n {
			rows = append(rows, append([]float32{}, f[i*k:(i+1)*k]...))
		}
		batch.Release()
	}
	return rows, nil
}

// endsIn says whether the model's first output is made by an op of type op.
func endsIn(m *graph.Model, op string) bool {
	out := m.Graph.Outputs[0].Name
	return slices.ContainsFunc(m.Graph.Nodes, func(n *graph.Node) bool { return n.OpType == op && slices.Contains(n.Outputs, out) })
}

func argmax(r []float32) int {
	best := 0
	for i, v := range r {
		if v > r[best] {
			best = i
		}
	}
	return best
}

func newEvalCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "eval",
		Short:   "evaluate a model on a dataset",
		Example: "  gotrain eval --model out/best_model.onnx --data mnist --split test",
		Args:    noArgs,
	}
	fs := cmd.Flags()
	model := fs.String("model", "", "ONNX model")
	dataSpec := fs.String("data", "mnist", "dataset (as for train)")
	split := fs.String("split", "test", "test or train (built-in datasets)")
	limit := fs.Int("limit", 0, "evaluate the first N samples (0: all)")
	resize := fs.String("resize", "", "resize image-folder samples to HxW")
	scale := fs.String("scale", "", scaleUsage+" (default: the model's "+checkpoint.MetaInputScale+", else auto)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if *model == "" {
			return usagef("--model is required")
		}
		if err := checkScaleFlag(*scale); err != nil {
			return err
		}
		if *split != "test" && *split != "train" {
			return usagef("--split %q: expected test or train", *split)
		}
		if *limit < 0 {
			return usagef("--limit %d: must not be negative", *limit)
		}
		if *resize != "" {
			if _, _, err := parseHW(*resize); err != nil {
				return err
			}
		}
		m, err := loadModelFlag(*model)
		if err != nil {
			return err
		}
		tr, te, err := loadData(*dataSpec, *resize)
		if err != nil {
			return err
		}
		d, splitName := tr, *split
		if *split == "test" && te != nil {
			d = te
		} else if *split == "test" {
			splitName = "all of it: it has no test split"
		}
		if *limit > 0 && *limit < d.Len() {
			if d, err = d.Head(*limit); err != nil {
				return err
			}
		}
		if err := scaleDataset(*scale, m, d, stdout); err != nil {
			return err
		}
		if len(m.Graph.Inputs) != 1 {
			return fmt.Errorf("model %s has %d inputs; eval feeds models with one image input", *model, len(m.Graph.Inputs))
		}
		in := m.Graph.Inputs[0]
		fit, _, err := d.ForInput(intShape(in.Shape))
		if err != nil {
			return misfit(*model, in, d)
		}
		d = fit
		if err := checkLabelRange(*model, m, d); err != nil {
			return err
		}
		b, err := openBackend("cpu", 1, 0)
		if err != nil {
			return err
		}
		rows, err := classify(context.Background(), b, m, d, 256)
		if err != nil {
			return err
		}
		// One score per sample is a binary classifier's: a logit, class 1
		// when positive, or after a Sigmoid a probability, class 1 above 0.5.
		threshold := float32(0)
		if endsIn(m, "Sigmoid") {
			threshold = 0.5
		}
		if len(rows[0]) == 1 {
			if i := d.FirstLabelFrom(2); i >= 0 {
				return fmt.Errorf("%s: label %d of sample %d: model %s gives one score per sample (a binary classifier), for labels 0 and 1", d.LabelFile(), d.Label(i), i, *model)
			}
		}
		correct := 0
		for i, r := range rows {
			pred := argmax(r)
			if len(r) == 1 && r[0] > threshold {
				pred = 1
			}
			if int64(pred) == d.Label(i) {
				correct++
			}
		}
		fmt.Fprintf(stdout, "%s on %s (%s, %d samples): accuracy %.4f\n", *model, *dataSpec, splitName, len(rows), float64(correct)/float64(len(rows)))
		return nil
	}
	return cmd
}

func newPredictCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "predict FILE...",
		Short: "classify image or NPY files: class probabilities, top k",
		Long: `Classify image or NPY files: for each, the top classes by probability (the
softmax of the model's output, or the output itself when the model ends in
Softmax), with class names where they are known: recorded in the model by
train (a class-folder dataset's folder names, a built-in dataset's names), or
taken from --class-names.`,
		Example: `  gotrain predict --model best_model.onnx --top 3 digit.png x.npy
  gotrain predict --model best_model.onnx --class-names photos/ cat.jpg`,
	}
	fs := cmd.Flags()
	model := fs.String("model", "", "ONNX model")
	top := fs.Int("top", 3, "classes to print per file")
	classNames := fs.String("class-names", "", "class names from a class-folder dataset (its subfolders) or a built-in dataset (default: the names train recorded in the model)")
	scale := fs.String("scale", "", scaleUsage+" (default: the model's "+checkpoint.MetaInputScale+", else auto)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if *model == "" || len(args) == 0 {
			return usagef("need --model and at least one image or .npy file")
		}
		if *top < 1 {
			return usagef("--top %d: must be at least 1", *top)
		}
		if err := checkScaleFlag(*scale); err != nil {
			return err
		}
		m, err := loadModelFlag(*model)
		if err != nil {
			return err
		}
		if len(m.Graph.Inputs) != 1 || len(m.Graph.Outputs) == 0 {
			return fmt.Errorf("model %s has %d inputs and %d outputs; predict feeds classifiers with one input (gotrain run feeds any model)", *model, len(m.Graph.Inputs), len(m.Graph.Outputs))
		}
		in := m.Graph.Inputs[0]
		if in.DType != tensor.Float32 {
			return fmt.Errorf("model input %q is %v; predict feeds float32 images and features (gotrain run feeds any dtype)", in.Name, &in.Type)
		}
		shape := intShape(in.Shape)
		if len(shape) != 4 && len(shape) != 2 {
			return fmt.Errorf("model input %q is %v; predict takes image models [N,C,H,W] and flat-input models [N,F]", in.Name, in.Shape)
		}
		names, err := classNamesFor(m, *classNames)
		if err != nil {
			return err
		}
		out := m.Graph.Outputs[0]
		if out.DType != tensor.Float32 {
			return fmt.Errorf("model output %q is %v; predict reads float32 class scores (gotrain run writes any output)", out.Name, &out.Type)
		}
		// One score per sample ([N] or [N, 1]) is a binary classifier's:
		// its two classes' probabilities are 1-p and p, p the sigmoid of
		// the score (or the score, when the model ends in Sigmoid).
		binary := out.RankKnown && (len(out.Shape) == 1 || len(out.Shape) == 2 && out.Shape[1].Known() && out.Shape[1].Size == 1)
		isProb := endsIn(m, "Softmax") || binary && endsIn(m, "Sigmoid")
		switch {
		case isProb:
			fmt.Fprintf(stdout, "# class probabilities: the model's output %q (it ends in %s); top %d\n", out.Name, map[bool]string{true: "Sigmoid", false: "Softmax"}[binary], *top)
		case binary:
			fmt.Fprintf(stdout, "# class probabilities: sigmoid of the model's output %q; top %d\n", out.Name, *top)
		default:
			fmt.Fprintf(stdout, "# class probabilities: softmax of the model's output %q; top %d\n", out.Name, *top)
		}
		b, err := openBackend("cpu", 1, 0)
		if err != nil {
			return err
		}
		exe, err := b.Compile(m, b.Devices()[0], backend.CompileOptions{})
		if err != nil {
			return err
		}
		sc, from, err := modelScale(*scale, m)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "input scale: %s (%s)\n", sc, from)
		for _, path := range args {
			x, raw, err := readSample(path, in, shape)
			if err != nil {
				return err
			}
			if err := scaleTensor(sc, raw, x); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if note := scaleNote(sc, *scale, raw); note != "" {
				fmt.Fprintf(stdout, "note: %s: %s\n", path, note)
			}
			res, err := backend.RunHost(context.Background(), b, exe, b.Devices()[0], map[string]*tensor.Tensor{m.Graph.Inputs[0].Name: x})
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			scores := res[out.Name].Float32s()
			probs := make([]float64, len(scores))
			for i, v := range scores {
				probs[i] = float64(v)
			}
			switch {
			case binary && len(probs) == 1:
				p := probs[0]
				if !isProb {
					p = 1 / (1 + math.Exp(-p))
				}
				probs = []float64{1 - p, p}
			case !isProb:
				probs = softmax(probs)
			}
			idx := make([]int, len(probs))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, c int) bool { return probs[idx[a]] > probs[idx[c]] })
			var parts []string
			for _, i := range idx[:min(*top, len(idx))] {
				label := strconv.Itoa(i)
				if i < len(names) && names[i] != label {
					label += " " + strconv.Quote(names[i])
				}
				parts = append(parts, fmt.Sprintf("%s (%.4f)", label, probs[i]))
			}
			fmt.Fprintf(stdout, "%s: %s\n", path, strings.Join(parts, ", "))
		}
		return nil
	}
	return cmd
}

// loadModelFlag loads --model's ONNX file. A path that is not there, or
// is a folder, is a bad flag (exit 2), as train says; a file that does not
// load is a failure.
func loadModelFlag(path string) (*graph.Model, error) {
	if err := checkModelPath(path); err != nil {
		return nil, err
	}
	return graph.Load(path)
}

// checkModelPath checks that --model names a file.
func checkModelPath(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return usagef("--model: %v", err)
	}
	if st.IsDir() {
		return usagef("--model %s is a folder; expected an .onnx file", path)
	}
	return nil
}

// softmax is exp(x - max) normalized, in float64.
func softmax(x []float64) []float64 {
	if len(x) == 0 {
		return x
	}
	hi := slices.Max(x)
	out := make([]float64, len(x))
	sum := 0.0
	for i, v := range x {
		out[i] = math.Exp(v - hi)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// classNamesFor returns the class names for predict's output: from the
// dataset spec when given (a class folder's subfolders, a built-in
// dataset's names), else as train recorded them in the model; nil when
// neither has names.
func classNamesFor(m *graph.Model, spec string) ([]string, error) {
	if spec == "" {
		raw, ok := m.Metadata[metaClassNames]
		if !ok {
			return nil, nil
		}
		var names []string
		if err := json.Unmarshal([]byte(raw), &names); err != nil {
			return nil, fmt.Errorf("model metadata %s: %v", metaClassNames, err)
		}
		return names, nil
	}
	if slices.Contains(data.BuiltinNames(), spec) {
		d, _, err := data.Builtin(spec)
		if err != nil {
			return nil, err
		}
		return d.Names, nil
	}
	f, err := data.OpenImageFolder(spec, data.FolderOptions{})
	if err != nil {
		return nil, usagef("--class-names %q: expected a built-in dataset (%s) or a folder of class subfolders: %v", spec, strings.Join(data.BuiltinNames(), ", "), err)
	}
	return f.Names, nil
}

// readSample reads one image (resized, values 0..255) or an NPY sample of
// any numeric dtype as a float32 batch of one, unscaled, and says what its
// values are. shape is the model input in's dims (-1 where symbolic):
// [N, C, H, W], or [N, F] for a flat-input model, which takes .npy files
// only. An .npy sample gives symbolic dims their sizes; an image cannot.
func readSample(path string, in *graph.ValueInfo, shape []int) (*tensor.Tensor, data.RawKind, error) {
	want := shape[1:]
	if strings.HasSuffix(path, ".npy") {
		t, err := tensor.ReadNPYFile(path)
		if err != nil {
			return nil, 0, err
		}
		dims, ok := sampleDims(want, t.Shape())
		if !(t.DType().IsFloat() || t.DType().IsInt()) || !ok {
			return nil, 0, fmt.Errorf("%s: expected one sample of %s numbers (model input %q is %v), got %v%v", path, dimsString(want), in.Name, in.Shape, t.DType(), t.Shape())
		}
		raw := data.RawKindOf(t)
		x := make([]float32, t.Len())
		for i := range x {
			x[i] = float32(t.AsFloat64(i))
		}
		xt, err := tensor.FromSlice(x, append([]int{1}, dims...)...)
		return xt, raw, err
	}
	if slices.Contains(want, -1) {
		return nil, 0, fmt.Errorf("%s: model input %q is %v: with sizes left open, predict cannot tell what size to read an image at; give the sample as an .npy file", path, in.Name, in.Shape)
	}
	n := tensor.NumElements(want)
	if len(shape) == 2 {
		return nil, 0, fmt.Errorf("%s: the model takes %d features, not an image: give an .npy file of %d values", path, n, n)
	}
	c, h, w := shape[1], shape[2], shape[3]
	if c != 1 && c != 3 {
		return nil, 0, fmt.Errorf("%s: the model takes %d channels; images give 1 (gray) or 3 (RGB)", path, c)
	}
	x, err := data.ReadImage(path, data.FolderOptions{Height: h, Width: w, Gray: c == 1})
	if err != nil {
		return nil, 0, err
	}
	xt, err := tensor.FromSlice(x, 1, c, h, w)
	return xt, data.RawBytes, err
}

// dimsString writes dims as 3x32x32, a symbolic dim (-1) as "?".
func dimsString(d []int) string {
	parts := make([]string, len(d))
	for i, v := range d {
		parts[i] = strconv.Itoa(v)
		if v < 0 {
			parts[i] = "?"
		}
	}
	return strings.Join(parts, "x")
}

// sampleDims is the shape of one sample read from an array of shape got
// for a model input whose sample dims are want (-1 where symbolic): got
// itself, or without a leading batch of 1, when its dims match want's
// known ones; or, when want is fully known, want for any array of as many
// values (a flat .npy for an image model).
func sampleDims(want, got []int) ([]int, bool) {
	if len(got) == len(want)+1 && got[0] == 1 {
		got = got[1:]
	}
	if len(got) == len(want) {
		match := true
		for i, d := range want {
			match = match && (d < 0 || d == got[i])
		}
		if match {
			return got, true
		}
	}
	if n, ok := tensor.MulDims(want); ok && n == int64(tensor.NumElements(got)) {
		return want, true
	}
	return nil, false
}

func newRunCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "run",
		Short:   "run a model on NPY inputs, write NPY outputs",
		Example: "  gotrain run --model m.onnx --input x=x.npy --output-dir out\n  gotrain run --model m.onnx --input x.npy --output-dir out",
	}
	fs := cmd.Flags()
	model := fs.String("model", "", "ONNX model")
	outDir := fs.String("output-dir", ".", "folder for NAME.npy outputs")
	scale := fs.String("scale", "", scaleUsage+", for the first input (default: the model's "+checkpoint.MetaInputScale+", else none)")
	var inputs multiFlag
	fs.Var(&inputs, "input", "NAME=FILE.npy, or FILE.npy in graph input order (repeatable)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if *model == "" {
			return usagef("--model is required")
		}
		if err := checkScaleFlag(*scale); err != nil {
			return err
		}
		m, err := loadModelFlag(*model)
		if err != nil {
			return err
		}
		feeds := map[string]*tensor.Tensor{}
		for i, spec := range append(inputs, args...) {
			name, file, ok := strings.Cut(spec, "=")
			if !ok {
				if i >= len(m.Graph.Inputs) {
					return usagef("input %q: the model has only %s", spec, plural(len(m.Graph.Inputs), "input"))
				}
				name, file = m.Graph.Inputs[i].Name, spec
			}
			if m.Graph.Input(name) == nil {
				return usagef("--input %s: the model has no input %q (inputs: %s)", spec, name, inputList(m))
			}
			t, err := tensor.ReadNPYFile(file)
			if err != nil {
				return err
			}
			if err := fitsInput(m.Graph.Input(name), t); err != nil {
				return fmt.Errorf("input %q (%s): %w", name, file, err)
			}
			feeds[name] = t
		}
		for _, in := range m.Graph.Inputs {
			if _, ok := feeds[in.Name]; !ok {
				return usagef("input %q (%v) is not given", in.Name, &in.Type)
			}
		}
		if err := scaleRunInput(*scale, m, feeds, stdout); err != nil {
			return err
		}
		b, err := openBackend("cpu", 1, 0)
		if err != nil {
			return err
		}
		shapes := map[string][]int{}
		for n, t := range feeds {
			shapes[n] = t.Shape()
		}
		exe, err := b.Compile(m, b.Devices()[0], backend.CompileOptions{InputShapes: shapes})
		if err != nil {
			return err
		}
		res, err := backend.RunHost(context.Background(), b, exe, b.Devices()[0], feeds)
		if err != nil {
			return err
		}
		// Made only now, so that a model that cannot run leaves no folder.
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			return fmt.Errorf("--output-dir: %w", err)
		}
		files := outputFiles(outputNames(m))
		for i, o := range m.Graph.Outputs {
			path := filepath.Join(*outDir, files[i].name)
			if err := tensor.WriteNPYFile(path, res[o.Name]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s: %v -> %s%s\n", o.Name, res[o.Name].Shape(), path, files[i].note)
		}
		return nil
	}
	return cmd
}

// fitsInput checks a tensor against a graph input's declared dtype and
// known dims.
func fitsInput(in *graph.ValueInfo, t *tensor.Tensor) error {
	if in.DType != t.DType() {
		return fmt.Errorf("expected %v, got %v%v", &in.Type, t.DType(), t.Shape())
	}
	if !in.RankKnown {
		return nil
	}
	bad := len(in.Shape) != len(t.Shape())
	for i := 0; !bad && i < len(in.Shape); i++ {
		bad = in.Shape[i].Known() && int(in.Shape[i].Size) != t.Shape()[i]
	}
	if bad {
		return fmt.Errorf("expected %v, got %v%v", &in.Type, t.DType(), t.Shape())
	}
	return nil
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}

func inputList(m *graph.Model) string {
	var n []string
	for _, in := range m.Graph.Inputs {
		n = append(n, in.Name)
	}
	return strings.Join(n, ", ")
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
func (m *multiFlag) Type() string       { return "NAME=FILE" }

func newInspectCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "inspect",
		Short:   "describe a model: inputs, outputs, ops, parameters",
		Example: "  gotrain inspect --model cnn.onnx",
		Args:    noArgs,
	}
	fs := cmd.Flags()
	model := fs.String("model", "", "ONNX model")
	noCheck := fs.Bool("no-check", false, "only describe the model; do not check that gotrain can run it (which exits 1 when it cannot)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if *model == "" {
			return usagef("--model is required")
		}
		m, err := loadModelFlag(*model)
		if err != nil {
			return err
		}
		g := m.Graph
		fmt.Fprintf(stdout, "model %s: IR %d, opsets %v, producer %q\n", *model, m.IRVersion, m.Opsets, m.ProducerName)
		for _, in := range g.Inputs {
			fmt.Fprintf(stdout, "input  %s: %v\n", in.Name, &in.Type)
		}
		for _, o := range g.Outputs {
			fmt.Fprintf(stdout, "output %s: %v\n", o.Name, &o.Type)
		}
		ops := map[string]int{}
		var missing []string
		for _, n := range g.Nodes {
			ops[n.OpType]++
			if graph.Lookup(n.Domain, n.OpType) == nil || !cpu.HasKernel(n.Domain, n.OpType) {
				missing = append(missing, n.OpType)
			}
		}
		var names []string
		for k := range ops {
			names = append(names, k)
		}
		sort.Strings(names)
		var parts []string
		for _, k := range names {
			parts = append(parts, fmt.Sprintf("%s x%d", k, ops[k]))
		}
		fmt.Fprintf(stdout, "ops: %s\n", strings.Join(parts, ", "))
		total := 0
		for _, name := range g.InitializerNames() {
			t := g.Initializer(name)
			train := "frozen"
			if t.DType().IsFloat() {
				train = "trainable"
				total += t.Len()
			}
			fmt.Fprintf(stdout, "  %-32s %v %v %s\n", name, t.DType(), t.Shape(), train)
		}
		fmt.Fprintf(stdout, "parameters: %d\n", total)
		return reportRunnable(stdout, m, missing, *noCheck)
	}
	return cmd
}

func newModelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "list or export the built-in models",
		Example: `  gotrain models list
  gotrain models export cnn --input 1x28x28 --classes 10 -o cnn.onnx`,
		// With no subcommand, models lists.
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("models: expected list or export, got %q", args[0])
			}
			return listModels(cmd.OutOrStdout())
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "list the built-in models",
		Example: "  gotrain models list",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("models list: unexpected argument %q", args[0])
			}
			return listModels(cmd.OutOrStdout())
		},
	}
	cmd.AddCommand(list, newModelsExportCmd())
	return cmd
}

func listModels(stdout io.Writer) error {
	for _, n := range models.Names() {
		fmt.Fprintf(stdout, "%-10s %s\n", n, models.Describe(n))
	}
	return nil
}

func newModelsExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export NAME -o FILE.onnx",
		Short: "write a built-in model as an ONNX file",
		Example: `  gotrain models export cnn --input 1x28x28 --classes 10 -o cnn.onnx
  gotrain models export mlp --input 784 -o mlp.onnx`,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return models.Names(), cobra.ShellCompDirectiveNoFileComp
		},
	}
	fs := cmd.Flags()
	out := fs.StringP("out", "o", "", "output .onnx file")
	input := fs.String("input", "1x28x28", "sample shape CxHxW, or a feature count (784) for the MLP")
	classes := fs.Int("classes", 10, "classes")
	seed := fs.Uint64("seed", 1, "initialisation seed")
	dropout := fs.Float64("dropout", 0, "dropout before the classifier")
	softmax := fs.Bool("softmax", false, "end with Softmax (Keras style)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		name := ""
		if len(args) > 0 {
			name = args[0]
		}
		if len(args) > 1 {
			return usagef("unexpected argument %q", args[1])
		}
		if name == "" || *out == "" {
			return usagef("models export NAME -o FILE.onnx (models: %v)", models.Names())
		}
		if err := checkZooFlags(name, *classes, *dropout); err != nil {
			return err
		}
		shape, err := parseInput(*input)
		if err != nil {
			return err
		}
		o := models.Options{Input: shape, Classes: *classes, Seed: *seed, Dropout: *dropout, Softmax: *softmax}
		m, err := models.Build(name, o)
		if errors.Is(err, models.ErrInputTooSmall) {
			return tooSmall(name, o, err)
		}
		if err != nil {
			return err
		}
		if dir := filepath.Dir(*out); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := graph.Save(m, *out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s (%s, input %s, %d classes)\n", *out, name, *input, *classes)
		return nil
	}
	return cmd
}

// checkZooFlags checks a built-in model's name, --classes and --dropout
// (models.Build checks them too, but as a library it cannot say a flag
// is wrong, which is a usage error).
func checkZooFlags(name string, classes int, dropout float64) error {
	if !slices.Contains(models.Names(), name) {
		return usagef("model %q: not a built-in model (%s)", name, strings.Join(models.Names(), ", "))
	}
	if classes < 2 {
		return usagef("--classes %d: a classifier needs at least 2", classes)
	}
	if !(dropout >= 0 && dropout < 1) { // NaN included
		return usagef("--dropout %g: must be in [0, 1)", dropout)
	}
	return nil
}

func newConformanceCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "conformance",
		Short: "run ONNX's backend tests on a backend",
		Example: "  gotrain conformance --backend cpu\n  gotrain conformance --data ../shared/onnx-node-tests/v1.22.0\n" +
			"  gotrain conformance --backend cuda --floor backend/cuda/testdata/conformance",
		Args: noArgs,
	}
	fs := cmd.Flags()
	be := fs.String("backend", "cpu", "backend")
	dir := fs.String("data", "", "a folder of ONNX backend tests (default: every suite found)")
	verbose := fs.BoolP("verbose", "v", false, "print every failure")
	markdown := fs.String("markdown", "", "also write the per-op table as Markdown to this file")
	floorDir := fs.String("floor", "", "a backend's floor folder (SUITE.txt files): every test it lists must pass")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if *dir != "" {
			if st, err := os.Stat(*dir); err != nil || !st.IsDir() {
				return usagef("--data %q: expected a folder of ONNX backend tests (test_*/model.onnx)", *dir)
			}
		}
		var floors map[string]map[string]bool
		if *floorDir != "" {
			var err error
			if floors, err = conformance.ReadFloors(*floorDir); err != nil {
				return usagef("--floor: %v", err)
			}
			if len(floors) == 0 {
				return usagef("--floor %s: no SUITE.txt files there", *floorDir)
			}
		}
		b, err := conformance.Open(*be)
		if err != nil {
			return usagef("--backend: %v", err)
		}
		suites := conformance.DefaultSuites()
		if *dir != "" {
			suites = []conformance.Suite{{Name: filepath.Base(*dir), Dir: *dir}}
		}
		if len(suites) == 0 {
			return fmt.Errorf("no ONNX test data found: install libonnx-testdata (make deps) or pass --data DIR")
		}
		var all []conformance.Result
		var summaries []string
		belowFloor := 0
		for _, s := range suites {
			cases, err := conformance.Cases(s)
			if err != nil {
				return err
			}
			var results []conformance.Result
			for _, c := range cases {
				r := conformance.RunCase(context.Background(), b, c)
				results = append(results, r)
				if r.Status == conformance.Fail && *verbose {
					fmt.Fprintf(stdout, "FAIL %s/%s: %s\n", c.Suite, c.Name, r.Reason)
				}
				if floors[s.Name][c.Name] && r.Status != conformance.Pass {
					belowFloor++
					fmt.Fprintf(stdout, "BELOW FLOOR %s/%s (%s): %s\n", c.Suite, c.Name, r.Status, r.Reason)
				}
			}
			all = append(all, results...)
			summaries = append(summaries, conformance.Summary(s.Name, results))
			if floors != nil {
				if gone, _ := conformance.CheckFloor(floors[s.Name], results); len(gone) > 0 {
					belowFloor += len(gone)
					fmt.Fprintf(stdout, "BELOW FLOOR %s: the floor lists %d tests the suite lacks: %s\n", s.Name, len(gone), strings.Join(gone, ", "))
				}
			}
		}
		fmt.Fprintf(stdout, "%-36s %6s %6s %6s\n", "op", "pass", "fail", "unsup")
		for _, c := range conformance.Tally(all) {
			fmt.Fprintf(stdout, "%-36s %6d %6d %6d\n", c.Op, c.Pass, c.Fail, c.Unsupported)
		}
		var p, f, u int
		for _, r := range all {
			switch r.Status {
			case conformance.Pass:
				p++
			case conformance.Fail:
				f++
			default:
				u++
			}
		}
		if *markdown != "" {
			if err := writeOpTable(*markdown, b.Name(), suites, all, p, f, u); err != nil {
				return err
			}
		}
		for _, line := range summaries {
			fmt.Fprintln(stdout, line)
		}
		if floors != nil {
			for name, fl := range floors {
				ran := false
				for _, s := range suites {
					ran = ran || s.Name == name
				}
				if !ran {
					fmt.Fprintf(stdout, "floor: suite %s (%d tests) is not here; not checked\n", name, len(fl))
				}
			}
			fmt.Fprintf(stdout, "floor %s: %d tests below it\n", *floorDir, belowFloor)
		}
		fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped\n", p, f, u)
		if f > 0 {
			return fmt.Errorf("%d tests failed", f)
		}
		if belowFloor > 0 {
			return fmt.Errorf("%d tests of the floor %s did not pass", belowFloor, *floorDir)
		}
		return nil
	}
	return cmd
}

func newAugmentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "augment",
		Short: "draw a grid of augmented samples to a PNG",
		Args:  noArgs,
		Example: `  gotrain augment --data mnist --augment rotation=20,shift=0.1,zoom=0.1 --out grid.png
  gotrain augment --data digits --augment rotation=10 --seed 7 --out grid7.png`,
	}
	fs := cmd.Flags()
	dataSpec := fs.String("data", "mnist", "dataset (as for train)")
	spec := fs.String("augment", "rotation=20,shift=0.1,zoom=0.1", "augmentation spec")
	out := fs.String("out", "grid.png", "PNG file to write")
	rows := fs.Int("rows", 8, "original images shown")
	seed := fs.Uint64("seed", 1, "augmentation seed, as train's --seed (the spec's seed=N, when given, is the same setting)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		stdout := cmd.OutOrStdout()
		if err := augment.CheckRows(*rows); err != nil {
			return usagef("--rows: %v", err)
		}
		ac, err := augment.ParseSpec(*spec)
		if err != nil {
			return usagef("--augment: %v", err)
		}
		switch {
		case ac.Seed == 0:
			ac.Seed = *seed // as train does
		case fs.Changed("seed") && ac.Seed != *seed:
			return usagef("--seed %d and --augment's seed=%d disagree; give one", *seed, ac.Seed)
		}
		d, _, err := loadData(*dataSpec, "")
		if err != nil {
			return err
		}
		s, _, err := data.ScaleAuto.Resolve(d)
		if err != nil {
			return err
		}
		d.Apply(s)
		a, err := augment.New(ac, d.SampleShape())
		if err != nil {
			return usagef("--augment: %v", err)
		}
		n := min(*rows, d.Len())
		x := d.X.Float32s()[:n*d.SampleSize()]
		if err := augment.WriteGrid(*out, x, n, a, augment.GridOptions{Rows: n}); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: %d originals (left) beside augmented copies\n", *out, n)
		return nil
	}
	return cmd
}

// writeOpTable writes the conformance run as a Markdown table of ops.
func writeOpTable(path, backendName string, suites []conformance.Suite, all []conformance.Result, p, f, u int) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Supported ops\n\nGenerated by `gotrain conformance --markdown` from ONNX's backend tests on the %s backend", strings.ToUpper(backendName))
	var names []string
	for _, s := range suites {
		names = append(names, s.Name)
	}
	fmt.Fprintf(&b, " (suites: %s).\nA test counts once for every op it uses; \"unsupported\" tests use an op, dtype or value type gotrain lacks.\n\n", strings.Join(names, ", "))
	fmt.Fprintf(&b, "Totals: %d passed, %d failed, %d unsupported.\n\n| op | passed | failed | unsupported |\n|---|---|---|---|\n", p, f, u)
	for _, c := range conformance.Tally(all) {
		if c.Pass == 0 && c.Fail == 0 {
			continue // ops that only appear in tests we cannot run
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d |\n", c.Op, c.Pass, c.Fail, c.Unsupported)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := io.WriteString(w, b.String())
		return err
	})
}
