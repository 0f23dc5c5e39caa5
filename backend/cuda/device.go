//go:build cuda && cgo

package cuda

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/backend/cuda/internal/cudalib"
)

// Built reports whether this binary has the device layer (the cuda tag).
const Built = true

func init() {
	backend.Register("cuda", func(opts map[string]string) (backend.Backend, error) {
		o, err := ParseOptions(opts)
		if err != nil {
			return nil, err
		}
		return Open(o)
	})
}

// Options configure the CUDA backend.
type Options struct {
	// Devices is the number of devices (replica slots) to offer: device i
	// is a stream of GPU i mod GPUs, with its own memory pool. 0: one per
	// GPU. More devices than GPUs put several streams on one GPU, which is
	// how the mirrored strategy runs N replicas on one GPU.
	Devices int
	// GPUs is the number of GPUs to use, from ordinal 0 (0: all).
	GPUs int
	// Math is cuBLAS's mode for float32 products: "default" (float32 in
	// float32, cuBLAS's CUBLAS_DEFAULT_MATH), "pedantic" (no reduced
	// precision anywhere) or "tf32" (TF32 tensor cores: faster, inputs
	// rounded to 10 mantissa bits).
	Math string
	// Pinned stages transfers through page-locked host memory.
	Pinned bool
	// NoGraphs turns off the replay of a step's work as one CUDA graph.
	NoGraphs bool
}

// ParseOptions reads the backend's string options (backend.Open's).
func ParseOptions(opts map[string]string) (Options, error) {
	var o Options
	for k, v := range opts {
		switch k {
		case "devices", "gpus", "threads":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return o, fmt.Errorf("cuda backend: option %s=%q: expected a non-negative integer", k, v)
			}
			switch k {
			case "devices":
				o.Devices = n
			case "gpus":
				o.GPUs = n
			}
		case "math":
			switch v {
			case "default", "pedantic", "tf32":
				o.Math = v
			default:
				return o, fmt.Errorf("cuda backend: option math=%q: expected default, pedantic or tf32", v)
			}
		case "pinned", "graphs":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("cuda backend: option %s=%q: expected true or false", k, v)
			}
			if k == "pinned" {
				o.Pinned = on
			} else {
				o.NoGraphs = !on
			}
		default:
			return o, fmt.Errorf("cuda backend: unknown option %q (have devices, gpus, math, pinned, graphs)", k)
		}
	}
	return o, nil
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
	if o.GPUs > n {
		return nil, fmt.Errorf("cuda backend: %d GPUs asked for, %d present", o.GPUs, n)
	}
	if o.GPUs == 0 {
		o.GPUs = n
	}
	if o.Devices == 0 {
		o.Devices = o.GPUs
	}
	math := cudalib.DefaultMath
	switch o.Math {
	case "pedantic":
		math = cudalib.PedanticMath
	case "tf32":
		math = cudalib.TF32Math
	}
	var hws []Hardware
	closeAll := func() {
		for _, h := range hws {
			h.Close()
		}
	}
	for i := 0; i < o.Devices; i++ {
		h, err := openGPU(i%o.GPUs, math, o.Pinned)
		if err != nil {
			closeAll()
			return nil, err
		}
		hws = append(hws, h)
	}
	return NewBackend(hws, BackendOptions{Name: "cuda", Graphs: !o.NoGraphs}), nil
}

// gpu is one stream of a GPU: the GPU's primary context (retained once per
// stream), the stream, a cuBLAS handle bound to it, the modules loaded for
// it, an event for ordering copies between streams, and pinned staging.
type gpu struct {
	ordinal int
	name    string
	arch    string // compute_XY
	dev     cudalib.Dev
	ctx     cudalib.Context
	strm    cudalib.Stream
	ev      cudalib.Event
	blas    cudalib.Handle
	hasBLAS bool
	ws      uint64 // cuBLAS workspace
	math    int

	// mu serialises the stream's use; calls run with the OS thread locked
	// and the context current (Do).
	mu     sync.Mutex
	args   *cudalib.Args
	mods   []*cudalib.Module   // by Module.ID (nil: not loaded)
	fns    []*cudalib.Function // by Func.ID
	pinned unsafe.Pointer
	pinLen int64
	usePin bool
	closed bool
}

// blasWorkspace is the cuBLAS workspace each stream gets (what cuBLAS
// recommends for Hopper), so that products allocate nothing, in or out of a
// captured graph.
const blasWorkspace = 32 << 20

