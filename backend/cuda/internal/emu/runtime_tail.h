typedef void (*gt_thunk)(void**);
static gt_thunk gt_fn;
static void** gt_args;

#if defined(__x86_64__)
// gt_trampoline runs a thread to its end, then returns to the scheduler
// for good.
static void gt_trampoline() {
	gt_fn(gt_args);
	gt_state[gt_cur] = 2;
	gt_yield();
	abort(); // a finished thread is never resumed
}
#else
static void gt_entry() {
	gt_fn(gt_args);
	gt_state[gt_cur] = 2;
}
#endif

static void gt_set_thread(int t, int bx, int by) {
	gt_cur = t;
	threadIdx = {(unsigned)(t % bx), (unsigned)((t / bx) % by), (unsigned)(t / (bx * by))};
}

// gt_run runs thunk over the grid. It returns 0; -1 when memory for the
// threads' stacks cannot be had; -2 when some threads of a block reached
// __syncthreads and others finished without it (undefined on a device).
//
// Each block's first thread runs as a coroutine. If it finishes without
// reaching a barrier, so do the others (a barrier must be reached by all of
// a block's threads or by none), and they run as plain calls, with no
// context switches: most kernels have no barrier, and this is what makes
// the emulator fast enough to run whole training steps.
extern "C" int gt_run(gt_thunk thunk, void** args, int gx, int gy, int gz, int bx, int by, int bz) {
	int nt = bx * by * bz;
	if (nt > gt_nstack) {
		free(gt_stacks);
		gt_free_ctx();
		free(gt_state);
		gt_stacks = (char*)malloc((size_t)nt * gt_stack_size);
		int ok = gt_alloc_ctx(nt);
		gt_state = (unsigned char*)malloc((size_t)nt);
		if (!gt_stacks || !ok || !gt_state) {
			gt_nstack = 0;
			return -1;
		}
		gt_nstack = nt;
	}
	gt_fn = thunk;
	gt_args = args;
	gt_bad_barrier = 0;
	gridDim = {(unsigned)gx, (unsigned)gy, (unsigned)gz};
	blockDim = {(unsigned)bx, (unsigned)by, (unsigned)bz};
	// Reverse order throughout (see package emu's doc).
	for (int z = gz - 1; z >= 0; z--)
	for (int y = gy - 1; y >= 0; y--)
	for (int x = gx - 1; x >= 0; x--) {
		blockIdx = {(unsigned)x, (unsigned)y, (unsigned)z};
		for (int t = 0; t < nt; t++) gt_state[t] = 0;
		// The first thread (the last index) as a coroutine.
		int first = nt - 1;
		gt_start(first);
		gt_set_thread(first, bx, by);
		gt_resume(first);
		if (gt_state[first] == 2) {
			gt_direct = 1;
			for (int t = nt - 2; t >= 0; t--) {
				gt_set_thread(t, bx, by);
				gt_fn(gt_args);
			}
			gt_direct = 0;
			if (gt_bad_barrier) return -2;
			continue;
		}
		// It waits at a barrier: every thread is a coroutine.
		for (int t = 0; t < first; t++) gt_start(t);
		for (;;) {
			int ran = 0, done = 0;
			for (int t = nt - 1; t >= 0; t--) {
				if (gt_state[t] == 0) {
					gt_set_thread(t, bx, by);
					gt_resume(t);
					ran++;
				}
				if (gt_state[t] == 2) done++;
			}
			if (done == nt) break;
			if (ran == 0) {
				// Every live thread waits at a barrier: release them.
				for (int t = 0; t < nt; t++)
					if (gt_state[t] == 1) gt_state[t] = 0;
			}
		}
	}
	return 0;
}
