//go:build cgo

// Package cudalib finds NVRTC and cuBLAS at run time (dlopen) and calls the
// few entry points the CUDA backend uses, so that a binary built against
// one CUDA release runs with the libraries of another: the driver API
// (libcuda.so.1) keeps its SONAME across releases, but NVRTC's and cuBLAS's
// change with each major version (libnvrtc.so.11.2, .12, .13; libcublas.so.11,
// .12, .13).
//
// Where the libraries are looked for, first hit wins:
//
//  1. GOTRAIN_CUDA_LIB_PATH: a colon-separated list of library files or
//     folders. A folder is searched itself, then its lib/, lib64/ and
//     lib/x86_64-linux-gnu/, then the Python-wheel layout under it
//     (nvidia/cuda_nvrtc/lib, nvidia/cublas/lib, nvidia/cu13/lib, ...), so
//     a site-packages folder may be named directly.
//  2. The dynamic loader's own search (LD_LIBRARY_PATH, the ldconfig
//     cache) by SONAME, newest major version first.
//  3. The NVIDIA wheels in the usual Python package folders
//     (/usr/local/lib/python3*/dist-packages and site-packages,
//     /usr/lib/python3/dist-packages, ~/.local/lib/python3*/site-packages,
//     $VIRTUAL_ENV, $CONDA_PREFIX, /opt/conda).
//
// A library's companions in its folder are loaded first
// (libnvrtc-builtins beside libnvrtc, libcublasLt beside libcublas), so a
// folder off the loader's path works without LD_LIBRARY_PATH.
package cudalib

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"
)

// EnvPath names the environment variable with extra library locations.
const EnvPath = "GOTRAIN_CUDA_LIB_PATH"

// The SONAMEs tried, newest first, and the wheel folders that hold them.
var (
	nvrtcNames  = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"}
	cublasNames = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"}
	nvrtcWheel  = []string{"nvidia/cuda_nvrtc/lib", "nvidia/cu13/lib", "nvidia/cu12/lib"}
	cublasWheel = []string{"nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib"}
)

// candidates lists where a library is looked for, in order: paths (with a
// slash) or bare SONAMEs for the loader.
func candidates(names, wheel []string, prefix string) []string {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	inDir := func(dir string) {
		for _, sub := range []string{"", "lib", "lib64", "lib/x86_64-linux-gnu"} {
			for _, n := range names {
				add(filepath.Join(dir, sub, n))
			}
		}
		for _, w := range wheel {
			for _, n := range names {
				add(filepath.Join(dir, w, n))
			}
		}
	}
	for _, e := range filepath.SplitList(os.Getenv(EnvPath)) {
		if e == "" {
			continue
		}
		if st, err := os.Stat(e); err == nil && !st.IsDir() {
			if strings.HasPrefix(filepath.Base(e), prefix) {
				add(e)
			}
			continue
		}
		inDir(e)
	}
	for _, n := range names {
		add(n)
	}
	for _, site := range pythonSites() {
		for _, w := range wheel {
			for _, n := range names {
				add(filepath.Join(site, w, n))
			}
		}
	}
	return out
}

// pythonSites lists the Python package folders that exist.
func pythonSites() []string {
	pats := []string{"/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
		"/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages", "/opt/conda/lib/python3*/site-packages"}
	if h, err := os.UserHomeDir(); err == nil {
		pats = append(pats, filepath.Join(h, ".local/lib/python3*/site-packages"))
	}
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if v := os.Getenv(env); v != "" {
			pats = append(pats, filepath.Join(v, "lib/python3*/site-packages"))
		}
	}
	var out []string
	for _, p := range pats {
		m, _ := filepath.Glob(p)
		out = append(out, m...)
	}
	return out
}

// open loads the first candidate that opens, after the companions found
// beside it (companion: a glob relative to its folder).
func open(what string, cands []string, companion string) (unsafe.Pointer, string, error) {
	var tried []string
	for _, c := range cands {
		if strings.ContainsRune(c, '/') {
			if _, err := os.Stat(c); err != nil {
				continue
			}
			var deps []string
			if companion != "" {
				deps, _ = filepath.Glob(filepath.Join(filepath.Dir(c), companion))
			}
			for _, d := range deps {
				cd := C.CString(d)
				C.gt_open(cd, 1)
				C.free(unsafe.Pointer(cd))
			}
		}
		cs := C.CString(c)
		h := C.gt_open(cs, 0)
		C.free(unsafe.Pointer(cs))
		if h != nil {
			return h, c, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%s)", c, C.GoString(C.gt_dlerror())))
	}
	if len(tried) > 5 {
		tried = append(tried[:5], fmt.Sprintf("and %d more", len(tried)-5))
	}
	return nil, "", fmt.Errorf("%s was not found: looked for %s in %s's folders, through the dynamic loader and in the Python wheels' folders; failed opens: %s",
		what, strings.Join(candNames(what), ", "), EnvPath, strings.Join(tried, "; "))
}

