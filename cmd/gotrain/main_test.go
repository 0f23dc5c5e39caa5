package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// The tests run the command in-process through run, as main does, and
// check exit codes (0 ok, 1 failure, 2 usage), what is printed and what is
// written.

type result struct {
	code           int
	stdout, stderr string
}

func gotrain(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

// expect checks the exit code and that stderr holds every want string.
func (r result) expect(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not mention %q:\n%s", w, r.stderr)
		}
	}
}

// testSet is a built-in dataset small enough to train on in a test.
type testSet struct {
	name   string
	subset []string // --subset flags, if any
	shape  string   // CxHxW
	// minAcc is the accuracy eval must report after one epoch of Adam at
	// 3e-3 (testdata/train.yaml). On digits it reaches 0.91 on the first
	// 500 samples with pixels scaled to [0, 1], and 0.64 when they are
	// scaled as bytes (values 0..16 divided by 255), so 0.8 catches that.
	// 200 MNIST images and 4 steps promise less: 0.3 is three times chance.
	minAcc float64
}

// dataset is the smallest built-in dataset installed: digits (1,797 8x8
// images), else 200 MNIST images. Tests that train or evaluate skip (fail
// under CI) when neither is there.
func dataset(t *testing.T) testSet {
	t.Helper()
	if _, err := data.Locate("digits"); err == nil {
		return testSet{"digits", nil, "1x8x8", 0.8}
	}
	if _, err := data.Locate("mnist"); err == nil {
		return testSet{"mnist", []string{"--subset", "200"}, "1x28x28", 0.3}
	}
	testenv.Missing(t, "neither the digits nor the mnist dataset is installed (make deps)")
	return testSet{}
}

func writeNPY(t *testing.T, path string, v any, shape ...int) {
	t.Helper()
	x, err := tensor.FromSlice(v, shape...)
	if err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNPYFile(path, x); err != nil {
		t.Fatal(err)
	}
}

func readNPY(t *testing.T, path string) *tensor.Tensor {
	t.Helper()
	x, err := tensor.ReadNPYFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func exportModel(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	path := filepath.Join(dir, name+".onnx")
	r := gotrain(t, append([]string{"models", "export", name, "-o", path}, args...)...)
	r.expect(t, 0)
	return path
}

func TestHelp(t *testing.T) {
	for _, c := range []struct {
		args  []string
		code  int
		usage string // the usage line stdout holds
		flags []string
	}{
		{nil, 2, "gotrain [command]", nil},
		{[]string{"--help"}, 0, "gotrain [command]", nil},
		{[]string{"help"}, 0, "gotrain [command]", nil},
		{[]string{"-h"}, 0, "gotrain [command]", nil},
		{[]string{"train", "--help"}, 0, "gotrain train [flags]", []string{"--model", "--data", "--config", "--strategy", "--weight-decay", "--early-stopping", "--resume",
			"--shuffle", "--decay-bias-norm", "--reduce-lr-on-plateau"}},
		{[]string{"train", "-help"}, 0, "gotrain train [flags]", []string{"--model"}}, // Go's flag spelling
		{[]string{"eval", "-h"}, 0, "gotrain eval [flags]", []string{"--model", "--data", "--split", "--limit"}},
		{[]string{"predict", "--help"}, 0, "gotrain predict FILE... [flags]", []string{"--model", "--top", "--class-names"}},
		{[]string{"run", "--help"}, 0, "gotrain run [flags]", []string{"--model", "--input", "--output-dir"}},
		{[]string{"inspect", "--help"}, 0, "gotrain inspect [flags]", []string{"--model"}},
		{[]string{"models", "--help"}, 0, "gotrain models [flags]", nil},
		{[]string{"models", "export", "--help"}, 0, "gotrain models export NAME -o FILE.onnx [flags]", []string{"-o, --out", "--input", "--classes"}},
		{[]string{"compare", "--help"}, 0, "gotrain compare RUN_DIR... [flags]", []string{"--out"}},
		{[]string{"conformance", "--help"}, 0, "gotrain conformance [flags]", []string{"--backend", "--data", "-v, --verbose"}},
		{[]string{"augment", "--help"}, 0, "gotrain augment [flags]", []string{"--augment", "--out", "--rows", "--seed"}},
		{[]string{"bench", "--help"}, 0, "gotrain bench [flags]", []string{"--model", "--batch", "--train"}},
		{[]string{"version", "--help"}, 0, "gotrain version [flags]", nil},
		{[]string{"completion", "--help"}, 0, "gotrain completion [command]", nil},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := gotrain(t, c.args...)
			r.expect(t, c.code)
			if r.stderr != "" {
				t.Errorf("help wrote to stderr: %s", r.stderr)
			}
			if !strings.Contains(r.stdout, "Usage:\n  "+c.usage+"\n") {
				t.Errorf("stdout does not show the usage %q:\n%s", c.usage, r.stdout)
			}
			if c.args == nil || c.args[0] != "completion" {
				if !strings.Contains(r.stdout, "Examples:\n  gotrain ") {
					t.Errorf("no examples:\n%s", r.stdout)
				}
			}
			for _, f := range c.flags {
				// pflag lists "  -o, --out string   ..." or "      --model string   ...".
				if !regexp.MustCompile(`\n\s+` + regexp.QuoteMeta(f) + `[ \n]`).MatchString(r.stdout) {
					t.Errorf("flag %s is not listed:\n%s", f, r.stdout)
				}
			}
			if c.usage == "gotrain [command]" {
				if !strings.HasPrefix(r.stdout, "gotrain trains") {
					t.Errorf("root help does not start with what gotrain does:\n%s", r.stdout)
				}
				for _, cmd := range newRoot(nil, nil, nil).Commands() {
					if !strings.Contains(r.stdout, "\n  "+cmd.Name()+" ") {
						t.Errorf("command %s is not listed:\n%s", cmd.Name(), r.stdout)
					}
				}
			}
		})
	}
}

// TestEveryCommandHasExamples: each command's help shows how it is used.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Example == "" && c.Name() != "help" && c.Name() != "completion" && c.Parent() != nil && c.Parent().Name() != "completion" {
			t.Errorf("command %q has no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(nil, nil, nil))
}

