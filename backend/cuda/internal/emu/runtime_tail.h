typedef void (*gt_thunk)(void**);
static gt_thunk gt_fn;
static void** gt_args;

static void gt_entry() {
	gt_fn(gt_args);
	gt_state[gt_cur] = 2;
}

// gt_run runs thunk over the grid; it returns 0, or -1 when memory for the
// threads' stacks cannot be had.
extern "C" int gt_run(gt_thunk thunk, void** args, int gx, int gy, int gz, int bx, int by, int bz) {
	int nt = bx * by * bz;
	if (nt > gt_nstack) {
		free(gt_stacks);
		free(gt_ctx);
		free(gt_state);
		gt_stacks = (char*)malloc((size_t)nt * gt_stack_size);
		gt_ctx = (ucontext_t*)malloc(sizeof(ucontext_t) * (size_t)nt);
		gt_state = (unsigned char*)malloc((size_t)nt);
		if (!gt_stacks || !gt_ctx || !gt_state) {
			gt_nstack = 0;
			return -1;
		}
		gt_nstack = nt;
	}
	gt_fn = thunk;
	gt_args = args;
	gridDim = {(unsigned)gx, (unsigned)gy, (unsigned)gz};
	blockDim = {(unsigned)bx, (unsigned)by, (unsigned)bz};
	// Reverse order throughout (see package emu's doc).
	for (int z = gz - 1; z >= 0; z--)
	for (int y = gy - 1; y >= 0; y--)
	for (int x = gx - 1; x >= 0; x--) {
		blockIdx = {(unsigned)x, (unsigned)y, (unsigned)z};
		for (int t = 0; t < nt; t++) {
			getcontext(&gt_ctx[t]);
			gt_ctx[t].uc_stack.ss_sp = gt_stacks + (size_t)t * gt_stack_size;
			gt_ctx[t].uc_stack.ss_size = gt_stack_size;
			gt_ctx[t].uc_link = &gt_sched;
			makecontext(&gt_ctx[t], gt_entry, 0);
			gt_state[t] = 0;
		}
		for (;;) {
			int ran = 0, done = 0;
			for (int t = nt - 1; t >= 0; t--) {
				if (gt_state[t] == 0) {
					gt_cur = t;
					threadIdx = {(unsigned)(t % bx), (unsigned)((t / bx) % by), (unsigned)(t / (bx * by))};
					swapcontext(&gt_sched, &gt_ctx[t]);
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
