// Checks shim.h against the real CUDA headers: every function pointer type
// must accept the function the header declares. Compiled (never linked) by
// `make vet-cuda` with -Werror after scripts/cuda-deps.sh --headers.
#include <cuda.h>
#include <nvrtc.h>
#include <cublas_v2.h>
#include "../shim.h"

gt_cuInit_t check_cuInit = cuInit;
gt_cuDriverGetVersion_t check_cuDriverGetVersion = cuDriverGetVersion;
gt_cuDeviceGetCount_t check_cuDeviceGetCount = cuDeviceGetCount;
gt_cuDeviceGet_t check_cuDeviceGet = cuDeviceGet;
gt_cuDeviceGetName_t check_cuDeviceGetName = cuDeviceGetName;
gt_cuDeviceGetAttribute_t check_cuDeviceGetAttribute = cuDeviceGetAttribute;
gt_cuDeviceTotalMem_t check_cuDeviceTotalMem = cuDeviceTotalMem_v2;
gt_cuDevicePrimaryCtxRetain_t check_cuDevicePrimaryCtxRetain = cuDevicePrimaryCtxRetain;
gt_cuDevicePrimaryCtxRelease_t check_cuDevicePrimaryCtxRelease = cuDevicePrimaryCtxRelease_v2;
gt_cuCtxSetCurrent_t check_cuCtxSetCurrent = cuCtxSetCurrent;
gt_cuStreamCreate_t check_cuStreamCreate = cuStreamCreate;
gt_cuStreamDestroy_t check_cuStreamDestroy = cuStreamDestroy_v2;
gt_cuStreamSynchronize_t check_cuStreamSynchronize = cuStreamSynchronize;
gt_cuMemAlloc_t check_cuMemAlloc = cuMemAlloc_v2;
gt_cuMemFree_t check_cuMemFree = cuMemFree_v2;
gt_cuMemAllocHost_t check_cuMemAllocHost = cuMemAllocHost_v2;
gt_cuMemFreeHost_t check_cuMemFreeHost = cuMemFreeHost;
gt_cuMemGetInfo_t check_cuMemGetInfo = cuMemGetInfo_v2;
gt_cuMemcpyHtoDAsync_t check_cuMemcpyHtoDAsync = cuMemcpyHtoDAsync_v2;
gt_cuMemcpyDtoHAsync_t check_cuMemcpyDtoHAsync = cuMemcpyDtoHAsync_v2;
gt_cuMemcpyDtoDAsync_t check_cuMemcpyDtoDAsync = cuMemcpyDtoDAsync_v2;
gt_cuMemsetD32Async_t check_cuMemsetD32Async = cuMemsetD32Async;
gt_cuModuleLoadData_t check_cuModuleLoadData = cuModuleLoadData;
gt_cuModuleUnload_t check_cuModuleUnload = cuModuleUnload;
gt_cuModuleGetFunction_t check_cuModuleGetFunction = cuModuleGetFunction;
gt_cuLaunchKernel_t check_cuLaunchKernel = cuLaunchKernel;
gt_cuGetErrorName_t check_cuGetErrorName = cuGetErrorName;
gt_cuGetErrorString_t check_cuGetErrorString = cuGetErrorString;
gt_nvrtcVersion_t check_nvrtcVersion = nvrtcVersion;
gt_nvrtcCreateProgram_t check_nvrtcCreateProgram = nvrtcCreateProgram;
gt_nvrtcCompileProgram_t check_nvrtcCompileProgram = nvrtcCompileProgram;
gt_nvrtcGetSize_t check_nvrtcGetPTXSize = nvrtcGetPTXSize;
gt_nvrtcGet_t check_nvrtcGetPTX = nvrtcGetPTX;
gt_nvrtcGetSize_t check_nvrtcGetProgramLogSize = nvrtcGetProgramLogSize;
gt_nvrtcGet_t check_nvrtcGetProgramLog = nvrtcGetProgramLog;
gt_nvrtcDestroyProgram_t check_nvrtcDestroyProgram = nvrtcDestroyProgram;
gt_nvrtcGetErrorString_t check_nvrtcGetErrorString = nvrtcGetErrorString;
gt_cublasCreate_t check_cublasCreate = cublasCreate_v2;
gt_cublasDestroy_t check_cublasDestroy = cublasDestroy_v2;
gt_cublasSetStream_t check_cublasSetStream = cublasSetStream_v2;
gt_cublasSetMathMode_t check_cublasSetMathMode = cublasSetMathMode;
gt_cublasGetVersion_t check_cublasGetVersion = cublasGetVersion_v2;
gt_cublasSgemm_t check_cublasSgemm = cublasSgemm_v2;
gt_cublasSgemmStridedBatched_t check_cublasSgemmStridedBatched = cublasSgemmStridedBatched;

// The enumeration values the Go side passes as ints.
_Static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == 75, "attribute");
_Static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == 76, "attribute");
_Static_assert(CU_STREAM_NON_BLOCKING == 1, "stream flag");
_Static_assert(CUBLAS_OP_N == 0 && CUBLAS_OP_T == 1, "cublasOperation_t");
_Static_assert(CUBLAS_DEFAULT_MATH == 0 && CUBLAS_PEDANTIC_MATH == 2 && CUBLAS_TF32_TENSOR_OP_MATH == 3, "cublasMath_t");
_Static_assert(sizeof(CUdeviceptr) == sizeof(gt_addr), "CUdeviceptr");
_Static_assert(sizeof(CUdevice) == sizeof(gt_device), "CUdevice");
_Static_assert(sizeof(CUresult) == sizeof(gt_result), "CUresult");
