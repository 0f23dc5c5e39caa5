//go:build cgo

// The few MPI calls gotrain uses, reached through dlopen/dlsym so that the
// gotrain binary does not link OpenMPI. Handles follow OpenMPI's ABI:
// MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request and MPI_Errhandler are
// pointers, and the predefined ones (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM,
// ...) are the addresses of OpenMPI's global objects (ompi_mpi_comm_world,
// ompi_mpi_float, ompi_mpi_op_sum, ...).
#ifndef GOTRAIN_MPI_OMPI_H
#define GOTRAIN_MPI_OMPI_H

#include <stddef.h>
#include <stdint.h>

// A handle: void pointers, so that cgo gives Go unsafe.Pointer.
#define gtmpi_handle void *

// Datatypes and reduction ops by gotrain's numbering.
enum { GTMPI_BYTE = 0, GTMPI_FLOAT = 1, GTMPI_DOUBLE = 2 };
enum { GTMPI_SUM = 0 };

// gtmpi_load opens the library at path and resolves every symbol; on failure
// it writes a message to err and returns -1.
int gtmpi_load(const char *path, char *err, int errlen);

int gtmpi_init(int *provided);
int gtmpi_finalize(void);
gtmpi_handle gtmpi_world(void);
int gtmpi_rank(gtmpi_handle comm, int *rank);
int gtmpi_size(gtmpi_handle comm, int *size);
int gtmpi_dup(gtmpi_handle comm, gtmpi_handle *out);
int gtmpi_errors_return(gtmpi_handle comm);
int gtmpi_iallreduce(void *buf, int count, int dtype, int op, gtmpi_handle comm, gtmpi_handle *req);
int gtmpi_ibcast(void *buf, int count, int root, gtmpi_handle comm, gtmpi_handle *req);
int gtmpi_iallgatherv(const void *send, int count, void *recv, const int *counts, const int *displs, gtmpi_handle comm, gtmpi_handle *req);
int gtmpi_ibarrier(gtmpi_handle comm, gtmpi_handle *req);
int gtmpi_isend(const void *buf, int count, int dest, int tag, gtmpi_handle comm, gtmpi_handle *req);
int gtmpi_irecv(void *buf, int count, int src, int tag, gtmpi_handle comm, gtmpi_handle *req);
int gtmpi_test(gtmpi_handle *req, int *done);
int gtmpi_cancel(gtmpi_handle *req);
int gtmpi_request_free(gtmpi_handle *req);
void gtmpi_error_string(int code, char *out, int outlen);
void gtmpi_library_version(char *out, int outlen);
void gtmpi_processor_name(char *out, int outlen);

#endif
