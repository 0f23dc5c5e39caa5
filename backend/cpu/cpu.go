// Package cpu is gotrain's CPU backend: Go kernels, with float32 matrix
// products on package gemm's micro-kernels (AVX-512, AVX2 or Go, chosen
// from CPUID; kernels.go, KernelInfo) in both builds, and OpenBLAS as the
// fallback on CPUs without AVX2 when built with cgo. The cgo build also
// runs a few hot loops in C (ckernels.c: the Adam update, max pooling,
// im2col), most on a per-device pool of POSIX threads (cpool.go says why);
// its loops compute exactly what the Go loops they stand in for compute,
// and the pure-Go build runs the Go loops.
//
// The backend offers one device per replica slot; each device owns a share
// of the cores, and every executable compiled for it runs its kernels on a
// worker pool of that size. So the mirrored strategy's replicas run side by
// side without fighting over threads.
//
// Compilation is the shared planner's (backend/plan): it fuses, orders,
// infers shapes, folds constants and packs values into storage blocks by
// liveness. This package gives it hooks (exec.go): its kernel registry,
// the fusions its kernels implement, kernel factories to prepare steps and
// to fold constants with. It then makes each plan concrete, one host tensor
// per storage block, so a run is a loop over prepared kernel calls that
// allocates nothing. A run with new input shapes plans again (and keeps the
// plan).
//
// With Options.PrivateMemory the devices behave as devices that do not
// share memory (GPUs): a buffer belongs to one device, an executable
// refuses a buffer of another device, and data crosses devices only by an
// explicit copy (Download and Upload, or Copy). The mirrored strategy's
// path for such backends (gradients gathered on one device, weights
// broadcast after the update) is tested on it.
package cpu

