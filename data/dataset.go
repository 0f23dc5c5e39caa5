package data

import (
	"fmt"
	"math"
	"slices"

	"github.com/gotrain/gotrain/data/augment"
	"github.com/gotrain/gotrain/tensor"
)

// Layout is the order of a dataset's image dimensions.
type Layout int

// The layouts: channels first (PyTorch, ONNX) or last (Keras, TensorFlow).
const (
	NCHW Layout = iota
	NHWC
)

func (l Layout) String() string {
	if l == NHWC {
		return "NHWC"
	}
	return "NCHW"
}

// Dataset is N labelled images in memory.
type Dataset struct {
	X       *tensor.Tensor // float32, [N, C, H, W] or [N, H, W, C] by Layout
	Y       *tensor.Tensor // int64 class indices, [N]
	Classes int            // labels are in [0, Classes)
	Layout  Layout
	Names   []string // class names, when known (len Classes)
	Source  string   // the file, folder or name it came from, for messages
	Raw     RawKind  // what the loader read, for an "auto" input scale (scale.go)
	// LabelSource is the file the labels came from when it is not Source
	// (X.npy,Y.npy and IDX pairs), for messages.
	LabelSource string
}

// NewDataset wraps images x ([n, c, h, w] or [n, h, w, c] by layout) and
// labels y, and checks them.
func NewDataset(x []float32, y []int64, n, c, h, w int, layout Layout, classes int, source string) (*Dataset, error) {
	shape := []int{n, c, h, w}
	if layout == NHWC {
		shape = []int{n, h, w, c}
	}
	if n < 0 || c <= 0 || h <= 0 || w <= 0 || len(x) != n*c*h*w {
		return nil, fmt.Errorf("data: %s: %d pixel values do not fit %d images of %dx%dx%d", source, len(x), n, c, h, w)
	}
	if len(y) != n {
		return nil, fmt.Errorf("data: %s: %d labels for %d images", source, len(y), n)
	}
	d := &Dataset{
		X:       tensor.MustFromSlice(x, shape...),
		Y:       tensor.MustFromSlice(y, n),
		Classes: classes,
		Layout:  layout,
		Source:  source,
	}
	return d, d.Validate()
}

// Len is the number of samples.
func (d *Dataset) Len() int { return d.X.Shape()[0] }

// SampleShape is the shape of one image.
func (d *Dataset) SampleShape() augment.Shape {
	s := d.X.Shape()
	if d.Layout == NHWC {
		return augment.Shape{C: s[3], H: s[1], W: s[2], ChannelsLast: true}
	}
	return augment.Shape{C: s[1], H: s[2], W: s[3]}
}

// SampleSize is the number of values of one image.
func (d *Dataset) SampleSize() int { return d.SampleShape().Size() }

// Sample returns image i (a view into X).
func (d *Dataset) Sample(i int) []float32 {
	n := d.SampleSize()
	return d.X.Float32s()[i*n : (i+1)*n]
}

// Labels returns the labels (a view into Y).
func (d *Dataset) Labels() []int64 { return d.Y.Int64s() }

// Label returns the label of sample i.
func (d *Dataset) Label(i int) int64 { return d.Y.Int64s()[i] }

// Read copies image i into dst; it implements Source.
func (d *Dataset) Read(i int, dst []float32) error {
	if i < 0 || i >= d.Len() {
		return fmt.Errorf("data: %s: sample %d out of range [0, %d)", d.Source, i, d.Len())
	}
	copy(dst, d.Sample(i))
	return nil
}

