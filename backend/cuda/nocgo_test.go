//go:build !cgo

package cuda_test

import "testing"

func init() {
	devGetters = append(devGetters, func(*testing.T) (namedDev, string) {
		return namedDev{}, "the host emulator and the GPU need cgo (this build has CGO_ENABLED=0)"
	})
}
