//go:build cgo

package cudalib

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// The driver API (libcuda.so.1), loaded like NVRTC and cuBLAS so that a
// binary built with the cuda tag starts, and says why it cannot use a GPU,
// on a machine without one.

// Driver is the loaded, initialised driver API.
type Driver struct {
	Path    string
	Version int // e.g. 13000 for CUDA 13.0
}

// Error is a failed driver call.
type Error struct {
	Call string
	Code int
	Name string // CUDA_ERROR_...
	Desc string
}

func (e *Error) Error() string {
	if e.Desc != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Call, e.Name, e.Desc)
	}
	return fmt.Sprintf("%s: %s", e.Call, e.Name)
}

// NoDevice reports whether the error says there is no usable device
// (CUDA_ERROR_NO_DEVICE, or a driver without its kernel module).
func (e *Error) NoDevice() bool { return e.Code == 100 || e.Code == 999 || e.Code == 35 || e.Code == 3 }

func check(call string, r C.gt_result) error {
	if r == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(r), Name: C.GoString(C.gt_cuErrorName(r)), Desc: C.GoString(C.gt_cuErrorString(r))}
}

var (
	driverOnce sync.Once
	driverLib  *Driver
	driverErr  error
)

// LoadDriver finds libcuda.so.1 (in GOTRAIN_CUDA_LIB_PATH's folders, then
// through the loader) and calls cuInit, once per process.
func LoadDriver() (*Driver, error) {
	driverOnce.Do(func() {
		h, path, err := open("the CUDA driver", candidates([]string{"libcuda.so.1"}, nil, "libcuda"), "")
		if err != nil {
			driverErr = err
			return
		}
		if miss := C.gt_bind_driver(h); miss != nil {
			driverErr = fmt.Errorf("the CUDA driver at %s lacks %s (too old for this build)", path, C.GoString(miss))
			return
		}
		if err := check("cuInit", C.gt_cuInit()); err != nil {
			driverErr = err
			return
		}
		var v C.int
		if err := check("cuDriverGetVersion", C.gt_cuDriverGetVersion(&v)); err != nil {
			driverErr = err
			return
		}
		driverLib = &Driver{Path: path, Version: int(v)}
	})
	return driverLib, driverErr
}

// DeviceCount is the number of devices the driver sees.
func (*Driver) DeviceCount() (int, error) {
	var n C.int
	err := check("cuDeviceGetCount", C.gt_cuDeviceGetCount(&n))
	return int(n), err
}

// Dev is a CUdevice.
type Dev struct{ d C.gt_device }

// Device returns device ordinal i.
func (*Driver) Device(i int) (Dev, error) {
	var d C.gt_device
	err := check("cuDeviceGet", C.gt_cuDeviceGet(&d, C.int(i)))
	return Dev{d}, err
}

// Name is the device's name.
func (d Dev) Name() string {
	buf := make([]byte, 256)
	if C.gt_cuDeviceGetName((*C.char)(unsafe.Pointer(&buf[0])), C.int(len(buf)), d.d) != 0 {
		return "unknown device"
	}
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0])))
}

// Device attributes used.
const (
	AttrComputeMajor = 75
	AttrComputeMinor = 76
)

// Attr reads a device attribute.
func (d Dev) Attr(a int) (int, error) {
	var v C.int
	err := check("cuDeviceGetAttribute", C.gt_cuDeviceGetAttribute(&v, C.int(a), d.d))
	return int(v), err
}

// TotalMem is the device's memory in bytes.
func (d Dev) TotalMem() (int64, error) {
	var n C.size_t
	err := check("cuDeviceTotalMem", C.gt_cuDeviceTotalMem(&n, d.d))
	return int64(n), err
}

// Context is a CUcontext.
type Context struct{ p unsafe.Pointer }

// RetainPrimary retains the device's primary context (the one the runtime
// API, and so cuBLAS, uses too).
func (d Dev) RetainPrimary() (Context, error) {
	var c unsafe.Pointer
	err := check("cuDevicePrimaryCtxRetain", C.gt_cuDevicePrimaryCtxRetain(&c, d.d))
	return Context{c}, err
}

// ReleasePrimary releases it.
func (d Dev) ReleasePrimary() error {
	return check("cuDevicePrimaryCtxRelease", C.gt_cuDevicePrimaryCtxRelease(d.d))
}

// SetCurrent makes c current on the calling OS thread.
func (c Context) SetCurrent() error { return check("cuCtxSetCurrent", C.gt_cuCtxSetCurrent(c.p)) }