func openGPU(i, math int, pinned bool) (*gpu, error) {
	drv, _ := cudalib.LoadDriver()
	dev, err := drv.Device(i)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: GPU %d: %v", i, err)
	}
	major, err := dev.Attr(cudalib.AttrComputeMajor)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: GPU %d: %v", i, err)
	}
	minor, _ := dev.Attr(cudalib.AttrComputeMinor)
	g := &gpu{ordinal: i, name: dev.Name(), dev: dev, math: math, usePin: pinned,
		arch: fmt.Sprintf("compute_%d%d", major, minor), args: cudalib.NewArgs()}
	if g.ctx, err = dev.RetainPrimary(); err != nil {
		return nil, fmt.Errorf("cuda backend: GPU %d: %v", i, err)
	}
	err = g.Do(func() error {
		var err error
		if g.strm, err = cudalib.NewStream(); err != nil {
			return err
		}
		g.ev, err = cudalib.NewEvent()
		return err
	})
	if err != nil {
		dev.ReleasePrimary()
		return nil, fmt.Errorf("cuda backend: GPU %d: %v", i, err)
	}
	return g, nil
}

func (g *gpu) String() string { return fmt.Sprintf("cuda(GPU %d: %s, %s)", g.ordinal, g.name, g.arch) }

// Do runs f with the OS thread locked and the context current on it (CUDA
// contexts are per thread; goroutines move between threads).
func (g *gpu) Do(f func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return fmt.Errorf("cuda backend: %v is closed", g)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := g.ctx.SetCurrent(); err != nil {
		return err
	}
	return f()
}

func (g *gpu) Close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	keep(g.Do(func() error {
		for _, m := range g.mods {
			if m != nil {
				keep(m.Unload())
			}
		}
		if g.hasBLAS {
			keep(g.blas.Destroy())
		}
		if g.ws != 0 {
			keep(cudalib.MemFree(g.ws))
		}
		if g.pinned != nil {
			keep(cudalib.MemFreeHost(g.pinned))
		}
		keep(g.ev.Destroy())
		keep(g.strm.Destroy())
		return nil
	}))
	g.mu.Lock()
	g.closed = true
	g.args.Free()
	g.mu.Unlock()
	keep(g.dev.ReleasePrimary())
	return first
}

func (g *gpu) MemAlloc(n int64) (Ptr, error) {
	p, err := cudalib.MemAlloc(n)
	var ce *cudalib.Error
	if errors.As(err, &ce) && ce.Code == 2 { // CUDA_ERROR_OUT_OF_MEMORY
		return 0, fmt.Errorf("%v: %w", err, ErrOutOfMemory)
	}
	return Ptr(p), err
}

func (g *gpu) MemFree(p Ptr) error { return cudalib.MemFree(uint64(p)) }

// Write copies src to dst. From pageable memory the copy returns once the
// driver has staged the data (no device synchronisation); with pinned
// staging it waits for the copy before reusing the staging buffer.
func (g *gpu) Write(dst Ptr, src []byte) error {
	if len(src) == 0 {
		return nil
	}
	if g.usePin {
		if err := g.stage(int64(len(src))); err != nil {
			return err
		}
		cudalib.HostCopy(g.pinned, unsafe.Pointer(&src[0]), int64(len(src)))
		if err := cudalib.HtoD(uint64(dst), g.pinned, int64(len(src)), g.strm); err != nil {
			return err
		}
		return g.strm.Sync()
	}
	return cudalib.HtoD(uint64(dst), unsafe.Pointer(&src[0]), int64(len(src)), g.strm)
}

// stage grows the pinned staging buffer to n bytes.
func (g *gpu) stage(n int64) error {
	if n <= g.pinLen {
		return nil
	}
	if g.pinned != nil {
		if err := cudalib.MemFreeHost(g.pinned); err != nil {
			return err
		}
		g.pinned, g.pinLen = nil, 0
	}
	p, err := cudalib.MemAllocHost(n)
	if err != nil {
		return err
	}
	g.pinned, g.pinLen = p, n
	return nil
}

