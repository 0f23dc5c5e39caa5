// The emulator's runtime: what NVRTC provides to the kernels, for a host
// C++ compiler. Blocks run one after another; the threads of a block are
// coroutines (ucontext) switched at __syncthreads, so __shared__ variables
// (static locals here) are shared by exactly one block's threads at a time.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <limits>

struct gt_dim3 { unsigned x, y, z; };
static gt_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __restrict__

#define GT_INF_F std::numeric_limits<float>::infinity()
#define GT_INF_D std::numeric_limits<double>::infinity()
#define GT_NAN_F std::numeric_limits<float>::quiet_NaN()
#define GT_NAN_D std::numeric_limits<double>::quiet_NaN()

static ucontext_t gt_sched;
static ucontext_t* gt_ctx;
static unsigned char* gt_state; // 0 runnable, 1 at a barrier, 2 done
static char* gt_stacks;
static int gt_nstack, gt_cur;
static const size_t gt_stack_size = 64 << 10;

// gt_direct is set while threads run as plain calls on the launcher's stack
// (see gt_run); a barrier reached then is recorded in gt_bad_barrier.
static int gt_direct, gt_bad_barrier;

static void __syncthreads() {
	if (gt_direct) {
		gt_bad_barrier = 1;
		return;
	}
	gt_state[gt_cur] = 1;
	swapcontext(&gt_ctx[gt_cur], &gt_sched);
}
