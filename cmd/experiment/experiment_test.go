package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

func TestStat(t *testing.T) {
	for _, c := range []struct {
		in        []float64
		mean, std float64
	}{
		{[]float64{1, 2, 3}, 2, 1},
		{[]float64{80, 82}, 81, math.Sqrt2},
		{[]float64{5}, 5, 0},
		{[]float64{4, 4, 4, 4}, 4, 0},
	} {
		s := stat(c.in)
		if math.Abs(s.Mean-c.mean) > 1e-12 || math.Abs(s.Std-c.std) > 1e-12 || s.N != len(c.in) {
			t.Errorf("stat(%v) = %+v, want mean %v std %v (sample, n-1)", c.in, s, c.mean, c.std)
		}
	}
}

// results makes a Results whose runs have the given test and train
// accuracies per configuration, one run per seed.
func results(acc map[string][][2]float64) *Results {
	r := &Results{Framework: "gotrain", Settings: Settings{Seeds: []uint64{1, 2, 3}, TrainSize: 800}}
	for _, s := range Setups {
		for i, a := range acc[s.Name] {
			r.Runs = append(r.Runs, Run{Config: s.Name, Seed: uint64(i + 1), TestAcc: a[0], TrainAcc: a[1], Epochs: 40, BestEpoch: 10})
		}
	}
	return r
}

func TestSummarizeAndChanges(t *testing.T) {
	r := results(map[string][][2]float64{
		"plain":   {{0.80, 1.00}, {0.81, 1.00}, {0.79, 1.00}},
		"augment": {{0.84, 0.95}, {0.85, 0.96}, {0.83, 0.94}},
		"decay":   {{0.80, 1.00}, {0.82, 1.00}},
	})
	sums := Summarize(r)
	if len(sums) != 3 || sums[0].Setup.Name != "plain" || sums[1].Setup.Name != "augment" || sums[2].Setup.Name != "decay" {
		t.Fatalf("summaries %+v: want plain, augment, decay in table order", sums)
	}
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	p, a := sums[0], sums[1]
	if !near(p.Test.Mean, 80) || !near(p.Test.Std, 1) || !near(p.Gap.Mean, 20) || !near(a.Gap.Mean, 11) || !near(a.Train.Mean, 95) {
		t.Errorf("plain %+v, augment %+v: want test 80 ± 1, gaps 20 and 11, augment train 95", p, a)
	}
	if !p.Complete || sums[2].Complete {
		t.Errorf("complete: plain %v (3 of 3 seeds), decay %v (2 of 3)", p.Complete, sums[2].Complete)
	}
	ch := Changes(sums)
	c := ch["augment"]
	// Both have std 1 over 3 seeds: the standard error is sqrt(1/3 + 1/3).
	if !near(c.Test, 4) || !near(c.Gap, -9) || !near(c.TestSE, math.Sqrt(2.0/3)) {
		t.Errorf("augment change %+v: want test +4, gap -9, SE %.4f", c, math.Sqrt(2.0/3))
	}
	if !isClear(c.Test, c.TestSE) || isClear(ch["decay"].Test, ch["decay"].TestSE) {
		t.Errorf("augment's +4 (SE 0.82) should be clear, decay's +1 (SE %.2f) should not", ch["decay"].TestSE)
	}
	if md := ChangeTable(sums, sums); !strings.Contains(md, "| + augmentation | +4.00 | +4.00 | −9.00 | −9.00 |") || !strings.Contains(md, "+1.00\\*") {
		t.Errorf("change table:\n%s", md)
	}
	f := Findings(800, 40, sums, sums)
	for _, want := range []string{"800 training images to 100.00%", "rises clearly with augmentation (+4.00)", "narrows clearly with augmentation (−9.00)",
		"same direction in 2 of 2 configurations"} {
		if !strings.Contains(f, want) {
			t.Errorf("findings lack %q:\n%s", want, f)
		}
	}
	// PyTorch's weight decay lowers test accuracy by 0.5 where gotrain's
	// raises it by 1 (and, with train accuracy at 100%, the gap moves the
	// other way in each): opposite directions, all within twice their SE.
	other := Summarize(results(map[string][][2]float64{
		"plain":   {{0.80, 1.00}, {0.81, 1.00}, {0.79, 1.00}},
		"augment": {{0.84, 0.95}, {0.85, 0.96}, {0.83, 0.94}},
		"decay":   {{0.79, 1.00}, {0.80, 1.00}},
	}))
	f = Findings(800, 40, sums, other)
	if want := "test accuracy in the same direction in 1 of 2 configurations and the gap in 1 of 2; where they differ (test accuracy with weight decay; the gap with weight decay), both changes are within"; !strings.Contains(f, want) {
		t.Errorf("findings lack %q:\n%s", want, f)
	}
	if Changes(sums[1:]) != nil {
		t.Error("changes without plain training should be nil")
	}
}

