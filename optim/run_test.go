package optim_test

import (
	"context"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/tensor"
)

// stepper runs an update model on the CPU backend the way a trainer does:
// parameters and state live in buffers fed every step and overwritten in
// place; lr and step are fed as scalars.
type stepper struct {
	t     *testing.T
	u     *optim.Update
	exe   backend.Executable
	dev   backend.Device
	feeds map[string]backend.Buffer
	host  map[string]*tensor.Tensor // the tensors behind the feeds
	step  int64
}

func newStepper(t *testing.T, cfg optim.Config, params []optim.Param, init map[string][]float32) *stepper {
	t.Helper()
	u, err := optim.BuildUpdate(cfg, params)
	if err != nil {
		t.Fatal(err)
	}
	b := cpu.New(cpu.Options{Threads: 1})
	dev := b.Devices()[0]
	exe, err := b.Compile(u.Model, dev, backend.CompileOptions{InPlace: u.InPlace})
	if err != nil {
		t.Fatal(err)
	}
	s := &stepper{t: t, u: u, exe: exe, dev: dev, feeds: map[string]backend.Buffer{}, host: map[string]*tensor.Tensor{}}
	state, err := u.InitState()
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range state {
		s.bind(name, v)
	}
	for _, p := range params {
		s.bind(p.Name, tensor.MustFromSlice(append([]float32(nil), init[p.Name]...), p.Shape...))
		s.bind(optim.GradName(p.Name), tensor.New(tensor.Float32, p.Shape...))
	}
	s.bind(optim.LRInput, tensor.Scalar(float32(0)))
	s.bind(optim.StepInput, tensor.Scalar(int64(0)))
	return s
}

func (s *stepper) bind(name string, t *tensor.Tensor) {
	s.host[name] = t
	s.feeds[name] = cpu.Wrap(t, s.dev)
}

// do runs one update with the given gradients at epoch 0 and the
// schedule's rate.
func (s *stepper) do(grads map[string][]float32) {
	s.t.Helper()
	for name, g := range grads {
		copy(s.host[optim.GradName(name)].Float32s(), g)
	}
	sched := s.u.Config.Schedule
	s.host[optim.LRInput].Float32s()[0] = float32(sched.LR(s.step, 0))
	s.step++
	s.host[optim.StepInput].Int64s()[0] = s.step
	outs, err := s.exe.Run(context.Background(), s.feeds)
	if err != nil {
		s.t.Fatal(err)
	}
	// In place: every output is the buffer of the input it replaces.
	for out, in := range s.u.InPlace {
		got := outs[out].(*cpu.Buffer).Tensor()
		if &got.Float32s()[0] != &s.host[in].Float32s()[0] {
			s.t.Fatalf("output %q is not written in place of %q", out, in)
		}
	}
}

func (s *stepper) value(name string) []float32 { return s.host[name].Float32s() }
