package cpu

import (
	"fmt"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Pad in the modes constant, reflect, edge and wrap, with negative pads
// cropping. Constant mode is a fill plus one strided copy of the kept part
// of the input. The other modes map every output coordinate along each axis
// to an input coordinate through a per-axis table, precomputed here, and
// copy the contiguous middle of each row in one run.

func init() {
	Register(graph.DomainONNX, "Pad", padFactory)
}

// padIndex maps output coordinate o along an axis of input size d with
// begin pad pb to an input coordinate, or -1 for a constant.
func padIndex(mode string, o, d, pb int) int {
	i := o - pb
	if i >= 0 && i < d {
		return i
	}
	switch mode {
	case "edge":
		return max(0, min(i, d-1))
	case "wrap":
		return ((i % d) + d) % d
	case "reflect":
		if d == 1 {
			return 0
		}
		period := 2 * (d - 1)
		i = ((i % period) + period) % period
		if i >= d {
			i = period - i
		}
		return i
	}
	return -1
}

type padPlan struct {
	is, os []int
	ist    []int
	tables [][]int // per axis: output coordinate -> input coordinate (-1: constant)
	// For the last axis, the output range [lo, hi) maps to input lo-pb...
	lo, hi, pb int
}

func padFactory(p *Prep) (Kernel, error) {
	is, os, err := concreteIO(p)
	if err != nil {
		return nil, err
	}
	r := len(is)
	pads, known, err := graph.PadParams(p.Node, p.In, p.Opset, r)
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, Errorf(p, "pads must be known when the kernel is prepared")
	}
	for i := range is {
		if is[i]+int(pads[i])+int(pads[r+i]) != os[i] {
			return nil, Errorf(p, "pads %v on %v do not give output %v", pads, is, os)
		}
	}
	mode := p.Node.AttrString("mode", "constant")
	dt := p.In[0].DType
	if mode != "constant" {
		for i, d := range is {
			if d == 0 && os[i] > 0 {
				return nil, Errorf(p, "mode %s cannot pad axis %d of size 0", mode, i)
			}
		}
		return padTableKernel(p, mode, is, os, pads)
	}
	// The kept part of the input and where it lands.
	dims := make([]int, r)
	ist, ost := tensor.Strides(is), tensor.Strides(os)
	dbase, sbase := 0, 0
	for i := range is {
		b, e := int(pads[i]), int(pads[r+i])
		dims[i] = max(0, is[i]+min(b, 0)+min(e, 0))
		dbase += max(b, 0) * ost[i]
		sbase += max(-b, 0) * ist[i]
	}
	c := newStridedCopy(dims, ost, ist, dbase, sbase)
	fillAttr := float64(p.Node.AttrFloat("value", 0))
	f, ok := bySize(dt, padConstT[uint8], padConstT[uint16], padConstT[uint32], padConstT[uint64], padConstT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", dt)
	}
	fill := tensor.New(dt, 1)
	if dt != tensor.String {
		if err := setFromFloat64(fill, fillAttr); err != nil {
			return nil, Unsupported(p, "%v", err)
		}
	}
	pool := p.Pool
	return func(in, out []*tensor.Tensor) error {
		v := fill
		if len(in) > 2 && in[2] != nil {
			if in[2].DType() != dt || in[2].Len() != 1 {
				return fmt.Errorf("constant_value must be one %v, is %v%v", dt, in[2].DType(), in[2].Shape())
			}
			v = in[2]
		}
		f(c, pool, out[0], in[0], v)
		return nil
	}, nil
}

func padConstT[T moveElem](c *stridedCopy, pool *Pool, out, in, fill *tensor.Tensor) {
	dst := moveData[T](out)
	v := moveData[T](fill)[0]
	for i := range dst {
		dst[i] = v
	}
	runStrided(c, pool, dst, moveData[T](in))
}

func padTableKernel(p *Prep, mode string, is, os []int, pads []int64) (Kernel, error) {
	r := len(is)
	pl := &padPlan{is: is, os: os, ist: tensor.Strides(is), tables: make([][]int, r)}
	for a := range is {
		t := make([]int, os[a])
		for o := range t {
			t[o] = padIndex(mode, o, is[a], int(pads[a]))
		}
		pl.tables[a] = t
	}
	if r > 0 {
		pb := int(pads[r-1])
		pl.pb = pb
		pl.lo = max(0, pb)
		pl.hi = max(pl.lo, min(os[r-1], is[r-1]+pb))
	}
	f, ok := bySize(p.In[0].DType, padTableT[uint8], padTableT[uint16], padTableT[uint32], padTableT[uint64], padTableT[string])
	if !ok {
		return nil, Unsupported(p, "dtype %v", p.In[0].DType)
	}
	pool := p.Pool
	return func(in, out []*tensor.Tensor) error {
		f(pl, pool, out[0], in[0])
		return nil
	}, nil
}

func padTableT[T moveElem](pl *padPlan, pool *Pool, out, in *tensor.Tensor) {
	dst, src := moveData[T](out), moveData[T](in)
	r := len(pl.os)
	if r == 0 {
		copy(dst, src)
		return
	}
	w := pl.os[r-1]
	if w == 0 || len(dst) == 0 {
		return
	}
	rows := len(dst) / w
	last := pl.tables[r-1]
	pool.For(rows, max(1, moveGrain/w), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			// Input offset of this row from the outer axes' tables.
			s, rem := 0, row
			for a := r - 2; a >= 0; a-- {
				o := rem % pl.os[a]
				rem /= pl.os[a]
				s += pl.tables[a][o] * pl.ist[a]
			}
			d := dst[row*w : (row+1)*w]
			for o := 0; o < pl.lo; o++ {
				d[o] = src[s+last[o]]
			}
			copy(d[pl.lo:pl.hi], src[s+pl.lo-pl.pb:])
			for o := pl.hi; o < w; o++ {
				d[o] = src[s+last[o]]
			}
		}
	})
}

// setFromFloat64 stores v in the one-element numeric or bool tensor t.
func setFromFloat64(t *tensor.Tensor, v float64) error {
	switch d := t.Data().(type) {
	case []float32:
		d[0] = float32(v)
	case []float64:
		d[0] = v
	case []int64:
		d[0] = int64(v)
	case []int32:
		d[0] = int32(v)
	case []int16:
		d[0] = int16(v)
	case []int8:
		d[0] = int8(v)
	case []uint8:
		d[0] = uint8(v)
	case []uint32:
		d[0] = uint32(v)
	case []uint64:
		d[0] = uint64(v)
	case []bool:
		d[0] = v != 0
	case []uint16:
		switch t.DType() {
		case tensor.Float16:
			d[0] = tensor.Float32ToHalf(float32(v))
		case tensor.BFloat16:
			d[0] = tensor.Float32ToBFloat16(float32(v))
		default:
			d[0] = uint16(v)
		}
	default:
		return fmt.Errorf("cannot set a %v element from a number", t.DType())
	}
	return nil
}
