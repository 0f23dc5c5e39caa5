package cpu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand"
	"os/exec"
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

type sceCase struct {
	name      string
	reduction string
	smoothing float32
	weights   bool
	ignore    *int64
	soft      bool
	shape     []int // scores [N, C, d...]
}

func (c sceCase) attrs() []*graph.Attribute {
	a := []*graph.Attribute{graph.AString("reduction", c.reduction), graph.AFloat("label_smoothing", c.smoothing)}
	if c.ignore != nil {
		a = append(a, graph.AInt("ignore_index", *c.ignore))
	}
	return a
}

func sceCases() []sceCase {
	ii := int64(1)
	return []sceCase{
		{"mean", "mean", 0, false, nil, false, []int{4, 5}},
		{"sum smoothed", "sum", 0.1, false, nil, false, []int{4, 5}},
		{"none smoothed weighted", "none", 0.2, true, nil, false, []int{3, 4, 2}},
		{"mean smoothed weighted ignore", "mean", 0.3, true, &ii, false, []int{3, 4, 3}},
		{"mean ignore", "mean", 0, false, &ii, false, []int{5, 3}},
		{"soft mean", "mean", 0, false, nil, true, []int{4, 5}},
		{"soft none smoothed weighted", "none", 0.25, true, nil, true, []int{2, 3, 2}},
		{"soft sum smoothed", "sum", 0.1, false, nil, true, []int{3, 4}},
	}
}

// sceInputs makes scores, labels (indices, some equal to the ignore index,
// or soft probabilities) and optional weights.
func sceInputs(r *rand.Rand, c sceCase) (scores, labels, weights *tensor.Tensor) {
	scores = ewRandF64(r, c.shape...)
	n, cl := c.shape[0], c.shape[1]
	d := tensor.NumElements(c.shape[2:])
	if c.soft {
		labels = tensor.New(tensor.Float64, c.shape...)
		q := labels.Float64s()
		for i := 0; i < n*d; i++ {
			base := (i/d)*cl*d + i%d
			s := 0.0
			for k := 0; k < cl; k++ {
				v := r.Float64()
				q[base+k*d] = v
				s += v
			}
			for k := 0; k < cl; k++ {
				q[base+k*d] /= s
			}
		}
	} else {
		ls := append([]int{n}, c.shape[2:]...)
		labels = tensor.New(tensor.Int64, ls...)
		for i := range labels.Int64s() {
			labels.Int64s()[i] = int64(r.Intn(cl))
		}
		labels.Int64s()[0] = 0 // never all ignored
	}
	if c.weights {
		weights = tensor.New(tensor.Float64, cl)
		for i := range weights.Float64s() {
			weights.Float64s()[i] = 0.5 + r.Float64()
		}
	}
	return
}

func TestSoftmaxCrossEntropyGradMatchesFiniteDifferences(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	for _, c := range sceCases() {
		t.Run(c.name, func(t *testing.T) {
			scores, labels, weights := sceInputs(r, c)
			fwd := ewNode(graph.DomainGotrain, "SoftmaxCrossEntropy", 3, 2, c.attrs()...)
			outs := ewMustRun(t, fwd, 1, scores, labels, weights)
			dLoss := ewRandF64(r, outs[0].Shape()...)
			L := func() float64 { return ewDot(dLoss, ewMustRun(t, fwd, 1, scores, labels, weights)[0]) }
			want := ewNumGrad(scores, L)
			grad := ewNode(graph.DomainGotrain, "SoftmaxCrossEntropyGrad", 4, 1, c.attrs()...)
			got := ewMustRun(t, grad, 1, dLoss, outs[1], labels, weights)[0]
			ewCheckClose(t, "dScores", got, want, fdRtol, fdAtol)
		})
	}
}

func TestONNXSoftmaxCrossEntropyMatchesGotrain(t *testing.T) {
	// With no smoothing the gotrain op is ONNX's, log_prob included.
	r := rand.New(rand.NewSource(7))
	ii := int64(2)
	c := sceCase{"", "mean", 0, true, &ii, false, []int{6, 4, 3}}
	scores, labels, weights := sceInputs(r, c)
	a := ewMustRun(t, ewNode(graph.DomainGotrain, "SoftmaxCrossEntropy", 3, 2, c.attrs()[0], c.attrs()[2]), 1, scores, labels, weights)
	b := ewMustRun(t, ewNode("", "SoftmaxCrossEntropyLoss", 3, 2, c.attrs()[0], c.attrs()[2]), 13, scores, labels, weights)
	for i := range a {
		ewCheckClose(t, fmt.Sprint("output ", i), a[i], b[i].Float64s(), 0, 0)
	}
}

