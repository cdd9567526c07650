package integration

import (
	"bytes"
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbplane/dbplane/fn"
)

// verifyJob is the composed verify CronJob's container: no password of the
// Database (the scratch server trusts loopback), only literals.
func verifyJob(t *testing.T, engine string) job {
	t.Helper()
	cs := fn.VerifyCronJob(params(t, engine, "")).Spec.JobTemplate.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("verify CronJob of %s: want 1 container, got %d", engine, len(cs))
	}
	j := job{Command: cs[0].Command, Env: map[string]string{}}
	for _, e := range cs[0].Env {
		if e.ValueFrom != nil {
			t.Fatalf("verify CronJob of %s: variable %s comes from %v: the verify pod needs no Secret of the Database", engine, e.Name, e.ValueFrom)
		}
		j.Env[e.Name] = e.Value
	}
	return j
}

// sharedDir is a directory the server's service user can use: t.TempDir's
// parent is private to root.
func sharedDir(t *testing.T, cred *syscall.Credential) string {
	t.Helper()
	d, err := os.MkdirTemp("", "dbplane-verify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil { //nolint:gosec // The service user must reach it.
		t.Fatal(err)
	}
	if err := chownAll(d, cred); err != nil {
		t.Fatal(err)
	}
	return d
}

// runVerify runs the composed verify script as the server's service user
// (the image's; initdb and mariadbd refuse root) with the backups in dir:
// only BACKUP_DIR and SCRATCH differ from the cluster, and PATH has the
// server binaries, as the image's has.
func runVerify(t *testing.T, engine string, j job, dir string, extra map[string]string) run {
	t.Helper()
	name := "postgres"
	if engine == mysql {
		name = "mysql"
	}
	cred, err := serviceUser(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := chownAll(dir, cred); err != nil {
		t.Fatal(err)
	}
	env := maps.Clone(j.Env)
	env["BACKUP_DIR"] = dir
	env["SCRATCH"] = sharedDir(t, cred)
	maps.Copy(env, extra)
	ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, j.Command[0], j.Command[1:]...) //nolint:gosec // The composed command.
	cmd.Env = []string{"PATH=" + filepath.Dir(postgresBin()+"/x") + ":" + os.Getenv("PATH") + ":/usr/sbin", "HOME=" + sharedDir(t, cred)}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	begin := time.Now()
	err = cmd.Run()
	r := run{Stdout: out.String(), Stderr: stderr.String(), Elapsed: time.Since(begin), Err: err}
	t.Logf("%s verify: %v in %s\nstdout:\n%s\nstderr (its end):\n%s", engine, err, r.Elapsed.Round(time.Millisecond), r.Stdout, tailOf(r.Stderr, 2000))
	return r
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok { //nolint:errorlint // exec returns it unwrapped.
		return ee.ExitCode()
	}
	return -1
}

