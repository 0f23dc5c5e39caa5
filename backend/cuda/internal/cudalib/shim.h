// The CUDA entry points the backend calls, resolved at run time with
// dlsym. The types are the ABI of cuda.h, nvrtc.h and cublas_v2.h spelled
// without those headers (so that building needs no CUDA toolkit);
// protocheck/check.c checks them against the real headers.
#ifndef GOTRAIN_CUDALIB_SHIM_H
#define GOTRAIN_CUDALIB_SHIM_H

#include <stddef.h>

typedef unsigned long long gt_addr; // CUdeviceptr (64-bit)
typedef int gt_result;              // CUresult, nvrtcResult, cublasStatus_t
typedef int gt_device;              // CUdevice

// ---- driver API (libcuda.so.1) ----
typedef gt_result (*gt_cuInit_t)(unsigned int);
typedef gt_result (*gt_cuDriverGetVersion_t)(int*);
typedef gt_result (*gt_cuDeviceGetCount_t)(int*);
typedef gt_result (*gt_cuDeviceGet_t)(gt_device*, int);
typedef gt_result (*gt_cuDeviceGetName_t)(char*, int, gt_device);
typedef gt_result (*gt_cuDeviceGetAttribute_t)(int*, int, gt_device);
typedef gt_result (*gt_cuDeviceTotalMem_t)(size_t*, gt_device);
typedef gt_result (*gt_cuDevicePrimaryCtxRetain_t)(void**, gt_device);
typedef gt_result (*gt_cuDevicePrimaryCtxRelease_t)(gt_device);
typedef gt_result (*gt_cuCtxSetCurrent_t)(void*);
typedef gt_result (*gt_cuStreamCreate_t)(void**, unsigned int);
typedef gt_result (*gt_cuStreamDestroy_t)(void*);
typedef gt_result (*gt_cuStreamSynchronize_t)(void*);
typedef gt_result (*gt_cuMemAlloc_t)(gt_addr*, size_t);
typedef gt_result (*gt_cuMemFree_t)(gt_addr);
typedef gt_result (*gt_cuMemAllocHost_t)(void**, size_t);
typedef gt_result (*gt_cuMemFreeHost_t)(void*);
typedef gt_result (*gt_cuMemGetInfo_t)(size_t*, size_t*);
typedef gt_result (*gt_cuMemcpyHtoDAsync_t)(gt_addr, const void*, size_t, void*);
typedef gt_result (*gt_cuMemcpyDtoHAsync_t)(void*, gt_addr, size_t, void*);
typedef gt_result (*gt_cuMemcpyDtoDAsync_t)(gt_addr, gt_addr, size_t, void*);
typedef gt_result (*gt_cuMemsetD32Async_t)(gt_addr, unsigned int, size_t, void*);
typedef gt_result (*gt_cuModuleLoadData_t)(void**, const void*);
typedef gt_result (*gt_cuModuleUnload_t)(void*);
typedef gt_result (*gt_cuModuleGetFunction_t)(void**, void*, const char*);
typedef gt_result (*gt_cuLaunchKernel_t)(void*, unsigned int, unsigned int, unsigned int, unsigned int, unsigned int,
		unsigned int, unsigned int, void*, void**, void**);
typedef gt_result (*gt_cuEventCreate_t)(void**, unsigned int);
typedef gt_result (*gt_cuEventRecord_t)(void*, void*);
typedef gt_result (*gt_cuEventDestroy_t)(void*);
typedef gt_result (*gt_cuStreamWaitEvent_t)(void*, void*, unsigned int);
typedef gt_result (*gt_cuMemcpyPeerAsync_t)(gt_addr, void*, gt_addr, void*, size_t, void*);
typedef gt_result (*gt_cuStreamBeginCapture_t)(void*, int);
typedef gt_result (*gt_cuStreamEndCapture_t)(void*, void**);
typedef gt_result (*gt_cuGraphInstantiateWithFlags_t)(void**, void*, unsigned long long);
typedef gt_result (*gt_cuGraphLaunch_t)(void*, void*);
typedef gt_result (*gt_cuGraphExecDestroy_t)(void*);
typedef gt_result (*gt_cuGraphDestroy_t)(void*);
typedef gt_result (*gt_cuGetErrorName_t)(gt_result, const char**);
typedef gt_result (*gt_cuGetErrorString_t)(gt_result, const char**);

// ---- NVRTC ----
typedef gt_result (*gt_nvrtcVersion_t)(int*, int*);
typedef gt_result (*gt_nvrtcCreateProgram_t)(void**, const char*, const char*, int, const char* const*, const char* const*);
typedef gt_result (*gt_nvrtcCompileProgram_t)(void*, int, const char* const*);
typedef gt_result (*gt_nvrtcGetSize_t)(void*, size_t*);
typedef gt_result (*gt_nvrtcGet_t)(void*, char*);
typedef gt_result (*gt_nvrtcDestroyProgram_t)(void**);
typedef const char* (*gt_nvrtcGetErrorString_t)(gt_result);

// ---- cuBLAS (the v2 API) ----
typedef gt_result (*gt_cublasCreate_t)(void**);
typedef gt_result (*gt_cublasDestroy_t)(void*);
typedef gt_result (*gt_cublasSetStream_t)(void*, void*);
typedef gt_result (*gt_cublasSetMathMode_t)(void*, int);
typedef gt_result (*gt_cublasGetVersion_t)(void*, int*);
typedef gt_result (*gt_cublasSetWorkspace_t)(void*, void*, size_t);
typedef gt_result (*gt_cublasSgemm_t)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
		const float*, float*, int);
