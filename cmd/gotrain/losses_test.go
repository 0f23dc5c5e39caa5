package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// classData writes n labelled 1x8x8 images of `classes` classes as X.npy
// and Y.npy and returns "X.npy,Y.npy": class k lights a 2x2 block at its
// own place over uniform noise, so a small model learns it in a few
// epochs. Values are 0..255 as uint8 (8-bit pixels) or, with scaled,
// float32 in [0, 1]. labels, when not nil, replaces the labels.
func classData(t *testing.T, dir, name string, n, classes int, scaled bool, labels []int64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(classes)))
	px := make([]float64, n*64)
	y := make([]int64, n)
	for i := range y {
		y[i] = int64(i % classes)
		for j := range 64 {
			px[i*64+j] = 60 * rng.Float64()
		}
		r, c := 2*(int(y[i])/4), 2*(int(y[i])%4)
		for _, d := range []int{0, 1, 8, 9} {
			px[i*64+r*8+c+d] = 200 + 55*rng.Float64()
		}
	}
	if labels != nil {
		y = labels
	}
	xp, yp := filepath.Join(dir, name+"_x.npy"), filepath.Join(dir, name+"_y.npy")
	var x *tensor.Tensor
	if scaled {
		f := make([]float32, len(px))
		for i, v := range px {
			f[i] = float32(v / 255)
		}
		x = tensor.MustFromSlice(f, n, 1, 8, 8)
	} else {
		b := make([]uint8, len(px))
		for i, v := range px {
			b[i] = uint8(v)
		}
		x = tensor.MustFromSlice(b, n, 1, 8, 8)
	}
	if err := tensor.WriteNPYFile(xp, x); err != nil {
		t.Fatal(err)
	}
	if err := tensor.WriteNPYFile(yp, tensor.MustFromSlice(y, len(y))); err != nil {
		t.Fatal(err)
	}
	return xp + "," + yp
}

// autoencoder saves a model that computes its own loss: the mean squared
// error of reconstructing its flattened input through a 16-unit bottleneck
// ("--loss graph" trains it; the labels are not used).
func autoencoder(t *testing.T, path string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	w := func(shape ...int) *tensor.Tensor {
		v := make([]float32, shape[0]*shape[1])
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.2)
		}
		return tensor.MustFromSlice(v, shape...)
	}
	b := graph.NewBuilder("autoencoder", 17)
	x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(64))
	h := b.Op("Relu", b.Op("Gemm", x, b.Param("enc.w", w(16, 64)), b.Param("enc.b", tensor.New(tensor.Float32, 16))).With(graph.AInt("transB", 1)).Out()).Out()
	r := b.Op("Gemm", h, b.Param("dec.w", w(64, 16)), b.Param("dec.b", tensor.New(tensor.Float32, 64))).With(graph.AInt("transB", 1)).Out()
	d := b.Op("Sub", r, x).Out()
	loss := b.Op("ReduceMean", b.Op("Mul", d, d).Out()).With(graph.AInt("keepdims", 0)).Out()
	b.Output(loss)
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.Save(m, path); err != nil {
		t.Fatal(err)
	}
}

// TestEveryLossTrains trains for three epochs with each loss `gotrain train
// --help` lists, on a small data set, and requires the training loss of
// the last epoch to be below the first's (each loss falls by far more on
// this data: the least, l1 on one-hot targets, by about a tenth) and the
// validation loss to be finite. The class losses train the MLP on class
// labels (one-hot encoded for cross_entropy_onehot, bce, mse and l1); the
// graph loss trains a model that computes its own loss.
func TestEveryLossTrains(t *testing.T) {
	dir := t.TempDir()
	ds := classData(t, dir, "train", 120, 4, true, nil)
	mlp := exportModel(t, dir, "mlp", "--input", "1x8x8", "--classes", "4")
	ae := filepath.Join(dir, "autoencoder.onnx")
	autoencoder(t, ae)
	help := gotrain(t, "train", "--help")
	for _, loss := range graph.Losses {
		if !strings.Contains(help.stdout, string(loss)) {
			t.Errorf("train --help does not list loss %s", loss)
		}
		t.Run(string(loss), func(t *testing.T) {
			model := mlp
			if loss == graph.GraphLoss {
				model = ae
			}
			out := filepath.Join(dir, string(loss))
			r := gotrain(t, "train", "--model", model, "--data", ds, "--loss", string(loss), "--epochs", "3", "--batch-size", "16",
				"--lr", "0.01", "--val-split", "0.25", "--threads", "1", "--out", out)
			r.expect(t, 0)
			h, _ := readHistory(t, out)
			if len(h) != 3 {
				t.Fatalf("history: %v", h)
			}
			first, last := h[0]["loss"], h[2]["loss"]
			if !(last < first) || !(h[2]["val_loss"] >= 0) {
				t.Errorf("loss %g after epoch 1, %g after epoch 3, val_loss %g: want it to fall, and a finite val_loss", first, last, h[2]["val_loss"])
			}
			t.Logf("loss %.4f -> %.4f, val_loss %.4f, accuracy %v", first, last, h[2]["val_loss"], h[2]["accuracy"])
		})
	}
}

