// Package augment is the data-augmentation stage: random geometric and
// photometric transforms applied to one image at a time, on the fly, while
// a model trains.
//
// # The model
//
// A Config says which transforms are enabled and how strong they are; its
// fields mirror Keras' ImageDataGenerator (rotation_range,
// width_shift_range, zoom_range, fill_mode, featurewise_center, ...) plus
// the random crop with padding and the cutout that CIFAR recipes use.
// ParseSpec reads the compact command-line form of a Config
// ("rotation=20,shift=0.1,hflip,zoom=0.1"); Config.String writes it back.
//
// New binds a Config to an image Shape (channels, height, width and whether
// the channels come first or last) and returns an Augmenter. The Augmenter
// transforms one sample at a time: Apply(dst, src, epoch, index) reads the
// C*H*W float32 values of src and writes the augmented image to dst. It
// allocates nothing and may be called from any number of goroutines at
// once.
//
// # Randomness
//
// Every random choice for a sample comes from a seed derived from
// (Config.Seed, epoch, index) by a hash (SampleSeed), and each parameter
// (rotation angle, shift, flip, ...) is drawn from its own hash of that
// seed. There is no shared generator, so the result for a sample does not
// depend on the order in which samples are processed, on the number of
// worker goroutines, or on how a batch is split across devices; enabling
// one transform does not change the values drawn for the others. Draw
// returns the parameters for (epoch, index); ApplyParams applies given
// parameters, which is how the tests check transforms exactly.
//
// # Order of operations
//
// For each sample, as in Keras:
//
//  1. the geometric transforms (random crop, flips, zoom, shear, shift,
//     rotation) are composed into one affine map from output pixel to
//     source position, and the image is resampled once with bilinear
//     interpolation; positions outside the source are filled according to
//     FillMode;
//  2. channel shift: one offset drawn from [-r, r] is added to every channel
//     and the result is clipped to the image's [min, max];
//  3. brightness: the image is multiplied by a factor drawn from
//     BrightnessRange (PIL's brightness enhancement on 8-bit images, without
//     its clipping to [0, 255] and its rounding);
//  4. standardisation: rescale, samplewise centering, samplewise std
//     normalisation, featurewise centering, featurewise std normalisation
//     (x /= std + 1e-6, Keras' epsilon);
//  5. cutout: a square of zeros at a random centre (it may hang over the
//     border), applied last so that zero is the normalised mean.
//
// # Conventions
//
// Coordinates are (row, column) with row 0 at the top and the centre of the
// image at ((H-1)/2, (W-1)/2). A positive rotation turns the content
// counter-clockwise as displayed (90 degrees gives NumPy's rot90). A
// positive shift moves the content down and right. Shifts given below 1 are
// fractions of the image size, 1 or more are pixels (Keras' rule); they are
// drawn uniformly, not rounded. Zoom and shear follow Keras: the zoom factor
// scales the sampling grid, so a factor below 1 magnifies, and the row and
// column factors are drawn independently; shear is an angle in degrees.
// Since every range is symmetric, the sign conventions do not change the
// distribution of the augmented images.
//
// Fill modes are those of Keras (which passes them to SciPy):
//
//	constant  kkkk|abcd|kkkk  positions outside the image get Cval
//	nearest   aaaa|abcd|dddd  the edge pixel is repeated
//	reflect   dcba|abcd|dcba  mirrored about the edge (half-sample symmetric)
//	wrap      abcd|abcd|abcd  the image tiles with period W (or H)
//
// Geometric transforms with integer results (flips, right-angle rotations,
// whole-pixel shifts and crops) sample exactly on the pixel grid: the matrix
// entries are snapped to integers when they are within 1e-12 of one, so a
// flip reproduces its input bit for bit.
package augment
