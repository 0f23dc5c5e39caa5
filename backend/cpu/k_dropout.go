package cpu

import (
	"math"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// Dropout kernels.
//
// ONNX's Dropout is the identity (mask all true) unless its training_mode
// input (opset 12 on) is true and its ratio is non-zero. Then it draws its
// mask as ONNX's reference does: a Mersenne Twister (MT19937) seeded with
// the seed attribute (0 when absent) as NumPy's np.random.seed(seed) seeds
// it, one uniform double in [0, 1) per element in row-major order, kept when
// >= ratio. The generator is reseeded on every run, so every run draws the
// same mask; training graphs use DropoutTrain instead.
//
// DropoutTrain's mask is counter-based (graph.DropoutRowKey): each sample i
// is keyed by offset+i, so a batch split over replicas draws the masks one
// replica would, and no generator state is carried between runs.

func init() {
	Register(graph.DomainONNX, "Dropout", dropoutFactory)
	Register(graph.DomainGotrain, "DropoutTrain", dropoutTrainFactory)
}

// dropoutGeom splits X into samples (dim 0) of per elements.
func dropoutGeom(x []int) (rows, per int) {
	if len(x) == 0 {
		return 1, 1
	}
	rows = x[0]
	per = 1
	for _, d := range x[1:] {
		per *= d
	}
	return rows, per
}

// dropoutApply writes y = x*mask*scale and the mask for samples [lo, hi).
func dropoutApply[T poolFloat](x, y []T, mask []bool, per int, seed, offset int64, thresh uint64, scale T, lo, hi int) {
	for i := lo; i < hi; i++ {
		key := graph.DropoutRowKey(seed, offset+int64(i))
		xr, yr := x[i*per:(i+1)*per], y[i*per:(i+1)*per]
		var mr []bool
		if mask != nil {
			mr = mask[i*per : (i+1)*per]
		}
		for j, v := range xr {
			keep := graph.DropoutBits(key, j)>>40 >= thresh
			if keep {
				yr[j] = v * scale
			} else {
				yr[j] = 0
			}
			if mr != nil {
				mr[j] = keep
			}
		}
	}
}

// dropoutRatio validates a ratio and returns the keep threshold and the
// scale of kept elements.
func dropoutRatio(p *Prep, r float64) (uint64, float64, error) {
	if !(r >= 0 && r <= 1) {
		return 0, 0, Errorf(p, "ratio is %g, expected a value in [0, 1]", r)
	}
	if r == 1 {
		return graph.DropoutThreshold(1), 0, nil
	}
	return graph.DropoutThreshold(float32(r)), 1 / (1 - r), nil
}

func dropoutTrainFactory(p *Prep) (Kernel, error) {
	if err := normFloatIn(p, 0, "X"); err != nil {
		return nil, err
	}
	for i, c := range []struct {
		name string
		dt   tensor.DType
	}{{"ratio", tensor.Float32}, {"seed", tensor.Int64}, {"offset", tensor.Int64}} {
		if p.In[1+i].DType != c.dt || tensor.NumElements(p.InShape(1+i)) != 1 {
			return nil, Errorf(p, "input %s is %v, expected a %v scalar", c.name, p.In[1+i], c.dt)
		}
	}
	rows, per := dropoutGeom(p.InShape(0))
	if p.In[0].DType == tensor.Float32 {
		return dropoutTrainKernel[float32](p, rows, per), nil
	}
	return dropoutTrainKernel[float64](p, rows, per), nil
}

func dropoutTrainKernel[T poolFloat](p *Prep, rows, per int) Kernel {
	// The chunk function is made once and reads the call's slices and
	// scalars through these variables, so a run allocates nothing.
	var x, y []T
	var mask []bool
	var seed, offset int64
	var thresh uint64
	var scale T
	chunk := func(lo, hi int) {
		dropoutApply(x, y, mask, per, seed, offset, thresh, scale, lo, hi)
	}
	return func(in, out []*tensor.Tensor) error {
		th, sc, err := dropoutRatio(p, float64(in[1].Float32s()[0]))
		if err != nil {
			return err
		}
		thresh, scale = th, T(sc)
		seed, offset = in[2].Int64s()[0], in[3].Int64s()[0]
		x, y = in[0].Data().([]T), out[0].Data().([]T)
		mask = nil
		if m := normOut(out, 1); m != nil {
			mask = m.Bools()
		}
		p.Pool.For(rows, poolWork(per*4), chunk)
		x, y, mask = nil, nil, nil
		return nil
	}
}

func dropoutFactory(p *Prep) (Kernel, error) {
	dt := p.In[0].DType
	canTrain := p.Opset >= 12 && (dt == tensor.Float32 || dt == tensor.Float64)
	seed := p.Node.AttrInt("seed", 0)
	if seed < 0 || seed > math.MaxUint32 {
		return nil, Errorf(p, "attribute seed is %d, expected a value in [0, 2^32)", seed)
	}
	mt := new(dropoutMT19937)
	attrRatio := float64(p.Node.AttrFloat("ratio", 0.5))
	var maskDT tensor.DType
	if len(p.Out) > 1 && len(p.Node.Outputs) > 1 && p.Node.Outputs[1] != "" {
		maskDT = p.Out[1].DType
	}
	return func(in, out []*tensor.Tensor) error {
		training := false
		ratio := attrRatio
		if p.Opset >= 12 {
			if len(in) > 2 && in[2] != nil {
				if in[2].Len() != 1 {
					return Errorf(p, "input training_mode has shape %v, expected a scalar", in[2].Shape())
				}
				training = in[2].Bools()[0]
			}
			ratio = 0.5
			if len(in) > 1 && in[1] != nil {
				if in[1].Len() != 1 {
					return Errorf(p, "input ratio has shape %v, expected a scalar", in[1].Shape())
				}
				ratio = in[1].AsFloat64(0)
			}
		}
		if training && ratio != 0 {
			if !canTrain {
				return Unsupported(p, "training-mode Dropout of %v", dt)
			}
			if !(ratio >= 0 && ratio <= 1) {
				return Errorf(p, "ratio is %g, expected a value in [0, 1]", ratio)
			}
			scale := 0.0
			if ratio < 1 {
				scale = 1 / (1 - ratio)
			}
			var mask []bool
			if m := normOut(out, 1); m != nil {
				mask = m.Bools()
			}
			mt.seed(uint32(seed))
			switch dt {
			case tensor.Float32:
				dropoutMT(mt, in[0].Float32s(), out[0].Float32s(), mask, ratio, float32(scale))
			case tensor.Float64:
				dropoutMT(mt, in[0].Float64s(), out[0].Float64s(), mask, ratio, scale)
			}
			return nil
		}
		out[0].CopyFrom(in[0])
		if m := normOut(out, 1); m != nil {
			dropoutFillMask(m, maskDT)
		}
		return nil
	}, nil
}

// dropoutFillMask sets an inference-mode mask: all kept (true, or one for
// the pre-opset-10 mask of the input's type).
func dropoutFillMask(m *tensor.Tensor, dt tensor.DType) {
	switch dt {
	case tensor.Bool:
		b := m.Bools()
		for i := range b {
			b[i] = true
		}
	case tensor.Float32:
		f := m.Float32s()
		for i := range f {
			f[i] = 1
		}
	case tensor.Float64:
		f := m.Float64s()
		for i := range f {
			f[i] = 1
		}
	case tensor.Float16, tensor.BFloat16:
		one := tensor.Float32ToHalf(1)
		if dt == tensor.BFloat16 {
			one = tensor.Float32ToBFloat16(1)
		}
		h := m.Raw16()
		for i := range h {
			h[i] = one
		}
	}
}

// dropoutMT applies a mask drawn from mt in row-major order.
func dropoutMT[T poolFloat](mt *dropoutMT19937, x, y []T, mask []bool, ratio float64, scale T) {
	for i, v := range x {
		keep := mt.float64() >= ratio
		if keep {
			y[i] = v * scale
		} else {
			y[i] = 0
		}
		if mask != nil {
			mask[i] = keep
		}
	}
}

// dropoutMT19937 is the Mersenne Twister MT19937, seeded and turned into
// doubles the way NumPy's legacy RandomState does it.
type dropoutMT19937 struct {
	mt  [624]uint32
	idx int
}

func (g *dropoutMT19937) seed(s uint32) {
	g.mt[0] = s
	for i := 1; i < 624; i++ {
		prev := g.mt[i-1]
		g.mt[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	g.idx = 624
}

func (g *dropoutMT19937) next() uint32 {
	if g.idx >= 624 {
		const upper, lower = 0x80000000, 0x7fffffff
		for i := 0; i < 624; i++ {
			y := g.mt[i]&upper | g.mt[(i+1)%624]&lower
			v := g.mt[(i+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			g.mt[i] = v
		}
		g.idx = 0
	}
	y := g.mt[g.idx]
	g.idx++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// float64 is a uniform double in [0, 1) with 53 random bits.
func (g *dropoutMT19937) float64() float64 {
	a, b := g.next()>>5, g.next()>>6
	return (float64(a)*67108864 + float64(b)) / 9007199254740992
}
