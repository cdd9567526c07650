package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldriver "github.com/go-sql-driver/mysql"
	corev1 "k8s.io/api/core/v1"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/test/harness"
)

// MySQL failover and switchover on MariaDB 10.11, through the controller's
// MariaDB flavor (MASTER_USE_GTID, read_only, rpl_semi_sync_master_*): the
// MySQL 8 statements are proven by unit tests only.

// The app's login: no SUPER, no READ_ONLY ADMIN, so read_only binds it as
// it binds an app's User in a cluster (root bypasses MariaDB's read_only).
const (
	writerLogin    = "writer"
	writerPassword = "w'pass"
)

// A myRun is a production MySQL Database's three pods (semi-synchronous)
// under the Replication controller polled as the provider polls it, a
// writer committing through the read-write Service and every server's
// writability watched.
type myRun struct {
	c          *myCluster
	status     func() v1alpha1.ReplicationObservation
	with       func(func())
	w          *writer
	splitBrain func() string
	stop       func()
}

func startMyRun(t *testing.T, failoverAfter int, every func(*v1alpha1.Replication) time.Duration) *myRun {
	t.Helper()
	c := startMyCluster(t, 3, "production")
	if c.cr.Spec.ForProvider.Synchronous != 1 {
		t.Fatalf("a production MySQL Database waits for %d replicas, want 1", c.cr.Spec.ForProvider.Synchronous)
	}
	c.cr.Spec.ForProvider.FailoverAfterSeconds = &failoverAfter
	c.settle(t)
	primary := c.Members[0]
	primary.Query(t, "CREATE TABLE acked (id BIGINT PRIMARY KEY)")
	primary.Query(t, fmt.Sprintf("CREATE USER %s@'%%' IDENTIFIED BY %s; GRANT SELECT, INSERT ON %s.* TO %s@'%%'",
		writerLogin, mysqlString(writerPassword), appDatabase, writerLogin))
	// The Replication found the primary: the read-write Service follows
	// the label from now on.
	c.byLabel.Store(true)

	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	r := &myRun{c: c}
	r.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(r.stop)
	r.status, r.with = c.conn.poll(ctx, t, &wg, c.cr, every)

	cfg := mysqldriver.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = writerLogin, writerPassword, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.rw.Port)), appDatabase
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	// Production refuses plaintext; this load needs no verification.
	cfg.TLSConfig = "skip-verify"
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	r.w = startWriterOn(ctx, t, &wg, db, "INSERT INTO acked VALUES (?)", false)

	probes := map[string]roleProbe{}
	for i, m := range c.Members {
		cfg := mysqldriver.NewConfig()
		cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", testPassword, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
		cfg.Timeout, cfg.ReadTimeout = time.Second, time.Second
		cfg.TLSConfig = "skip-verify"
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Fatal(err)
		}
		probes[c.Names[i]] = roleProbe{db: db, writable: "SELECT @@global.read_only = 0"}
	}
	r.splitBrain = watchWritable(ctx, &wg, probes)
	return r
}

