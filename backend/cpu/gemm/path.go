package gemm

import (
	"fmt"
	"sync/atomic"
)

// Path is an instruction path the products can run on.
type Path uint8

const (
	// Generic is the Go kernel: every CPU.
	Generic Path = iota
	// AVX2 is the AVX2+FMA kernel (x86-64 since Haswell and Zen).
	AVX2
	// AVX512 is the AVX-512F kernel (Skylake-SP and later Xeons, Zen 4 and later).
	AVX512
)

// Paths lists every path, slowest first.
var Paths = []Path{Generic, AVX2, AVX512}

func (p Path) String() string {
	switch p {
	case Generic:
		return "generic"
	case AVX2:
		return "avx2"
	case AVX512:
		return "avx512"
	}
	return fmt.Sprintf("Path(%d)", uint8(p))
}

// ParsePath reads a path's name as String writes it.
func ParsePath(s string) (Path, error) {
	for _, p := range Paths {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("gemm: unknown instruction path %q (have generic, avx2, avx512)", s)
}

// Supported reports whether this CPU and OS can run p.
func (p Path) Supported() bool {
	return p == Generic || (int(p) < len(impls) && impls[p].kernel != nil && hasISA(p))
}

// Best is the fastest path this CPU supports.
func Best() Path {
	for i := len(Paths) - 1; i >= 0; i-- {
		if Paths[i].Supported() {
			return Paths[i]
		}
	}
	return Generic
}

// impl is one path's kernel and blocking.
type impl struct {
	path   Path
	mr, nr int // the kernel's tile of C
	kc     int // rows of a packed B panel
	mc     int // rows of A walked per panel
	kernel kernelFunc
	// packBT packs kc rows of a panel of a transposed B, its first n
	// columns read and the others zero (nil: the Go loop).
	packBT func(dst, src *float32, ld, kc, n int)
	// packBN is packBT for a row-major B.
	packBN func(dst, src *float32, ld, kc, n int)
	// packRuns packs a panel of an ImageB (nil: the Go loop).
	packRuns func(dst, src *float32, rows, first, pieces *int32, kc int)
	// conv holds the direct convolution's kernels: conv[q] computes an mr
	// x (q+1)*nr/len(conv) tile, the last a full one (nil: the Go loop of
	// DirectConv).
	conv []convFunc
}

// convFunc computes an mr x nr tile of a direct convolution; see
// asm/main.go (convKernel) for the contract.
type convFunc func(cin int, taps *int64, ntap int, a *float32, rsA int, b *float32, ldb int, c *float32, ldc int, flags int, biasRow *float32)

// kernelFunc computes an mr x nr tile of C; see the package doc (and
// asm/main.go) for the contract. Strides are in elements.
type kernelFunc func(k int, a *float32, rsA, ksA int, b *float32, c *float32, ldc int, flags int, biasRow, biasCol *float32)

const (
	flagAcc  = 1 // start from C rather than zero
	flagReLU = 2 // max(v, 0) after the bias
	flagMax  = 4 // C = max(C, v) (DirectConv's kernels only)
)

// Bounds on every path's blocking, for the scratch buffers.
const (
	maxMR = 8
	maxNR = 48
	maxKC = 256
)

var active atomic.Uint32

func init() { active.Store(uint32(Best())) }

// Active is the path products run on now.
func Active() Path { return Path(active.Load()) }

// SetActive makes products run on p from now on (tests and benchmarks use
// it to run each path; products already running finish on theirs). It
// fails when the CPU cannot run p.
func SetActive(p Path) error {
	if !p.Supported() {
		return fmt.Errorf("gemm: this CPU cannot run the %v path", p)
	}
	active.Store(uint32(p))
	return nil
}

func current() *impl { return &impls[Active()] }

// Blocking returns the active path's tile of C (mr rows by nr columns):
// callers that split a product over threads cut M at multiples of mr and
// N at multiples of nr, so that only the last part has a partial tile.
func Blocking() (mr, nr int) {
	im := current()
	return im.mr, im.nr
}

// KernelName describes the active path's kernel, e.g. "avx512 8x48".
func KernelName() string {
	im := current()
	return fmt.Sprintf("%v %dx%d", im.path, im.mr, im.nr)
}
