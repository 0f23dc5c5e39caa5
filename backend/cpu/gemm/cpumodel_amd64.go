package gemm

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// CPUModel names the processor: the model name the OS reports (what lscpu
// shows; the CPUID brand string where there is none) and the family and
// model numbers that CPU-detection code keys on, e.g. "AMD EPYC (family 26,
// model 2)".
func CPUModel() string {
	brand := osModelName()
	if maxExt, _, _, _ := cpuid(0x80000000, 0); brand == "" && maxExt >= 0x80000004 {
		var b [48]byte
		for i := uint32(0); i < 3; i++ {
			a, bb, c, d := cpuid(0x80000002+i, 0)
			for j, v := range []uint32{a, bb, c, d} {
				binary.LittleEndian.PutUint32(b[16*i+4*uint32(j):], v)
			}
		}
		brand = strings.Join(strings.Fields(strings.TrimRight(string(b[:]), "\x00")), " ")
	}
	if brand == "" {
		brand = "unknown x86-64"
	}
	eax, _, _, _ := cpuid(1, 0)
	family := (eax >> 8) & 0xf
	model := (eax >> 4) & 0xf
	if family == 0xf {
		family += (eax >> 20) & 0xff
	}
	if family == 0x6 || family >= 0xf {
		model |= ((eax >> 16) & 0xf) << 4
	}
	return fmt.Sprintf("%s (family %d, model %d)", brand, family, model)
}

// osModelName is the first "model name" of /proc/cpuinfo, or "".
func osModelName() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
