package integration

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/dbplane/dbplane/fn"
)

// TestBackupConcurrent starts two runs of the composed backup script on one
// backup volume in the same second, as the CronJob's and an on-demand Job
// would: one waits for the other, saying so, and both leave a complete
// backup of its own (its checksum good, its name distinct) that restores
// every row; nothing else is left on the volume. Two such runs with the
// bucket leave both backups there too. A restore waits while a backup run
// holds the lock.
func TestBackupConcurrent(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			want := fingerprint(t, src)
			j := backupJob(t, engine)
			dir := t.TempDir()

			rs := together(func() run { return j.Run(t, src, dir, nil) })
			waited := 0
			for i, r := range rs {
				if r.Err != nil {
					t.Fatalf("%s: run %d of two started together: %v\nstderr:\n%s", engine, i, r.Err, r.Stderr)
				}
				if strings.Contains(r.Stdout, "backup: waiting for "+filepath.Join(dir, ".lock")+", held by ") && strings.Contains(r.Stdout, "backup: took ") {
					waited++
				}
			}
			if waited != 1 {
				t.Errorf("%s: of two runs started together, one must wait for the other and say so; %d did", engine, waited)
			}
			gz := backups(t, dir)
			if len(gz) != 2 {
				t.Fatalf("%s: two runs must leave two backups, got %v", engine, files(t, dir))
			}
			if diff := cmp.Diff([]string{gz[0], gz[0] + ".manifest", gz[0] + ".sha256", gz[1], gz[1] + ".manifest", gz[1] + ".sha256"}, files(t, dir)); diff != "" {
				t.Errorf("%s: two runs leave two backups with their manifests and checksums, nothing else (no lock): -want, +got:\n%s", engine, diff)
			}
			for i, name := range gz {
				sha256sum(t, dir, name)
				dst := start(t, engine)
				r := restoreJob(t, engine, name).Run(t, dst, dir, nil)
				if r.Err != nil {
					t.Fatalf("%s: restore of backup %d, %s: %v", engine, i, name, r.Err)
				}
				if diff := cmp.Diff(want, fingerprint(t, dst)); diff != "" {
					t.Errorf("%s: backup %s of two concurrent runs holds what was backed up\nfingerprint(): -want, +got:\n%s", engine, name, diff)
				}
			}

			// A restore waits while a backup run holds the lock, then loads.
			lock := filepath.Join(dir, ".lock")
			if err := os.Mkdir(lock, 0o700); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(lock, "owner"), "orders-backup-now-a1b2c3-xyz pid 1 since now\n")
			dst := start(t, engine)
			res := make(chan run, 1)
			go func() { res <- restoreJob(t, engine, "latest").Run(t, dst, dir, nil) }()
			select {
			case r := <-res:
				t.Fatalf("%s: a restore must wait while a backup run holds the lock, got exit %v", engine, r.Err)
			case <-time.After(5 * time.Second):
			}
			if err := os.RemoveAll(lock); err != nil {
				t.Fatal(err)
			}
			r := <-res
			if r.Err != nil || !strings.Contains(r.Stdout, "restore: waiting for "+lock+", held by orders-backup-now-a1b2c3-xyz pid 1") || !strings.Contains(r.Stdout, "restore: "+lock+" is free") {
				t.Errorf("%s: a restore that waited for the lock must say so, then load: exit %v", engine, r.Err)
			}
			if diff := cmp.Diff(want, fingerprint(t, dst)); diff != "" {
				t.Errorf("%s: a restore after waiting holds what was backed up\nfingerprint(): -want, +got:\n%s", engine, diff)
			}

			// With the bucket: both runs upload, and each keeps the other's.
			s := startS3(t)
			bj := s3BackupJob(t, engine, s)
			vol := t.TempDir()
			for i, r := range together(func() run { return bj.Run(t, src, vol, s.extra(t, bj)) }) {
				if r.Err != nil {
					t.Fatalf("%s: run %d of two to the bucket started together: %v", engine, i, r.Err)
				}
			}
			gz = backups(t, vol)
			if diff := cmp.Diff([]string{gz[0], gz[0] + ".manifest", gz[0] + ".sha256", gz[1], gz[1] + ".manifest", gz[1] + ".sha256"}, s.list(t, bj)); len(gz) != 2 || diff != "" {
				t.Errorf("%s: two runs started together leave two backups in the bucket: -want, +got:\n%s", engine, diff)
			}
			for _, name := range gz {
				local, err := os.ReadFile(filepath.Join(vol, name)) //nolint:gosec // The test's backup.
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(local, s.cat(t, bj, name)) {
					t.Errorf("%s: the uploaded %s differs from the volume's", engine, name)
				}
			}
		})
	}
}

// together runs f twice at once, from the start of a second, so that
// without a lock both runs would name their backup for the same second.
func together(f func() run) []run {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	rs := make([]run, 2)
	var wg sync.WaitGroup
	for i := range rs {
		wg.Go(func() { rs[i] = f() })
	}
	wg.Wait()
	return rs
}

