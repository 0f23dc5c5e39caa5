package cpu

import (
	"fmt"
	"os"
	"strings"

	"github.com/gotrain/gotrain/backend/cpu/gemm"
)

// Which implementation multiplies float32 matrices is decided once, when
// the package initialises: gotrain's own kernels (package gemm) on the
// fastest instruction path the CPU has, or OpenBLAS (cgo build) on a CPU
// for which gemm has only its generic Go kernel. GOTRAIN_CPU_KERNELS
// overrides the choice: avx512, avx2 or generic (gemm on that path), or
// openblas; a value this build or CPU cannot honour is reported in
// KernelInfo's Warning and the automatic choice stands.
const kernelsEnv = "GOTRAIN_CPU_KERNELS"

// ownGEMM says that float32 products run on package gemm (false: on the
// build's BLAS, OpenBLAS or gonum).
var ownGEMM = true

// kernelWarning is set when the requested kernels could not be used or a
// slow fallback runs on a CPU that has vector units.
var kernelWarning string

func init() {
	var path gemm.Path
	ownGEMM, path, kernelWarning = chooseKernels(os.Getenv(kernelsEnv), gemm.Best(), blasName, openblasCore())
	if err := gemm.SetActive(path); err != nil {
		panic(err) // chooseKernels picks only supported paths
	}
}

// chooseKernels decides what runs float32 products from the value of
// GOTRAIN_CPU_KERNELS, the best path the CPU supports, the build's BLAS and
// OpenBLAS's core name: whether gemm runs them (own), on which path, and
// a warning for a request it could not honour or a slow fallback.
func chooseKernels(env string, best gemm.Path, blas, core string) (own bool, path gemm.Path, warning string) {
	own, path = best != gemm.Generic || blas != "openblas", best
	switch v := strings.ToLower(strings.TrimSpace(env)); v {
	case "", "auto":
	case "openblas":
		if blas != "openblas" {
			warning = fmt.Sprintf("%s=openblas: this build has no OpenBLAS (it has %s)", kernelsEnv, blas)
			break
		}
		own = false
	default:
		p, err := gemm.ParsePath(v)
		if err == nil && p > best {
			err = fmt.Errorf("this CPU cannot run the %v path", p)
		}
		if err != nil {
			warning = fmt.Sprintf("%s=%s: %v; using %v", kernelsEnv, v, err, best)
			break
		}
		own, path = true, p
	}
	if p := openblasPath(core); !own && best != gemm.Generic && p != "avx2" && p != "avx512" {
		warning = fmt.Sprintf("OpenBLAS runs its %s kernel on a CPU with %v: products run at a fraction of the speed of gotrain's own kernels (unset %s)",
			core, best, kernelsEnv)
	}
	return own, path, warning
}

// openblasPath is the instruction set of an OpenBLAS core's sgemm kernel.
// OpenBLAS picks its kernel by CPU model and falls back to an SSE one
// (Prescott) for models it does not know, such as 5th-generation Xeons in
// 0.3.21.
func openblasPath(core string) string {
	switch core {
	case "Haswell", "Zen":
		return "avx2"
	case "SkylakeX", "CooperLake", "SapphireRapids":
		return "avx512"
	case "":
		return "generic"
	}
	return "sse (" + core + ")"
}

// Kernels describes what runs the CPU backend's products on this machine.
type Kernels struct {
	CPU     string // the processor, with its family and model numbers
	Path    string // the instruction path: avx512, avx2 or generic
	GEMM    string // the float32 product: gotrain's kernel, or OpenBLAS and its kernel
	Warning string // set when a slow fallback runs where a fast path exists
}

// KernelInfo describes the kernels in use.
func KernelInfo() Kernels {
	k := Kernels{CPU: gemm.CPUModel(), Path: gemm.Active().String(), Warning: kernelWarning}
	if ownGEMM {
		k.GEMM = "gotrain " + gemm.KernelName()
	} else {
		k.GEMM = blasName
		if c := openblasCore(); c != "" {
			k.GEMM += " (" + c + " kernel)"
		}
		k.Path = openblasPath(openblasCore())
	}
	return k
}

func (k Kernels) String() string {
	s := fmt.Sprintf("CPU: %s; instruction path: %s; GEMM: %s", k.CPU, k.Path, k.GEMM)
	if k.Warning != "" {
		s += "; warning: " + k.Warning
	}
	return s
}
