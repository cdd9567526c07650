//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/test/harness/cluster"
	"github.com/dbplane/dbplane/test/harness/servers"
)

// s3Composition is the Composition whose Input sends backups to the test's
// S3 server, encrypted.
const s3Composition = "databases-s3.database.example.com"

// TestBackupToBucketAndRestore backs a Database up to a bucket and
// restores a new Database from the bucket alone, on the control plane with
// real servers, for each engine: versitygw on loopback holds the bucket,
// and PostgreSQL 15 or MariaDB 10.11 (for MySQL 8.4) on loopback stands
// behind each Database's pod. The composed Jobs' pods, as
// Crossplane created them, run on this machine (cluster.RunPod: their
// command, environment from the API server's Secrets, volumes as
// directories), and their exit code is the pod's phase; the Job
// controller, Crossplane and the function do the rest. So it shows:
//   - a backup now (the annotation) writes an encrypted backup, its
//     manifest and checksum to the Database's prefix, and the Database's
//     status says Succeeded;
//   - the verify Job restores it from the bucket into a scratch server and
//     compares it with its manifest, and the Database says BackupVerified;
//   - deleting the Database leaves the bucket's objects and the backup
//     volume;
//   - a new Database restoring fromBackup the deleted one's name loads
//     every row into its new server, and has no client Service while the
//     restore runs.
//
// Not shown: the images (the commands run on this machine's PostgreSQL 15
// and MariaDB client tools and Debian's rclone 1.60.1), MySQL 8 itself, the
// kubelet, and a Job whose pods fail (the scripts' failures are
// test/integration's; the conditions they lead to the function's tests').
func TestBackupToBucketAndRestore(t *testing.T) {
	defer start(t)()
	ns := cluster.HostNamespace
	env.Namespace(t, ns)
	s3 := servers.StartS3(t, toolPath(t, "versitygw"))
	key := servers.RandomHex(t, 32)
	if err := env.Apply(t.Context(), `apiVersion: v1
kind: Secret
metadata:
  name: backup-s3
  namespace: `+ns+`
stringData:
  AWS_ACCESS_KEY_ID: `+s3.AccessKeyID+`
  AWS_SECRET_ACCESS_KEY: `+s3.SecretAccessKey+`
---
apiVersion: v1
kind: Secret
metadata:
  name: backup-key
  namespace: `+ns+`
stringData:
  key: `+key+`
`); err != nil {
		t.Fatal(err)
	}
	env.ApplyComposition(t, s3Composition, map[string]any{
		"sqlUsers": false,
		"backupStorage": map[string]any{"s3": map[string]any{
			"endpoint": s3.Endpoint, "bucket": servers.S3Bucket, "prefix": "clusters/e2e/",
			"credentialsSecretName": "backup-s3", "encryptionKeySecretName": "backup-key",
		}},
	})
	// One engine after the other: the verify scratch servers listen on fixed
	// loopback ports.
	for _, e := range []struct{ engine, version string }{{servers.PostgreSQL, "15"}, {servers.MySQL, "8.4"}} {
		t.Run(e.engine, func(t *testing.T) { backupToBucketAndRestore(t, s3, e.engine, e.version) })
	}
}

