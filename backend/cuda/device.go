//go:build cuda && cgo

package cuda

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cuda/internal/cudalib"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Built reports whether this binary has the device layer (the cuda tag).
const Built = true

func init() {
	backend.Register("cuda", func(opts map[string]string) (backend.Backend, error) {
		var o Options
		for k, v := range opts {
			switch k {
			case "devices", "threads":
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return nil, fmt.Errorf("cuda backend: option %s=%q: expected a non-negative integer", k, v)
				}
				if k == "devices" {
					o.Devices = n
				}
			case "math":
				switch v {
				case "default", "pedantic", "tf32":
					o.Math = v
				default:
					return nil, fmt.Errorf("cuda backend: option math=%q: expected default, pedantic or tf32", v)
				}
			case "pinned":
				o.Pinned = v == "1" || v == "true"
			default:
				return nil, fmt.Errorf("cuda backend: unknown option %q (have devices, math, pinned)", k)
			}
		}
		return Open(o)
	})
}

// Options configure the CUDA backend.
type Options struct {
	// Devices is the number of GPUs to use, from ordinal 0 (0: all).
	Devices int
	// Math is cuBLAS's mode for float32 products: "default" (float32 in
	// float32, cuBLAS's CUBLAS_DEFAULT_MATH), "pedantic" (no reduced
	// precision anywhere) or "tf32" (TF32 tensor cores: faster, inputs
	// rounded to 10 mantissa bits).
	Math string
	// Pinned stages transfers through page-locked host memory.
	Pinned bool
}

// Backend is the CUDA backend: one Device per GPU.
type Backend struct {
	devices []*Device
	drv     *cudalib.Driver
}

// Device is one GPU: its primary context, one stream that all its work
// goes to, a cuBLAS handle, loaded modules and the caching allocator.
type Device struct {
	id    int
	name  string
	arch  string // compute_XY
	dev   cudalib.Dev
	ctx   cudalib.Context
	strm  cudalib.Stream
	blas  cudalib.Handle
	math  int
	alloc *allocator

	// mu serialises the device's use; calls run with the OS thread locked
	// and the context current (do).
	mu     sync.Mutex
	args   *cudalib.Args
	mods   []*cudalib.Module   // by Module.ID (nil: not loaded)
	fns    []*cudalib.Function // by Func.ID
	pinned unsafe.Pointer
	pinLen int64
	usePin bool
	closed bool
}

// Open initialises the driver and the devices.
func Open(o Options) (*Backend, error) {
	drv, err := cudalib.LoadDriver()
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %w: %v", ErrNoDevice, err)
	}
	n, err := drv.DeviceCount()
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %w: %v", ErrNoDevice, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("cuda backend: %w: the driver (%s, CUDA %d.%d) sees no device", ErrNoDevice, drv.Path, drv.Version/1000, drv.Version%1000/10)
	}
	if o.Devices > n {
		return nil, fmt.Errorf("cuda backend: %d devices asked for, %d present", o.Devices, n)
	}
	if o.Devices == 0 {
		o.Devices = n
	}
	math := cudalib.DefaultMath
	switch o.Math {
	case "pedantic":
		math = cudalib.PedanticMath
	case "tf32":
		math = cudalib.TF32Math
	}
	b := &Backend{drv: drv}
	for i := 0; i < o.Devices; i++ {
		d, err := openDevice(i, math, o.Pinned)
		if err != nil {
			b.Close()
			return nil, err
		}
		b.devices = append(b.devices, d)
	}
	return b, nil
}

