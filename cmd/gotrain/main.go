// Command gotrain trains, evaluates and runs ONNX models.
//
//	gotrain [train] --model cnn.onnx --data mnist --strategy mirrored
//	gotrain eval --model best_model.onnx --data mnist
//	gotrain predict --model best_model.onnx image.png ...
//	gotrain run --model m.onnx --input x=x.npy --output-dir out
//	gotrain inspect --model m.onnx
//	gotrain models list | models export cnn -o cnn.onnx
//	gotrain compare out/plain out/augment ...
//	gotrain conformance --backend cpu [--data DIR]
//	gotrain augment --data mnist --augment rotation=20,hflip --out grid.png
//	gotrain completion bash|zsh|fish
//	gotrain version
//
// Commands and flags are cobra's and pflag's: `--flag value` or
// `--flag=value`, boolean flags as `--flag` or `--flag=false`, flags and
// positional arguments in any order, `--` ends the flags. The single-dash
// long form of Go's flag package (`-model`) is still accepted. Every flag
// is checked before any work starts; a bad one exits with status 2 and a
// message naming it. `gotrain CMD --help` lists a command's flags with
// examples. `train --config FILE` reads the same settings from a YAML or
// JSON file (flat keys named as the flags, or nested sections); flags
// given on the command line override it.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	_ "github.com/gotrain/gotrain/backend/cpu"
	_ "github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/tensor"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// newRoot builds the command tree. args is the command line being run