// backupToBucketAndRestore is TestBackupToBucketAndRestore for one engine.
func backupToBucketAndRestore(t *testing.T, s3 *servers.S3, engine, version string) {
	ns := cluster.HostNamespace
	spec := func(extra map[string]any) map[string]any {
		s := map[string]any{
			"type": engine, "version": version, "replicas": int64(1), "environment": "development",
			"storage":    map[string]any{"size": "5Gi"},
			"crossplane": map[string]any{"compositionRef": map[string]any{"name": s3Composition}},
		}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}

	// The source, with rows and a backup now.
	name := "orders-" + engine
	src := cluster.NewDatabase(ns, name, spec(map[string]any{"backup": map[string]any{
		"enabled": true, "schedule": "0 3 * * *", "verify": map[string]any{"enabled": true},
	}}))
	env.ApplyDatabase(t, src)
	primary := env.Serve(t, engine, ns, name)
	env.WaitReady(t, ns, name)
	fill := "CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL); INSERT INTO items SELECT i, md5(i::text) FROM generate_series(1, 20000) i"
	if engine == servers.MySQL {
		fill = "SET SESSION max_recursive_iterations = 100000; CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL); INSERT INTO items WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 20000) SELECT i, MD5(i) FROM s"
	}
	primary.Query(t, fill)
	want := rows(t, primary)

	token := "before-the-delete"
	src.SetAnnotations(map[string]string{fn.AnnotationBackupNow: token})
	env.ApplyDatabase(t, src)
	sum := sha256.Sum256([]byte(token))
	job := name + "-backup-now-" + hex.EncodeToString(sum[:3])
	if r := env.RunPod(t, env.WaitPod(t, ns, job)); r.ExitCode != 0 {
		t.Fatalf("the backup Job's pod exited %d", r.ExitCode)
	}
	env.WaitFor(t, src, "status.onDemandBackup Succeeded", func(ctx context.Context) error {
		_, err := onDemandSucceeded(ctx, ns, name)
		return err
	})
	prefix := "clusters/e2e/" + ns + "/" + name + "/"
	objects := s3.List(t, prefix)
	var backup string
	for _, o := range objects {
		if strings.HasSuffix(o, ".gz.bin") {
			backup = strings.TrimSuffix(o, ".bin")
		}
	}
	if diff := cmp.Diff([]string{backup + ".bin", backup + ".manifest.bin", backup + ".sha256.bin"}, objects); backup == "" || diff != "" {
		t.Fatalf("s3://%s/%s: want one encrypted backup, its manifest and checksum (-want, +got):\n%s", servers.S3Bucket, prefix, diff)
	}
	// Verified from the bucket, as the weekly verify Job does; the
	// Database learns it at Crossplane's next poll (a minute).
	if _, err := env.Kubectl(t.Context(), nil, "create", "job", name+"-verify-now", "--from=cronjob/"+name+"-verify", "-n", ns); err != nil {
		t.Fatal(err)
	}
	verified := time.Now()
	if r := env.RunPod(t, env.WaitPod(t, ns, name+"-verify-now")); r.ExitCode != 0 {
		t.Fatalf("the verify Job's pod exited %d", r.ExitCode)
	}
	env.WaitFor(t, src, "BackupVerified and status.lastVerifiedBackup", func(ctx context.Context) error {
		u, err := env.GetDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		if u == nil {
			return errors.New("the Database is gone")
		}
		if s, r, m := cluster.Condition(u, fn.ConditionBackupVerified); s != "True" || r != fn.ReasonVerified {
			return fmt.Errorf("BackupVerified %s/%s: %s", s, r, m)
		}
		if at, _, _ := unstructured.NestedString(u.Object, "status", "lastVerifiedBackup"); at == "" {
			return errors.New("no status.lastVerifiedBackup")
		}
		if _, ok, _ := unstructured.NestedInt64(u.Object, "status", "restoreSeconds"); !ok {
			return errors.New("no status.restoreSeconds")
		}
		return nil
	})
	record("latency: verify pod ended -> Database BackupVerified ("+engine+")", time.Since(verified))
	vol := env.ClaimDir(t, ns, name+"-backup")
	onVolume, err := filepath.Glob(filepath.Join(vol, "*.gz"))
	if err != nil || len(onVolume) != 1 || filepath.Base(onVolume[0]) != backup {
		t.Errorf("the backup volume holds %v, want the uploaded backup %s too", onVolume, backup)
	}

	// The source is gone: the Database deleted, its server stopped.
	if _, err := env.Kubectl(t.Context(), nil, "delete", "database", name, "-n", ns, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	primary.Stop()
	if diff := cmp.Diff(objects, s3.List(t, prefix)); diff != "" {
		t.Errorf("deleting the Database changed its bucket prefix (-before, +after):\n%s", diff)
	}
	if pvc, err := env.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), name+"-backup", metav1.GetOptions{}); err != nil || pvc.DeletionTimestamp != nil {
		t.Errorf("the backup volume claim of the deleted Database: %v, err %v", pvc.GetDeletionTimestamp(), err)
	}

	// A new Database from the bucket alone.
	restored := name + "-restored"
	d := cluster.NewDatabase(ns, restored, spec(map[string]any{"restore": map[string]any{"fromBackup": map[string]any{"database": name}}}))
	t0 := time.Now()
	env.ApplyDatabase(t, d)
	dst := env.Serve(t, engine, ns, restored)
	pod := env.WaitPod(t, ns, restored+"-restore")
	if s, err := env.Object(t.Context(), "Service", ns, restored); err != nil || s != nil {
		t.Errorf("the client Service exists while the restore runs (err %v)", err)
	}
	if slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.PersistentVolumeClaim != nil }) {
		t.Errorf("the restore pod mounts a claim: the source's volume must not be needed")
	}
	if r := env.RunPod(t, pod); r.ExitCode != 0 {
		t.Fatalf("the restore Job's pod exited %d", r.ExitCode)
	}
	got := env.WaitReady(t, ns, restored)
	record("latency: apply -> Database restored from the bucket Ready ("+engine+")", time.Since(t0))
	if s, r, _ := cluster.Condition(got.Unstructured, "Restored"); s != "True" || r != "RestoreSucceeded" {
		t.Errorf("condition Restored is %s/%s, want True/RestoreSucceeded", s, r)
	}
	if diff := cmp.Diff(want, rows(t, dst)); diff != "" {
		t.Errorf("the Database restored from the bucket holds every row the deleted one had (-want, +got):\n%s", diff)
	}
}

// rows is table items' row count and a checksum of every row, in order.
func rows(t *testing.T, s *servers.Server) string {
	t.Helper()
	if s.Engine == servers.MySQL {
		return s.Query(t, "SET SESSION group_concat_max_len = 67108864; SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(id, ':', note ORDER BY id SEPARATOR ','))) FROM items")
	}
	return s.Query(t, "SELECT count(*) || ' ' || md5(string_agg(id || ':' || note, ',' ORDER BY id)) FROM items")
}

// toolPath builds (once, cached) and returns a pinned tool.
func toolPath(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), filepath.Join("..", "tools", "build.sh"), name).Output() //nolint:gosec // Our build script and a tool name.
	if err != nil {
		t.Fatalf("cannot build %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
