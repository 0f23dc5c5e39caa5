package optim

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizedDefaults(t *testing.T) {
	cases := []struct {
		in   Config
		want Config
	}{
		{Config{Name: "SGD"}, Config{Name: SGD, LR: 1e-3, DecayMode: DecayL2}},
		{Config{Name: "momentum", LR: 0.1}, Config{Name: Momentum, LR: 0.1, Momentum: 0.9, DecayMode: DecayL2}},
		{Config{Name: "nesterov", LR: 0.1, Momentum: 0.8}, Config{Name: Nesterov, LR: 0.1, Momentum: 0.8, DecayMode: DecayL2}},
		{Config{Name: "adam"}, Config{Name: Adam, LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, EpsMode: EpsPyTorch, DecayMode: DecayL2}},
		{Config{Name: "adam", EpsMode: EpsKeras}, Config{Name: Adam, LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-7, EpsMode: EpsKeras, DecayMode: DecayL2}},
		{Config{Name: "adam", Beta2: 0.99}, Config{Name: Adam, LR: 1e-3, Beta1: 0, Beta2: 0.99, Eps: 1e-8, EpsMode: EpsPyTorch, DecayMode: DecayL2}},
		{Config{Name: "adamw", WeightDecay: 0.01}, Config{Name: AdamW, LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, EpsMode: EpsPyTorch, WeightDecay: 0.01, DecayMode: DecayDecoupled}},
		{Config{Name: "rmsprop"}, Config{Name: RMSprop, LR: 1e-2, Alpha: 0.99, Eps: 1e-8, DecayMode: DecayL2}},
		{Config{Name: "adagrad"}, Config{Name: Adagrad, LR: 1e-2, Eps: 1e-10, DecayMode: DecayL2}},
	}
	for _, tc := range cases {
		got, err := tc.in.Normalized()
		if err != nil {
			t.Errorf("%+v: %v", tc.in, err)
			continue
		}
		tc.want.Schedule.Base = tc.want.LR
		got.Groups = nil
		if got.Name != tc.want.Name || got.LR != tc.want.LR || got.Momentum != tc.want.Momentum ||
			got.Beta1 != tc.want.Beta1 || got.Beta2 != tc.want.Beta2 || got.Eps != tc.want.Eps ||
			got.EpsMode != tc.want.EpsMode || got.Alpha != tc.want.Alpha || got.DecayMode != tc.want.DecayMode ||
			got.WeightDecay != tc.want.WeightDecay || got.Schedule != tc.want.Schedule {
			t.Errorf("%+v normalized to\n%+v, want\n%+v", tc.in, got, tc.want)
		}
	}
}

func TestNormalizedErrors(t *testing.T) {
	neg := -0.1
	cases := []struct {
		cfg   Config
		field string // the FieldError's field
		msg   string // a fragment of the message
	}{
		{Config{}, "Name", "no optimizer"},
		{Config{Name: "lbfgs"}, "Name", `unknown optimizer "lbfgs"`},
		{Config{Name: "sgd", LR: -1}, "LR", ">= 0"},
		{Config{Name: "sgd", WeightDecay: -1e-4}, "WeightDecay", ">= 0"},
		{Config{Name: "adam", Beta1: 1, Beta2: 0.999}, "Beta1", "[0, 1)"},
		{Config{Name: "adam", Beta1: 0.9, Beta2: 1.5}, "Beta2", "[0, 1)"},
		{Config{Name: "adam", EpsMode: "tf"}, "EpsMode", `unknown mode "tf"`},
		{Config{Name: "sgd", EpsMode: EpsKeras}, "EpsMode", "only applies to adam"},
		{Config{Name: "sgd", Beta1: 0.9}, "Beta1", "not used by sgd"},
		{Config{Name: "adam", Momentum: 0.9}, "Momentum", "not used by adam"},
		{Config{Name: "nesterov", Dampening: 0.1}, "Dampening", "must be 0 for nesterov"},
		{Config{Name: "sgd", Dampening: 0.1}, "Dampening", "needs Momentum"},
		{Config{Name: "momentum", Dampening: 2}, "Dampening", "[0, 1]"},
		{Config{Name: "rmsprop", Alpha: 1.5}, "Alpha", "[0, 1]"},
		{Config{Name: "adam", Centered: true}, "Centered", "only applies to rmsprop"},
		{Config{Name: "sgd", LRDecay: 0.1}, "LRDecay", "not used by sgd"},
		{Config{Name: "adamw", DecayMode: DecayL2}, "DecayMode", "use adam for L2"},
		{Config{Name: "sgd", DecayMode: "both"}, "DecayMode", `unknown mode "both"`},
		{Config{Name: "sgd", ClipNorm: -1}, "ClipNorm", ">= 0"},
		{Config{Name: "sgd", Groups: []Group{{Name: "g"}}}, "Groups[0] (g)", "needs Patterns or Kinds"},
		{Config{Name: "sgd", Groups: []Group{{Patterns: []string{""}}}}, "Groups[0].Patterns", "empty pattern"},
		{Config{Name: "sgd", Groups: []Group{{Kinds: []Kind{Bias}, WeightDecay: &neg}}}, "Groups[0].WeightDecay", ">= 0"},
		{Config{Name: "sgd", Schedule: Schedule{Kind: StepDecay, Gamma: 0.1}}, "Schedule.Size", ">= 1"},
		{Config{Name: "sgd", Schedule: Schedule{Kind: Cosine, Warmup: 10, Total: 5}}, "Schedule.Total", "must exceed Warmup"},
		{Config{Name: "sgd", LR: 0.1, Schedule: Schedule{Kind: Cosine, Min: 1}}, "Schedule.Min", "[0, Base=0.1]"},
		{Config{Name: "sgd", Schedule: Schedule{Kind: "linear"}}, "Schedule.Kind", `unknown schedule "linear"`},
	}
	for _, tc := range cases {
		_, err := tc.cfg.Normalized()
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%+v: error %v, want a FieldError on %s", tc.cfg, err, tc.field)
			continue
		}
		if fe.Field != tc.field || !strings.Contains(fe.Msg, tc.msg) {
			t.Errorf("%+v: error %q, want field %s and message containing %q", tc.cfg, err, tc.field, tc.msg)
		}
	}
}

