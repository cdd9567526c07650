//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestClaims installs the claims package (the legacy XDatabase XRD, whose
// claim is DatabaseClaim, and its Composition) next to the Database's, and
// uses DatabaseClaims as a developer would on Crossplane v2: each example
// claim becomes Ready, its XDatabase cluster-scoped and every composed
// object in the claim's namespace, controlled by the XDatabase, the status
// and the function's conditions on the claim; a deleted claim takes its
// XDatabase and composed objects with it but keeps the data and backup
// volumes, as a deleted Database does; a claim restores from another claim's
// backups; a claim named like a Database takes nothing from it.
func TestClaims(t *testing.T) {
	defer start(t)()
	t0 := time.Now()
	env.InstallClaims(t)
	record("claims: install the claims XRD and Composition -> DatabaseClaims served", time.Since(t0))

	t.Run("examples", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		const ns = "claims"
		env.Namespace(t, ns)
		files, err := filepath.Glob(filepath.Join(env.Root, "examples", "claims", "*.yaml"))
		if err != nil || len(files) < 2 {
			t.Fatalf("want the example claims, got %v (%v)", files, err)
		}
		t.Run("each", func(t *testing.T) {
			for _, f := range files {
				d := cluster.ReadDatabase(t, f)
				if d.GetKind() != "DatabaseClaim" {
					t.Fatalf("%s: kind %s, want DatabaseClaim", f, d.GetKind())
				}
				d.SetNamespace(ns)
				t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
					defer start(t)()
					t.Parallel()
					claimBecomesReady(t, d)
				})
			}
		})
		if t.Failed() {
			return
		}
		// What `kubectl get dbclaim` shows: the claim's short name, the
		// XRD's printer columns and Crossplane's.
		out, err := env.Kubectl(t.Context(), nil, "get", "dbclaim", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kubectl get dbclaim -n %s:\n%s", ns, out)
		rows := table(out)
		for _, f := range files {
			d := cluster.ReadDatabase(t, f)
			r := rows[d.GetName()]
			for col, want := range map[string]string{"TYPE": d.Str("spec", "type"), "VERSION": d.Str("spec", "version"), "SYNCED": "True", "READY": "True"} {
				if r[col] != want {
					t.Errorf("kubectl get dbclaim: %s: %s is %q, want %q", d.GetName(), col, r[col], want)
				}
			}
		}
	})

	t.Run("delete", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		claimDeleteKeepsDataClaims(t)
	})

	t.Run("restore", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		claimRestores(t)
	})

	t.Run("clash", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		claimClashesWithDatabase(t)
	})
}

