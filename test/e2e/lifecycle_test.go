//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestUpdates changes running Databases the ways the README allows and
// checks the cluster follows: more replicas, backups on (CronJob and backup
// volume appear) and off (the CronJob goes, the backup volume stays),
// storage grows (accepted, every volume kept, a Warning event), and MySQL
// 8.0 to 8.4 rolling the image, Ready only once rolled out.
//
// Each change is made to a Database of its own, created by its subtest: the
// subtests run alone, in any order or at once, and none spends another's
// Crossplane watch circuit breaker (after a few changes in a row to one
// Database, a change waits up to a minute to be applied).
func TestUpdates(t *testing.T) {
	defer start(t)()
	const ns = "updates"
	env.Namespace(t, ns)

	// running creates a MySQL 8.0 staging Database and waits until it is
	// Ready.
	running := func(t *testing.T, name string, replicas int64, backup map[string]any) cluster.Database {
		t.Helper()
		d := cluster.NewDatabase(ns, name, map[string]any{
			"type":        "mysql",
			"version":     "8.0",
			"replicas":    replicas,
			"environment": "staging",
			"storage":     map[string]any{"size": "5Gi"},
			// A copy: subtests run at once, and Set writes through
			// to the map the spec holds.
			"backup": maps.Clone(backup),
		})
		env.ApplyDatabase(t, d)
		env.WaitReady(t, ns, name)
		return d
	}
	backupOff := map[string]any{"enabled": false}
	backupOn := map[string]any{"enabled": true, "schedule": "0 3 * * *", "retention": "5d"}

	t.Run("ScaleOneToThree", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		const name = "scale"
		d := running(t, name, 1, backupOff)
		env.ApplyDatabase(t, d.Set(t, int64(3), "replicas"))
		env.WaitFor(t, d, "StatefulSet scaled", func(ctx context.Context) error {
			s, err := env.Kube.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if s.Spec.Replicas == nil || *s.Spec.Replicas != 3 || s.Status.ReadyReplicas != 3 {
				return fmt.Errorf("spec.replicas %v, ready %d", s.Spec.Replicas, s.Status.ReadyReplicas)
			}
			return nil
		})
		if got := env.WaitReady(t, ns, name); got.Num("status", "replicas") != 3 {
			t.Errorf("status.replicas is %d, want 3", got.Num("status", "replicas"))
		}
		env.DataClaims(t, ns, name, 3)
	})

	t.Run("BackupOn", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		const name = "backup-on"
		d := running(t, name, 1, backupOff)
		env.ApplyDatabase(t, d.Set(t, backupOn, "backup"))
		env.WaitFor(t, d, "backup CronJob and PVC composed", func(ctx context.Context) error {
			cj, err := env.Kube.BatchV1().CronJobs(ns).Get(ctx, name+"-backup", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cj.Spec.Schedule != "0 3 * * *" {
				return fmt.Errorf("CronJob schedule is %q", cj.Spec.Schedule)
			}
			_, err = env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name+"-backup", metav1.GetOptions{})
			return err
		})
		env.WaitReady(t, ns, name)
	})

	t.Run("BackupOffKeepsTheBackupVolume", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		const name = "backup-off"
		d := running(t, name, 1, backupOn)
		backupPVC := claimUID(t, ns, name+"-backup")
		env.ApplyDatabase(t, d.Set(t, false, "backup", "enabled"))
		env.WaitFor(t, d, "backup CronJob deleted", func(ctx context.Context) error {
			o, err := env.Object(ctx, "CronJob", ns, name+"-backup")
			if err != nil {
				return err
			}
			if o != nil {
				return errors.New("CronJob still there")
			}
			return nil
		})
		env.WaitReady(t, ns, name)
		pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name+"-backup", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the backup PVC is gone after turning backups off: %v", err)
		}
		if pvc.UID != backupPVC || pvc.DeletionTimestamp != nil {
			t.Errorf("the backup PVC was replaced or is being deleted: UID %s (was %s), deletionTimestamp %v", pvc.UID, backupPVC, pvc.DeletionTimestamp)
		}
	})

	t.Run("StorageGrowsKeepingEveryVolume", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		const name = "storage"
		d := running(t, name, 3, backupOn)
		claims := env.DataClaims(t, ns, name, 3)
		backupPVC := claimUID(t, ns, name+"-backup")
		env.ApplyDatabase(t, d.Set(t, "8Gi", "storage", "size"))
		got := env.WaitReady(t, ns, name)
		// The change is accepted and synced, no claim is replaced, and the
		// Database says on its events that volumes are not grown yet.
		if diff := cmp.Diff(claims, env.DataClaims(t, ns, name, 3)); diff != "" {
			t.Errorf("data PVCs replaced after growing storage (-before +after):\n%s", diff)
		}
		pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name+"-backup", metav1.GetOptions{})
		if err != nil || pvc.UID != backupPVC || pvc.DeletionTimestamp != nil {
			t.Errorf("the backup PVC was lost or replaced after growing storage: %v", err)
		}
		// Polled, not read once: Crossplane writes a reconcile's status in
		// two steps, first the function's status fields with the conditions
		// it read (server-side apply), then the function's new conditions
		// (update). Between them the Database can show this generation's
		// status.observedGeneration with the last reconcile's StorageSized
		// (seen in CI: True/AsRequested, then False a moment later).
		env.WaitFor(t, d, "StorageSized=False/GrowthNotAutomated about the data volumes", func(ctx context.Context) error {
			u, err := env.GetDatabase(ctx, ns, name)
			if err != nil {
				return err
			}
			if s, r, m := cluster.Condition(u, "StorageSized"); s != "False" || r != "GrowthNotAutomated" || !strings.Contains(m, "existing data volumes stay at 5Gi; growing them to 8Gi") {
				return fmt.Errorf("condition StorageSized is %s/%s (%q)", s, r, m)
			}
			return nil
		})
		// A Warning event too, though the Database, on MySQL 8.0, has been
		// warned of its end of life since it was created: that warning is
		// said when it changes, not on every reconcile, so it leaves room
		// for this one within the Warning events Kubernetes records per
		// object.
		env.WaitFor(t, d, "a Warning event about the volumes", func(ctx context.Context) error {
			evs, err := env.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.uid=" + string(got.GetUID())})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "existing data volumes stay at 5Gi; growing them to 8Gi") {
					return nil
				}
			}
			return fmt.Errorf("no such event among %d", len(evs.Items))
		})
		// Said when it changed: once, or twice when a reconcile's status
		// write lost a race. Said on every reconcile, it was 16 by now on
		// a quiet machine, and past the budget of 25 on a busy one, which
		// dropped the event above.
		evs, err := env.Kube.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.uid=" + string(got.GetUID())})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "MySQL 8.0 reached its end of life") && e.Count > 4 {
				t.Errorf("the end-of-life Warning was recorded %d times: it should be said when it changes, not on every reconcile", e.Count)
			}
		}
	})

	t.Run("MySQL80To84RollsTheImage", func(t *testing.T) {
		defer start(t)()
		t.Parallel()
		const name = "catalog"
		d := running(t, name, 3, backupOff)
		env.ApplyDatabase(t, d.Set(t, "8.4", "version"))
		// Ready for this generation means rolled out: the StatefulSet and
		// every pod already run 8.4 when the Database says Ready, with no
		// further wait.
		env.WaitReady(t, ns, name)
		s, err := env.Kube.AppsV1().StatefulSets(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range s.Spec.Template.Spec.Containers {
			if c.Name == "server" && !strings.HasSuffix(c.Image, ":8.4") {
				t.Errorf("Database Ready, but the StatefulSet's server image is %s", c.Image)
			}
		}
		if st := s.Status; st.ObservedGeneration < s.Generation || st.UpdatedReplicas != 3 || st.CurrentRevision != st.UpdateRevision {
			t.Errorf("Database Ready, but the StatefulSet is not rolled out: generation %d observed %d, %d updated, revision %s -> %s",
				s.Generation, st.ObservedGeneration, st.UpdatedReplicas, st.CurrentRevision, st.UpdateRevision)
		}
		for i := range 3 {
			p, err := env.Kube.CoreV1().Pods(ns).Get(t.Context(), fmt.Sprintf("%s-%d", name, i), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range p.Spec.Containers {
				if c.Name == "server" && !strings.HasSuffix(c.Image, ":8.4") {
					t.Errorf("Database Ready, but pod %s runs %s", p.Name, c.Image)
				}
			}
		}
	})
}

// claimUID returns the UID of a PVC, failing the test when it does not
// exist.
func claimUID(t *testing.T, ns, name string) types.UID {
	t.Helper()
	pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("cannot get PVC %s: %v", name, err)
	}
	return pvc.UID
}

