//go:build cgo

// Definitions of shim.h: the function pointers, their binding, and the
// wrappers Go calls.
#include <dlfcn.h>
#include <string.h>
#include "shim.h"

static gt_cuInit_t p_cuInit;
static gt_cuDriverGetVersion_t p_cuDriverGetVersion;
static gt_cuDeviceGetCount_t p_cuDeviceGetCount;
static gt_cuDeviceGet_t p_cuDeviceGet;
static gt_cuDeviceGetName_t p_cuDeviceGetName;
static gt_cuDeviceGetAttribute_t p_cuDeviceGetAttribute;
static gt_cuDeviceTotalMem_t p_cuDeviceTotalMem;
static gt_cuDevicePrimaryCtxRetain_t p_cuDevicePrimaryCtxRetain;
static gt_cuDevicePrimaryCtxRelease_t p_cuDevicePrimaryCtxRelease;
static gt_cuCtxSetCurrent_t p_cuCtxSetCurrent;
static gt_cuStreamCreate_t p_cuStreamCreate;
static gt_cuStreamDestroy_t p_cuStreamDestroy;
static gt_cuStreamSynchronize_t p_cuStreamSynchronize;
static gt_cuMemAlloc_t p_cuMemAlloc;
static gt_cuMemFree_t p_cuMemFree;
static gt_cuMemAllocHost_t p_cuMemAllocHost;
static gt_cuMemFreeHost_t p_cuMemFreeHost;
static gt_cuMemGetInfo_t p_cuMemGetInfo;
static gt_cuMemcpyHtoDAsync_t p_cuMemcpyHtoDAsync;
static gt_cuMemcpyDtoHAsync_t p_cuMemcpyDtoHAsync;
static gt_cuMemcpyDtoDAsync_t p_cuMemcpyDtoDAsync;
static gt_cuMemsetD32Async_t p_cuMemsetD32Async;
static gt_cuModuleLoadData_t p_cuModuleLoadData;
static gt_cuModuleUnload_t p_cuModuleUnload;
static gt_cuModuleGetFunction_t p_cuModuleGetFunction;
static gt_cuLaunchKernel_t p_cuLaunchKernel;
static gt_cuEventCreate_t p_cuEventCreate;
static gt_cuEventRecord_t p_cuEventRecord;
static gt_cuEventDestroy_t p_cuEventDestroy;
static gt_cuStreamWaitEvent_t p_cuStreamWaitEvent;
static gt_cuMemcpyPeerAsync_t p_cuMemcpyPeerAsync;
static gt_cuStreamBeginCapture_t p_cuStreamBeginCapture;
static gt_cuStreamEndCapture_t p_cuStreamEndCapture;
static gt_cuGraphInstantiateWithFlags_t p_cuGraphInstantiateWithFlags;
static gt_cuGraphLaunch_t p_cuGraphLaunch;
static gt_cuGraphExecDestroy_t p_cuGraphExecDestroy;
static gt_cuGraphDestroy_t p_cuGraphDestroy;
static gt_cuGetErrorName_t p_cuGetErrorName;
static gt_cuGetErrorString_t p_cuGetErrorString;
static gt_nvrtcVersion_t p_nvrtcVersion;
static gt_nvrtcCreateProgram_t p_nvrtcCreateProgram;
static gt_nvrtcCompileProgram_t p_nvrtcCompileProgram;
static gt_nvrtcGetSize_t p_nvrtcGetPTXSize;
static gt_nvrtcGet_t p_nvrtcGetPTX;
static gt_nvrtcGetSize_t p_nvrtcGetProgramLogSize;
static gt_nvrtcGet_t p_nvrtcGetProgramLog;
static gt_nvrtcDestroyProgram_t p_nvrtcDestroyProgram;
static gt_nvrtcGetErrorString_t p_nvrtcGetErrorString;
static gt_cublasCreate_t p_cublasCreate;
static gt_cublasDestroy_t p_cublasDestroy;
static gt_cublasSetStream_t p_cublasSetStream;
static gt_cublasSetMathMode_t p_cublasSetMathMode;
static gt_cublasGetVersion_t p_cublasGetVersion;
static gt_cublasSetWorkspace_t p_cublasSetWorkspace;
static gt_cublasSgemm_t p_cublasSgemm;
static gt_cublasSgemmStridedBatched_t p_cublasSgemmStridedBatched;

