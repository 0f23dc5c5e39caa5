//go:build !amd64

package gemm

var impls = [...]impl{Generic: genericImpl}

func hasISA(p Path) bool { return p == Generic }
