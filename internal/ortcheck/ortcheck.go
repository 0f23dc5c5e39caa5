//go:build cgo

// Package ortcheck runs models in ONNX Runtime, the second runtime that tests
// use as a referee for gotrain's outputs and exported models. Only tests
// import it; the library never depends on ONNX Runtime.
//
// The runtime's CPU library comes from the npm package onnxruntime-node,
// which `make deps` installs under .tools/ort; GOTRAIN_ORT_LIB names another
// copy. Tests call Require, which skips them when neither is there (and
// fails them under CI=true).
package ortcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/gotrain/gotrain/internal/testenv"
	"github.com/gotrain/gotrain/tensor"
)

// EnvLib names the environment variable with the library's path.
const EnvLib = "GOTRAIN_ORT_LIB"

const npmLib = ".tools/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"

var (
	once    sync.Once
	initErr error
	mu      sync.Mutex
)

// Library returns the path of ONNX Runtime's shared library, or "".
func Library() string {
	if p := os.Getenv(EnvLib); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, npmLib)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Require skips the test when the library cannot be loaded, or fails it
// under CI=true, where make deps has installed it (testenv.Missing).
func Require(t testing.TB) {
	t.Helper()
	if err := Init(); err != nil {
		testenv.Missing(t, "%v", err)
	}
}

// Init loads the library once. It fails when the library is absent.
func Init() error {
	once.Do(func() {
		lib := Library()
		if lib == "" {
			initErr = fmt.Errorf("ONNX Runtime library not found (run make deps, or set %s)", EnvLib)
			return
		}
		ort.SetSharedLibraryPath(lib)
		initErr = ort.InitializeEnvironment()
	})
	return initErr
}

// Run runs the model file with float32 (or int64) inputs and returns the
// named float32 outputs.
func Run(model string, inputs map[string]*tensor.Tensor, order []string, outputs []string) (map[string]*tensor.Tensor, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	sess, err := ort.NewDynamicAdvancedSession(model, order, outputs, nil)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime: %s: %w", model, err)
	}
	defer sess.Destroy()
	vals := make([]ort.Value, len(order))
	for i, name := range order {
		t := inputs[name]
		if t == nil {
			return nil, fmt.Errorf("onnxruntime: input %q not given", name)
		}
		shape := make([]int64, t.Rank())
		for j, d := range t.Shape() {
			shape[j] = int64(d)
		}
		var v ort.Value
		switch t.DType() {
		case tensor.Float32:
			v, err = ort.NewTensor(ort.NewShape(shape...), append([]float32{}, t.Float32s()...))
		case tensor.Int64:
			v, err = ort.NewTensor(ort.NewShape(shape...), append([]int64{}, t.Int64s()...))
		default:
			err = fmt.Errorf("onnxruntime: input %q: dtype %v not handled", name, t.DType())
		}
		if err != nil {
			return nil, err
		}
		defer v.Destroy()
		vals[i] = v
	}
	outs := make([]ort.Value, len(outputs))
	if err := sess.Run(vals, outs); err != nil {
		return nil, fmt.Errorf("onnxruntime: running %s: %w", model, err)
	}
	res := map[string]*tensor.Tensor{}
	for i, name := range outputs {
		ft, ok := outs[i].(*ort.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("onnxruntime: output %q is %T, not float32", name, outs[i])
		}
		dims := ft.GetShape()
		shape := make([]int, len(dims))
		for j, d := range dims {
			shape[j] = int(d)
		}
		t, err := tensor.FromSlice(append([]float32{}, ft.GetData()...), shape...)
		if err != nil {
			return nil, err
		}
		res[name] = t
		outs[i].Destroy()
	}
	return res, nil
}

// Session is a loaded model for repeated runs (benchmarks).
type Session struct {
	s       *ort.DynamicAdvancedSession
	in, out []ort.Value
}

// NewSession loads a model with one float32 input of the given shape and
// one float32 output, using threads intra-op threads.
func NewSession(model, input, output string, shape []int, threads int) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(threads); err != nil {
		return nil, err
	}
	s, err := ort.NewDynamicAdvancedSession(model, []string{input}, []string{output}, opts)
	if err != nil {
		return nil, err
	}
	dims := make([]int64, len(shape))
	for i, d := range shape {
		dims[i] = int64(d)
	}
	x, err := ort.NewEmptyTensor[float32](ort.NewShape(dims...))
	if err != nil {
		return nil, err
	}
	return &Session{s: s, in: []ort.Value{x}, out: make([]ort.Value, 1)}, nil
}

// Run runs the session once on its (zero) input.
func (s *Session) Run() error {
	if s.out[0] != nil {
		s.out[0].Destroy()
		s.out[0] = nil
	}
	return s.s.Run(s.in, s.out)
}

// Close frees the session.
func (s *Session) Close() {
	s.s.Destroy()
	for _, v := range append(s.in, s.out...) {
		if v != nil {
			v.Destroy()
		}
	}
}
