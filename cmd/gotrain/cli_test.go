package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"gonum.org/v1/plot/plotutil"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/train"
)

// TestFlagsCoverConfig: every train setting is a flag named as its config
// key, so a config file and the command line reach the same fields and a
// flag overrides the config's value.
func TestFlagsCoverConfig(t *testing.T) {
	f := defaultTrainFlags()
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	f.define(fs)
	_, keys := trainFields(&f)
	flags := map[string]bool{}
	fs.VisitAll(func(fl *pflag.Flag) { flags[flagKey(fl.Name)] = true })
	for _, k := range keys {
		if !flags[k] {
			t.Errorf("config key %s has no flag --%s", k, strings.ReplaceAll(k, "_", "-"))
		}
		delete(flags, k)
	}
	for k := range flags {
		t.Errorf("flag --%s has no trainFlags field", strings.ReplaceAll(k, "_", "-"))
	}
}

// TestConfigNested: the nested sections of testdata/nested.yaml (and the
// same in JSON) set the flat settings; flags given on the command line
// override them; the flat train.yaml still reads as before.
func TestConfigNested(t *testing.T) {
	want := defaultTrainFlags()
	want.Model, want.Epochs = "mlp", 3
	want.Optimizer, want.LR, want.Momentum, want.WeightDecay, want.DecayBiasNorm = "sgd", 0.05, 0.9, 1e-4, true
	want.Augment = "rotation=10,shift=0.1,hflip,zoom=0.9:1.1"
	want.Schedule = "cosine:warmup=10"
	want.EarlyStopping = "val_loss:4"
	want.Plateau = "val_loss:2,factor=0.5"
	want.Freeze = "fc1.weight,fc1.bias"
	want.Shuffle = false
	for _, name := range []string{"nested.yaml", "nested.json"} {
		got := defaultTrainFlags()
		if err := readConfig(filepath.Join("testdata", name), &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !equalFlags(got, want) {
			t.Errorf("%s read as\n%+v\nwant\n%+v", name, got, want)
		}
		if err := got.validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Flags over the config: --lr and --epochs win, the rest is the file's.
	f := defaultTrainFlags()
	fs := pflag.NewFlagSet("train", pflag.ContinueOnError)
	f.define(fs)
	if err := fs.Parse([]string{"--lr", "0.1", "--epochs=7", "--shuffle"}); err != nil {
		t.Fatal(err)
	}
	if err := f.applyConfig(filepath.Join("testdata", "nested.yaml"), fs); err != nil {
		t.Fatal(err)
	}
	w := want
	w.LR, w.Epochs, w.Shuffle = 0.1, 7, true
	if !equalFlags(f, w) {
		t.Errorf("flags over nested.yaml gave\n%+v\nwant\n%+v", f, w)
	}
	flat := defaultTrainFlags()
	if err := readConfig(filepath.Join("testdata", "train.yaml"), &flat); err != nil {
		t.Fatal(err)
	}
	if flat.Model != "mlp" || flat.Epochs != 5 || flat.BatchSize != 64 || flat.Optimizer != "adamw" || flat.LR != 0.003 || flat.Seed != 7 || flat.Out != "should-be-overridden" {
		t.Errorf("train.yaml read as %+v", flat)
	}
}

func equalFlags(a, b trainFlags) bool {
	a.args, b.args = nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// sigDigits counts the significant digits of a number as num prints it.
func sigDigits(s string) int {
	s, _, _ = strings.Cut(s, "e")
	s = strings.TrimLeft(strings.ReplaceAll(strings.TrimPrefix(s, "-"), ".", ""), "0")
	return len(s)
}

// TestTrainOutput: epoch lines as Keras prints them, with the validation
// metrics and 4 significant digits; ReduceLROnPlateau from the flag; the
// overfitting report printed and in history.json; --shuffle=false and
// --decay-bias-norm recorded in the model's settings.
func TestTrainOutput(t *testing.T) {
	set := dataset(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	// min_delta=100: no epoch after the first counts as an improvement,
	// and patience 0 lowers the rate at each of them.
	r := gotrain(t, append([]string{"train", "--model", "mlp", "--data", set.name, "--epochs", "3", "--threads", "1", "--val-split", "0.2",
		"--weight-decay", "1e-4", "--decay-bias-norm", "--shuffle=false",
		"--reduce-lr-on-plateau", "loss:0,factor=0.5,min_delta=100", "--out", out}, set.subset...)...)
	r.expect(t, 0)
	lines := strings.Split(r.stdout, "\n")
	line := regexp.MustCompile(`^(\d+)/(\d+) - \S+ - \d+ samples/s - loss: (\S+) - accuracy: (\S+) - val_loss: (\S+) - val_accuracy: (\S+) - val_top5_accuracy: (\S+) - lr: (\S+)$`)
	epochs := 0
	for i, l := range lines {
		if !strings.HasPrefix(l, "Epoch ") {
			continue
		}
		epochs++
		if l != "Epoch "+strconv.Itoa(epochs)+"/3" || i+1 >= len(lines) {
			t.Fatalf("header %q, want Epoch %d/3", l, epochs)
		}
		m := line.FindStringSubmatch(lines[i+1])
		if m == nil {
			t.Fatalf("epoch line %q is not Keras' form", lines[i+1])
		}
		for _, v := range m[3:] {
			if sigDigits(v) != 4 {
				t.Errorf("%q in %q: want 4 significant digits", v, lines[i+1])
			}
		}
	}
	if epochs != 3 {
		t.Fatalf("%d epoch headers, want 3:\n%s", epochs, r.stdout)
	}
	for _, want := range []string{
		"ReduceLROnPlateau: epoch 2: loss has not improved",
		"\nOverfitting report (validation: ",
		"\n  best epoch ",
		"\n  last epoch 3:",
		"\n  defences on:  weight decay (0.0001 l2)\n",
		"\n  defences off: augmentation (--augment rotation=10,shift=0.1,zoom=0.1), early stopping (--early-stopping val_loss:5)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, n := range regexp.MustCompile(`\d+\.\d+`).FindAllString(r.stdout, -1) {
		if sigDigits(n) > 4 {
			t.Errorf("output has %s, a number with more than 4 significant digits:\n%s", n, r.stdout)
		}
	}
	h, _ := readHistory(t, out)
	if len(h) != 3 || h[1]["lr"] != 1e-3 || h[2]["lr"] != 5e-4 {
		t.Errorf("lr by epoch %v, %v, %v; want 0.001, 0.001, 0.0005 (halved after epoch 2)", h[0]["lr"], h[1]["lr"], h[2]["lr"])
	}
	b, err := os.ReadFile(filepath.Join(out, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, rep, err := checkpoint.ReadHistory(b)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Epochs != 3 || rep.Last.Epoch != 3 || len(rep.Defences) != 3 || !rep.Defences[1].On || rep.Defences[0].On {
		t.Errorf("report in history.json: %+v", rep)
	}
	m, err := graph.Load(filepath.Join(out, "best_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var used trainFlags
	if err := json.Unmarshal([]byte(m.Metadata["gotrain.config"]), &used); err != nil {
		t.Fatal(err)
	}
	if used.Shuffle || !used.DecayBiasNorm || used.Plateau != "loss:0,factor=0.5,min_delta=100" {
		t.Errorf("settings recorded: shuffle %v, decay_bias_norm %v, reduce_lr_on_plateau %q", used.Shuffle, used.DecayBiasNorm, used.Plateau)
	}
	oc, err := used.optimConfig()
	if err != nil || !oc.DecayBiasNorm {
		t.Errorf("optimizer config %+v, %v: want DecayBiasNorm", oc, err)
	}
}

// TestNoValidation: --val-split 0 trains without validation and the report
// says that nothing measured the gap.
func TestNoValidation(t *testing.T) {
	set := dataset(t)
	out := filepath.Join(t.TempDir(), "run")
	r := gotrain(t, append([]string{"train", "--model", "mlp", "--data", set.name, "--epochs", "1", "--threads", "1", "--val-split", "0", "--out", out}, set.subset...)...)
	r.expect(t, 0)
	for _, want := range []string{"(validation 0)", "no validation data (--val-split 0)", "best loss "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "val_loss: ") {
		t.Errorf("validation metrics without validation data:\n%s", r.stdout)
	}
	// The report suggests only flags that work together: early stopping on
	// val_loss needs validation data.
	if !strings.Contains(r.stdout, "early stopping (--val-split 0.1 --early-stopping val_loss:5)") {
		t.Errorf("the report's early-stopping suggestion does not hold validation data out:\n%s", r.stdout)
	}
}

// writeHistory writes a run folder's history.json: with the report as
// train writes it, or (report false) the array of epochs alone.
func writeHistory(t *testing.T, dir string, h []train.Logs, defences []checkpoint.Defence, report bool) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b []byte
	var err error
	if report {
		b, err = json.Marshal(map[string]any{"epochs": h, "overfitting": checkpoint.Overfitting(h, defences)})
	} else {
		b, err = json.Marshal(h)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "history.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCompare: compare prints each run's best validation metrics, gaps and
// defences, and draws every run's validation curves in one PNG.
func TestCompare(t *testing.T) {
	dir := t.TempDir()
	plain := []train.Logs{
		{"loss": 1, "accuracy": 0.5, "val_loss": 1.2, "val_accuracy": 0.45},
		{"loss": 0.5, "accuracy": 0.8, "val_loss": 0.9, "val_accuracy": 0.7},
		{"loss": 0.2, "accuracy": 0.95, "val_loss": 1.1, "val_accuracy": 0.72},
	}
	aug := []train.Logs{
		{"loss": 1.2, "accuracy": 0.45, "val_loss": 1.1, "val_accuracy": 0.5},
		{"loss": 0.8, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.74},
	}
	writeHistory(t, filepath.Join(dir, "plain"), plain, []checkpoint.Defence{{Name: "augmentation"}, {Name: "weight decay"}}, true)
	writeHistory(t, filepath.Join(dir, "augment"), aug, []checkpoint.Defence{{Name: "augmentation", On: true, Setting: "shift=0.1"}, {Name: "weight decay"}}, true)
	writeHistory(t, filepath.Join(dir, "old"), aug, nil, false)
	fig := filepath.Join(dir, "cmp.png")
	r := gotrain(t, "compare", filepath.Join(dir, "plain"), filepath.Join(dir, "augment"), filepath.Join(dir, "old", "history.json"), "--out", fig)
	r.expect(t, 0)
	rows := map[string]string{}
	for _, l := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = l
		}
	}
	for run, want := range map[string]*regexp.Regexp{
		// run, epochs, best epoch, val_loss, val_accuracy, gaps at best and
		// last (loss, accuracy points), where it overfits, defences on.
		"plain":   regexp.MustCompile(`^plain +3 +2 +0\.9000 +70\.00% +\+0\.4000, \+10\.00 +\+0\.9000, \+23\.00 +epoch 2 +none$`),
		"augment": regexp.MustCompile(`^augment +2 +2 +0\.8000 +74\.00% +\+0\.000, -4\.00 +\+0\.000, -4\.00 +still improving +augmentation$`),
		"old":     regexp.MustCompile(`^old +2 +2 +0\.8000 +74\.00% .* \(not recorded\)$`),
	} {
		if !want.MatchString(rows[run]) {
			t.Errorf("row %q does not match %s\n%s", rows[run], want, r.stdout)
		}
	}
	f, err := os.Open(fig)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Each run's curve is drawn in its colour.
	for i := range 3 {
		if !hasColour(im, plotutil.Color(i)) {
			t.Errorf("run %d's colour %v is not in the figure", i, plotutil.Color(i))
		}
	}

	// A path that never ends is not read to the end.
	if _, err := os.Stat("/dev/zero"); err == nil {
		gotrain(t, "compare", "/dev/zero", "--out", fig).expect(t, 1, "/dev/zero", "larger than")
	}

	// A run without validation data has no curve, and compare says so;
	// with no curve at all it draws no (empty) figure.
	noVal := []train.Logs{{"loss": 1, "accuracy": 0.5}, {"loss": 0.5, "accuracy": 0.8}}
	writeHistory(t, filepath.Join(dir, "noval"), noVal, nil, true)
	r = gotrain(t, "compare", filepath.Join(dir, "plain"), filepath.Join(dir, "noval"), "--out", fig)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "noval: no validation data, so no curve") || !strings.Contains(r.stdout, "validation curves: "+fig) {
		t.Errorf("compare with a run without validation:\n%s", r.stdout)
	}
	none := filepath.Join(dir, "none.png")
	r = gotrain(t, "compare", filepath.Join(dir, "noval"), "--out", none)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "validation curves: none drawn: no run has validation data") {
		t.Errorf("compare of runs without validation:\n%s", r.stdout)
	}
	if _, err := os.Stat(none); err == nil {
		t.Errorf("compare drew %s with no curve in it", none)
	}
	// A run that diverged logged val_loss as NaN at every epoch: nothing
	// to draw either.
	// (history.json writes a non-finite value as null, read back as NaN).
	if err := os.MkdirAll(filepath.Join(dir, "diverged"), 0o755); err != nil {
		t.Fatal(err)
	}
	nulls := `[{"loss": null, "val_loss": null}, {"loss": null, "val_loss": null}]`
	if err := os.WriteFile(filepath.Join(dir, "diverged", "history.json"), []byte(nulls), 0o644); err != nil {
		t.Fatal(err)
	}
	r = gotrain(t, "compare", filepath.Join(dir, "diverged"), "--out", none)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "validation curves: none drawn") {
		t.Errorf("compare of a run whose val_loss is NaN throughout:\n%s", r.stdout)
	}
	if _, err := os.Stat(none); err == nil {
		t.Errorf("compare drew %s with no curve in it", none)
	}
}

func hasColour(im image.Image, c color.Color) bool {
	want := color.RGBAModel.Convert(c).(color.RGBA)
	b := im.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(im.At(x, y)).(color.RGBA) == want {
				return true
			}
		}
	}
	return false
}

// writeFolder makes an image-folder dataset of 8x8 RGB images: a bright
// centre ("blob") or a bright column ("stripe").
func writeFolder(t *testing.T, dir string) {
	t.Helper()
	for _, class := range []string{"blob", "stripe"} {
		if err := os.MkdirAll(filepath.Join(dir, class), 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 12 {
			im := image.NewRGBA(image.Rect(0, 0, 8, 8))
			for y := range 8 {
				for x := range 8 {
					on := (class == "blob" && x >= 2+i%3 && x < 5+i%3 && y >= 3 && y < 6) || (class == "stripe" && x == i%8)
					if on {
						im.Set(x, y, color.RGBA{R: 250, G: 240, B: 230, A: 255})
					} else {
						im.Set(x, y, color.RGBA{R: uint8(10 * i), A: 255})
					}
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, im); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, class, strconv.Itoa(i)+".png"), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPredictClassNames: a model trained on an image folder records its
// class names, which predict prints; --class-names gives them to a model
// without them.
func TestPredictClassNames(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	writeFolder(t, photos)
	out := filepath.Join(dir, "run")
	gotrain(t, "train", "--model", "mlp", "--data", photos, "--epochs", "2", "--val-split", "0.25", "--threads", "1", "--out", out).expect(t, 0)
	img := filepath.Join(photos, "stripe", "3.png")
	names := regexp.MustCompile(`^` + regexp.QuoteMeta(img) + `: \d "(blob|stripe)" \([0-9.]+\), \d "(blob|stripe)" \([0-9.]+\)$`)
	r := gotrain(t, "predict", "--model", filepath.Join(out, "best_model.onnx"), img)
	r.expect(t, 0)
	// A header saying what the numbers are, the input scale, the file.
	if l := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(l) != 3 || !names.MatchString(l[2]) {
		t.Errorf("predict output:\n%s\nwant a line naming both classes", r.stdout)
	}
	bare := exportModel(t, dir, "mlp", "--input", "3x8x8", "--classes", "2")
	r = gotrain(t, "predict", "--model", bare, img)
	r.expect(t, 0)
	if strings.Contains(r.stdout, `"blob"`) {
		t.Errorf("names without a source:\n%s", r.stdout)
	}
	r = gotrain(t, "predict", "--model", bare, "--class-names", photos, img)
	r.expect(t, 0)
	if l := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(l) != 3 || !names.MatchString(l[2]) {
		t.Errorf("predict --class-names output:\n%s", r.stdout)
	}
	gotrain(t, "predict", "--model", bare, "--class-names", filepath.Join(dir, "nowhere"), img).expect(t, 2, "--class-names", "nowhere")
}

// TestTooSmallModel: a built-in model too small for its input names the
// layer and says what would fit.
func TestTooSmallModel(t *testing.T) {
	dir := t.TempDir()
	r := gotrain(t, "models", "export", "cnn", "--input", "1x8x8", "-o", filepath.Join(dir, "c.onnx"))
	r.expect(t, 1, "model cnn for input 1x8x8", "layer pool2 (after conv2)", "too small", "at least 10x10", "--resize 10x10", "fits 1x8x8: mlp")
	if _, err := os.Stat(filepath.Join(dir, "c.onnx")); err == nil {
		t.Error("the model was written")
	}
	if dataset(t).name != "digits" {
		return
	}
	r = gotrain(t, "train", "--model", "cnn", "--data", "digits", "--epochs", "1", "--out", filepath.Join(dir, "run"))
	r.expect(t, 1, "layer pool2 (after conv2)", "--resize 10x10", "mlp")
}

// TestTopKTooLarge: --top-k beyond the data's classes is a usage error.
func TestTopKTooLarge(t *testing.T) {
	set := dataset(t)
	r := gotrain(t, append([]string{"train", "--model", "mlp", "--data", set.name, "--top-k", "11", "--out", filepath.Join(t.TempDir(), "run")}, set.subset...)...)
	r.expect(t, 2, "--top-k 11", "only 10 classes")
}

// TestFlatInput: --input F builds the MLP on flat features, for export
// and for training.
func TestFlatInput(t *testing.T) {
	dir := t.TempDir()
	path := exportModel(t, dir, "mlp", "--input", "784")
	r := gotrain(t, "inspect", "--model", path)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "input  input: float32[N,784]") {
		t.Errorf("inspect:\n%s", r.stdout)
	}
	set := dataset(t)
	ss := strings.Split(set.shape, "x")
	c, _ := strconv.Atoi(ss[0])
	h, _ := strconv.Atoi(ss[1])
	w, _ := strconv.Atoi(ss[2])
	out := filepath.Join(dir, "run")
	r = gotrain(t, append([]string{"train", "--model", "mlp", "--input", strconv.Itoa(c * h * w), "--data", set.name, "--epochs", "1", "--threads", "1", "--out", out}, set.subset...)...)
	r.expect(t, 0)
	m, err := graph.Load(filepath.Join(out, "best_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	if in := m.Graph.Inputs[0].Shape; len(in) != 2 || int(in[1].Size) != c*h*w {
		t.Errorf("trained model input %v, want [N,%d]", in, c*h*w)
	}
	// predict takes the flat model's samples as .npy files.
	npy := filepath.Join(dir, "x.npy")
	writeNPY(t, npy, make([]float32, c*h*w), 1, c*h*w)
	gotrain(t, "predict", "--model", filepath.Join(out, "best_model.onnx"), npy).expect(t, 0)
	img := filepath.Join(dir, "x.png")
	writePNG(t, img, 8, 8)
	gotrain(t, "predict", "--model", filepath.Join(out, "best_model.onnx"), img).expect(t, 1, "features, not an image")
}

// TestAugmentSeed: the grid is a function of --seed.
func TestAugmentSeed(t *testing.T) {
	ds := dataset(t).name
	dir := t.TempDir()
	grid := func(name, seed string) []byte {
		path := filepath.Join(dir, name)
		gotrain(t, "augment", "--data", ds, "--augment", "rotation=30,shift=0.2", "--rows", "3", "--seed", seed, "--out", path).expect(t, 0)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := grid("a.png", "3"), grid("b.png", "3"), grid("c.png", "4")
	if !bytes.Equal(a, b) {
		t.Error("the same seed drew different grids")
	}
	if bytes.Equal(a, c) {
		t.Error("seeds 3 and 4 drew the same grid")
	}
}

func TestVersion(t *testing.T) {
	r := gotrain(t, "version")
	r.expect(t, 0)
	for _, want := range []string{"gotrain:", "module:    github.com/gotrain/gotrain", "go:        " + runtime.Version(), "cgo:", "tags:", "kernels:   " + cpu.KernelInfo().Path, "gemm:      " + cpu.KernelInfo().GEMM} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = gotrain(t, "--version")
	r.expect(t, 0)
	if !strings.HasPrefix(r.stdout, "gotrain ") {
		t.Errorf("--version: %q", r.stdout)
	}
}

// TestCompletion: cobra's completion scripts, and the values completed
// for a flag through its __complete protocol.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "# bash completion V2 for gotrain", "zsh": "#compdef gotrain", "fish": "complete -c gotrain"} {
		r := gotrain(t, "completion", shell)
		r.expect(t, 0)
		if !strings.Contains(r.stdout, want) {
			t.Errorf("completion %s lacks %q", shell, want)
		}
	}
	r := gotrain(t, "__complete", "train", "--optimizer", "")
	r.expect(t, 0)
	got := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, o := range []string{"sgd", "adam", "adamw"} {
		if !slices.Contains(got, o) {
			t.Errorf("--optimizer completes to %v, want %s among them", got, o)
		}
	}
	r = gotrain(t, "__complete", "train", "--reduce-lr")
	r.expect(t, 0)
	if !strings.HasPrefix(r.stdout, "--reduce-lr-on-plateau") {
		t.Errorf("--reduce-lr completes to %q", r.stdout)
	}
}

// TestEpochNumbers: num keeps 4 significant digits and trailing zeros.
func TestEpochNumbers(t *testing.T) {
	for v, want := range map[float64]string{0.08344682455062866: "0.08345", 0.9: "0.9000", 1: "1.000", 2.302585: "2.303", 1e-5: "1.000e-05", 1234.56: "1235"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
	if s := formatLogs(train.Logs{"val_accuracy": 0.5, "loss": 1, "val_loss": 2, "accuracy": 0.25, "top5_accuracy": 1, "lr": 0.1}, false); s != "loss: 1.000 - accuracy: 0.2500 - top5_accuracy: 1.000 - val_loss: 2.000 - val_accuracy: 0.5000" {
		t.Errorf("formatLogs: %q", s)
	}
}

func TestPlural(t *testing.T) {
	for _, c := range []struct {
		n    int
		what string
		want string
	}{
		{1, "epoch", "1 epoch"},
		{2, "epoch", "2 epochs"},
		{0, "epoch", "0 epochs"},
		{1, "batch", "1 batch"},
		{3, "batch", "3 batches"},
		{2, "input", "2 inputs"},
	} {
		if got := plural(c.n, c.what); got != c.want {
			t.Errorf("plural(%d, %q) = %q, want %q", c.n, c.what, got, c.want)
		}
	}
}