// TestUsageErrors checks that every bad flag, argument and config key is
// rejected with exit code 2 and a message naming it, before any work: the
// --out folder is never created.
func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	td := func(name string) string { return filepath.Join("testdata", name) }
	mlpFile := exportModel(t, dir, "mlp", "--input", "1x8x8")
	longValue := filepath.Join(dir, "long.yaml")
	if err := os.WriteFile(longValue, bytes.Repeat([]byte("a"), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"unknown command", []string{"bogus"}, []string{`unknown command "bogus"`}},
		{"unknown command after a root flag", []string{"--max-memory", "1GiB", "bogus"}, []string{`unknown command "bogus"`}},
		{"unknown flag", []string{"train", "--model", "mlp", "--bogus"}, []string{"--bogus", "gotrain train --help"}},
		{"unknown flag default command", []string{"--model", "mlp", "--learning-rate", "0.1"}, []string{"--learning-rate"}},
		{"not a number", []string{"train", "--model", "mlp", "--epochs", "x"}, []string{`invalid value "x" for --epochs`, "an integer"}},
		{"not a bool", []string{"train", "--model", "mlp", "--shuffle=maybe"}, []string{`invalid value "maybe" for --shuffle`, "true or false"}},
		{"flag without value", []string{"train", "--model", "mlp", "--epochs"}, []string{"--epochs"}},
		{"single-dash long flag", []string{"train", "-model", "mlp", "-epochs", "0"}, []string{"--epochs 0", "at least 1"}},
		{"unexpected argument", []string{"train", "--model", "mlp", "extra"}, []string{`unexpected argument "extra"`}},
		{"boolean value apart", []string{"train", "--model", "mlp", "--shuffle", "false"}, []string{`unexpected argument "false"`, "--shuffle=false"}},
		{"epochs 0", []string{"train", "--model", "mlp", "--epochs", "0"}, []string{"--epochs 0", "at least 1"}},
		{"batch size -1", []string{"train", "--model", "mlp", "--batch-size", "-1"}, []string{"--batch-size -1"}},
		{"decay mode", []string{"train", "--model", "mlp", "--decay-mode", "l3"}, []string{`--decay-mode "l3"`, "l2 or decoupled"}},
		{"strategy", []string{"train", "--model", "mlp", "--strategy", "ring"}, []string{`--strategy "ring"`, "single, mirrored or multiworker"}},
		{"augment key", []string{"train", "--model", "mlp", "--augment", "rotation=10,blur=2"}, []string{"--augment", `"blur"`}},
		{"early stopping form", []string{"train", "--model", "mlp", "--early-stopping", "val_loss"}, []string{`--early-stopping "val_loss"`, "MONITOR:PATIENCE"}},
		{"early stopping monitor", []string{"train", "--model", "mlp", "--early-stopping", "val_los:3"}, []string{`monitor "val_los"`}},
		{"schedule", []string{"train", "--model", "mlp", "--schedule", "triangle:period=3"}, []string{"--schedule", `"triangle"`}},
		{"replicas single", []string{"train", "--model", "mlp", "--replicas", "2"}, []string{"--replicas 2", "--strategy mirrored"}},
		{"missing model", []string{"train", "--data", "digits"}, []string{"--model is required", "mlp"}},
		{"unknown zoo model", []string{"train", "--model", "alexnet"}, []string{`--model "alexnet"`, "cnn, lenet5, mlp"}},
		{"missing model file", []string{"train", "--model", filepath.Join(dir, "nope.onnx")}, []string{"--model", "nope.onnx"}},
		{"input rank", []string{"train", "--model", "cnn", "--input", "28x28"}, []string{"--input", `"28x28"`, "CxHxW"}},
		{"input zero", []string{"train", "--model", "cnn", "--input", "1x0x28"}, []string{"--input", `"1x0x28"`}},
		{"input flat for a conv model", []string{"train", "--model", "cnn", "--input", "784"}, []string{"--input 784", "cnn takes CxHxW", "mlp"}},
		{"input flat zero", []string{"train", "--model", "mlp", "--input", "0"}, []string{"--input", `"0"`, "feature count"}},
		{"unknown data", []string{"train", "--model", "mlp", "--data", "cifar-11"}, []string{`--data "cifar-11"`, "digits, fashion-mnist, mnist"}},
		{"missing npy", []string{"train", "--model", "mlp", "--data", "x.npy,y.npy"}, []string{`--data "x.npy,y.npy"`}},
		{"val data", []string{"train", "--model", "mlp", "--val-data", "nowhere/"}, []string{`--val-data "nowhere/"`}},
		{"val split", []string{"train", "--model", "mlp", "--val-split", "1"}, []string{"--val-split 1"}},
		{"lr", []string{"train", "--model", "mlp", "--lr", "-0.1"}, []string{"--lr -0.1"}},
		{"optimizer", []string{"train", "--model", "mlp", "--optimizer", "lion"}, []string{"--optimizer", `"lion"`}},
		{"momentum with adam", []string{"train", "--model", "mlp", "--momentum", "0.9"}, []string{"--momentum", "adam"}},
		{"momentum 1", []string{"train", "--model", "mlp", "--optimizer", "momentum", "--momentum", "1"}, []string{"--momentum 1", "[0, 1)"}},
		{"momentum negative", []string{"train", "--model", "mlp", "--optimizer", "sgd", "--momentum", "-0.5"}, []string{"--momentum -0.5", "[0, 1)"}},
		{"plateau form", []string{"train", "--model", "mlp", "--reduce-lr-on-plateau", "val_loss"}, []string{"--reduce-lr-on-plateau", "MONITOR:PATIENCE"}},
		{"plateau monitor", []string{"train", "--model", "mlp", "--reduce-lr-on-plateau", "val_acc:3"}, []string{"--reduce-lr-on-plateau", `monitor "val_acc"`}},
		{"plateau factor", []string{"train", "--model", "mlp", "--reduce-lr-on-plateau", "val_loss:3,factor=2"}, []string{"--reduce-lr-on-plateau", "factor=2", "(0, 1)"}},
		{"plateau key", []string{"train", "--model", "mlp", "--reduce-lr-on-plateau", "val_loss:3,patience=2"}, []string{"--reduce-lr-on-plateau", `"patience=2"`}},
		{"plateau twice", []string{"train", "--model", "mlp", "--reduce-lr-on-plateau", "val_loss:3,factor=0.5,factor=0.2"}, []string{"factor given twice"}},
		{"early stopping without validation", []string{"train", "--model", "mlp", "--val-split", "0", "--early-stopping", "val_loss:3"}, []string{"--early-stopping val_loss:3", "--val-split 0"}},
		{"plateau without validation", []string{"train", "--model", "mlp", "--val-split", "0", "--reduce-lr-on-plateau", "val_accuracy:3"}, []string{"--reduce-lr-on-plateau val_accuracy:3", "--val-split 0"}},
		{"clip norm", []string{"train", "--model", "mlp", "--clip-norm", "-1"}, []string{"--clip-norm"}},
		{"loss", []string{"train", "--model", "mlp", "--loss", "hinge"}, []string{`--loss "hinge"`}},
		{"label smoothing", []string{"train", "--model", "mlp", "--label-smoothing", "1"}, []string{"--label-smoothing 1"}},
		{"backend", []string{"train", "--model", "mlp", "--backend", "tpu"}, []string{"--backend", `"tpu"`}},
		{"resize", []string{"train", "--model", "mlp", "--resize", "32"}, []string{`--resize "32"`, "HxW"}},
		{"resume", []string{"train", "--model", "mlp", "--resume", filepath.Join(dir, "state.ckpt")}, []string{"--resume", "state.ckpt"}},
		{"config missing", []string{"train", "--config", filepath.Join(dir, "run.yaml")}, []string{"--config", "run.yaml"}},
		{"config unknown key yaml", []string{"train", "--config", td("unknown_key.yaml")}, []string{"unknown_key.yaml", `unknown key "epoch"`}},
		{"config unknown key json", []string{"train", "--config=" + td("unknown_key.json")}, []string{"unknown_key.json", `unknown key "learning_rate"`}},
		{"config bad type yaml", []string{"train", "--config", td("bad_type.yaml")}, []string{"bad_type.yaml line 4", `key "epochs"`, "integer"}},
		{"config bad type json", []string{"train", "--config", td("bad_type.json")}, []string{"bad_type.json", `key "epochs"`, "integer"}},
		{"config twice, two spellings", []string{"train", "--config", td("twice.yaml")}, []string{"twice.yaml", `key "lr" (line 2)`, `key "optimizer.lr" (line 5)`, "both set lr"}},
		{"config key twice", []string{"train", "--config", td("dup_key.yaml")}, []string{"dup_key.yaml", `key "epochs" (line 2)`, `key "epochs" (line 3)`}},
		{"config dash and underscore", []string{"train", "--config", td("spellings.json")}, []string{"spellings.json", `key "batch_size"`, `key "batch-size"`, "both set batch_size"}},
		{"config bad section key", []string{"train", "--config", td("bad_section.yaml")}, []string{"bad_section.yaml line 3", `unknown key "optimizer.nme"`, "name, "}},
		{"config null", []string{"train", "--config", td("null_value.yaml")}, []string{"null_value.yaml line 2", `key "augment" has no value`}},
		{"config bad augment section", []string{"train", "--config", td("bad_augment.yaml")}, []string{"bad_augment.yaml line 2", "augment", `"blur"`}},
		{"config early stopping section", []string{"train", "--config", td("early_no_patience.yaml")}, []string{"early_no_patience.yaml", "early_stopping", "needs patience"}},
		{"config values", []string{"train", "--config", td("invalid_values.json")}, []string{"--epochs 0"}},
		{"config of two documents", []string{"train", "--config", td("two_documents.yaml")}, []string{"two_documents.yaml line 4", "second YAML document"}},
		{"config without end", []string{"train", "--config", "/dev/zero"}, []string{"/dev/zero", "larger than 1 MiB"}},
		{"config value too long to print", []string{"train", "--config", longValue}, []string{"long.yaml line 1", `"aaaa`, "(300000 bytes)"}},
		// The flag overrides the config's epochs 0; its batch_size -1 stays.
		{"config overridden", []string{"train", "--config", td("invalid_values.json"), "--epochs", "3"}, []string{"--batch-size -1"}},
		{"eval split", []string{"eval", "--model", "m.onnx", "--split", "val"}, []string{`--split "val"`}},
		{"eval model", []string{"eval", "--data", "digits"}, []string{"--model is required"}},
		{"predict files", []string{"predict", "--model", "m.onnx"}, []string{"image or .npy file"}},
		{"predict top", []string{"predict", "--model", "m.onnx", "--top", "0", "a.png"}, []string{"--top 0"}},
		{"run model", []string{"run", "--input", "x.npy"}, []string{"--model is required"}},
		{"inspect model", []string{"inspect"}, []string{"--model is required"}},
		{"models subcommand", []string{"models", "show"}, []string{`"show"`, "list or export"}},
		{"models export output", []string{"models", "export", "cnn"}, []string{"-o FILE.onnx"}},
		{"models export two names", []string{"models", "export", "cnn", "mlp", "-o", filepath.Join(dir, "c.onnx")}, []string{`unexpected argument "mlp"`}},
		{"models list argument", []string{"models", "list", "cnn"}, []string{`unexpected argument "cnn"`}},
		{"models export input", []string{"models", "export", "cnn", "--input", "1x28", "-o", filepath.Join(dir, "c.onnx")}, []string{`"1x28"`}},
		{"conformance data", []string{"conformance", "--data", filepath.Join(dir, "tests")}, []string{"--data", "tests"}},
		{"augment spec", []string{"augment", "--augment", "twist=3"}, []string{"--augment", `"twist"`}},
		{"augment seed twice", []string{"augment", "--augment", "rotation=10,seed=2", "--seed", "3"}, []string{"--seed 3", "seed=2"}},
		{"compare nothing", []string{"compare"}, []string{"at least one run"}},
		{"compare missing run", []string{"compare", filepath.Join(dir, "nowhere")}, []string{"nowhere", "history.json"}},
		{"version argument", []string{"version", "x"}, []string{`unexpected argument "x"`}},
		{"inspect argument", []string{"inspect", "--model", "mlp", "x"}, []string{`unexpected argument "x"`}},
		{"augment argument", []string{"augment", "x"}, []string{`unexpected argument "x"`}},
		{"bench argument", []string{"bench", "x"}, []string{`unexpected argument "x"`}},
		{"eval argument", []string{"eval", "--model", "mlp", "x"}, []string{`unexpected argument "x"`}},
		{"conformance boolean apart", []string{"conformance", "-v", "false"}, []string{`unexpected argument "false"`, "--verbose=false"}},
		{"completion shell", []string{"completion", "tcsh"}, []string{`unknown command "tcsh"`}},
		// NaN passes a range check written as two comparisons.
		{"val split NaN", []string{"train", "--model", "mlp", "--val-split", "NaN"}, []string{"--val-split NaN"}},
		{"label smoothing NaN", []string{"train", "--model", "mlp", "--label-smoothing", "NaN"}, []string{"--label-smoothing NaN"}},
		// Settings that would be ignored are refused, naming what they need.
		{"label smoothing of mse", []string{"train", "--model", "mlp", "--loss", "mse", "--label-smoothing", "0.1"}, []string{"--label-smoothing 0.1", "cross-entropy", "--loss mse"}},
		{"resize of a built-in dataset", []string{"train", "--model", "mlp", "--data", "digits", "--resize", "16x16"}, []string{"--resize 16x16", "image folder", `--data "digits"`}},
		{"input of a model file", []string{"train", "--model", mlpFile, "--input", "1x16x16"}, []string{"--input 1x16x16", "built-in model", "mlp.onnx"}},
		{"sync batchnorm on one device", []string{"train", "--model", "mlp", "--sync-batchnorm"}, []string{"--sync-batchnorm", "--strategy mirrored"}},
		{"shard size without deterministic", []string{"train", "--model", "mlp", "--shard-size", "4"}, []string{"--shard-size 4", "--deterministic"}},
		{"decay of biases without decay", []string{"train", "--model", "mlp", "--decay-bias-norm"}, []string{"--decay-bias-norm", "--weight-decay"}},
		{"decoupled decay without decay", []string{"train", "--model", "mlp", "--decay-mode", "decoupled"}, []string{"--decay-mode decoupled", "--weight-decay"}},
		{"top-k without validation", []string{"train", "--model", "mlp", "--val-split", "0", "--top-k", "3"}, []string{"--top-k 3", "--val-split 0"}},
		{"max memory", []string{"train", "--model", "mlp", "--max-memory", "0"}, []string{`invalid value "0" for --max-memory`, "positive size"}},
		{"models export classes", []string{"models", "export", "cnn", "--classes", "1", "-o", filepath.Join(dir, "c.onnx")}, []string{"--classes 1"}},
		{"models export dropout", []string{"models", "export", "cnn", "--dropout", "1.5", "-o", filepath.Join(dir, "c.onnx")}, []string{"--dropout 1.5"}},
		{"models export dropout NaN", []string{"models", "export", "cnn", "--dropout", "NaN", "-o", filepath.Join(dir, "c.onnx")}, []string{"--dropout NaN"}},
		{"models export unknown model", []string{"models", "export", "alexnet", "-o", filepath.Join(dir, "c.onnx")}, []string{`"alexnet"`, "cnn, lenet5"}},
		{"bench batch", []string{"bench", "--batch", "0"}, []string{"--batch 0"}},
		{"bench seconds NaN", []string{"bench", "--seconds", "NaN"}, []string{"--seconds NaN"}},
		{"bench threads", []string{"bench", "--threads", "-1"}, []string{"--threads -1"}},
		{"bench classes", []string{"bench", "--classes", "1"}, []string{"--classes 1"}},
		{"bench strategy without train", []string{"bench", "--strategy", "mirrored"}, []string{"--strategy mirrored", "--train"}},
		// A --model that is not there is a bad flag for every command, as for train.
		{"eval missing model", []string{"eval", "--model", filepath.Join(dir, "nope.onnx"), "--data", "digits"}, []string{"--model", "nope.onnx"}},
		{"predict missing model", []string{"predict", "--model", filepath.Join(dir, "nope.onnx"), "a.png"}, []string{"--model", "nope.onnx"}},
		{"run missing model", []string{"run", "--model", filepath.Join(dir, "nope.onnx"), "--input", "x.npy"}, []string{"--model", "nope.onnx"}},
		{"inspect missing model", []string{"inspect", "--model", filepath.Join(dir, "nope.onnx")}, []string{"--model", "nope.onnx"}},
		{"inspect a folder", []string{"inspect", "--model", dir}, []string{"--model", "is a folder"}},
		{"bench missing model", []string{"bench", "--model", filepath.Join(dir, "nope.onnx")}, []string{"--model", "nope.onnx"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))
			args := c.args
			if args[0] == "train" || strings.HasPrefix(args[0], "-") {
				args = append(args[:len(args):len(args)], "--out", out)
			}
			r := gotrain(t, args...)
			r.expect(t, 2, c.want...)
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was created before the flags were checked", out)
			}
			if strings.Contains(r.stderr, "panic") {
				t.Errorf("panic: %s", r.stderr)
			}
		})
	}
}

