//go:build cgo

// Package cudaemu is the CUDA backend on emulated devices: the backend's
// executor, buffers, transfers, allocator and kernels exactly as on a GPU,
// over cuda.Hardware that runs the kernels' CUDA C on the CPU (the host
// emulator, backend/cuda/internal/emu) in host memory. Importing it
// registers the backend as "cuda-emu", which tests use to run the
// conformance suites, the PyTorch goldens, the strategies and the CLI on
// the CUDA backend on machines without a GPU. It is slow (every CUDA thread
// is a host function call) and needs a C++ compiler at run time; it is not
// compiled into the gotrain command.
//
// Emulated devices share one emulator and the process's memory; each has
// its own lock (its "stream"), and work runs when it is enqueued, so the
// order of a stream and between streams is the host's. A captured graph
// records the stream's calls and replays them, so the executor's graph
// capture runs here too.
package cudaemu

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/backend/cuda/internal/emu"
)

// Name is the name the backend registers under.
const Name = "cuda-emu"

// Built says whether this build can run the emulated backend: it needs
// cgo (a CGO_ENABLED=0 build registers a backend that says so).
const Built = true

func init() {
	backend.Register(Name, func(opts map[string]string) (backend.Backend, error) {
		var o Options
		for k, v := range opts {
			switch k {
			case "devices", "threads":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("%s backend: option %s=%q: expected a non-negative integer", Name, k, v)
				}
				if k == "devices" {
					o.Devices = n
				}
			case "graphs":
				on, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("%s backend: option graphs=%q: expected true or false", Name, v)
				}
				o.NoGraphs = !on
			default:
				return nil, fmt.Errorf("%s backend: unknown option %q (have devices, graphs)", Name, k)
			}
		}
		return Open(o)
	})
}

// Options configure the emulated backend.
type Options struct {
	// Devices is the number of emulated devices (default 1).
	Devices int
	// NoGraphs turns off graph capture, as the cuda backend's option does.
	NoGraphs bool
}

var (
	once   sync.Once
	shared *emu.Emulator
	err    error
)

// EnvOff names the environment variable that turns the emulator off
// (GOTRAIN_EMU=0): on a GPU machine, where the tests run on the device.
const EnvOff = "GOTRAIN_EMU"

// Emulator returns the process's emulator (made on first use), or why
// there is none.
func Emulator() (*emu.Emulator, error) {
	once.Do(func() {
		if os.Getenv(EnvOff) == "0" {
			err = errors.New(EnvOff + "=0 turns the emulator off")
			return
		}
		shared, err = emu.New()
	})
	return shared, err
}

// Open makes a backend of emulated devices.
func Open(o Options) (*cuda.Backend, error) {
	e, err := Emulator()
	if err != nil {
		return nil, fmt.Errorf("%s backend: %w", Name, err)
	}
	n := max(o.Devices, 1)
	hws := make([]cuda.Hardware, n)
	for i := range hws {
		hws[i] = &Hardware{e: e, id: i}
	}
	return cuda.NewBackend(hws, cuda.BackendOptions{Name: Name, Graphs: !o.NoGraphs}), nil
}

// Hardware is one emulated device.
type Hardware struct {
	e  *emu.Emulator
	id int

	mu        sync.Mutex
	closed    bool
	capturing bool
	rec       []func() error
	// Captures counts the graphs captured (tests check the executor's use).
	Captures int
}

func (h *Hardware) String() string { return fmt.Sprintf("emulated device %d", h.id) }

// Do runs f, one caller at a time.
func (h *Hardware) Do(f func() error) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("%v is closed", h)
	}
	return f()
}

// Close marks the device closed.
func (h *Hardware) Close() error {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	return nil
}

// MemAlloc returns zeroed host memory.
func (h *Hardware) MemAlloc(n int64) (cuda.Ptr, error) { return h.e.Alloc(n), nil }

// MemFree frees it.
func (h *Hardware) MemFree(p cuda.Ptr) error {
	h.e.Free(p)
	return nil
}

// Write copies src to dst (work runs when enqueued, so nothing waits).
func (h *Hardware) Write(dst cuda.Ptr, src []byte) error {
	if h.capturing {
		return fmt.Errorf("%v: a host-to-device copy while capturing a graph", h)
	}
	h.e.Write(dst, src)
	return nil
}

// Read copies src to dst.
func (h *Hardware) Read(dst []byte, src cuda.Ptr) error {
	if h.capturing {
		return fmt.Errorf("%v: a device-to-host copy while capturing a graph", h)
	}
	h.e.Read(src, dst)
	return nil
}

// CopyPeer copies between two emulated devices (host memory both).
func (h *Hardware) CopyPeer(dst cuda.Ptr, src cuda.Hardware, sp cuda.Ptr, n int64) error {
	if _, ok := src.(*Hardware); !ok {
		return fmt.Errorf("%v: copy from %v, which is not emulated", h, src)
	}
	return h.Do(func() error { return h.e.Copy(dst, sp, n) })
}

// Launch runs a kernel, or records it while capturing.
func (h *Hardware) Launch(f *cuda.Func, grid, block cuda.Dim3, shared int, args []cuda.Arg) error {
	if h.capturing {
		if err := cuda.CheckArgs(f, args); err != nil {
			return err
		}
		a := append([]cuda.Arg(nil), args...)
		h.rec = append(h.rec, func() error { return h.e.Launch(f, grid, block, shared, a) })
		return nil
	}
	return h.e.Launch(f, grid, block, shared, args)
}

// Gemm runs a product, or records a copy of it while capturing (kernels
// reuse their Gemm descriptors).
func (h *Hardware) Gemm(g *cuda.Gemm) error {
	if h.capturing {
		c := *g
		h.rec = append(h.rec, func() error { return h.e.Gemm(&c) })
		return nil
	}
	return h.e.Gemm(g)
}

// Memset32 fills words, or records it.
func (h *Hardware) Memset32(p cuda.Ptr, v uint32, n int) error {
	if h.capturing {
		h.rec = append(h.rec, func() error { return h.e.Memset32(p, v, n) })
		return nil
	}
	return h.e.Memset32(p, v, n)
}

// Copy copies bytes, or records it.
func (h *Hardware) Copy(dst, src cuda.Ptr, n int64) error {
	if h.capturing {
		h.rec = append(h.rec, func() error { return h.e.Copy(dst, src, n) })
		return nil
	}
	return h.e.Copy(dst, src, n)
}

// BeginCapture starts recording.
func (h *Hardware) BeginCapture() error {
	if h.capturing {
		return fmt.Errorf("%v: already capturing", h)
	}
	h.capturing, h.rec = true, nil
	return nil
}

// EndCapture returns the recording as a graph.
func (h *Hardware) EndCapture() (cuda.Captured, error) {
	if !h.capturing {
		return nil, fmt.Errorf("%v: not capturing", h)
	}
	h.capturing = false
	h.Captures++
	g := &graph{calls: h.rec}
	h.rec = nil
	return g, nil
}

type graph struct{ calls []func() error }

func (g *graph) Launch() error {
	for _, c := range g.calls {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

func (g *graph) Destroy() error {
	g.calls = nil
	return nil
}
