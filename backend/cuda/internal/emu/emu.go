//go:build cgo

// Package emu runs the CUDA backend's kernels on the host, for tests on
// machines without a GPU. Each kernel module's CUDA C is compiled with the
// host's C++ compiler (c++, or $CXX) together with a small runtime
// (runtime.h) that gives it threadIdx, blockIdx, __shared__ memory and
// __syncthreads: blocks run one after another, a block's threads are
// coroutines switched at barriers. Blocks, and a block's threads between
// barriers, run in reverse order: a device promises no order, and a kernel
// that silently relies on the natural one fails here. "Device" memory is
// host memory, and Gemm is a plain float32 loop over the column-major
// arguments cuBLAS would get.
//
// The emulator checks what a kernel computes (indexing, reductions, the
// CPU-matching arithmetic, compiled like NVRTC without fused multiply-adds);
// it cannot check what only a device shows: races between blocks, the
// device's math library, memory limits, launch limits, or NVRTC itself (the
// PTX test compiles every module with NVRTC for that).
package emu

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*gt_run_fn)(void*, void**, int, int, int, int, int, int);

static int emu_run(void* run, void* thunk, void** args, int gx, int gy, int gz, int bx, int by, int bz) {
	return ((gt_run_fn)run)(thunk, args, gx, gy, gz, bx, by, bz);
}

typedef unsigned long long addr;

// emu_gemm is BLAS's column-major sgemm: C(i,j) at c[i + j*ldc], A(i,p)
// at a[i + p*lda] (a[p + i*lda] transposed), the same for B. Each C(i,j)
// is summed over p in ascending order in float; the loops run in the order
// that reads A contiguously (a column of C at a time when A is not
// transposed), which changes the speed, not the sums.
static void emu_gemm(int ta, int tb, int m, int n, int k, float alpha, addr aa, int lda,
		addr ba, int ldb, float beta, addr ca, int ldc) {
	const float* a = (const float*)aa;
	const float* b = (const float*)ba;
	float* c = (float*)ca;
	float* acc = ta ? 0 : (float*)malloc(sizeof(float) * (size_t)(m > 0 ? m : 1));
	for (int j = 0; j < n; j++) {
		if (ta) {
			for (int i = 0; i < m; i++) {
				float s = 0;
				const float* ai = a + (size_t)i * lda;
				for (int p = 0; p < k; p++) {
					float bv = tb ? b[j + (size_t)p * ldb] : b[p + (size_t)j * ldb];
					s += ai[p] * bv;
				}
				float r = alpha * s;
				if (beta != 0) r += beta * c[i + (size_t)j * ldc];
				c[i + (size_t)j * ldc] = r;
			}
			continue;
		}
		for (int i = 0; i < m; i++) acc[i] = 0;
		for (int p = 0; p < k; p++) {
			float bv = tb ? b[j + (size_t)p * ldb] : b[p + (size_t)j * ldb];
			const float* ap = a + (size_t)p * lda;
			for (int i = 0; i < m; i++) acc[i] += ap[i] * bv;
		}
		for (int i = 0; i < m; i++) {
			float r = alpha * acc[i];
			if (beta != 0) r += beta * c[i + (size_t)j * ldc];
			c[i + (size_t)j * ldc] = r;
		}
	}
	free(acc);
}

static void emu_memset32(addr pa, unsigned int v, long n) {
	unsigned int* p = (unsigned int*)pa;
	for (long i = 0; i < n; i++) p[i] = v;
}

static addr emu_alloc(size_t n) { return (addr)calloc(n, 1); }
static void emu_free(addr p) { free((void*)p); }
static void emu_write(addr dst, const void* src, size_t n) { memcpy((void*)dst, src, n); }
static void emu_read(void* dst, addr src, size_t n) { memcpy(dst, (const void*)src, n); }
static void emu_move(addr dst, addr src, size_t n) { memmove((void*)dst, (const void*)src, n); }
*/
import "C"

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/gotrain/gotrain/backend/cuda"
)

//go:embed runtime.h
var runtimeHead string

//go:embed runtime_tail.h
var runtimeTail string

// Emulator is a cuda.Stream over host memory.
type Emulator struct {
	mu     sync.Mutex
	cxx    string
	dir    string
	mods   map[int]*lib
	allocs map[cuda.Ptr]int64
	// slots and argv hold a launch's arguments in C memory.
	slots unsafe.Pointer
	argv  unsafe.Pointer
	// Launches counts kernel launches (tests check that kernels ran).
	Launches int
}

type lib struct {
	handle unsafe.Pointer
	run    unsafe.Pointer
	thunks map[string]unsafe.Pointer
}

const maxArgs = 64

// runMu serialises every launch in the process: emulators share the
// compiled modules (cached by content, see module), and a module's runtime
// state (the current thread, the coroutines) is one set of C globals.
var runMu sync.Mutex

