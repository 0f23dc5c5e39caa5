//go:build !amd64

package gemm

import "runtime"

// CPUModel names the processor; off x86 it says only the architecture.
func CPUModel() string { return runtime.GOARCH + " processor" }
