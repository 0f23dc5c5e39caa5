//go:build cgo

package cuda_test

import (
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend/cuda/cudaemu"
)

var (
	emuOnce sync.Once
	emuDev  interface {
		testDev
		Emulated() bool
	}
	emuErr error
)

func init() {
	devGetters = append(devGetters, func(t *testing.T) (namedDev, string) {
		emuOnce.Do(func() {
			e, err := cudaemu.Emulator()
			if err == nil {
				emuDev = e
			}
			emuErr = err
		})
		if emuErr != nil {
			return namedDev{}, emuErr.Error()
		}
		return namedDev{"emu", emuDev}, ""
	})
}