// TestOutUnderFile: an --out folder that cannot be made fails before the
// data is read or training starts, naming the path.
func TestOutUnderFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := gotrain(t, "train", "--model", "mlp", "--data", "mnist", "--out", filepath.Join(file, "run"))
	r.expect(t, 1, "--out", filepath.Join(file, "run"), "not a directory")
	if r.stdout != "" {
		t.Errorf("work started: %s", r.stdout)
	}
	r = gotrain(t, "models", "export", "mlp", "-o", filepath.Join(file, "m.onnx"))
	r.expect(t, 1, file)
}

func TestModelsListExportInspect(t *testing.T) {
	r := gotrain(t, "models", "list")
	r.expect(t, 0)
	for _, n := range []string{"cnn", "lenet5", "mlp", "resnet20", "vgg"} {
		if !regexp.MustCompile(`(?m)^` + n + ` +\S`).MatchString(r.stdout) {
			t.Errorf("models list has no line for %s:\n%s", n, r.stdout)
		}
	}
	dir := t.TempDir()
	// The export creates missing folders.
	path := filepath.Join(dir, "sub", "mlp.onnx")
	gotrain(t, "models", "export", "mlp", "--input", "1x8x8", "--classes", "10", "-o", path).expect(t, 0)
	r = gotrain(t, "inspect", "--model", path)
	r.expect(t, 0)
	// MLP 512-256-10 on 64 inputs: 64*512+512 + 512*256+256 + 256*10+10.
	want := 64*512 + 512 + 512*256 + 256 + 256*10 + 10
	for _, s := range []string{
		"input  input: float32[N,1,8,8]",
		"output logits: float32[N,10]",
		"Gemm x3",
		"fc1.weight",
		"parameters: " + strconv.Itoa(want) + "\n",
		"gotrain can run every op of this model",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, r.stdout)
		}
	}
	gotrain(t, "models", "export", "transformer", "-o", filepath.Join(dir, "t.onnx")).expect(t, 2, `"transformer"`)
}

