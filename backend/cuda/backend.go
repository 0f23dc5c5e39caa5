package cuda

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Backend is the CUDA backend over a set of Devices: GPUs (Open, in the
// cuda build) or the host emulator (package cudaemu, for tests).
type Backend struct {
	name    string
	devices []*Device
	// host folds constants when graphs are planned.
	host backend.Backend
	// closeFn releases what the devices share (the driver's contexts).
	closeFn func() error
	mu      sync.Mutex
	closed  bool
}

// Device is one place buffers live and executables run: a stream on a GPU
// (or on the emulator), with its own caching allocator. Two devices may
// share a GPU (two streams); the mirrored strategy runs a replica on each.
type Device struct {
	id    int
	hw    Hardware
	alloc *allocator
	// graphs lets executables capture their steps into CUDA graphs;
	// captured and launched count them.
	graphs             bool
	captured, launched atomic.Int64

	mu sync.Mutex
	// pending are the plans that ran since the last synchronisation, whose
	// status words are read at the next one; spare is the other list of
	// the two that checkStatus swaps (so that neither allocates).
	pending, spare []*devPlan
	// arena holds the plans' status words (status.go).
	arena statusArena
}

// BackendOptions configure NewBackend.
type BackendOptions struct {
	// Name is the backend's name ("cuda", "cuda-emu").
	Name string
	// Graphs lets executables replay a step's work as one captured graph
	// once its shapes and buffers repeat (where the hardware can).
	Graphs bool
	// Close, when set, runs after every device is closed.
	Close func() error
}

// NewBackend makes a backend with one Device per Hardware.
func NewBackend(hws []Hardware, o BackendOptions) *Backend {
	b := &Backend{name: o.Name, host: cpu.New(cpu.Options{Threads: 1}), closeFn: o.Close}
	for i, hw := range hws {
		d := &Device{id: i, hw: hw, graphs: o.Graphs}
		d.alloc = newAllocator(hw.MemAlloc, hw.MemFree)
		b.devices = append(b.devices, d)
	}
	return b
}

// Name is the name the backend was made with.
func (b *Backend) Name() string { return b.name }

// Devices lists the devices.
func (b *Backend) Devices() []backend.Device {
	out := make([]backend.Device, len(b.devices))
	for i, d := range b.devices {
		out[i] = d
	}
	return out
}

// Close frees every device's memory and stream. Buffers and executables
// of a closed backend must not be used.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, d := range b.devices {
		keep(d.hw.Do(func() error {
			// Wait for the device before its memory goes.
			keep(d.hw.Read(nil, 0))
			return d.alloc.close()
		}))
		keep(d.hw.Close())
	}
	if b.closeFn != nil {
		keep(b.closeFn())
	}
	return first
}

func (b *Backend) device(d backend.Device) (*Device, error) {
	dev, ok := d.(*Device)
	if !ok {
		return nil, fmt.Errorf("%s backend: device %v is not a CUDA device", b.name, d)
	}
	for _, mine := range b.devices {
		if mine == dev {
			return dev, nil
		}
	}
	return nil, fmt.Errorf("%s backend: device %v belongs to another backend", b.name, d)
}

// ID is the device's index among the backend's devices.
func (d *Device) ID() int { return d.id }

func (d *Device) String() string { return fmt.Sprintf("%d:%v", d.id, d.hw) }

// GraphStats counts the CUDA graphs the device's executables captured
// and launched.
type GraphStats struct{ Captured, Launched int64 }

// Graphs reports how many graphs the device's executables captured and
// launched.
func (d *Device) Graphs() GraphStats {
	return GraphStats{Captured: d.captured.Load(), Launched: d.launched.Load()}
}

// Stats reports the device's allocator counts.
func (d *Device) Stats() AllocStats { return d.alloc.snapshot() }

// Trim frees the memory the allocator keeps cached.
func (d *Device) Trim() error { return d.hw.Do(d.alloc.trim) }

// Do runs f with the device's stream (inside Hardware.Do): what the kernel
// tests use to launch on it. The Stream is valid only during the call.
func (d *Device) Do(f func(s Stream) error) error {
	return d.hw.Do(func() error { return f(d.hw) })
}

// ---- buffers ----

// Buffer is a tensor in device memory: one the program allocated (Upload,
// NewBuffer), or a view of an executable's storage that Run returned
// (valid until that executable's next Run).
type Buffer struct {
	dev   *Device
	ptr   Ptr
	bytes int64
	dt    tensor.DType
	shape []int
	// owned buffers return their memory on Free or when dropped; views
	// keep their executable's plan alive instead.
	owned bool
	freed bool
	owner any
	// cleanup returns the memory when an owned buffer is dropped without
	// Free.
	cleanup runtime.Cleanup
}

