// Command gotrain trains, evaluates and runs ONNX models.
//
//	gotrain [train] --model cnn.onnx --data mnist --strategy mirrored
//	gotrain eval --model best_model.onnx --data mnist
//	gotrain predict --model best_model.onnx image.png ...
//	gotrain run --model m.onnx --input x=x.npy --output-dir out
//	gotrain inspect --model m.onnx
//	gotrain models list | models export cnn -o cnn.onnx
//	gotrain conformance --backend cpu [--data DIR]
//	gotrain augment --data mnist --augment rotation=20,hflip --out grid.png
//
// Every flag is checked before any work starts; `gotrain CMD --help` lists
// a command's flags with examples. `train --config FILE` reads the same
// settings from a YAML or JSON file whose keys are the flags' names; flags
// given on the command line override it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	_ "github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/tensor"
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

var commands []command

func init() {
	commands = []command{
		{"train", "train a model (the default command)", cmdTrain},
		{"eval", "evaluate a model on a dataset", cmdEval},
		{"predict", "classify image or NPY files (top-k)", cmdPredict},
		{"run", "run a model on NPY inputs, write NPY outputs", cmdRun},
		{"inspect", "describe a model: inputs, outputs, ops, parameters", cmdInspect},
		{"models", "list or export the built-in models", cmdModels},
		{"conformance", "run ONNX's backend tests on a backend", cmdConformance},
		{"augment", "draw a grid of augmented samples to a PNG", cmdAugment},
		{"bench", "measure a model's inference or training throughput", cmdBench},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gotrain trains neural networks defined as ONNX graphs.")
	fmt.Fprintln(w, "\nUsage: gotrain [COMMAND] [FLAGS]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nExamples:")
	fmt.Fprintln(w, "  gotrain --model cnn.onnx --data mnist --strategy mirrored")
	fmt.Fprintln(w, "  gotrain models export cnn --input 1x28x28 --classes 10 -o cnn.onnx")
	fmt.Fprintln(w, "  gotrain eval --model out/best_model.onnx --data mnist")
	fmt.Fprintln(w, "\nRun 'gotrain COMMAND --help' for a command's flags.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd := commands[0]
	if !strings.HasPrefix(args[0], "-") {
		found := false
		for _, c := range commands {
			if c.name == args[0] {
				cmd, found = c, true
			}
		}
		if !found {
			fmt.Fprintf(stderr, "gotrain: unknown command %q (run gotrain --help)\n", args[0])
			return 2
		}
		args = args[1:]
	}
	if err := cmd.run(args, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "gotrain %s: %v\n", cmd.name, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// usageError marks bad flags or arguments (exit status 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flagSet is a command's flags. Flags and positional arguments may be
// mixed (gotrain predict a.png --top 1 b.png); --help prints the flags
// and examples to stdout, and a bad flag becomes a usage error that names
// it.
type flagSet struct {
	*flag.FlagSet
	name string
	help func()   // prints the flags and examples
	args []string // positional arguments, in order
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name, examples string, stdout io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), name: name}
	fs.SetOutput(io.Discard) // errors are returned, and printed once by run
	fs.Usage = func() {}     // flag calls it on errors too; parse prints help itself
	fs.Func("max-memory", "the largest allocation input may ask for, e.g. 8GiB (default: $"+tensor.MemoryLimitEnv+", else half the memory)", tensor.SetMemoryLimitString)
	fs.help = func() {
		fmt.Fprintf(stdout, "Usage: gotrain %s [FLAGS]\n\nFlags:\n", name)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		if examples != "" {
			fmt.Fprintf(stdout, "\nExamples:\n%s\n", examples)
		}
	}
	return fs
}

// Args, NArg and Arg are the positional arguments of every parse round.
func (fs *flagSet) Args() []string { return fs.args }
func (fs *flagSet) NArg() int      { return len(fs.args) }
func (fs *flagSet) Arg(i int) string {
	if i < len(fs.args) {
		return fs.args[i]
	}
	return ""
}

// parse parses flags, turning flag errors into usage errors. Parsing
// resumes after each positional argument; after "--" the rest are
// positional.
func parse(fs *flagSet, args []string) error {
	for {
		if err := fs.FlagSet.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.help()
				return err
			}
			return usagef("%v (run 'gotrain %s --help' for the flags)", err, fs.name)
		}
		rest := fs.FlagSet.Args()
		if len(rest) == 0 {
			return nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			fs.args = append(fs.args, rest...)
			return nil
		}
		fs.args = append(fs.args, rest[0])
		args = rest[1:]
	}
}
