package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	inputv1alpha1 "github.com/dbplane/dbplane/apis/input/v1alpha1"
	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/test/harness/servers"
)

const (
	// s3CredentialsSecret is the platform's S3 credentials Secret the
	// Input names.
	s3CredentialsSecret = "backup-s3"
	// s3KeySecret is the platform's encryption key Secret.
	s3KeySecret = "backup-key"
	s3Bucket    = servers.S3Bucket
	// s3Prefix is where the Database orders of team-a keeps its backups:
	// the Input's prefix, then <namespace>/<name>/.
	s3Prefix = "clusters/test/team-a/orders/"
)

// An s3Server is a real S3-compatible server (servers.S3) with what the
// platform's Secrets hold for it.
type s3Server struct {
	*servers.S3
	// key is the encryption key Secret's, when the Input names it.
	key string
}

// startS3 starts versitygw, built from its pinned module.
func startS3(t testing.TB) *s3Server {
	t.Helper()
	requireBinaries(t, "rclone")
	return &s3Server{S3: servers.StartS3(t, tool(t, "versitygw"))}
}

func randomHex(t testing.TB, n int) string { return servers.RandomHex(t, n) }

// input is the function Input a platform team would write for this server.
func (s *s3Server) input() fn.Input {
	in := fn.Input{SQLUsers: true, S3: &inputv1alpha1.S3{
		Endpoint: s.Endpoint, Bucket: s3Bucket, Prefix: "clusters/test/", Region: "us-east-1",
		CredentialsSecretName: s3CredentialsSecret,
	}}
	if s.key != "" {
		in.S3.EncryptionKeySecretName = s3KeySecret
	}
	return in
}

// keys is the credentials and encryption key Secrets' data.
func (s *s3Server) keys() map[string]string {
	return map[string]string{"AWS_ACCESS_KEY_ID": s.AccessKeyID, "AWS_SECRET_ACCESS_KEY": s.SecretAccessKey, "key": s.key}
}

// extra is what the cluster would set that the test must: the variables
// from the credentials Secret, and Debian's rclone in place of the one the
// init container copies from the rclone image (the same version).
func (s *s3Server) extra(t testing.TB, j job) map[string]string {
	t.Helper()
	rclone, err := exec.LookPath("rclone")
	if err != nil {
		t.Fatal(err)
	}
	if j.Env["RCLONE"] == "" {
		t.Fatalf("composed job does not say where rclone is: %v", j.Env)
	}
	out := map[string]string{"RCLONE": rclone}
	want := 2
	if s.key != "" {
		want = 3
	}
	if len(j.S3Keys) != want {
		t.Fatalf("composed job: want the access key and secret from Secret %s (and with encryption the key from %s), got %v", s3CredentialsSecret, s3KeySecret, j.S3Keys)
	}
	for v, key := range j.S3Keys {
		val, ok := s.keys()[key]
		if !ok {
			t.Fatalf("composed job reads key %q of Secret %s, which has no such key", key, s3CredentialsSecret)
		}
		out[v] = val
	}
	return out
}

// rclone runs Debian's rclone configured as the composed job configures it.
func (s *s3Server) rclone(t testing.TB, j job, stdin []byte, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "rclone", args...) //nolint:gosec // The test's own commands.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range j.Env {
		if strings.HasPrefix(k, "RCLONE_") {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range s.extra(t, j) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = bytes.NewReader(stdin)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("rclone %v: %w: %s", args, err, stderr.String())
	}
	return out.String(), nil
}