// TestBackupStaleLock kills a run of the composed backup script in the
// middle of its dump, as a deadline or an eviction would, leaving its lock.
// The next run waits while the lock is younger than the bound (longer than
// a backup Job may run), and takes it over as soon as it is older, saying
// whose it was; its backup is complete.
func TestBackupStaleLock(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			src := start(t, engine)
			src.Load(t, bytes.NewReader(newDataset(engine, small).SQL))
			j := backupJob(t, engine)
			stale := lockStale(t, j)
			for _, deadline := range backupDeadlines(t, engine) {
				// The pod's grace period (30s by default) follows the deadline.
				if stale <= deadline+30 {
					t.Fatalf("%s: the lock is stale after %ds, within a backup Job's %ds deadline and grace period", engine, stale, deadline)
				}
			}
			dir := t.TempDir()

			// The run hangs in its dump, on a server that never answers.
			hang := silentServer(t)
			ctx, cancel := context.WithTimeout(t.Context(), scriptTimeout)
			defer cancel()
			cmd := j.Cmd(ctx, t, src, dir, map[string]string{"DB_PORT": strconv.Itoa(hang)})
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lock := filepath.Join(dir, ".lock")
			var owner []byte
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				partial, _ := filepath.Glob(filepath.Join(dir, ".app-*.partial"))
				if owner, _ = os.ReadFile(filepath.Join(lock, "owner")); len(owner) > 0 && len(partial) > 0 { //nolint:gosec // The test's backup directory.
					break
				}
			}
			if len(owner) == 0 {
				t.Fatalf("%s: the run never took the lock and started its dump: %v", engine, files(t, dir))
			}
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait() // Killed.
			if _, err := os.Stat(lock); err != nil {
				t.Fatalf("%s: a killed run leaves its lock: %v", engine, err)
			}

			res := make(chan run, 1)
			go func() { res <- j.Run(t, src, dir, nil) }()
			select {
			case r := <-res:
				t.Fatalf("%s: a run must wait for a lock younger than the bound, got exit %v", engine, r.Err)
			case <-time.After(6 * time.Second):
			}
			// The killed run's lock passes the bound.
			old := time.Now().Add(-time.Duration(stale+1) * time.Second)
			if err := os.Chtimes(lock, old, old); err != nil {
				t.Fatal(err)
			}
			aged := time.Now()
			var r run
			select {
			case r = <-res:
			case <-time.After(time.Minute):
				t.Fatalf("%s: a run must take over a lock older than the bound", engine)
			}
			if took := time.Since(aged); took > 20*time.Second {
				t.Errorf("%s: a run took %s to take over a stale lock, want a few seconds", engine, took)
			}
			if r.Err != nil {
				t.Fatalf("%s: the run after a killed one: %v", engine, r.Err)
			}
			holder := strings.TrimSpace(string(owner))
			for _, w := range []string{"backup: waiting for " + lock + ", held by " + holder, "backup: removing the stale lock " + lock, "held by " + holder + ": that run is gone", "backup: took " + lock} {
				if !strings.Contains(r.Stdout, w) {
					t.Errorf("%s: the run after a killed one must say %q, got:\n%s", engine, w, r.Stdout)
				}
			}
			gz := backups(t, dir)
			if len(gz) != 1 {
				t.Fatalf("%s: want the new run's backup, got %v", engine, files(t, dir))
			}
			sha256sum(t, dir, gz[0])
			for _, f := range files(t, dir) {
				if strings.HasPrefix(f, ".lock") {
					t.Errorf("%s: the run leaves %s behind", engine, f)
				}
			}
		})
	}
}

// lockStale is the age in seconds at which the composed script's lock is
// stale.
func lockStale(t *testing.T, j job) int64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^lock_stale=([0-9]+)$`).FindStringSubmatch(j.Command[len(j.Command)-1])
	if m == nil {
		t.Fatal("the composed backup script has no lock_stale")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// backupDeadlines are the activeDeadlineSeconds of the Jobs that run the
// backup script: the CronJob's and the on-demand one's.
func backupDeadlines(t *testing.T, engine string) []int64 {
	t.Helper()
	p := params(t, engine, "")
	p.BackupNow = "2026-01-01"
	var out []int64
	for _, d := range []*int64{fn.BackupCronJob(p).Spec.JobTemplate.Spec.ActiveDeadlineSeconds, fn.BackupNowJob(p, "2026-01-01").Spec.ActiveDeadlineSeconds} {
		if d == nil {
			t.Fatal("a backup Job without activeDeadlineSeconds: its lock would never be stale")
		}
		out = append(out, *d)
	}
	return out
}

// silentServer accepts connections on loopback and never answers: a
// client waits on it.
func silentServer(t *testing.T) int {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // A TCP listener's.
}
