//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// roleLabel is what the SQL provider's Replication labels pods with.
const roleLabel = "database.example.com/role"

// TestReplicatedRouting: a PostgreSQL Database with standbys gets the
// read-only Service selecting the pods labelled replica, and Crossplane's
// applies of the StatefulSet leave the role labels the SQL provider puts on
// the pods alone, over several reconciles. (The provider does not run on
// this control plane: the test labels the pods as it does.)
func TestReplicatedRouting(t *testing.T) {
	defer start(t)()
	const ns, name = "routing", "ledger"
	env.Namespace(t, ns)
	d := cluster.NewDatabase(ns, name, map[string]any{
		"type": "postgresql", "version": "17", "replicas": int64(3), "environment": "staging",
		"storage": map[string]any{"size": "5Gi"}, "backup": map[string]any{"enabled": false},
	})
	env.ApplyDatabase(t, d)
	env.WaitReady(t, ns, name)

	ro, err := env.Kube.CoreV1().Services(ns).Get(t.Context(), name+"-ro", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the read-only Service: %v", err)
	}
	want := map[string]string{"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": name, "app.kubernetes.io/component": "database", roleLabel: "replica"}
	if diff := cmp.Diff(want, ro.Spec.Selector); diff != "" {
		t.Errorf("%s-ro selector: -want, +got:\n%s", name, diff)
	}
	sts, err := env.Kube.AppsV1().StatefulSets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sts.Spec.Template.Labels[roleLabel]; ok {
		t.Errorf("the pod template sets %s: the StatefulSet would impose one role on every pod", roleLabel)
	}

	roles := map[string]string{name + "-0": "primary", name + "-1": "replica", name + "-2": "replica"}
	for pod, role := range roles {
		patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:%q}}}`, roleLabel, role)
		if _, err := env.Kube.CoreV1().Pods(ns).Patch(t.Context(), pod, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "provider-dbplane-sql"}); err != nil {
			t.Fatal(err)
		}
	}
	// Three changes that apply the StatefulSet again without touching its
	// pod template.
	for i, schedule := range []string{"0 1 * * *", "0 2 * * *", "0 3 * * *"} {
		d = d.Set(t, map[string]any{"enabled": true, "schedule": schedule, "retention": "3d"}, "backup")
		env.ApplyDatabase(t, d)
		got := env.WaitReady(t, ns, name)
		for pod, role := range roles {
			p, err := env.Kube.CoreV1().Pods(ns).Get(t.Context(), pod, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Labels[roleLabel] != role {
				t.Errorf("after reconcile %d (generation %d): pod %s has %s=%q, want %q", i+1, got.GetGeneration(), pod, roleLabel, p.Labels[roleLabel], role)
			}
		}
	}
	env.WaitEndpoints(t, ns, name+"-ro", []string{name + "-1", name + "-2"})
}

// TestAutoscalerOwnsReplicas: with spec.autoscaling the Database composes a
// HorizontalPodAutoscaler, and once it scales the StatefulSet (here the real
// HPA controller enforcing maxReplicas: this control plane has no metrics
// server) the function leaves the count to it over several reconciles.
func TestAutoscalerOwnsReplicas(t *testing.T) {
	defer start(t)()
	const ns, name = "autoscaling", "catalog"
	env.Namespace(t, ns)
	autoscaling := map[string]any{"minReplicas": int64(2), "maxReplicas": int64(5), "targetCPUUtilization": int64(70)}
	d := cluster.NewDatabase(ns, name, map[string]any{
		"type": "postgresql", "version": "17", "replicas": int64(3), "environment": "staging",
		"storage": map[string]any{"size": "5Gi"}, "backup": map[string]any{"enabled": false},
		"autoscaling": autoscaling,
	})
	env.ApplyDatabase(t, d)
	env.WaitReady(t, ns, name)
	hpa, err := env.Kube.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the HorizontalPodAutoscaler: %v", err)
	}
	if hpa.Spec.ScaleTargetRef.Kind != "StatefulSet" || hpa.Spec.ScaleTargetRef.Name != name || hpa.Spec.MaxReplicas != 5 || *hpa.Spec.MinReplicas != 2 {
		t.Errorf("HPA targets %s/%s within %d..%d, want StatefulSet/%s within 2..5", hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name, *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, name)
	}
	if r := replicas(t, ns, name); r != 3 {
		t.Fatalf("a new autoscaled Database starts with spec.replicas within the bounds: got %d, want 3", r)
	}

	// Lower the bound: the HPA controller scales the StatefulSet down to 2.
	autoscaling["maxReplicas"] = int64(2)
	d = d.Set(t, autoscaling, "autoscaling")
	env.ApplyDatabase(t, d)
	env.WaitFor(t, d, "the autoscaler scaled the StatefulSet to 2", func(ctx context.Context) error {
		s, err := env.Kube.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s.Spec.Replicas == nil || *s.Spec.Replicas != 2 || s.Status.ReadyReplicas != 2 {
			return fmt.Errorf("spec.replicas %v, ready %d", s.Spec.Replicas, s.Status.ReadyReplicas)
		}
		return nil
	})
	// Several reconciles later the count is still the autoscaler's, and
	// Crossplane's composition no longer applies it.
	for i, schedule := range []string{"0 1 * * *", "0 2 * * *", "0 3 * * *"} {
		d = d.Set(t, map[string]any{"enabled": true, "schedule": schedule, "retention": "3d"}, "backup")
		env.ApplyDatabase(t, d)
		got := env.WaitReady(t, ns, name)
		if r := replicas(t, ns, name); r != 2 {
			t.Errorf("after reconcile %d: the StatefulSet has %d replicas, want the autoscaler's 2", i+1, r)
		}
		if n := got.Num("status", "replicas"); n != 2 {
			t.Errorf("after reconcile %d: status.replicas %d, want 2", i+1, n)
		}
	}
	sts, err := env.Kube.AppsV1().StatefulSets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owners := replicasOwners(t, sts)
	if len(owners) != 1 || strings.HasPrefix(owners[0], "apiextensions.crossplane.io/") {
		t.Errorf("spec.replicas is owned by %v, want the autoscaler's field manager alone", owners)
	}
	t.Logf("spec.replicas owned by %v", owners)
}

func replicas(t *testing.T, ns, name string) int32 {
	t.Helper()
	s, err := env.Kube.AppsV1().StatefulSets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Spec.Replicas == nil {
		return -1
	}
	return *s.Spec.Replicas
}

// replicasOwners are the field managers that own the StatefulSet's
// spec.replicas.
func replicasOwners(t *testing.T, s *appsv1.StatefulSet) []string {
	t.Helper()
	var out []string
	for _, mf := range s.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var f struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if err := json.Unmarshal(mf.FieldsV1.Raw, &f); err != nil {
			t.Fatal(err)
		}
		if _, ok := f.Spec["f:replicas"]; ok {
			out = append(out, mf.Manager+"/"+mf.Subresource)
		}
	}
	return out
}