// list is every object under the Database's prefix, sorted.
func (s *s3Server) list(t testing.TB, j job) []string {
	t.Helper()
	out, err := s.rclone(t, j, nil, "lsf", "--files-only", "-R", "dbplane:"+s3Bucket+"/"+s3Prefix)
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// cat is an object's content.
func (s *s3Server) cat(t testing.TB, j job, name string) []byte {
	t.Helper()
	out, err := s.rclone(t, j, nil, "cat", "dbplane:"+s3Bucket+"/"+s3Prefix+name)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// s3BackupJob is the composed backup CronJob's container with the Input's
// bucket, checked to get rclone from its init container.
func s3BackupJob(t testing.TB, engine string, s *s3Server) job {
	t.Helper()
	ps := fn.BackupCronJob(paramsWith(t, engine, "", s.input())).Spec.JobTemplate.Spec.Template.Spec
	if len(ps.Containers) != 1 || len(ps.InitContainers) != 1 || !strings.Contains(ps.InitContainers[0].Image, "rclone:1.60.1") {
		t.Fatalf("backup CronJob of %s with object storage: want one container and rclone 1.60.1's init container, got %d and %v", engine, len(ps.Containers), ps.InitContainers)
	}
	return fromContainer(t, ps.Containers[0])
}

// s3RestoreJob is the composed restore Job's container with the Input's
// bucket, restoring backup of the Database orders.
func s3RestoreJob(t testing.TB, engine, backup string, s *s3Server) job {
	t.Helper()
	ps := fn.RestoreJob(paramsWith(t, engine, backup, s.input())).Spec.Template.Spec
	if len(ps.Containers) != 1 || len(ps.InitContainers) != 1 {
		t.Fatalf("restore Job of %s with object storage: want one container and rclone's init container", engine)
	}
	return fromContainer(t, ps.Containers[0])
}

// tables counts the app database's tables.
func tables(t testing.TB, s *server) int {
	t.Helper()
	schema := "'public'"
	if s.Engine == mysql {
		schema = "'app'"
	}
	n, err := strconv.Atoi(strings.TrimSpace(s.Query(t, "SELECT count(*) FROM information_schema.tables WHERE table_schema = "+schema)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestObjectStorage runs the composed backup and restore scripts against
// real servers and a real S3-compatible server: a backup is uploaded with
// its checksum next to the volume's copy, the bucket pruned by retention,
// and a restore downloads and loads it, with every row as it was. Then the
// faults: the S3 server stopped mid-upload leaves no listed backup and the
// previous one restorable, and a corrupted object is refused by its
// checksum, loading nothing.
func TestObjectStorage(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			s := startS3(t)
			src := start(t, engine)
			d := newDataset(engine, large)
			src.Load(t, bytes.NewReader(d.SQL))
			want := fingerprint(t, src)
			bj := s3BackupJob(t, engine, s)
			if got := bj.Env["S3_PREFIX"]; got != s3Prefix {
				t.Fatalf("composed backup job: S3_PREFIX %q, want %q", got, s3Prefix)
			}

			// Backups older than the 7 days' retention, one of them only
			// the data an earlier run cut off left without its checksum, and
			// the temporary object of a run killed outright.
			old := t.TempDir()
			long := time.Now().Add(-30 * 24 * time.Hour)
			for _, n := range []string{"app-20200101T000000Z.sql.gz", "app-20200101T000000Z.sql.gz.sha256", "app-20200102T000000Z.sql.gz", ".app-20200103T000000Z.sql.gz.partial"} {
				if err := os.WriteFile(filepath.Join(old, n), []byte("old "+n), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(filepath.Join(old, n), long, long); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.rclone(t, bj, nil, "copy", old, "dbplane:"+s3Bucket+"/"+s3Prefix); err != nil {
				t.Fatal(err)
			}
			if got := len(s.list(t, bj)); got != 4 {
				t.Fatalf("seeding old backups: want 4 objects, got %d", got)
			}

			dir := t.TempDir()
			b := bj.Run(t, src, dir, s.extra(t, bj))
			if b.Err != nil {
				t.Fatalf("backup of %s to S3: %v", engine, b.Err)
			}
			gz := backups(t, dir)
			if len(gz) != 1 {
				t.Fatalf("backup of %s: want one backup on the volume, got %v", engine, files(t, dir))
			}
			first := gz[0]
			if diff := cmp.Diff([]string{first, first + ".manifest", first + ".sha256"}, s.list(t, bj)); diff != "" {
				t.Errorf("%s: the bucket holds the new backup and its checksum, the old ones pruned: -want, +got:\n%s", engine, diff)
			}
			local, err := os.ReadFile(filepath.Join(dir, first)) //nolint:gosec // The test's backup.
			if err != nil {
				t.Fatal(err)
			}
			uploaded := s.cat(t, bj, first)
			if !bytes.Equal(local, uploaded) {
				t.Errorf("%s: the uploaded backup (%d bytes) differs from the volume's (%d bytes)", engine, len(uploaded), len(local))
			}
			sum := sha256.Sum256(uploaded)
			if got, want := strings.Fields(string(s.cat(t, bj, first+".sha256"))), []string{hex.EncodeToString(sum[:]), first}; !cmp.Equal(got, want) {
				t.Errorf("%s: the .sha256 object is %v, want %v", engine, got, want)
			}

			// Restore from the bucket alone: the Job's volume is empty.
			dst := start(t, engine)
			rj := s3RestoreJob(t, engine, "latest", s)
			empty := t.TempDir()
			extra := s.extra(t, rj)
			extra["RESTORE_SCRATCH"] = empty
			r := rj.Run(t, dst, empty, extra)
			if r.Err != nil {
				t.Fatalf("restore of %s from S3: %v", engine, r.Err)
			}
			if diff := cmp.Diff(want, fingerprint(t, dst)); diff != "" {
				t.Errorf("%s: a backup restored from the bucket holds what was backed up\nfingerprint(): -want, +got:\n%s", engine, diff)
			}
			mb := float64(len(uploaded)) / (1 << 20)
			t.Logf("%s numbers: backup to S3 %.2fs for %.1f MiB compressed (%.1f MiB/s, dump included); restore from S3 %.2fs (%.1f MiB/s, download, verify and load)",
				engine, b.Elapsed.Seconds(), mb, mb/b.Elapsed.Seconds(), r.Elapsed.Seconds(), mb/r.Elapsed.Seconds())

			// The S3 server stops mid-upload: the run fails, no new backup is
			// listed, and the previous one is intact. The upload is throttled
			// (test-only rclone settings) so that it is under way when the
			// server stops, and retried at a low level once, not ten times
			// with backoff, so that the run gives up in seconds.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			throttled := s.extra(t, bj)
			throttled["RCLONE_BWLIMIT"] = "512k"
			throttled["RCLONE_LOW_LEVEL_RETRIES"] = "1"
			res := make(chan run, 1)
			go func() { res <- bj.Run(t, src, dir, throttled) }()
			published := false
			for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline) && !published; time.Sleep(20 * time.Millisecond) {
				published = len(backups(t, dir)) == 2
			}
			if !published {
				t.Fatalf("%s: the second backup never reached the volume", engine)
			}
			time.Sleep(500 * time.Millisecond) // Into the upload, which takes seconds.
			s.Stop()
			failed := <-res
			if failed.Err == nil {
				t.Errorf("%s: a backup whose upload was cut off must fail, got success", engine)
			}
			s.Start(t)
			if diff := cmp.Diff([]string{first, first + ".manifest", first + ".sha256"}, s.list(t, bj)); diff != "" {
				t.Errorf("%s: an upload cut off lists nothing new and keeps the old backup: -want, +got:\n%s", engine, diff)
			}
			if got := s.cat(t, bj, first); !bytes.Equal(got, uploaded) {
				t.Errorf("%s: the previous backup changed in the bucket", engine)
			}

			// A corrupted object: its checksum refuses it and nothing loads.
			bad := bytes.Clone(uploaded)
			bad[len(bad)/2] ^= 0xff
			if _, err := s.rclone(t, bj, bad, "rcat", "dbplane:"+s3Bucket+"/"+s3Prefix+first); err != nil {
				t.Fatal(err)
			}
			dst2 := start(t, engine)
			scratch := t.TempDir()
			extra["RESTORE_SCRATCH"] = scratch
			refused := rj.Run(t, dst2, t.TempDir(), extra)
			if refused.Err == nil || !strings.Contains(refused.Stderr, "checksum mismatch") {
				t.Errorf("%s: a corrupted backup must be refused by its checksum, got exit %v, stderr:\n%s", engine, refused.Err, refused.Stderr)
			}
			if n := tables(t, dst2); n != 0 {
				t.Errorf("%s: a refused backup loads nothing, got %d tables", engine, n)
			}
		})
	}
}

// TestObjectStorageDumpFails has the dump fail mid-stream while the
// upload streams with it, in the clear and encrypted: the run fails, and
// the bucket and the volume are as before it: no backup listed, nothing
// under a backup's name, no temporary object left, the previous backup
// unchanged. Then the upload alone fails mid-stream: the dump goes on, and
// the backup is uploaded from the volume, whole.
func TestObjectStorageDumpFails(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, large).SQL))
			for _, encrypted := range []bool{false, true} {
				t.Run(map[bool]string{false: "Plain", true: "Encrypted"}[encrypted], func(t *testing.T) {
					s := startS3(t)
					if encrypted {
						s.key = randomHex(t, 32)
					}
					bj := s3BackupJob(t, engine, s)
					dir := t.TempDir()
					if b := bj.Run(t, src, dir, s.extra(t, bj)); b.Err != nil {
						t.Fatalf("backup of %s to S3: %v", engine, b.Err)
					}
					volume, bucket := files(t, dir), s.list(t, bj)
					objects := map[string][]byte{}
					for _, o := range bucket {
						objects[o] = s.cat(t, bj, o)
					}

					// The dump tool writes 4 MB of its dump, then fails: the
					// upload is under way (its first part is more than
					// rclone's 100 KiB streaming cutoff).
					time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
					extra := s.extra(t, bj)
					extra["PATH"] = failingDump(t, engine, 4<<20) + ":" + os.Getenv("PATH")
					r := bj.Run(t, src, dir, extra)
					if r.Err == nil {
						t.Fatalf("%s: a backup whose dump fails mid-stream must fail, got success", engine)
					}
					if diff := cmp.Diff(volume, files(t, dir)); diff != "" {
						t.Errorf("%s: a dump failed mid-stream leaves the volume as it was: -want, +got:\n%s", engine, diff)
					}
					if diff := cmp.Diff(bucket, s.list(t, bj)); diff != "" {
						t.Errorf("%s: a dump failed mid-stream leaves no object in the bucket, under a backup's name or a temporary one: -want, +got:\n%s", engine, diff)
					}
					for o, want := range objects {
						if !bytes.Equal(s.cat(t, bj, o), want) {
							t.Errorf("%s: the previous backup's %s changed in the bucket", engine, o)
						}
					}

					// The upload fails mid-stream (rcat reads 1 MB, then
					// exits): the backup is uploaded from the volume.
					time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
					extra = s.extra(t, bj)
					extra["RCLONE"] = failingRcat(t, extra["RCLONE"], 1<<20)
					if r := bj.Run(t, src, dir, extra); r.Err != nil || !strings.Contains(r.Stdout, "uploading app-") {
						t.Fatalf("%s: a backup whose streamed upload fails must upload from the volume, got exit %v", engine, r.Err)
					}
					gz := backups(t, dir)
					if len(gz) != 2 {
						t.Fatalf("%s: want two backups on the volume, got %v", engine, files(t, dir))
					}
					if !encrypted {
						local, err := os.ReadFile(filepath.Join(dir, gz[1])) //nolint:gosec // The test's backup.
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(s.cat(t, bj, gz[1]), local) {
							t.Errorf("%s: the backup uploaded from the volume differs from the volume's", engine)
						}
					}
					suffix := map[bool]string{false: "", true: ".bin"}[encrypted]
					want := append(slices.Clone(bucket), gz[1]+suffix, gz[1]+".manifest"+suffix, gz[1]+".sha256"+suffix)
					slices.Sort(want)
					if diff := cmp.Diff(want, s.list(t, bj)); diff != "" {
						t.Errorf("%s: the bucket holds both backups, no temporary object: -want, +got:\n%s", engine, diff)
					}
				})
			}
		})
	}
}