// rejoined waits until member name replicates again, read-only, and
// returns "", or, when diverged is allowed, returns what the Replication
// says of it when it reports it as a former primary holding transactions
// the new one lacks.
func (r *myRun) rejoined(t *testing.T, name string, diverged bool) string {
	t.Helper()
	var why string
	if err := harness.Poll(t.Context(), failoverTimeout, func(context.Context) error {
		s := r.status()
		m := memberOf(&v1alpha1.Replication{Status: v1alpha1.ReplicationStatus{AtProvider: s}}, name)
		if diverged && strings.HasPrefix(m.Message, "former primary:") {
			why = m.Message
			return nil
		}
		if !m.Streaming {
			return fmt.Errorf("%s: %+v", name, m)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := r.c.member(name).Query(t, "SELECT @@global.read_only"); got != "1" {
		t.Errorf("%s rejoined writable: read_only = %s", name, got)
	}
	return why
}

// checkConverged waits until every server executed the same GTIDs and
// holds the same rows, and counts the writer's acknowledged commits
// missing from them. Equal GTID positions on every server after failovers
// mean the replicas went on without gaps and no server holds transactions
// of its own.
func (r *myRun) checkConverged(t *testing.T) (lost int) {
	t.Helper()
	var last []string
	if err := harness.Poll(t.Context(), catchUpTimeout, func(ctx context.Context) error {
		last = nil
		for _, m := range r.c.Members {
			out, err := m.exec(ctx, appDatabase, nil, "SELECT CONCAT_WS(' ', @@global.gtid_current_pos, COUNT(*), COALESCE(SUM(id), 0)) FROM acked")
			if err != nil {
				return err
			}
			last = append(last, out)
		}
		if len(slices.Compact(slices.Clone(last))) != 1 {
			return fmt.Errorf("GTID position, rows, sum of ids per server: %v", last)
		}
		return nil
	}); err != nil {
		t.Errorf("the servers did not converge: %v", err)
	}
	primary := r.c.member(r.c.conn.labelledPod())
	if primary == nil {
		t.Fatal("no pod is labelled primary")
	}
	return len(r.w.missing(strings.Fields(primary.Query(t, "SELECT id FROM acked"))))
}

// TestMySQLFailover kills the primary of a production MySQL Database (three
// pods as MariaDB servers, semi-synchronous) with SIGKILL, 3 times or
// DBPLANE_FAILOVER_TRIALS, while a writer commits through the read-write
// Service and every server's read_only is polled every 100 ms. After each
// kill the Replication controller promotes the replica holding every GTID,
// the writer's commits go on there, and the killed server, started again
// read-only as its pod would be, becomes a read-only replica of the new
// primary. No commit the writer saw acknowledged is lost, two servers are
// never writable at once, and at the end every server holds the same
// GTIDs and rows.
func TestMySQLFailover(t *testing.T) {
	trials := 3
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	r := startMyRun(t, testFailoverAfter, func(cr *v1alpha1.Replication) time.Duration {
		// The provider's defaults: --replication-poll 2s,
		// --replication-lost-poll 500ms.
		if cr.Status.AtProvider.PrimaryLostAt != nil {
			return 500 * time.Millisecond
		}
		return 2 * time.Second
	})
	var times []time.Duration
	diverged, async := 0, 0
	for i := range trials {
		waitHealthy(t, r.status, 3, true)
		name := r.c.conn.labelledPod()
		old := r.c.member(name)
		if old == nil {
			t.Fatal("no pod is labelled primary")
		}
		// The writer commits on it.
		if _, err := r.w.acceptedAfter(t.Context(), time.Now(), failoverTimeout, 0); err != nil {
			t.Fatalf("trial %d: before the kill: %v", i+1, err)
		}
		acked := len(r.w.ids())
		// Commits it acknowledged without a replica's acknowledgement
		// (semi-sync fallen back to asynchronous), since it took writes.
		n, _ := strconv.Atoi(old.Query(t, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_NO_TX'"))
		async += n
		old.killGroup()
		killed := time.Now()
		old.Stop()
		took, err := r.w.acceptedAfter(t.Context(), killed, failoverTimeout, 0)
		if err != nil {
			t.Fatalf("trial %d: after killing %s: %v; Replication: %+v", i+1, name, err, r.status())
		}
		times = append(times, took)
		now := r.c.conn.labelledPod()
		t.Logf("trial %d: killed %s after %d commits, %s took writes %s later", i+1, name, acked, now, took.Round(time.Millisecond))
		if now == "" || now == name {
			t.Fatalf("trial %d: the primary label is on %q after killing %s", i+1, now, name)
		}
		// Its pod's container restarts, on its data, read-only.
		old.Restart(t)
		if got := old.Query(t, "SELECT @@global.read_only"); got != "1" {
			t.Errorf("trial %d: %s restarted writable: read_only = %s", i+1, name, got)
		}
		if why := r.rejoined(t, name, true); why != "" {
			// A transaction the killed primary wrote to its binary log
			// but no replica received: never acknowledged, and not to
			// be deleted by the provider on MariaDB (no CLONE). It says
			// so, and an operator replaces the pod's volume.
			diverged++
			t.Logf("trial %d: %s holds a transaction the new primary lacks and is left read-only: %s", i+1, name, why)
			var ready xpv2.Condition
			r.with(func() { ready = r.c.cr.GetCondition(xpv2.TypeReady) })
			if ready.Status != corev1.ConditionFalse || !strings.Contains(ready.Message, "former primary") {
				t.Errorf("trial %d: Ready does not say so: %+v", i+1, ready)
			}
			old.Wipe(t)
			r.rejoined(t, name, false)
		}
	}
	waitHealthy(t, r.status, 3, true)
	r.stop()
	lost := r.checkConverged(t)
	t.Logf("MySQL (MariaDB) failover, %d kills: p50 %s, p99 %s, max %s; %d commits acknowledged, %d lost, %d acknowledged asynchronously by the killed primaries; %d old primaries diverged",
		len(times), pct(times, 50), pct(times, 99), slices.Max(times), len(r.w.ids()), lost, async, diverged)
	if lost != 0 {
		t.Errorf("%d acknowledged commits are missing: semi-synchronous replication must lose none", lost)
	}
	if s := r.splitBrain(); s != "" {
		t.Errorf("two servers were writable at once: %s", s)
	}
}

// TestMySQLSwitchover asks for each replica in turn to be primary
// (switchoverTo) while a writer commits through the read-write Service:
// the provider makes the primary read-only and ends its sessions, promotes
// the replica once it executed every GTID of the old primary, and the old
// primary replicates from it. It reports the longest time the writer's
// commits failed, and checks none acknowledged is lost and two servers are
// never writable at once.
func TestMySQLSwitchover(t *testing.T) {
	r := startMyRun(t, testFailoverAfter, func(*v1alpha1.Replication) time.Duration { return 500 * time.Millisecond })
	var gaps []time.Duration
	for _, to := range []string{"orders-1", "orders-2", "orders-0"} {
		waitHealthy(t, r.status, 3, true)
		from := r.c.conn.labelledPod()
		asked := time.Now()
		r.with(func() { r.c.cr.Spec.ForProvider.SwitchoverTo = to })
		if err := harness.Poll(t.Context(), failoverTimeout, func(context.Context) error {
			if p := r.c.conn.labelledPod(); p != to {
				return fmt.Errorf("primary label on %q", p)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.w.acceptedAfter(t.Context(), time.Now(), failoverTimeout, 0); err != nil {
			t.Fatalf("after switching over to %s: %v", to, err)
		}
		gap := r.w.longestGapSince(asked)
		gaps = append(gaps, gap)
		// Whether a commit waited out the semi-sync timeout and went on
		// asynchronously, on the old primary or the new one.
		const semiSync = "SELECT GROUP_CONCAT(CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) ORDER BY VARIABLE_NAME) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_NO_TX', 'RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_MASTER_CLIENTS')"
		t.Logf("switched over from %s to %s: commits failed for at most %s; old primary %s; new primary %s", from, to, gap.Round(time.Millisecond),
			r.c.member(from).Query(t, semiSync), r.c.member(to).Query(t, semiSync))
		if why := r.rejoined(t, from, true); why != "" {
			t.Fatalf("after a switchover the old primary %s holds transactions the new one lacks: %s", from, why)
		}
	}
	waitHealthy(t, r.status, 3, true)
	r.stop()
	if c := r.c.cr.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionTrue {
		t.Errorf("not Ready after the switchovers: %s", c.Message)
	}
	lost := r.checkConverged(t)
	t.Logf("MySQL (MariaDB) switchover write unavailability: p50 %s, max %s over %d switchovers; %d commits acknowledged, %d lost",
		pct(gaps, 50), slices.Max(gaps).Round(time.Millisecond), len(gaps), len(r.w.ids()), lost)
	if lost != 0 {
		t.Errorf("%d of %d acknowledged commits are missing after the switchovers", lost, len(r.w.ids()))
	}
	if s := r.splitBrain(); s != "" {
		t.Errorf("two servers were writable at once: %s", s)
	}
}
