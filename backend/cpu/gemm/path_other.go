//go:build !amd64

package gemm

var impls = [...]impl{Generic: genericImpl}

func hasISA(p Path) bool { return p == Generic }

// splitColsFast is ColSplit's vector loop: none here.
var splitColsFast func(dst, src *float32, rows *int32, n, w int)

// copyPlanesFast is CopyPlanes' vector loop: none here.
var copyPlanesFast func(dst, src *float32, planes, rows, w, sp, sr, dp, dr int)