func openDevice(i, math int, pinned bool) (*Device, error) {
	drv, _ := cudalib.LoadDriver()
	dev, err := drv.Device(i)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: device %d: %v", i, err)
	}
	major, err := dev.Attr(cudalib.AttrComputeMajor)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: device %d: %v", i, err)
	}
	minor, _ := dev.Attr(cudalib.AttrComputeMinor)
	d := &Device{id: i, name: dev.Name(), dev: dev, math: math, usePin: pinned,
		arch: fmt.Sprintf("compute_%d%d", major, minor), args: cudalib.NewArgs()}
	if d.ctx, err = dev.RetainPrimary(); err != nil {
		return nil, fmt.Errorf("cuda backend: device %d: %v", i, err)
	}
	err = d.do(func() error {
		var err error
		if d.strm, err = cudalib.NewStream(); err != nil {
			return err
		}
		d.alloc = newAllocator(func(n int64) (Ptr, error) {
			p, err := cudalib.MemAlloc(n)
			var ce *cudalib.Error
			if errors.As(err, &ce) && ce.Code == 2 { // CUDA_ERROR_OUT_OF_MEMORY
				return 0, fmt.Errorf("%v: %w", err, errOutOfMemory)
			}
			return Ptr(p), err
		}, func(p Ptr) error { return cudalib.MemFree(uint64(p)) })
		return nil
	})
	if err != nil {
		dev.ReleasePrimary()
		return nil, fmt.Errorf("cuda backend: device %d: %v", i, err)
	}
	return d, nil
}

// do runs f with the OS thread locked and the device's context current on
// it (CUDA contexts are per thread; goroutines move between threads).
func (d *Device) do(f func() error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return fmt.Errorf("cuda backend: device %d is closed", d.id)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := d.ctx.SetCurrent(); err != nil {
		return err
	}
	return f()
}

// Do runs f with the device current: everything that launches work (an
// executor's run, the tests) goes through it. The Stream f receives is valid
// only during the call.
func (d *Device) Do(f func(s Stream) error) error {
	return d.do(func() error { return f(d) })
}

// ID is the device's ordinal.
func (d *Device) ID() int { return d.id }

func (d *Device) String() string { return fmt.Sprintf("cuda:%d(%s, %s)", d.id, d.name, d.arch) }

// Stats reports the device's allocator counts.
func (d *Device) Stats() AllocStats { return d.alloc.snapshot() }

// Trim frees the memory the allocator keeps cached.
func (d *Device) Trim() error { return d.do(d.alloc.trim) }

func (d *Device) close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	keep(d.do(func() error {
		for _, m := range d.mods {
			if m != nil {
				keep(m.Unload())
			}
		}
		if d.blas != (cudalib.Handle{}) {
			keep(d.blas.Destroy())
		}
		if d.alloc != nil {
			keep(d.alloc.close())
		}
		if d.pinned != nil {
			keep(cudalib.MemFreeHost(d.pinned))
		}
		keep(d.strm.Destroy())
		return nil
	}))
	d.mu.Lock()
	d.closed = true
	d.args.Free()
	d.mu.Unlock()
	keep(d.dev.ReleasePrimary())
	return first
}

// ---- backend.Backend ----

// Name is "cuda".
func (b *Backend) Name() string { return "cuda" }

// Devices lists the GPUs in use.
func (b *Backend) Devices() []backend.Device {
	out := make([]backend.Device, len(b.devices))
	for i, d := range b.devices {
		out[i] = d
	}
	return out
}

// Close frees every device's memory, modules, stream and context. Buffers
// of a closed backend must not be used.
func (b *Backend) Close() error {
	var first error
	for _, d := range b.devices {
		if err := d.close(); err != nil && first == nil {
			first = err
		}
	}
	b.devices = nil
	return first
}

func (b *Backend) device(d backend.Device) (*Device, error) {
	dev, ok := d.(*Device)
	if !ok {
		return nil, fmt.Errorf("cuda backend: device %v is not a CUDA device", d)
	}
	for _, mine := range b.devices {
		if mine == dev {
			return dev, nil
		}
	}
	return nil, fmt.Errorf("cuda backend: device %v belongs to another backend", d)
}

// Compile is not available yet: the kernels, memory and transfers are; the
// planner that runs a graph on them is not part of this package yet.
func (b *Backend) Compile(m *graph.Model, d backend.Device, o backend.CompileOptions) (backend.Executable, error) {
	return nil, fmt.Errorf("cuda backend: compiling graphs is not implemented yet (kernels, memory and transfers are)")
}

