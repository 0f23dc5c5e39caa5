package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/gotrain/gotrain/internal/atomicfile"
)

// Stat is the mean and sample standard deviation (n-1) of a few values.
type Stat struct {
	Mean, Std float64
	N         int
}

func stat(v []float64) Stat {
	s := Stat{N: len(v)}
	if len(v) == 0 {
		return Stat{Mean: math.NaN(), Std: math.NaN()}
	}
	for _, x := range v {
		s.Mean += x
	}
	s.Mean /= float64(len(v))
	if len(v) > 1 {
		var sq float64
		for _, x := range v {
			sq += (x - s.Mean) * (x - s.Mean)
		}
		s.Std = math.Sqrt(sq / float64(len(v)-1))
	}
	return s
}

// Summary aggregates one configuration's runs (accuracies in percent, the
// gap in percentage points).
type Summary struct {
	Setup    Setup
	Test     Stat
	Train    Stat
	Gap      Stat
	Epochs   Stat
	BestVal  Stat
	Seconds  Stat
	Seeds    []uint64
	Complete bool // a run for every seed of the settings
}

// Summarize groups the runs by configuration, in table order; a
// configuration without runs is left out.
func Summarize(r *Results) []Summary {
	var out []Summary
	for _, s := range Setups {
		var test, train, gap, epochs, best, secs []float64
		var seeds []uint64
		for _, run := range r.Runs {
			if run.Config != s.Name {
				continue
			}
			test = append(test, 100*run.TestAcc)
			train = append(train, 100*run.TrainAcc)
			gap = append(gap, 100*(run.TrainAcc-run.TestAcc))
			epochs = append(epochs, float64(run.Epochs))
			best = append(best, float64(run.BestEpoch))
			secs = append(secs, run.Seconds)
			seeds = append(seeds, run.Seed)
		}
		if len(test) == 0 {
			continue
		}
		out = append(out, Summary{Setup: s, Test: stat(test), Train: stat(train), Gap: stat(gap), Epochs: stat(epochs),
			BestVal: stat(best), Seconds: stat(secs), Seeds: seeds, Complete: len(seeds) == len(r.Settings.Seeds)})
	}
	return out
}

