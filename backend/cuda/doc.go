// Package cuda is gotrain's CUDA backend: the kernels for every op of the
// graphs gotrain trains, device memory and transfers. It is built in two
// layers so that most of it builds and is tested on machines without a GPU.
//
// The kernel layer (every build, pure Go). A registry maps (domain, op) to
// a Factory, as the CPU backend's does: given a node, its attributes and
// its input and output types with concrete shapes (Prep), the factory
// checks them and returns a Kernel: the workspace it needs (Scratch), small
// int32 tables to upload once (Consts), how to read its status word, and a
// Run function that enqueues its work on a Stream over device addresses
// (Call). View ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) are
// aliases and run nothing. Nodes whose values are known when a graph is
// planned (Constant, Shape of a concrete shape, anything computed from
// constants only) are folded on the host and need no CUDA kernel; Prepare
// fails, naming the op and the backend, for any other node without one. Kernels are CUDA C (kernels/*.cu, embedded),
// grouped in modules that a device compiles with NVRTC on first use, once
// per process (PTX cached by source, options and architecture), and loads
// with cuModuleLoadData. Matrix products go to Stream.Gemm (cuBLAS).
//
// The kernels compute what the CPU backend computes, in its precision and,
// where the work allows, in its order: elementwise ops, reductions,
// softmax, losses and the optimizer updates give the CPU's bits (checked
// exactly on the emulator); batch and layer norm sum in double in another
// order (agreeing to float32 rounding); products and convolutions sum in
// cuBLAS's order. NVRTC compiles with --fmad=false so that a*b+c rounds
// twice, as Go computes it. Dropout masks are the CPU's, bit for bit.
// Bad data a kernel can only see on the device (a label out of range, a
// step below 1) sets a status word that the executor reads at its next
// synchronisation and turns into an error naming the node.
//
// The executor and the device layer (every build, pure Go): Backend,
// Device, Buffer, the caching allocator and Compile (exec.go), over a
// Hardware: a stream and raw memory. Compile plans a graph with the shared
// planner (backend/plan): storage blocks from the allocator, taken once;
// views and in-place outputs bound by address; constants folded on the host
// and uploaded once; one scratch arena; a status word per kernel that can
// report bad data, read at the device's next synchronisation. A run enqueues
// and returns; once its feeds repeat, its work is replayed as one captured
// CUDA graph. Devices do not share memory; Copy (backend.Copier) moves data
// between them on the devices.
//
// The GPU's Hardware (build tag cuda, cgo): the driver API, NVRTC and cuBLAS
// are loaded at run time (internal/cudalib: dlopen by SONAME, with
// GOTRAIN_CUDA_LIB_PATH and the Python wheels' folders searched too), so
// building needs no CUDA toolkit and the binary starts, and says why it
// cannot use a GPU, where there is none. Each Device is a non-blocking
// stream of a GPU (option devices=N puts N streams on the GPUs in turn,
// for N mirrored replicas) with a cuBLAS handle (exact float32 by default;
// option math=tf32 for tensor cores) and a caching allocator (size
// classes, no cuMemAlloc once a step's sizes have been seen, all freed on
// Close). Uploads from host memory return once the driver has staged the
// data; nothing waits for the device except Download (and Sync): a
// training step synchronises with the host only to read what the fit loop
// needs, the loss and the metrics.
//
// The emulator's Hardware (package cudaemu, cgo) runs the same CUDA C on
// the CPU in host memory. The tests run every kernel against the CPU
// backend on it, and the executor, the conformance suites, the goldens and
// the strategies on the emulated backend ("cuda-emu"); in the cuda build
// the same tests run on the GPU when one is present. Without the cuda tag
// the backend registers under "cuda" all the same and its factory says how
// to get a build with CUDA.
package cuda

import "errors"

// ErrNoDevice wraps the failure to find a CUDA driver or device.
var ErrNoDevice = errors.New("no CUDA driver or device found")