// claimClashesWithDatabase creates a DatabaseClaim of the same name, in the
// same namespace, as a running Database: both would compose the same
// objects. The claim must not take them over, and deleting it must leave
// the Database and every object it composed as they were.
func claimClashesWithDatabase(t *testing.T) {
	t.Helper()
	const ns, name = "claims-clash", "ledger"
	env.Namespace(t, ns)
	spec := map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
	}
	db := cluster.NewDatabase(ns, name, spec)
	env.ApplyDatabase(t, db)
	got := env.WaitReady(t, ns, name)
	before := snapshot(t, db)

	c := cluster.NewClaim(ns, name, spec)
	env.ApplyDatabase(t, c)
	var why string
	env.WaitFor(t, c, "the claim's XDatabase refused", func(ctx context.Context) error {
		claim, err := env.GetClaim(ctx, ns, name)
		if err != nil || claim == nil {
			return fmt.Errorf("no claim: %w", err)
		}
		xr, err := env.ClaimXR(ctx, claim)
		if err != nil {
			return err
		}
		s, _, m := cluster.Condition(xr, "Synced")
		if s != "False" {
			return fmt.Errorf("XDatabase Synced %q: %s", s, m)
		}
		why = m
		return nil
	})
	t.Logf("a DatabaseClaim named like a Database of its namespace: XDatabase Synced=False: %s", why)
	// Several reconciles' worth of retries.
	time.Sleep(10 * time.Second)
	for _, o := range cluster.ComposedObjects(db) {
		obj, err := env.Object(t.Context(), o.Kind, ns, o.Name)
		if err != nil {
			t.Fatal(err)
		}
		if obj == nil || !cluster.ControlledBy(obj, got.GetUID()) {
			t.Errorf("%s %s: want it still controlled by the Database, got %v", o.Kind, o.Name, obj)
		}
	}
	claim, err := env.GetClaim(t.Context(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := cluster.Condition(claim, "Ready"); s == "True" {
		t.Errorf("the clashing claim is Ready: %s", cluster.Conditions(claim))
	}

	if _, err := env.Kubectl(t.Context(), nil, "delete", "databaseclaim", name, "-n", ns, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if after := snapshot(t, db); !maps.Equal(before, after) {
		t.Errorf("deleting the clashing claim changed the Database's objects:\nbefore %v\nafter  %v", before, after)
	}
	env.WaitReady(t, ns, name)
}

// claimBecomesReady applies the claim d and checks what the developer and
// the cluster see.
func claimBecomesReady(t *testing.T, d cluster.Database) {
	t.Helper()
	ns, name := d.GetNamespace(), d.GetName()
	t0 := time.Now()
	env.ApplyDatabase(t, d)
	claim, xr := env.WaitClaimReady(t, ns, name)
	record("latency: apply -> DatabaseClaim Ready", time.Since(t0))

	if xr.GetNamespace() != "" {
		t.Errorf("XDatabase %s is in namespace %q: want cluster-scoped", xr.GetName(), xr.GetNamespace())
	}
	if l := xr.GetLabels(); l["crossplane.io/claim-name"] != name || l["crossplane.io/claim-namespace"] != ns {
		t.Errorf("XDatabase %s labels %v: want the claim's name and namespace", xr.GetName(), l)
	}
	for _, c := range cluster.ComposedObjects(d) {
		o, err := env.Object(t.Context(), c.Kind, ns, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		if o == nil {
			t.Errorf("%s %s was not composed in the claim's namespace %s", c.Kind, c.Name, ns)
			continue
		}
		if !cluster.ControlledBy(o, xr.GetUID()) {
			t.Errorf("%s %s is not controlled by the claim's XDatabase: ownerReferences %+v", c.Kind, c.Name, o.GetOwnerReferences())
		}
	}
	env.DataClaims(t, ns, name, int(d.Num("spec", "replicas")))

	// The XDatabase's status, on the claim.
	port := map[string]string{"postgresql": "5432", "mysql": "3306"}[d.Str("spec", "type")]
	if got, want := claim.Str("status", "endpoint"), name+"."+ns+".svc.cluster.local:"+port; got != want {
		t.Errorf("claim status.endpoint %q, want %q", got, want)
	}
	// The function's conditions, on the claim (CompositeAndClaim).
	for _, typ := range []string{"VersionSupported", "StorageSized", "BackupHealthy"} {
		want, _, _ := cluster.Condition(xr.Unstructured, typ)
		if s, _, _ := cluster.Condition(claim.Unstructured, typ); s == "" || s != want {
			t.Errorf("claim condition %s is %q, want the XDatabase's %q: %s", typ, s, want, cluster.Conditions(claim.Unstructured))
		}
	}
	sec, err := env.Kube.CoreV1().Secrets(ns).Get(t.Context(), name+"-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := string(sec.Data["host"]); !strings.HasSuffix(h, "."+ns+".svc.cluster.local") {
		t.Errorf("Secret %s-credentials host %q: want a host in the claim's namespace", name, h)
	}
}

// claimDeleteKeepsDataClaims deletes a claim: its XDatabase and everything
// composed go, but the data volumes, which the StatefulSet retains, and the
// backup volume, which the claim's Namespace co-owns, stay; a new claim of
// the same name adopts the backup volume: the rules of
// TestDeleteKeepsDataClaims.
func claimDeleteKeepsDataClaims(t *testing.T) {
	t.Helper()
	const ns, name = "claims-deletion", "archive"
	env.Namespace(t, ns)
	spec := func() map[string]any {
		return map[string]any{
			"type":        "mysql",
			"version":     "8.4",
			"replicas":    int64(2),
			"environment": "staging",
			"storage":     map[string]any{"size": "5Gi"},
			"backup":      map[string]any{"enabled": true},
		}
	}
	d := cluster.NewClaim(ns, name, spec())
	env.ApplyDatabase(t, d)
	_, xr := env.WaitClaimReady(t, ns, name)
	claims := env.DataClaims(t, ns, name, 2)
	backup, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name+"-backup", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("backup PVC: %v", err)
	}
	if !cluster.ControlledBy(backup, xr.GetUID()) || !slices.ContainsFunc(backup.OwnerReferences, func(r metav1.OwnerReference) bool { return r.Kind == "Namespace" && r.Name == ns }) {
		t.Errorf("backup PVC %s: want it controlled by the XDatabase and owned by Namespace %s too, got %+v", backup.Name, ns, backup.OwnerReferences)
	}

	t0 := time.Now()
	if _, err := env.Kubectl(t.Context(), nil, "delete", "databaseclaim", name, "-n", ns, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	record("latency: kubectl delete databaseclaim (wait)", time.Since(t0))
	env.WaitFor(t, d, "XDatabase and composed objects deleted", func(ctx context.Context) error {
		var left []string
		if _, err := env.Dynamic.Resource(cluster.GVRXDatabase).Get(ctx, xr.GetName(), metav1.GetOptions{}); err == nil {
			left = append(left, "XDatabase/"+xr.GetName())
		}
		for _, c := range cluster.ComposedObjects(d) {
			if c.Kind == "PersistentVolumeClaim" && c.Name == backup.Name {
				continue
			}
			o, err := env.Object(ctx, c.Kind, ns, c.Name)
			if err != nil {
				return err
			}
			if o != nil {
				left = append(left, c.Kind+"/"+c.Name)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("still there: %v", left)
		}
		return nil
	})
	record("latency: kubectl delete databaseclaim -> composed objects gone", time.Since(t0))
	env.WaitFor(t, d, "backup PVC kept, the XDatabase's reference dropped", func(ctx context.Context) error {
		pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, backup.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("backup PVC %s is gone after deleting the claim: %w", backup.Name, err)
		}
		if pvc.UID != backup.UID || pvc.DeletionTimestamp != nil {
			return fmt.Errorf("backup PVC %s was replaced or is being deleted", backup.Name)
		}
		if c := metav1.GetControllerOf(pvc); c != nil {
			return fmt.Errorf("backup PVC %s still names its controller %s %s", backup.Name, c.Kind, c.Name)
		}
		return nil
	})
	for n, uid := range claims {
		pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Errorf("data PVC %s is gone after deleting the claim: %v", n, err)
			continue
		}
		if pvc.UID != uid || pvc.DeletionTimestamp != nil {
			t.Errorf("data PVC %s was replaced or is being deleted", n)
		}
	}

	// A new claim of the same name adopts the backup PVC the old one left.
	env.ApplyDatabase(t, cluster.NewClaim(ns, name, spec()))
	_, xr = env.WaitClaimReady(t, ns, name)
	pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), backup.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("backup PVC after creating the claim again: %v", err)
	}
	if pvc.UID != backup.UID {
		t.Errorf("backup PVC %s was replaced: uid %s, want %s", backup.Name, pvc.UID, backup.UID)
	}
	if !cluster.ControlledBy(pvc, xr.GetUID()) {
		t.Errorf("backup PVC %s is not controlled by the new claim's XDatabase: %v", backup.Name, pvc.OwnerReferences)
	}
}

