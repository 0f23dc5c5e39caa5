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
// The device layer (build tag cuda, cgo). The driver API, NVRTC and cuBLAS
// are loaded at run time (internal/cudalib: dlopen by SONAME, with
// GOTRAIN_CUDA_LIB_PATH and the Python wheels' folders searched too), so
// building needs no CUDA toolkit and the binary starts, and says why it
// cannot use a GPU, where there is none. Each Device has one non-blocking
// stream that all its work goes to in order, a cuBLAS handle (exact float32
// by default; option math=tf32 for tensor cores), and a caching allocator
// (size classes, no cuMemAlloc once a step's sizes have been seen, all
// freed on Close). Uploads from host memory return once the driver has
// staged the data; nothing waits for the device except Download (and an
// executor's reading of status words at the same point): a training step
// synchronises with the host only to read what the fit loop needs, the
// loss and the metrics.
//
// Without the cuda tag the backend registers under "cuda" all the same and
// its factory says how to get a build with CUDA. The tests run every kernel
// against the CPU backend on the host emulator (internal/emu) in every cgo
// build, and on the GPU too in the cuda build when one is present.
package cuda

import "errors"

// ErrNoDevice wraps the failure to find a CUDA driver or device.
var ErrNoDevice = errors.New("no CUDA driver or device found")
