package cuda

import "errors"

// Hardware is the lowest layer of a Device: one stream and raw memory. The
// GPU's (build tag cuda) calls the driver API, NVRTC and cuBLAS; the host
// emulator's (package cudaemu) runs the same CUDA C on the CPU over host
// memory. Everything above it (buffers, transfers, the caching allocator,
// the executor) is the same code for both, so the tests that run on the
// emulator test what runs on a GPU, down to this interface.
//
// Work is enqueued on the stream in order and runs in that order. Only Read
// waits for it.
type Hardware interface {
	// Stream enqueues kernels, products, fills and copies.
	Stream
	// Do runs f ready to make the hardware's calls (a GPU: its context
	// current on a locked OS thread), one caller at a time. Every method
	// but Do, CopyPeer, Close and String is called inside Do.
	Do(f func() error) error
	// MemAlloc returns n bytes of device memory; an error wrapping
	// ErrOutOfMemory when there is not enough.
	MemAlloc(n int64) (Ptr, error)
	// MemFree frees memory from MemAlloc.
	MemFree(p Ptr) error
	// Write copies src to dst in stream order; it returns once src may be
	// reused.
	Write(dst Ptr, src []byte) error
	// Read waits for the work enqueued so far and copies from src.
	Read(dst []byte, src Ptr) error
	// CopyPeer copies n bytes at src on other hardware (another stream of
	// the same GPU, or another GPU) to dst, after the work enqueued on
	// both so far and before the work enqueued on either later, without
	// waiting on the host. It is called outside Do.
	CopyPeer(dst Ptr, src Hardware, srcPtr Ptr, n int64) error
	// BeginCapture starts recording the work enqueued on the stream into a
	// Captured graph instead of running it, until EndCapture. Hardware
	// without graphs returns ErrNoCapture.
	BeginCapture() error
	// EndCapture ends the recording and returns the graph; after an error
	// during the capture it discards the recording and returns an error.
	EndCapture() (Captured, error)
	// Close frees the stream and what the hardware holds. Memory from
	// MemAlloc must have been freed.
	Close() error
	String() string
}

// Captured is a recorded sequence of a stream's work, replayed with one
// launch (a CUDA graph). Launch and Destroy are called inside Do.
type Captured interface {
	Launch() error
	Destroy() error
}

// ErrNoCapture is what BeginCapture returns on hardware without graphs.
var ErrNoCapture = errors.New("this hardware cannot capture work into graphs")

// ErrOutOfMemory marks a MemAlloc that failed for want of device memory:
// the caching allocator then frees what it keeps and tries once more.
var ErrOutOfMemory = errOutOfMemory
