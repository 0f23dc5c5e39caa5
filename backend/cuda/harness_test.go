package cuda_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// The kernel tests run every CUDA kernel on random inputs and compare it
// with the CPU backend's kernel for the same node. They run on every test
// device available: the host emulator (internal/emu; needs cgo and a C++
// compiler) in every build, and the GPU in the cuda build when one is
// present. GOTRAIN_REQUIRE_GPU=1 turns a missing GPU into a failure.

// testDev is what the kernel tests need from a device: a stream and raw
// memory. Read waits for the work queued before it.
type testDev interface {
	cuda.Stream
	Alloc(n int64) cuda.Ptr
	Free(p cuda.Ptr)
	Write(p cuda.Ptr, b []byte)
	Read(p cuda.Ptr, b []byte)
}

type namedDev struct {
	name string
	dev  testDev
}

// devGetters are filled by the build-specific files (emu_test.go,
// gpu_test.go): each returns a device or the reason there is none.
var devGetters []func(t *testing.T) (namedDev, string)

func requireGPU() bool { return os.Getenv("GOTRAIN_REQUIRE_GPU") == "1" }

// forDevices runs f on every test device; with none it skips saying why.
func forDevices(t *testing.T, f func(t *testing.T, d testDev)) {
	t.Helper()
	var why []string
	ran := 0
	for _, get := range devGetters {
		d, reason := get(t)
		if d.dev == nil {
			why = append(why, reason)
			continue
		}
		ran++
		t.Run(d.name, func(t *testing.T) { f(t, d.dev) })
	}
	if ran == 0 {
		t.Skipf("no device to run kernels on: %s", strings.Join(why, "; "))
	}
}

// kcase is one node to run on both backends.
type kcase struct {
	name   string
	domain string
	op     string
	attrs  []*graph.Attribute
	opset  int64
	in     []*tensor.Tensor // nil: omitted optional input
	consts map[int]bool     // inputs that are constants (initializers)
	outs   []string         // output names ("" omitted); default one output
	// tol is the allowed |cuda - cpu| <= tol*(1+|cpu|); 0 demands equal bits.
	tol float64
	// wantErr, when set, is a substring of the error the CUDA run must give.
	wantErr string
}

func (c *kcase) model() *graph.Model {
	g := graph.NewGraph("k")
	n := &graph.Node{Name: c.name, OpType: c.op, Domain: c.domain, Attrs: map[string]*graph.Attribute{}}
	for _, a := range c.attrs {
		n.Attrs[a.Name] = a
	}
	for i, t := range c.in {
		if t == nil {
			n.Inputs = append(n.Inputs, "")
			continue
		}
		name := fmt.Sprintf("x%d", i)
		n.Inputs = append(n.Inputs, name)
		if c.consts[i] {
			g.SetInitializer(name, t)
		} else {
			g.Inputs = append(g.Inputs, &graph.ValueInfo{Name: name, Type: *graph.NewType(t.DType(), graph.ShapeOf(t.Shape()...))})
		}
	}
	outs := c.outs
	if outs == nil {
		outs = []string{"y0"}
	}
	n.Outputs = outs
	g.Nodes = []*graph.Node{n}
	m := graph.NewModel(g, max(c.opset, 17))
	m.Opsets[graph.DomainGotrain] = 1
	m.Opsets[graph.DomainTraining] = 1
	types, err := graph.InferShapes(m, nil)
	if err == nil {
		for _, o := range outs {
			if o != "" {
				t := types[o]
				g.Outputs = append(g.Outputs, &graph.ValueInfo{Name: o, Type: *graph.NewType(t.DType, t.Shape)})
			}
		}
	}
	return m
}

// cpuRun runs the case on the CPU backend.
func cpuRun(c *kcase) (map[string]*tensor.Tensor, error) {
	m := c.model()
	b := cpu.New(cpu.Options{Threads: 1})
	d := b.Devices()[0]
	exe, err := b.Compile(m, d, backend.CompileOptions{})
	if err != nil {
		return nil, err
	}
	feeds := map[string]*tensor.Tensor{}
	for i, t := range c.in {
		if t != nil && !c.consts[i] {
			feeds[fmt.Sprintf("x%d", i)] = t
		}
	}
	return backend.RunHost(context.Background(), b, exe, d, feeds)
}