// Validate checks the tensors' types and shapes and that every label is
// in [0, Classes).
func (d *Dataset) Validate() error {
	if d.X == nil || d.Y == nil {
		return fmt.Errorf("data: %s: dataset without images or labels", d.Source)
	}
	if d.X.DType() != tensor.Float32 || d.X.Rank() != 4 {
		return fmt.Errorf("data: %s: images are %v%v: expected float32 of rank 4 (%v)", d.Source, d.X.DType(), d.X.Shape(), d.Layout)
	}
	if d.Y.DType() != tensor.Int64 || d.Y.Rank() != 1 || d.Y.Len() != d.Len() {
		return fmt.Errorf("data: %s: labels are %v%v: expected int64 [%d]", d.Source, d.Y.DType(), d.Y.Shape(), d.Len())
	}
	if d.Classes <= 0 {
		return fmt.Errorf("data: %s: %d classes: expected at least 1", d.Source, d.Classes)
	}
	// Splits and stratified subsets keep a list per class (a slice header,
	// 24 bytes, each); a class count inferred from a huge label is caught
	// here rather than there.
	if err := tensor.CheckAlloc(fmt.Sprintf("data: %s: %d classes", d.Source, d.Classes), int64(d.Classes), 24); err != nil {
		return err
	}
	if d.Names != nil && len(d.Names) != d.Classes {
		return fmt.Errorf("data: %s: %d class names for %d classes", d.Source, len(d.Names), d.Classes)
	}
	for i, y := range d.Labels() {
		if y < 0 || y >= int64(d.Classes) {
			return fmt.Errorf("data: %s: label %d of sample %d is outside the %d classes [0, %d)", d.Source, y, i, d.Classes, d.Classes)
		}
	}
	return nil
}

// Subset returns a copy holding the samples at idx, in that order.
func (d *Dataset) Subset(idx []int) (*Dataset, error) {
	n, sz := d.Len(), d.SampleSize()
	x := make([]float32, len(idx)*sz)
	y := make([]int64, len(idx))
	for k, i := range idx {
		if i < 0 || i >= n {
			return nil, fmt.Errorf("data: %s: subset index %d out of range [0, %d)", d.Source, i, n)
		}
		copy(x[k*sz:], d.Sample(i))
		y[k] = d.Label(i)
	}
	shape := append([]int{len(idx)}, d.X.Shape()[1:]...)
	return &Dataset{
		X: tensor.MustFromSlice(x, shape...), Y: tensor.MustFromSlice(y, len(idx)),
		Classes: d.Classes, Layout: d.Layout, Names: d.Names, Source: d.Source, Raw: d.Raw, LabelSource: d.LabelSource,
	}, nil
}

// Head returns the first n samples (all of them if there are fewer).
func (d *Dataset) Head(n int) (*Dataset, error) {
	if n < 0 {
		return nil, fmt.Errorf("data: %s: subset of %d samples", d.Source, n)
	}
	idx := make([]int, min(n, d.Len()))
	for i := range idx {
		idx[i] = i
	}
	return d.Subset(idx)
}

// byClass lists the sample indices of each class, in dataset order.
func (d *Dataset) byClass() [][]int {
	groups := make([][]int, d.Classes)
	for i, y := range d.Labels() {
		groups[y] = append(groups[y], i)
	}
	return groups
}

// StratifiedSubset returns n samples drawn (seeded) so that each class
// keeps its share, by largest remainders; the samples keep dataset order.
func (d *Dataset) StratifiedSubset(n int, seed uint64) (*Dataset, error) {
	if n < 0 || n > d.Len() {
		return nil, fmt.Errorf("data: %s: stratified subset of %d samples from %d", d.Source, n, d.Len())
	}
	groups := d.byClass()
	counts := apportion(groups, float64(n)/float64(max(d.Len(), 1)), n)
	var idx []int
	for c, g := range groups {
		perm := Order(len(g), seed, c)
		for _, k := range perm[:counts[c]] {
			idx = append(idx, g[k])
		}
	}
	slices.Sort(idx)
	return d.Subset(idx)
}

// apportion gives each group round(frac*len) items so that the total is
// exactly total, settling the remainders largest first.
func apportion(groups [][]int, frac float64, total int) []int {
	counts := make([]int, len(groups))
	type rem struct {
		c int
		r float64
	}
	var rems []rem
	sum := 0
	for c, g := range groups {
		q := frac * float64(len(g))
		counts[c] = int(math.Floor(q))
		sum += counts[c]
		rems = append(rems, rem{c, q - math.Floor(q)})
	}
	slices.SortStableFunc(rems, func(a, b rem) int {
		switch {
		case a.r > b.r:
			return -1
		case a.r < b.r:
			return 1
		}
		return 0
	})
	for i := 0; sum < total && i < len(rems); i++ {
		if counts[rems[i].c] < len(groups[rems[i].c]) {
			counts[rems[i].c]++
			sum++
		}
	}
	return counts
}

