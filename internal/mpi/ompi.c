//go:build cgo

#include "ompi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

// From OpenMPI's mpi.h: MPI_THREAD_FUNNELED, MPI_IN_PLACE, the string sizes.
#define OMPI_THREAD_FUNNELED 1
#define OMPI_IN_PLACE ((void *)1)
#define OMPI_MAX_STRING 256

static void *lib;

static int (*p_init_thread)(int *, char ***, int, int *);
static int (*p_finalize)(void);
static int (*p_comm_rank)(gtmpi_handle, int *);
static int (*p_comm_size)(gtmpi_handle, int *);
static int (*p_comm_dup)(gtmpi_handle, gtmpi_handle *);
static int (*p_comm_set_errhandler)(gtmpi_handle, gtmpi_handle);
static int (*p_iallreduce)(const void *, void *, int, gtmpi_handle, gtmpi_handle, gtmpi_handle, gtmpi_handle *);
static int (*p_ibcast)(void *, int, gtmpi_handle, int, gtmpi_handle, gtmpi_handle *);
static int (*p_iallgatherv)(const void *, int, gtmpi_handle, void *, const int *, const int *, gtmpi_handle, gtmpi_handle, gtmpi_handle *);
static int (*p_ibarrier)(gtmpi_handle, gtmpi_handle *);
static int (*p_isend)(const void *, int, gtmpi_handle, int, int, gtmpi_handle, gtmpi_handle *);
static int (*p_irecv)(void *, int, gtmpi_handle, int, int, gtmpi_handle, gtmpi_handle *);
static int (*p_test)(gtmpi_handle *, int *, void *);
static int (*p_cancel)(gtmpi_handle *);
static int (*p_request_free)(gtmpi_handle *);
static int (*p_error_string)(int, char *, int *);
static int (*p_get_library_version)(char *, int *);
static int (*p_get_processor_name)(char *, int *);

static gtmpi_handle comm_world;
static gtmpi_handle errors_return;
static gtmpi_handle dtypes[3];
static gtmpi_handle ops[1];

static int sym(void **dst, const char *name, char *err, int errlen) {
	*dst = dlsym(lib, name);
	if (*dst == NULL) {
		snprintf(err, errlen, "symbol %s not found (is this OpenMPI's libmpi?)", name);
		return -1;
	}
	return 0;
}

int gtmpi_load(const char *path, char *err, int errlen) {
	if (lib != NULL) {
		return 0;
	}
	// RTLD_GLOBAL: OpenMPI's components, loaded later with dlopen, resolve
	// the library's symbols through the global namespace.
	void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (h == NULL) {
		snprintf(err, errlen, "%s", dlerror());
		return -1;
	}
	lib = h;
	struct {
		void **dst;
		const char *name;
	} syms[] = {
		{(void **)&p_init_thread, "MPI_Init_thread"},
		{(void **)&p_finalize, "MPI_Finalize"},
		{(void **)&p_comm_rank, "MPI_Comm_rank"},
		{(void **)&p_comm_size, "MPI_Comm_size"},
		{(void **)&p_comm_dup, "MPI_Comm_dup"},
		{(void **)&p_comm_set_errhandler, "MPI_Comm_set_errhandler"},
		{(void **)&p_iallreduce, "MPI_Iallreduce"},
		{(void **)&p_ibcast, "MPI_Ibcast"},
		{(void **)&p_iallgatherv, "MPI_Iallgatherv"},
		{(void **)&p_ibarrier, "MPI_Ibarrier"},
		{(void **)&p_isend, "MPI_Isend"},
		{(void **)&p_irecv, "MPI_Irecv"},
		{(void **)&p_test, "MPI_Test"},
		{(void **)&p_cancel, "MPI_Cancel"},
		{(void **)&p_request_free, "MPI_Request_free"},
		{(void **)&p_error_string, "MPI_Error_string"},
		{(void **)&p_get_library_version, "MPI_Get_library_version"},
		{(void **)&p_get_processor_name, "MPI_Get_processor_name"},
		{&comm_world, "ompi_mpi_comm_world"},
		{&errors_return, "ompi_mpi_errors_return"},
		{&dtypes[GTMPI_BYTE], "ompi_mpi_byte"},
		{&dtypes[GTMPI_FLOAT], "ompi_mpi_float"},
		{&dtypes[GTMPI_DOUBLE], "ompi_mpi_double"},
		{&ops[GTMPI_SUM], "ompi_mpi_op_sum"},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		if (sym(syms[i].dst, syms[i].name, err, errlen) != 0) {
			return -1;
		}
	}
	return 0;
}

