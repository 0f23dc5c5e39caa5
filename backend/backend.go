// Package backend defines what every execution backend provides: devices,
// compilation of a graph into an Executable, and explicit host<->device
// transfers. A backend is a set of kernels and a memory planner, nothing more:
// it knows nothing of training, optimizers or data.
//
// Tensors on a device are opaque Buffers. Nothing above this package touches
// device memory; data crosses between host and device with Upload and
// Download (and Overwrite, where offered), and between devices with a
// backend's Copier where it has one.
//
// A backend builds on the planner every backend shares (backend/plan): it
// supplies kernels, an allocator and a few hooks. ONNX's backend test suites
// run against any registered backend through the test-support package
// backend/conformance.
package backend

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Device is a place where executables run and buffers live.
type Device interface {
	// ID is the device's index among its backend's devices.
	ID() int
	String() string
}

// Buffer is a tensor on a device. Its contents are reached only through
// Backend.Download.
type Buffer interface {
	DType() tensor.DType
	Shape() []int
	Device() Device
}

// CompileOptions tune compilation.
type CompileOptions struct {
	// InputShapes gives concrete shapes for graph inputs whose declared
	// shapes are symbolic (the batch size, say). Inputs not named here use
	// their declared shapes; a run with other shapes re-plans.
	InputShapes map[string][]int
	// Outputs restricts the executable to these values (default: the
	// graph's outputs). Any value of the graph may be named.
	Outputs []string
	// Threads caps the worker threads of a CPU executable (0: the device's share).
	Threads int
	// InPlace maps an output value to the graph input whose buffer it
	// overwrites: Run writes that output into the buffer fed for the input
	// (optimizer updates of parameters and their state). The node producing
	// it runs after every other reader of the input.
	InPlace map[string]string
	// Collective and Rank place the executable in a group of replicas whose
	// collective ops (ai.gotrain.AllReduceSum) meet each other: Rank is this
	// replica's index in the group.
	Collective Collective
	Rank       int
}

// Collective is a group of replicas that reduce values among themselves
// inside their graphs. Every member must run the same graph; a member that
// fails must Abort the group so the others do not wait for it.
type Collective interface {
	Size() int
	// Abort makes every pending and future collective op of the group fail
	// with err, until Reset.
	Abort(err error)
	// Reset readies the group for the next step.
	Reset()
}

// OuterCollective is implemented by collectives whose sums can reach beyond
// the group: after the members' sum, each collective op hands it to outer
// (once, from one member), which combines it in place with the sums of
// other groups, such as the other worker processes of a multi-worker run;
// every member then gets the combined sum. An error from outer fails the
// op on every member.
type OuterCollective interface {
	Collective
	SetOuter(outer func(sum []float32) error)
}

// Collectives is implemented by backends that can form replica groups.
type Collectives interface {
	NewCollective(devices []Device) (Collective, error)
}

// Backend compiles and runs graphs on its devices.
type Backend interface {
	Name() string
	// Devices lists the devices; a CPU backend offers one per replica slot.
	Devices() []Device
	// Compile prepares m's graph to run on d: kernels chosen, shapes
	// resolved, buffers planned. It fails on ops the backend cannot run
	// (with a *graph.UnsupportedOpError) and on invalid graphs.
	Compile(m *graph.Model, d Device, o CompileOptions) (Executable, error)
	// Upload copies a host tensor to the device.
	Upload(t *tensor.Tensor, d Device) (Buffer, error)
	// Download copies a device buffer to a new host tensor.
	Download(b Buffer) (*tensor.Tensor, error)
}

// Overwriter is implemented by backends that can copy a host tensor into a
// buffer made before, of the same dtype and shape, so that a training loop
// feeds each step's batch into the same buffers instead of allocating new
// ones.
type Overwriter interface {
	Overwrite(dst Buffer, t *tensor.Tensor) error
}

// Copier is implemented by backends that copy a buffer into another
// directly, between any two of their devices (a GPU's peer-to-peer copy),
// rather than through the host with Download and Upload. Strategies use it
// to gather gradients on one device and to broadcast weights to replicas
// on devices that do not share memory.
type Copier interface {
	// Copy copies src's contents into dst, a buffer of the same dtype and
	// shape, on the same device or another. It may be called concurrently
	// for distinct destination buffers.
	Copy(dst, src Buffer) error
}

// Executable is a compiled graph. Run may be called many times; it is not
// safe for concurrent use (compile one per goroutine).
type Executable interface {
	// Run executes with the given inputs (by graph input name) and returns
	// the outputs by name. Returned buffers stay valid until the next Run.
	Run(ctx context.Context, feeds map[string]Buffer) (map[string]Buffer, error)
	// Outputs names what Run returns.
	Outputs() []string
}

// Factory makes a backend; options are backend-specific ("threads", "devices").
type Factory func(opts map[string]string) (Backend, error)

var (
	mu        sync.Mutex
	factories = map[string]Factory{}
)

// Register makes a backend available by name (from the backend's init).
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	factories[name] = f
}

// Open returns the named backend.
func Open(name string, opts map[string]string) (Backend, error) {
	mu.Lock()
	f, ok := factories[name]
	mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("backend %q is not compiled into this program (available: %s)", name, strings.Join(Names(), ", "))
	}
	return f(opts)
}

// Names lists the registered backends.
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	var n []string
	for k := range factories {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// RunHost is a convenience for tests and tools: it uploads host tensors, runs,
// and downloads every output.
func RunHost(ctx context.Context, b Backend, e Executable, d Device, feeds map[string]*tensor.Tensor) (map[string]*tensor.Tensor, error) {
	bufs := make(map[string]Buffer, len(feeds))
	for name, t := range feeds {
		buf, err := b.Upload(t, d)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		bufs[name] = buf
	}
	outs, err := e.Run(ctx, bufs)
	if err != nil {
		return nil, err
	}
	res := make(map[string]*tensor.Tensor, len(outs))
	for name, buf := range outs {
		t, err := b.Download(buf)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", name, err)
		}
		res[name] = t
	}
	return res, nil
}