// TestVerifyBackup runs the composed backup script against a real server,
// then the composed verify script, which restores the newest backup into a
// scratch server of its own (initdb and postgres; mariadb-install-db and
// mariadbd) and compares it with the manifest written at dump time: a
// good backup verifies; a truncated one (a new checksum, so that only the
// load can tell) does not restore (exit 2); one whose manifest records
// other counts differs (exit 3), naming the table.
func TestVerifyBackup(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			requireBinaries(t, "pg_ctl", "mariadb-install-db")
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			dir := t.TempDir()
			if b := backupJob(t, engine).Run(t, src, dir, nil); b.Err != nil {
				t.Fatalf("backup of %s: %v", engine, b.Err)
			}
			gz := backups(t, dir)
			if len(gz) != 1 {
				t.Fatalf("want one backup, got %v", files(t, dir))
			}
			manifest, err := os.ReadFile(filepath.Join(dir, gz[0]+".manifest")) //nolint:gosec // The test's backup.
			if err != nil {
				t.Fatalf("the backup has no manifest: %v", err)
			}
			schema := "'public'"
			if engine == mysql {
				schema = "'app'"
			}
			base := strings.TrimSpace(src.Query(t, "SELECT count(*) FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema = "+schema))
			rows := strings.TrimSpace(src.Query(t, map[string]string{postgresql: `SELECT count(*) FROM public.users`, mysql: "SELECT count(*) FROM app.users"}[engine]))
			if n := len(strings.Split(strings.TrimSpace(string(manifest)), "\n")); strconv.Itoa(n) != base || !strings.Contains(strings.ReplaceAll(string(manifest), "`", ""), "users "+rows+"\n") {
				t.Errorf("%s: the manifest must list the %s tables and the %s rows of users, got:\n%s", engine, base, rows, manifest)
			}
			vj := verifyJob(t, engine)

			good := sharedDir(t, nil)
			for _, f := range files(t, dir) {
				copyFile(t, filepath.Join(dir, f), filepath.Join(good, f))
			}
			r := runVerify(t, engine, vj, good, nil)
			if r.Err != nil || !strings.Contains(r.Stdout, "verified "+gz[0]) {
				t.Fatalf("%s: a good backup must verify, got %v", engine, r.Err)
			}

			// Truncated: a dump cut in the middle, compressed and
			// checksummed again, so that the checksum passes and only the
			// load can tell.
			cut := sharedDir(t, nil)
			for _, f := range files(t, dir) {
				copyFile(t, filepath.Join(dir, f), filepath.Join(cut, f))
			}
			sql := gunzip(t, filepath.Join(dir, gz[0]))
			regzip(t, filepath.Join(cut, gz[0]), sql[:len(sql)/2])
			resum(t, cut, gz[0])
			r = runVerify(t, engine, vj, cut, nil)
			if code := exitCode(r.Err); code != 2 || !strings.Contains(r.Stderr, "does not restore") {
				t.Errorf("%s: a truncated backup must fail to restore (exit 2), got exit %d, stderr:\n%s", engine, code, r.Stderr)
			}

			// A manifest whose counts differ from what restores.
			differs := sharedDir(t, nil)
			for _, f := range files(t, dir) {
				copyFile(t, filepath.Join(dir, f), filepath.Join(differs, f))
			}
			lines := strings.Split(strings.TrimSpace(string(manifest)), "\n")
			table, _, _ := strings.Cut(lines[0], " ")
			lines[0] = table + " 999999"
			write(t, filepath.Join(differs, gz[0]+".manifest"), strings.Join(lines, "\n")+"\n")
			r = runVerify(t, engine, vj, differs, nil)
			if code := exitCode(r.Err); code != 3 || !strings.Contains(r.Stderr, table+" 999999") || !strings.Contains(r.Stderr, "differ from those recorded at dump time") {
				t.Errorf("%s: a manifest with other counts must fail the check (exit 3) and show the table, got exit %d, stderr:\n%s", engine, code, r.Stderr)
			}
		})
	}
}

// TestVerifyBackupFromBucket verifies an encrypted backup from the bucket
// alone: the verify pod's volume is empty, the backup and its manifest are
// downloaded and decrypted with the key Secret, then restored and compared.
func TestVerifyBackupFromBucket(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			requireBinaries(t, "pg_ctl", "mariadb-install-db")
			s := startS3(t)
			s.key = randomHex(t, 32)
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			bj := s3BackupJob(t, engine, s)
			if b := bj.Run(t, src, t.TempDir(), s.extra(t, bj)); b.Err != nil {
				t.Fatalf("backup of %s to S3: %v", engine, b.Err)
			}
			ps := fn.VerifyCronJob(paramsWith(t, engine, "", s.input())).Spec.JobTemplate.Spec.Template.Spec
			if len(ps.Containers) != 1 || len(ps.InitContainers) != 1 {
				t.Fatalf("verify CronJob of %s with object storage: want one container and rclone's init container", engine)
			}
			vj := job{Command: ps.Containers[0].Command, Env: map[string]string{}, S3Keys: map[string]string{}}
			for _, e := range ps.Containers[0].Env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && (e.ValueFrom.SecretKeyRef.Name == s3CredentialsSecret || e.ValueFrom.SecretKeyRef.Name == s3KeySecret):
					vj.S3Keys[e.Name] = e.ValueFrom.SecretKeyRef.Key
				case e.ValueFrom != nil:
					t.Fatalf("verify pod: %s comes from %v: only the platform's bucket and key Secrets", e.Name, e.ValueFrom)
				default:
					vj.Env[e.Name] = e.Value
				}
			}
			r := runVerify(t, engine, vj, sharedDir(t, nil), s.extra(t, vj))
			if r.Err != nil || !strings.Contains(r.Stdout, "verified app-") || !strings.Contains(r.Stdout, "downloaded app-") {
				t.Fatalf("%s: an encrypted backup in the bucket must verify from the bucket alone, got %v", engine, r.Err)
			}
		})
	}
}

func gunzip(t *testing.T, name string) []byte {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "gzip", "-dc", name).Output() //nolint:gosec // A backup the test made.
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// regzip writes sql gzip-compressed to name.
func regzip(t *testing.T, name string, sql []byte) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "gzip", "-c")
	cmd.Stdin = bytes.NewReader(sql)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// resum writes a backup's .sha256 for what it holds now.
func resum(t *testing.T, dir, name string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "sha256sum", name) //nolint:gosec // A backup the test made.
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, name+".sha256"), string(out))
}

// tailOf is the end of s, at most n bytes: a failed load echoes whole
// statements.
func tailOf(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