// mlpForward computes the exported MLP in float64 from its initializers:
// Gemm(transB) + ReLU, twice, then Gemm.
func mlpForward(t *testing.T, m *graph.Model, x []float32, n int) []float64 {
	t.Helper()
	h := make([]float64, len(x))
	for i, v := range x {
		h[i] = float64(v)
	}
	in := len(x) / n
	for l, layer := range []string{"fc1", "fc2", "fc3"} {
		w, b := m.Graph.Initializer(layer+".weight"), m.Graph.Initializer(layer+".bias")
		if w == nil || b == nil {
			t.Fatalf("%s has no %s parameters", layer, layer)
		}
		out := w.Shape()[0]
		wf, bf := w.Float32s(), b.Float32s()
		next := make([]float64, n*out)
		for s := range n {
			for o := range out {
				acc := float64(bf[o])
				for i := range in {
					acc += h[s*in+i] * float64(wf[o*in+i])
				}
				if l < 2 {
					acc = max(acc, 0)
				}
				next[s*out+o] = acc
			}
		}
		h, in = next, out
	}
	return h
}

func TestRunNPY(t *testing.T) {
	dir := t.TempDir()
	path := exportModel(t, dir, "mlp", "--input", "1x8x8")
	x := make([]float32, 3*64)
	for i := range x {
		x[i] = float32(math.Sin(float64(i)))
	}
	xPath := filepath.Join(dir, "x.npy")
	writeNPY(t, xPath, x, 3, 1, 8, 8)
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := mlpForward(t, m, x, 3)
	// The same input by name, by position with --input, and by position
	// after the flags.
	for i, args := range [][]string{
		{"--input", "input=" + xPath},
		{"--input", xPath},
		{xPath},
	} {
		out := filepath.Join(dir, "out"+strconv.Itoa(i))
		r := gotrain(t, append([]string{"run", "--model", path, "--output-dir", out}, args...)...)
		r.expect(t, 0)
		got := readNPY(t, filepath.Join(out, "logits.npy"))
		if s := got.Shape(); len(s) != 2 || s[0] != 3 || s[1] != 10 || got.DType() != tensor.Float32 {
			t.Fatalf("%v: logits.npy is %v%v, want float32[3 10]", args, got.DType(), s)
		}
		// float32 sums of up to 512 products of values below 1 against
		// float64: 1e-4 is about 100 float32 rounding steps at these
		// magnitudes.
		for j, v := range got.Float32s() {
			if math.Abs(float64(v)-want[j]) > 1e-4 {
				t.Fatalf("%v: logits[%d] = %g, want %g", args, j, v, want[j])
			}
		}
	}
}