func TestLossRejectsBadLabels(t *testing.T) {
	scores := tensor.New(tensor.Float32, 2, 3)
	labels := tensor.MustFromSlice([]int64{0, 3}, 2)
	if _, err := ewRun(t, ewNode("", "SoftmaxCrossEntropyLoss", 2, 1), 13, scores, labels); err == nil {
		t.Error("label 3 of 3 classes accepted")
	}
	if _, err := ewRun(t, ewNode("", "NegativeLogLikelihoodLoss", 2, 1), 13, scores, tensor.MustFromSlice([]int64{0, 1, 2}, 3)); err == nil {
		t.Error("labels of shape [3] for scores [2 3] accepted")
	}
	if _, err := ewRun(t, ewNode("", "NegativeLogLikelihoodLoss", 2, 1, graph.AString("reduction", "avg")), 13, scores, labels); err == nil {
		t.Error("reduction \"avg\" accepted")
	}
}

func TestBCEWithLogits(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	for _, red := range []string{"mean", "sum", "none"} {
		x, tg := ewRandF64(r, 3, 4), tensor.New(tensor.Float64, 3, 4)
		x.Float64s()[0] = 40 // the stable form must not overflow
		x.Float64s()[1] = -40
		for i := range tg.Float64s() {
			tg.Float64s()[i] = r.Float64()
		}
		fwd := ewNode(graph.DomainGotrain, "BCEWithLogits", 2, 1, graph.AString("reduction", red))
		loss := ewMustRun(t, fwd, 1, x, tg)[0]
		dLoss := ewRandF64(r, loss.Shape()...)
		L := func() float64 { return ewDot(dLoss, ewMustRun(t, fwd, 1, x, tg)[0]) }
		want := ewNumGrad(x, L)
		got := ewMustRun(t, ewNode(graph.DomainGotrain, "BCEWithLogitsGrad", 3, 1, graph.AString("reduction", red)), 1, dLoss, x, tg)[0]
		ewCheckClose(t, "BCE "+red, got, want, fdRtol, fdAtol)
	}
	// One element by hand: x=0, t=1: log 2.
	got := ewMustRun(t, ewNode(graph.DomainGotrain, "BCEWithLogits", 2, 1), 1,
		tensor.MustFromSlice([]float32{0}, 1), tensor.MustFromSlice([]float32{1}, 1))[0]
	ewCheckClose(t, "BCE(0,1)", got, []float64{0.6931471805599453}, 1e-7, 0)
}

// TestCrossEntropyMatchesPyTorch compares gotrain's SoftmaxCrossEntropy
// with torch.nn.functional.cross_entropy (skipped where Debian's
// python3-torch is absent). Both compute in float64, so they agree to
// rounding: 1e-12 relative.
func TestCrossEntropyMatchesPyTorch(t *testing.T) {
	py := testenv.Python(t, "torch")
	r := rand.New(rand.NewSource(9))
	type job struct {
		Scores    []float64 `json:"scores"`
		Shape     []int     `json:"shape"`
		Labels    []float64 `json:"labels"`
		Soft      bool      `json:"soft"`
		Weights   []float64 `json:"weights"`
		Reduction string    `json:"reduction"`
		Smoothing float64   `json:"smoothing"`
		Ignore    int64     `json:"ignore"`
	}
	var jobs []job
	var gots []*tensor.Tensor
	for _, c := range sceCases() {
		scores, labels, weights := sceInputs(r, c)
		j := job{Scores: scores.Float64s(), Shape: c.shape, Soft: c.soft, Reduction: c.reduction, Smoothing: float64(c.smoothing), Ignore: -100}
		for i := 0; i < labels.Len(); i++ {
			j.Labels = append(j.Labels, labels.AsFloat64(i))
		}
		if weights != nil {
			j.Weights = weights.Float64s()
		}
		if c.ignore != nil {
			j.Ignore = *c.ignore
		}
		jobs = append(jobs, j)
		gots = append(gots, ewMustRun(t, ewNode(graph.DomainGotrain, "SoftmaxCrossEntropy", 3, 2, c.attrs()...), 1, scores, labels, weights)[0])
	}
	script := `
import json, sys, torch
import torch.nn.functional as F
out = []
for j in json.load(sys.stdin):
    x = torch.tensor(j["scores"], dtype=torch.float64).reshape(j["shape"])
    if j["soft"]:
        y = torch.tensor(j["labels"], dtype=torch.float64).reshape(j["shape"])
    else:
        y = torch.tensor(j["labels"], dtype=torch.float64).long().reshape([j["shape"][0]] + j["shape"][2:])
    w = torch.tensor(j["weights"], dtype=torch.float64) if j["weights"] else None
    l = F.cross_entropy(x, y, weight=w, reduction=j["reduction"], label_smoothing=j["smoothing"], ignore_index=j["ignore"])
    out.append(l.reshape(-1).tolist())
json.dump(out, sys.stdout)
`
	in, _ := json.Marshal(jobs)
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	res, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var want [][]float64
	if err := json.Unmarshal(res, &want); err != nil {
		t.Fatal(err)
	}
	for i, c := range sceCases() {
		// PyTorch got the float32 smoothing attribute widened exactly, as the kernel uses it.
		ewCheckClose(t, c.name, gots[i], want[i], 1e-12, 1e-12)
	}
}
