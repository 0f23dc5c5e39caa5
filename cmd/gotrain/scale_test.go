package main

import (
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestInputScaleAgrees trains on 8-bit pixels with --scale auto and
// validates on the same samples; then eval on those samples must report
// the validation accuracy of the epoch best_model.onnx holds, and predict,
// given each sample as its own .npy file, must predict the classes that
// accuracy counts. All three apply the one scale the run chose (1/255),
// which training prints and stores in the model's metadata and the
// training state. Float data in 0..255 is taken as it is (scale 1), and
// the model says so.
func TestInputScaleAgrees(t *testing.T) {
	dir := t.TempDir()
	const n = 24
	ds := classData(t, dir, "u8", n, 4, false, nil)
	mlp := exportModel(t, dir, "mlp", "--input", "1x8x8", "--classes", "4")
	out := filepath.Join(dir, "run")
	r := gotrain(t, "train", "--model", mlp, "--data", ds, "--val-data", ds, "--epochs", "2", "--batch-size", "8",
		"--lr", "0.003", "--threads", "1", "--out", out)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "input scale: 1/255 (auto: 8-bit pixel values (0..255))") {
		t.Errorf("training did not print its scale:\n%s", r.stdout)
	}
	best := filepath.Join(out, "best_model.onnx")
	m, err := graph.Load(best)
	if err != nil {
		t.Fatal(err)
	}
	if s := m.Metadata["gotrain.input_scale"]; s != "1/255" {
		t.Errorf("gotrain.input_scale = %q, want 1/255", s)
	}
	h, _ := readHistory(t, out)
	bestEpoch := 0
	for i := range h {
		if h[i]["val_loss"] < h[bestEpoch]["val_loss"] {
			bestEpoch = i
		}
	}
	valAcc := h[bestEpoch]["val_accuracy"]

	r = gotrain(t, "eval", "--model", best, "--data", ds)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "input scale: 1/255 (the model's gotrain.input_scale)") {
		t.Errorf("eval did not apply the model's scale:\n%s", r.stdout)
	}
	mm := regexp.MustCompile(`\((?:[^,]+), (\d+) samples\): accuracy ([0-9.]+)`).FindStringSubmatch(r.stdout)
	if mm == nil || mm[1] != strconv.Itoa(n) {
		t.Fatalf("eval output: %s", r.stdout)
	}
	evalAcc, _ := strconv.ParseFloat(mm[2], 64)
	// eval prints 4 decimals.
	if math.Abs(evalAcc-valAcc) > 0.5e-4 {
		t.Errorf("eval accuracy %v, validation accuracy of epoch %d %v", evalAcc, bestEpoch+1, valAcc)
	}

	// predict each sample, stored as its own uint8 .npy file.
	x, err := tensor.ReadNPYFile(strings.Split(ds, ",")[0])
	if err != nil {
		t.Fatal(err)
	}
	y, err := tensor.ReadNPYFile(strings.Split(ds, ",")[1])
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"predict", "--model", best, "--top", "1"}
	px := x.Data().([]uint8)
	for i := range n {
		p := filepath.Join(dir, "sample"+strconv.Itoa(i)+".npy")
		writeNPY(t, p, append([]uint8{}, px[i*64:(i+1)*64]...), 1, 1, 8, 8)
		args = append(args, p)
	}
	r = gotrain(t, args...)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "input scale: 1/255 (the model's gotrain.input_scale)") || strings.Contains(r.stdout, "note:") {
		t.Errorf("predict did not apply the model's scale quietly:\n%s", r.stdout)
	}
	top := regexp.MustCompile(`(?m)^.*sample(\d+)\.npy: (\d+) \(`).FindAllStringSubmatch(r.stdout, -1)
	if len(top) != n {
		t.Fatalf("predict printed %d predictions, want %d:\n%s", len(top), n, r.stdout)
	}
	correct := 0
	for _, e := range top {
		i, _ := strconv.Atoi(e[1])
		if k, _ := strconv.ParseInt(e[2], 10, 64); k == y.Int64s()[i] {
			correct++
		}
	}
	if got := float64(correct) / n; math.Abs(got-evalAcc) > 0.5e-4 {
		t.Errorf("predict is right on %d of %d samples (%v); eval says %v", correct, n, got, evalAcc)
	}

	// Without the scale, the same model sees other inputs: eval with
	// --scale none must change the scores (the accuracy may survive).
	gotrain(t, "eval", "--model", best, "--data", ds, "--scale", "none").expect(t, 0)
	outs := func(extra ...string) []float32 {
		od := filepath.Join(dir, "runout")
		in := filepath.Join(dir, "batch.npy")
		f := make([]float32, 64)
		for i, v := range px[:64] {
			f[i] = float32(v)
		}
		writeNPY(t, in, f, 1, 1, 8, 8)
		gotrain(t, append([]string{"run", "--model", best, "--input", in, "--output-dir", od}, extra...)...).expect(t, 0)
		return readNPY(t, filepath.Join(od, m.Graph.Outputs[0].Name+".npy")).Float32s()
	}
	scaled, raw := outs(), outs("--scale", "none")
	same := true
	for i := range scaled {
		same = same && scaled[i] == raw[i]
	}
	if same {
		t.Errorf("run gives the same scores with the model's scale and with none: %v", scaled)
	}

	// Resuming with another scale is refused, naming both.
	gotrain(t, "train", "--model", mlp, "--data", ds, "--val-data", ds, "--epochs", "3", "--batch-size", "8", "--lr", "0.003",
		"--threads", "1", "--out", out, "--scale", "none", "--resume", filepath.Join(out, "state.ckpt")).expect(t, 2, "input scale 1/255", "--scale none", "resume with --scale 1/255")

	// Floats in 0..255 are taken as they are, and the model says so.
	fds := classData(t, dir, "f", n, 4, false, nil)
	xf := make([]float32, len(px))
	for i, v := range px {
		xf[i] = float32(v)
	}
	writeNPY(t, strings.Split(fds, ",")[0], xf, n, 1, 8, 8)
	out2 := filepath.Join(dir, "run2")
	r = gotrain(t, "train", "--model", mlp, "--data", fds, "--epochs", "1", "--threads", "1", "--out", out2)
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "input scale: 1 (auto: float values, taken as they are)") {
		t.Errorf("float data:\n%s", r.stdout)
	}
	if m2, err := graph.Load(filepath.Join(out2, "best_model.onnx")); err != nil || m2.Metadata["gotrain.input_scale"] != "1" {
		t.Errorf("float data: gotrain.input_scale %q, %v", m2.Metadata["gotrain.input_scale"], err)
	}
}

func TestScaleFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"train", "--model", "mlp", "--scale", "x255"}, 2, []string{"--scale", `"x255"`, "1/255"}},
		{[]string{"train", "--model", "mlp", "--scale", "0"}, 2, []string{"--scale", `"0"`}},
		{[]string{"eval", "--model", filepath.Join(dir, "m.onnx"), "--scale", "-2"}, 2, []string{"--scale", `"-2"`}},
		{[]string{"predict", "--model", filepath.Join(dir, "m.onnx"), "--scale", "1/0", "a.png"}, 2, []string{"--scale", `"1/0"`}},
		{[]string{"run", "--model", filepath.Join(dir, "m.onnx"), "--scale", "auto1"}, 2, []string{"--scale", `"auto1"`}},
	} {
		gotrain(t, c.args...).expect(t, c.code, c.want...)
	}
	// Integers beyond 8 bits have no automatic scale.
	x := make([]int32, 8*64)
	for i := range x {
		x[i] = int32(i * 7)
	}
	xp, yp := filepath.Join(dir, "x.npy"), filepath.Join(dir, "y.npy")
	writeNPY(t, xp, x, 8, 1, 8, 8)
	writeNPY(t, yp, []int64{0, 1, 0, 1, 0, 1, 0, 1}, 8)
	gotrain(t, "train", "--model", "mlp", "--data", xp+","+yp, "--epochs", "1", "--out", filepath.Join(dir, "o")).
		expect(t, 2, "--scale", "integer values outside 0..255", "give one")
	gotrain(t, "train", "--model", "mlp", "--data", xp+","+yp, "--epochs", "1", "--val-split", "0", "--scale", "1/4096", "--out", filepath.Join(dir, "o")).
		expect(t, 0)
}