// subModel is z = a - b over [2, 3] float32 inputs, so the order of the
// inputs shows in the result.
func subModel(t *testing.T, path string) {
	t.Helper()
	b := graph.NewBuilder("sub", 17)
	a := b.Input("a", tensor.Float32, graph.D(2), graph.D(3))
	c := b.Input("b", tensor.Float32, graph.D(2), graph.D(3))
	b.Output(b.Op("Sub", a, c).Named("z").Out())
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.Save(m, path); err != nil {
		t.Fatal(err)
	}
}

func TestRunInputs(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "sub.onnx")
	subModel(t, model)
	p := func(name string) string { return filepath.Join(dir, name) }
	writeNPY(t, p("a.npy"), []float32{10, 20, 30, 40, 50, 60}, 2, 3)
	writeNPY(t, p("b.npy"), []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	writeNPY(t, p("f64.npy"), []float64{1, 2, 3, 4, 5, 6}, 2, 3)
	writeNPY(t, p("short.npy"), []float32{1, 2, 3}, 1, 3)
	writeNPY(t, p("flat.npy"), []float32{1, 2, 3, 4, 5, 6}, 6)
	if err := os.WriteFile(p("junk.npy"), []byte("\x93NUMPY not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []float32{9, 18, 27, 36, 45, 54}
	for _, c := range []struct {
		name string
		args []string
		code int
		msg  []string
	}{
		{"by name, reversed", []string{"--input", "b=" + p("b.npy"), "--input", "a=" + p("a.npy")}, 0, nil},
		{"by position", []string{p("a.npy"), p("b.npy")}, 0, nil},
		{"mixed", []string{"--input", p("a.npy"), "b=" + p("b.npy")}, 0, nil},
		{"missing input", []string{"--input", "a=" + p("a.npy")}, 2, []string{`input "b"`, "float32[2,3]", "not given"}},
		{"unknown name", []string{"--input", "c=" + p("a.npy")}, 2, []string{`no input "c"`, "a, b"}},
		{"too many", []string{p("a.npy"), p("b.npy"), p("a.npy")}, 2, []string{"only 2 inputs"}},
		{"wrong dtype", []string{"--input", "a=" + p("f64.npy"), "--input", "b=" + p("b.npy")}, 1, []string{`input "a"`, "f64.npy", "float32[2,3]", "float64"}},
		{"wrong shape", []string{"--input", "a=" + p("a.npy"), "--input", "b=" + p("short.npy")}, 1, []string{`input "b"`, "short.npy", "float32[2,3]", "[1 3]"}},
		{"wrong rank", []string{p("flat.npy"), p("b.npy")}, 1, []string{`input "a"`, "flat.npy", "[6]"}},
		{"missing file", []string{p("a.npy"), p("none.npy")}, 1, []string{"none.npy"}},
		{"corrupt file", []string{p("a.npy"), p("junk.npy")}, 1, []string{"junk.npy"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))
			r := gotrain(t, append([]string{"run", "--model", model, "--output-dir", out}, c.args...)...)
			r.expect(t, c.code, c.msg...)
			if c.code != 0 {
				if _, err := os.Stat(filepath.Join(out, "z.npy")); err == nil {
					t.Error("an output was written for a failed run")
				}
				return
			}
			if !strings.Contains(r.stdout, "z: [2 3] -> ") {
				t.Errorf("stdout: %s", r.stdout)
			}
			z := readNPY(t, filepath.Join(out, "z.npy"))
			if s := z.Shape(); len(s) != 2 || s[0] != 2 || s[1] != 3 {
				t.Fatalf("z.npy shape %v, want [2 3]", s)
			}
			for i, v := range z.Float32s() {
				if v != want[i] { // exact: small integers
					t.Fatalf("z = %v, want a - b = %v", z.Float32s(), want)
				}
			}
		})
	}
}

