package fn

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/structpb"

	xplogging "github.com/crossplane/crossplane-runtime/v2/pkg/logging"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

func TestChanges(t *testing.T) {
	a, b := structpb.NewNullValue().GetStructValue(), &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(1)}}
	b2 := &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(1)}}
	c := &structpb.Struct{Fields: map[string]*structpb.Value{"x": structpb.NewNumberValue(2)}}
	d := func(n string, s *structpb.Struct) Desired { return Desired{Name: resource.Name(n), Struct: s} }
	cases := map[string]struct {
		reason    string
		prev, cur []Desired
		want      []string
	}{
		"First": {
			reason: "The first call for a Database lists everything as new.",
			cur:    []Desired{d("secret", a), d("configmap", b)},
			want:   []string{"+configmap", "+secret"},
		},
		"Same": {
			reason: "The memo's own structs again: nothing changed.",
			prev:   []Desired{d("secret", a), d("configmap", b)},
			cur:    []Desired{d("secret", a), d("configmap", b)},
		},
		"Equal": {
			reason: "Other structs with the same content (other Params, same objects): nothing changed.",
			prev:   []Desired{d("configmap", b)},
			cur:    []Desired{d("configmap", b2)},
		},
		"ChangedAddedRemoved": {
			reason: "A changed object, a new one and one no longer composed, in name order.",
			prev:   []Desired{d("configmap", b), d("pdb", a)},
			cur:    []Desired{d("configmap", c), d("backup-cronjob", a)},
			want:   []string{"+backup-cronjob", "~configmap", "-pdb"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, changes(tc.prev, tc.cur)); diff != "" {
				t.Errorf("%s\nchanges(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// infoLog records Info messages.
type infoLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *infoLog) Info(msg string, kv ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, fmt.Sprint(append([]any{msg}, kv...)...))
}
func (l *infoLog) Debug(string, ...any)               { /* Not what is tested. */ }
func (l *infoLog) WithValues(...any) xplogging.Logger { return l }

// TestRunFunctionLogsChanges: the function logs at info when what a
// Database composes changes, not on every call.
func TestRunFunctionLogsChanges(t *testing.T) {
	l := &infoLog{}
	f := New(l, WithPasswordGenerator(func() (string, error) { return testPassword, nil }), WithIssuer(fixedIssuer{}), WithClock(func() time.Time { return testNow }))
	observed := tlsSecretsJSON(testCerts())
	observed["secret"] = secretJSON(testPassword)
	for _, spec := range []string{pgDev, pgDev, pgDev, strings.Replace(pgDev, `"1Gi"}`, `"1Gi"},"monitoring":{"enabled":true,"logging":true}`, 1)} {
		if _, err := f.RunFunction(t.Context(), req(xr("orders", spec), observed)); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.msgs) != 2 {
		t.Fatalf("want 2 info logs (the first call, the change of configuration), got %d:\n%s", len(l.msgs), strings.Join(l.msgs, "\n"))
	}
	if !strings.Contains(l.msgs[0], "+statefulset") || !strings.Contains(l.msgs[1], "[~configmap ~statefulset]") {
		t.Errorf("want the first call's objects as new, then the ConfigMap and StatefulSet changed:\n%s", strings.Join(l.msgs, "\n"))
	}

	// With metrics, every reconcile calls twice: first without the
	// Prometheus Operator's CRDs (not yet asked for), then with them. Only
	// the second counts: no PodMonitor coming and going on every reconcile.
	l.msgs = nil
	metrics := strings.Replace(pgDev, `"1Gi"}`, `"1Gi"},"monitoring":{"enabled":true,"metrics":true}`, 1)
	crds := map[string]*fnv1.Resources{}
	for key, crd := range operatorCRDs {
		crds[key] = &fnv1.Resources{Items: []*fnv1.Resource{{Resource: resource.MustStructJSON(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"` + crd + `"}}`)}}}
	}
	for range 3 {
		first := req(xr("metrics", metrics), observed)
		second := req(xr("metrics", metrics), observed)
		second.RequiredResources = crds
		for _, r := range []*fnv1.RunFunctionRequest{first, second} {
			if _, err := f.RunFunction(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(l.msgs) != 1 || !strings.Contains(l.msgs[0], "+podmonitor") {
		t.Errorf("three reconciles of two calls each: want one info log, with the PodMonitor new, got:\n%s", strings.Join(l.msgs, "\n"))
	}
}

// TestMetrics: the function counts Databases by the phase it composed,
// forgets Databases it has not composed for staleAfter, and counts fatal and
// warning results and composition changes.
func TestMetrics(t *testing.T) {
	m := NewMetrics()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	f := New(logging.NewNopLogger(), WithMetrics(m), WithPasswordGenerator(func() (string, error) { return testPassword, nil }), WithIssuer(fixedIssuer{}))
	for _, r := range []string{
		xr("orders", pgDev), xr("orders", pgDev), // Pending, twice: one Database, one change.
		xr("legacy", my80Dev), // Pending, and a warning: end of life.
		xr("bad", `{"type":"postgresql","version":"9.6","storage":{"size":"1Gi"}}`), // Fatal.
	} {
		if _, err := f.RunFunction(t.Context(), req(r, nil)); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP dbplane_function_databases Databases by the phase the function last composed for them.
# TYPE dbplane_function_databases gauge
dbplane_function_databases{phase="Creating"} 0
dbplane_function_databases{phase="Failed"} 0
dbplane_function_databases{phase="PartiallyReady"} 0
dbplane_function_databases{phase="Pending"} 2
dbplane_function_databases{phase="Ready"} 0
# HELP dbplane_function_results_total Results RunFunction returned, by severity.
# TYPE dbplane_function_results_total counter
dbplane_function_results_total{severity="fatal"} 1
dbplane_function_results_total{severity="warning"} 1
# HELP dbplane_function_composition_changes_total Calls whose composed resources differed from the Database's previous call.
# TYPE dbplane_function_composition_changes_total counter
dbplane_function_composition_changes_total 2
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	now = now.Add(staleAfter + time.Second)
	if err := testutil.CollectAndCompare(m, strings.NewReader(strings.Replace(want, `{phase="Pending"} 2`, `{phase="Pending"} 0`, 1)), "dbplane_function_databases"); err != nil {
		t.Errorf("Databases not composed for %s are forgotten: %v", staleAfter, err)
	}
}
