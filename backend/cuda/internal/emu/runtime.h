// The emulator's runtime: what NVRTC provides to the kernels, for a host
// C++ compiler. Blocks run one after another; the threads of a block are
// coroutines switched at __syncthreads (or plain calls, see gt_run), so
// __shared__ variables (static locals here) are shared by exactly one
// block's threads at a time.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

static unsigned char* gt_state; // 0 runnable, 1 at a barrier, 2 done
static char* gt_stacks;
static int gt_nstack, gt_cur;
static const size_t gt_stack_size = 64 << 10;

// Coroutines. On x86-64 a switch saves the callee-saved registers and the
// floating-point control words on the stack and swaps stack pointers
// (gt_switch): no system call, where swapcontext makes one per switch to
// save the signal mask, which made kernels with barriers slow. Elsewhere,
// ucontext.
#if defined(__x86_64__)
extern "C" void gt_switch(void** save, void* load);
__asm__(
	".text\n"
	".p2align 4\n"
	".hidden gt_switch\n"
	".globl gt_switch\n"
	".type gt_switch,@function\n"
	"gt_switch:\n"
	"\tpushq %rbp\n"
	"\tpushq %rbx\n"
	"\tpushq %r12\n"
	"\tpushq %r13\n"
	"\tpushq %r14\n"
	"\tpushq %r15\n"
	"\tsubq $8, %rsp\n"
	"\tstmxcsr (%rsp)\n"
	"\tfnstcw 4(%rsp)\n"
	"\tmovq %rsp, (%rdi)\n"
	"\tmovq %rsi, %rsp\n"
	"\tldmxcsr (%rsp)\n"
	"\tfldcw 4(%rsp)\n"
	"\taddq $8, %rsp\n"
	"\tpopq %r15\n"
	"\tpopq %r14\n"
	"\tpopq %r13\n"
	"\tpopq %r12\n"
	"\tpopq %rbx\n"
	"\tpopq %rbp\n"
	"\tret\n"
	".size gt_switch, .-gt_switch\n");

static void* gt_sched_sp;
static void** gt_sp; // each thread's saved stack pointer
static void gt_trampoline();

// gt_start readies thread t to run gt_trampoline on its own stack.
static void gt_start(int t) {
	uintptr_t top = ((uintptr_t)(gt_stacks + (size_t)(t + 1) * gt_stack_size)) & ~(uintptr_t)15;
	void** sp = (void**)top;
	*--sp = 0;                      // the trampoline's return address: it never returns
	*--sp = (void*)gt_trampoline;   // where gt_switch's ret goes
	for (int i = 0; i < 6; i++) *--sp = 0; // rbp, rbx, r12-r15
	--sp;
	((uint32_t*)sp)[0] = 0x1F80;    // MXCSR: round to nearest, exceptions masked
	((uint16_t*)sp)[2] = 0x037F;    // x87 control word: the same
	gt_sp[t] = (void*)sp;
}
static void gt_resume(int t) { gt_switch(&gt_sched_sp, gt_sp[t]); }
static void gt_yield() { gt_switch(&gt_sp[gt_cur], gt_sched_sp); }
static int gt_alloc_ctx(int nt) {
	gt_sp = (void**)malloc(sizeof(void*) * (size_t)nt);
	return gt_sp != 0;
}
static void gt_free_ctx() { free(gt_sp); }
#else
#include <ucontext.h>
static ucontext_t gt_sched;
static ucontext_t* gt_ctx;
static void gt_entry();
static void gt_start(int t) {
	getcontext(&gt_ctx[t]);
	gt_ctx[t].uc_stack.ss_sp = gt_stacks + (size_t)t * gt_stack_size;
	gt_ctx[t].uc_stack.ss_size = gt_stack_size;
	gt_ctx[t].uc_link = &gt_sched;
	makecontext(&gt_ctx[t], gt_entry, 0);
}
static void gt_resume(int t) { swapcontext(&gt_sched, &gt_ctx[t]); }
static void gt_yield() { swapcontext(&gt_ctx[gt_cur], &gt_sched); }
static int gt_alloc_ctx(int nt) {
	gt_ctx = (ucontext_t*)malloc(sizeof(ucontext_t) * (size_t)nt);
	return gt_ctx != 0;
}
static void gt_free_ctx() { free(gt_ctx); }
#endif

// gt_direct is set while threads run as plain calls on the launcher's stack
// (see gt_run); a barrier reached then is recorded in gt_bad_barrier.
static int gt_direct, gt_bad_barrier;

static void __syncthreads() {
	if (gt_direct) {
		gt_bad_barrier = 1;
		return;
	}
	gt_state[gt_cur] = 1;
	gt_yield();
}