func TestSingleSeedMakesNoClaims(t *testing.T) {
	r := results(map[string][][2]float64{"plain": {{0.8, 1}}, "all": {{0.85, 0.9}}})
	sums := Summarize(r)
	f := Findings(800, 40, sums, nil)
	if strings.Contains(f, "clearly") || !strings.Contains(f, "no spread") {
		t.Errorf("one seed must not be judged:\n%s", f)
	}
	if md := ChangeTable(sums, nil); !strings.Contains(md, "| all three | +5.00 | −15.00 |") {
		t.Errorf("change table:\n%s", md)
	}
}

func TestReadResultsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name, body, want string
	}{
		{"bad.json", "{", "bad.json"},
		{"empty.json", `{"runs": []}`, "no runs"},
		{"config.json", `{"runs": [{"config": "dropout", "test_accuracy": 0.5, "train_accuracy": 0.5}]}`, `unknown configuration "dropout"`},
		{"acc.json", `{"runs": [{"config": "plain", "seed": 2, "test_accuracy": 81, "train_accuracy": 1}]}`, "seed 2): accuracy 81 outside [0, 1]"},
	} {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readResults(p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestCheckSame(t *testing.T) {
	g := results(map[string][][2]float64{"plain": {{0.8, 1}}})
	g.Settings.Epochs = 40
	tr := *g
	if err := checkSame(g, &tr); err != nil {
		t.Fatalf("same settings: %v", err)
	}
	tr.Settings.Epochs = 2
	if err := checkSame(g, &tr); err == nil || !strings.Contains(err.Error(), "epochs 2") {
		t.Errorf("different epochs: error %v, want one naming epochs 2", err)
	}
}

func TestRunArgs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-seeds", "1,x"}, "-seeds"},
		{[]string{"run", "-configs", "plain,dropout"}, `unknown configuration "dropout"`},
		{[]string{"run", "-epochs", "0"}, "-epochs 0"},
		{[]string{"run", "-augment", "rotation=10,hflip"}, "supports rotation"},
		{[]string{"run", "-augment", "zoom=0.8:1.1"}, "symmetric"},
		{[]string{"run", "-dataset", "cifar"}, `-dataset "cifar"`},
		{[]string{"fly"}, `unknown command "fly"`},
	} {
		var out bytes.Buffer
		err := mainErr(append(c.args, "-out", t.TempDir()), &out, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.want)
		}
	}
}

// TestTorchWarpMatchesAugment checks that the PyTorch script's warp is
// gotrain's augmentation map: for the same parameters both give the same
// image. The tolerance, 1e-5 on values in [0, 1], covers PyTorch building
// its sampling grid in float32 (positions off by up to about 28·2⁻²⁴
// pixels); a wrong sign, axis or centre moves whole edges by far more.
func TestTorchWarpMatchesAugment(t *testing.T) {
	py := testenv.Python(t, "torch", "numpy")
	s := augment.Shape{C: 1, H: 28, W: 28}
	src := make([]float32, s.Size())
	for i := range src {
		r, c := i/28, i%28
		src[i] = float32((r*7+c*13)%29) / 28 // a pattern with edges everywhere
	}
	a, err := augment.New(augment.Config{RotationRange: 30, WidthShift: 0.2, HeightShift: 0.2, ZoomRange: [2]float64{0.8, 1.2}}, s)
	if err != nil {
		t.Fatal(err)
	}
	ps := []augment.Params{{Rotation: 90}, {ShiftY: 1.5}, {ShiftX: -2.25}, {ZoomY: 0.93, ZoomX: 1.07},
		{Rotation: 17, ShiftY: -1.3, ShiftX: 2.1, ZoomY: 0.91, ZoomX: 1.08}, {Rotation: -9.5, ShiftY: 2.7, ShiftX: -0.4, ZoomY: 1.1, ZoomX: 0.9}}
	var want []float32
	params := make([][5]float64, len(ps))
	for i, p := range ps {
		dst := make([]float32, s.Size())
		a.ApplyParams(dst, src, p)
		want = append(want, dst...)
		zy, zx := p.ZoomY, p.ZoomX
		if zy == 0 {
			zy, zx = 1, 1
		}
		params[i] = [5]float64{p.Rotation, p.ShiftY, p.ShiftX, zy, zx}
	}
	dir := t.TempDir()
	if err := tensor.WriteNPYFile(filepath.Join(dir, "x.npy"), tensor.MustFromSlice(src, 1, 1, 28, 28)); err != nil {
		t.Fatal(err)
	}
	pj, _ := json.Marshal(params)
	script, err := filepath.Abs("../../scripts/experiment_torch.py")
	if err != nil {
		t.Fatal(err)
	}
	code := `
import importlib.util, json, sys
import numpy as np, torch
spec = importlib.util.spec_from_file_location("et", sys.argv[1])
et = importlib.util.module_from_spec(spec); spec.loader.exec_module(et)
x = torch.from_numpy(np.load(sys.argv[2] + "/x.npy"))
out = []
for th, sy, sx, zy, zx in json.loads(sys.argv[3]):
    T = lambda v: torch.tensor([v], dtype=torch.float64)
    out.append(et.warp(x, T(th), T(sy), T(sx), T(zy), T(zx))[0].numpy())
np.save(sys.argv[2] + "/y.npy", np.stack(out).astype(np.float32))
`
	cmd := exec.Command(py, "-c", code, script, dir, string(pj))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	y, err := tensor.ReadNPYFile(filepath.Join(dir, "y.npy"))
	if err != nil {
		t.Fatal(err)
	}
	got := y.Float32s()
	if len(got) != len(want) {
		t.Fatalf("PyTorch gave %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
			k, p := i/s.Size(), i%s.Size()
			t.Fatalf("params %+v, pixel (%d, %d): PyTorch %v, gotrain %v (|diff| %.2g > 1e-5)", ps[k], p/28, p%28, got[i], want[i], d)
		}
	}
}