// TestClassesSubset: labels that use only some of the model's classes
// train with --classes; a label the classes do not include is reported as
// that label, naming the label file and the sample, with or without
// --classes.
func TestClassesSubset(t *testing.T) {
	dir := t.TempDir()
	mlp := exportModel(t, dir, "mlp", "--input", "1x8x8", "--classes", "10")
	subset := classData(t, dir, "subset", 40, 5, true, nil) // labels 0..4
	args := func(data string, extra ...string) []string {
		return append([]string{"train", "--model", mlp, "--data", data, "--epochs", "1", "--threads", "1", "--out", filepath.Join(dir, "out")}, extra...)
	}
	gotrain(t, args(subset, "--classes", "10")...).expect(t, 0)
	gotrain(t, args(subset)...).expect(t, 1, "5 classes", "--classes 10")

	labels := make([]int64, 40)
	for i := range labels {
		labels[i] = int64(i % 10)
	}
	labels[13] = 10
	bad := classData(t, dir, "bad", 40, 10, true, labels)
	yfile := strings.Split(bad, ",")[1]
	r := gotrain(t, args(bad, "--classes", "10")...)
	r.expect(t, 2, yfile, "label 10 of sample 13 is out of range for 10 classes")
	r = gotrain(t, args(bad)...)
	r.expect(t, 1)
	if want := "gotrain train: " + yfile + ": label 10 of sample 13 is out of range for the 10 classes of model "; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("stderr does not begin with %q:\n%s", want, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "best_model.onnx")); err != nil {
		t.Errorf("the run with labels 0..4 of 10 classes wrote no model: %v", err)
	}
}

// TestFeatureData: samples that are feature vectors ([N, F] arrays) are
// not images: augmentation, which warps images, is refused rather than
// run over a one-pixel-high strip, and the overfitting report does not
// suggest it.
func TestFeatureData(t *testing.T) {
	dir := t.TempDir()
	ds := classData(t, dir, "img", 32, 4, true, nil)
	img, err := tensor.ReadNPYFile(strings.Split(ds, ",")[0])
	if err != nil {
		t.Fatal(err)
	}
	xp := filepath.Join(dir, "features.npy")
	writeNPY(t, xp, img.Float32s(), 32, 64)
	feat := xp + "," + strings.Split(ds, ",")[1]
	out := filepath.Join(dir, "run")
	gotrain(t, "train", "--model", "mlp", "--data", feat, "--epochs", "1", "--augment", "rotation=10", "--out", out).
		expect(t, 2, "--augment", "features.npy", "64 features", "not images")
	// "none" is no augmentation, spelled out: accepted.
	r := gotrain(t, "train", "--model", "mlp", "--data", feat, "--epochs", "1", "--threads", "1", "--augment", "none", "--out", out)
	r.expect(t, 0)
	if strings.Contains(r.stdout, "--augment") || !strings.Contains(r.stdout, "defences off: weight decay") {
		t.Errorf("the report on feature data:\n%s", r.stdout)
	}
	// Images ([N, 1, 8, 8]) still get the suggestion.
	r = gotrain(t, "train", "--model", "mlp", "--data", ds, "--epochs", "1", "--threads", "1", "--out", filepath.Join(dir, "images"))
	r.expect(t, 0)
	if !strings.Contains(r.stdout, "defences off: augmentation (--augment ") {
		t.Errorf("the report on images:\n%s", r.stdout)
	}
}
