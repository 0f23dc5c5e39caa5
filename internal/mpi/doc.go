// Package mpi gives gotrain's multi-worker training the few collective
// operations it needs, on OpenMPI, the engine that mpirun, HPC clusters and
// Kubernetes' MPI operator run.
//
// # Loading
//
// The library is loaded when Init is called, with dlopen (RTLD_GLOBAL, so
// that OpenMPI's own plugins find its symbols), not linked: the gotrain
// binary builds and runs where OpenMPI is absent, and only multi-worker
// training needs it. Calls go through OpenMPI's ABI, in which MPI_Comm,
// MPI_Datatype, MPI_Op and MPI_Request are pointers and the predefined
// handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of
// the library's global objects (ompi_mpi_comm_world, ...). OpenMPI 3.x to
// 5.x share the soname libmpi.so.40; MPICH's ABI is another and is not
// supported. Without cgo there is no dlopen, and Init says so.
//
// # The MPI thread
//
// Every MPI call of the process runs on one OS thread, which Init starts
// and which initialises MPI at MPI_THREAD_FUNNELED. Collectives are
// nonblocking (MPI_Iallreduce, MPI_Ibcast, ...): the thread posts them and
// polls them with MPI_Test, back to back for 5 ms (OpenMPI progresses a
// collective's rounds only inside MPI calls, and a worker usually waits a
// few milliseconds for a slower one, its own threads idle) and then with
// pauses of up to 200 us, so a worker that waits long for a straggler
// leaves the cores to others (for 200 us only when mpirun started more
// workers than the machine has slots). Go memory that MPI holds while a request is pending is pinned
// (runtime.Pinner).
//
// # Faults
//
// A collective call either completes on every worker or fails on every
// surviving one with an error that names the worker it waited for; it
// never hangs. Between and during collectives the MPI thread sends every
// other worker a heartbeat (every LostAfter/20) carrying how many
// collectives it has entered and whether it waits in one:
//
//   - a worker silent for LostAfter (killed, stopped, cut off) is lost: the
//     pending and every later operation fail with "lost worker rank R";
//   - a collective that does not complete within Timeout while every worker
//     is heard from fails naming the workers that have not entered it.
//
// After a failure every operation returns it (Err); the process should exit
// non-zero, and mpirun then ends the other workers. When a worker dies,
// mpirun normally notices first and ends the job itself, naming the rank.
//
// # Order of operations
//
// AllreduceSum leaves the order of the additions to OpenMPI: fast, and the
// same on every worker, but not always the same bits as another order.
// Fold and AllreduceOrdered reduce in rank order, handing a running value
// from worker to worker: the bits of a sequential sum, at the cost of N-1
// hops in sequence.
package mpi
