package cpu

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Prep is what a kernel factory sees when an executable is planned: the
// node, its input and output types with concrete shapes (and values where
// they are constants), the opset of the node's domain, and the worker pool
// the kernel may spread work over.
type Prep struct {
	Node  *graph.Node
	In    []*graph.Type // nil for an omitted optional input
	Out   []*graph.Type
	Opset int64
	Pool  *Pool
	// Group and Rank are the executable's replica group, for collective ops
	// (nil outside a group).
	Group *Group
	Rank  int
}

// InShape returns the concrete shape of input i (nil when absent).
func (p *Prep) InShape(i int) []int {
	if i >= len(p.In) || p.In[i] == nil {
		return nil
	}
	s, _ := p.In[i].Concrete()
	return s
}

// OutShape returns the concrete shape of output i.
func (p *Prep) OutShape(i int) []int {
	s, _ := p.Out[i].Concrete()
	return s
}

// Kernel runs a prepared node. out holds tensors already allocated with the
// inferred shapes and dtypes; the kernel fills them (their old contents are
// garbage). A nil entry in `in` is an omitted optional input. A kernel must
// not keep references to in or out beyond the call, and must not allocate
// per call what it could allocate in its factory.
type Kernel func(in, out []*tensor.Tensor) error

// Factory prepares a kernel for one node at plan time: it reads attributes,
// checks dtypes, precomputes indices and scratch space. It returns a
// *graph.UnsupportedOpError for a configuration it does not implement
// (a dtype, an attribute value), which conformance counts as unsupported.
type Factory func(p *Prep) (Kernel, error)

// kernelInfo is a registry entry.
type kernelInfo struct {
	factory Factory
	// alias marks view ops (Reshape, Flatten, Squeeze, ...) whose output is
	// input 0's data under another shape: the executor makes the view and
	// runs no kernel.
	alias bool
}

var kernels = map[string]kernelInfo{}

func kkey(domain, op string) string { return graph.NormDomain(domain) + "::" + op }

// Register adds a kernel factory for an op (from a kernel file's init).
func Register(domain, op string, f Factory) {
	k := kkey(domain, op)
	if _, dup := kernels[k]; dup {
		panic("cpu: kernel registered twice: " + k)
	}
	kernels[k] = kernelInfo{factory: f}
}

// RegisterAlias registers a view op: output 0 shares input 0's data.
func RegisterAlias(domain, op string) {
	k := kkey(domain, op)
	if _, dup := kernels[k]; dup {
		panic("cpu: kernel registered twice: " + k)
	}
	kernels[k] = kernelInfo{alias: true}
}

// HasKernel reports whether the CPU backend implements an op.
func HasKernel(domain, op string) bool { _, ok := kernels[kkey(domain, op)]; return ok }

// Unsupported makes the error a factory returns for a configuration it
// does not implement.
func Unsupported(p *Prep, format string, args ...any) error {
	return &graph.UnsupportedOpError{Node: p.Node, Reason: fmt.Sprintf(format, args...)}
}

// Errorf makes an error naming the node.
func Errorf(p *Prep, format string, args ...any) error {
	return graph.Errorf(p.Node, format, args...)
}