// Read waits for the stream and copies src to dst.
func (g *gpu) Read(dst []byte, src Ptr) error {
	if len(dst) == 0 {
		return g.strm.Sync()
	}
	if g.usePin {
		if err := g.stage(int64(len(dst))); err != nil {
			return err
		}
		if err := cudalib.DtoH(g.pinned, uint64(src), int64(len(dst)), g.strm); err != nil {
			return err
		}
		if err := g.strm.Sync(); err != nil {
			return err
		}
		cudalib.HostCopy(unsafe.Pointer(&dst[0]), g.pinned, int64(len(dst)))
		return nil
	}
	if err := cudalib.DtoH(unsafe.Pointer(&dst[0]), uint64(src), int64(len(dst)), g.strm); err != nil {
		return err
	}
	return g.strm.Sync()
}

// CopyPeer orders the copy with events: it waits (on the device) for the
// source stream's work so far, copies on this stream, and makes the source
// stream's later work wait for the copy, so that neither side overwrites
// what the other still reads.
func (g *gpu) CopyPeer(dst Ptr, src Hardware, sp Ptr, n int64) error {
	s, ok := src.(*gpu)
	if !ok {
		return fmt.Errorf("cuda backend: copy from %v, which is not a GPU", src)
	}
	if s == g {
		return g.Do(func() error { return g.Copy(dst, sp, n) })
	}
	if err := s.Do(func() error { return s.ev.Record(s.strm) }); err != nil {
		return err
	}
	err := g.Do(func() error {
		if err := g.strm.Wait(s.ev); err != nil {
			return err
		}
		var err error
		if s.ordinal == g.ordinal {
			err = cudalib.DtoD(uint64(dst), uint64(sp), n, g.strm)
		} else {
			err = cudalib.PeerCopy(uint64(dst), g.ctx, uint64(sp), s.ctx, n, g.strm)
		}
		if err != nil {
			return err
		}
		return g.ev.Record(g.strm)
	})
	if err != nil {
		return err
	}
	return s.Do(func() error { return s.strm.Wait(g.ev) })
}

// ---- capture ----

type gpuGraph struct {
	g     *gpu
	graph cudalib.Graph
}

func (c *gpuGraph) Launch() error  { return c.graph.Launch(c.g.strm) }
func (c *gpuGraph) Destroy() error { return c.graph.Destroy() }

func (g *gpu) BeginCapture() error {
	if err := g.initBLAS(); err != nil {
		return err
	}
	return g.strm.BeginCapture()
}

func (g *gpu) EndCapture() (Captured, error) {
	gr, err := g.strm.EndCapture()
	if err != nil {
		return nil, err
	}
	return &gpuGraph{g: g, graph: gr}, nil
}

// ---- Stream: the device as the kernels see it (context current) ----

// ptxCache holds compiled PTX by source, options and architecture, for
// the process's lifetime: each module is compiled once.
var ptxCache sync.Map

// ptxDir is where compiled PTX is kept between processes (NVRTC takes
// seconds for the larger modules, and every gotrain process compiles what
// it launches): GOTRAIN_PTX_CACHE, else gotrain-ptx in the user's cache
// folder; "" when there is none.
func ptxDir() string {
	if d := os.Getenv("GOTRAIN_PTX_CACHE"); d != "" {
		return d
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "gotrain-ptx")
	}
	return ""
}

// loadPTX finds PTX compiled before, in this process or on disk.
func loadPTX(key [32]byte) []byte {
	if v, ok := ptxCache.Load(key); ok {
		return v.([]byte)
	}
	if dir := ptxDir(); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, hex.EncodeToString(key[:])+".ptx")); err == nil && len(b) > 0 {
			ptxCache.Store(key, b)
			return b
		}
	}
	return nil
}

// storePTX keeps PTX for this process and, written whole and renamed into
// place, for the next ones (failures to write only cost a compile later).
func storePTX(key [32]byte, ptx []byte) {
	ptxCache.Store(key, ptx)
	dir := ptxDir()
	if dir == "" || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	name := filepath.Join(dir, hex.EncodeToString(key[:])+".ptx")
	tmp := fmt.Sprintf("%s.%d.tmp", name, os.Getpid())
	if os.WriteFile(tmp, ptx, 0o644) == nil && os.Rename(tmp, name) == nil {
		return
	}
	os.Remove(tmp)
}

