//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestBackupNow annotates a Database with backups for a backup now: the
// function composes the one-off Job, Crossplane creates it, the Job
// completes (kwok completes Job pods: this proves the wiring, not the
// script, which test/integration runs), and the Database's
// status.onDemandBackup, lastBackup and BackupHealthy say so, read from the
// Job as a required resource. A new token replaces the Job.
func TestBackupNow(t *testing.T) {
	defer start(t)()
	const ns, name = "backup-now", "orders"
	env.Namespace(t, ns)
	d := cluster.NewDatabase(ns, name, map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
		"backup":      map[string]any{"enabled": true, "schedule": "0 3 * * *"},
	})
	env.ApplyDatabase(t, d)
	env.WaitReady(t, ns, name)

	jobOf := func(token string) string {
		sum := sha256.Sum256([]byte(token))
		return name + "-backup-now-" + hex.EncodeToString(sum[:3])
	}
	for _, token := range []string{"2026-12-01T18:00:00Z", "second"} {
		d.SetAnnotations(map[string]string{fn.AnnotationBackupNow: token})
		env.ApplyDatabase(t, d)
		job := jobOf(token)
		env.WaitFor(t, d, "on-demand backup Job "+job+" completed", func(ctx context.Context) error {
			j, err := env.Kube.BatchV1().Jobs(ns).Get(ctx, job, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
					return nil
				}
			}
			return fmt.Errorf("not complete: %v", j.Status.Conditions)
		})
		env.WaitFor(t, d, "status.onDemandBackup Succeeded and BackupHealthy naming "+job, func(ctx context.Context) error {
			u, err := onDemandSucceeded(ctx, ns, name)
			if err != nil {
				return err
			}
			if tk, _, _ := unstructured.NestedString(u.Object, "status", "onDemandBackup", "token"); tk != token {
				return fmt.Errorf("status.onDemandBackup.token %q, want %q", tk, token)
			}
			if lb, _, _ := unstructured.NestedString(u.Object, "status", "lastBackup"); lb == "" {
				return errors.New("no status.lastBackup")
			}
			cs, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range cs {
				c, _ := c.(map[string]any)
				if c["type"] == fn.ConditionBackupHealthy {
					if msg, _ := c["message"].(string); c["status"] != "True" || !strings.HasPrefix(msg, "Backup Job "+job+" completed at ") {
						return fmt.Errorf("BackupHealthy: %v", c)
					}
					return nil
				}
			}
			return errors.New("no BackupHealthy condition")
		})
	}
	env.WaitFor(t, d, "the first token's Job replaced by the second's", func(ctx context.Context) error {
		j, err := env.Kube.BatchV1().Jobs(ns).Get(ctx, jobOf("2026-12-01T18:00:00Z"), metav1.GetOptions{})
		if kerrors.IsNotFound(err) || (err == nil && j.DeletionTimestamp != nil) {
			return nil
		}
		if err != nil {
			return err
		}
		return errors.New("still there")
	})
}

// onDemandSucceeded is Database ns/name once its status.onDemandBackup says
// Succeeded, else an error saying what it says.
func onDemandSucceeded(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	u, err := env.GetDatabase(ctx, ns, name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, errors.New("the Database is gone")
	}
	if r, _, _ := unstructured.NestedString(u.Object, "status", "onDemandBackup", "result"); r != "Succeeded" {
		ob, _, _ := unstructured.NestedMap(u.Object, "status", "onDemandBackup")
		return nil, fmt.Errorf("status.onDemandBackup: %v", ob)
	}
	return u, nil
}
