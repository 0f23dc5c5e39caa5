package optim_test

import (
	"encoding/json"
	"math"
	"os/exec"
	"testing"

	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/optim"
)

// torchRef is what testdata/torch_ref.py prints.
type torchRef struct {
	Steps int    `json:"steps"`
	Torch string `json:"torch"`
	Cases map[string]struct {
		Init   map[string][]float32   `json:"init"`
		Shapes map[string][]int       `json:"shapes"`
		Grads  []map[string][]float32 `json:"grads"`
		Final  map[string][]float64   `json:"final"`
		State  map[string][]float64   `json:"state"`
	} `json:"cases"`
}

// TestMatchesTorch runs the update graphs on the CPU backend for ten steps
// and compares parameters and state with torch.optim's, computed by
// testdata/torch_ref.py from the same initial values and gradients. The
// configs here mirror the script's case by case. PyTorch decays every
// parameter it is given, so DecayBiasNorm is set throughout.
func TestMatchesTorch(t *testing.T) {
	python := testenv.Python(t, "torch")
	out, err := exec.Command(python, "testdata/torch_ref.py").Output()
	if err != nil {
		t.Fatalf("testdata/torch_ref.py: %v", err)
	}
	var ref torchRef
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatalf("testdata/torch_ref.py output: %v", err)
	}
	configs := map[string]optim.Config{
		"sgd_nesterov":  {Name: "nesterov", LR: 0.05, Momentum: 0.9, WeightDecay: 1e-3, DecayBiasNorm: true},
		"sgd_dampening": {Name: "momentum", LR: 0.05, Momentum: 0.8, Dampening: 0.25, WeightDecay: 1e-2, DecayBiasNorm: true},
		"rmsprop_centered_momentum": {Name: "rmsprop", LR: 0.01, Alpha: 0.9, Eps: 1e-6, Momentum: 0.5, Centered: true,
			WeightDecay: 0.01, DecayBiasNorm: true},
		"adagrad": {Name: "adagrad", LR: 0.1, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulator: 0.1, Eps: 1e-10,
			DecayBiasNorm: true},
		"adamw_clip_norm": {Name: "adamw", LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, ClipNorm: 3,
			DecayBiasNorm: true},
		"adam_l2_clip_value": {Name: "adam", LR: 1e-2, WeightDecay: 0.05, ClipValue: 0.8, DecayBiasNorm: true},
	}
	if len(ref.Cases) != len(configs) {
		t.Fatalf("the script has %d cases, the test %d", len(ref.Cases), len(configs))
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			c, ok := ref.Cases[name]
			if !ok {
				t.Fatalf("the script has no case %q", name)
			}
			params := []optim.Param{
				{Name: "w", Shape: c.Shapes["w"], Kind: optim.Weight},
				{Name: "b", Shape: c.Shapes["b"], Kind: optim.Bias},
			}
			s := newStepper(t, cfg, params, c.Init)
			for _, g := range c.Grads {
				s.do(g)
			}
			// Both sides compute in float32 with different operation orders.
			// Over ten steps the observed differences are a few float32 ulps
			// (at most 2.4e-7 on O(1) values, 1.9e-6 on Adagrad sums near 30);
			// 1e-6 + 1e-6*|want| keeps a margin of 8x or more, while a
			// formula difference moves results by O(lr) >= 1e-3.
			const atol, rtol = 1e-6, 1e-6
			check := func(what string, got []float32, want []float64) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: %d values, torch has %d", what, len(got), len(want))
				}
				for i := range got {
					if d := math.Abs(float64(got[i]) - want[i]); !(d <= atol+rtol*math.Abs(want[i])) {
						t.Errorf("%s[%d] = %.9g; torch %s gives %.9g (|diff| %.3g > %g + %g*|want|)",
							what, i, got[i], ref.Torch, want[i], d, atol, rtol)
						return
					}
				}
			}
			for _, p := range params {
				check(p.Name, s.value(p.Name), c.Final[p.Name])
				for _, slot := range s.u.Slots {
					name := optim.SlotName(p.Name, slot)
					want, ok := c.State[name]
					if !ok {
						t.Fatalf("the script has no state %q", name)
					}
					check(name, s.value(name), want)
				}
			}
		})
	}
}