void* gt_open(const char* path, int global) { return dlopen(path, RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)); }
const char* gt_dlerror(void) { const char* e = dlerror(); return e ? e : "unknown error"; }

#define BIND(v, name) if (!(*(void**)&v = dlsym(h, name))) return name;

const char* gt_bind_driver(void* h) {
	BIND(p_cuInit, "cuInit")
	BIND(p_cuDriverGetVersion, "cuDriverGetVersion")
	BIND(p_cuDeviceGetCount, "cuDeviceGetCount")
	BIND(p_cuDeviceGet, "cuDeviceGet")
	BIND(p_cuDeviceGetName, "cuDeviceGetName")
	BIND(p_cuDeviceGetAttribute, "cuDeviceGetAttribute")
	BIND(p_cuDeviceTotalMem, "cuDeviceTotalMem_v2")
	BIND(p_cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain")
	BIND(p_cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2")
	BIND(p_cuCtxSetCurrent, "cuCtxSetCurrent")
	BIND(p_cuStreamCreate, "cuStreamCreate")
	BIND(p_cuStreamDestroy, "cuStreamDestroy_v2")
	BIND(p_cuStreamSynchronize, "cuStreamSynchronize")
	BIND(p_cuMemAlloc, "cuMemAlloc_v2")
	BIND(p_cuMemFree, "cuMemFree_v2")
	BIND(p_cuMemAllocHost, "cuMemAllocHost_v2")
	BIND(p_cuMemFreeHost, "cuMemFreeHost")
	BIND(p_cuMemGetInfo, "cuMemGetInfo_v2")
	BIND(p_cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2")
	BIND(p_cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2")
	BIND(p_cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2")
	BIND(p_cuMemsetD32Async, "cuMemsetD32Async")
	BIND(p_cuModuleLoadData, "cuModuleLoadData")
	BIND(p_cuModuleUnload, "cuModuleUnload")
	BIND(p_cuModuleGetFunction, "cuModuleGetFunction")
	BIND(p_cuLaunchKernel, "cuLaunchKernel")
	BIND(p_cuEventCreate, "cuEventCreate")
	BIND(p_cuEventRecord, "cuEventRecord")
	BIND(p_cuEventDestroy, "cuEventDestroy_v2")
	BIND(p_cuStreamWaitEvent, "cuStreamWaitEvent")
	BIND(p_cuMemcpyPeerAsync, "cuMemcpyPeerAsync")
	BIND(p_cuStreamBeginCapture, "cuStreamBeginCapture_v2")
	BIND(p_cuStreamEndCapture, "cuStreamEndCapture")
	BIND(p_cuGraphInstantiateWithFlags, "cuGraphInstantiateWithFlags")
	BIND(p_cuGraphLaunch, "cuGraphLaunch")
	BIND(p_cuGraphExecDestroy, "cuGraphExecDestroy")
	BIND(p_cuGraphDestroy, "cuGraphDestroy")
	BIND(p_cuGetErrorName, "cuGetErrorName")
	BIND(p_cuGetErrorString, "cuGetErrorString")
	return NULL;
}

const char* gt_bind_nvrtc(void* h) {
	BIND(p_nvrtcVersion, "nvrtcVersion")
	BIND(p_nvrtcCreateProgram, "nvrtcCreateProgram")
	BIND(p_nvrtcCompileProgram, "nvrtcCompileProgram")
	BIND(p_nvrtcGetPTXSize, "nvrtcGetPTXSize")
	BIND(p_nvrtcGetPTX, "nvrtcGetPTX")
	BIND(p_nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize")
	BIND(p_nvrtcGetProgramLog, "nvrtcGetProgramLog")
	BIND(p_nvrtcDestroyProgram, "nvrtcDestroyProgram")
	BIND(p_nvrtcGetErrorString, "nvrtcGetErrorString")
	return NULL;
}

const char* gt_bind_cublas(void* h) {
	BIND(p_cublasCreate, "cublasCreate_v2")
	BIND(p_cublasDestroy, "cublasDestroy_v2")
	BIND(p_cublasSetStream, "cublasSetStream_v2")
	BIND(p_cublasSetMathMode, "cublasSetMathMode")
	BIND(p_cublasGetVersion, "cublasGetVersion_v2")
	BIND(p_cublasSgemm, "cublasSgemm_v2")
	// Optional (cuBLAS 11.4 and later): a workspace of our own, so that a
	// product captured into a CUDA graph allocates nothing.
	*(void**)&p_cublasSetWorkspace = dlsym(h, "cublasSetWorkspace_v2");
	BIND(p_cublasSgemmStridedBatched, "cublasSgemmStridedBatched")
	return NULL;
}

gt_result gt_cuInit(void) { return p_cuInit(0); }
gt_result gt_cuDriverGetVersion(int* v) { return p_cuDriverGetVersion(v); }
gt_result gt_cuDeviceGetCount(int* n) { return p_cuDeviceGetCount(n); }
gt_result gt_cuDeviceGet(gt_device* d, int ordinal) { return p_cuDeviceGet(d, ordinal); }
gt_result gt_cuDeviceGetName(char* name, int len, gt_device d) { return p_cuDeviceGetName(name, len, d); }
gt_result gt_cuDeviceGetAttribute(int* v, int attr, gt_device d) { return p_cuDeviceGetAttribute(v, attr, d); }
gt_result gt_cuDeviceTotalMem(size_t* bytes, gt_device d) { return p_cuDeviceTotalMem(bytes, d); }
gt_result gt_cuDevicePrimaryCtxRetain(void** ctx, gt_device d) { return p_cuDevicePrimaryCtxRetain(ctx, d); }
gt_result gt_cuDevicePrimaryCtxRelease(gt_device d) { return p_cuDevicePrimaryCtxRelease(d); }
gt_result gt_cuCtxSetCurrent(void* ctx) { return p_cuCtxSetCurrent(ctx); }
gt_result gt_cuStreamCreate(void** s) { return p_cuStreamCreate(s, 1); } // CU_STREAM_NON_BLOCKING
gt_result gt_cuStreamDestroy(void* s) { return p_cuStreamDestroy(s); }
gt_result gt_cuStreamSynchronize(void* s) { return p_cuStreamSynchronize(s); }
gt_result gt_cuMemAlloc(gt_addr* p, size_t n) { return p_cuMemAlloc(p, n); }
gt_result gt_cuMemFree(gt_addr p) { return p_cuMemFree(p); }
gt_result gt_cuMemAllocHost(void** p, size_t n) { return p_cuMemAllocHost(p, n); }
gt_result gt_cuMemFreeHost(void* p) { return p_cuMemFreeHost(p); }
gt_result gt_cuMemGetInfo(size_t* free, size_t* total) { return p_cuMemGetInfo(free, total); }
gt_result gt_cuMemcpyHtoDAsync(gt_addr dst, const void* src, size_t n, void* s) { return p_cuMemcpyHtoDAsync(dst, src, n, s); }
gt_result gt_cuMemcpyDtoHAsync(void* dst, gt_addr src, size_t n, void* s) { return p_cuMemcpyDtoHAsync(dst, src, n, s); }
gt_result gt_cuMemcpyDtoDAsync(gt_addr dst, gt_addr src, size_t n, void* s) { return p_cuMemcpyDtoDAsync(dst, src, n, s); }
gt_result gt_cuMemsetD32Async(gt_addr p, unsigned int v, size_t n, void* s) { return p_cuMemsetD32Async(p, v, n, s); }
gt_result gt_cuModuleLoadData(void** m, const void* image) { return p_cuModuleLoadData(m, image); }
gt_result gt_cuModuleUnload(void* m) { return p_cuModuleUnload(m); }
gt_result gt_cuModuleGetFunction(void** f, void* m, const char* name) { return p_cuModuleGetFunction(f, m, name); }
gt_result gt_cuLaunchKernel(void* f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
		unsigned int bz, unsigned int shared, void* s, void** params) {
	return p_cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, s, params, NULL);
}
gt_result gt_cuEventCreate(void** e) { return p_cuEventCreate(e, 2); } // CU_EVENT_DISABLE_TIMING
gt_result gt_cuEventRecord(void* e, void* s) { return p_cuEventRecord(e, s); }
gt_result gt_cuEventDestroy(void* e) { return p_cuEventDestroy(e); }
gt_result gt_cuStreamWaitEvent(void* s, void* e) { return p_cuStreamWaitEvent(s, e, 0); }
gt_result gt_cuMemcpyPeerAsync(gt_addr dst, void* dstCtx, gt_addr src, void* srcCtx, size_t n, void* s) {
	return p_cuMemcpyPeerAsync(dst, dstCtx, src, srcCtx, n, s);
}
// CU_STREAM_CAPTURE_MODE_THREAD_LOCAL: only this thread must not make
// calls that are unsafe during a capture (other devices may allocate).
gt_result gt_cuStreamBeginCapture(void* s) { return p_cuStreamBeginCapture(s, 1); }
gt_result gt_cuStreamEndCapture(void* s, void** graph) { return p_cuStreamEndCapture(s, graph); }
gt_result gt_cuGraphInstantiate(void** exec, void* graph) { return p_cuGraphInstantiateWithFlags(exec, graph, 0); }
gt_result gt_cuGraphLaunch(void* exec, void* s) { return p_cuGraphLaunch(exec, s); }
gt_result gt_cuGraphExecDestroy(void* exec) { return p_cuGraphExecDestroy(exec); }
gt_result gt_cuGraphDestroy(void* graph) { return p_cuGraphDestroy(graph); }
const char* gt_cuErrorName(gt_result r) {
	const char* s = NULL;
	if (!p_cuGetErrorName || p_cuGetErrorName(r, &s) != 0 || !s) return "CUDA_ERROR_UNKNOWN_CODE";
	return s;
}
const char* gt_cuErrorString(gt_result r) {
	const char* s = NULL;
	if (!p_cuGetErrorString || p_cuGetErrorString(r, &s) != 0 || !s) return "";
	return s;
}
void gt_host_copy(void* dst, const void* src, size_t n) { memcpy(dst, src, n); }

gt_result gt_nvrtcVersion(int* major, int* minor) { return p_nvrtcVersion(major, minor); }
const char* gt_nvrtcErrorString(gt_result r) { return p_nvrtcGetErrorString(r); }
gt_result gt_nvrtcCreateProgram(void** prog, const char* src, const char* name) {
	return p_nvrtcCreateProgram(prog, src, name, 0, NULL, NULL);
}
gt_result gt_nvrtcCompileProgram(void* prog, int n, const char* const* opts) { return p_nvrtcCompileProgram(prog, n, opts); }
gt_result gt_nvrtcGetPTXSize(void* prog, size_t* n) { return p_nvrtcGetPTXSize(prog, n); }
gt_result gt_nvrtcGetPTX(void* prog, char* buf) { return p_nvrtcGetPTX(prog, buf); }
gt_result gt_nvrtcGetProgramLogSize(void* prog, size_t* n) { return p_nvrtcGetProgramLogSize(prog, n); }
gt_result gt_nvrtcGetProgramLog(void* prog, char* buf) { return p_nvrtcGetProgramLog(prog, buf); }
gt_result gt_nvrtcDestroyProgram(void** prog) { return p_nvrtcDestroyProgram(prog); }

gt_result gt_cublasCreate(void** h) { return p_cublasCreate(h); }
gt_result gt_cublasDestroy(void* h) { return p_cublasDestroy(h); }
gt_result gt_cublasSetStream(void* h, void* s) { return p_cublasSetStream(h, s); }
gt_result gt_cublasSetMathMode(void* h, int mode) { return p_cublasSetMathMode(h, mode); }
gt_result gt_cublasGetVersion(void* h, int* v) { return p_cublasGetVersion(h, v); }
int gt_cublas_has_workspace(void) { return p_cublasSetWorkspace != NULL; }
gt_result gt_cublasSetWorkspace(void* h, gt_addr ws, size_t n) { return p_cublasSetWorkspace(h, (void*)ws, n); }
gt_result gt_cublasSgemm(void* h, int ta, int tb, int m, int n, int k, float alpha, gt_addr a, int lda, gt_addr b,
		int ldb, float beta, gt_addr c, int ldc) {
	return p_cublasSgemm(h, ta, tb, m, n, k, &alpha, (const float*)a, lda, (const float*)b, ldb, &beta, (float*)c, ldc);
}
gt_result gt_cublasSgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k, float alpha, gt_addr a, int lda,
		long long sa, gt_addr b, int ldb, long long sb, float beta, gt_addr c, int ldc, long long sc, int batch) {
	return p_cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, (const float*)a, lda, sa, (const float*)b, ldb, sb,
		&beta, (float*)c, ldc, sc, batch);
}
