package cpu

import (
	"math"
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Cast and CastLike between the numeric dtypes, bool and string.
//
// Numbers convert as Go (and C, and numpy) do: floats to integers truncate
// toward zero, integers wrap. float16/bfloat16 go through float32. Strings
// parse as decimal numbers ("NaN", "INF", "-INF" included) and numbers
// format as the shortest decimal that reads back to the same value.
// float8, int4 and the other sub-byte types are not supported.

func init() {
	Register(graph.DomainONNX, "Cast", newCast)
	Register(graph.DomainONNX, "CastLike", newCast)
}

func newCast(p *Prep) (Kernel, error) {
	from, to := p.In[0].DType, p.Out[0].DType
	if !from.Supported() || !to.Supported() {
		return nil, Unsupported(p, "Cast from %v to %v", from, to)
	}
	if from == to {
		return func(in, out []*tensor.Tensor) error {
			if in[0].DType() != out[0].DType() || in[0].Len() != out[0].Len() {
				return Errorf(p, "input %v does not match output %v", in[0], out[0])
			}
			out[0].CopyFrom(in[0])
			return nil
		}, nil
	}
	var scratch *tensor.Tensor // float32 staging for float16/bfloat16 outputs
	if isHalf(to) {
		scratch = tensor.New(tensor.Float32, p.OutShape(0)...)
	}
	return func(in, out []*tensor.Tensor) error {
		src, dst := in[0], out[0]
		if src.Len() != dst.Len() {
			return Errorf(p, "input has %d elements, output %d", src.Len(), dst.Len())
		}
		var err error
		switch d := dst.Data().(type) {
		case []float32:
			err = castTo(p, d, src)
		case []float64:
			err = castTo(p, d, src)
		case []int8:
			err = castTo(p, d, src)
		case []int16:
			err = castTo(p, d, src)
		case []int32:
			err = castTo(p, d, src)
		case []int64:
			err = castTo(p, d, src)
		case []uint8:
			err = castTo(p, d, src)
		case []uint32:
			err = castTo(p, d, src)
		case []uint64:
			err = castTo(p, d, src)
		case []uint16:
			if scratch == nil {
				err = castTo(p, d, src)
				break
			}
			if err = castTo(p, scratch.Float32s(), src); err == nil {
				f32ToHalf(dst, scratch.Float32s())
			}
		case []bool:
			err = castToBool(p, d, src)
		case []string:
			err = castToString(p, d, src)
		default:
			err = Unsupported(p, "Cast to %v", dst.DType())
		}
		return err
	}, nil
}

// castTo converts any supported source tensor into dst.
func castTo[D elemNum](p *Prep, dst []D, src *tensor.Tensor) error {
	switch s := src.Data().(type) {
	case []float32:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []float64:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []int8:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []int16:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []int32:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []int64:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []uint8:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []uint32:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []uint64:
		for i, v := range s[:len(dst)] {
			dst[i] = D(v)
		}
	case []uint16:
		switch src.DType() {
		case tensor.Float16:
			for i, v := range s[:len(dst)] {
				dst[i] = D(tensor.HalfToFloat32(v))
			}
		case tensor.BFloat16:
			for i, v := range s[:len(dst)] {
				dst[i] = D(tensor.BFloat16ToFloat32(v))
			}
		default:
			for i, v := range s[:len(dst)] {
				dst[i] = D(v)
			}
		}
	case []bool:
		for i, v := range s[:len(dst)] {
			dst[i] = 0
			if v {
				dst[i] = 1
			}
		}
	case []string:
		for i, v := range s[:len(dst)] {
			x, err := parseNumber(v)
			if err != nil {
				return Errorf(p, "element %d: %v", i, err)
			}
			dst[i] = D(x)
		}
	default:
		return Unsupported(p, "Cast from %v", src.DType())
	}
	return nil
}

// parseNumber reads a decimal number as Cast from string does.
func parseNumber(s string) (float64, error) {
	t := strings.TrimSpace(s)
	if i, err := strconv.ParseInt(t, 10, 64); err == nil && math.Abs(float64(i)) < 1<<53 {
		return float64(i), nil
	}
	return strconv.ParseFloat(t, 64)
}

func castToBool(p *Prep, dst []bool, src *tensor.Tensor) error {
	if src.DType() == tensor.String {
		for i, v := range src.Data().([]string)[:len(dst)] {
			x, err := parseNumber(v)
			if err != nil {
				return Errorf(p, "element %d: %v", i, err)
			}
			dst[i] = x != 0
		}
		return nil
	}
	for i := range dst {
		dst[i] = src.AsFloat64(i) != 0
	}
	return nil
}

func castToString(p *Prep, dst []string, src *tensor.Tensor) error {
	switch s := src.Data().(type) {
	case []float32:
		for i, v := range s[:len(dst)] {
			dst[i] = formatFloat(float64(v), 32)
		}
	case []float64:
		for i, v := range s[:len(dst)] {
			dst[i] = formatFloat(v, 64)
		}
	case []int64:
		for i, v := range s[:len(dst)] {
			dst[i] = strconv.FormatInt(v, 10)
		}
	case []uint64:
		for i, v := range s[:len(dst)] {
			dst[i] = strconv.FormatUint(v, 10)
		}
	case []bool:
		for i, v := range s[:len(dst)] {
			dst[i] = "False"
			if v {
				dst[i] = "True"
			}
		}
	default:
		dt := src.DType()
		switch {
		case dt.IsInt():
			for i := range dst {
				dst[i] = strconv.FormatInt(int64(src.AsFloat64(i)), 10)
			}
		case isHalf(dt):
			for i := range dst {
				dst[i] = formatFloat(src.AsFloat64(i), 32)
			}
		default:
			return Unsupported(p, "Cast from %v to string", dt)
		}
	}
	return nil
}

func formatFloat(v float64, bits int) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "INF"
	case math.IsInf(v, -1):
		return "-INF"
	}
	return strconv.FormatFloat(v, 'g', -1, bits)
}