// DType is the element type.
func (b *Buffer) DType() tensor.DType { return b.dt }

// Shape is the buffer's shape.
func (b *Buffer) Shape() []int { return b.shape }

// Device is where the buffer lives.
func (b *Buffer) Device() backend.Device { return b.dev }

// Ptr is the buffer's device address (for the executor and tests).
func (b *Buffer) Ptr() Ptr { return b.ptr }

// Free returns an owned buffer's memory to the device's cache now (a
// buffer the program drops is returned when the garbage collector finds
// it); for a view of an executable's storage it does nothing.
func (b *Buffer) Free() error {
	if b.freed || !b.owned {
		return nil
	}
	b.freed = true
	b.cleanup.Stop()
	return b.dev.alloc.release(b.ptr)
}

// deviceDType reports whether tensors of dt can live on a device: any
// dtype with a fixed element size whose host data is a flat slice.
func deviceDType(dt tensor.DType) error {
	switch dt {
	case tensor.Float32, tensor.Float64, tensor.Int64, tensor.Int32, tensor.Int16, tensor.Int8,
		tensor.Uint64, tensor.Uint32, tensor.Uint16, tensor.Uint8, tensor.Bool, tensor.Float16, tensor.BFloat16:
		return nil
	}
	return &tensor.UnsupportedDTypeError{DType: dt.String() + " (on a CUDA device)"}
}

// NewBuffer allocates an uninitialised buffer.
func (b *Backend) NewBuffer(dt tensor.DType, shape []int, d backend.Device) (*Buffer, error) {
	dev, err := b.device(d)
	if err != nil {
		return nil, err
	}
	return dev.newBuffer(dt, shape)
}

func (d *Device) newBuffer(dt tensor.DType, shape []int) (*Buffer, error) {
	var buf *Buffer
	err := d.hw.Do(func() error {
		var err error
		buf, err = d.newBufferIn(dt, shape)
		return err
	})
	return buf, err
}

// newBufferIn is newBuffer inside Do.
func (d *Device) newBufferIn(dt tensor.DType, shape []int) (*Buffer, error) {
	if err := deviceDType(dt); err != nil {
		return nil, err
	}
	n, ok := tensor.MulDims(shape)
	if !ok {
		return nil, fmt.Errorf("cuda backend: shape %v has a negative dim or too many elements", shape)
	}
	if n > 1<<40 {
		return nil, fmt.Errorf("cuda backend: shape %v has more than 2^40 elements", shape)
	}
	bytes := n * int64(dt.Size())
	p, err := d.alloc.alloc((bytes + 7) &^ 7)
	if err != nil {
		return nil, err
	}
	buf := &Buffer{dev: d, ptr: p, bytes: bytes, dt: dt, shape: append([]int(nil), shape...), owned: true}
	alloc := d.alloc
	buf.cleanup = runtime.AddCleanup(buf, func(p Ptr) { alloc.release(p) }, p)
	return buf, nil
}

func (b *Backend) buffer(x backend.Buffer) (*Buffer, error) {
	cb, ok := x.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("%s backend: buffer %T is not a CUDA buffer", b.name, x)
	}
	if cb.freed {
		return nil, fmt.Errorf("%s backend: buffer was freed", b.name)
	}
	if _, err := b.device(cb.dev); err != nil {
		return nil, err
	}
	return cb, nil
}

// ---- transfers ----

// Upload copies t into a new buffer on d. It returns once t's data has
// been staged; the copy itself runs in the stream's order.
func (b *Backend) Upload(t *tensor.Tensor, d backend.Device) (backend.Buffer, error) {
	dev, err := b.device(d)
	if err != nil {
		return nil, err
	}
	return dev.upload(t)
}

func (d *Device) upload(t *tensor.Tensor) (*Buffer, error) {
	buf, err := d.newBuffer(t.DType(), t.Shape())
	if err != nil {
		return nil, err
	}
	if err := d.write(buf.ptr, t); err != nil {
		buf.Free()
		return nil, err
	}
	return buf, nil
}

// Overwrite copies t into dst, a buffer of the same dtype and shape (in the
// stream's order: after the work that reads dst's old contents).
func (b *Backend) Overwrite(dst backend.Buffer, t *tensor.Tensor) error {
	cb, err := b.buffer(dst)
	if err != nil {
		return err
	}
	if cb.dt != t.DType() || !tensor.SameShape(cb.shape, t.Shape()) {
		return fmt.Errorf("%s backend: overwrite of a %v %v buffer with a %v %v tensor", b.name, cb.dt, cb.shape, t.DType(), t.Shape())
	}
	return cb.dev.write(cb.ptr, t)
}

func (d *Device) write(p Ptr, t *tensor.Tensor) error {
	raw, err := HostBytes(t)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	return d.hw.Do(func() error { return d.hw.Write(p, raw) })
}