// TestCorruptModel: a truncated or non-ONNX file gives one error naming
// the file, from every command that reads a model.
func TestCorruptModel(t *testing.T) {
	dir := t.TempDir()
	good, err := os.ReadFile(exportModel(t, dir, "mlp", "--input", "1x8x8"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"truncated.onnx": good[:len(good)/3],
		"text.onnx":      []byte("this is not a protobuf message at all\n"),
		"empty.onnx":     nil,
	}
	img := filepath.Join(dir, "x.png")
	writePNG(t, img, 8, 8)
	for name, b := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"inspect", "--model", path},
			{"run", "--model", path, "--output-dir", filepath.Join(dir, "out")},
			{"eval", "--model", path, "--data", "digits"},
			{"predict", "--model", path, img},
		} {
			t.Run(name+"/"+args[0], func(t *testing.T) {
				r := gotrain(t, args...)
				r.expect(t, 1, path)
				if strings.Contains(r.stderr, "panic") || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("want one error line, got:\n%s", r.stderr)
				}
			})
		}
	}
}

func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	im := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		im.SetGray(w/2, y, color.Gray{Y: 255}) // a "1"
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, im); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMisfit: a model whose input or classes do not fit the data is
// reported with both shapes and what to change.
func TestMisfit(t *testing.T) {
	set := dataset(t)
	ds, subset, shape := set.name, set.subset, set.shape
	dir := t.TempDir()
	cnn := exportModel(t, dir, "cnn", "--input", "3x32x32")
	r := gotrain(t, append([]string{"train", "--model", cnn, "--data", ds, "--epochs", "1", "--out", filepath.Join(dir, "o1")}, subset...)...)
	r.expect(t, 1, cnn, "[N,3,32,32]", shape, "--input "+shape, "--resize")
	if strings.Contains(r.stdout, "epoch") {
		t.Errorf("training started:\n%s", r.stdout)
	}
	gotrain(t, "eval", "--model", cnn, "--data", ds, "--limit", "10").expect(t, 1, "[N,3,32,32]", shape, "--input")

	mlp := exportModel(t, dir, "mlp", "--input", shape, "--classes", "3")
	r = gotrain(t, append([]string{"train", "--model", mlp, "--data", ds, "--epochs", "1", "--out", filepath.Join(dir, "o2")}, subset...)...)
	r.expect(t, 1, "[N,3]", "3 classes", "10 classes", "--classes 10")
}

