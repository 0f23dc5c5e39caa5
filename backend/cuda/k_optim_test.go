package cuda_test

import (
	"encoding/binary"
	"testing"

	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func TestDropout(t *testing.T) {
	r := rng(4)
	x := randF32(r, 6, 3, 5)
	cases := []*kcase{}
	for _, ratio := range []float32{0, 0.3, 0.5, 1} {
		cases = append(cases, &kcase{name: "DropoutTrain", op: "DropoutTrain", domain: graph.DomainGotrain,
			in: []*tensor.Tensor{x, scalarF(ratio), scalarI(12345), scalarI(17)}, outs: []string{"y", "mask"}})
	}
	cases = append(cases,
		&kcase{name: "DropoutTrainNoMask", op: "DropoutTrain", domain: graph.DomainGotrain, in: []*tensor.Tensor{x, scalarF(0.25), scalarI(-3), scalarI(0)}},
		&kcase{name: "DropoutBadRatio", op: "DropoutTrain", domain: graph.DomainGotrain, in: []*tensor.Tensor{x, scalarF(1.5), scalarI(1), scalarI(0)}, wantErr: "ratio"},
		&kcase{name: "Dropout", op: "Dropout", in: []*tensor.Tensor{x, scalarF(0.4)}, outs: []string{"y", "mask"}},
	)
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
		// The hash itself, against graph.DropoutBits, over seeds and
		// samples that exercise the whole 64-bit range.
		const n = 300
		out := d.Alloc(8 * n)
		defer d.Free(out)
		raw := make([]byte, 8*n)
		for _, seed := range []int64{0, 1, -1, 1 << 62, -987654321} {
			for _, sample := range []int64{0, 5, 1 << 40, -2} {
				if err := d.Launch(cuda.DropoutBitsFunc, cuda.Dim3{X: 2, Y: 1, Z: 1}, cuda.Dim3{X: 256, Y: 1, Z: 1}, 0,
					[]cuda.Arg{cuda.P(out), cuda.L(seed), cuda.L(sample), cuda.I(n)}); err != nil {
					t.Fatal(err)
				}
				d.Read(out, raw)
				key := graph.DropoutRowKey(seed, sample)
				for j := 0; j < n; j++ {
					if got, want := binary.LittleEndian.Uint64(raw[8*j:]), graph.DropoutBits(key, j); got != want {
						t.Fatalf("seed %d sample %d element %d: bits %#x, want %#x", seed, sample, j, got, want)
					}
				}
			}
		}
	})
}

func TestOptim(t *testing.T) {
	r := rng(5)
	n := 1000
	p, g := randF32(r, n), randF32(r, n)
	s1, s2, s3 := randF32(r, n), randPos(r, n), randF32(r, n)
	lr, gs := scalarF(0.01), scalarF(0.8)
	f := func(name string, v float32) *graph.Attribute { return graph.AFloat(name, v) }
	ii := func(name string, v int64) *graph.Attribute { return graph.AInt(name, v) }
	common := []*graph.Attribute{f("clip_value", 0.5), f("weight_decay", 0.01), f("lr_scale", 0.9)}
	var cases []*kcase
	for _, step := range []int64{1, 7} {
		st := scalarI(step)
		cases = append(cases,
			&kcase{name: "SGD", op: "SGDUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, lr, st}},
			&kcase{name: "SGDclip", op: "SGDUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, lr, st, gs}, attrs: append(common, f("decoupled_weight_decay", 0.02))},
			&kcase{name: "Momentum", op: "SGDUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, lr, st, nil, s1}, outs: []string{"p", "b"},
				attrs: []*graph.Attribute{f("momentum", 0.9), f("dampening", 0.1), f("weight_decay", 0.001)}},
			&kcase{name: "Nesterov", op: "SGDUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, lr, st, gs, s1}, outs: []string{"p", "b"},
				attrs: []*graph.Attribute{f("momentum", 0.9), ii("nesterov", 1)}},
			&kcase{name: "Adam", op: "AdamUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s1, s2, lr, st}, outs: []string{"p", "m", "v"}},
			&kcase{name: "AdamW", op: "AdamUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s1, s2, lr, st, gs}, outs: []string{"p", "m", "v"},
				attrs: append(common, ii("decoupled", 1), f("beta1", 0.8))},
			&kcase{name: "AdamKeras", op: "AdamUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s1, s2, lr, st}, outs: []string{"p", "m", "v"},
				attrs: []*graph.Attribute{graph.AString("eps_mode", "keras"), f("epsilon", 1e-7)}},
			&kcase{name: "RMSprop", op: "RMSpropUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s2, lr, st}, outs: []string{"p", "sq"}, attrs: common},
			&kcase{name: "RMSpropFull", op: "RMSpropUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s2, lr, st, gs, s1, s3}, outs: []string{"p", "sq", "b", "ga"},
				attrs: []*graph.Attribute{f("momentum", 0.5), ii("centered", 1), ii("decoupled", 1), f("weight_decay", 0.1)}},
			&kcase{name: "Adagrad", op: "AdagradUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s2, lr, st, gs}, outs: []string{"p", "s"},
				attrs: append(common, f("lr_decay", 0.01))},
		)
	}
	big := randF32(r, 40000)
	cases = append(cases,
		&kcase{name: "GlobalNormScale", op: "GlobalNormScale", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, big, g}, outs: []string{"scale", "norm"},
			attrs: []*graph.Attribute{f("max_norm", 5)}, tol: 1e-7},
		&kcase{name: "GlobalNormScaleNoClip", op: "GlobalNormScale", domain: graph.DomainGotrain, in: []*tensor.Tensor{p}, outs: []string{"scale"},
			attrs: []*graph.Attribute{f("max_norm", 1e6)}},
		&kcase{name: "BadStep", op: "AdamUpdate", domain: graph.DomainGotrain, in: []*tensor.Tensor{p, g, s1, s2, lr, scalarI(0)}, outs: []string{"p", "m", "v"}, wantErr: "step"},
	)
	forDevices(t, func(t *testing.T, d testDev) {
		for _, c := range cases {
			check(t, d, c)
		}
	})
}
