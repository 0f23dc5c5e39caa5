package optim_test

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
)

func TestBuildUpdateLayout(t *testing.T) {
	params := []optim.Param{
		{Name: "fc.weight", Shape: []int{3, 2}, Kind: optim.Weight},
		{Name: "fc.bias", Shape: []int{3}, Kind: optim.Bias},
	}
	u, err := optim.BuildUpdate(optim.Config{Name: "AdamW", WeightDecay: 0.01, ClipNorm: 1}, params)
	if err != nil {
		t.Fatal(err)
	}
	var inputs []string
	for _, in := range u.Model.Graph.Inputs {
		inputs = append(inputs, in.Name)
	}
	wantIn := []string{"lr", "step",
		"fc.weight", "grad:fc.weight", "fc.weight:m", "fc.weight:v",
		"fc.bias", "grad:fc.bias", "fc.bias:m", "fc.bias:v"}
	if !reflect.DeepEqual(inputs, wantIn) {
		t.Errorf("inputs %v, want %v", inputs, wantIn)
	}
	var outputs []string
	for _, o := range u.Model.Graph.Outputs {
		outputs = append(outputs, o.Name)
		if o.DType != tensor.Float32 {
			t.Errorf("output %s is %v", o.Name, o.DType)
		}
	}
	wantOut := []string{"fc.weight:next", "fc.weight:m:next", "fc.weight:v:next", "fc.bias:next", "fc.bias:m:next", "fc.bias:v:next"}
	if !reflect.DeepEqual(outputs, wantOut) {
		t.Errorf("outputs %v, want %v", outputs, wantOut)
	}
	if len(u.InPlace) != len(wantOut) {
		t.Errorf("InPlace has %d entries, want %d", len(u.InPlace), len(wantOut))
	}
	for _, o := range wantOut {
		if in := u.InPlace[o]; in+":next" != o {
			t.Errorf("InPlace[%s] = %q", o, in)
		}
	}
	if got, want := u.StateNames(), []string{"fc.weight:m", "fc.weight:v", "fc.bias:m", "fc.bias:v"}; !reflect.DeepEqual(got, want) {
		t.Errorf("StateNames %v, want %v", got, want)
	}
	ops := map[string]int{}
	for _, n := range u.Model.Graph.Nodes {
		ops[n.OpType]++
		if n.OpType == "AdamUpdate" && n.AttrInt("decoupled", 0) != 1 {
			t.Errorf("%s: adamw must decay decoupled", n)
		}
	}
	if ops["GlobalNormScale"] != 1 || ops["AdamUpdate"] != 2 {
		t.Errorf("ops %v, want one GlobalNormScale and two AdamUpdate", ops)
	}
	// The bias is free of decay by default.
	if s := u.Settings["fc.bias"]; s.WeightDecay != 0 || u.Settings["fc.weight"].WeightDecay != 0.01 {
		t.Errorf("settings %+v", u.Settings)
	}
	if err := graph.Validate(u.Model); err != nil {
		t.Errorf("the update model does not validate: %v", err)
	}
}