// New returns an emulator, or an error saying why it cannot run (no C++
// compiler).
func New() (*Emulator, error) {
	cxx := os.Getenv("CXX")
	if cxx == "" {
		cxx = "c++"
	}
	path, err := exec.LookPath(cxx)
	if err != nil {
		return nil, fmt.Errorf("emu: no C++ compiler (%s) to build the kernels for the host: %v", cxx, err)
	}
	dir, err := os.MkdirTemp("", "gotrain-emu-")
	if err != nil {
		return nil, err
	}
	e := &Emulator{cxx: path, dir: dir, mods: map[int]*lib{}, allocs: map[cuda.Ptr]int64{}}
	e.slots = C.malloc(C.size_t(8 * maxArgs))
	e.argv = C.malloc(C.size_t(8 * maxArgs))
	for i := 0; i < maxArgs; i++ {
		*(*unsafe.Pointer)(unsafe.Add(e.argv, 8*i)) = unsafe.Add(e.slots, 8*i)
	}
	return e, nil
}

// Emulated marks the emulator among test devices.
func (e *Emulator) Emulated() bool { return true }

// Close frees the emulator's memory and its compiled modules' folder.
func (e *Emulator) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range e.allocs {
		C.emu_free(C.addr(p))
	}
	e.allocs = nil
	os.RemoveAll(e.dir)
}

// Alloc returns zeroed memory of the given size (at least one byte).
func (e *Emulator) Alloc(n int64) cuda.Ptr {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := C.emu_alloc(C.size_t(max(n, 1)))
	if p == 0 {
		panic("emu: out of memory")
	}
	ptr := cuda.Ptr(p)
	e.allocs[ptr] = n
	return ptr
}

// Free releases memory from Alloc.
func (e *Emulator) Free(p cuda.Ptr) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.allocs[p]; ok {
		C.emu_free(C.addr(p))
		delete(e.allocs, p)
	}
}

// Write copies b to p; Read copies from p into b.
func (e *Emulator) Write(p cuda.Ptr, b []byte) {
	if len(b) > 0 {
		C.emu_write(C.addr(p), unsafe.Pointer(&b[0]), C.size_t(len(b)))
	}
}

func (e *Emulator) Read(p cuda.Ptr, b []byte) {
	if len(b) > 0 {
		C.emu_read(unsafe.Pointer(&b[0]), C.addr(p), C.size_t(len(b)))
	}
}

