package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkBackup measures the composed backup and restore scripts on a
// database of at least 1 GB (DBPLANE_BENCH_BACKUP_MB sets the size) on
// real servers and versitygw on loopback, against the floor: the dump tool
// piped straight to a file, and the client loading that file. Variants
// show the cost of each step: gzip at levels 6, 3 and 1 (with the size
// each compresses to), the composed script on the volume (gzip -1, row
// count, checksum), with the upload streamed, with the upload encrypted.
// Throughput is of the uncompressed dump, so variants compare. One run
// each (-benchtime=1x): `make bench-backup`.
func BenchmarkBackup(b *testing.B) {
	for _, engine := range benchEngines() {
		b.Run(engine, func(b *testing.B) { benchBackup(b, engine) })
	}
}

func benchEngines() []string {
	if v := os.Getenv("DBPLANE_BENCH_ENGINES"); v != "" {
		return strings.Split(v, ",")
	}
	return engines
}

func benchBackup(b *testing.B, engine string) {
	mb := 1100
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_BENCH_BACKUP_MB")); err == nil && v > 0 {
		mb = v
	}
	src := start(b, engine)
	// About 300 bytes a row of hex text (compresses like real text, about
	// 2:1), and an integer key.
	rows := mb * 1000 * 1000 / 300
	pad := "concat(md5(g::text), md5((g * 3)::text), md5((g * 5)::text), md5((g * 7)::text), md5((g * 11)::text), md5((g * 13)::text), md5((g * 17)::text), md5((g * 19)::text), ' order line ', g)"
	if engine == postgresql {
		src.Query(b, fmt.Sprintf("CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL); INSERT INTO big SELECT g, %s FROM generate_series(1, %d) g", pad, rows))
	} else {
		// MariaDB's sequence engine; md5 takes the number as it is.
		pad = strings.NewReplacer("::text", "", "(g", "(seq", " g)", " seq)").Replace(pad)
		src.Query(b, fmt.Sprintf("CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL); INSERT INTO big SELECT seq, %s FROM seq_1_to_%d", pad, rows))
	}
	s3 := startS3(b)
	plain := s3BackupJob(b, engine, s3)

	floorDir := b.TempDir()
	floor := filepath.Join(floorDir, "dump.sql")
	shell := func(script string) time.Duration {
		b.Helper()
		env := map[string]string{}
		// As job.Cmd runs the composed job: the TLS Secret's CA is the
		// server's.
		for k, v := range backupJob(b, engine).Env {
			env[k] = localTLS(v, src.TLS.Dir)
		}
		script = localTLS(script, src.TLS.Dir)
		env["DB_HOST"], env["DB_PORT"] = "127.0.0.1", strconv.Itoa(src.Port)
		env[src.PasswordEnv()] = src.Password
		env["OUT"] = floor
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail; "+script) //nolint:gosec // The engine's own dump command.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir()}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		begin := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", script, err, out)
		}
		return time.Since(begin)
	}
	dumpCmd := engineDump(b, engine)
	floorTime := shell(dumpCmd + ` > "${OUT}"`)
	fi, err := os.Stat(floor)
	if err != nil {
		b.Fatal(err)
	}
	dumpMB := float64(fi.Size()) / (1 << 20)
	b.Logf("%s: dump %.0f MiB", engine, dumpMB)

	report := func(name string, d time.Duration) {
		b.Logf("%-40s %7.1fs %7.1f MiB/s", name, d.Seconds(), dumpMB/d.Seconds())
		b.ReportMetric(dumpMB/d.Seconds(), name+"-MiB/s")
	}
	report("backup-floor(dump>file)", floorTime)
	// gzip's levels: 6 is gzip's default (and backup.sh's before it took
	// 1), each with the size it compresses to.
	for _, level := range []int{6, 3, 1} {
		name := fmt.Sprintf("backup-dump|gzip-%d", level)
		report(name, shell(fmt.Sprintf(`%s | gzip -%d -c > "${OUT}.gz"`, dumpCmd, level)))
		zfi, err := os.Stat(floor + ".gz")
		if err != nil {
			b.Fatal(err)
		}
		zMB := float64(zfi.Size()) / (1 << 20)
		b.Logf("%-40s %7.0f MiB (%.2f:1)", name, zMB, dumpMB/zMB)
		b.ReportMetric(zMB, name+"-MiB")
		if err := os.Remove(floor + ".gz"); err != nil {
			b.Fatal(err)
		}
	}

	vol := b.TempDir()
	r := backupJob(b, engine).Run(b, src, vol, map[string]string{"RETENTION_DAYS": "7"})
	if r.Err != nil {
		b.Fatal(r.Err)
	}
	report("backup-composed(volume)", r.Elapsed)
	gz := backups(b, vol)[0]
	gzfi, _ := os.Stat(filepath.Join(vol, gz))
	b.Logf("%s: compressed %.0f MiB (%.2f:1)", engine, float64(gzfi.Size())/(1<<20), float64(fi.Size())/float64(gzfi.Size()))

	r = plain.Run(b, src, b.TempDir(), s3.extra(b, plain))
	if r.Err != nil {
		b.Fatal(r.Err)
	}
	report("backup-composed(volume+s3)", r.Elapsed)

	key := randomHex(b, 32)
	s3.key = key
	enc := s3BackupJob(b, engine, s3)
	encVol := b.TempDir()
	r = enc.Run(b, src, encVol, s3.extra(b, enc))
	if r.Err != nil {
		b.Fatal(r.Err)
	}
	report("backup-composed(volume+s3+crypt)", r.Elapsed)

	// Restores, each into a new server.
	dst := start(b, engine)
	loadFloor := time.Now()
	f, err := os.Open(floor) //nolint:gosec // The benchmark's dump.
	if err != nil {
		b.Fatal(err)
	}
	dst.Load(b, f)
	_ = f.Close()
	report("restore-floor(client<file)", time.Since(loadFloor))

	dst = start(b, engine)
	rr := restoreJob(b, engine, "latest").Run(b, dst, vol, nil)
	if rr.Err != nil {
		b.Fatal(rr.Err)
	}
	report("restore-composed(volume)", rr.Elapsed)

	s3.key = ""
	dst = start(b, engine)
	rj := s3RestoreJob(b, engine, "latest", s3)
	ex := s3.extra(b, rj)
	scratch := b.TempDir()
	ex["RESTORE_SCRATCH"] = scratch
	rr = rj.Run(b, dst, scratch, ex)
	if rr.Err != nil {
		b.Fatal(rr.Err)
	}
	report("restore-composed(s3)", rr.Elapsed)

	s3.key = key
	dst = start(b, engine)
	rj = s3RestoreJob(b, engine, "latest", s3)
	ex = s3.extra(b, rj)
	scratch = b.TempDir()
	ex["RESTORE_SCRATCH"] = scratch
	rr = rj.Run(b, dst, scratch, ex)
	if rr.Err != nil {
		b.Fatal(rr.Err)
	}
	report("restore-composed(s3+crypt)", rr.Elapsed)
}

// engineDump is the dump command of the composed backup script: its line
// that runs the engine's dump tool, up to the pipe into the row counter.
func engineDump(b *testing.B, engine string) string {
	b.Helper()
	j := backupJob(b, engine)
	for _, l := range strings.Split(j.Command[len(j.Command)-1], "\n") {
		if strings.HasPrefix(l, "pg_dump ") || strings.HasPrefix(l, "mysqldump ") {
			cmd, _, _ := strings.Cut(l, " | tee ")
			return cmd
		}
	}
	b.Fatal("the composed backup script runs no dump tool")
	return ""
}
