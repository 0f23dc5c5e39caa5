package main

import (
	"github.com/spf13/cobra"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/models"
)

// Shell completion comes from cobra's `gotrain completion bash|zsh|fish|
// powershell`: commands and flags complete by themselves; the functions
// here complete the values of train's enumerated flags.

// fixed completes a flag's value from a list (no file names).
func fixed(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// orFiles completes a flag's value from a list and file names.
func orFiles(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveDefault
	}
}

func registerTrainCompletions(cmd *cobra.Command) {
	for flag, f := range map[string]func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective){
		"model":                orFiles(models.Names()...),
		"data":                 orFiles(data.BuiltinNames()...),
		"val-data":             orFiles(append([]string{"test"}, data.BuiltinNames()...)...),
		"optimizer":            fixed("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"),
		"decay-mode":           fixed("l2", "decoupled"),
		"strategy":             fixed("single", "mirrored", "multiworker"),
		"backend":              fixed(backend.Names()...),
		"loss":                 fixed("cross_entropy", "cross_entropy_onehot", "bce", "mse", "l1", "graph"),
		"reduction":            fixed("mean", "sum"),
		"schedule":             fixed("constant", "step:size=", "exp:gamma=", "cosine", "cosine:warmup="),
		"early-stopping":       fixed("val_loss:5", "val_accuracy:5", "loss:5"),
		"reduce-lr-on-plateau": fixed("val_loss:3", "val_loss:3,factor=0.5", "loss:3"),
	} {
		// Registering on a flag the command defines cannot fail.
		_ = cmd.RegisterFlagCompletionFunc(flag, f)
	}
}
