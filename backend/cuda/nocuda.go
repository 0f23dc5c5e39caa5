//go:build !cuda || !cgo

package cuda

import (
	"fmt"

	"github.com/gotrain/gotrain/backend"
)

// Built reports whether this binary has the device layer (the cuda tag).
const Built = false

// ErrNotBuilt is what opening the backend gives in a build without CUDA.
var ErrNotBuilt = fmt.Errorf("this gotrain was built without CUDA: build it with `make build-cuda`")

func init() {
	backend.Register("cuda", func(map[string]string) (backend.Backend, error) { return nil, ErrNotBuilt })
}
