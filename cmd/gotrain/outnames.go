package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gotrain/gotrain/graph"
)

// outputFile is where `gotrain run` writes one graph output.
type outputFile struct {
	name string // the file name, NAME.npy
	note string // why it is not the sanitized output name; "" when it is
}

// outputFiles gives each graph output its own file in the output folder.
// An output's file is its name with path separators replaced (sanitize);
// names that then collide, also when they differ only in case (a
// case-insensitive file system would merge them), keep the plain file for
// the output whose name needed no change (else the first), and the others
// get a numbered suffix, "_2", "_3", ..., free of every other output's
// file. Each renamed file's note names the output it would have collided
// with.
func outputFiles(names []string) []outputFile {
	stems := make([]string, len(names))
	groups := map[string][]int{} // case-folded stem -> outputs, in order
	for i, n := range names {
		stems[i] = sanitize(n)
		if stems[i] == "" {
			stems[i] = "output"
		}
		k := strings.ToLower(stems[i])
		groups[k] = append(groups[k], i)
	}
	out := make([]outputFile, len(names))
	taken := map[string]bool{}
	var renamed []int
	for _, g := range groups {
		keep := g[0]
		for _, i := range g {
			if names[i] == stems[i] {
				keep = i
				break
			}
		}
		out[keep].name = stems[keep] + ".npy"
		taken[strings.ToLower(stems[keep])] = true
		for _, i := range g {
			if i != keep {
				renamed = append(renamed, i)
				out[i].note = fmt.Sprintf(" (renamed: output %q also maps to %s)", names[keep], out[keep].name)
			}
		}
	}
	// Number the renamed ones in output order, so the result does not
	// depend on map order.
	slices.Sort(renamed)
	for _, i := range renamed {
		for n := 2; ; n++ {
			s := fmt.Sprintf("%s_%d", stems[i], n)
			if !taken[strings.ToLower(s)] {
				taken[strings.ToLower(s)] = true
				out[i].name = s + ".npy"
				break
			}
		}
	}
	return out
}

func outputNames(m *graph.Model) []string {
	var n []string
	for _, o := range m.Graph.Outputs {
		n = append(n, o.Name)
	}
	return n
}