// ---- buffers and transfers ----

// Buffer is a tensor in device memory.
type Buffer struct {
	dev   *Device
	ptr   Ptr
	bytes int64
	dt    tensor.DType
	shape []int
	freed bool
	// cleanup returns the memory when the buffer is dropped without Free.
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

// Free returns the buffer's memory to the device's cache now; a buffer the
// program drops is returned when the garbage collector finds it.
func (b *Buffer) Free() error {
	if b.freed {
		return nil
	}
	b.freed = true
	b.cleanup.Stop()
	return b.dev.alloc.release(b.ptr)
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
	if _, ok := suffixOf(dt); !ok && dt != tensor.Int8 && dt != tensor.Float16 && dt != tensor.BFloat16 {
		return nil, fmt.Errorf("cuda backend: tensors of %v cannot live on a device", dt)
	}
	n := tensor.NumElements(shape)
	for _, s := range shape {
		if s < 0 {
			return nil, fmt.Errorf("cuda backend: shape %v has a negative dim", shape)
		}
	}
	bytes := int64(n) * int64(dt.Size())
	var p Ptr
	err := d.do(func() error {
		var err error
		p, err = d.alloc.alloc((bytes + 7) &^ 7)
		return err
	})
	if err != nil {
		return nil, err
	}
	buf := &Buffer{dev: d, ptr: p, bytes: bytes, dt: dt, shape: append([]int(nil), shape...)}
	alloc := d.alloc
	buf.cleanup = runtime.AddCleanup(buf, func(p Ptr) { alloc.release(p) }, p)
	return buf, nil
}

func (b *Backend) buffer(x backend.Buffer) (*Buffer, error) {
	cb, ok := x.(*Buffer)
	if !ok {
		return nil, fmt.Errorf("cuda backend: buffer %T is not a CUDA buffer", x)
	}
	if cb.freed {
		return nil, fmt.Errorf("cuda backend: buffer was freed")
	}
	if _, err := b.device(cb.dev); err != nil {
		return nil, err
	}
	return cb, nil
}

// Upload copies t into a new buffer on d.
func (b *Backend) Upload(t *tensor.Tensor, d backend.Device) (backend.Buffer, error) {
	dev, err := b.device(d)
	if err != nil {
		return nil, err
	}
	buf, err := dev.newBuffer(t.DType(), t.Shape())
	if err != nil {
		return nil, err
	}
	if err := dev.write(buf, t); err != nil {
		buf.Free()
		return nil, err
	}
	return buf, nil
}

// Overwrite copies t into dst, a buffer of the same dtype and shape.
func (b *Backend) Overwrite(dst backend.Buffer, t *tensor.Tensor) error {
	cb, err := b.buffer(dst)
	if err != nil {
		return err
	}
	if cb.dt != t.DType() || !tensor.SameShape(cb.shape, t.Shape()) {
		return fmt.Errorf("cuda backend: overwrite of a %v %v buffer with a %v %v tensor", cb.dt, cb.shape, t.DType(), t.Shape())
	}
	return cb.dev.write(cb, t)
}

// write copies t's bytes into buf. From pageable memory the copy returns
// once the driver has staged the data (no device synchronisation); with
// pinned staging it waits for the copy before reusing the staging buffer.
func (d *Device) write(buf *Buffer, t *tensor.Tensor) error {
	raw, err := HostBytes(t)
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return nil
	}
	return d.do(func() error {
		if d.usePin {
			if err := d.stage(int64(len(raw))); err != nil {
				return err
			}
			cudalib.HostCopy(d.pinned, unsafe.Pointer(&raw[0]), int64(len(raw)))
			if err := cudalib.HtoD(uint64(buf.ptr), d.pinned, int64(len(raw)), d.strm); err != nil {
				return err
			}
			return d.strm.Sync()
		}
		return cudalib.HtoD(uint64(buf.ptr), unsafe.Pointer(&raw[0]), int64(len(raw)), d.strm)
	})
}

