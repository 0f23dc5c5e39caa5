//go:build !cgo

package cudaemu

import (
	"errors"

	"github.com/gotrain/gotrain/backend"
)

// Name is the name the backend registers under.
const Name = "cuda-emu"

// Built says whether this build can run the emulated backend: it needs
// cgo, which this build has not.
const Built = false

func init() {
	backend.Register(Name, func(map[string]string) (backend.Backend, error) {
		return nil, errors.New("the emulated CUDA backend runs the kernels' C++ through cgo, and this build has CGO_ENABLED=0")
	})
}