// garbage is what output buffers hold before a kernel runs, so that an
// element a kernel forgets to write shows.
const garbage = 0xA5

// cudaRun prepares the node with the CUDA registry and runs it on d.
func cudaRun(d testDev, c *kcase) (map[string]*tensor.Tensor, error) {
	m := c.model()
	n := m.Graph.Nodes[0]
	types := graph.Types{}
	in := make([]*graph.Type, len(c.in))
	for i, t := range c.in {
		if t == nil {
			continue
		}
		ty := graph.TypeOf(t)
		if !c.consts[i] {
			ty = graph.NewType(t.DType(), graph.ShapeOf(t.Shape()...))
		}
		in[i] = ty
		types[n.Inputs[i]] = ty
	}
	out, err := graph.InferNode(m, n, types)
	if err != nil {
		return nil, err
	}
	k, err := cuda.Prepare(&cuda.Prep{Node: n, In: in, Out: out, Opset: m.OpsetOf(n)})
	if err != nil {
		return nil, err
	}
	var frees []cuda.Ptr
	defer func() {
		for _, p := range frees {
			d.Free(p)
		}
	}()
	alloc := func(bytes int64) cuda.Ptr {
		p := d.Alloc((bytes + 7) &^ 7)
		frees = append(frees, p)
		return p
	}
	call := &cuda.Call{S: d}
	for _, t := range c.in {
		if t == nil {
			call.In = append(call.In, 0)
			continue
		}
		raw, err := cuda.HostBytes(t)
		if err != nil {
			return nil, err
		}
		p := alloc(int64(len(raw)))
		d.Write(p, raw)
		call.In = append(call.In, p)
	}
	res := map[string]*tensor.Tensor{}
	if k == nil { // a view: output 0 is input 0 under the output's shape
		s, _ := out[0].Concrete()
		raw, err := cuda.HostBytes(c.in[0])
		if err != nil {
			return nil, err
		}
		v, err := cuda.FromHostBytes(c.in[0].DType(), s, raw)
		if err != nil {
			return nil, err
		}
		res[n.Outputs[0]] = v
		return res, nil
	}
	outBytes := make([]int64, len(out))
	for i, o := range n.Outputs {
		if o == "" || out[i] == nil {
			call.Out = append(call.Out, 0)
			continue
		}
		s, _ := out[i].Concrete()
		outBytes[i] = int64(tensor.NumElements(s) * out[i].DType.Size())
		p := alloc(outBytes[i])
		d.Write(p, fill(outBytes[i], garbage))
		call.Out = append(call.Out, p)
	}
	for _, sz := range k.Scratch {
		p := alloc(sz)
		d.Write(p, fill(sz, garbage))
		call.Scratch = append(call.Scratch, p)
	}
	for _, cst := range k.Consts {
		raw := make([]byte, 4*len(cst))
		for i, v := range cst {
			binary.LittleEndian.PutUint32(raw[4*i:], uint32(v))
		}
		p := alloc(int64(len(raw)))
		d.Write(p, raw)
		call.Consts = append(call.Consts, p)
	}
	call.Status = alloc(4)
	d.Write(call.Status, make([]byte, 4))
	if err := k.Run(call); err != nil {
		return nil, err
	}
	// A prepared kernel allocates nothing when it runs (checked once per
	// op on the emulator, whose launches allocate nothing themselves).
	if _, ok := d.(interface{ Emulated() bool }); ok && firstOfOp(c) {
		if a := minAllocs(100, func() { k.Run(call) }); a != 0 {
			return nil, fmt.Errorf("running the prepared kernel allocates (%v allocations a run)", a)
		}
	}
	var word [4]byte
	d.Read(call.Status, word[:])
	if w := int32(binary.LittleEndian.Uint32(word[:])); w != 0 {
		if k.Status == nil {
			return nil, fmt.Errorf("kernel set status %d but has no Status function", w)
		}
		return nil, k.Status(w)
	}
	for i, o := range n.Outputs {
		if o == "" || out[i] == nil {
			continue
		}
		raw := make([]byte, outBytes[i])
		d.Read(call.Out[i], raw)
		s, _ := out[i].Concrete()
		t, err := cuda.FromHostBytes(out[i].DType, s, raw)
		if err != nil {
			return nil, err
		}
		res[o] = t
	}
	return res, nil
}