// failingDump is a directory with the engine's dump tool in it: the real
// one's first n bytes, then exit 1.
func failingDump(t *testing.T, engine string, n int) string {
	t.Helper()
	tool := map[string]string{postgresql: "pg_dump", mysql: "mysqldump"}[engine]
	bin, err := exec.LookPath(tool)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/bash\n%q \"$@\" | head -c %d\necho 'dump: failing on purpose' >&2\nexit 1\n", bin, n)
	if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o700); err != nil { //nolint:gosec // An executable the test runs.
		t.Fatal(err)
	}
	return dir
}

// failingRcat is rclone, except that rclone rcat reads n bytes of its
// input and fails.
func failingRcat(t *testing.T, rclone string, n int) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "rclone")
	script := fmt.Sprintf("#!/bin/bash\nif [[ $1 == rcat ]]; then head -c %d >/dev/null; echo 'rcat: failing on purpose' >&2; exit 1; fi\nexec %q \"$@\"\n", n, rclone)
	if err := os.WriteFile(name, []byte(script), 0o700); err != nil { //nolint:gosec // An executable the test runs.
		t.Fatal(err)
	}
	return name
}

// TestObjectStorageEncrypted backs up with the Input's encryption key:
// what reaches the bucket is rclone crypt's ciphertext, not the gzip dump
// nor its checksum; a restore with the key loads every row, one with
// another key is refused, naming the key, and loads nothing.
func TestObjectStorageEncrypted(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			s := startS3(t)
			s.key = randomHex(t, 32)
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			want := fingerprint(t, src)
			bj := s3BackupJob(t, engine, s)
			if bj.Env["RCLONE_CONFIG_DBPLANECRYPT_TYPE"] != "crypt" || bj.S3Keys["BACKUP_KEY"] != "key" {
				t.Fatalf("composed backup job: want the crypt remote and BACKUP_KEY from Secret %s, got %v and %v", s3KeySecret, bj.Env, bj.S3Keys)
			}
			dir := t.TempDir()
			if b := bj.Run(t, src, dir, s.extra(t, bj)); b.Err != nil {
				t.Fatalf("encrypted backup of %s: %v", engine, b.Err)
			}
			gz := backups(t, dir)
			if len(gz) != 1 {
				t.Fatalf("backup of %s: want one backup on the volume, got %v", engine, files(t, dir))
			}
			// Through the plain remote: the ciphertext objects.
			if diff := cmp.Diff([]string{gz[0] + ".bin", gz[0] + ".manifest.bin", gz[0] + ".sha256.bin"}, s.list(t, bj)); diff != "" {
				t.Errorf("%s: the bucket holds the encrypted backup and checksum: -want, +got:\n%s", engine, diff)
			}
			plain, err := os.ReadFile(filepath.Join(dir, gz[0])) //nolint:gosec // The test's backup.
			if err != nil {
				t.Fatal(err)
			}
			cipher := s.cat(t, bj, gz[0]+".bin")
			if bytes.HasPrefix(cipher, []byte{0x1f, 0x8b}) || bytes.Contains(cipher, plain[:min(len(plain), 64)]) || len(cipher) <= len(plain) {
				t.Errorf("%s: the object in the bucket (%d bytes) is not ciphertext of the %d byte backup", engine, len(cipher), len(plain))
			}
			sum := sha256.Sum256(plain)
			if bytes.Contains(s.cat(t, bj, gz[0]+".sha256.bin"), []byte(hex.EncodeToString(sum[:]))) {
				t.Errorf("%s: the checksum object holds the checksum in the clear", engine)
			}

			rj := s3RestoreJob(t, engine, "latest", s)
			extra := s.extra(t, rj)
			extra["RESTORE_SCRATCH"] = t.TempDir()
			dst := start(t, engine)
			if r := rj.Run(t, dst, t.TempDir(), extra); r.Err != nil {
				t.Fatalf("restore of %s with the key: %v", engine, r.Err)
			}
			if diff := cmp.Diff(want, fingerprint(t, dst)); diff != "" {
				t.Errorf("%s: an encrypted backup restored with its key holds what was backed up\nfingerprint(): -want, +got:\n%s", engine, diff)
			}

			extra["BACKUP_KEY"] = randomHex(t, 32)
			extra["RESTORE_SCRATCH"] = t.TempDir()
			other := start(t, engine)
			r := rj.Run(t, other, t.TempDir(), extra)
			if r.Err == nil || !strings.Contains(r.Stderr, "BACKUP_KEY is not the key it was encrypted with") {
				t.Errorf("%s: a restore with another key must fail naming the key, got exit %v, stderr:\n%s", engine, r.Err, r.Stderr)
			}
			if n := tables(t, other); n != 0 {
				t.Errorf("%s: a restore with another key loads nothing, got %d tables", engine, n)
			}
		})
	}
}