// Stream is a CUstream.
type Stream struct{ p unsafe.Pointer }

// Ptr is the CUstream handle (for cuBLAS's SetStream).
func (s Stream) Ptr() unsafe.Pointer { return s.p }

// NewStream creates a non-blocking stream on the current context.
func NewStream() (Stream, error) {
	var s unsafe.Pointer
	err := check("cuStreamCreate", C.gt_cuStreamCreate(&s))
	return Stream{s}, err
}

// Destroy destroys the stream.
func (s Stream) Destroy() error { return check("cuStreamDestroy", C.gt_cuStreamDestroy(s.p)) }

// Sync waits for the stream's work.
func (s Stream) Sync() error { return check("cuStreamSynchronize", C.gt_cuStreamSynchronize(s.p)) }

// MemAlloc allocates device memory.
func MemAlloc(n int64) (uint64, error) {
	var p C.gt_addr
	err := check("cuMemAlloc", C.gt_cuMemAlloc(&p, C.size_t(n)))
	return uint64(p), err
}

// MemFree frees device memory.
func MemFree(p uint64) error { return check("cuMemFree", C.gt_cuMemFree(C.gt_addr(p))) }

// MemAllocHost allocates pinned host memory.
func MemAllocHost(n int64) (unsafe.Pointer, error) {
	var p unsafe.Pointer
	err := check("cuMemAllocHost", C.gt_cuMemAllocHost(&p, C.size_t(n)))
	return p, err
}

// MemFreeHost frees pinned host memory.
func MemFreeHost(p unsafe.Pointer) error { return check("cuMemFreeHost", C.gt_cuMemFreeHost(p)) }

// MemInfo is the free and total device memory of the current context.
func MemInfo() (free, total int64, err error) {
	var f, t C.size_t
	err = check("cuMemGetInfo", C.gt_cuMemGetInfo(&f, &t))
	return int64(f), int64(t), err
}

// HtoD copies n bytes from host memory to the device on s. From pageable
// memory it returns once the source has been staged.
func HtoD(dst uint64, src unsafe.Pointer, n int64, s Stream) error {
	return check("cuMemcpyHtoDAsync", C.gt_cuMemcpyHtoDAsync(C.gt_addr(dst), src, C.size_t(n), s.p))
}

// DtoH copies n bytes from the device to host memory on s. Into pageable
// memory it returns once the copy is done.
func DtoH(dst unsafe.Pointer, src uint64, n int64, s Stream) error {
	return check("cuMemcpyDtoHAsync", C.gt_cuMemcpyDtoHAsync(dst, C.gt_addr(src), C.size_t(n), s.p))
}

// DtoD copies n bytes on the device on s.
func DtoD(dst, src uint64, n int64, s Stream) error {
	return check("cuMemcpyDtoDAsync", C.gt_cuMemcpyDtoDAsync(C.gt_addr(dst), C.gt_addr(src), C.size_t(n), s.p))
}

// MemsetD32 fills n 32-bit words on s.
func MemsetD32(p uint64, v uint32, n int64, s Stream) error {
	return check("cuMemsetD32Async", C.gt_cuMemsetD32Async(C.gt_addr(p), C.uint(v), C.size_t(n), s.p))
}

// HostCopy copies n bytes between host buffers (pinned staging).
func HostCopy(dst, src unsafe.Pointer, n int64) { C.gt_host_copy(dst, src, C.size_t(n)) }

// Module is a CUmodule.
type Module struct{ p unsafe.Pointer }

// ModuleLoadData loads PTX (JIT-compiled by the driver for the device).
func ModuleLoadData(ptx []byte) (Module, error) {
	img := C.CBytes(append(append([]byte{}, ptx...), 0))
	defer C.free(img)
	var m unsafe.Pointer
	err := check("cuModuleLoadData", C.gt_cuModuleLoadData(&m, img))
	return Module{m}, err
}

// Unload unloads the module.
func (m Module) Unload() error { return check("cuModuleUnload", C.gt_cuModuleUnload(m.p)) }

// Function is a CUfunction.
type Function struct{ p unsafe.Pointer }

// Function looks up a kernel.
func (m Module) Function(name string) (Function, error) {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	var f unsafe.Pointer
	err := check("cuModuleGetFunction("+name+")", C.gt_cuModuleGetFunction(&f, m.p, cs))
	return Function{f}, err
}

