package cuda

import (
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Ptr is a device address (0: an omitted optional input or output).
type Ptr uint64

// Prep is what a kernel factory sees when a graph is planned: the node, its
// input and output types with concrete shapes (and values where they are
// constants), and the opset of the node's domain. It is the CPU backend's
// Prep without the worker pool: a CUDA kernel's parallelism is its grid.
type Prep struct {
	Node  *graph.Node
	In    []*graph.Type // nil for an omitted optional input
	Out   []*graph.Type
	Opset int64
}

// InShape returns the concrete shape of input i (nil when absent).
func (p *Prep) InShape(i int) []int {
	if i >= len(p.In) || p.In[i] == nil {
		return nil
	}
	s, _ := p.In[i].Concrete()
	return s
}

// OutShape returns the concrete shape of output i (nil when absent).
func (p *Prep) OutShape(i int) []int {
	if i >= len(p.Out) || p.Out[i] == nil || i >= len(p.Node.Outputs) || p.Node.Outputs[i] == "" {
		return nil
	}
	s, _ := p.Out[i].Concrete()
	return s
}

// hasOut reports whether output i is wanted by the graph.
func (p *Prep) hasOut(i int) bool {
	return i < len(p.Node.Outputs) && p.Node.Outputs[i] != "" && i < len(p.Out) && p.Out[i] != nil
}

// hasIn reports whether input i is present.
func (p *Prep) hasIn(i int) bool {
	return i < len(p.Node.Inputs) && p.Node.Inputs[i] != "" && i < len(p.In) && p.In[i] != nil
}

// Kernel is a node prepared to run: the device workspace it needs and the
// function that enqueues its work on a stream.
type Kernel struct {
	// Scratch lists the device workspace buffers Run needs, in bytes; the
	// executor allocates them (once) and passes them in Call.Scratch.
	Scratch []int64
	// Consts are small int32 tables (broadcast geometry, index maps) the
	// executor uploads once and passes in Call.Consts.
	Consts [][]int32
	// Status, when set, interprets the kernel's status word (Call.Status, a
	// zeroed device int32 the kernel sets on bad input, such as a label out
	// of range) once the executor has read it back: a non-zero word becomes
	// the error it returns. The word is read at the step's next host
	// synchronisation, not per kernel.
	Status func(word int32) error
	// Run enqueues the node's work. It must not block on the device, keep
	// references to the call's slices, or allocate what it could have
	// allocated in the factory.
	Run func(c *Call) error
}

// Call is one run of a kernel: the stream to enqueue on and the device
// addresses of the node's inputs, outputs and scratch buffers (0 for an
// omitted optional value). Outputs' old contents are garbage. Every buffer
// is allocated in a multiple of 8 bytes, so a kernel may clear a buffer by
// whole words.
type Call struct {
	S       Stream
	In, Out []Ptr
	Scratch []Ptr
	Consts  []Ptr
	Status  Ptr
	// args is reused by A so that building a launch allocates nothing.
	args [32]Arg
}

// A fills the call's argument buffer: a launch's arguments without an
// allocation per call.
func (c *Call) A(args ...Arg) []Arg {
	n := copy(c.args[:], args)
	return c.args[:n]
}

// Factory prepares a kernel for one node at plan time: it reads attributes,
// checks dtypes and shapes, and computes launch geometry. It returns a
// *graph.UnsupportedOpError for a configuration it does not implement.
type Factory func(p *Prep) (*Kernel, error)

// Stream is where kernels enqueue work: a CUDA stream on a device, or the
// host emulator that tests run the same CUDA C on. Calls are ordered; none
// waits for the device.
type Stream interface {
	// Launch runs f over grid x block threads with shared bytes of dynamic
	// shared memory; args must match f's parameters (kinds and count).
	Launch(f *Func, grid, block Dim3, shared int, args []Arg) error
	// Gemm runs a float32 matrix product (cuBLAS on a device).
	Gemm(g *Gemm) error
	// Memset32 fills n 32-bit words at p with v.
	Memset32(p Ptr, v uint32, n int) error
	// Copy copies bytes from src to dst (device to device).
	Copy(dst, src Ptr, bytes int64) error
}

// Dim3 is a CUDA grid or block shape.
type Dim3 struct{ X, Y, Z int }

// Gemm is a row-major float32 product C = alpha*op(A)*op(B) + beta*C, with
// op(A) M x K and op(B) K x N, repeated Batch times (at least once) with the
// given element strides between consecutive matrices. LDA, LDB and LDC are
// row strides (row-major leading dimensions).
type Gemm struct {
	TransA, TransB bool
	M, N, K        int
	Alpha, Beta    float32
	A, B, C        Ptr
	LDA, LDB, LDC  int
	Batch          int
	StrideA        int64
	StrideB        int64
	StrideC        int64
}

// BLASGemm is a Gemm in cuBLAS's column-major terms: C = alpha*op(A)op(B) +
// beta*C with C m x n column-major (leading dimension LDC), repeated Batch
// times at the element strides.
type BLASGemm struct {
	TransA, TransB bool
	M, N, K        int
	Alpha, Beta    float32
	A, B, C        Ptr
	LDA, LDB, LDC  int
	StrideA        int64
	StrideB        int64
	StrideC        int64
	Batch          int
}

// Column maps a row-major product to cuBLAS's column-major one. A row-major
// matrix read column-major is its transpose, so C = op(A)op(B) becomes
// C^T = op(B)^T op(A)^T: the operands swap places, and so do M and N, while
// each keeps its own transposition flag and leading dimension.
func (g *Gemm) Column() BLASGemm {
	return BLASGemm{TransA: g.TransB, TransB: g.TransA, M: g.N, N: g.M, K: g.K, Alpha: g.Alpha, Beta: g.Beta,
		A: g.B, LDA: g.LDB, StrideA: g.StrideB, B: g.A, LDB: g.LDA, StrideB: g.StrideA, C: g.C, LDC: g.LDC, StrideC: g.StrideC,
		Batch: max(g.Batch, 1)}
}

// Kind is the type of a kernel parameter.
type Kind byte

// Parameter kinds: a device pointer, a 32-bit int, a 64-bit int, a float, a
// double.
const (
	KPtr Kind = 'p'
	KI32 Kind = 'i'
	KI64 Kind = 'l'
	KF32 Kind = 'f'
	KF64 Kind = 'd'
)

// Arg is one kernel argument: its kind and its bits (little-endian low
// bytes for 4-byte kinds).
type Arg struct {
	K Kind
	V uint64
}

// P, I, L, F and D make arguments of each kind.
func P(p Ptr) Arg          { return Arg{KPtr, uint64(p)} }
func I(v int) Arg          { return Arg{KI32, uint64(uint32(int32(v)))} }
func L(v int64) Arg        { return Arg{KI64, uint64(v)} }
func F(v float32) Arg      { return Arg{KF32, uint64(math.Float32bits(v))} }
func D(v float64) Arg      { return Arg{KF64, math.Float64bits(v)} }
func (a Arg) Int() int     { return int(int32(uint32(a.V))) }
func (a Arg) Ptr() Ptr     { return Ptr(a.V) }
func (a Arg) F32() float32 { return math.Float32frombits(uint32(a.V)) }

// CheckArgs verifies args against f's parameters; streams call it before a
// launch, so a mismatch is an error naming the kernel, never a fault.
func CheckArgs(f *Func, args []Arg) error {
	if len(args) != len(f.Params) {
		return fmt.Errorf("cuda: kernel %s takes %d arguments, given %d", f.Name, len(f.Params), len(args))
	}
	for i, a := range args {
		if a.K != f.Params[i] {
			return fmt.Errorf("cuda: kernel %s argument %d is %c, given %c", f.Name, i, f.Params[i], a.K)
		}
	}
	return nil
}

// ---- the kernel registry ----

// kernelInfo is a registry entry.
type kernelInfo struct {
	factory Factory
	// alias marks view ops (Reshape, Flatten, ...): output 0 is input 0's
	// memory under another shape; no kernel runs.
	alias bool
}

var (
	regMu   sync.RWMutex
	kernels = map[string]kernelInfo{}
)

func kkey(domain, op string) string { return graph.NormDomain(domain) + "::" + op }

// Register adds a kernel factory for an op (from a kernel file's init).
func Register(domain, op string, f Factory) {
	regMu.Lock()
	defer regMu.Unlock()
	k := kkey(domain, op)
	if _, dup := kernels[k]; dup {
		panic("cuda: kernel registered twice: " + k)
	}
	kernels[k] = kernelInfo{factory: f}
}

// RegisterAlias registers a view op: output 0 shares input 0's memory.
func RegisterAlias(domain, op string) {
	regMu.Lock()
	defer regMu.Unlock()
	k := kkey(domain, op)
	if _, dup := kernels[k]; dup {
		panic("cuda: kernel registered twice: " + k)
	}
	kernels[k] = kernelInfo{alias: true}
}

// HasKernel reports whether the CUDA backend implements an op (a kernel or
// a view).
func HasKernel(domain, op string) bool {
	regMu.RLock()
	defer regMu.RUnlock()
	_, ok := kernels[kkey(domain, op)]
	return ok
}

// IsAlias reports whether an op is a view of its first input.
func IsAlias(domain, op string) bool {
	regMu.RLock()
	defer regMu.RUnlock()
	return kernels[kkey(domain, op)].alias
}

// Ops lists the registered ops as "domain::op" (ai.onnx's domain is "").
func Ops() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(kernels))
	for k := range kernels {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Prepare runs the factory of p.Node's op. It fails with a
// *graph.UnsupportedOpError naming the op and the backend when the op has no
// CUDA kernel, and returns (nil, nil) for a view op.
func Prepare(p *Prep) (*Kernel, error) {
	regMu.RLock()
	info, ok := kernels[kkey(p.Node.Domain, p.Node.OpType)]
	regMu.RUnlock()
	if !ok {
		return nil, &graph.UnsupportedOpError{Node: p.Node, Reason: "no CUDA kernel for " + opName(p.Node)}
	}
	if info.alias {
		return nil, nil
	}
	for i := range p.Out {
		if p.hasOut(i) {
			if _, ok := p.Out[i].Concrete(); !ok {
				return nil, Errorf(p, "output %d has shape %v; the CUDA backend needs concrete shapes", i, p.Out[i])
			}
		}
	}
	for i := range p.In {
		if p.hasIn(i) {
			if _, ok := p.In[i].Concrete(); !ok {
				return nil, Errorf(p, "input %d has shape %v; the CUDA backend needs concrete shapes", i, p.In[i])
			}
		}
	}
	k, err := info.factory(p)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func opName(n *graph.Node) string {
	if d := graph.NormDomain(n.Domain); d != "" {
		return d + "." + n.OpType
	}
	return n.OpType
}

// Unsupported makes the error a factory returns for a configuration it
// does not implement.
func Unsupported(p *Prep, format string, args ...any) error {
	return &graph.UnsupportedOpError{Node: p.Node, Reason: "CUDA backend: " + fmt.Sprintf(format, args...)}
}

// Errorf makes an error naming the node.
func Errorf(p *Prep, format string, args ...any) error {
	return graph.Errorf(p.Node, format, args...)
}

// ---- helpers shared by the factories ----

// maxElems bounds the element count of a tensor a kernel indexes with
// 32-bit ints.
const maxElems = math.MaxInt32

// numel is the element count of a shape, with an error past 32-bit indexing.
func numel(p *Prep, s []int, what string) (int, error) {
	n := tensor.NumElements(s)
	if n > maxElems {
		return 0, Unsupported(p, "%s has %d elements; kernels index up to %d", what, n, maxElems)
	}
	return n, nil
}

// blockSize is the thread count of 1-D launches.
const blockSize = 256

// grid1 is the grid of a 1-D launch over n items, capped so that
// grid-stride loops cover the rest.
func grid1(n int) Dim3 {
	g := (n + blockSize - 1) / blockSize
	if g < 1 {
		g = 1
	}
	if g > 1<<16 {
		g = 1 << 16
	}
	return Dim3{g, 1, 1}
}

var block1 = Dim3{blockSize, 1, 1}

// planeGrid is the launch of a GT_PLANE kernel (kernels/common.cuh) over
// planes of inner elements: blocks of up to 256 threads (fewer for small
// planes, in whole warps), chunks of them per plane. inner must be > 0.
func planeGrid(planes, inner int) (grid, block Dim3, chunks int) {
	bs := max(32, min(blockSize, (inner+31)/32*32))
	chunks = (inner + bs - 1) / bs
	return Dim3{planes * chunks, 1, 1}, Dim3{bs, 1, 1}, chunks
}

// dtypeSize is the size in bytes of an element (bool is one byte, as in
// the host tensors).
func dtypeSize(dt tensor.DType) int64 { return int64(dt.Size()) }
