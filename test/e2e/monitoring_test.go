//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// operatorCRDs are the Prometheus Operator's CRDs the function looks for.
var operatorCRDs = []string{"podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"}

// TestMonitoringFollowsThePrometheusOperator: a production Database with
// metrics, on a control plane without the Prometheus Operator's CRDs, is
// composed without a PodMonitor or PrometheusRule and says so in its
// Monitored condition; once the CRDs are installed, its next reconcile
// composes both and Monitored is True. Not parallel: it installs and
// removes cluster-wide CRDs, which would change what other tests'
// Databases compose; Go runs it before the parallel ones.
func TestMonitoringFollowsThePrometheusOperator(t *testing.T) {
	defer start(t)()
	const ns, name = "monitoring", "metrics"
	env.Namespace(t, ns)
	d := cluster.NewDatabase(ns, name, map[string]any{
		"type": "postgresql", "version": "16", "replicas": int64(2), "environment": "production",
		"storage":    map[string]any{"size": "5Gi"},
		"monitoring": map[string]any{"enabled": true, "metrics": true},
		"crossplane": map[string]any{"compositionRef": map[string]any{"name": cluster.SQLUsersComposition}},
	})
	env.ApplyDatabase(t, d)

	kinds := func(ctx context.Context) (map[string]bool, error) {
		db, err := env.GetDatabase(ctx, ns, name)
		if err != nil {
			return nil, err
		}
		refs, _, _ := unstructured.NestedSlice(db.Object, "spec", "crossplane", "resourceRefs")
		out := map[string]bool{}
		for _, r := range refs {
			if m, ok := r.(map[string]any); ok {
				out[fmt.Sprint(m["kind"])] = true
			}
		}
		return out, nil
	}
	env.WaitFor(t, d, "Monitored False without the operator's CRDs, the exporter and dashboard composed", func(ctx context.Context) error {
		db, err := env.GetDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		status, reason, msg := cluster.Condition(db, "Monitored")
		if status != "False" || reason != "PrometheusOperatorMissing" {
			return fmt.Errorf("Monitored %s %s %q", status, reason, msg)
		}
		for _, crd := range operatorCRDs {
			if !strings.Contains(msg, crd) {
				return fmt.Errorf("Monitored's message does not name %s: %q", crd, msg)
			}
		}
		k, err := kinds(ctx)
		if err != nil {
			return err
		}
		if k["PodMonitor"] || k["PrometheusRule"] || !k["StatefulSet"] || !k["ConfigMap"] {
			return fmt.Errorf("composed kinds %v: want a StatefulSet and ConfigMaps, no PodMonitor or PrometheusRule", k)
		}
		return nil
	})
	sts, err := env.Kubectl(t.Context(), nil, "get", "statefulset", name, "-n", ns, "-o", "jsonpath={.spec.template.spec.containers[*].name}")
	if err != nil || !strings.Contains(sts, "metrics") {
		t.Errorf("the StatefulSet's containers without the operator: %q, %v; want the exporter sidecar, metrics", sts, err)
	}

	dir := filepath.Join(env.Root, "test", "testdata", "prometheus-operator")
	if _, err := env.Kubectl(t.Context(), nil, "apply", "--server-side", "-f", dir); err != nil {
		t.Fatalf("cannot install the Prometheus Operator's CRDs: %v", err)
	}
	t.Cleanup(func() {
		// After the Database is gone: its PodMonitor and PrometheusRule
		// go with it.
		ctx := context.WithoutCancel(t.Context())
		if _, err := env.Kubectl(ctx, nil, "delete", "database", name, "-n", ns, "--wait=true", "--timeout=120s"); err != nil {
			t.Logf("cannot delete Database %s/%s: %v", ns, name, err)
		}
		args := append([]string{"delete", "crd", "--ignore-not-found"}, operatorCRDs...)
		if _, err := env.Kubectl(ctx, nil, args...); err != nil {
			t.Logf("cannot delete the Prometheus Operator's CRDs: %v", err)
		}
	})
	args := append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, prefixed("crd/", operatorCRDs)...)
	if _, err := env.Kubectl(t.Context(), nil, args...); err != nil {
		t.Fatal(err)
	}
	// Crossplane does not watch the CRDs it supplies as required
	// resources: a change to the Database reconciles it now, rather than
	// at Crossplane's next poll.
	if _, err := env.Kubectl(t.Context(), nil, "annotate", "database", name, "-n", ns, "--overwrite", "test.dbplane.io/touched=operator-installed"); err != nil {
		t.Fatal(err)
	}
	env.WaitFor(t, d, "Monitored True with the operator's CRDs, a PodMonitor and a PrometheusRule composed", func(ctx context.Context) error {
		db, err := env.GetDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		if status, reason, msg := cluster.Condition(db, "Monitored"); status != "True" || reason != "PrometheusOperator" {
			return fmt.Errorf("Monitored %s %s %q", status, reason, msg)
		}
		for _, kind := range []string{"podmonitors", "prometheusrules"} {
			out, err := env.Kubectl(ctx, nil, "get", kind, "-n", ns, "-o", "name")
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) == "" {
				return fmt.Errorf("no %s in %s", kind, ns)
			}
		}
		return nil
	})
}

func prefixed(p string, s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = p + v
	}
	return out
}
