package checkpoint

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Export writes m with its initializers replaced by weights to path as an
// ONNX file: the same inputs, outputs, nodes and opsets as m, in inference
// form, so it runs in any ONNX runtime. Every weight must name an
// initializer of m with the same dtype and shape (BatchNorm running
// statistics are initializers like any other); initializers without a
// weight keep their value. meta is added to the model's metadata_props,
// replacing keys m already has. m itself is not changed. The file is
// written atomically; an error leaves any existing file at path as it was.
//
// A BatchNormalization node with training_mode=1 is turned into its
// inference form (training_mode=0, the running-statistics outputs dropped),
// since the exported model is for inference.
func Export(m *graph.Model, weights map[string]*tensor.Tensor, meta map[string]string, path string) error {
	out, err := ExportModel(m, weights, meta)
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err := graph.Save(out, path); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	return nil
}

// Metadata keys that Export's callers write, so every exported model
// describes its training the same way.
const (
	MetaConfig       = "gotrain.config"  // the training configuration as JSON
	MetaEpoch        = "gotrain.epoch"   // epochs completed (1-based number of the last)
	MetaStep         = "gotrain.step"    // optimizer steps taken
	MetaMetricPrefix = "gotrain.metric." // + log name: the metric's value
	// MetaInputScale is the factor the training inputs were multiplied by
	// (data.ParseScale's forms, e.g. "1/255"); eval, predict and run apply
	// it to their inputs unless told otherwise.
	MetaInputScale = "gotrain.input_scale"
)

// TrainingMetadata builds the metadata_props that describe a trained model:
// the configuration (JSON; omitted when empty), the epoch and step, and each
// metric of logs, written with the fewest digits that read back exactly.
func TrainingMetadata(config []byte, epochs int, step int64, logs map[string]float64) map[string]string {
	meta := make(map[string]string, len(logs)+3)
	if len(config) > 0 {
		meta[MetaConfig] = string(config)
	}
	meta[MetaEpoch] = strconv.Itoa(epochs)
	meta[MetaStep] = strconv.FormatInt(step, 10)
	for k, v := range logs {
		meta[MetaMetricPrefix+k] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return meta
}

// ExportModel is Export without the file: the model that Export would write.
func ExportModel(m *graph.Model, weights map[string]*tensor.Tensor, meta map[string]string) (*graph.Model, error) {
	if m == nil || m.Graph == nil {
		return nil, errors.New("no model to export")
	}
	out := *m
	g := m.Graph.Clone()
	out.Graph = g
	out.Metadata = make(map[string]string, len(m.Metadata)+len(meta))
	for k, v := range m.Metadata {
		out.Metadata[k] = v
	}
	for k, v := range meta {
		out.Metadata[k] = v
	}
	var bad []string
	for _, name := range sortedKeys(weights) {
		w := weights[name]
		old := g.Initializer(name)
		switch {
		case old == nil:
			bad = append(bad, fmt.Sprintf("weight %q is not an initializer of the model", name))
		case w == nil:
			bad = append(bad, fmt.Sprintf("weight %q is nil", name))
		case w.DType() != old.DType() || !tensor.SameShape(w.Shape(), old.Shape()):
			bad = append(bad, fmt.Sprintf("weight %q is %v%v, the model's initializer is %v%v", name, w.DType(), w.Shape(), old.DType(), old.Shape()))
		default:
			g.SetInitializer(name, w)
		}
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	inferenceBatchNorm(g)
	return &out, nil
}

// inferenceBatchNorm rewrites training-mode BatchNormalization nodes into
// their inference form, unless another node or a graph output reads their
// running-statistics outputs. Nodes are replaced, not edited: Clone shares
// attribute values with m.
func inferenceBatchNorm(g *graph.Graph) {
	var used map[string]bool
	for i, n := range g.Nodes {
		if n.OpType != "BatchNormalization" || graph.NormDomain(n.Domain) != graph.DomainONNX || n.AttrInt("training_mode", 0) == 0 {
			continue
		}
		if used == nil {
			used = map[string]bool{}
			for name := range g.Consumers() {
				used[name] = true
			}
			for _, o := range g.Outputs {
				used[o.Name] = true
			}
		}
		if len(n.Outputs) > 1 && slices.ContainsFunc(n.Outputs[1:], func(o string) bool { return o != "" && used[o] }) {
			continue
		}
		nn := *n
		nn.Attrs = make(map[string]*graph.Attribute, len(n.Attrs))
		for k, v := range n.Attrs {
			if k != "training_mode" {
				nn.Attrs[k] = v
			}
		}
		nn.Outputs = n.Outputs[:1]
		g.Nodes[i] = &nn
	}
}
