// Package plan is the part of compiling a graph that every backend shares:
// the backend supplies kernels, an allocator and a few hooks, and the
// planner decides everything else (execution providers in ONNX Runtime
// share one graph partitioner and memory planner the same way).
//
// A Planner is made once per executable (New). It rewrites a private copy
// of the graph with the fusions the backend declares (Hooks.Fusions),
// chooses the execution order (data dependencies first; an in-place output
// is written after every other reader of the input it overwrites) and
// checks that the backend has a kernel for every node. Then, for each set
// of input shapes, Plan makes a Plan:
//
//   - shapes are inferred node by node; values inference already knows
//     (Shape of a concrete shape, say) are constants, and nodes whose
//     inputs are all constants are evaluated once on the host through
//     Hooks.Fold;
//   - every other node becomes a Step, static when its shapes are known
//     (its kernel is readied once, through Hooks.Prepare) and dynamic when
//     they depend on run-time values (the backend infers and prepares it as
//     it runs, with InferStep);
//   - view ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity: see IsView)
//     share their input's storage and run no kernel;
//   - the other static values are packed into storage Blocks by liveness:
//     a block is reused once every value in it is dead.
//
// A Plan speaks of storage in the abstract: a Block has a size (elements of
// one dtype, or bytes when Storage.Untyped), a Value names its block and
// byte offset, or the value whose storage it aliases, or the feed it
// overwrites. The backend materializes it: the CPU backend makes one host
// tensor per block and views of it; a device backend would take each block
// from its own caching allocator and bind values at block+offset. Nothing
// here touches memory.
//
// Planning is linear in the size of the graph up to a logarithmic factor
// (ordered free lists, a heap of ready nodes); a test counts the planner's
// operations to keep it so, and backend/cpu's BenchmarkPlanLongChain
// compiles a chain of 100,000 views. Cache keeps plans by input-shape
// Signature so that a run with shapes seen before does not plan again.
package plan
