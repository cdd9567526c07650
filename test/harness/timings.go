package harness

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Timings are named durations a test run measures (start-up steps, suites,
// latencies), printed at its end. The zero value is ready to use.
type Timings struct {
	mu sync.Mutex
	m  map[string][]time.Duration
}

// Record adds one measurement of name. It is safe for concurrent use.
func (t *Timings) Record(name string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string][]time.Duration{}
	}
	t.m[name] = append(t.m[name], d)
}

// Print writes every measurement to w by name: one value as is, more as
// their average, minimum and maximum. A failed write is not reported: this
// is the run's closing summary for a person, with nowhere else to go.
func (t *Timings) Print(w io.Writer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.m))
	for n := range t.m {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ds := t.m[n]
		if len(ds) == 1 {
			_, _ = fmt.Fprintf(w, "  %-60s %8.2fs\n", n, ds[0].Seconds())
			continue
		}
		lo, hi, sum := ds[0], ds[0], time.Duration(0)
		for _, d := range ds {
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		_, _ = fmt.Fprintf(w, "  %-60s %8.2fs avg  (min %.2fs, max %.2fs, n=%d)\n", n, (sum / time.Duration(len(ds))).Seconds(), lo.Seconds(), hi.Seconds(), len(ds))
	}
}
