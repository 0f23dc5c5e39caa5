package checkpoint

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"sort"

	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// ModelHash identifies a model's structure: its opsets, its inputs and
// outputs, its nodes (op, domain, inputs, outputs, attributes) and the names,
// dtypes and shapes of its initializers, but not their values and not node
// names or doc strings. Training changes no part of it, so a training-state
// file written for a model can be matched against the model it resumes.
func ModelHash(m *graph.Model) string {
	h := sha256.New()
	e := &encoder{w: h}
	e.string("gotrain-model-hash-1")
	opsets := make(map[string]float64, len(m.Opsets))
	for k, v := range m.Opsets {
		opsets[graph.NormDomain(k)] = float64(v)
	}
	e.floatMap(opsets)
	if m.Graph != nil {
		hashGraph(e, m.Graph)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func hashGraph(e *encoder, g *graph.Graph) {
	valueInfos := func(vs []*graph.ValueInfo) {
		e.uvarint(uint64(len(vs)))
		for _, v := range vs {
			e.string(v.Name)
			hashType(e, &v.Type)
		}
	}
	valueInfos(g.Inputs)
	valueInfos(g.Outputs)
	names := append([]string{}, g.InitializerNames()...)
	sort.Strings(names)
	e.uvarint(uint64(len(names)))
	for _, n := range names {
		e.string(n)
		hashTensorType(e, g.Initializer(n))
	}
	e.uvarint(uint64(len(g.Nodes)))
	for _, n := range g.Nodes {
		e.string(graph.NormDomain(n.Domain))
		e.string(n.OpType)
		e.uvarint(uint64(len(n.Inputs)))
		for _, s := range n.Inputs {
			e.string(s)
		}
		e.uvarint(uint64(len(n.Outputs)))
		for _, s := range n.Outputs {
			e.string(s)
		}
		keys := sortedKeys(n.Attrs)
		e.uvarint(uint64(len(keys)))
		for _, k := range keys {
			hashAttr(e, n.Attrs[k])
		}
	}
}

func hashType(e *encoder, t *graph.Type) {
	e.uvarint(uint64(t.DType))
	e.bool(t.RankKnown)
	e.uvarint(uint64(len(t.Shape)))
	for _, d := range t.Shape {
		e.varint(d.Size)
		e.string(d.Param)
	}
}

func hashTensorType(e *encoder, t *tensor.Tensor) {
	if t == nil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(t.DType()))
	e.uvarint(uint64(t.Rank()))
	for _, d := range t.Shape() {
		e.uvarint(uint64(d))
	}
}

// hashAttr covers attribute values in full, tensor attributes included:
// a Constant's value is part of the model's structure, not a trained weight.
func hashAttr(e *encoder, a *graph.Attribute) {
	e.string(a.Name)
	e.uvarint(uint64(a.Type))
	e.string(a.RefAttr)
	e.float64(float64(a.F))
	e.varint(a.I)
	e.string(a.S)
	e.uvarint(uint64(len(a.Floats)))
	for _, f := range a.Floats {
		e.float64(float64(f))
	}
	e.uvarint(uint64(len(a.Ints)))
	for _, i := range a.Ints {
		e.varint(i)
	}
	e.uvarint(uint64(len(a.Strings)))
	for _, s := range a.Strings {
		e.string(s)
	}
	ts := a.Tensors
	if a.T != nil {
		ts = append([]*tensor.Tensor{a.T}, ts...)
	}
	e.uvarint(uint64(len(ts)))
	for _, t := range ts {
		e.tensor(a.Name, t)
	}
	gs := a.Graphs
	if a.G != nil {
		gs = append([]*graph.Graph{a.G}, gs...)
	}
	e.uvarint(uint64(len(gs)))
	for _, g := range gs {
		hashGraph(e, g)
	}
}

// DataHash identifies a training set: its sample shape, and every sample's
// values and label in index order. A training-state file records it, so a
// resume on other data (another file under the same name, another subset or
// split) is refused rather than silently continuing a different run. It
// reads every sample once (for an in-memory Dataset, a pass over its
// memory).
func DataHash(src data.Source) (string, error) {
	h := sha256.New()
	e := &encoder{w: h}
	e.string("gotrain-data-hash-1")
	sh := src.SampleShape()
	n := src.Len()
	for _, v := range []int{n, sh.C, sh.H, sh.W} {
		e.uvarint(uint64(v))
	}
	e.bool(sh.ChannelsLast)
	x := make([]float32, sh.Size())
	buf := make([]byte, 4*len(x))
	for i := range n {
		if err := src.Read(i, x); err != nil {
			return "", fmt.Errorf("data hash: sample %d: %w", i, err)
		}
		for j, v := range x {
			binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
		}
		e.varint(src.Label(i))
		e.write(buf)
	}
	if e.err != nil {
		return "", e.err
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}