// Launch enqueues f on s. params is a C array of pointers to the argument
// values (see Args).
func Launch(f Function, gx, gy, gz, bx, by, bz, shared int, s Stream, params *Args) error {
	return check("cuLaunchKernel", C.gt_cuLaunchKernel(f.p, C.uint(gx), C.uint(gy), C.uint(gz), C.uint(bx), C.uint(by), C.uint(bz),
		C.uint(shared), s.p, (*unsafe.Pointer)(params.argv)))
}

// Args is C memory holding up to MaxArgs 8-byte argument slots and the
// array of pointers to them that cuLaunchKernel reads: allocated once, so a
// launch allocates nothing.
type Args struct {
	slots, argv unsafe.Pointer
}

// MaxArgs is the most arguments a kernel may take.
const MaxArgs = 64

// NewArgs allocates the slots; Free releases them.
func NewArgs() *Args {
	a := &Args{slots: C.calloc(MaxArgs, 8), argv: C.calloc(MaxArgs, C.size_t(unsafe.Sizeof(uintptr(0))))}
	for i := 0; i < MaxArgs; i++ {
		*(*unsafe.Pointer)(unsafe.Add(a.argv, i*int(unsafe.Sizeof(uintptr(0))))) = unsafe.Add(a.slots, 8*i)
	}
	return a
}

// Set writes slot i (the value's low bytes are what a 4-byte parameter reads).
func (a *Args) Set(i int, v uint64) { *(*uint64)(unsafe.Add(a.slots, 8*i)) = v }

// Free releases the C memory.
func (a *Args) Free() {
	C.free(a.slots)
	C.free(a.argv)
}

// Event is a CUevent (recorded on a stream, waited on by another).
type Event struct{ p unsafe.Pointer }

// NewEvent creates an event without timing on the current context.
func NewEvent() (Event, error) {
	var e unsafe.Pointer
	err := check("cuEventCreate", C.gt_cuEventCreate(&e))
	return Event{e}, err
}

// Record records the work enqueued on s so far.
func (e Event) Record(s Stream) error { return check("cuEventRecord", C.gt_cuEventRecord(e.p, s.p)) }

// Destroy destroys the event.
func (e Event) Destroy() error { return check("cuEventDestroy", C.gt_cuEventDestroy(e.p)) }

// Wait makes the work enqueued on s from now on wait for the event's last
// recording (without blocking the host).
func (s Stream) Wait(e Event) error {
	return check("cuStreamWaitEvent", C.gt_cuStreamWaitEvent(s.p, e.p))
}

// PeerCopy copies n bytes from src in context srcCtx to dst in context
// dstCtx (two devices) on s.
func PeerCopy(dst uint64, dstCtx Context, src uint64, srcCtx Context, n int64, s Stream) error {
	return check("cuMemcpyPeerAsync", C.gt_cuMemcpyPeerAsync(C.gt_addr(dst), dstCtx.p, C.gt_addr(src), srcCtx.p, C.size_t(n), s.p))
}

// Graph is an instantiated CUDA graph (a CUgraphExec and its CUgraph).
type Graph struct{ g, exec unsafe.Pointer }

// BeginCapture starts recording the work enqueued on s into a graph
// instead of running it (thread-local mode: only this thread must avoid
// calls that are unsafe during a capture, such as allocation).
func (s Stream) BeginCapture() error {
	return check("cuStreamBeginCapture", C.gt_cuStreamBeginCapture(s.p))
}

// EndCapture ends the capture and instantiates the graph.
func (s Stream) EndCapture() (Graph, error) {
	var g unsafe.Pointer
	if err := check("cuStreamEndCapture", C.gt_cuStreamEndCapture(s.p, &g)); err != nil {
		return Graph{}, err
	}
	var x unsafe.Pointer
	if err := check("cuGraphInstantiate", C.gt_cuGraphInstantiate(&x, g)); err != nil {
		C.gt_cuGraphDestroy(g)
		return Graph{}, err
	}
	return Graph{g: g, exec: x}, nil
}

// Launch enqueues the graph's work on s.
func (g Graph) Launch(s Stream) error { return check("cuGraphLaunch", C.gt_cuGraphLaunch(g.exec, s.p)) }

// Destroy frees the graph.
func (g Graph) Destroy() error {
	err := check("cuGraphExecDestroy", C.gt_cuGraphExecDestroy(g.exec))
	if e := check("cuGraphDestroy", C.gt_cuGraphDestroy(g.g)); err == nil {
		err = e
	}
	return err
}
