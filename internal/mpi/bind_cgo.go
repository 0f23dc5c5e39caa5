//go:build cgo

package mpi

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "ompi.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// The binding: thin Go wrappers of ompi.c, called only on the MPI thread.
// Buffers handed to nonblocking calls are pinned by the caller until the
// request completes.

const haveCgo = true

func load(path string) error {
	p := C.CString(path)
	defer C.free(unsafe.Pointer(p))
	var buf [512]C.char
	if C.gtmpi_load(p, &buf[0], C.int(len(buf))) != 0 {
		return fmt.Errorf("%s", C.GoString(&buf[0]))
	}
	return nil
}

// check turns an MPI return code into an error naming the call.
func check(call string, rc C.int) error {
	if rc == 0 {
		return nil
	}
	var buf [512]C.char
	C.gtmpi_error_string(rc, &buf[0], C.int(len(buf)))
	return fmt.Errorf("%s: %s (MPI error %d)", call, C.GoString(&buf[0]), int(rc))
}

func initThread() (provided int, err error) {
	var p C.int
	err = check("MPI_Init_thread", C.gtmpi_init(&p))
	return int(p), err
}

func finalize() error { return check("MPI_Finalize", C.gtmpi_finalize()) }
func world() handle   { return C.gtmpi_world() }

func rankSize(c handle) (rank, size int, err error) {
	var r, s C.int
	if err := check("MPI_Comm_rank", C.gtmpi_rank(c, &r)); err != nil {
		return 0, 0, err
	}
	if err := check("MPI_Comm_size", C.gtmpi_size(c, &s)); err != nil {
		return 0, 0, err
	}
	return int(r), int(s), nil
}

func dup(c handle) (handle, error) {
	var out handle
	if err := check("MPI_Comm_dup", C.gtmpi_dup(c, &out)); err != nil {
		return nil, err
	}
	return out, check("MPI_Comm_set_errhandler", C.gtmpi_errors_return(out))
}

func errorsReturn(c handle) error { return check("MPI_Comm_set_errhandler", C.gtmpi_errors_return(c)) }

func iallreduce(buf unsafe.Pointer, count int, dt dtype, o op, c handle, req *handle) error {
	return check("MPI_Iallreduce", C.gtmpi_iallreduce(buf, C.int(count), C.int(dt), C.int(o), c, req))
}

func ibcast(buf unsafe.Pointer, count, root int, c handle, req *handle) error {
	return check("MPI_Ibcast", C.gtmpi_ibcast(buf, C.int(count), C.int(root), c, req))
}

// iallgatherv gathers bytes; counts and displs point to len(ranks) C ints
// (see cInts), which MPI reads until the request completes.
func iallgatherv(send unsafe.Pointer, count int, recv unsafe.Pointer, counts, displs unsafe.Pointer, c handle, req *handle) error {
	return check("MPI_Iallgatherv", C.gtmpi_iallgatherv(send, C.int(count), recv, (*C.int)(counts), (*C.int)(displs), c, req))
}

func ibarrier(c handle, req *handle) error { return check("MPI_Ibarrier", C.gtmpi_ibarrier(c, req)) }

func isend(buf unsafe.Pointer, count, dest, tag int, c handle, req *handle) error {
	return check("MPI_Isend", C.gtmpi_isend(buf, C.int(count), C.int(dest), C.int(tag), c, req))
}

func irecv(buf unsafe.Pointer, count, src, tag int, c handle, req *handle) error {
	return check("MPI_Irecv", C.gtmpi_irecv(buf, C.int(count), C.int(src), C.int(tag), c, req))
}

// test reports whether a request is complete; a completed request is freed
// by MPI and set to MPI_REQUEST_NULL.
func test(req *handle) (bool, error) {
	var done C.int
	err := check("MPI_Test", C.gtmpi_test(req, &done))
	return done != 0, err
}

// cancel cancels a pending receive and frees it.
func cancel(req *handle) {
	if C.gtmpi_cancel(req) == 0 {
		C.gtmpi_request_free(req)
	}
}

func libraryVersion() string {
	var buf [512]C.char
	C.gtmpi_library_version(&buf[0], C.int(len(buf)))
	return C.GoString(&buf[0])
}

func processorName() string {
	var buf [512]C.char
	C.gtmpi_processor_name(&buf[0], C.int(len(buf)))
	return C.GoString(&buf[0])
}

// cInts converts to the C int array that MPI_Iallgatherv takes.
func cInts(v []int) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// cInts builds int32 arrays for C's int: the same size on every platform
// cgo builds gotrain for; this fails to compile where it is not.
var _ = [1]int{}[unsafe.Sizeof(C.int(0))-4]
