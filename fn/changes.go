package fn

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
)

// A tracker remembers, per Database, what the function last composed for
// it, so that it can log when that changes rather than on every call.
type tracker struct {
	max int

	mu   sync.Mutex
	last map[string][]Desired // namespace/name -> last composed
}

func newTracker(size int) *tracker {
	return &tracker{max: size, last: map[string][]Desired{}}
}

// changed records cur as what Database id composes and returns how it
// differs from the previous call: composed resource names prefixed + (new),
// ~ (changed) or - (no longer composed), in name order. The first call for
// a Database since the function started lists every resource as new.
func (t *tracker) changed(id string, cur []Desired) []string {
	t.mu.Lock()
	prev, ok := t.last[id]
	if !ok && len(t.last) >= t.max {
		for k := range t.last { // Forget one at random.
			delete(t.last, k)
			break
		}
	}
	t.last[id] = cur
	t.mu.Unlock()
	return changes(prev, cur)
}

// changes lists how cur differs from prev. The memo hands out the same
// structs while nothing changed, so most comparisons are of pointers.
func changes(prev, cur []Desired) []string {
	was := make(map[string]*Desired, len(prev))
	for i := range prev {
		was[string(prev[i].Name)] = &prev[i]
	}
	var out []string
	for _, d := range cur {
		p, ok := was[string(d.Name)]
		switch {
		case !ok:
			out = append(out, "+"+string(d.Name))
		case p.Struct != d.Struct && !proto.Equal(p.Struct, d.Struct):
			out = append(out, "~"+string(d.Name))
		}
		delete(was, string(d.Name))
	}
	for n := range was {
		out = append(out, "-"+n)
	}
	slices.SortFunc(out, func(a, b string) int {
		return cmp.Or(strings.Compare(a[1:], b[1:]), strings.Compare(a, b))
	})
	return out
}
