// Checks shim.h against the real CUDA headers: for every entry point the
// shim declares, the function the header declares must take the same
// number of parameters, each of the same kind (pointer, integer or enum of
// the same size, the same floating type), and return the same kind. Run by
// `make check-cuda-abi` (g++ -fsyntax-only) after scripts/cuda-deps.sh
// --headers has fetched the headers.
#include <type_traits>
#include <cuda.h>
#include <nvrtc.h>
#include <cublas_v2.h>
#include "../shim.h"

template <class A, class B> constexpr bool abi_same() {
	if constexpr (std::is_pointer_v<A> || std::is_pointer_v<B>)
		return std::is_pointer_v<A> && std::is_pointer_v<B>;
	else if constexpr (std::is_floating_point_v<A> || std::is_floating_point_v<B>)
		return std::is_same_v<A, B>;
	else
		return (std::is_integral_v<A> || std::is_enum_v<A>) && (std::is_integral_v<B> || std::is_enum_v<B>) && sizeof(A) == sizeof(B);
}

template <class R1, class... A1, class R2, class... A2> constexpr bool abi_match(R1 (*)(A1...), R2 (*)(A2...)) {
	if constexpr (sizeof...(A1) != sizeof...(A2))
		return false;
	else
		return abi_same<R1, R2>() && (true && ... && abi_same<A1, A2>());
}

#define CHECK(mine, real) static_assert(abi_match((mine) nullptr, &real), "shim.h disagrees with the header on " #real);

CHECK(gt_cuInit_t, cuInit)
CHECK(gt_cuDriverGetVersion_t, cuDriverGetVersion)
CHECK(gt_cuDeviceGetCount_t, cuDeviceGetCount)
CHECK(gt_cuDeviceGet_t, cuDeviceGet)
CHECK(gt_cuDeviceGetName_t, cuDeviceGetName)
CHECK(gt_cuDeviceGetAttribute_t, cuDeviceGetAttribute)
CHECK(gt_cuDeviceTotalMem_t, cuDeviceTotalMem_v2)
CHECK(gt_cuDevicePrimaryCtxRetain_t, cuDevicePrimaryCtxRetain)
CHECK(gt_cuDevicePrimaryCtxRelease_t, cuDevicePrimaryCtxRelease_v2)
CHECK(gt_cuCtxSetCurrent_t, cuCtxSetCurrent)
CHECK(gt_cuStreamCreate_t, cuStreamCreate)
CHECK(gt_cuStreamDestroy_t, cuStreamDestroy_v2)
CHECK(gt_cuStreamSynchronize_t, cuStreamSynchronize)
CHECK(gt_cuMemAlloc_t, cuMemAlloc_v2)
CHECK(gt_cuMemFree_t, cuMemFree_v2)
CHECK(gt_cuMemAllocHost_t, cuMemAllocHost_v2)
CHECK(gt_cuMemFreeHost_t, cuMemFreeHost)
CHECK(gt_cuMemGetInfo_t, cuMemGetInfo_v2)
CHECK(gt_cuMemcpyHtoDAsync_t, cuMemcpyHtoDAsync_v2)
CHECK(gt_cuMemcpyDtoHAsync_t, cuMemcpyDtoHAsync_v2)
CHECK(gt_cuMemcpyDtoDAsync_t, cuMemcpyDtoDAsync_v2)
CHECK(gt_cuMemsetD32Async_t, cuMemsetD32Async)
CHECK(gt_cuModuleLoadData_t, cuModuleLoadData)
CHECK(gt_cuModuleUnload_t, cuModuleUnload)
CHECK(gt_cuModuleGetFunction_t, cuModuleGetFunction)
CHECK(gt_cuLaunchKernel_t, cuLaunchKernel)
CHECK(gt_cuEventCreate_t, cuEventCreate)
CHECK(gt_cuEventRecord_t, cuEventRecord)
CHECK(gt_cuEventDestroy_t, cuEventDestroy_v2)
CHECK(gt_cuStreamWaitEvent_t, cuStreamWaitEvent)
CHECK(gt_cuMemcpyPeerAsync_t, cuMemcpyPeerAsync)
CHECK(gt_cuStreamBeginCapture_t, cuStreamBeginCapture_v2)
CHECK(gt_cuStreamEndCapture_t, cuStreamEndCapture)
CHECK(gt_cuGraphInstantiateWithFlags_t, cuGraphInstantiateWithFlags)
CHECK(gt_cuGraphLaunch_t, cuGraphLaunch)
CHECK(gt_cuGraphExecDestroy_t, cuGraphExecDestroy)
CHECK(gt_cuGraphDestroy_t, cuGraphDestroy)
CHECK(gt_cuGetErrorName_t, cuGetErrorName)
CHECK(gt_cuGetErrorString_t, cuGetErrorString)
CHECK(gt_nvrtcVersion_t, nvrtcVersion)
CHECK(gt_nvrtcCreateProgram_t, nvrtcCreateProgram)
CHECK(gt_nvrtcCompileProgram_t, nvrtcCompileProgram)
CHECK(gt_nvrtcGetSize_t, nvrtcGetPTXSize)
CHECK(gt_nvrtcGet_t, nvrtcGetPTX)
CHECK(gt_nvrtcGetSize_t, nvrtcGetProgramLogSize)
CHECK(gt_nvrtcGet_t, nvrtcGetProgramLog)
CHECK(gt_nvrtcDestroyProgram_t, nvrtcDestroyProgram)
CHECK(gt_nvrtcGetErrorString_t, nvrtcGetErrorString)
CHECK(gt_cublasCreate_t, cublasCreate_v2)
CHECK(gt_cublasDestroy_t, cublasDestroy_v2)
CHECK(gt_cublasSetStream_t, cublasSetStream_v2)
CHECK(gt_cublasSetMathMode_t, cublasSetMathMode)
CHECK(gt_cublasGetVersion_t, cublasGetVersion_v2)
CHECK(gt_cublasSetWorkspace_t, cublasSetWorkspace_v2)
CHECK(gt_cublasSgemm_t, cublasSgemm_v2)
CHECK(gt_cublasSgemmStridedBatched_t, cublasSgemmStridedBatched)

// The enumeration values the Go side passes as ints.
static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR == 75, "attribute");
static_assert(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR == 76, "attribute");
static_assert(CU_STREAM_NON_BLOCKING == 1, "stream flag");
static_assert(CU_EVENT_DISABLE_TIMING == 2, "event flag");
static_assert(CU_STREAM_CAPTURE_MODE_THREAD_LOCAL == 1, "capture mode");
static_assert(CUBLAS_OP_N == 0 && CUBLAS_OP_T == 1, "cublasOperation_t");
static_assert(CUBLAS_DEFAULT_MATH == 0 && CUBLAS_PEDANTIC_MATH == 2 && CUBLAS_TF32_TENSOR_OP_MATH == 3, "cublasMath_t");
static_assert(sizeof(CUdeviceptr) == sizeof(gt_addr), "CUdeviceptr");
static_assert(sizeof(CUdevice) == sizeof(gt_device), "CUdevice");
static_assert(sizeof(CUresult) == sizeof(gt_result), "CUresult");