// TestRunAndReport runs the experiment end to end at toy size (two epochs,
// 200 images, two configurations, two seeds) and checks what it writes.
func TestRunAndReport(t *testing.T) {
	if testing.Short() {
		t.Skip("trains for a few seconds")
	}
	dir := t.TempDir()
	var out bytes.Buffer
	err := mainErr([]string{"run", "-out", dir, "-epochs", "2", "-subset", "200", "-seeds", "1,2", "-configs", "plain,all", "-threads", "1"}, &out, &out)
	if err != nil {
		if strings.Contains(err.Error(), "not available") || strings.Contains(err.Error(), "no such file") {
			testenv.Missing(t, "the experiment's dataset: %v", err)
		}
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	for _, f := range []string{"settings.json", "gotrain.json", "train_x.npy", "train_y.npy", "val_x.npy", "test_y.npy", "init/seed2/fc.weight.npy"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("run did not write %s: %v", f, err)
		}
	}
	x, err := tensor.ReadNPYFile(filepath.Join(dir, "train_x.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if sh := x.Shape(); len(sh) != 4 || sh[0] != 160 || sh[1] != 1 || sh[2] != 28 || sh[3] != 28 {
		t.Errorf("train_x.npy shape %v, want [160 1 28 28] (200 images less a 20%% validation split)", sh)
	}
	for _, v := range x.Float32s() {
		if v < 0 || v > 1 {
			t.Fatalf("train_x.npy has %v: pixels must be scaled to [0, 1]", v)
		}
	}
	r, err := readResults(filepath.Join(dir, "gotrain.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Runs) != 4 || r.Settings.TrainSize != 160 || r.Settings.ValSize != 40 {
		t.Fatalf("results: %d runs, sizes %d/%d; want 4 runs on 160/40", len(r.Runs), r.Settings.TrainSize, r.Settings.ValSize)
	}
	// Ten steps of Adam lift plain training well above chance (10%; it
	// reaches about 50% here).
	for _, run := range r.Runs {
		if run.Epochs != 2 || run.BestEpoch < 1 || run.BestEpoch > 2 {
			t.Errorf("%s seed %d: %d epochs, best val epoch %d; want 2 epochs and a best epoch of 1 or 2", run.Config, run.Seed, run.Epochs, run.BestEpoch)
		}
		if run.Config == "plain" && run.TestAcc <= 0.25 {
			t.Errorf("plain seed %d: test accuracy %.3f after 2 epochs; want > 0.25", run.Seed, run.TestAcc)
		}
	}
	md := filepath.Join(dir, "EXPERIMENT.md")
	out.Reset()
	if err := mainErr([]string{"report", "-dir", dir, "-o", md}, &out, &out); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## gotrain", "| plain | ", "| all three | ", "No PyTorch results", "split 160 for training and 40 for validation"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
}
