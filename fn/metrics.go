package fn

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// staleAfter is how long a Database counts in dbplane_function_databases
// after the function last composed it. Crossplane calls the function for
// every Database at least every poll interval (1 minute by default), so a
// Database not seen for this long was deleted, or its reconciles fail before
// they reach the function.
const staleAfter = 10 * time.Minute

// Metrics are the function's own Prometheus metrics, beside the gRPC
// server's (grpc_server_handled_total and
// grpc_server_handling_seconds for RunFunction, from function-sdk-go):
//
//   - dbplane_function_databases{phase}: Databases by the phase the
//     function last composed for them, among those composed in the last
//     staleAfter;
//   - dbplane_function_results_total{severity}: results RunFunction
//     returned, fatal (Crossplane then applies nothing) and warning;
//   - dbplane_function_composition_changes_total: calls whose composed
//     resources differed from the Database's previous call.
type Metrics struct {
	now func() time.Time

	mu     sync.Mutex
	phases map[string]seen

	databases *prometheus.Desc
	results   *prometheus.CounterVec
	changes   prometheus.Counter
}

type seen struct {
	phase v1.Phase
	at    time.Time
}

// NewMetrics returns the function's metrics; register them with a
// prometheus.Registerer.
func NewMetrics() *Metrics {
	return &Metrics{
		now:       time.Now,
		phases:    map[string]seen{},
		databases: prometheus.NewDesc("dbplane_function_databases", "Databases by the phase the function last composed for them.", []string{"phase"}, nil),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dbplane_function_results_total", Help: "Results RunFunction returned, by severity.",
		}, []string{"severity"}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dbplane_function_composition_changes_total", Help: "Calls whose composed resources differed from the Database's previous call.",
		}),
	}
}

// WithMetrics records the function's metrics in m.
func WithMetrics(m *Metrics) Option {
	return func(f *Function) { f.metrics = m }
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.databases
	m.results.Describe(ch)
	m.changes.Describe(ch)
}

// Collect implements prometheus.Collector. Every phase is reported, 0 when
// no Database is in it, so that a query need not guess which exist.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	counts := map[v1.Phase]float64{}
	for _, p := range []v1.Phase{v1.PhasePending, v1.PhaseCreating, v1.PhasePartiallyReady, v1.PhaseReady, v1.PhaseFailed} {
		counts[p] = 0
	}
	m.mu.Lock()
	for id, s := range m.phases {
		if m.now().Sub(s.at) > staleAfter {
			delete(m.phases, id)
			continue
		}
		counts[s.phase]++
	}
	m.mu.Unlock()
	for p, n := range counts {
		ch <- prometheus.MustNewConstMetric(m.databases, prometheus.GaugeValue, n, string(p))
	}
	m.results.Collect(ch)
	m.changes.Collect(ch)
}

// composed records the phase composed for a Database, and whether what it
// composes changed.
func (m *Metrics) composed(id string, phase v1.Phase, changed bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.phases[id] = seen{phase: phase, at: m.now()}
	m.mu.Unlock()
	if changed {
		m.changes.Inc()
	}
}

// returned counts a response's results.
func (m *Metrics) returned(rsp *fnv1.RunFunctionResponse) {
	if m == nil {
		return
	}
	for _, r := range rsp.GetResults() {
		switch r.GetSeverity() {
		case fnv1.Severity_SEVERITY_FATAL:
			m.results.WithLabelValues("fatal").Inc()
		case fnv1.Severity_SEVERITY_WARNING:
			m.results.WithLabelValues("warning").Inc()
		case fnv1.Severity_SEVERITY_NORMAL, fnv1.Severity_SEVERITY_UNSPECIFIED:
		}
	}
}