import (
	"fmt"
	"runtime"
	"strconv"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

func init() {
	backend.Register("cpu", func(opts map[string]string) (backend.Backend, error) {
		var o Options
		for k, v := range opts {
			if k == "private" {
				switch v {
				case "0", "1":
					o.PrivateMemory = v == "1"
				default:
					return nil, fmt.Errorf("cpu backend: option private=%q: expected 0 or 1", v)
				}
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("cpu backend: option %s=%q: expected a non-negative integer", k, v)
			}
			switch k {
			case "devices":
				o.Devices = n
			case "threads":
				o.Threads = n
			default:
				return nil, fmt.Errorf("cpu backend: unknown option %q (have devices, threads, private)", k)
			}
		}
		return New(o), nil
	})
}

// Options configure the CPU backend.
type Options struct {
	// Devices is the number of replica slots (default 1).
	Devices int
	// Threads is the total number of worker threads shared out among the
	// devices (default GOMAXPROCS).
	Threads int
	// PrivateMemory makes the devices keep private buffers, as devices
	// that do not share memory do: an executable takes only buffers of its
	// own device, and SharedMemory reports false.
	PrivateMemory bool
}

// Backend is the CPU backend.
type Backend struct {
	devices []*Device
	private bool
}

// Device is one replica slot with its share of threads.
type Device struct {
	id      int
	threads int
	private bool // buffers of this device are for its executables only
}

// ID is the device index.
func (d *Device) ID() int { return d.id }

// Threads is the device's share of worker threads.
func (d *Device) Threads() int { return d.threads }

func (d *Device) String() string {
	if d == nil {
		return "no CPU device"
	}
	return fmt.Sprintf("cpu:%d(%d threads)", d.id, d.threads)
}

// New returns a CPU backend. Threads are divided among devices as evenly as
// possible; every device gets at least one.
func New(o Options) *Backend {
	if o.Devices <= 0 {
		o.Devices = 1
	}
	if o.Threads <= 0 {
		o.Threads = runtime.GOMAXPROCS(0)
	}
	b := &Backend{private: o.PrivateMemory}
	for i := 0; i < o.Devices; i++ {
		t := o.Threads / o.Devices
		if i < o.Threads%o.Devices {
			t++
		}
		if t < 1 {
			t = 1
		}
		b.devices = append(b.devices, &Device{id: i, threads: t, private: o.PrivateMemory})
	}
	return b
}

// SharedMemory reports whether every device reads every buffer, so that
// replicas of the mirrored strategy share one copy of the weights: true
// unless the backend was made with PrivateMemory.
func (b *Backend) SharedMemory() bool { return !b.private }

// Name is "cpu".
func (b *Backend) Name() string { return "cpu" }

// Devices lists the replica slots.
func (b *Backend) Devices() []backend.Device {
	out := make([]backend.Device, len(b.devices))
	for i, d := range b.devices {
		out[i] = d
	}
	return out
}

// Buffer is a CPU tensor: host memory owned by the backend.
type Buffer struct {
	t   *tensor.Tensor
	dev *Device
}

// DType is the element type.
func (b *Buffer) DType() tensor.DType { return b.t.DType() }

// Shape is the buffer's shape.
func (b *Buffer) Shape() []int { return b.t.Shape() }

// Device is where the buffer lives.
func (b *Buffer) Device() backend.Device { return b.dev }

// Tensor exposes the host tensor behind a CPU buffer. Only code that knows it
// runs on the CPU backend (its own tests, the CPU all-reduce) may use it.
func (b *Buffer) Tensor() *tensor.Tensor { return b.t }

// Wrap makes a buffer over t without copying. The caller must not change t
// while the buffer is in use.
func Wrap(t *tensor.Tensor, d backend.Device) *Buffer {
	dev, _ := d.(*Device)
	return &Buffer{t: t, dev: dev}
}

func (b *Backend) device(d backend.Device) (*Device, error) {
	dev, ok := d.(*Device)
	if !ok {
		return nil, fmt.Errorf("cpu backend: device %v is not a CPU device", d)
	}
	for _, mine := range b.devices {
		if mine == dev {
			return dev, nil
		}
	}
	return nil, fmt.Errorf("cpu backend: device %v belongs to another backend", d)
}

// Upload copies t into a new buffer on d.
func (b *Backend) Upload(t *tensor.Tensor, d backend.Device) (backend.Buffer, error) {
	dev, err := b.device(d)
	if err != nil {
		return nil, err
	}
	return &Buffer{t: t.Clone(), dev: dev}, nil
}

// Overwrite copies t into dst, a buffer of the same dtype and shape.
func (b *Backend) Overwrite(dst backend.Buffer, t *tensor.Tensor) error {
	cb, ok := dst.(*Buffer)
	if !ok {
		return fmt.Errorf("cpu backend: buffer %T is not a CPU buffer", dst)
	}
	if cb.t.DType() != t.DType() || !tensor.SameShape(cb.t.Shape(), t.Shape()) {
		return fmt.Errorf("cpu backend: overwrite of a %v %v buffer with a %v %v tensor", cb.t.DType(), cb.t.Shape(), t.DType(), t.Shape())
	}
	cb.t.CopyFrom(t)
	return nil
}

// Copy copies src into dst, buffers of the same dtype and shape on any of
// the backend's devices (backend.Copier).
func (b *Backend) Copy(dst, src backend.Buffer) error {
	d, ok := dst.(*Buffer)
	s, ok2 := src.(*Buffer)
	if !ok || !ok2 {
		return fmt.Errorf("cpu backend: copy from %T to %T: not CPU buffers", src, dst)
	}
	if d.t.DType() != s.t.DType() || !tensor.SameShape(d.t.Shape(), s.t.Shape()) {
		return fmt.Errorf("cpu backend: copy of a %v %v buffer into a %v %v buffer", s.t.DType(), s.t.Shape(), d.t.DType(), d.t.Shape())
	}
	d.t.CopyFrom(s.t)
	return nil
}

// Download copies a buffer to a new host tensor.
func (b *Backend) Download(buf backend.Buffer) (*tensor.Tensor, error) {
	cb, ok := buf.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("cpu backend: buffer %T is not a CPU buffer", buf)
	}
	return cb.t.Clone(), nil
}

// Compile plans m's graph for d.
func (b *Backend) Compile(m *graph.Model, d backend.Device, o backend.CompileOptions) (backend.Executable, error) {
	dev, err := b.device(d)
	if err != nil {
		return nil, err
	}
	return compile(m, dev, o)
}