func pm(s Stat) string {
	if s.N < 2 {
		return fmt.Sprintf("%.2f", s.Mean)
	}
	return fmt.Sprintf("%.2f ± %.2f", s.Mean, s.Std)
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// Table renders a framework's summaries as markdown.
func Table(sums []Summary) string {
	var b strings.Builder
	b.WriteString("| configuration | test accuracy (%) | train accuracy (%) | train − test gap (points) | epochs run | best val_loss epoch |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range sums {
		label := s.Setup.Label
		if !s.Complete {
			label += fmt.Sprintf(" (%d seeds)", len(s.Seeds))
		}
		fmt.Fprintf(&b, "| %s | %s | %.2f | %s | %s | %s |\n", label, pm(s.Test), s.Train.Mean, pm(s.Gap),
			num(s.Epochs.Mean), num(s.BestVal.Mean))
	}
	return b.String()
}

// Change is a configuration's difference from plain training in one
// framework, with the standard error of that difference of means.
type Change struct {
	Test, TestSE float64
	Gap, GapSE   float64
}

// se is the standard error of the difference of two means; NaN when either
// has a single value, since one seed gives no spread to judge by.
func se(a, b Stat) float64 {
	if a.N < 2 || b.N < 2 {
		return math.NaN()
	}
	return math.Sqrt(a.Std*a.Std/float64(max(a.N, 1)) + b.Std*b.Std/float64(max(b.N, 1)))
}

// Changes returns each configuration's change from plain training, keyed
// by configuration name; nil when plain training is missing.
func Changes(sums []Summary) map[string]Change {
	var plain *Summary
	for i := range sums {
		if sums[i].Setup.Name == "plain" {
			plain = &sums[i]
		}
	}
	if plain == nil {
		return nil
	}
	out := map[string]Change{}
	for _, s := range sums {
		if s.Setup.Name == "plain" {
			continue
		}
		out[s.Setup.Name] = Change{Test: s.Test.Mean - plain.Test.Mean, TestSE: se(s.Test, plain.Test),
			Gap: s.Gap.Mean - plain.Gap.Mean, GapSE: se(s.Gap, plain.Gap)}
	}
	return out
}

// isClear reports whether a change exceeds twice its standard error (never
// when there is no standard error).
func isClear(d, se float64) bool { return math.Abs(d) > 2*se }

func signed(v float64) string {
	if v >= 0 {
		return fmt.Sprintf("+%.2f", v)
	}
	return fmt.Sprintf("−%.2f", -v)
}

func mark(d, se float64) string {
	if isClear(d, se) || math.IsNaN(se) {
		return signed(d)
	}
	return signed(d) + "\\*"
}

func sign(v float64) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// Findings states, in a few sentences generated from the numbers, what
// the tables show: the plain gap, which configurations clearly change test
// accuracy and the gap in each framework, and whether the frameworks agree.
func Findings(trainSize, epochs int, g, t []Summary) string {
	var b strings.Builder
	plainOf := func(sums []Summary) *Summary {
		for i := range sums {
			if sums[i].Setup.Name == "plain" {
				return &sums[i]
			}
		}
		return nil
	}
	pg, pt := plainOf(g), plainOf(t)
	if pg == nil {
		return "Plain training was not run, so there is nothing to compare the configurations against.\n"
	}
	fmt.Fprintf(&b, "Trained plainly, the CNN fits its %s training images to %.2f%% (gotrain) while reaching %.2f%% on the test split, a gap of %.2f points",
		thousands(trainSize), pg.Train.Mean, pg.Test.Mean, pg.Gap.Mean)
	if pt != nil {
		fmt.Fprintf(&b, "; PyTorch's figures are %.2f%%, %.2f%% and %.2f points", pt.Train.Mean, pt.Test.Mean, pt.Gap.Mean)
	}
	b.WriteString(". ")
	cg, ct := Changes(g), Changes(t)
	if pg.Test.N < 2 {
		b.WriteString("With one seed per configuration there is no spread to judge the changes by; see the tables.\n")
		return b.String()
	}
	describe := func(fw string, ch map[string]Change, sums []Summary) {
		var upTest, downTest, downGap, upGap []string
		for _, s := range sums {
			c, ok := ch[s.Setup.Name]
			if !ok {
				continue
			}
			l := s.Setup.Label
			l = strings.TrimPrefix(l, "+ ")
			switch {
			case isClear(c.Test, c.TestSE) && c.Test > 0:
				upTest = append(upTest, fmt.Sprintf("%s (%s)", l, signed(c.Test)))
			case isClear(c.Test, c.TestSE) && c.Test < 0:
				downTest = append(downTest, fmt.Sprintf("%s (%s)", l, signed(c.Test)))
			}
			switch {
			case isClear(c.Gap, c.GapSE) && c.Gap < 0:
				downGap = append(downGap, fmt.Sprintf("%s (%s)", l, signed(c.Gap)))
			case isClear(c.Gap, c.GapSE) && c.Gap > 0:
				upGap = append(upGap, fmt.Sprintf("%s (%s)", l, signed(c.Gap)))
			}
		}
		fmt.Fprintf(&b, "In %s, test accuracy rises clearly with %s", fw, list(upTest))
		if len(downTest) > 0 {
			fmt.Fprintf(&b, " and falls clearly with %s", list(downTest))
		}
		fmt.Fprintf(&b, "; the gap narrows clearly with %s", list(downGap))
		if len(upGap) > 0 {
			fmt.Fprintf(&b, " and widens clearly with %s", list(upGap))
		}
		b.WriteString(". ")
	}
	if cg != nil {
		describe("gotrain", cg, g)
	}
	if ct != nil {
		describe("PyTorch", ct, t)
	}
	if cg != nil && ct != nil {
		var agreeTest, agreeGap, n int
		// Where the directions differ: clearly in both frameworks, or with
		// both changes within twice their standard error.
		var opposed, unclear []string
		for _, s := range g {
			a, ok1 := cg[s.Setup.Name]
			c, ok2 := ct[s.Setup.Name]
			if !ok1 || !ok2 {
				continue
			}
			n++
			l := strings.TrimPrefix(s.Setup.Label, "+ ")
			for _, d := range []struct {
				what   string
				x, y   float64
				xs, ys float64
				agree  *int
			}{{"test accuracy", a.Test, c.Test, a.TestSE, c.TestSE, &agreeTest}, {"the gap", a.Gap, c.Gap, a.GapSE, c.GapSE, &agreeGap}} {
				switch {
				case sign(d.x) == sign(d.y):
					*d.agree++
				case isClear(d.x, d.xs) && isClear(d.y, d.ys):
					opposed = append(opposed, d.what+" with "+l)
				case !isClear(d.x, d.xs) && !isClear(d.y, d.ys):
					unclear = append(unclear, d.what+" with "+l)
				}
			}
		}
		fmt.Fprintf(&b, "Against plain training, the two frameworks move test accuracy in the same direction in %d of %d configurations and the gap in %d of %d", agreeTest, n, agreeGap, n)
		if len(unclear) > 0 {
			fmt.Fprintf(&b, "; where they differ (%s), both changes are within twice their standard error", strings.Join(unclear, "; "))
		}
		if len(opposed) > 0 {
			fmt.Fprintf(&b, "; they clearly disagree on %s", strings.Join(opposed, "; "))
		}
		b.WriteString(". ")
		var maxDiff, maxStd float64
		var at string
		for _, s := range g {
			for _, u := range t {
				if u.Setup.Name != s.Setup.Name {
					continue
				}
				if d := math.Abs(s.Test.Mean - u.Test.Mean); d >= maxDiff {
					maxDiff, at = d, s.Setup.Label
				}
				maxStd = max(maxStd, s.Test.Std, u.Test.Std)
			}
		}
		fmt.Fprintf(&b, "The largest difference between the frameworks' mean test accuracies is %.2f points (%s); the largest seed-to-seed standard deviation of test accuracy in either table is %.2f points.",
			maxDiff, at, maxStd)
	}
	b.WriteString(lateBest(epochs, g, t))
	fmt.Fprintf(&b, "\n\n“Clearly” means by more than twice the standard error of the difference of the two means (from the seeds' standard deviations); with %d seeds this is a rough screen, not a significance test.\n", pg.Test.N)
	return b.String()
}

// lateBest notes the configurations trained for a fixed number of epochs
// whose validation loss was still at its lowest near the end (on average
// in the last 15% of the epochs), in every framework that ran them.
func lateBest(epochs int, g, t []Summary) string {
	var out []string
	for _, s := range g {
		if s.Setup.Early || s.BestVal.Mean < 0.85*float64(epochs) {
			continue
		}
		d := fmt.Sprintf("%s (epoch %s of %d in gotrain", strings.TrimPrefix(s.Setup.Label, "+ "), num(s.BestVal.Mean), epochs)
		late := true
		for _, u := range t {
			if u.Setup.Name == s.Setup.Name {
				late = u.BestVal.Mean >= 0.85*float64(epochs)
				d += fmt.Sprintf(", %s in PyTorch", num(u.BestVal.Mean))
			}
		}
		if late {
			out = append(out, d+")")
		}
	}
	if len(out) == 0 {
		return ""
	}
	return fmt.Sprintf(" The validation loss was lowest near the last epoch, on average, with %s.", list(out))
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func list(items []string) string {
	switch len(items) {
	case 0:
		return "none of the configurations"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// ChangeTable renders the changes from plain training side by side; a
// change within twice its standard error is starred.
func ChangeTable(g, t []Summary) string {
	cg, ct := Changes(g), Changes(t)
	var b strings.Builder
	if ct != nil {
		b.WriteString("| configuration | test accuracy, gotrain | test accuracy, PyTorch | gap, gotrain | gap, PyTorch |\n| --- | ---: | ---: | ---: | ---: |\n")
	} else {
		b.WriteString("| configuration | test accuracy | gap |\n| --- | ---: | ---: |\n")
	}
	for _, s := range g {
		a, ok := cg[s.Setup.Name]
		if !ok {
			continue
		}
		if ct == nil {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Setup.Label, mark(a.Test, a.TestSE), mark(a.Gap, a.GapSE))
			continue
		}
		c, ok := ct[s.Setup.Name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", s.Setup.Label, mark(a.Test, a.TestSE), mark(c.Test, c.TestSE), mark(a.Gap, a.GapSE), mark(c.Gap, c.GapSE))
	}
	return b.String()
}

// checkSame verifies that the PyTorch results were made with gotrain's
// settings.
func checkSame(g, t *Results) error {
	a, b := g.Settings, t.Settings
	type field struct {
		name string
		x, y any
	}
	for _, f := range []field{{"dataset", a.Dataset, b.Dataset}, {"train_size", a.TrainSize, b.TrainSize}, {"val_size", a.ValSize, b.ValSize},
		{"test_size", a.TestSize, b.TestSize}, {"epochs", a.Epochs, b.Epochs}, {"batch_size", a.BatchSize, b.BatchSize},
		{"lr", a.LR, b.LR}, {"weight_decay", a.WeightDecay, b.WeightDecay}, {"augment", a.Augment, b.Augment},
		{"patience", a.Patience, b.Patience}, {"seeds", fmt.Sprint(a.Seeds), fmt.Sprint(b.Seeds)}} {
		if fmt.Sprint(f.x) != fmt.Sprint(f.y) {
			return fmt.Errorf("torch.json was made with %s %v, gotrain.json with %v: rerun both sides", f.name, f.y, f.x)
		}
	}
	return nil
}

// Report renders docs/EXPERIMENT.md from gotrain's results and (when not
// nil) PyTorch's.
func Report(g, t *Results) string {
	st := g.Settings
	var b strings.Builder
	b.WriteString("# The small-data experiment\n\n")
	fmt.Fprintf(&b, "Written by `make experiment` (`scripts/experiment.sh`) on %s", g.Date)
	if g.Machine != "" {
		fmt.Fprintf(&b, " (%s)", g.Machine)
	}
	b.WriteString(". Does augmentation, weight decay or early stopping keep the seed CNN from overfitting a small training set, and does PyTorch, trained on the same data in the same way, show the same effects?\n\n")
	b.WriteString("## Setup\n\n")
	ds := map[string]string{"fashion-mnist": "Fashion-MNIST (Debian's `dataset-fashion-mnist`)", "mnist": "MNIST (Fashion-MNIST was not installed)"}[st.Dataset]
	if ds == "" {
		ds = st.Dataset
	}
	fmt.Fprintf(&b, "- **Data**: %s. %s images drawn from the training split, stratified by class (seed %d), then split %s for training and %s for validation, stratified (seed %d). Every configuration trains on the same %s images; the %s validation images only drive early stopping (the other configurations merely log their loss). Test accuracy is on the whole %s-image test split. Pixels are scaled to [0, 1].\n",
		ds, thousands(st.Subset), st.SubsetSeed, thousands(st.TrainSize), thousands(st.ValSize), st.SplitSeed, thousands(st.TrainSize), thousands(st.ValSize), thousands(st.TestSize))
	b.WriteString("- **Model**: the seed CNN (Conv 1→32 3×3, ReLU, MaxPool 2, Conv 32→64 3×3, ReLU, MaxPool 2, Flatten, Linear 1600→10), PyTorch's default initialisation drawn by gotrain from the seed; the PyTorch script loads those same initial weights.\n")
	fmt.Fprintf(&b, "- **Training**: Adam, learning rate %g, batch %d, %d epochs, cross-entropy, single device, %s.\n", st.LR, st.BatchSize, st.Epochs, plural(st.Threads, "thread", "threads"))
	fmt.Fprintf(&b, "- **Augmentation** (`%s`): per sample, a rotation in ±%g°, a shift in ±%g%% of the image size on each axis (±%.3g pixels) and a zoom factor in [%g, %g] per axis, composed into one affine map with bilinear resampling and zero fill. gotrain uses its augment stage; the PyTorch script draws the same ranges with its own generator and applies the same map with `affine_grid`/`grid_sample` (for equal parameters the two give the same image within 1e-5: `TestTorchWarpMatchesAugment` in `cmd/experiment`). The draws differ; their distribution is the same.\n",
		st.Augment, st.Rotation, 100*st.Shift, st.Shift*28, 1-st.Zoom, 1+st.Zoom)
	fmt.Fprintf(&b, "- **Weight decay**: L2, %g × weight added to the gradient of the convolution and dense weights, not the biases (`torch.optim.Adam`'s `weight_decay` on a parameter group of weights).\n", st.WeightDecay)
	fmt.Fprintf(&b, "- **Early stopping**: monitors %s, patience %d, restores the best epoch's weights; at most %d epochs.\n", st.Monitor, st.Patience, st.Epochs)
	fmt.Fprintf(&b, "- **Seeds** %s: each drives the initial weights, the data order and the augmentation.\n", strings.ReplaceAll(strings.Trim(fmt.Sprint(st.Seeds), "[]"), " ", ", "))
	b.WriteString("- **Measures**: test accuracy; train accuracy on the training images in inference mode after training (the restored weights with early stopping); the gap is train minus test accuracy in percentage points. Mean ± sample standard deviation over the seeds.\n\n")

	gs := Summarize(g)
	fmt.Fprintf(&b, "## gotrain (%s)\n\n%s\n", g.Version, Table(gs))
	var ts []Summary
	if t != nil {
		ts = Summarize(t)
		fmt.Fprintf(&b, "## PyTorch (%s)\n\n%s\n", t.Version, Table(ts))
	} else {
		b.WriteString("## PyTorch\n\nNo PyTorch results: python3-torch is not installed (`sudo apt-get install python3-torch`), or `scripts/experiment_torch.py` was not run.\n\n")
	}
	b.WriteString("## Change from plain training (points)\n\n")
	b.WriteString(ChangeTable(gs, ts))
	b.WriteString("\n\\* within twice the standard error of the difference.\n\n")
	b.WriteString("## What the numbers show\n\n")
	b.WriteString(Findings(st.TrainSize, st.Epochs, gs, ts))
	b.WriteString("\n## Every run\n\n| framework | configuration | seed | test accuracy (%) | train accuracy (%) | epochs run | best val_loss epoch | seconds |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range []*Results{g, t} {
		if r == nil {
			continue
		}
		for _, run := range r.Runs {
			s, _ := setupByName(run.Config)
			fmt.Fprintf(&b, "| %s | %s | %d | %.2f | %.2f | %d | %d | %.0f |\n", r.Framework, s.Label, run.Seed, 100*run.TestAcc, 100*run.TrainAcc, run.Epochs, run.BestEpoch, run.Seconds)
		}
	}
	return b.String()
}

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("experiment report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "out/experiment", "folder holding gotrain.json and (optionally) torch.json")
	out := fs.String("o", "docs/EXPERIMENT.md", "markdown file to write ('-': standard output only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("report: unexpected argument %q", fs.Arg(0))
	}
	g, err := readResults(filepath.Join(*dir, "gotrain.json"))
	if err != nil {
		return fmt.Errorf("gotrain results: %w (run 'experiment run' first)", err)
	}
	var t *Results
	tp := filepath.Join(*dir, "torch.json")
	if _, err := os.Stat(tp); err == nil {
		if t, err = readResults(tp); err != nil {
			return err
		}
		if err := checkSame(g, t); err != nil {
			return err
		}
	}
	md := Report(g, t)
	if *out != "-" {
		if err := atomicfile.Write(*out, func(w io.Writer) error {
			_, err := io.Copy(w, bytes.NewReader([]byte(md)))
			return err
		}); err != nil {
			return fmt.Errorf("-o %s: %w", *out, err)
		}
	}
	fmt.Fprint(stdout, md)
	return nil
}