// Launch runs f over the grid on the host.
func (e *Emulator) Launch(f *cuda.Func, grid, block cuda.Dim3, shared int, args []cuda.Arg) error {
	if err := cuda.CheckArgs(f, args); err != nil {
		return err
	}
	if block.X*max(block.Y, 1)*max(block.Z, 1) > 1024 || block.X <= 0 || grid.X <= 0 {
		return fmt.Errorf("emu: kernel %s launched with block %v grid %v", f.Name, block, grid)
	}
	if len(args) > maxArgs {
		return fmt.Errorf("emu: kernel %s takes %d arguments, more than %d", f.Name, len(args), maxArgs)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	l, err := e.module(f.Mod)
	if err != nil {
		return err
	}
	th := l.thunks[f.Name]
	if th == nil {
		return fmt.Errorf("emu: kernel %s is not in module %s", f.Name, f.Mod.Name)
	}
	for i, a := range args {
		*(*uint64)(unsafe.Add(e.slots, 8*i)) = a.V
	}
	e.Launches++
	runMu.Lock()
	defer runMu.Unlock()
	rc := C.emu_run(l.run, th, (*unsafe.Pointer)(e.argv), C.int(grid.X), C.int(max(grid.Y, 1)), C.int(max(grid.Z, 1)),
		C.int(block.X), C.int(max(block.Y, 1)), C.int(max(block.Z, 1)))
	switch rc {
	case 0:
	case -2:
		return fmt.Errorf("emu: kernel %s: some threads of a block reached __syncthreads and others finished without it", f.Name)
	default:
		return fmt.Errorf("emu: kernel %s: no memory for %v threads' stacks", f.Name, block)
	}
	return nil
}

// Gemm is a plain float32 product, run as cuBLAS is asked for it: in
// column-major terms (Gemm.Column), so the mapping is tested too.
func (e *Emulator) Gemm(rg *cuda.Gemm) error {
	g := rg.Column()
	for b := 0; b < g.Batch; b++ {
		a := C.addr(uint64(g.A) + uint64(int64(b)*g.StrideA*4))
		bb := C.addr(uint64(g.B) + uint64(int64(b)*g.StrideB*4))
		c := C.addr(uint64(g.C) + uint64(int64(b)*g.StrideC*4))
		C.emu_gemm(cbool(g.TransA), cbool(g.TransB), C.int(g.M), C.int(g.N), C.int(g.K), C.float(g.Alpha),
			a, C.int(g.LDA), bb, C.int(g.LDB), C.float(g.Beta), c, C.int(g.LDC))
	}
	return nil
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Memset32 fills n words.
func (e *Emulator) Memset32(p cuda.Ptr, v uint32, n int) error {
	C.emu_memset32(C.addr(p), C.uint(v), C.long(n))
	return nil
}

// Copy copies bytes.
func (e *Emulator) Copy(dst, src cuda.Ptr, n int64) error {
	if n > 0 {
		C.emu_move(C.addr(dst), C.addr(src), C.size_t(n))
	}
	return nil
}

// compileFlags are the host compiler's flags: no contraction of a*b+c into
// fused multiply-adds and no fast math, as NVRTC compiles with --fmad=false.
var compileFlags = []string{"-std=c++17", "-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-w"}

// compile builds a module's host library, or finds it built before: the
// libraries are kept in the user's cache folder (GOTRAIN_EMU_CACHE, or
// gotrain-emu under os.UserCacheDir) by a hash of the source, the flags
// and the compiler, so that test processes after the first skip the C++
// compiler. Without a cache folder it builds in the emulator's own.
func (e *Emulator) compile(name, src string) (string, error) {
	h := sha256.New()
	io.WriteString(h, src)
	io.WriteString(h, strings.Join(compileFlags, " "))
	io.WriteString(h, e.cxx)
	if st, err := os.Stat(e.cxx); err == nil {
		fmt.Fprint(h, st.Size(), st.ModTime().UnixNano())
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	dir := os.Getenv("GOTRAIN_EMU_CACHE")
	if dir == "" {
		if c, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(c, "gotrain-emu")
		}
	}
	if dir == "" || os.MkdirAll(dir, 0o755) != nil {
		dir = e.dir
	}
	so := filepath.Join(dir, name+"-"+key+".so")
	if _, err := os.Stat(so); err == nil {
		return so, nil
	}
	cc := filepath.Join(e.dir, name+".cc")
	if err := os.WriteFile(cc, []byte(src), 0o644); err != nil {
		return "", err
	}
	tmp := filepath.Join(e.dir, name+".so")
	cmd := exec.Command(e.cxx, append(append([]string{}, compileFlags...), "-o", tmp, cc)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("emu: compiling module %s for the host: %v\n%s", name, err, out.String())
	}
	if dir == e.dir {
		return tmp, nil
	}
	// Another process may be writing the same file: each renames its own
	// complete copy into place.
	part := filepath.Join(dir, fmt.Sprintf(".%s-%s.%d.tmp", name, key, os.Getpid()))
	data, err := os.ReadFile(tmp)
	if err == nil {
		err = os.WriteFile(part, data, 0o755)
	}
	if err == nil {
		err = os.Rename(part, so)
	}
	if err != nil {
		os.Remove(part)
		return tmp, nil
	}
	return so, nil
}

// module compiles (once) and loads a kernel module.
func (e *Emulator) module(m *cuda.Module) (*lib, error) {
	if l := e.mods[m.ID]; l != nil {
		return l, nil
	}
	var src strings.Builder
	src.WriteString(runtimeHead)
	src.WriteString(m.Source())
	src.WriteString("\n")
	src.WriteString(runtimeTail)
	fns := m.Funcs()
	for _, f := range fns {
		fmt.Fprintf(&src, "extern \"C\" void gt_thunk_%s(void** a) { %s(", f.Name, f.Name)
		for i, t := range f.Types {
			if i > 0 {
				src.WriteString(", ")
			}
			fmt.Fprintf(&src, "*(%s*)a[%d]", t, i)
		}
		src.WriteString("); }\n")
	}
	so, err := e.compile(m.Name, src.String())
	if err != nil {
		return nil, err
	}
	cso := C.CString(so)
	defer C.free(unsafe.Pointer(cso))
	h := C.dlopen(cso, C.RTLD_NOW|C.RTLD_LOCAL)
	if h == nil {
		return nil, fmt.Errorf("emu: loading module %s: %s", m.Name, C.GoString(C.dlerror()))
	}
	l := &lib{handle: h, thunks: map[string]unsafe.Pointer{}}
	sym := func(name string) unsafe.Pointer {
		cs := C.CString(name)
		defer C.free(unsafe.Pointer(cs))
		return C.dlsym(h, cs)
	}
	if l.run = sym("gt_run"); l.run == nil {
		return nil, fmt.Errorf("emu: module %s has no gt_run", m.Name)
	}
	for _, f := range fns {
		if l.thunks[f.Name] = sym("gt_thunk_" + f.Name); l.thunks[f.Name] == nil {
			return nil, fmt.Errorf("emu: module %s lacks kernel %s", m.Name, f.Name)
		}
	}
	e.mods[m.ID] = l
	return l, nil
}