// Split sets aside a stratified, seeded fraction of the samples for
// validation: each class gives its share, rounded so that the validation
// set has round(frac*N) samples. Both parts keep dataset order.
func (d *Dataset) Split(frac float64, seed uint64) (train, val *Dataset, err error) {
	if !(frac > 0 && frac < 1) {
		return nil, nil, fmt.Errorf("data: %s: validation fraction %v: expected a value in (0, 1)", d.Source, frac)
	}
	nv := int(math.Round(frac * float64(d.Len())))
	if nv == 0 || nv == d.Len() {
		return nil, nil, fmt.Errorf("data: %s: a validation fraction of %v of %d samples leaves one side empty", d.Source, frac, d.Len())
	}
	groups := d.byClass()
	counts := apportion(groups, frac, nv)
	inVal := make([]bool, d.Len())
	for c, g := range groups {
		for _, k := range Order(len(g), seed, c)[:counts[c]] {
			inVal[g[k]] = true
		}
	}
	var ti, vi []int
	for i, v := range inVal {
		if v {
			vi = append(vi, i)
		} else {
			ti = append(ti, i)
		}
	}
	if train, err = d.Subset(ti); err != nil {
		return nil, nil, err
	}
	if val, err = d.Subset(vi); err != nil {
		return nil, nil, err
	}
	return train, val, nil
}

// WithLayout returns the dataset in layout l (d itself if it already is).
func (d *Dataset) WithLayout(l Layout) *Dataset {
	if l == d.Layout {
		return d
	}
	s := d.SampleShape()
	n, hw := d.Len(), s.H*s.W
	src := d.X.Float32s()
	dst := make([]float32, len(src))
	for i := range n {
		a, b := src[i*s.Size():(i+1)*s.Size()], dst[i*s.Size():(i+1)*s.Size()]
		for ch := range s.C {
			for p := range hw {
				if l == NHWC { // CHW -> HWC
					b[p*s.C+ch] = a[ch*hw+p]
				} else {
					b[ch*hw+p] = a[p*s.C+ch]
				}
			}
		}
	}
	shape := []int{n, s.C, s.H, s.W}
	if l == NHWC {
		shape = []int{n, s.H, s.W, s.C}
	}
	c := *d
	c.X = tensor.MustFromSlice(dst, shape...)
	c.Layout = l
	return &c
}

// Rescale multiplies every value by f, in place (1/255 maps bytes to [0, 1]).
func (d *Dataset) Rescale(f float32) {
	x := d.X.Float32s()
	for i := range x {
		x[i] *= f
	}
}

// ChannelStats returns each channel's mean and (population) standard
// deviation over all samples and pixels.
func (d *Dataset) ChannelStats() (mean, std []float64) {
	s := d.SampleShape()
	sum := make([]float64, s.C)
	sq := make([]float64, s.C)
	x := d.X.Float32s()
	ch := func(j int) int {
		if s.ChannelsLast {
			return j % s.C
		}
		return (j / (s.H * s.W)) % s.C
	}
	for j, v := range x {
		sum[ch(j)] += float64(v)
	}
	m := float64(d.Len() * s.H * s.W)
	mean = make([]float64, s.C)
	for c := range mean {
		mean[c] = sum[c] / m
	}
	for j, v := range x {
		e := float64(v) - mean[ch(j)]
		sq[ch(j)] += e * e
	}
	std = make([]float64, s.C)
	for c := range std {
		std[c] = math.Sqrt(sq[c] / m)
	}
	return mean, std
}