// claimRestores creates a claim that starts from another claim's backups:
// the function asks Crossplane for the source DatabaseClaim (a required
// resource Crossplane must be allowed to read), and the restore Job mounts
// its backup volume. As in TestRestoreFromBackup, the Job "completes" at
// once in kwok: the wiring, not the script.
func claimRestores(t *testing.T) {
	t.Helper()
	const ns = "claims-restore"
	env.Namespace(t, ns)
	spec := func() map[string]any {
		return map[string]any{
			"type":        "postgresql",
			"version":     "16",
			"replicas":    int64(1),
			"environment": "development",
			"storage":     map[string]any{"size": "5Gi"},
		}
	}
	src := cluster.NewClaim(ns, "ledger-old", spec()).Set(t, map[string]any{"enabled": true}, "backup")
	env.ApplyDatabase(t, src)
	env.WaitClaimReady(t, ns, src.GetName())

	d := cluster.NewClaim(ns, "ledger-new", spec()).Set(t, map[string]any{"from": src.GetName()}, "restore")
	t0 := time.Now()
	env.ApplyDatabase(t, d)
	var job *batchv1.Job
	env.WaitFor(t, d, "restore Job completed", func(ctx context.Context) error {
		j, err := env.Kube.BatchV1().Jobs(ns).Get(ctx, d.GetName()+"-restore", metav1.GetOptions{})
		if err != nil {
			return err
		}
		job = j
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return errors.New("restore Job not complete yet")
	})
	claim, xr := env.WaitClaimReady(t, ns, d.GetName())
	record("latency: apply -> restored DatabaseClaim Ready", time.Since(t0))
	if s, r, _ := cluster.Condition(claim.Unstructured, "Restored"); s != "True" || r != "RestoreSucceeded" {
		t.Errorf("claim condition Restored is %s/%s, want True/RestoreSucceeded", s, r)
	}
	if !cluster.ControlledBy(job, xr.GetUID()) {
		t.Errorf("the restore Job is not controlled by the claim's XDatabase: %+v", job.OwnerReferences)
	}
	mounted := ""
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			mounted = fmt.Sprintf("%s (read-only %t)", v.PersistentVolumeClaim.ClaimName, v.PersistentVolumeClaim.ReadOnly)
		}
	}
	if want := src.GetName() + "-backup (read-only true)"; mounted != want {
		t.Errorf("the restore Job mounts %q, want the source claim's backup volume %q", mounted, want)
	}
}