// TestRestoreFromGoneSource restores from the bucket alone: the Database
// orders backs up to the bucket, then is gone (its server's app database
// dropped, its backup volume emptied: nothing of it is left in the cluster),
// and a new Database orders-restored, whose spec.restore.fromBackup names
// orders, loads every row into a new server from orders' prefix.
func TestRestoreFromGoneSource(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			s := startS3(t)
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			want := fingerprint(t, src)
			bj := s3BackupJob(t, engine, s)
			vol := t.TempDir()
			if b := bj.Run(t, src, vol, s.extra(t, bj)); b.Err != nil {
				t.Fatalf("backup of %s to S3: %v", engine, b.Err)
			}

			// The source is gone: its data and its backup volume.
			drop := "DROP SCHEMA public CASCADE; CREATE SCHEMA public"
			if engine == mysql {
				drop = "DROP DATABASE app; CREATE DATABASE app"
			}
			src.Query(t, drop)
			if n := tables(t, src); n != 0 {
				t.Fatalf("%s: the source still has %d tables after %q", engine, n, drop)
			}
			for _, f := range files(t, vol) {
				remove(t, filepath.Join(vol, f))
			}

			doc := `apiVersion: database.example.com/v1
kind: Database
metadata:
  name: orders-restored
  namespace: team-a
spec:
  type: ` + engine + `
  version: "` + versions[engine] + `"
  storage:
    size: 5Gi
  restore:
    fromBackup:
      database: orders
`
			ps := fn.RestoreJob(resolve(t, doc, s.input())).Spec.Template.Spec
			if len(ps.Containers) != 1 || len(ps.InitContainers) != 1 {
				t.Fatalf("restore Job of %s from the bucket: want one container and rclone's init container", engine)
			}
			if v := ps.Volumes[0]; v.PersistentVolumeClaim != nil {
				t.Fatalf("restore Job of %s from the bucket mounts claim %s: the source's volume is gone", engine, v.PersistentVolumeClaim.ClaimName)
			}
			rj := fromContainer(t, ps.Containers[0])
			if got := rj.Env["S3_PREFIX"]; got != s3Prefix {
				t.Fatalf("restore Job of orders-restored: S3_PREFIX %q, want orders' %q", got, s3Prefix)
			}
			dst := start(t, engine)
			scratch := t.TempDir()
			extra := s.extra(t, rj)
			extra["RESTORE_SCRATCH"] = scratch
			if r := rj.Run(t, dst, scratch, extra); r.Err != nil {
				t.Fatalf("restore of %s from the bucket alone: %v", engine, r.Err)
			}
			if diff := cmp.Diff(want, fingerprint(t, dst)); diff != "" {
				t.Errorf("%s: a Database restored from a gone source's bucket prefix holds every row it had\nfingerprint(): -want, +got:\n%s", engine, diff)
			}
		})
	}
}