// (train keeps it for the resume hint).
func newRoot(args []string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "gotrain",
		Short: "gotrain trains neural networks defined as ONNX graphs.",
		Long: `gotrain trains neural networks defined as ONNX graphs.

With no command, gotrain trains: 'gotrain --model cnn.onnx ...' is
'gotrain train --model cnn.onnx ...'.`,
		Example: `  gotrain --model cnn.onnx --data mnist --strategy mirrored
  gotrain models export cnn --input 1x28x28 --classes 10 -o cnn.onnx
  gotrain eval --model out/best_model.onnx --data mnist
  gotrain compare out/plain out/augment --out compare.png`,
		Version:       moduleVersion(),
		SilenceErrors: true, // run prints them once, with the command's name
		SilenceUsage:  true, // a bad flag gets one line, not the whole help
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("gotrain {{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.PersistentPreRunE = checkMemoryEnv
	root.PersistentFlags().Func("max-memory", "the largest allocation input may ask for, e.g. 8GiB (default: $"+tensor.MemoryLimitEnv+", else half the memory)", tensor.SetMemoryLimitString)
	root.AddCommand(
		newTrainCmd(args),
		newEvalCmd(),
		newPredictCmd(),
		newRunCmd(),
		newInspectCmd(),
		newModelsCmd(),
		newCompareCmd(),
		newConformanceCmd(),
		newAugmentCmd(),
		newBenchCmd(),
		newVersionCmd(),
	)
	for _, c := range root.Commands() {
		// Flags are listed in the order they are defined, which groups them.
		c.Flags().SortFlags = false
	}
	return root
}

// rootFlags are the flags gotrain itself takes before any command.
var rootFlags = []string{"-h", "--help", "-help", "-v", "--version"}

func run(args []string, stdout, stderr io.Writer) int {
	tensor.SetMemoryLimit(0) // the default, until --max-memory says otherwise
	args = append([]string{}, args...)
	i := skipRootFlags(args)
	root := newRoot(args, stdout, stderr)
	if i >= len(args) {
		_ = root.Help()
		return 2
	}
	first := args[i] // the command's word, for a message
	// The default command: flags with no command train.
	if strings.HasPrefix(args[i], "-") && !slices.Contains(rootFlags, args[i]) {
		args = append([]string{"train"}, args...)
	}
	if args[0] != cobra.ShellCompRequestCmd && args[0] != cobra.ShellCompNoDescRequestCmd {
		root.InitDefaultHelpCmd()
		root.InitDefaultCompletionCmd()
		cmd, rest, err := root.Find(args)
		if err != nil {
			fmt.Fprintf(stderr, "gotrain: unknown command %q (run gotrain --help)\n", first)
			return 2
		}
		if !cmd.Runnable() && !slices.ContainsFunc(rest, isHelpFlag) {
			// A command that only groups others (completion): without one
			// of them it is a usage error, as gotrain alone is.
			if i := slices.IndexFunc(rest, func(a string) bool { return !strings.HasPrefix(a, "-") }); i >= 0 {
				fmt.Fprintf(stderr, "%s: unknown command %q (run '%s --help')\n", cmd.CommandPath(), rest[i], cmd.CommandPath())
				return 2
			}
			_ = cmd.Help()
			return 2
		}
		args = longFlagCompat(cmd, args)
	}
	root.SetArgs(append([]string{}, args...))
	cmd, err := root.ExecuteC()
	var quiet quietError
	if errors.As(err, &quiet) {
		return 1 // another process reports it
	}
	if err != nil {
		name := "gotrain"
		if cmd != nil {
			name = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// rootValueFlags are gotrain's own flags that take a value. They may come
// before the command, as cobra's persistent flags do: gotrain --max-memory
// 8GiB eval ...
var rootValueFlags = []string{"max-memory"}

// skipRootFlags rewrites the gotrain flags that open args to the
// double-dash form (-max-memory is Go's flag package's spelling) and
// returns the index of the first argument after them: the command, or the
// first flag of the default command.
func skipRootFlags(args []string) int {
	i := 0
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		flag := strings.TrimLeft(args[i], "-")
		name, _, hasValue := strings.Cut(flag, "=")
		if !slices.Contains(rootValueFlags, name) {
			break
		}
		args[i] = "--" + flag
		i++
		if !hasValue {
			i++ // the value
		}
	}
	return i
}

// checkMemoryEnv refuses an invalid GOTRAIN_MAX_MEMORY before any work
// (unless --max-memory replaces it): otherwise every allocation it bounds
// would fail later, far from its cause.
func checkMemoryEnv(cmd *cobra.Command, _ []string) error {
	if cmd.Flags().Changed("max-memory") || cmd.Name() == "help" || cmd.Name() == "completion" ||
		(cmd.HasParent() && cmd.Parent().Name() == "completion") {
		return nil
	}
	if err := tensor.MemoryLimitErr(); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// isHelpFlag says whether a is a flag that makes a command print instead
// of run: help, and gotrain's version.
func isHelpFlag(a string) bool { return slices.Contains(rootFlags, a) }

// quietError ends the process with status 1 without a message: another
// process says what happened (worker 0 of a multi-worker run).
type quietError struct{ error }

// usageError marks bad flags or arguments (exit status 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flagError turns pflag's parse errors into usage errors that name the
// flag and where to find the flags.
func flagError(c *cobra.Command, err error) error {
	var iv *pflag.InvalidValueError
	if errors.As(err, &iv) {
		if t := iv.GetFlag().Value.Type(); t == "func" {
			// A flag parsed by a function (--max-memory): its error says
			// what it expects.
			err = fmt.Errorf("invalid value %q for --%s: %v", iv.GetValue(), iv.GetFlag().Name, errors.Unwrap(iv))
		} else {
			err = fmt.Errorf("invalid value %q for --%s: expected %s", iv.GetValue(), iv.GetFlag().Name, typeName(t))
		}
	}
	return usagef("%v (run '%s --help' for the flags)", err, c.CommandPath())
}

// typeName says what a pflag value type expects.
func typeName(t string) string {
	switch t {
	case "int", "int64":
		return "an integer"
	case "uint64":
		return "a non-negative integer"
	case "float64":
		return "a number"
	case "bool":
		return "true or false"
	}
	return "a " + t
}

// longFlag is a single-dash long flag as Go's flag package takes it:
// -name or -name=value.
var longFlag = regexp.MustCompile(`^-([A-Za-z][A-Za-z0-9_-]+)(=.*)?$`)

// longFlagCompat rewrites the single-dash long flags of cmd (-model) to
// pflag's double-dash form (--model), so command lines written for Go's
// flag package keep working. Shorthands (-o FILE, -h) and everything after
// "--" are left alone.
func longFlagCompat(cmd *cobra.Command, args []string) []string {
	cmd.InitDefaultHelpFlag()
	out := append([]string{}, args...)
	for i, a := range out {
		if a == "--" {
			break
		}
		m := longFlag.FindStringSubmatch(a)
		if m != nil && cmd.Flags().Lookup(m[1]) != nil {
			out[i] = "-" + a
		}
	}
	return out
}

// noArgs refuses positional arguments with a usage error naming the first.
// A lone true or false is most likely a boolean flag's value given apart
// (--shuffle false), which pflag reads as an argument: the error says how
// to give it, naming the flag when only one boolean flag was given.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if args[0] == "true" || args[0] == "false" {
		var bools []string
		cmd.Flags().Visit(func(f *pflag.Flag) {
			if f.Value.Type() == "bool" {
				bools = append(bools, "--"+f.Name)
			}
		})
		flag := "--flag"
		if len(bools) == 1 {
			flag = bools[0]
		}
		return usagef("unexpected argument %q: a boolean flag takes its value after =, as %s=%s", args[0], flag, args[0])
	}
	return usagef("unexpected argument %q", args[0])
}