// stage grows the pinned staging buffer to n bytes.
func (d *Device) stage(n int64) error {
	if n <= d.pinLen {
		return nil
	}
	if d.pinned != nil {
		if err := cudalib.MemFreeHost(d.pinned); err != nil {
			return err
		}
		d.pinned, d.pinLen = nil, 0
	}
	p, err := cudalib.MemAllocHost(n)
	if err != nil {
		return err
	}
	d.pinned, d.pinLen = p, n
	return nil
}

// Download copies a buffer to a new host tensor. It waits for the work
// queued on the device before it: this is where a step meets the host.
func (b *Backend) Download(x backend.Buffer) (*tensor.Tensor, error) {
	cb, err := b.buffer(x)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, cb.bytes)
	if err := cb.dev.read(cb.ptr, raw); err != nil {
		return nil, err
	}
	return FromHostBytes(cb.dt, cb.shape, raw)
}

func (d *Device) read(p Ptr, raw []byte) error {
	if len(raw) == 0 {
		return d.do(d.strm.Sync)
	}
	return d.do(func() error {
		if d.usePin {
			if err := d.stage(int64(len(raw))); err != nil {
				return err
			}
			if err := cudalib.DtoH(d.pinned, uint64(p), int64(len(raw)), d.strm); err != nil {
				return err
			}
			if err := d.strm.Sync(); err != nil {
				return err
			}
			cudalib.HostCopy(unsafe.Pointer(&raw[0]), d.pinned, int64(len(raw)))
			return nil
		}
		if err := cudalib.DtoH(unsafe.Pointer(&raw[0]), uint64(p), int64(len(raw)), d.strm); err != nil {
			return err
		}
		return d.strm.Sync()
	})
}

// CopyBuffer copies src into dst (same dtype and shape, same device) on
// the device, without the host.
func (b *Backend) CopyBuffer(dst, src backend.Buffer) error {
	d, err := b.buffer(dst)
	if err != nil {
		return err
	}
	s, err := b.buffer(src)
	if err != nil {
		return err
	}
	if d.dev != s.dev {
		return fmt.Errorf("cuda backend: copy between devices %v and %v", d.dev, s.dev)
	}
	if d.dt != s.dt || !tensor.SameShape(d.shape, s.shape) {
		return fmt.Errorf("cuda backend: copy of a %v %v buffer into a %v %v one", s.dt, s.shape, d.dt, d.shape)
	}
	return d.dev.do(func() error { return d.dev.Copy(d.ptr, s.ptr, d.bytes) })
}

// ---- Stream: the device as the kernels see it (context current) ----

// ptxCache holds compiled PTX by source, options and architecture, for
// the process's lifetime: each module is compiled once.
var ptxCache sync.Map

func (d *Device) module(m *Module) (*cudalib.Module, error) {
	if m.ID < len(d.mods) && d.mods[m.ID] != nil {
		return d.mods[m.ID], nil
	}
	nv, err := cudalib.LoadNVRTC()
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %v", err)
	}
	src := m.Source()
	// The device's own architecture first; an NVRTC older than the device
	// does not know it, and the driver JIT-compiles older PTX for it.
	var ptx []byte
	var firstErr error
	for _, arch := range []string{d.arch, "compute_90", "compute_80", "compute_75"} {
		key := sha256.Sum256([]byte(src + "\x00" + strings.Join(PTXOptions(arch), " ")))
		if v, ok := ptxCache.Load(key); ok {
			ptx = v.([]byte)
			break
		}
		ptx, err = nv.Compile(src, m.Name+".cu", PTXOptions(arch))
		if err == nil {
			ptxCache.Store(key, ptx)
			break
		}
		var ce *cudalib.CompileError
		if errors.As(err, &ce) && !strings.Contains(ce.Err, "INVALID_OPTION") && !strings.Contains(ce.Log, "arch") {
			return nil, fmt.Errorf("cuda backend: module %s: %v", m.Name, err)
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if ptx == nil {
		return nil, fmt.Errorf("cuda backend: module %s: %v", m.Name, firstErr)
	}
	mod, err := cudalib.ModuleLoadData(ptx)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: loading module %s: %v", m.Name, err)
	}
	for len(d.mods) <= m.ID {
		d.mods = append(d.mods, nil)
	}
	d.mods[m.ID] = &mod
	return &mod, nil
}

