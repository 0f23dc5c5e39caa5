package strategy

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
)

// Kind is a strategy that Build can choose by name.
type Kind struct {
	// New makes the strategy from a complete Config.
	New func(Config) (Strategy, error)
	// Group is set when the strategy's replicas run as a group that can
	// reduce values inside their graphs, so that sync BatchNorm applies;
	// without it a request for sync BatchNorm builds ordinary BatchNorm.
	Group bool
}

var (
	kindsMu sync.Mutex
	kinds   = map[string]Kind{
		"single":      {New: NewSingleDevice},
		"mirrored":    {New: NewMirrored, Group: true},
		"multiworker": {New: newMultiWorker, Group: true},
	}
)

// Register makes a strategy available to Build under name (from the init
// of a package that implements one). It panics on an empty name or a nil
// New, as a programming error.
func Register(name string, k Kind) {
	if name == "" || k.New == nil {
		panic("strategy: Register needs a name and a New function")
	}
	kindsMu.Lock()
	defer kindsMu.Unlock()
	kinds[name] = k
}

// Names lists the strategies Build knows, sorted.
func Names() []string {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	out := make([]string, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lookup(name string) (Kind, error) {
	if name == "" {
		name = "single"
	}
	kindsMu.Lock()
	k, ok := kinds[name]
	kindsMu.Unlock()
	if !ok {
		return Kind{}, fmt.Errorf("strategy: unknown strategy %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return k, nil
}

// BuildConfig says what Build assembles.
type BuildConfig struct {
	// Strategy is the strategy's name: "single" (the default),
	// "mirrored", "multiworker" (with World), or any other that Register
	// added (see Names).
	Strategy string
	Backend  backend.Backend
	// Training shapes the training graph: loss, label smoothing,
	// reduction, frozen parameters, sync BatchNorm (which applies only to
	// strategies whose replicas run as a group).
	Training graph.TrainingOptions
	// Optim is the optimizer, its weight decay, clipping and schedule.
	Optim optim.Config
	// Init overrides initial parameter and buffer values by name; the
	// others come from the model's initializers.
	Init map[string]*tensor.Tensor
	// Replicas, CheckReplicas, Deterministic and ShardSize are as in
	// Config.
	Replicas      int
	CheckReplicas bool
	Deterministic bool
	ShardSize     int
	// World is the worker processes of a "multiworker" run.
	World World
}

// Setup is an assembled training run.
type Setup struct {
	Training *graph.Training
	Update   *optim.Update
	Strategy Strategy
}

// Build assembles a training run of model m: the training graph (forward,
// loss, backward), the optimizer's update graph over the trainable
// parameters (classified by ParamsOf), and the named strategy on the
// backend, holding the initial weights.
func Build(m *graph.Model, c BuildConfig) (*Setup, error) {
	kind, err := lookup(c.Strategy)
	if err != nil {
		return nil, err
	}
	if c.Backend == nil {
		return nil, fmt.Errorf("strategy: no backend")
	}
	to := c.Training
	to.SyncBatchNorm = to.SyncBatchNorm && kind.Group
	tr, err := graph.TrainingGraph(m, to)
	if err != nil {
		return nil, err
	}
	up, err := optim.BuildUpdate(c.Optim, ParamsOf(m, tr))
	if err != nil {
		return nil, err
	}
	init := map[string]*tensor.Tensor{}
	for _, name := range append(append([]string{}, tr.Params...), tr.Buffers...) {
		init[name] = m.Graph.Initializer(name)
		if t, ok := c.Init[name]; ok {
			init[name] = t
		}
		if init[name] == nil {
			return nil, fmt.Errorf("strategy: no initial value for %q", name)
		}
	}
	st, err := kind.New(Config{Backend: c.Backend, Training: tr, Update: up, Init: init, Replicas: c.Replicas,
		CheckReplicas: c.CheckReplicas, Deterministic: c.Deterministic, ShardSize: c.ShardSize, World: c.World})
	if err != nil {
		return nil, err
	}
	return &Setup{Training: tr, Update: up, Strategy: st}, nil
}

// ParamsOf classifies the trainable parameters for the optimizer: inputs
// 1 and 2 of BatchNormalization and LayerNormalization are Norm, other
// rank-1 tensors Bias, the rest Weight.
func ParamsOf(m *graph.Model, tr *graph.Training) []optim.Param {
	norm := map[string]bool{}
	for _, n := range m.Graph.Nodes {
		if n.OpType == "BatchNormalization" || n.OpType == "LayerNormalization" {
			for _, in := range n.Inputs[1:min(3, len(n.Inputs))] {
				norm[in] = true
			}
		}
	}
	var out []optim.Param
	for _, name := range tr.Params {
		t := m.Graph.Initializer(name)
		k := optim.Weight
		switch {
		case norm[name]:
			k = optim.Norm
		case t.Rank() <= 1:
			k = optim.Bias
		}
		out = append(out, optim.Param{Name: name, Shape: t.Shape(), Kind: k})
	}
	return out
}
