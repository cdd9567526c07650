package fn

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// TestCacheNeverStale runs one cached Function through a sequence of calls
// whose inputs change one at a time, and compares every response with an
// uncached Function's: a cache hit must never return another input's output.
func TestCacheNeverStale(t *testing.T) {
	pw := func() (string, error) { return testPassword, nil }
	cachedFn := New(logging.NewNopLogger(), WithPasswordGenerator(pw), WithIssuer(fixedIssuer{}))
	uncached := New(logging.NewNopLogger(), WithPasswordGenerator(pw), WithIssuer(fixedIssuer{}), WithoutCache())

	calls := []struct {
		reason string
		req    *fnv1.RunFunctionRequest
	}{
		{"first call", req(xr("orders", pgProd), nil)},
		{"same again: a hit", req(xr("orders", pgProd), nil)},
		{"replicas change", req(xr("orders", `{"type":"postgresql","version":"16","replicas":3,"environment":"production","storage":{"size":"20Gi"},"backup":{"enabled":true}}`), nil)},
		{"backup disabled", req(xr("orders", `{"type":"postgresql","version":"16","replicas":3,"environment":"production","storage":{"size":"20Gi"}}`), nil)},
		{"password read back from the Secret", req(xr("orders", pgProd), map[string]string{"secret": secretJSON("other")})},
		{"observed claim template smaller", req(xr("orders", pgProd), map[string]string{"secret": secretJSON("other"), "statefulset": stsJSON(2, 2, "10Gi")})},
		{"backup volume observed", req(xr("orders", pgDev), map[string]string{"backup-pvc": pvcJSON})},
		{"another namespace, same name", req(`{"apiVersion":"database.example.com/v1","kind":"Database","metadata":{"name":"orders","namespace":"team-b"},"spec":`+pgProd+`}`, nil)},
		{"back to the first input", req(xr("orders", pgProd), nil)},
		{"engine change under the same name", req(xr("orders", myProd), nil)},
		{"monitoring on", req(xr("orders", `{"type":"mysql","version":"8.4","replicas":2,"environment":"production","storage":{"size":"20Gi","class":"fast"},"monitoring":{"enabled":true,"metrics":true}}`), nil)},
	}
	for _, c := range calls {
		want, err := uncached.RunFunction(t.Context(), c.req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cachedFn.RunFunction(t.Context(), c.req)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
			t.Errorf("%s\nRunFunction(...) cached: -uncached, +cached:\n%s", c.reason, diff)
		}
	}
}

// TestCacheHits: the same Params again are built once.
func TestCacheHits(t *testing.T) {
	builds := 0
	m := memoize(8, func(p Params) ([]Desired, error) { builds++; return Build(p) })
	p := params(t, everySpec()["mysql-8.4-production-metrics=true"])
	for range 5 {
		if _, err := m.Build(params(t, everySpec()["mysql-8.4-production-metrics=true"])); err != nil {
			t.Fatal(err)
		}
	}
	p.Replicas = 3
	if _, err := m.Build(p); err != nil {
		t.Fatal(err)
	}
	if builds != 2 {
		t.Errorf("memo: 5 calls with equal Params and 1 with other Params: want 2 builds, got %d", builds)
	}
}

// TestCacheBounded shows the cache holds at most its size in Databases.
func TestCacheBounded(t *testing.T) {
	c := memoize(3, Build)
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		p := params(t, everySpec()["postgresql-14-development-metrics=false"])
		p.Name = n
		if _, err := c.Build(p); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.m) != 3 {
		t.Errorf("cache: want 3 entries at most, got %d", len(c.m))
	}
}
