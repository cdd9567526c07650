//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestRestoreFromBackup creates a Database that starts from another's
// backups: Crossplane must compose the restore Job (and so be allowed to
// create Jobs), the Job must mount the source's backup volume, and the
// client Service may appear only once the Job completed. Nothing runs in
// kwok's pods, so the Job "completes" at once: this proves the wiring, not
// the restore script (test/integration does that on real servers).
func TestRestoreFromBackup(t *testing.T) {
	defer start(t)()
	const ns = "restore"
	env.Namespace(t, ns)

	src := cluster.NewDatabase(ns, "orders-old", map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
		"backup":      map[string]any{"enabled": true},
	})
	env.ApplyDatabase(t, src)
	env.WaitReady(t, ns, src.GetName())

	d := cluster.NewDatabase(ns, "orders-new", map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
		"restore":     map[string]any{"from": src.GetName()},
	})
	t0 := time.Now()
	env.ApplyDatabase(t, d)
	var job *batchv1.Job
	early := false
	env.WaitFor(t, d, "restore Job completed", func(ctx context.Context) error {
		j, err := env.Kube.BatchV1().Jobs(ns).Get(ctx, "orders-new-restore", metav1.GetOptions{})
		if err != nil {
			return err
		}
		job = j
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		// The client Service must wait for the restore.
		if s, err := env.Object(ctx, "Service", ns, d.GetName()); err == nil && s != nil {
			early = true
		}
		return errors.New("restore Job not complete yet")
	})
	if early {
		t.Errorf("the client Service existed before the restore Job completed")
	}
	got := env.WaitReady(t, ns, d.GetName())
	record("latency: apply -> restored Database Ready", time.Since(t0))
	if s, r, _ := cluster.Condition(got.Unstructured, "Restored"); s != "True" || r != "RestoreSucceeded" {
		t.Errorf("condition Restored is %s/%s, want True/RestoreSucceeded", s, r)
	}

	if !cluster.ControlledBy(job, got.GetUID()) {
		t.Errorf("the restore Job is not controlled by its Database: %+v", job.OwnerReferences)
	}
	claim := ""
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claim = fmt.Sprintf("%s (read-only %t)", v.PersistentVolumeClaim.ClaimName, v.PersistentVolumeClaim.ReadOnly)
		}
	}
	if want := src.GetName() + "-backup (read-only true)"; claim != want {
		t.Errorf("the restore Job mounts %q, want the source's backup volume %q", claim, want)
	}
	if s, err := env.Object(t.Context(), "Service", ns, d.GetName()); err != nil || s == nil {
		t.Errorf("no client Service after the restore (err %v)", err)
	}
}
