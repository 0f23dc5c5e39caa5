package plan

import (
	"strconv"
	"strings"

	"github.com/gotrain/gotrain/graph"
)

// Signature is the key of a set of input shapes: each input's name and
// shape, in the graph's input order.
func Signature(inputs []*graph.ValueInfo, shapes map[string][]int) string {
	var b strings.Builder
	for _, in := range inputs {
		b.WriteString(in.Name)
		b.WriteByte('[')
		for i, d := range shapes[in.Name] {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(d))
		}
		b.WriteString("];")
	}
	return b.String()
}

// Cache keeps a backend's plans (of any type P: what the backend made of a
// Plan) by Signature. It holds at most Max plans: adding one more empties
// it first, since shapes rarely vary more and a plan holds memory.
type Cache[P any] struct {
	Max   int
	plans map[string]P
}

// DefaultCacheSize is how many plans an executable keeps.
const DefaultCacheSize = 16

// NewCache returns a cache of at most max plans.
func NewCache[P any](max int) *Cache[P] {
	if max < 1 {
		max = 1
	}
	return &Cache[P]{Max: max, plans: map[string]P{}}
}

// Get returns the plan kept for a signature.
func (c *Cache[P]) Get(sig string) (P, bool) {
	p, ok := c.plans[sig]
	return p, ok
}

// Put keeps a plan.
func (c *Cache[P]) Put(sig string, p P) {
	if _, ok := c.plans[sig]; !ok && len(c.plans) >= c.Max {
		clear(c.plans)
	}
	c.plans[sig] = p
}

// Len is the number of plans kept.
func (c *Cache[P]) Len() int { return len(c.plans) }
