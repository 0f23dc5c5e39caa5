// Package checkpoint holds what a fit writes to disk and the callbacks that
// decide when: ONNX export of the trained model, resumable training-state
// files, and the Keras-style callbacks EarlyStopping, ModelCheckpoint,
// ReduceLROnPlateau, TerminateOnNaN, HistoryLogger and Interrupt (SIGINT).
//
// # Export
//
// Export writes the input model with the trained weights in place of its
// initializers: same inputs, outputs, nodes and opset, inference form, and
// the training configuration and final metrics in metadata_props. It runs in
// ONNX Runtime unchanged. Go-defined models (graph.Builder) export the same
// way.
//
// # Training-state files
//
// SaveState and LoadState write and read a train.State: weights, optimizer
// slots, step and epoch, the epoch in progress (position in samples, running
// sums), learning-rate scale, generator states, callback states,
// configuration, model and data hashes (ModelHash, DataHash) and history,
// zstd-compressed behind a header with a magic string, a format version and
// CRC-32C checksums (see statefile.go for the layout). A file that is not
// one, is cut short, is damaged, has another format version or belongs to
// another model (ModelHash) is refused with ErrNotCheckpoint, ErrTruncated,
// ErrCorrupt, ErrVersion or ErrOtherModel.
//
// # Atomic writes
//
// Every file is written by internal/atomicfile: a temporary file in the target's
// folder, fsync, rename, fsync of the folder. A crash, a SIGKILL or a failed
// write at any moment leaves the previous file whole. CheckWritable lets a
// program test its output paths before training starts.
//
// # Callback state and exact resumption
//
// Callbacks with state that matters for the rest of a run implement
// Stateful; the fit loop stores CollectState's map in train.State.Extra and
// gives it back with RestoreState, so a run stopped after k epochs and
// resumed stops, saves and lowers the learning rate exactly where an
// uninterrupted one does. VerifyResume checks that with any fit function.
// ConfigChanges lists the settings a resuming run changed from the stored
// configuration, for a program to report or refuse.
//
// # Output folder locks
//
// LockDir takes an advisory lock on a folder's LockFile, so that two runs
// never write into one folder at once; a refusal (*LockedError) names the
// holder, and a lock file left by a run that died is taken over.
package checkpoint