// readHistory reads a run's history.json (epochs and overfitting report)
// and history.csv.
func readHistory(t *testing.T, dir string) ([]train.Logs, [][]string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, rep, err := checkpoint.ReadHistory(b)
	if err != nil {
		t.Fatalf("history.json: %v", err)
	}
	if rep == nil {
		t.Fatalf("history.json has no overfitting report:\n%s", b)
	}
	f, err := os.Open(filepath.Join(dir, "history.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("history.csv: %v", err)
	}
	return h, rows
}

// TestTrainEvalResumePredict trains from a YAML config with flags
// overriding it, evaluates the best model, resumes from the state file and
// checks the resumed run equals a straight one, then predicts.
func TestTrainEvalResumePredict(t *testing.T) {
	set := dataset(t)
	ds, subset := set.name, set.subset
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	common := append([]string{"--config", filepath.Join("testdata", "train.yaml"), "--data", ds, "--threads", "1"}, subset...)
	r := gotrain(t, append([]string{"--epochs", "1", "--out", out}, common...)...)
	r.expect(t, 0)
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	for _, f := range []string{"best_model.onnx", "last_model.onnx", "history.csv", "history.json", "curves.png", "state.ckpt"} {
		st, err := os.Stat(filepath.Join(out, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	pf, err := os.Open(filepath.Join(out, "curves.png"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := png.DecodeConfig(pf)
	pf.Close()
	if err != nil || cfg.Width < 100 || cfg.Height < 100 {
		t.Errorf("curves.png: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
	h, _ := readHistory(t, out)
	if len(h) != 1 || h[0]["loss"] <= 0 || h[0]["val_loss"] <= 0 {
		t.Fatalf("history after 1 epoch: %v", h)
	}

	// The settings recorded in the model: the config's, overridden by flags.
	best := filepath.Join(out, "best_model.onnx")
	m, err := graph.Load(best)
	if err != nil {
		t.Fatal(err)
	}
	var used trainFlags
	if err := json.Unmarshal([]byte(m.Metadata["gotrain.config"]), &used); err != nil {
		t.Fatalf("gotrain.config metadata: %v", err)
	}
	if used.Epochs != 1 || used.Out != out || used.BatchSize != 64 || used.LR != 0.003 || used.Seed != 7 || used.Model != "mlp" || used.Data != ds || used.Optimizer != "adamw" {
		t.Errorf("settings used %+v: want epochs 1 and out from the flags, batch 64, lr 0.003, seed 7 and adamw from train.yaml", used)
	}

	r = gotrain(t, "eval", "--model", best, "--data", ds, "--split", "test", "--limit", "500")
	r.expect(t, 0)
	mm := regexp.MustCompile(`\(([^,]+), (\d+) samples\): accuracy ([0-9.]+)`).FindStringSubmatch(r.stdout)
	if mm == nil {
		t.Fatalf("eval output: %s", r.stdout)
	}
	if acc, _ := strconv.ParseFloat(mm[3], 64); acc < set.minAcc || mm[2] != "500" {
		t.Errorf("eval: %s; want accuracy >= %g on 500 samples", strings.TrimSpace(r.stdout), set.minAcc)
	}

	// Resume to 3 epochs and compare with 3 epochs straight: same history
	// and, bit for bit, the same weights.
	r = gotrain(t, append([]string{"--epochs", "3", "--out", out, "--resume", filepath.Join(out, "state.ckpt")}, common...)...)
	r.expect(t, 0)
	if want := "Epoch 2/3 (resumed from " + filepath.Join(out, "state.ckpt") + ": 1 epoch done, step "; !strings.Contains(r.stdout, want) {
		t.Errorf("the resumed run does not say so (%q):\n%s", want, r.stdout)
	}
	if strings.Contains(r.stdout, "Epoch 1/3") {
		t.Errorf("the resumed run trained epoch 1 again:\n%s", r.stdout)
	}
	straight := filepath.Join(dir, "straight")
	gotrain(t, append([]string{"--epochs", "3", "--out", straight}, common...)...).expect(t, 0)
	h, resumedRows := readHistory(t, out)
	_, straightRows := readHistory(t, straight)
	if len(h) != 3 || len(resumedRows) != 4 {
		t.Fatalf("history after resuming to 3 epochs: %d entries, %d CSV rows", len(h), len(resumedRows))
	}
	if h[2]["loss"] >= h[0]["loss"] {
		t.Errorf("loss did not fall: %v", h)
	}
	for i := range straightRows {
		if strings.Join(resumedRows[i], ",") != strings.Join(straightRows[i], ",") {
			t.Errorf("history row %d: resumed %v, straight %v", i, resumedRows[i], straightRows[i])
		}
	}
	a, err := graph.Load(filepath.Join(out, "last_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := graph.Load(filepath.Join(straight, "last_model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range a.Graph.InitializerNames() {
		x, y := a.Graph.Initializer(name).Float32s(), b.Graph.Initializer(name).Float32s()
		for i := range x {
			if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
				t.Fatalf("%s[%d]: resumed %g, straight %g", name, i, x[i], y[i])
			}
		}
	}

	// Predict a PNG and an NPY sample: probabilities, best first; the NPY's
	// are the softmax of run's logits.
	in := m.Graph.Inputs[0].Shape
	c, hh, ww := int(in[1].Size), int(in[2].Size), int(in[3].Size)
	img := filepath.Join(dir, "one.png")
	writePNG(t, img, 2*ww, 2*hh) // predict resizes to the model's input
	sample := make([]float32, c*hh*ww)
	for i := range sample {
		sample[i] = float32(i%7) / 7
	}
	npy := filepath.Join(dir, "sample.npy")
	writeNPY(t, npy, sample, 1, c, hh, ww)
	r = gotrain(t, "predict", "--model", best, img, "--top", "3", npy)
	r.expect(t, 0)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !strings.HasPrefix(l, "input scale: ") && !strings.HasPrefix(l, "note: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 || !strings.HasPrefix(lines[0], `# class probabilities: softmax of the model's output "logits"; top 3`) {
		t.Fatalf("predict printed %d lines, want a header saying what the numbers are and 2 lines:\n%s", len(lines), r.stdout)
	}
	lines = lines[1:]
	entry := regexp.MustCompile(`(\d+) \(([0-9.]+)\)`)
	var topNPY string
	probNPY := map[int]float64{}
	for i, file := range []string{img, npy} {
		if !strings.HasPrefix(lines[i], file+": ") {
			t.Fatalf("line %d: %q does not start with %s", i, lines[i], file)
		}
		es := entry.FindAllStringSubmatch(lines[i], -1)
		if len(es) != 3 {
			t.Fatalf("line %q: want 3 classes", lines[i])
		}
		seen := map[string]bool{}
		prev := math.Inf(1)
		for _, e := range es {
			k, _ := strconv.Atoi(e[1])
			s, _ := strconv.ParseFloat(e[2], 64)
			if k < 0 || k >= 10 || seen[e[1]] || s > prev || s > 1 {
				t.Fatalf("line %q: classes must be distinct, in [0, 10), best first, with probabilities", lines[i])
			}
			seen[e[1]], prev = true, s
			if file == npy {
				probNPY[k] = s
			}
		}
		if file == npy {
			topNPY = es[0][1]
		}
	}
	outDir := filepath.Join(dir, "runout")
	gotrain(t, "run", "--model", best, "--input", npy, "--output-dir", outDir).expect(t, 0)
	logits := readNPY(t, filepath.Join(outDir, m.Graph.Outputs[0].Name+".npy")).Float32s()
	if strconv.Itoa(argmax(logits)) != topNPY {
		t.Errorf("predict's top class %s, run's argmax %d (%v)", topNPY, argmax(logits), logits)
	}
	sum := 0.0
	for _, v := range logits {
		sum += math.Exp(float64(v))
	}
	for k, p := range probNPY {
		// predict prints 4 decimals: within half a unit of the last.
		if want := math.Exp(float64(logits[k])) / sum; math.Abs(p-want) > 0.5e-4+1e-9 {
			t.Errorf("class %d: predict says %.4f, softmax of run's logits is %.6f", k, p, want)
		}
	}
	// A file that is not an image.
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	gotrain(t, "predict", "--model", best, bad).expect(t, 1, bad)
}

func TestAugment(t *testing.T) {
	ds := dataset(t).name
	path := filepath.Join(t.TempDir(), "grid.png")
	r := gotrain(t, "augment", "--data", ds, "--augment", "rotation=20,shift=0.1", "--rows", "4", "--out", path)
	r.expect(t, 0)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	// Samples drawn on a background: more than one colour.
	colours := map[color.Color]bool{}
	b := im.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			colours[color.RGBAModel.Convert(im.At(x, y))] = true
		}
	}
	if len(colours) < 2 {
		t.Errorf("grid %v is one colour", b)
	}
	if !strings.Contains(r.stdout, "4 originals") {
		t.Errorf("stdout: %s", r.stdout)
	}
}

func TestConformance(t *testing.T) {
	dir := testenv.Require(t, filepath.Join(testenv.DebianONNX(t, "node"), "test_relu"), "Debian's libonnx-testdata")
	md := filepath.Join(t.TempDir(), "OPS.md")
	r := gotrain(t, "conformance", "-v", "--data", dir, "--markdown", md)
	r.expect(t, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	m := regexp.MustCompile(`^(\d+) passed, (\d+) failed, (\d+) skipped$`).FindStringSubmatch(lines[len(lines)-1])
	if m == nil {
		t.Fatalf("last line %q is not \"N passed, M failed, K skipped\"", lines[len(lines)-1])
	}
	if m[1] != "1" || m[2] != "0" || m[3] != "0" {
		t.Errorf("test_relu: %s", lines[len(lines)-1])
	}
	if !regexp.MustCompile(`(?m)^Relu +1 +0 +0$`).MatchString(r.stdout) {
		t.Errorf("no Relu row:\n%s", r.stdout)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| Relu | 1 | 0 | 0 |") {
		t.Errorf("%s has no Relu row:\n%s", md, b)
	}
}

// TestUnsupportedOp: inspect lists an op the backend cannot run, and run
// fails with one error naming the node and op instead of panicking.
func TestUnsupportedOp(t *testing.T) {
	node := testenv.DebianONNX(t, "node")
	var model, op string
	for _, c := range []struct{ dir, op string }{
		{"test_unique_not_sorted_without_axis", "Unique"},
		{"test_tfidfvectorizer_tf_only_bigrams_skip0", "TfIdfVectorizer"},
		{"test_roialign_aligned_false", "RoiAlign"},
		{"test_nonmaxsuppression_center_point_box_format", "NonMaxSuppression"},
	} {
		p := filepath.Join(node, c.dir, "model.onnx")
		if _, err := os.Stat(p); err == nil && graph.Lookup("", c.op) == nil {
			model, op = p, c.op
			break
		}
	}
	if model == "" {
		testenv.Missing(t, "an ONNX node test of an unsupported op (Debian's libonnx-testdata)")
	}
	r := gotrain(t, "inspect", "--model", model)
	r.expect(t, 1, "cannot run this model", op)
	if !strings.Contains(r.stdout, "ops gotrain cannot run yet: "+op) {
		t.Errorf("inspect does not list %s as unsupported:\n%s", op, r.stdout)
	}
	gotrain(t, "inspect", "--model", model, "--no-check").expect(t, 0)
	m, err := graph.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var args []string
	for _, in := range m.Graph.Inputs {
		shape := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			shape[i] = max(int(d.Size), 1)
		}
		path := filepath.Join(dir, in.Name+".npy")
		x, err := tensor.NewChecked(in.DType, shape)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.WriteNPYFile(path, x); err != nil {
			t.Fatal(err)
		}
		args = append(args, in.Name+"="+path)
	}
	r = gotrain(t, append([]string{"run", "--model", model, "--output-dir", filepath.Join(dir, "out")}, args...)...)
	r.expect(t, 1, "("+op+")", "node ")
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want one error line, got:\n%s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("run made its --output-dir for outputs it could not compute")
	}
}

// TestTrainMirrored trains with the default command (no "train") under the
// mirrored strategy with most of the regularisation flags, and checks the
// cosine schedule decays over the whole run when no total is given.
func TestTrainMirrored(t *testing.T) {
	set := dataset(t)
	dir := t.TempDir()
	model := exportModel(t, dir, "mlp", "--input", set.shape)
	out := filepath.Join(dir, "run")
	r := gotrain(t, append([]string{"--model", model, "--data", set.name, "--strategy", "mirrored", "--replicas", "2",
		"--epochs", "2", "--batch-size", "64", "--optimizer", "adamw", "--lr", "0.003", "--weight-decay", "0.01",
		"--decay-mode", "decoupled", "--augment", "shift=0.1", "--early-stopping", "val_loss:3", "--schedule", "cosine",
		"--clip-norm", "1", "--label-smoothing", "0.1", "--out", out}, set.subset...)...)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "mirrored strategy") {
		t.Errorf("stdout: %s", r.stdout)
	}
	h, _ := readHistory(t, out)
	if len(h) != 2 {
		t.Fatalf("history: %v", h)
	}
	// A cosine from 3e-3 to 0 over both epochs: part way down after the
	// first, 0 after the last. A schedule that never learned its length
	// stays at 3e-3.
	if lr := h[0]["lr"]; lr <= 0 || lr >= 2.5e-3 {
		t.Errorf("lr after epoch 1 of 2: %g, want part way from 3e-3 to 0", lr)
	}
	if lr := h[1]["lr"]; lr > 1e-6 {
		t.Errorf("lr after the last epoch: %g, want 0", lr)
	}
}

// TestTrainUnevenLastBatch trains on 98 samples in batches of 32 on 3
// mirrored replicas: the last batch of each epoch has 2 samples, and the
// replica without one sits the step out. With sync BatchNorm, whose
// collective needs every replica, the run is refused before training,
// naming the flags.
func TestTrainUnevenLastBatch(t *testing.T) {
	set := dataset(t)
	dir := t.TempDir()
	common := []string{"--data", set.name, "--subset", "98", "--val-split", "0", "--batch-size", "32",
		"--strategy", "mirrored", "--replicas", "3", "--epochs", "2"}
	mlp := exportModel(t, dir, "mlp", "--input", set.shape)
	out := filepath.Join(dir, "mlp-run")
	gotrain(t, append([]string{"train", "--model", mlp, "--out", out}, common...)...).expect(t, 0)
	if h, _ := readHistory(t, out); len(h) != 2 {
		t.Fatalf("history: %v", h)
	}
	vgg := exportModel(t, dir, "vgg", "--input", set.shape)
	r := gotrain(t, append([]string{"train", "--model", vgg, "--sync-batchnorm", "--out", filepath.Join(dir, "vgg-run")}, common...)...)
	// A usage error, in the CLI's terms: DropRemainder is the Go API's.
	r.expect(t, 2, "--sync-batchnorm", "--replicas 3", "--batch-size 32", "98 training samples", "last batch of 2")
	if strings.Contains(r.stdout, "epoch 1/") || strings.Contains(r.stderr, "DropRemainder") {
		t.Errorf("training started, or the error names the Go API:\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	// A model without BatchNorm would ignore --sync-batchnorm.
	gotrain(t, append([]string{"train", "--model", mlp, "--sync-batchnorm", "--out", filepath.Join(dir, "mlp-sync")}, common...)...).
		expect(t, 2, "--sync-batchnorm", "mlp.onnx", "no BatchNormalization")
	// The multi-worker strategy takes --sync-batchnorm too: the same
	// model check answers, not the strategy's.
	gotrain(t, append([]string{"train", "--model", mlp, "--sync-batchnorm", "--strategy", "multiworker", "--out", filepath.Join(dir, "mlp-sync-mw")}, common...)...).
		expect(t, 2, "--sync-batchnorm", "mlp.onnx", "no BatchNormalization")
}