func (d *Device) function(f *Func) (*cudalib.Function, error) {
	if f.ID < len(d.fns) && d.fns[f.ID] != nil {
		return d.fns[f.ID], nil
	}
	mod, err := d.module(f.Mod)
	if err != nil {
		return nil, err
	}
	fn, err := mod.Function(f.Name)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %v", err)
	}
	for len(d.fns) <= f.ID {
		d.fns = append(d.fns, nil)
	}
	d.fns[f.ID] = &fn
	return &fn, nil
}

// Launch enqueues a kernel (inside Do).
func (d *Device) Launch(f *Func, grid, block Dim3, shared int, args []Arg) error {
	if err := CheckArgs(f, args); err != nil {
		return err
	}
	if len(args) > cudalib.MaxArgs {
		return fmt.Errorf("cuda: kernel %s takes %d arguments, more than %d", f.Name, len(args), cudalib.MaxArgs)
	}
	fn, err := d.function(f)
	if err != nil {
		return err
	}
	for i, a := range args {
		d.args.Set(i, a.V)
	}
	if err := cudalib.Launch(*fn, grid.X, max(grid.Y, 1), max(grid.Z, 1), block.X, max(block.Y, 1), max(block.Z, 1), shared, d.strm, d.args); err != nil {
		return fmt.Errorf("cuda: kernel %s: %v", f.Name, err)
	}
	return nil
}

// Gemm runs a row-major product through cuBLAS (see Gemm.Column).
func (d *Device) Gemm(g *Gemm) error {
	if d.blas == (cudalib.Handle{}) {
		lib, err := cudalib.LoadCUBLAS()
		if err != nil {
			return fmt.Errorf("cuda backend: %v", err)
		}
		h, err := lib.Create()
		if err != nil {
			return fmt.Errorf("cuda backend: %v", err)
		}
		if err := h.SetStream(d.strm.Ptr()); err != nil {
			h.Destroy()
			return err
		}
		if err := h.SetMathMode(d.math); err != nil {
			h.Destroy()
			return err
		}
		d.blas = h
	}
	c := g.Column()
	if c.Batch > 1 {
		return d.blas.SgemmStridedBatched(c.TransA, c.TransB, c.M, c.N, c.K, c.Alpha, uint64(c.A), c.LDA, c.StrideA,
			uint64(c.B), c.LDB, c.StrideB, c.Beta, uint64(c.C), c.LDC, c.StrideC, c.Batch)
	}
	return d.blas.Sgemm(c.TransA, c.TransB, c.M, c.N, c.K, c.Alpha, uint64(c.A), c.LDA, uint64(c.B), c.LDB, c.Beta, uint64(c.C), c.LDC)
}

// Memset32 fills n words (inside Do).
func (d *Device) Memset32(p Ptr, v uint32, n int) error {
	return cudalib.MemsetD32(uint64(p), v, int64(n), d.strm)
}

// Copy copies bytes on the device (inside Do).
func (d *Device) Copy(dst, src Ptr, n int64) error {
	if n == 0 || dst == src {
		return nil
	}
	return cudalib.DtoD(uint64(dst), uint64(src), n, d.strm)
}

// ---- raw memory for the kernel tests (testDev) ----

// Alloc returns device memory of n bytes (rounded up to 8) from the cache.
func (d *Device) Alloc(n int64) Ptr {
	var p Ptr
	err := d.do(func() error {
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
	if err := d.do(func() error { return cudalib.HtoD(uint64(p), unsafe.Pointer(&b[0]), int64(len(b)), d.strm) }); err != nil {
		panic(err)
	}
}

func (d *Device) Read(p Ptr, b []byte) {
	if err := d.read(p, b); err != nil {
		panic(err)
	}
}
