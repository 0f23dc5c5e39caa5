package plan

import (
	"fmt"
	"strings"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// CheckFeeds checks what a run is fed against the graph's inputs, as every
// backend's Run does before it looks at its buffers: every input fed, with
// the dtype it declares and the dims of its shape that are known, and
// nothing fed that is not an input. Errors name the input or feed and what
// was expected. It allocates nothing when the feeds are right.
func CheckFeeds(inputs []*graph.ValueInfo, feeds map[string]backend.Buffer) error {
	for _, in := range inputs {
		b, ok := feeds[in.Name]
		if !ok {
			return fmt.Errorf("input %q is missing (graph inputs: %s)", in.Name, inputNames(inputs))
		}
		if in.DType != tensor.Invalid && b.DType() != in.DType {
			return fmt.Errorf("input %q: expected %v, got %v", in.Name, in.DType, b.DType())
		}
		if !in.RankKnown {
			continue
		}
		shape := b.Shape()
		if len(in.Shape) != len(shape) {
			return fmt.Errorf("input %q: expected shape %v, got %v", in.Name, in.Shape, shape)
		}
		for i, d := range in.Shape {
			if d.Known() && int(d.Size) != shape[i] {
				return fmt.Errorf("input %q: expected shape %v, got %v", in.Name, in.Shape, shape)
			}
		}
	}
	// Every input is fed, so any other feed makes the map larger.
	if len(feeds) > len(inputs) {
		isInput := make(map[string]bool, len(inputs))
		for _, in := range inputs {
			isInput[in.Name] = true
		}
		for name := range feeds {
			if !isInput[name] {
				return fmt.Errorf("feed %q is not an input of the graph (inputs: %s)", name, inputNames(inputs))
			}
		}
	}
	return nil
}

func inputNames(in []*graph.ValueInfo) string {
	names := make([]string, len(in))
	for i, v := range in {
		names[i] = v.Name
	}
	return strings.Join(names, ", ")
}
