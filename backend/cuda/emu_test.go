//go:build cgo

package cuda_test

import (
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend/cuda/internal/emu"
)

var (
	emuOnce sync.Once
	emuDev  *emu.Emulator
	emuErr  error
)

func init() {
	devGetters = append(devGetters, func(t *testing.T) (namedDev, string) {
		emuOnce.Do(func() { emuDev, emuErr = emu.New() })
		if emuErr != nil {
			return namedDev{}, emuErr.Error()
		}
		return namedDev{"emu", emuDev}, ""
	})
}
