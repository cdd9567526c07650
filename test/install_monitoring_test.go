package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	"github.com/dbplane/dbplane/fn"
)

// componentMetrics are the metrics of dbplane's own components that the
// install example's alerts read and that are not the function's own, with
// where they come from.
var componentMetrics = map[string]string{
	"grpc_server_handled_total":                 "function-sdk-go's gRPC server (go-grpc-middleware providers/prometheus)",
	"grpc_server_handling_seconds_bucket":       "the same, with the handling time histogram cmd/function turns on",
	"controller_runtime_reconcile_errors_total": "controller-runtime, in the provider",
}

// TestInstallMonitoring: the install example's PodMonitors and PrometheusRule
// validate against the Prometheus Operator's CRDs, promtool accepts its
// rules, and every metric they read is one the function registers (gathered
// from fn.NewMetrics) or one of componentMetrics.
func TestInstallMonitoring(t *testing.T) {
	cli, _ := tools(t)
	tool := promtool(t)
	const example = root + "/examples/install/monitoring.yaml"
	out, stderr, err := run(t.Context(), cli, "resource", "validate", operatorCRDs, example, "--crossplane-image=", "--cache-dir="+t.TempDir(), "--error-on-missing-schemas")
	if err != nil || !strings.Contains(out, " 0 failure cases") || strings.Count(out, "validated successfully") != 3 {
		t.Errorf("crossplane resource validate %s: %v\n%s%s", example, err, out, stderr)
	}

	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var rule *monitoringv1.PrometheusRule
	for d := range strings.SplitSeq(string(b), "\n---\n") {
		if strings.Contains(d, "\nkind: PrometheusRule\n") {
			rule = &monitoringv1.PrometheusRule{}
			if err := yaml.UnmarshalStrict([]byte(d), rule); err != nil {
				t.Fatal(err)
			}
		}
	}
	if rule == nil {
		t.Fatalf("%s has no PrometheusRule", example)
	}
	rb, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(f, rb, 0o600); err != nil {
		t.Fatal(err)
	}
	var exprs, alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs, alerts = append(exprs, r.Expr.String()), append(alerts, r.Alert)
		}
	}
	co, err := exec.CommandContext(t.Context(), tool, "check", "rules", f).CombinedOutput() //nolint:gosec // The pinned promtool.
	if err != nil || !strings.Contains(string(co), "SUCCESS: "+strconv.Itoa(len(exprs))+" rules found") {
		t.Errorf("promtool check rules: %v\n%s", err, co)
	}
	unitTest(t, tool, filepath.Dir(f), alerts, filepath.Join("testdata", "alerts", "components.test.yaml"))

	// A call that fails, so that every labelled metric has a series.
	m := fn.NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	bad := &fnv1.RunFunctionRequest{Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(
		`{"apiVersion":"database.example.com/v1","kind":"Database","metadata":{"name":"bad","namespace":"team-a"},"spec":{"type":"postgresql","version":"9.6","storage":{"size":"1Gi"}}}`)}}}
	if _, err := fn.New(logging.NewNopLogger(), fn.WithMetrics(m)).RunFunction(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	own := map[string]bool{}
	for _, mf := range mfs {
		own[mf.GetName()] = true
	}
	for _, p := range parsePromQL(t, exprs) {
		if p.Error != "" {
			t.Errorf("%s: %s", p.Expr, p.Error)
		}
		for _, m := range p.Metrics {
			if !own[m] && componentMetrics[m] == "" {
				t.Errorf("%s reads %s, which the function does not register and no documented source has", p.Expr, m)
			}
		}
	}
}