func TestResolveGroupsAndDecay(t *testing.T) {
	wd0, wd1 := 0.0, 0.5
	cfg, err := Config{Name: "sgd", LR: 0.1, WeightDecay: 1e-2, Groups: []Group{
		{Name: "head", Patterns: []string{"head/*"}, LRScale: 10},
		{Name: "emb_no_decay", Patterns: []string{"*.embedding"}, WeightDecay: &wd0},
		{Name: "ln", Kinds: []Kind{Norm}, WeightDecay: &wd1},
	}}.Normalized()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		p    Param
		want Setting
	}{
		{Param{Name: "conv1.weight", Kind: Weight}, Setting{LRScale: 1, WeightDecay: 1e-2}},
		{Param{Name: "conv1.bias", Kind: Bias}, Setting{LRScale: 1, WeightDecay: 0}},
		{Param{Name: "head/dense/kernel:0", Kind: Weight}, Setting{LRScale: 10, WeightDecay: 1e-2, Group: "head"}},
		{Param{Name: "head/dense/bias:0", Kind: Bias}, Setting{LRScale: 10, WeightDecay: 0, Group: "head"}},
		{Param{Name: "tok.embedding", Kind: Weight}, Setting{LRScale: 1, WeightDecay: 0, Group: "emb_no_decay"}},
		{Param{Name: "ln1.scale", Kind: Norm}, Setting{LRScale: 1, WeightDecay: 0.5, Group: "ln"}},
	}
	for _, tc := range cases {
		if got := cfg.Resolve(tc.p); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.p.Name, got, tc.want)
		}
	}
	cfg.DecayBiasNorm = true
	if got := cfg.Resolve(Param{Name: "fc.bias", Kind: Bias}); got.WeightDecay != 1e-2 {
		t.Errorf("with DecayBiasNorm a bias decays by %g, want 0.01", got.WeightDecay)
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		pat, name string
		want      bool
	}{
		{"*", "anything/at.all", true},
		{"conv*.weight", "conv12.weight", true},
		{"conv*.weight", "conv1.bias", false},
		{"*.bias", "layer1/0/conv.bias", true},
		{"fc.?", "fc.w", true},
		{"fc.?", "fc.wb", false},
		{"a*b*c", "aXXbYYbZc", true},
		{"a*b*c", "aXXbYYbZ", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**x", "x", true},
	}
	for _, tc := range cases {
		if got := Glob(tc.pat, tc.name); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
}

func TestKerasL2(t *testing.T) {
	// l2(λ) adds λ*sum(w²) to the loss; its gradient 2λw is WeightDecay*w.
	lambda, w := 5e-4, 3.0
	if got, want := KerasL2(lambda)*w, 2*lambda*w; got != want {
		t.Errorf("KerasL2(%g)*w = %g, want d(λw²)/dw = %g", lambda, got, want)
	}
}