// Normalize maps each channel to (x - mean[c]) / std[c], in place.
func (d *Dataset) Normalize(mean, std []float64) error {
	s := d.SampleShape()
	if len(mean) != s.C || len(std) != s.C {
		return fmt.Errorf("data: %s: normalisation with %d means and %d stds for %d channels", d.Source, len(mean), len(std), s.C)
	}
	for c := range std {
		if !(std[c] > 0) || math.IsInf(std[c], 0) || math.IsNaN(mean[c]) || math.IsInf(mean[c], 0) {
			return fmt.Errorf("data: %s: channel %d: mean %v, std %v: expected a finite mean and a std > 0", d.Source, c, mean[c], std[c])
		}
	}
	x := d.X.Float32s()
	hw := s.H * s.W
	for j := range x {
		c := (j / hw) % s.C
		if s.ChannelsLast {
			c = j % s.C
		}
		x[j] = float32((float64(x[j]) - mean[c]) / std[c])
	}
	return nil
}

// Standardize computes per-channel statistics from train and normalises
// train and the others with them (a channel with std 0 is only centred).
func Standardize(train *Dataset, others ...*Dataset) (mean, std []float64, err error) {
	mean, std = train.ChannelStats()
	for c := range std {
		if std[c] == 0 {
			std[c] = 1
		}
	}
	for _, d := range append([]*Dataset{train}, others...) {
		if d == nil {
			continue
		}
		if err := d.Normalize(mean, std); err != nil {
			return nil, nil, err
		}
	}
	return mean, std, nil
}

// ImageInput reads a model's image input shape (batch first; dims < 0 are
// unknown): [N, C, H, W] when dim 1 is 1, 3 or 4 channels, [N, H, W, C]
// when the last is; it returns the layout and the image size.
func ImageInput(shape []int) (l Layout, c, h, w int, err error) {
	if len(shape) != 4 {
		return 0, 0, 0, 0, fmt.Errorf("data: model input shape %v: expected [N, C, H, W] or [N, H, W, C]", shape)
	}
	isC := func(v int) bool { return v == 1 || v == 3 || v == 4 }
	switch {
	case isC(shape[1]) && shape[2] > 0 && shape[3] > 0:
		return NCHW, shape[1], shape[2], shape[3], nil
	case isC(shape[3]) && shape[1] > 0 && shape[2] > 0:
		return NHWC, shape[3], shape[1], shape[2], nil
	}
	return 0, 0, 0, 0, fmt.Errorf("data: model input shape %v: expected [N, C, H, W] or [N, H, W, C] with 1, 3 or 4 channels and known sizes", shape)
}

// ForInput fits the dataset to a model input shape (batch dim first, dims
// < 0 unknown): it returns the dataset in the layout the model wants and
// the shape of one sample in a batch. Rank 4 inputs take images in NCHW or
// NHWC; rank 2 inputs ([N, C*H*W]) and rank 3 ([N, H, W], one channel) take
// them flattened, in the dataset's layout.
func (d *Dataset) ForInput(shape []int) (*Dataset, []int, error) {
	s := d.SampleShape()
	fits := func(dims []int, want ...int) bool {
		for i, v := range dims {
			if v >= 0 && v != want[i] {
				return false
			}
		}
		return true
	}
	bad := func() error {
		return fmt.Errorf("data: %s: images of %dx%dx%d (CxHxW) do not fit the model input %v", d.Source, s.C, s.H, s.W, shape)
	}
	switch len(shape) {
	case 4:
		dims := shape[1:]
		chw, hwc := fits(dims, s.C, s.H, s.W), fits(dims, s.H, s.W, s.C)
		switch {
		case chw && (!hwc || d.Layout == NCHW):
			return d.WithLayout(NCHW), []int{s.C, s.H, s.W}, nil
		case hwc:
			return d.WithLayout(NHWC), []int{s.H, s.W, s.C}, nil
		}
	case 3:
		if s.C == 1 && fits(shape[1:], s.H, s.W) {
			return d, []int{s.H, s.W}, nil
		}
	case 2:
		if fits(shape[1:], s.Size()) {
			return d, []int{s.Size()}, nil
		}
	}
	return nil, nil, bad()
}
