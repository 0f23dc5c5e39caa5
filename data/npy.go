package data

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/gotrain/gotrain/tensor"
)

// LoadNPY reads an image array and a label array from two .npy files.
// Images may be [N, H, W] (one channel), [N, H, W, C] (Keras' layout, when
// the last dim is 1, 3 or 4), [N, C, H, W] (when dim 1 is), or [N, F]
// (flat features, read as 1x1xF images). Labels are integers (or integral
// floats), [N] or [N, 1], or one-hot rows [N, K]. classes is the class
// count (0: inferred from the labels). The dataset keeps the array's
// layout.
func LoadNPY(images, labels string, classes int) (*Dataset, error) {
	xt, err := tensor.ReadNPYFile(images)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	yt, err := tensor.ReadNPYFile(labels)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return fromArrays(xt, yt, classes, images, labels)
}

// LoadNPZ reads an image array and a label array from one .npz archive.
// With empty keys it takes "x" and "y", else "x_train" and "y_train"
// (Keras' mnist.npz); other keys are named explicitly. The arrays follow
// LoadNPY's rules.
func LoadNPZ(path, xKey, yKey string, classes int) (*Dataset, error) {
	m, err := tensor.ReadNPZ(path)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if xKey == "" && yKey == "" {
		for _, p := range [][2]string{{"x", "y"}, {"x_train", "y_train"}} {
			if m[p[0]] != nil && m[p[1]] != nil {
				xKey, yKey = p[0], p[1]
				break
			}
		}
		if xKey == "" {
			return nil, fmt.Errorf("data: %s: no arrays named x and y or x_train and y_train (it has %s): name the keys",
				path, strings.Join(keys, ", "))
		}
	}
	xt, yt := m[xKey], m[yKey]
	if xt == nil || yt == nil {
		return nil, fmt.Errorf("data: %s: arrays %q and %q expected; it has %s", path, xKey, yKey, strings.Join(keys, ", "))
	}
	return fromArrays(xt, yt, classes, path+":"+xKey, path+":"+yKey)
}

func fromArrays(xt, yt *tensor.Tensor, classes int, xName, yName string) (*Dataset, error) {
	if !(xt.DType().IsInt() || xt.DType().IsFloat() || xt.DType() == tensor.Bool) {
		return nil, fmt.Errorf("data: %s: images are %v: expected a numeric array", xName, xt.DType())
	}
	s := xt.Shape()
	isC := func(v int) bool { return v == 1 || v == 3 || v == 4 }
	var n, c, h, w int
	layout := NCHW
	switch len(s) {
	case 2:
		n, c, h, w = s[0], 1, 1, s[1]
	case 3:
		n, c, h, w = s[0], 1, s[1], s[2]
	case 4:
		switch {
		case isC(s[3]):
			n, h, w, c = s[0], s[1], s[2], s[3]
			layout = NHWC
		case isC(s[1]):
			n, c, h, w = s[0], s[1], s[2], s[3]
		default:
			return nil, fmt.Errorf("data: %s: images of shape %v: expected 1, 3 or 4 channels first or last", xName, s)
		}
	default:
		return nil, fmt.Errorf("data: %s: images of shape %v: expected [N, H, W], [N, H, W, C], [N, C, H, W] or [N, F]", xName, s)
	}
	if n == 0 || h*w*c == 0 {
		return nil, fmt.Errorf("data: %s: images of shape %v: expected at least one non-empty image", xName, s)
	}
	y, err := labelsFrom(yt, n, yName)
	if err != nil {
		return nil, err
	}
	if ys := yt.Shape(); classes == 0 && len(ys) == 2 && ys[1] > 1 {
		classes = ys[1] // one-hot rows name the class count
	}
	x, err := toFloat32(xt, xName)
	if err != nil {
		return nil, err
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("data: %s: value %d is %v: expected finite pixel values", xName, i, v)
		}
	}
	d, err := newChecked(x, y, n, c, h, w, layout, classes, xName, yName)
	if err != nil {
		return nil, err
	}
	d.Raw = RawKindOf(xt)
	return d, nil
}

// labelsFrom reads class indices from integer labels, integral float
// labels or one-hot rows.
func labelsFrom(yt *tensor.Tensor, n int, name string) ([]int64, error) {
	s := yt.Shape()
	if len(s) == 0 || s[0] != n || len(s) > 2 {
		return nil, fmt.Errorf("data: %s: labels of shape %v for %d images: expected [%d], [%d, 1] or one-hot [%d, K]", name, s, n, n, n, n)
	}
	if !(yt.DType().IsInt() || yt.DType().IsFloat() || yt.DType() == tensor.Bool) {
		return nil, fmt.Errorf("data: %s: labels are %v: expected integers", name, yt.DType())
	}
	y := make([]int64, n)
	if len(s) == 2 && s[1] > 1 { // one-hot
		k := s[1]
		for i := range n {
			hot := -1
			for j := range k {
				switch v := yt.AsFloat64(i*k + j); v {
				case 0:
				case 1:
					if hot >= 0 {
						return nil, fmt.Errorf("data: %s: label row %d has several ones: expected one-hot rows", name, i)
					}
					hot = j
				default:
					return nil, fmt.Errorf("data: %s: label row %d holds %v: expected one-hot rows of 0 and 1", name, i, v)
				}
			}
			if hot < 0 {
				return nil, fmt.Errorf("data: %s: label row %d has no 1: expected one-hot rows", name, i)
			}
			y[i] = int64(hot)
		}
		return y, nil
	}
	for i := range n {
		v := yt.AsFloat64(i)
		if v != math.Trunc(v) {
			return nil, fmt.Errorf("data: %s: label of sample %d is %v: expected a whole class index", name, i, v)
		}
		if math.Abs(v) > 1<<31 {
			return nil, fmt.Errorf("data: %s: label of sample %d is %.0f: too large for a class index", name, i, v)
		}
		y[i] = int64(v)
	}
	return y, nil
}
