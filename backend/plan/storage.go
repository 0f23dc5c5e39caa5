package plan

import (
	"fmt"

	"github.com/google/btree"

	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// maxElems bounds a value's element count, as tensor.NewChecked does.
const maxElems = 1 << 40

// Reuse of a free block is refused when it is more than 4 times the size
// needed plus this slack (elements, or bytes for untyped blocks), so that a
// small value does not pin a large block.
const (
	slackElems = 1024
	slackBytes = 4096
)

// freeBlock is a block on a free list, offered at Size (the size of the
// value that last lived in it). Seq orders blocks of one size by release,
// so the earliest released is reused first.
type freeBlock struct {
	size  int64
	seq   int64
	block int
}

// storage assigns blocks to the plan's static values, reusing a block once
// every value in it is dead (best fit: the smallest free block that is
// large enough). Views share their root's block; in-place outputs are
// bound to their input's feed; values that outlive the plan (its outputs)
// are never released. Liveness is per root value, so a chain of views
// costs one step each.
func (p *Planner) storage(pl *Plan) error {
	vals := pl.Values
	// Mark views and in-place bindings.
	for _, st := range pl.Steps {
		p.w.add(len(st.Out))
		if st.View && !st.Dynamic && len(st.In) > 0 && st.In[0] >= 0 && st.Out[0] >= 0 {
			vals[st.Out[0]].Alias = pl.Root(st.In[0])
		}
		for _, o := range st.Out {
			if o < 0 {
				continue
			}
			if in, ok := p.inPlace[vals[o].Name]; ok {
				fs, ok := pl.Inputs[in]
				if !ok {
					return fmt.Errorf("in-place output %q: %q is not a graph input", vals[o].Name, in)
				}
				vals[o].Bind = fs
			}
		}
	}
	// Last use (step index) of each root value; outputs live forever.
	const forever = 1 << 62
	lastUse := make([]int, len(vals))
	for i := range lastUse {
		lastUse[i] = -1
	}
	for i, st := range pl.Steps {
		p.w.add(len(st.In) + len(st.Out))
		for _, s := range st.In {
			if s >= 0 {
				lastUse[pl.Root(s)] = i
			}
		}
		for _, s := range st.Out {
			if s >= 0 && lastUse[pl.Root(s)] < 0 {
				lastUse[pl.Root(s)] = i
			}
		}
	}
	for _, s := range pl.Outputs {
		lastUse[pl.Root(s)] = forever
	}
	type class tensor.DType
	free := map[class]*btree.BTreeG[freeBlock]{}
	less := func(a, b freeBlock) bool {
		p.w.add(1)
		if a.size != b.size {
			return a.size < b.size
		}
		return a.seq < b.seq
	}
	var seq int64
	untyped := p.hooks.Storage.Untyped
	classOf := func(dt tensor.DType) class {
		if untyped {
			return class(tensor.Invalid)
		}
		return class(dt)
	}
	take := func(v int, dt tensor.DType, size int64) int {
		slack := int64(slackElems)
		if untyped {
			slack = slackBytes
		}
		if t := free[classOf(dt)]; t != nil {
			var best freeBlock
			found := false
			t.AscendGreaterOrEqual(freeBlock{size: size}, func(b freeBlock) bool {
				best, found = b, true
				return false
			})
			if found && best.size <= 4*size+slack {
				t.Delete(best)
				return best.block
			}
		}
		bdt := dt
		if untyped {
			bdt = tensor.Invalid
		}
		pl.Blocks = append(pl.Blocks, Block{DType: bdt, Size: size, First: v})
		return len(pl.Blocks) - 1
	}
	release := func(v int) {
		b := vals[v].Block
		c := classOf(vals[v].Type.DType)
		t := free[c]
		if t == nil {
			t = btree.NewG(8, less)
			free[c] = t
		}
		seq++
		t.ReplaceOrInsert(freeBlock{size: p.sizeOf(vals[v].Type), seq: seq, block: b})
	}
	held := make([]bool, len(vals)) // roots whose block is in use
	for i, st := range pl.Steps {
		p.w.add(len(st.In) + 2*len(st.Out))
		if !st.Dynamic {
			for _, s := range st.Out {
				if s < 0 {
					continue
				}
				v := &vals[s]
				shape, _ := v.Type.Concrete()
				switch {
				case v.Alias >= 0:
					v.Block, v.Offset = vals[v.Alias].Block, vals[v.Alias].Offset
				case v.Bind >= 0:
					feed := vals[v.Bind].Type
					fs, _ := feed.Concrete()
					if feed.DType != v.Type.DType || !tensor.SameShape(fs, shape) {
						return fmt.Errorf("in-place output %q is %v but its input %q is %v", v.Name, v.Type, vals[v.Bind].Name, feed)
					}
				default:
					size, err := p.checkedSize(v.Type.DType, shape)
					if err != nil {
						return graph.Errorf(st.Node, "output %q: %v", v.Name, err)
					}
					v.Block = take(s, v.Type.DType, size)
					held[s] = true
				}
			}
		}
		// Release blocks whose last reader was this step.
		for _, list := range [2][]int{st.In, st.Out} {
			for _, s := range list {
				if s < 0 {
					continue
				}
				r := pl.Root(s)
				if lastUse[r] == i && held[r] {
					release(r)
					held[r] = false
				}
			}
		}
	}
	return nil
}

// checkedSize is a value's size in a block's units (elements, or bytes
// rounded up to the alignment for untyped blocks), checked against
// overflow.
func (p *Planner) checkedSize(dt tensor.DType, shape []int) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		n *= int64(d)
		if n > maxElems {
			return 0, fmt.Errorf("shape %v has more than 2^40 elements", shape)
		}
	}
	if !p.hooks.Storage.Untyped {
		return n, nil
	}
	es := int64(dt.Size())
	if es == 0 {
		return 0, fmt.Errorf("%v elements have no fixed size, so they cannot live in untyped storage", dt)
	}
	a := p.hooks.Storage.Align
	return (n*es + a - 1) / a * a, nil
}

// sizeOf is checkedSize of a value already checked.
func (p *Planner) sizeOf(t *graph.Type) int64 {
	shape, _ := t.Concrete()
	n, _ := p.checkedSize(t.DType, shape)
	return n
}
