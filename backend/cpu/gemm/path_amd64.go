package gemm

import "golang.org/x/sys/cpu"

var impls = [...]impl{
	Generic: genericImpl,
	AVX2:    {path: AVX2, mr: 4, nr: 24, kc: 256, mc: 256, kernel: kernelAVX2, packBT: packBTAVX2, packBN: packBNAVX2, packRuns: packRunsAVX2, conv: []convFunc{convAVX2x8, convAVX2x16, convAVX2}},
	AVX512:  {path: AVX512, mr: 8, nr: 48, kc: 192, mc: 256, kernel: kernelAVX512, packBT: packBTAVX512, packBN: packBNAVX512, packRuns: packRunsAVX512, conv: []convFunc{convAVX512x16, convAVX512x32, convAVX512}},
}

// hasISA reports whether the CPU and the OS (which must save the wider
// registers) support p's instructions; x/sys/cpu checks both.
func hasISA(p Path) bool {
	switch p {
	case AVX2:
		return cpu.X86.HasAVX2 && cpu.X86.HasFMA
	case AVX512:
		return cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA
	}
	return p == Generic
}

// splitColsFast is ColSplit's AVX-512 loop.
var splitColsFast = splitColsAVX512

// copyPlanesFast is CopyPlanes' AVX-512 loop.
var copyPlanesFast = copyPlanesAVX512