typedef gt_result (*gt_cublasSgemmStridedBatched_t)(void*, int, int, int, int, int, const float*, const float*, int,
		long long, const float*, int, long long, const float*, float*, int, long long, int);

void* gt_open(const char* path, int global);
const char* gt_dlerror(void);
const char* gt_bind_driver(void* h);
const char* gt_bind_nvrtc(void* h);
const char* gt_bind_cublas(void* h);

// Driver calls.
gt_result gt_cuInit(void);
gt_result gt_cuDriverGetVersion(int* v);
gt_result gt_cuDeviceGetCount(int* n);
gt_result gt_cuDeviceGet(gt_device* d, int ordinal);
gt_result gt_cuDeviceGetName(char* name, int len, gt_device d);
gt_result gt_cuDeviceGetAttribute(int* v, int attr, gt_device d);
gt_result gt_cuDeviceTotalMem(size_t* bytes, gt_device d);
gt_result gt_cuDevicePrimaryCtxRetain(void** ctx, gt_device d);
gt_result gt_cuDevicePrimaryCtxRelease(gt_device d);
gt_result gt_cuCtxSetCurrent(void* ctx);
gt_result gt_cuStreamCreate(void** s);
gt_result gt_cuStreamDestroy(void* s);
gt_result gt_cuStreamSynchronize(void* s);
gt_result gt_cuMemAlloc(gt_addr* p, size_t n);
gt_result gt_cuMemFree(gt_addr p);
gt_result gt_cuMemAllocHost(void** p, size_t n);
gt_result gt_cuMemFreeHost(void* p);
gt_result gt_cuMemGetInfo(size_t* free, size_t* total);
gt_result gt_cuMemcpyHtoDAsync(gt_addr dst, const void* src, size_t n, void* s);
gt_result gt_cuMemcpyDtoHAsync(void* dst, gt_addr src, size_t n, void* s);
gt_result gt_cuMemcpyDtoDAsync(gt_addr dst, gt_addr src, size_t n, void* s);
gt_result gt_cuMemsetD32Async(gt_addr p, unsigned int v, size_t n, void* s);
gt_result gt_cuModuleLoadData(void** m, const void* image);
gt_result gt_cuModuleUnload(void* m);
gt_result gt_cuModuleGetFunction(void** f, void* m, const char* name);
gt_result gt_cuLaunchKernel(void* f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
		unsigned int bz, unsigned int shared, void* s, void** params);
gt_result gt_cuEventCreate(void** e);
gt_result gt_cuEventRecord(void* e, void* s);
gt_result gt_cuEventDestroy(void* e);
gt_result gt_cuStreamWaitEvent(void* s, void* e);
gt_result gt_cuMemcpyPeerAsync(gt_addr dst, void* dstCtx, gt_addr src, void* srcCtx, size_t n, void* s);
gt_result gt_cuStreamBeginCapture(void* s);
gt_result gt_cuStreamEndCapture(void* s, void** graph);
gt_result gt_cuGraphInstantiate(void** exec, void* graph);
gt_result gt_cuGraphLaunch(void* exec, void* s);
gt_result gt_cuGraphExecDestroy(void* exec);
gt_result gt_cuGraphDestroy(void* graph);
const char* gt_cuErrorName(gt_result r);
const char* gt_cuErrorString(gt_result r);
void gt_host_copy(void* dst, const void* src, size_t n);

// NVRTC calls.
gt_result gt_nvrtcVersion(int* major, int* minor);
const char* gt_nvrtcErrorString(gt_result r);
gt_result gt_nvrtcCreateProgram(void** prog, const char* src, const char* name);
gt_result gt_nvrtcCompileProgram(void* prog, int n, const char* const* opts);
gt_result gt_nvrtcGetPTXSize(void* prog, size_t* n);
gt_result gt_nvrtcGetPTX(void* prog, char* buf);
gt_result gt_nvrtcGetProgramLogSize(void* prog, size_t* n);
gt_result gt_nvrtcGetProgramLog(void* prog, char* buf);
gt_result gt_nvrtcDestroyProgram(void** prog);

// cuBLAS calls (device addresses as gt_addr; alpha and beta by value).
gt_result gt_cublasCreate(void** h);
gt_result gt_cublasDestroy(void* h);
gt_result gt_cublasSetStream(void* h, void* s);
gt_result gt_cublasSetMathMode(void* h, int mode);
gt_result gt_cublasGetVersion(void* h, int* v);
int gt_cublas_has_workspace(void);
gt_result gt_cublasSetWorkspace(void* h, gt_addr ws, size_t n);
gt_result gt_cublasSgemm(void* h, int ta, int tb, int m, int n, int k, float alpha, gt_addr a, int lda, gt_addr b,
		int ldb, float beta, gt_addr c, int ldc);
gt_result gt_cublasSgemmStridedBatched(void* h, int ta, int tb, int m, int n, int k, float alpha, gt_addr a, int lda,
		long long sa, gt_addr b, int ldb, long long sb, float beta, gt_addr c, int ldc, long long sc, int batch);

#endif
