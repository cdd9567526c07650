package integration

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The replication benchmarks run the composed PostgreSQL pods on loopback
// (make bench-replication). They measure, on this machine:
//
//   - BenchmarkStandbyCopy: from a new standby's pod starting (its init step)
//     to the primary reporting it streaming, for a database of at least
//     1 GB (DBPLANE_BENCH_COPY_MB sets the size);
//   - BenchmarkReplicationLag: a standby's replay lag, in bytes and
//     milliseconds, sampled while pgbench writes to the primary;
//   - BenchmarkSynchronousCommit: the commit latency of one client doing
//     single-row inserts, asynchronous against synchronous (ANY 1).
//
// Loopback has no network latency: in a cluster synchronous commits add a
// round trip between nodes to each commit.

// BenchmarkStandbyCopy times a new standby of a database of at least 1 GB.
func BenchmarkStandbyCopy(b *testing.B) {
	mb := 1100
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_BENCH_COPY_MB")); err == nil && v > 0 {
		mb = v
	}
	c := startPGPrimary(b, 2, "staging")
	primary := c.Primary()
	// About 1.1 kB a row.
	primary.Query(b, fmt.Sprintf("CREATE TABLE big AS SELECT g AS id, repeat(md5(g::text), 32) AS pad FROM generate_series(1, %d) g", mb*1000*1000/1100))
	primary.Query(b, "CHECKPOINT")
	size, err := strconv.ParseInt(primary.Query(b, "SELECT pg_database_size('app')"), 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("app database: %d MB", size>>20)
	b.ResetTimer()
	for i := range b.N {
		m := c.add(b)
		start := time.Now()
		m.Start(b)
		c.WaitStreaming(b, m)
		b.ReportMetric(time.Since(start).Seconds(), "s-to-stream")
		b.StopTimer()
		if i < b.N-1 {
			m.Wipe(b)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(size>>20), "MB")
}

// BenchmarkReplicationLag samples a standby's lag under a steady pgbench
// write load (tpcb-like, 4 clients, DBPLANE_BENCH_SECONDS or 20 s).
func BenchmarkReplicationLag(b *testing.B) {
	requireBinaries(b, postgresBin()+"/pgbench")
	seconds := benchSeconds()
	c := startPGCluster(b, 2, "staging")
	primary := c.Primary()
	pgbench(b, primary, "--initialize", "--scale=10", "--quiet")
	b.ResetTimer()
	for range b.N {
		done := make(chan string, 1)
		go func() { done <- pgbench(b, primary, "--client=4", "--jobs=2", "--time="+strconv.Itoa(seconds)) }()
		var bytes, millis []float64
		tick := time.NewTicker(200 * time.Millisecond)
		var out string
	sample:
		for {
			select {
			case out = <-done:
				break sample
			case <-tick.C:
				row, err := primary.exec(b.Context(), "postgres", nil,
					"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), COALESCE(EXTRACT(epoch FROM replay_lag) * 1000, 0) FROM pg_stat_replication WHERE application_name = 'orders-1'")
				if err != nil || row == "" {
					continue
				}
				f := strings.Split(row, "\t")
				by, _ := strconv.ParseFloat(f[0], 64)
				ms, _ := strconv.ParseFloat(f[1], 64)
				bytes, millis = append(bytes, by), append(millis, ms)
			}
		}
		tick.Stop()
		b.ReportMetric(tps(b, out), "tps")
		b.ReportMetric(pct(bytes, 50)/1024, "lag-p50-KiB")
		b.ReportMetric(pct(bytes, 99)/1024, "lag-p99-KiB")
		b.ReportMetric(pct(millis, 50), "lag-p50-ms")
		b.ReportMetric(pct(millis, 99), "lag-p99-ms")
		b.ReportMetric(float64(len(bytes)), "samples")
	}
}

// BenchmarkSynchronousCommit compares one client's single-row insert commit
// latency asynchronous and synchronous, on the same two servers.
func BenchmarkSynchronousCommit(b *testing.B) {
	requireBinaries(b, postgresBin()+"/pgbench")
	seconds := benchSeconds()
	c := startPGCluster(b, 2, "production")
	primary := c.Primary()
	primary.Query(b, "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
	script := primary.Dir + "/insert.sql"
	if err := os.WriteFile(script, []byte("INSERT INTO events DEFAULT VALUES;\n"), 0o644); err != nil { //nolint:gosec // pgbench, running as the server's user, reads it.
		b.Fatal(err)
	}
	re := newReplicationEnv(b, c)
	b.ResetTimer()
	for range b.N {
		for _, mode := range []struct {
			name string
			sync int
		}{{"async", 0}, {"sync", 1}} {
			re.converge(b, re.replicationOf(2, mode.sync))
			out := pgbench(b, primary, "--client=1", "--no-vacuum", "--file="+script, "--time="+strconv.Itoa(seconds))
			b.ReportMetric(latency(b, out), mode.name+"-ms/commit")
		}
	}
}

func benchSeconds() int {
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_BENCH_SECONDS")); err == nil && v > 0 {
		return v
	}
	return 20
}

// pgbench runs pgbench against the member's app database and returns its
// output.
func pgbench(b *testing.B, m *pgMember, args ...string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.Context()), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, postgresBin()+"/pgbench", append([]string{"--host=127.0.0.1", "--port=" + strconv.Itoa(m.Port), "--username=postgres"}, append(args, appDatabase)...)...) //nolint:gosec // pgbench on our own server.
	cmd.Env = m.clientEnv(true)
	cmd.Dir = m.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Errorf("pgbench %v: %v\n%s", args, err, out)
	}
	return string(out)
}

var (
	tpsRE     = regexp.MustCompile(`tps = ([0-9.]+)`)
	latencyRE = regexp.MustCompile(`latency average = ([0-9.]+) ms`)
)

func tps(b *testing.B, out string) float64     { return match(b, tpsRE, out) }
func latency(b *testing.B, out string) float64 { return match(b, latencyRE, out) }

func match(b *testing.B, re *regexp.Regexp, out string) float64 {
	b.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		b.Errorf("no %s in pgbench output:\n%s", re, out)
		return 0
	}
	f, _ := strconv.ParseFloat(m[1], 64)
	return f
}

// pct is the p-th percentile of xs, zero when there are none.
func pct[T cmp.Ordered](xs []T, p int) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	s := slices.Sorted(slices.Values(xs))
	return s[min(len(s)-1, len(s)*p/100)]
}