int gtmpi_init(int *provided) { return p_init_thread(NULL, NULL, OMPI_THREAD_FUNNELED, provided); }
int gtmpi_finalize(void) { return p_finalize(); }
gtmpi_handle gtmpi_world(void) { return comm_world; }
int gtmpi_rank(gtmpi_handle comm, int *rank) { return p_comm_rank(comm, rank); }
int gtmpi_size(gtmpi_handle comm, int *size) { return p_comm_size(comm, size); }
int gtmpi_dup(gtmpi_handle comm, gtmpi_handle *out) { return p_comm_dup(comm, out); }
int gtmpi_errors_return(gtmpi_handle comm) { return p_comm_set_errhandler(comm, errors_return); }

int gtmpi_iallreduce(void *buf, int count, int dtype, int op, gtmpi_handle comm, gtmpi_handle *req) {
	return p_iallreduce(OMPI_IN_PLACE, buf, count, dtypes[dtype], ops[op], comm, req);
}

int gtmpi_ibcast(void *buf, int count, int root, gtmpi_handle comm, gtmpi_handle *req) {
	return p_ibcast(buf, count, dtypes[GTMPI_BYTE], root, comm, req);
}

int gtmpi_iallgatherv(const void *send, int count, void *recv, const int *counts, const int *displs, gtmpi_handle comm, gtmpi_handle *req) {
	return p_iallgatherv(send, count, dtypes[GTMPI_BYTE], recv, counts, displs, dtypes[GTMPI_BYTE], comm, req);
}

int gtmpi_ibarrier(gtmpi_handle comm, gtmpi_handle *req) { return p_ibarrier(comm, req); }

int gtmpi_isend(const void *buf, int count, int dest, int tag, gtmpi_handle comm, gtmpi_handle *req) {
	return p_isend(buf, count, dtypes[GTMPI_BYTE], dest, tag, comm, req);
}

int gtmpi_irecv(void *buf, int count, int src, int tag, gtmpi_handle comm, gtmpi_handle *req) {
	return p_irecv(buf, count, dtypes[GTMPI_BYTE], src, tag, comm, req);
}

// MPI_STATUS_IGNORE is a null pointer in OpenMPI.
int gtmpi_test(gtmpi_handle *req, int *done) { return p_test(req, done, NULL); }
int gtmpi_cancel(gtmpi_handle *req) { return p_cancel(req); }
int gtmpi_request_free(gtmpi_handle *req) { return p_request_free(req); }

void gtmpi_error_string(int code, char *out, int outlen) {
	char buf[OMPI_MAX_STRING + 1];
	int n = 0;
	if (p_error_string == NULL || p_error_string(code, buf, &n) != 0) {
		snprintf(out, outlen, "MPI error %d", code);
		return;
	}
	buf[n < OMPI_MAX_STRING ? n : OMPI_MAX_STRING] = 0;
	snprintf(out, outlen, "%s", buf);
}

// mpi_string copies a string that get writes (MPI's string getters: at
// most OMPI_MAX_STRING bytes and their length) into out.
static void mpi_string(int (*get)(char *, int *), char *out, int outlen) {
	char buf[OMPI_MAX_STRING + 1];
	int n = 0;
	if (get(buf, &n) != 0) {
		n = 0;
	}
	buf[n < OMPI_MAX_STRING ? n : OMPI_MAX_STRING] = 0;
	snprintf(out, outlen, "%s", buf);
}

void gtmpi_library_version(char *out, int outlen) { mpi_string(p_get_library_version, out, outlen); }
void gtmpi_processor_name(char *out, int outlen) { mpi_string(p_get_processor_name, out, outlen); }