func candNames(what string) []string {
	switch what {
	case "NVRTC":
		return nvrtcNames
	case "cuBLAS":
		return cublasNames
	}
	return []string{"libcuda.so.1"}
}

// ---- NVRTC ----

// NVRTC is the loaded runtime compiler.
type NVRTC struct {
	Path         string
	Major, Minor int
	mu           sync.Mutex
}

var (
	nvrtcOnce sync.Once
	nvrtcLib  *NVRTC
	nvrtcErr  error
)

// LoadNVRTC finds and loads NVRTC (once per process).
func LoadNVRTC() (*NVRTC, error) {
	nvrtcOnce.Do(func() {
		h, path, err := open("NVRTC", candidates(nvrtcNames, nvrtcWheel, "libnvrtc"), "libnvrtc-builtins.so*")
		if err != nil {
			nvrtcErr = err
			return
		}
		if miss := C.gt_bind_nvrtc(h); miss != nil {
			nvrtcErr = fmt.Errorf("NVRTC at %s lacks %s", path, C.GoString(miss))
			return
		}
		var major, minor C.int
		if r := C.gt_nvrtcVersion(&major, &minor); r != 0 {
			nvrtcErr = fmt.Errorf("NVRTC at %s: nvrtcVersion failed (%d)", path, int(r))
			return
		}
		nvrtcLib = &NVRTC{Path: path, Major: int(major), Minor: int(minor)}
	})
	return nvrtcLib, nvrtcErr
}

// CompileError is a failed compilation with NVRTC's log.
type CompileError struct {
	Name string
	Log  string
	Err  string
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("NVRTC could not compile %s: %s\n%s", e.Name, e.Err, e.Log)
}

// Compile compiles CUDA C to PTX.
func (n *NVRTC) Compile(src, name string, opts []string) ([]byte, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	csrc, cname := C.CString(src), C.CString(name)
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	var prog unsafe.Pointer
	if r := C.gt_nvrtcCreateProgram(&prog, csrc, cname); r != 0 {
		return nil, fmt.Errorf("nvrtcCreateProgram(%s): %s", name, C.GoString(C.gt_nvrtcErrorString(r)))
	}
	defer C.gt_nvrtcDestroyProgram(&prog)
	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
		defer C.free(unsafe.Pointer(copts[i]))
	}
	var optp **C.char
	if len(copts) > 0 {
		optp = (**C.char)(C.malloc(C.size_t(len(copts)) * C.size_t(unsafe.Sizeof(uintptr(0)))))
		defer C.free(unsafe.Pointer(optp))
		s := unsafe.Slice(optp, len(copts))
		copy(s, copts)
	}
	if r := C.gt_nvrtcCompileProgram(prog, C.int(len(opts)), optp); r != 0 {
		return nil, &CompileError{Name: name, Err: C.GoString(C.gt_nvrtcErrorString(r)), Log: n.log(prog)}
	}
	var size C.size_t
	if r := C.gt_nvrtcGetPTXSize(prog, &size); r != 0 {
		return nil, fmt.Errorf("nvrtcGetPTXSize(%s): %s", name, C.GoString(C.gt_nvrtcErrorString(r)))
	}
	buf := C.malloc(size + 1)
	defer C.free(buf)
	if r := C.gt_nvrtcGetPTX(prog, (*C.char)(buf)); r != 0 {
		return nil, fmt.Errorf("nvrtcGetPTX(%s): %s", name, C.GoString(C.gt_nvrtcErrorString(r)))
	}
	return C.GoBytes(buf, C.int(size)), nil
}

func (n *NVRTC) log(prog unsafe.Pointer) string {
	var size C.size_t
	if C.gt_nvrtcGetProgramLogSize(prog, &size) != 0 || size == 0 {
		return ""
	}
	buf := C.malloc(size + 1)
	defer C.free(buf)
	if C.gt_nvrtcGetProgramLog(prog, (*C.char)(buf)) != 0 {
		return ""
	}
	return C.GoString((*C.char)(buf))
}

// ---- cuBLAS ----

// CUBLAS is the loaded cuBLAS library.
type CUBLAS struct{ Path string }