var (
	allocChecked   = map[string]bool{}
	allocCheckedMu sync.Mutex
)

func firstOfOp(c *kcase) bool {
	allocCheckedMu.Lock()
	defer allocCheckedMu.Unlock()
	k := c.domain + "::" + c.op
	if allocChecked[k] {
		return false
	}
	allocChecked[k] = true
	return true
}

func fill(n int64, b byte) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

// check runs the case on the CPU and on d and compares every output.
func check(t *testing.T, d testDev, c *kcase) {
	t.Helper()
	got, err := cudaRun(d, c)
	if c.wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Fatalf("%s: error %v, want one containing %q", c.name, err, c.wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: cuda: %v", c.name, err)
	}
	noteTested(c.domain, c.op)
	want, err := cpuRun(c)
	if err != nil {
		t.Fatalf("%s: cpu: %v", c.name, err)
	}
	tol := c.tol
	if f, ok := d.(interface{ TolFloor() float64 }); ok {
		tol = max(tol, f.TolFloor())
	}
	for name, w := range want {
		g := got[name]
		if g == nil {
			t.Fatalf("%s: output %s missing", c.name, name)
		}
		compare(t, c.name+" "+name, w, g, tol)
	}
}

// compare checks |got-want| <= tol*(1+|want|) elementwise (bits equal when
// tol is 0; NaN matches NaN).
func compare(t *testing.T, what string, want, got *tensor.Tensor, tol float64) {
	t.Helper()
	if want.DType() != got.DType() || !tensor.SameShape(want.Shape(), got.Shape()) {
		t.Fatalf("%s: got %v %v, want %v %v", what, got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	worst := 0.0
	for i := 0; i < want.Len(); i++ {
		w, g := want.AsFloat64(i), got.AsFloat64(i)
		if math.IsNaN(w) && math.IsNaN(g) {
			continue
		}
		d := math.Abs(w - g)
		if tol == 0 {
			if w != g {
				t.Fatalf("%s: element %d is %v, want %v (exact)", what, i, g, w)
			}
			continue
		}
		if !(d <= tol*(1+math.Abs(w))) {
			t.Fatalf("%s: element %d is %v, want %v (tolerance %g)", what, i, g, w, tol)
		}
		worst = max(worst, d)
	}
}

// ---- random inputs ----

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 77)) }

func randF32(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape...)
	for i, d := range t.Float32s() {
		_ = d
		t.Float32s()[i] = float32(r.NormFloat64())
	}
	return t
}

func randPos(r *rand.Rand, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Float32, shape...)
	for i := range t.Float32s() {
		t.Float32s()[i] = float32(0.1 + r.Float64()*2)
	}
	return t
}

func randInt(r *rand.Rand, n int64, shape ...int) *tensor.Tensor {
	t := tensor.New(tensor.Int64, shape...)
	for i := range t.Int64s() {
		t.Int64s()[i] = r.Int64N(n)
	}
	return t
}

func scalarF(v float32) *tensor.Tensor { return tensor.MustFromSlice([]float32{v}) }
func scalarI(v int64) *tensor.Tensor   { return tensor.MustFromSlice([]int64{v}) }
func ints(v ...int64) *tensor.Tensor   { return tensor.MustFromSlice(v, len(v)) }

// minAllocs is the fewest allocations a run of f makes, over three
// measurements of AllocsPerRun(runs, f). AllocsPerRun counts the whole
// process's allocations, so what other goroutines allocate meanwhile (the
// cleanups of buffers earlier tests dropped) can add one to a measurement;
// a function that allocates adds to every one of them.
func minAllocs(runs int, f func()) float64 {
	least := testing.AllocsPerRun(runs, f)
	for i := 0; i < 2 && least > 0; i++ {
		least = min(least, testing.AllocsPerRun(runs, f))
	}
	return least
}
