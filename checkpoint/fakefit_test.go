package checkpoint

import (
	"testing"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
	"github.com/gotrain/gotrain/train"
)

// fakeFit drives callbacks through a scripted run, as the fit loop does,
// with in-memory weights: after each batch the weight "w" holds the number
// of batches run so far and after epoch e (0-based) "w" and "b" hold e+1, so
// a test can tell from the weights which epoch they come from.
type fakeFit struct {
	t        *testing.T
	model    *graph.Model
	weights  map[string]*tensor.Tensor
	baseLR   float64
	scale    float64
	step     int64
	history  []train.Logs
	cbs      []train.Callback
	batches  int                       // batches per epoch
	batchLog func(e, b int) train.Logs // batch logs; nil for {"loss": 1}
	ctx      *train.Context
	setCalls int
}

// tinyModel is a Go-defined model y = x·w + b whose initializers are the
// fake fit's weights.
func tinyModel(t *testing.T) *graph.Model {
	t.Helper()
	b := graph.NewBuilder("tiny", 17)
	x := b.Input("x", tensor.Float32, graph.Sym("N"), graph.D(2))
	w := b.Param("w", tensor.MustFromSlice([]float32{0, 0, 0, 0}, 2, 2))
	bias := b.Param("b", tensor.MustFromSlice([]float32{0, 0}, 2))
	y := b.Op("Add", b.Op("MatMul", x, w).Out(), bias).Named("y")
	b.Output(y.Out())
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newFakeFit(t *testing.T, cbs ...train.Callback) *fakeFit {
	f := &fakeFit{t: t, model: tinyModel(t), baseLR: 1, scale: 1, cbs: cbs, batches: 1}
	f.weights = map[string]*tensor.Tensor{
		"w": tensor.New(tensor.Float32, 2, 2),
		"b": tensor.New(tensor.Float32, 2),
	}
	f.ctx = train.NewContext(train.Hooks{
		Weights: func() (map[string]*tensor.Tensor, error) { return cloneWeights(f.weights), nil },
		SetWeights: func(w map[string]*tensor.Tensor) error {
			f.setCalls++
			for k, v := range w {
				f.weights[k] = v.Clone()
			}
			return nil
		},
		LRScale:    func() float64 { return f.scale },
		SetLRScale: func(s float64) { f.scale = s },
		LR:         func() float64 { return f.baseLR * f.scale },
		Snapshot:   f.snapshot,
		Model:      func() *graph.Model { return f.model },
		History:    func() []train.Logs { return f.history },
	})
	return f
}

func cloneWeights(w map[string]*tensor.Tensor) map[string]*tensor.Tensor {
	c := make(map[string]*tensor.Tensor, len(w))
	for k, v := range w {
		c[k] = v.Clone()
	}
	return c
}

func (f *fakeFit) snapshot() (*train.State, error) {
	extra, err := CollectState(f.cbs)
	if err != nil {
		return nil, err
	}
	return &train.State{
		Epoch: f.ctx.Epoch, Step: f.step, Weights: cloneWeights(f.weights), LRScale: f.scale,
		Extra: extra, ModelHash: ModelHash(f.model), History: append([]train.Logs{}, f.history...),
	}, nil
}

func fill(t *tensor.Tensor, v float32) {
	for i := range t.Float32s() {
		t.Float32s()[i] = v
	}
}

// run plays epochs [start, len(logs)) and returns how many epochs ran in
// this call. OnTrainEnd runs unless a callback failed.
func (f *fakeFit) run(start int, logs []train.Logs) (int, error) {
	for _, cb := range f.cbs {
		if err := cb.OnTrainBegin(f.ctx); err != nil {
			return 0, err
		}
	}
	ran := 0
	for e := start; e < len(logs); e++ {
		f.ctx.Epoch = e
		for _, cb := range f.cbs {
			if err := cb.OnEpochBegin(f.ctx, e); err != nil {
				return ran, err
			}
		}
		stopped := false
		for b := 0; b < f.batches && !stopped; b++ {
			for _, cb := range f.cbs {
				if err := cb.OnBatchBegin(f.ctx, b); err != nil {
					return ran, err
				}
			}
			f.step++
			f.ctx.Step = f.step
			fill(f.weights["w"], float32(f.step))
			bl := train.Logs{"loss": 1}
			if f.batchLog != nil {
				bl = f.batchLog(e, b)
			}
			for _, cb := range f.cbs {
				if err := cb.OnBatchEnd(f.ctx, b, bl); err != nil {
					return ran, err
				}
			}
			stopped, _ = f.ctx.Stopped()
		}
		fill(f.weights["w"], float32(e+1))
		fill(f.weights["b"], float32(e+1))
		for _, cb := range f.cbs {
			if err := cb.OnEpochEnd(f.ctx, e, logs[e]); err != nil {
				return ran, err
			}
		}
		f.history = append(f.history, logs[e])
		ran++
		if s, _ := f.ctx.Stopped(); s {
			break
		}
	}
	for _, cb := range f.cbs {
		if err := cb.OnTrainEnd(f.ctx, nil); err != nil {
			return ran, err
		}
	}
	return ran, nil
}

// seq turns values of one metric into epoch logs.
func seq(key string, vals ...float64) []train.Logs {
	out := make([]train.Logs, len(vals))
	for i, v := range vals {
		out[i] = train.Logs{key: v, "loss": v}
	}
	return out
}