// TestGroupsAndDecayThroughBackend checks on the CPU backend what groups
// and the decay modes do to one SGD step, against the formula computed here.
func TestGroupsAndDecayThroughBackend(t *testing.T) {
	noDecay := 0.0
	const lr, wd = 0.1, 0.05
	params := []optim.Param{
		{Name: "body.w", Shape: []int{2, 2}, Kind: optim.Weight},
		{Name: "body.b", Shape: []int{2}, Kind: optim.Bias},
		{Name: "head.w", Shape: []int{2, 2}, Kind: optim.Weight},
		{Name: "emb", Shape: []int{2, 2}, Kind: optim.Weight},
	}
	init := map[string][]float32{
		"body.w": {1, -2, 3, -4}, "body.b": {0.5, -0.5}, "head.w": {2, 2, -2, -2}, "emb": {1, 1, 1, 1},
	}
	grads := map[string][]float32{
		"body.w": {0.1, 0.2, -0.3, 0.4}, "body.b": {1, -1}, "head.w": {0.5, -0.5, 0.25, -0.25}, "emb": {0.3, 0.3, 0.3, 0.3},
	}
	groups := []optim.Group{
		{Name: "head", Patterns: []string{"head.*"}, LRScale: 3},
		{Name: "emb", Patterns: []string{"emb"}, WeightDecay: &noDecay},
	}
	// lrScale and decay each parameter must get.
	expect := map[string][2]float64{"body.w": {1, wd}, "body.b": {1, 0}, "head.w": {3, wd}, "emb": {1, 0}}
	for _, mode := range []optim.DecayMode{optim.DecayL2, optim.DecayDecoupled} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := optim.Config{Name: "sgd", LR: lr, WeightDecay: wd, DecayMode: mode, Groups: groups}
			s := newStepper(t, cfg, params, init)
			s.do(grads)
			for _, p := range params {
				scale, decay := expect[p.Name][0], expect[p.Name][1]
				for i, w0 := range init[p.Name] {
					w, g, plr := float64(w0), float64(grads[p.Name][i]), lr*scale
					var want float64
					if mode == optim.DecayL2 {
						want = w - plr*(g+decay*w)
					} else {
						want = w*(1-plr*decay) - plr*g
					}
					// One float32 step on values below 5: 1e-6 is a few ulps.
					if got := float64(s.value(p.Name)[i]); math.Abs(got-want) > 1e-6 {
						t.Errorf("%s[%d] = %.8g, want %.8g", p.Name, i, got, want)
					}
				}
			}
		})
	}
}

// TestRMSpropCenteredWithoutMomentum runs the op with an omitted optional
// input and output in the middle (momentum) and the last one (grad_avg)
// present.
func TestRMSpropCenteredWithoutMomentum(t *testing.T) {
	params := []optim.Param{{Name: "w", Shape: []int{3}}}
	cfg := optim.Config{Name: "rmsprop", LR: 0.01, Alpha: 0.9, Centered: true}
	s := newStepper(t, cfg, params, map[string][]float32{"w": {1, 2, 3}})
	if got := s.u.Slots; !reflect.DeepEqual(got, []string{"square_avg", "grad_avg"}) {
		t.Fatalf("slots %v", got)
	}
	g := []float32{0.5, -1, 2}
	s.do(map[string][]float32{"w": g})
	for i, gi := range g {
		ga := 0.1 * float64(gi)
		sq := 0.1 * float64(gi) * float64(gi)
		want := float64([]float32{1, 2, 3}[i]) - 0.01*float64(gi)/(math.Sqrt(sq-ga*ga)+1e-8)
		if got := float64(s.value("w:grad_avg")[i]); math.Abs(got-ga) > 1e-7 {
			t.Errorf("grad_avg[%d] = %g, want %g", i, got, ga)
		}
		if got := float64(s.value("w")[i]); math.Abs(got-want) > 1e-6 {
			t.Errorf("w[%d] = %.8g, want %.8g", i, got, want)
		}
	}
}

// TestAdamGoldenThroughBackend runs one Adam step of the whole golden CNN
// through the update graph and compares with torch.optim.Adam's weights
// (testdata/golden/README.md: 1e-6 abs after Adam steps): the committed
// set, and the full-size shared one when it is beside the project.
func TestAdamGoldenThroughBackend(t *testing.T) {
	for _, dir := range testenv.SeedGoldens(t, "cnn") {
		t.Run(filepath.Base(filepath.Dir(dir))+"/"+filepath.Base(dir), func(t *testing.T) { adamGolden(t, dir) })
	}
}

