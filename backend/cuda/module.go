package cuda

import (
	"embed"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Kernel sources. Each module is kernels/common.cuh, then its own .cu file
// (templates and hand-written kernels), then the extern "C" entry points
// that the Go factories declare with Module.Def (the instantiations of the
// templates they launch). A device compiles a module with NVRTC the first
// time one of its kernels is launched; the emulator compiles the same text
// with the host's C++ compiler.

//go:embed kernels/*.cu kernels/*.cuh
var kernelFS embed.FS

// Module is one NVRTC compilation unit.
type Module struct {
	Name string
	ID   int // index among the modules, for per-device caches

	mu     sync.Mutex
	file   string // kernels/<file>
	defs   []string
	funcs  map[string]*Func
	source string // assembled on first use
}

// Func is a kernel entry point of a module.
type Func struct {
	Mod    *Module
	Name   string
	Params []Kind
	// Types are the C types of the parameters, as written in the source
	// (the emulator casts its argument slots to them).
	Types []string
	ID    int // index among all functions, for per-device caches
}

var (
	modMu   sync.Mutex
	modules []*Module
	funcs   []*Func
)

// newModule declares the module built from kernels/<file>.
func newModule(name, file string) *Module {
	modMu.Lock()
	defer modMu.Unlock()
	m := &Module{Name: name, ID: len(modules), file: file, funcs: map[string]*Func{}}
	modules = append(modules, m)
	return m
}

// Modules lists every kernel module.
func Modules() []*Module {
	modMu.Lock()
	defer modMu.Unlock()
	return append([]*Module(nil), modules...)
}

// NumFuncs is the number of kernel entry points declared so far.
func NumFuncs() int {
	modMu.Lock()
	defer modMu.Unlock()
	return len(funcs)
}

// Def declares an extern "C" entry point: name, its C parameter list, and
// its body (usually a call of a template). It returns the Func to launch.
// Defs are made from init functions, before any module is compiled.
func (m *Module) Def(name, params, body string) *Func {
	src := fmt.Sprintf("extern \"C\" __global__ void %s(%s) {\n\t%s\n}\n", name, params, body)
	f, err := parseParams(name, params)
	if err != nil {
		panic(err)
	}
	m.mu.Lock()
	if m.source != "" {
		m.mu.Unlock()
		panic("cuda: Def of " + name + " after module " + m.Name + " was assembled")
	}
	if _, dup := m.funcs[name]; dup {
		m.mu.Unlock()
		panic("cuda: kernel defined twice: " + name)
	}
	m.defs = append(m.defs, src)
	m.funcs[name] = f
	m.mu.Unlock()
	modMu.Lock()
	f.Mod, f.ID = m, len(funcs)
	funcs = append(funcs, f)
	modMu.Unlock()
	return f
}

// Source is the module's complete CUDA C text.
func (m *Module) Source() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.source == "" {
		common, err := kernelFS.ReadFile("kernels/common.cuh")
		if err != nil {
			panic(err)
		}
		body, err := kernelFS.ReadFile("kernels/" + m.file)
		if err != nil {
			panic(err)
		}
		var b strings.Builder
		b.Write(common)
		b.WriteString("\n// ---- " + m.file + " ----\n")
		b.Write(body)
		b.WriteString("\n// ---- entry points ----\n")
		for _, d := range m.defs {
			b.WriteString(d)
		}
		m.source = b.String()
	}
	return m.source
}

// Funcs lists the module's entry points by name.
func (m *Module) Funcs() []*Func {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Func, 0, len(m.funcs))
	for _, f := range m.funcs {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var paramRE = regexp.MustCompile(`^(.*?)([A-Za-z_][A-Za-z0-9_]*)$`)

// parseParams reads a C parameter list into kinds: any pointer is KPtr;
// int, i64 / long long, float and double are the scalar kinds.
func parseParams(name, params string) (*Func, error) {
	f := &Func{Name: name}
	if strings.TrimSpace(params) == "" {
		return f, nil
	}
	for _, p := range strings.Split(params, ",") {
		p = strings.TrimSpace(p)
		m := paramRE.FindStringSubmatch(p)
		if m == nil {
			return nil, fmt.Errorf("cuda: kernel %s: cannot read parameter %q", name, p)
		}
		typ := strings.TrimSpace(strings.ReplaceAll(m[1], "__restrict__", ""))
		var k Kind
		switch {
		case strings.HasSuffix(typ, "*"):
			k = KPtr
		case typ == "int":
			k = KI32
		case typ == "i64" || typ == "long long":
			k = KI64
		case typ == "float":
			k = KF32
		case typ == "double":
			k = KF64
		default:
			return nil, fmt.Errorf("cuda: kernel %s: parameter %q has a type kernels may not take (%q)", name, p, typ)
		}
		f.Params = append(f.Params, k)
		f.Types = append(f.Types, typ)
	}
	return f, nil
}

// CompileOptions are the NVRTC options every module is compiled with
// besides the target architecture: no fused multiply-add contraction, so
// float arithmetic rounds as the CPU backend's Go loops do; IEEE division
// and square root (NVRTC's defaults, stated).
var CompileOptions = []string{"--fmad=false", "--prec-div=true", "--prec-sqrt=true", "--ftz=false"}

// ctype is the C type of a tensor element for the kernels.
func ctypeOf(suffix string) string {
	switch suffix {
	case "f32":
		return "float"
	case "f64":
		return "double"
	case "i64":
		return "i64"
	case "i32":
		return "int"
	case "u8":
		return "u8"
	}
	panic("cuda: no C type for " + suffix)
}

// PTXOptions are the NVRTC options for a virtual architecture such as
// "compute_90".
func PTXOptions(arch string) []string {
	return append([]string{"--gpu-architecture=" + arch}, CompileOptions...)
}