// Download copies a buffer to a new host tensor. It waits for the work
// queued on the device before it: this is where a step meets the host.
// There the status words of the executables that ran since the last such
// meeting are read too: bad data a kernel found (a label out of range, a
// step below 1) is returned as the error, naming the node.
func (b *Backend) Download(x backend.Buffer) (*tensor.Tensor, error) {
	cb, err := b.buffer(x)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, cb.bytes)
	err = cb.dev.hw.Do(func() error {
		if err := cb.dev.hw.Read(raw, cb.ptr); err != nil {
			return err
		}
		return cb.dev.checkStatus()
	})
	if err != nil {
		return nil, err
	}
	return FromHostBytes(cb.dt, cb.shape, raw)
}

// Sync waits for every device's work and reads the pending status words,
// as a Download does.
func (b *Backend) Sync() error {
	for _, d := range b.devices {
		if err := d.hw.Do(func() error {
			if err := d.hw.Read(nil, 0); err != nil {
				return err
			}
			return d.checkStatus()
		}); err != nil {
			return err
		}
	}
	return nil
}

// Copy copies src into dst, a buffer of the same dtype and shape, on the
// device or between devices (streams of one GPU, or two GPUs), without the
// host. It implements backend.Copier.
func (b *Backend) Copy(dst, src backend.Buffer) error {
	d, err := b.buffer(dst)
	if err != nil {
		return err
	}
	s, err := b.buffer(src)
	if err != nil {
		return err
	}
	if d.dt != s.dt || !tensor.SameShape(d.shape, s.shape) {
		return fmt.Errorf("%s backend: copy of a %v %v buffer into a %v %v one", b.name, s.dt, s.shape, d.dt, d.shape)
	}
	if d.bytes == 0 || d.ptr == s.ptr {
		return nil
	}
	if d.dev == s.dev {
		return d.dev.hw.Do(func() error { return d.dev.hw.Copy(d.ptr, s.ptr, d.bytes) })
	}
	return d.dev.hw.CopyPeer(d.ptr, s.dev.hw, s.ptr, d.bytes)
}

// checkStatus reads the status words of the plans that ran since the last
// check (inside Do, after the stream has been waited for) and clears them.
func (d *Device) checkStatus() error {
	d.mu.Lock()
	pending := d.pending
	d.pending, d.spare = d.spare, nil
	for _, dp := range pending {
		dp.pendingMark = false
	}
	d.mu.Unlock()
	var first error
	var arena []byte
	for _, dp := range pending {
		var words []byte
		if dp.mem.arenaN > 0 {
			if arena == nil {
				var err error
				if arena, err = d.readArena(); err != nil {
					return err
				}
			}
			words = arena[4*dp.mem.arenaOff : 4*(dp.mem.arenaOff+dp.mem.arenaN)]
		}
		if err := dp.readStatus(words); err != nil && first == nil {
			first = err
		}
	}
	clear(pending)
	d.mu.Lock()
	d.spare = pending[:0]
	d.mu.Unlock()
	return first
}

func (d *Device) addPending(dp *devPlan) {
	d.mu.Lock()
	if !dp.pendingMark {
		dp.pendingMark = true
		d.pending = append(d.pending, dp)
	}
	d.mu.Unlock()
}

// ---- raw memory for the kernel tests ----

// Alloc returns device memory of n bytes (rounded up to 8) from the cache.
func (d *Device) Alloc(n int64) Ptr {
	var p Ptr
	err := d.hw.Do(func() error {
		var err error
		p, err = d.alloc.alloc((n + 7) &^ 7)
		return err
	})
	if err != nil {
		panic(err)
	}
	return p
}

// Free returns memory from Alloc.
func (d *Device) Free(p Ptr) {
	if err := d.alloc.release(p); err != nil {
		panic(err)
	}
}

// Write copies b to p; Read waits for the device and copies from p.
func (d *Device) Write(p Ptr, b []byte) {
	if len(b) == 0 {
		return
	}
	if err := d.hw.Do(func() error { return d.hw.Write(p, b) }); err != nil {
		panic(err)
	}
}

func (d *Device) Read(p Ptr, b []byte) {
	if err := d.hw.Do(func() error { return d.hw.Read(b, p) }); err != nil {
		panic(err)
	}
}

// Compile plans m's graph for d (see exec.go).
func (b *Backend) Compile(m *graph.Model, d backend.Device, o backend.CompileOptions) (backend.Executable, error) {
	dev, err := b.device(d)
	if err != nil {
		return nil, err
	}
	if o.Collective != nil {
		return nil, fmt.Errorf("%s backend: replica groups (sync BatchNorm's AllReduceSum) are not implemented on CUDA; use per-replica BatchNorm", b.name)
	}
	return compile(b, m, dev, o)
}
