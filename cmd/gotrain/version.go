package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gotrain/gotrain/backend/cpu"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "print the version, Go version, build tags and BLAS/kernel path",
		Example: "  gotrain version",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, kv := range versionInfo() {
				fmt.Fprintf(cmd.OutOrStdout(), "%-10s %s\n", kv[0]+":", kv[1])
			}
			return nil
		},
	}
}

// moduleVersion is gotrain's module version from the build information:
// a release tag when built with `go install ...@version`, "(devel)" in a
// checkout, followed by the commit when the build recorded one.
func moduleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	if rev := setting(bi, "vcs.revision"); rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " " + rev
		if setting(bi, "vcs.modified") == "true" {
			v += "+modified"
		}
	}
	return v
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// versionInfo lists what `gotrain version` prints, as name/value pairs:
// the build (module version, Go, platform, cgo, build tags) and the paths
// the CPU backend's kernels take.
func versionInfo() [][2]string {
	out := [][2]string{{"gotrain", moduleVersion()}}
	bi, ok := debug.ReadBuildInfo()
	if ok {
		out = append(out, [2]string{"module", bi.Main.Path})
		if t := setting(bi, "vcs.time"); t != "" {
			out = append(out, [2]string{"committed", t})
		}
	}
	out = append(out, [2]string{"go", runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH})
	if ok {
		cgo := setting(bi, "CGO_ENABLED")
		if cgo == "" {
			cgo = "unknown"
		}
		tags := setting(bi, "-tags")
		if tags == "" {
			tags = "(none)"
		}
		out = append(out, [2]string{"cgo", cgo}, [2]string{"tags", strings.ReplaceAll(tags, ",", " ")})
	}
	return append(out, kernelInfo()...)
}

// kernelInfo describes the CPU backend's kernel path: the CPU, the
// instruction path its matrix products take (chosen from CPUID), the GEMM
// implementation behind them, any warning about it, and the cores used.
func kernelInfo() [][2]string {
	k := cpu.KernelInfo()
	out := [][2]string{
		{"cpu", k.CPU},
		{"kernels", k.Path},
		{"gemm", k.GEMM},
	}
	if k.Warning != "" {
		out = append(out, [2]string{"warning", k.Warning})
	}
	return append(out, [2]string{"cpus", fmt.Sprintf("%d (GOMAXPROCS)", runtime.GOMAXPROCS(0))})
}