func (g *gpu) module(m *Module) (*cudalib.Module, error) {
	if m.ID < len(g.mods) && g.mods[m.ID] != nil {
		return g.mods[m.ID], nil
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
	for _, arch := range []string{g.arch, "compute_90", "compute_80", "compute_75"} {
		key := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00nvrtc %d.%d", src, strings.Join(PTXOptions(arch), " "), nv.Major, nv.Minor)))
		if ptx = loadPTX(key); ptx != nil {
			break
		}
		ptx, err = nv.Compile(src, m.Name+".cu", PTXOptions(arch))
		if err == nil {
			storePTX(key, ptx)
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
	for len(g.mods) <= m.ID {
		g.mods = append(g.mods, nil)
	}
	g.mods[m.ID] = &mod
	return &mod, nil
}

func (g *gpu) function(f *Func) (*cudalib.Function, error) {
	if f.ID < len(g.fns) && g.fns[f.ID] != nil {
		return g.fns[f.ID], nil
	}
	mod, err := g.module(f.Mod)
	if err != nil {
		return nil, err
	}
	fn, err := mod.Function(f.Name)
	if err != nil {
		return nil, fmt.Errorf("cuda backend: %v", err)
	}
	for len(g.fns) <= f.ID {
		g.fns = append(g.fns, nil)
	}
	g.fns[f.ID] = &fn
	return &fn, nil
}

// Launch enqueues a kernel (inside Do).
func (g *gpu) Launch(f *Func, grid, block Dim3, shared int, args []Arg) error {
	if err := CheckArgs(f, args); err != nil {
		return err
	}
	if len(args) > cudalib.MaxArgs {
		return fmt.Errorf("cuda: kernel %s takes %d arguments, more than %d", f.Name, len(args), cudalib.MaxArgs)
	}
	fn, err := g.function(f)
	if err != nil {
		return err
	}
	for i, a := range args {
		g.args.Set(i, a.V)
	}
	if err := cudalib.Launch(*fn, grid.X, max(grid.Y, 1), max(grid.Z, 1), block.X, max(block.Y, 1), max(block.Z, 1), shared, g.strm, g.args); err != nil {
		return fmt.Errorf("cuda: kernel %s: %v", f.Name, err)
	}
	return nil
}

// initBLAS makes the stream's cuBLAS handle on first use: bound to the
// stream, in the backend's math mode, with a workspace of its own.
func (g *gpu) initBLAS() error {
	if g.hasBLAS {
		return nil
	}
	lib, err := cudalib.LoadCUBLAS()
	if err != nil {
		return fmt.Errorf("cuda backend: %v", err)
	}
	h, err := lib.Create()
	if err != nil {
		return fmt.Errorf("cuda backend: %v", err)
	}
	fail := func(err error) error {
		h.Destroy()
		return err
	}
	if err := h.SetStream(g.strm.Ptr()); err != nil {
		return fail(err)
	}
	if err := h.SetMathMode(g.math); err != nil {
		return fail(err)
	}
	ws, err := cudalib.MemAlloc(blasWorkspace)
	if err != nil {
		return fail(err)
	}
	if ok, err := h.SetWorkspace(ws, blasWorkspace); err != nil || !ok {
		cudalib.MemFree(ws)
		if err != nil {
			return fail(err)
		}
		ws = 0
	}
	g.blas, g.hasBLAS, g.ws = h, true, ws
	return nil
}

// Gemm runs a row-major product through cuBLAS (see Gemm.Column).
func (g *gpu) Gemm(m *Gemm) error {
	if err := g.initBLAS(); err != nil {
		return err
	}
	c := m.Column()
	if c.Batch > 1 {
		return g.blas.SgemmStridedBatched(c.TransA, c.TransB, c.M, c.N, c.K, c.Alpha, uint64(c.A), c.LDA, c.StrideA,
			uint64(c.B), c.LDB, c.StrideB, c.Beta, uint64(c.C), c.LDC, c.StrideC, c.Batch)
	}
	return g.blas.Sgemm(c.TransA, c.TransB, c.M, c.N, c.K, c.Alpha, uint64(c.A), c.LDA, uint64(c.B), c.LDB, c.Beta, uint64(c.C), c.LDC)
}

// Memset32 fills n words (inside Do).
func (g *gpu) Memset32(p Ptr, v uint32, n int) error {
	return cudalib.MemsetD32(uint64(p), v, int64(n), g.strm)
}

// Copy copies bytes on the device (inside Do).
func (g *gpu) Copy(dst, src Ptr, n int64) error {
	if n == 0 || dst == src {
		return nil
	}
	return cudalib.DtoD(uint64(dst), uint64(src), n, g.strm)
}