func adamGolden(t *testing.T, dir string) {
	read := func(sub, name string) *tensor.Tensor {
		x, err := tensor.ReadNPYFile(filepath.Join(dir, sub, name+".npy"))
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	names := []string{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"}
	var params []optim.Param
	init, grads := map[string][]float32{}, map[string][]float32{}
	for _, n := range names {
		w := read("init", n)
		kind := optim.Weight
		if w.Rank() == 1 {
			kind = optim.Bias
		}
		params = append(params, optim.Param{Name: n, Shape: w.Shape(), Kind: kind})
		init[n], grads[n] = w.Float32s(), read("grad", n).Float32s()
	}
	s := newStepper(t, optim.Config{Name: "adam", LR: 1e-3}, params, init)
	s.do(grads)
	for _, n := range names {
		want := read("adam_1", n).Float32s()
		for i, got := range s.value(n) {
			if d := math.Abs(float64(got) - float64(want[i])); d > 1e-6 {
				t.Fatalf("%s[%d] = %.9g, torch %.9g (|diff| %.3g > 1e-6)", n, i, got, want[i], d)
			}
		}
	}
}

func TestInitAndCheckState(t *testing.T) {
	params := []optim.Param{{Name: "w", Shape: []int{2, 3}}, {Name: "b", Shape: []int{3}, Kind: optim.Bias}}
	cfg := optim.Config{Name: "adagrad", InitialAccumulator: 0.25}
	u, err := optim.BuildUpdate(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	state, err := u.InitState()
	if err != nil {
		t.Fatal(err)
	}
	if len(state) != 2 {
		t.Fatalf("state has %d tensors, want 2", len(state))
	}
	for _, v := range state["w:sum"].Float32s() {
		if v != 0.25 {
			t.Fatalf("w:sum starts at %g, want 0.25", v)
		}
	}
	if err := u.CheckState(state); err != nil {
		t.Fatalf("fresh state: %v", err)
	}
	cases := []struct {
		name string
		edit func(map[string]*tensor.Tensor)
		want string
	}{
		{"missing", func(s map[string]*tensor.Tensor) { delete(s, "b:sum") }, `"b:sum" (sum slot of "b") is missing`},
		{"shape", func(s map[string]*tensor.Tensor) { s["w:sum"] = tensor.New(tensor.Float32, 3, 2) }, `"w:sum" has shape [3 2]`},
		{"dtype", func(s map[string]*tensor.Tensor) { s["w:sum"] = tensor.New(tensor.Float64, 2, 3) }, "want float32"},
		{"extra", func(s map[string]*tensor.Tensor) { s["w:m"] = tensor.New(tensor.Float32, 2, 3) }, `"w:m" belongs to no slot`},
	}
	for _, tc := range cases {
		s := map[string]*tensor.Tensor{}
		for k, v := range state {
			s[k] = v
		}
		tc.edit(s)
		if err := u.CheckState(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestBuildUpdateErrors(t *testing.T) {
	cases := []struct {
		name   string
		cfg    optim.Config
		params []optim.Param
		want   string
	}{
		{"bad_config", optim.Config{Name: "adam", Beta1: 2}, nil, "Beta1"},
		{"no_name", optim.Config{Name: "sgd"}, []optim.Param{{Shape: []int{1}}}, "parameter 0 has no name"},
		{"duplicate", optim.Config{Name: "sgd"}, []optim.Param{{Name: "w", Shape: []int{1}}, {Name: "w", Shape: []int{1}}}, `"w"`},
		{"collides_with_slot", optim.Config{Name: "adam"}, []optim.Param{{Name: "w", Shape: []int{1}}, {Name: "w:m", Shape: []int{1}}}, `value name "w:m"`},
		{"reserved", optim.Config{Name: "sgd"}, []optim.Param{{Name: "lr", Shape: []int{1}}}, "the lr input"},
		{"negative_dim", optim.Config{Name: "sgd"}, []optim.Param{{Name: "w", Shape: []int{-1}}}, "negative dim"},
	}
	for _, tc := range cases {
		_, err := optim.BuildUpdate(tc.cfg, tc.params)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	var fe *optim.FieldError
	if _, err := optim.BuildUpdate(optim.Config{Name: "nadam"}, nil); !errors.As(err, &fe) || fe.Field != "Name" {
		t.Errorf("unknown optimizer: error %v, want a FieldError on Name", err)
	}
}