// TestNothingLostWhileFunctionIsDown stops the function while a Database
// changes: nothing composed may be deleted, and the Database must catch up
// once the function is back. It logs what a user sees in between.
func TestNothingLostWhileFunctionIsDown(t *testing.T) {
	defer start(t)()
	const ns, name = "outage", "ledger"
	env.Namespace(t, ns)

	d := cluster.NewDatabase(ns, name, map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    int64(2),
		"environment": "production",
		"storage":     map[string]any{"size": "5Gi"},
		"backup":      map[string]any{"enabled": true},
	})
	env.ApplyDatabase(t, d)
	env.WaitReady(t, ns, name)
	before := snapshot(t, d)

	if err := env.StopFunction(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	restarted := false
	defer func() {
		if !restarted {
			if err := env.StartFunction(context.Background()); err != nil {
				t.Errorf("cannot restart the function: %v", err)
			}
		}
	}()

	env.ApplyDatabase(t, d.Set(t, int64(3), "replicas"))
	// Long enough for several reconciles and their backoff;
	// DBPLANE_E2E_OUTAGE (a duration) makes it longer, to see what users
	// see once Crossplane gives up waiting for the function.
	outage := 20 * time.Second
	if v := os.Getenv("DBPLANE_E2E_OUTAGE"); v != "" {
		var err error
		if outage, err = time.ParseDuration(v); err != nil {
			t.Fatalf("DBPLANE_E2E_OUTAGE: %v", err)
		}
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(outage)
	for time.Now().Before(deadline) {
		u, err := env.GetDatabase(t.Context(), ns, name)
		if err != nil {
			t.Fatal(err)
		}
		got := cluster.Database{Unstructured: u}
		c := fmt.Sprintf("%s; phase %s; generation %d, Synced for %d, Ready for %d", cluster.Conditions(u), got.Str("status", "phase"),
			u.GetGeneration(), cluster.ObservedGeneration(u, "Synced"), cluster.ObservedGeneration(u, "Ready"))
		if !seen[c] {
			seen[c] = true
			t.Logf("%5.1fs after stopping the function, the Database shows: %s", time.Since(stopped).Seconds(), c)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if after := snapshot(t, d); !maps.Equal(before, after) {
		t.Errorf("objects changed while the function was down:\nbefore %v\nafter  %v", before, after)
	}

	t0 := time.Now()
	if err := env.StartFunction(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	env.WaitFor(t, d, "Database caught up", func(ctx context.Context) error {
		u, err := env.GetDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		got := cluster.Database{Unstructured: u}
		if s, _, _ := cluster.Condition(u, "Ready"); s != "True" || got.Num("status", "replicas") != 3 {
			return fmt.Errorf("not caught up: %s, status.replicas %d", cluster.Conditions(u), got.Num("status", "replicas"))
		}
		return nil
	})
	record("latency: function back -> Database Ready with the change", time.Since(t0))
	after := snapshot(t, d)
	for k, uid := range before {
		if after[k] != uid {
			t.Errorf("%s was replaced or deleted after the function came back", k)
		}
	}
}

// TestDeleteKeepsDataClaims deletes a Database: everything it composed goes
// except the data volumes, which the StatefulSet retains, and the backup
// volume, which its Namespace owns too: Kubernetes' garbage collector only
// drops the Database's reference from it. A new Database of the same name
// adopts that backup volume, the same object, rather than making another.
func TestDeleteKeepsDataClaims(t *testing.T) {
	defer start(t)()
	const ns, name = "deletion", "archive"
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
	d := cluster.NewDatabase(ns, name, spec())
	env.ApplyDatabase(t, d)
	env.WaitReady(t, ns, name)
	claims := env.DataClaims(t, ns, name, 2)
	backup, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name+"-backup", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("backup PVC: %v", err)
	}

	t0 := time.Now()
	if _, err := env.Kubectl(t.Context(), nil, "delete", "database", name, "-n", ns, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	record("latency: kubectl delete database (wait)", time.Since(t0))
	env.WaitFor(t, d, "composed objects deleted", func(ctx context.Context) error {
		var left []string
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
	// The garbage collector has handled the Database's dependents once the
	// others are gone; it drops the dangling reference from the backup PVC.
	env.WaitFor(t, d, "backup PVC kept, the Database's reference dropped", func(ctx context.Context) error {
		pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, backup.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("backup PVC %s is gone after deleting the Database: %w", backup.Name, err)
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
			t.Errorf("data PVC %s is gone after deleting the Database: %v", n, err)
			continue
		}
		if pvc.UID != uid || pvc.DeletionTimestamp != nil {
			t.Errorf("data PVC %s was replaced or is being deleted", n)
		}
	}

	// A new Database of the same name adopts the backup PVC it left.
	again := cluster.NewDatabase(ns, name, spec())
	env.ApplyDatabase(t, again)
	env.WaitReady(t, ns, name)
	pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), backup.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("backup PVC after creating the Database again: %v", err)
	}
	if pvc.UID != backup.UID {
		t.Errorf("backup PVC %s was replaced: uid %s, want %s", backup.Name, pvc.UID, backup.UID)
	}
	if c := metav1.GetControllerOf(pvc); c == nil || c.Kind != "Database" || c.Name != name {
		t.Errorf("backup PVC %s is not controlled by the new Database: %v", backup.Name, pvc.OwnerReferences)
	}
}

// snapshot maps every object a Database composed, and its data PVCs, to
// their UIDs.
func snapshot(t *testing.T, d cluster.Database) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	for _, c := range cluster.ComposedObjects(d) {
		o, err := env.Object(t.Context(), c.Kind, d.GetNamespace(), c.Name)
		if err != nil {
			t.Fatal(err)
		}
		if o != nil {
			out[c.Kind+"/"+c.Name] = o.GetUID()
		}
	}
	l, err := env.Kube.CoreV1().PersistentVolumeClaims(d.GetNamespace()).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			out["PersistentVolumeClaim/"+p.Name] = p.UID
		}
	}
	keys := slices.Sorted(maps.Keys(out))
	t.Logf("objects: %v", keys)
	return out
}
