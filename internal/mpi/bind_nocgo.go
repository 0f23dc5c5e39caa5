//go:build !cgo

package mpi

import (
	"errors"
	"unsafe"
)

// Without cgo there is no dlopen: load fails and nothing else is reached.

const haveCgo = false

var errNoCgo = errors.New("this gotrain was built without cgo (CGO_ENABLED=0), and multi-worker training loads OpenMPI through cgo: build it with CGO_ENABLED=1")

func load(string) error { return errNoCgo }

func unreachable() { panic("mpi: the library is not loaded without cgo") }

func initThread() (int, error)          { unreachable(); return 0, nil }
func finalize() error                   { unreachable(); return nil }
func world() handle                     { unreachable(); return nil }
func rankSize(handle) (int, int, error) { unreachable(); return 0, 0, nil }
func dup(handle) (handle, error)        { unreachable(); return nil, nil }
func errorsReturn(handle) error         { unreachable(); return nil }
func ibarrier(handle, *handle) error    { unreachable(); return nil }
func test(*handle) (bool, error)        { unreachable(); return false, nil }
func cancel(*handle)                    { unreachable() }
func libraryVersion() string            { unreachable(); return "" }
func processorName() string             { unreachable(); return "" }
func cInts([]int) []int32               { unreachable(); return nil }
func ibcast(unsafe.Pointer, int, int, handle, *handle) error {
	unreachable()
	return nil
}
func iallreduce(unsafe.Pointer, int, dtype, op, handle, *handle) error {
	unreachable()
	return nil
}
func iallgatherv(unsafe.Pointer, int, unsafe.Pointer, unsafe.Pointer, unsafe.Pointer, handle, *handle) error {
	unreachable()
	return nil
}
func isend(unsafe.Pointer, int, int, int, handle, *handle) error {
	unreachable()
	return nil
}
func irecv(unsafe.Pointer, int, int, int, handle, *handle) error {
	unreachable()
	return nil
}