// Handle is a cuBLAS context.
type Handle struct{ h unsafe.Pointer }

// Math modes (cublasMath_t).
const (
	DefaultMath  = 0 // float32 products in float32 (no tensor-core shortcuts)
	PedanticMath = 2 // as Default, and no reduced-precision paths at all
	TF32Math     = 3 // float32 products on TF32 tensor cores (10-bit mantissa inputs)
)

var (
	cublasOnce sync.Once
	cublasLib  *CUBLAS
	cublasErr  error
)

// LoadCUBLAS finds and loads cuBLAS (once per process).
func LoadCUBLAS() (*CUBLAS, error) {
	cublasOnce.Do(func() {
		h, path, err := open("cuBLAS", candidates(cublasNames, cublasWheel, "libcublas"), "libcublasLt.so*")
		if err != nil {
			cublasErr = err
			return
		}
		if miss := C.gt_bind_cublas(h); miss != nil {
			cublasErr = fmt.Errorf("cuBLAS at %s lacks %s", path, C.GoString(miss))
			return
		}
		cublasLib = &CUBLAS{Path: path}
	})
	return cublasLib, cublasErr
}

func cublasStatus(what string, r C.gt_result) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("%s: cuBLAS status %d", what, int(r))
}

// Create makes a handle on the current CUDA context.
func (*CUBLAS) Create() (Handle, error) {
	var h unsafe.Pointer
	if err := cublasStatus("cublasCreate", C.gt_cublasCreate(&h)); err != nil {
		return Handle{}, err
	}
	return Handle{h}, nil
}

// Destroy releases a handle.
func (h Handle) Destroy() error { return cublasStatus("cublasDestroy", C.gt_cublasDestroy(h.h)) }

// SetStream makes the handle's work go to stream (a CUstream).
func (h Handle) SetStream(stream unsafe.Pointer) error {
	return cublasStatus("cublasSetStream", C.gt_cublasSetStream(h.h, stream))
}

// SetMathMode sets DefaultMath, PedanticMath or TF32Math.
func (h Handle) SetMathMode(mode int) error {
	return cublasStatus("cublasSetMathMode", C.gt_cublasSetMathMode(h.h, C.int(mode)))
}

// Version is cuBLAS's version number (major*10000 + minor*100 + patch from
// release 12 on; major*1000 + minor*100 + patch before).
func (h Handle) Version() (int, error) {
	var v C.int
	err := cublasStatus("cublasGetVersion", C.gt_cublasGetVersion(h.h, &v))
	return int(v), err
}

// SetWorkspace gives the handle a device workspace of n bytes, so that its
// products allocate nothing (which a CUDA graph capture requires). It
// returns false when this cuBLAS predates cublasSetWorkspace.
func (h Handle) SetWorkspace(ws uint64, n int64) (bool, error) {
	if C.gt_cublas_has_workspace() == 0 {
		return false, nil
	}
	return true, cublasStatus("cublasSetWorkspace", C.gt_cublasSetWorkspace(h.h, C.gt_addr(ws), C.size_t(n)))
}

func op(t bool) C.int {
	if t {
		return 1
	}
	return 0
}

// Sgemm is cuBLAS's column-major C = alpha*op(A)op(B) + beta*C, with m x n
// C, on device addresses.
func (h Handle) Sgemm(ta, tb bool, m, n, k int, alpha float32, a uint64, lda int, b uint64, ldb int, beta float32, c uint64, ldc int) error {
	return cublasStatus("cublasSgemm", C.gt_cublasSgemm(h.h, op(ta), op(tb), C.int(m), C.int(n), C.int(k), C.float(alpha),
		C.gt_addr(a), C.int(lda), C.gt_addr(b), C.int(ldb), C.float(beta), C.gt_addr(c), C.int(ldc)))
}

// SgemmStridedBatched is Sgemm over batch matrices at element strides.
func (h Handle) SgemmStridedBatched(ta, tb bool, m, n, k int, alpha float32, a uint64, lda int, sa int64, b uint64, ldb int, sb int64,
	beta float32, c uint64, ldc int, sc int64, batch int) error {
	return cublasStatus("cublasSgemmStridedBatched", C.gt_cublasSgemmStridedBatched(h.h, op(ta), op(tb), C.int(m), C.int(n), C.int(k),
		C.float(alpha), C.gt_addr(a), C.int(lda), C.longlong(sa), C.gt_addr(b), C.int(ldb), C.longlong(sb), C.float(beta),
		C.gt_addr(c), C.int(ldc), C.longlong(sc), C.int(batch)))
}
