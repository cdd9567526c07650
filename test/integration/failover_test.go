package integration

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "github.com/jackc/pgx/v5/stdlib" // The pgx driver, as the provider uses.
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/test/harness"
)

// testFailoverAfter is the failover delay the tests compose; users get 5 s
// unless they set it.
const testFailoverAfter = 2

// failoverTimeout bounds one failover, from the kill to a write accepted by
// the new primary.
const failoverTimeout = 60 * time.Second

// TestPostgreSQLFailover loses the primary of a production Database
// (three pods) again and again, while a writer commits through the
// read-write Service and every server's role is polled every 100 ms: with
// SIGKILL, and separately cut off from the provider without being killed
// (it still answers its kubelet, its standbys and the writer's open
// connection), each with synchronous replication (as production composes
// it) and asynchronous. After each loss the Replication controller promotes
// a standby, the writer's commits go on there, and the lost server, started
// again as its pod would be, rewinds itself into a standby of the new
// primary. Two servers are never writable at once; with synchronous
// replication no commit the writer saw acknowledged is lost, and without,
// the lost ones are counted and logged.
func TestPostgreSQLFailover(t *testing.T) {
	trials := 10
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	for _, tc := range []struct {
		name string
		mode failoverMode
		n    int
	}{
		{"Killed", failoverMode{synchronous: true}, trials},
		{"CutOff", failoverMode{synchronous: true, cut: true}, trials},
		// Asynchronous only counts what it loses: fewer trials.
		{"KilledAsynchronous", failoverMode{}, 3},
		{"CutOffAsynchronous", failoverMode{cut: true}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := failoverTrials(t, tc.n, testFailoverAfter, tc.mode)
			t.Logf("failover, %s %d times: p50 %s, p99 %s, max %s; %d commits acknowledged, %d lost", tc.mode, tc.n,
				pct(r.times, 50), pct(r.times, 99), slices.Max(r.times), r.acked, r.lost)
			if tc.mode.synchronous && r.lost != 0 {
				t.Errorf("%d acknowledged commits are missing on the last primary: synchronous replication must lose none", r.lost)
			}
			switch {
			case r.splitBrain != "" && tc.mode.cut && !tc.mode.synchronous:
				// Until its kubelet stops it, a cut-off primary commits
				// what reaches it: asynchronous replication's loss.
				t.Logf("a cut-off primary took writes beside the new one, asynchronously: %s", r.splitBrain)
			case r.splitBrain != "":
				t.Errorf("two servers took writes at once: %s", r.splitBrain)
			}
		})
	}
}

// TestPostgreSQLNoFailoverWhileStandbysHear cuts the primary off from the
// provider only: its standbys still stream from it and the writer still
// commits there. The standbys witness that it serves, so the provider does
// not fail over (that would turn the provider's network fault into the
// apps' outage) and says why; once the cut heals, nothing has changed.
func TestPostgreSQLNoFailoverWhileStandbysHear(t *testing.T) {
	c, re, cr := startFailoverCluster(t, true, testFailoverAfter)

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	status, with := re.poll(ctx, t, &wg, cr, providerIntervals)
	w := startWriter(ctx, t, &wg, c.rw.Port)
	waitHealthy(t, status, 3, true)
	old := re.labelled()
	cut := time.Now()
	re.net.CutProvider(old.Port)
	// Three times the delay, the observe timeouts included.
	var why string
	if err := harness.Poll(t.Context(), failoverTimeout, func(context.Context) error {
		s := status()
		if s.PrimaryLostAt == nil || time.Since(s.PrimaryLostAt.Time) < 3*time.Duration(testFailoverAfter)*time.Second {
			return fmt.Errorf("primary lost at %v", s.PrimaryLostAt)
		}
		with(func() { why = cr.GetCondition(xpv2.TypeReady).Message })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if now := re.labelled(); now != old {
		t.Errorf("the primary label moved from %s to %s while the standbys still streamed from it", old.Name, nameOf(now))
	}
	if f := status().LastFailover; f != nil {
		t.Errorf("failed over while the standbys still streamed from the primary: %+v", f)
	}
	if !strings.Contains(why, "still streams from it") {
		t.Errorf("Ready message while the provider cannot reach a primary its standbys hear: %q", why)
	}
	if _, err := w.acceptedAfter(ctx, cut, time.Second, -1); err != nil {
		t.Errorf("the writer's commits stopped while only the provider was cut off: %v", err)
	}
	re.net.Heal(old.Port)
	waitHealthy(t, status, 3, true)
	if now := re.labelled(); now != old {
		t.Errorf("after the cut healed the primary is %s, want %s", nameOf(now), old.Name)
	}
}

// TestPostgreSQLStalePrimaryFenced kills the primary and, once a standby
// took over, starts the old server again as its container restarting in
// place does: without the init step, so it comes up as a primary, beside
// the new one, unlabelled. The provider deletes its pod; the pod comes back
// through the init step, which rewinds it into a standby, and no
// acknowledged commit is lost.
func TestPostgreSQLStalePrimaryFenced(t *testing.T) {
	c, re, cr := startFailoverCluster(t, true, testFailoverAfter)

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	status, _ := re.poll(ctx, t, &wg, cr, providerIntervals)
	stopped := re.kubelet(ctx, &wg)
	w := startWriter(ctx, t, &wg, c.rw.Port)
	waitHealthy(t, status, 3, true)
	old := re.labelled()
	killed := time.Now()
	old.Kill()
	if _, err := w.acceptedAfter(ctx, killed, failoverTimeout, old.Port); err != nil {
		t.Fatal(err)
	}
	// The container restarts in place: no init step, so it starts from
	// its data directory as a primary.
	old.startServer(t)
	if got := old.Query(t, "SELECT pg_is_in_recovery()"); got != "f" {
		t.Fatalf("%s started without the init step in recovery (%q): the test means a stale primary", old.Name, got)
	}
	select {
	case m := <-stopped:
		if m != old {
			t.Fatalf("the provider deleted the pod of %s, not of the stale primary %s", m.Name, old.Name)
		}
	case <-time.After(failoverTimeout):
		t.Fatalf("the stale primary %s's pod was not deleted; Replication: %+v", old.Name, status())
	}
	old.Start(t)
	if !strings.Contains(old.lastInit, "rewound") {
		t.Errorf("%s came back without rewinding: %s", old.Name, old.lastInit)
	}
	waitHealthy(t, status, 3, true)
	stop()
	wg.Wait()
	for _, id := range w.missing(ackedOn(t, re.labelled())) {
		t.Errorf("acknowledged commit %d is missing", id)
	}
}

// startFailoverCluster starts a production Database's three pods, with or
// without synchronous replication, converges its Replication (failing over
// after seconds), routes the read-write Service by the primary label, and
// creates the writer's table acked and the writability probe's table probe.
func startFailoverCluster(t testing.TB, synchronous bool, after int) (*pgCluster, *replicationEnv, *v1alpha1.Replication) {
	t.Helper()
	c := startPGCluster(t, 3, "production")
	re := newReplicationEnv(t, c)
	n := 0
	if synchronous {
		n = int(c.p.SyncStandbys)
	}
	cr := re.replicationOf(3, n)
	cr.Spec.ForProvider.FailoverAfterSeconds = &after
	re.converge(t, cr)
	c.RouteByLabel(re.labelled)
	c.Primary().Query(t, "CREATE TABLE acked (id bigint PRIMARY KEY); CREATE TABLE probe (at timestamptz)")
	// On every standby before any is promoted: asynchronous standbys may
	// not have them yet.
	c.waitReplayed(t)
	return c, re, cr
}

// providerIntervals are the provider's default poll intervals
// (--replication-poll 2s, --replication-lost-poll 500ms).
func providerIntervals(cr *v1alpha1.Replication) time.Duration {
	if cr.Status.AtProvider.PrimaryLostAt != nil {
		return 500 * time.Millisecond
	}
	return 2 * time.Second
}

// A failoverMode is how the primary is lost, and how the Database
// replicates.
type failoverMode struct {
	// cut cuts the primary off (from the provider, its standbys and the
	// writer: a partition of its node) instead of killing it.
	cut         bool
	synchronous bool
}

func (m failoverMode) String() string {
	how, mode := "killed", "asynchronous"
	if m.cut {
		how = "cut off"
	}
	if m.synchronous {
		mode = "synchronous"
	}
	return how + ", " + mode
}

// A failoverResult is what failoverTrials measured.
type failoverResult struct {
	times      []time.Duration
	acked      int
	lost       int
	splitBrain string
}

func failoverTrials(t testing.TB, trials, after int, mode failoverMode) failoverResult {
	t.Helper()
	c, re, cr := startFailoverCluster(t, mode.synchronous, after)

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()

	// The provider: a reconcile on each poll, at the provider's default
	// intervals (--replication-poll 2s, --replication-lost-poll 500ms).
	status, _ := re.poll(ctx, t, &wg, cr, providerIntervals)
	stopped := re.kubelet(ctx, &wg)

	w := startWriter(ctx, t, &wg, c.rw.Port)
	var res failoverResult
	splitBrain := watchRoles(ctx, &wg, c)

	for i := range trials {
		waitHealthy(t, status, 3, mode.synchronous)
		old := re.labelled()
		if old == nil {
			t.Fatal("no pod is labelled primary")
		}
		lost := time.Now()
		if mode.cut {
			// Alive, and Ready to its kubelet: deleting its pod stops it.
			re.markReady(t, old)
			re.net.Cut(old.Port)
		} else {
			// From when it is dead: a commit acknowledged after can only
			// be the new primary's.
			old.Kill()
		}
		took, err := w.acceptedAfter(ctx, lost, failoverTimeout, old.Port)
		if err != nil {
			t.Fatalf("trial %d: after losing %s: %v; Replication: %+v", i+1, old.Name, err, status())
		}
		res.times = append(res.times, took)
		now := re.labelled()
		t.Logf("trial %d: lost %s (%s), %s took writes %s later", i+1, old.Name, mode, nameOf(now), took.Round(time.Millisecond))
		if now == nil || now == old {
			t.Fatalf("trial %d: the primary label is on %s after losing %s", i+1, nameOf(now), old.Name)
		}
		if mode.cut {
			select {
			case m := <-stopped:
				if m != old {
					t.Fatalf("trial %d: the failover stopped %s, not the lost primary %s", i+1, m.Name, old.Name)
				}
			case <-time.After(failoverTimeout):
				t.Fatalf("trial %d: the failover did not delete the pod of %s, which is cut off but Ready", i+1, old.Name)
			}
			re.net.Heal(old.Port)
			t.Logf("trial %d: %s stopped by its kubelet %s after the cut", i+1, old.Name, time.Since(lost).Round(time.Millisecond))
		}
		// Its pod's container restarts: the init step rewinds it.
		restart := time.Now()
		old.Start(t)
		t.Logf("trial %d: %s rewound and started in %s", i+1, old.Name, time.Since(restart).Round(time.Millisecond))
		if !strings.Contains(old.lastInit, "rewound") {
			t.Errorf("trial %d: %s started without rewinding: %s", i+1, old.Name, old.lastInit)
		}
	}
	waitHealthy(t, status, 3, mode.synchronous)
	stop()
	wg.Wait()
	res.splitBrain = splitBrain()

	// Every commit acknowledged is on the last primary.
	res.lost = len(w.missing(ackedOn(t, re.labelled())))
	res.acked = len(w.ids())
	return res
}

// markReady makes m's Pod Ready, as its kubelet reports a server that
// answers its probe, and gives it a finalizer that the kubelet stand-in
// removes once it stopped the server: deleting the Pod is then graceful,
// as in a cluster, where the Pod is gone only once its containers stopped.
func (r *replicationEnv) markReady(t testing.TB, m *pgMember) {
	t.Helper()
	p := &corev1.Pod{}
	if err := r.kube.Get(t.Context(), client.ObjectKey{Namespace: providerNamespace, Name: m.Name}, p); err != nil {
		t.Fatal(err)
	}
	p.Finalizers = []string{kubeletFinalizer}
	if err := r.kube.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if err := r.kube.Status().Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

// kubeletGrace is the kubelet stand-in's termination grace period: a
// cut-off primary's fast shutdown waits for standbys it cannot reach.
const kubeletGrace = 5 * time.Second

// kubeletFinalizer holds a deleted Pod until the kubelet stand-in stopped
// its server.
const kubeletFinalizer = "test.dbplane.io/kubelet"

// poll stands in for the managed reconciler: it reconciles cr on each poll,
// every(cr) apart, until ctx ends. status reads cr's observed status, with
// runs a change to cr between reconciles.
func (r *replicationEnv) poll(ctx context.Context, t testing.TB, wg *sync.WaitGroup, cr *v1alpha1.Replication,
	every func(*v1alpha1.Replication) time.Duration) (status func() v1alpha1.ReplicationObservation, with func(func())) {
	var mu sync.Mutex
	wg.Go(func() {
		for ctx.Err() == nil {
			mu.Lock()
			if err := r.tick(ctx, cr); err != nil && ctx.Err() == nil {
				t.Logf("reconcile: %v", err)
			}
			d := every(cr)
			mu.Unlock()
			sleep(ctx, d)
		}
	})
	status = func() v1alpha1.ReplicationObservation {
		mu.Lock()
		defer mu.Unlock()
		return *cr.Status.AtProvider.DeepCopy()
	}
	with = func(change func()) {
		mu.Lock()
		defer mu.Unlock()
		change()
	}
	return status, with
}

// labelled is the member whose Pod is labelled primary, or nil.
func (r *replicationEnv) labelled() *pgMember {
	name := r.labelledPod()
	for _, m := range r.c.Members {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// labelledPod is the one Pod labelled primary, or "".
func (r *replicationEnv) labelledPod() string {
	l := &corev1.PodList{}
	if err := r.kube.List(context.Background(), l, client.MatchingLabels{v1alpha1.LabelRole: v1alpha1.RolePrimary}); err != nil || len(l.Items) != 1 {
		return ""
	}
	return l.Items[0].Name
}

// tick reconciles cr once, as the managed reconciler does on a poll.
func (r *replicationEnv) tick(ctx context.Context, cr *v1alpha1.Replication) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ext, err := r.connector.Connect(ctx, cr)
	if err != nil {
		return err
	}
	o, err := ext.Observe(ctx, cr)
	if err != nil {
		return err
	}
	if !o.ResourceUpToDate {
		_, err = ext.Update(ctx, cr)
	}
	return err
}

// waitHealthy waits until the Replication sees a primary and n-1 standbys
// streaming, with synchronous replication all of them synchronous for the
// primary: a failover then has a synchronous standby to promote.
func waitHealthy(t testing.TB, status func() v1alpha1.ReplicationObservation, n int, synchronous bool) {
	t.Helper()
	if err := harness.Poll(t.Context(), failoverTimeout, func(context.Context) error {
		s := status()
		streaming := 0
		for _, m := range s.Members {
			if m.Streaming {
				streaming++
			}
		}
		if s.Primary == "" || streaming != n-1 || (synchronous && len(s.Quorum) != n-1) {
			return fmt.Errorf("primary %q, %d streaming, quorum %v", s.Primary, streaming, s.Quorum)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Kill kills the member's server and every backend with SIGKILL, as the
// kernel's OOM killer or a node crash does.
func (m *pgMember) Kill() {
	m.killGroup()
	m.Stop()
}

// killGroup sends SIGKILL to the server's process group.
func (s *server) killGroup() {
	if s.Proc != nil {
		_ = syscall.Kill(-s.Proc.PID(), syscall.SIGKILL) // It may be gone.
	}
}

// A writer commits one row at a time through the read-write Service and
// records the rows acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []int64
	at    []time.Time
	// by is the port of the server that acknowledged each.
	by []int
}

func startWriter(ctx context.Context, t testing.TB, wg *sync.WaitGroup, port int) *writer {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='%s' dbname=%s sslmode=require connect_timeout=2",
		port, pgQuoteConn(testPassword), appDatabase))
	if err != nil {
		t.Fatal(err)
	}
	return startWriterOn(ctx, t, wg, db, "INSERT INTO acked VALUES ($1) RETURNING inet_server_port()", true)
}

// startWriterOn commits insert, with each row's id, through db, one
// session at a time, and records the rows acknowledged, and, when
// returnsPort, the port of the server that acknowledged each, which insert
// returns.
func startWriterOn(ctx context.Context, t testing.TB, wg *sync.WaitGroup, db *sql.DB, insert string, returnsPort bool) *writer {
	t.Helper()
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	t.Cleanup(func() { _ = db.Close() })
	w := &writer{}
	wg.Go(func() {
		for id := int64(1); ctx.Err() == nil; {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var port int
			var err error
			if returnsPort {
				err = db.QueryRowContext(cctx, insert, id).Scan(&port)
			} else {
				_, err = db.ExecContext(cctx, insert, id)
			}
			cancel()
			if err != nil {
				// A commit whose acknowledgement never came may or may
				// not be there; the next id is new either way.
				id++
				sleep(ctx, 20*time.Millisecond)
				continue
			}
			w.mu.Lock()
			w.acked, w.at, w.by = append(w.acked, id), append(w.at, time.Now()), append(w.by, port)
			w.mu.Unlock()
			id++
			sleep(ctx, 5*time.Millisecond)
		}
	})
	return w
}

// acceptedAfter waits for a commit acknowledged after since by a server
// other than the one on port not (not above 0: any) and returns how long
// after since it was.
func (w *writer) acceptedAfter(ctx context.Context, since time.Time, timeout time.Duration, not int) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		i, _ := slices.BinarySearchFunc(w.at, since, func(a, b time.Time) int { return a.Compare(b) })
		for ; i < len(w.at); i++ {
			if w.at[i].After(since) && (not <= 0 || w.by[i] != not) {
				d := w.at[i].Sub(since)
				w.mu.Unlock()
				return d, nil
			}
		}
		w.mu.Unlock()
		sleep(ctx, 10*time.Millisecond)
	}
	return 0, fmt.Errorf("no write accepted within %s", timeout)
}

func (w *writer) ids() []int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acked)
}

// missing is every commit the writer saw acknowledged whose id is not
// among on, the ids a server holds.
func (w *writer) missing(on []string) []int64 {
	has := map[string]bool{}
	for _, id := range on {
		has[id] = true
	}
	var out []int64
	for _, id := range w.ids() {
		if !has[strconv.FormatInt(id, 10)] {
			out = append(out, id)
		}
	}
	return out
}

// ackedOn is the ids PostgreSQL server s holds in the writer's table.
func ackedOn(t testing.TB, s *pgMember) []string {
	t.Helper()
	return splitComma(s.Query(t, "SELECT string_agg(id::text, ',') FROM acked"))
}

// watchRoles asks every server directly (as its kubelet would) every 100
// ms until ctx ends whether it takes writes: a commit to table probe, which
// a standby refuses and a primary whose synchronous standbys are gone
// never acknowledges (within 500 ms). What it returns tells, once wg is
// done, the first moment two took writes.
func watchRoles(ctx context.Context, wg *sync.WaitGroup, c *pgCluster) func() string {
	probes := map[string]roleProbe{}
	for _, m := range c.Members {
		// The app database, where the table probe is.
		db, err := sql.Open("pgx", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='%s' dbname=%s sslmode=require connect_timeout=1",
			m.Port, pgQuoteConn(testPassword), appDatabase))
		if err != nil {
			continue
		}
		probes[m.Name] = roleProbe{db: db, writable: "INSERT INTO probe VALUES (now()) RETURNING true"}
	}
	return watchWritable(ctx, wg, probes)
}

// A roleProbe asks one server, through db, whether it takes writes: the
// one boolean its query returns.
type roleProbe struct {
	db       *sql.DB
	writable string
}

// watchWritable polls every server of probes, by name, every 100 ms until
// ctx ends; what it returns tells, once wg is done, the first moment two
// were writable. A server that does not answer is not writable.
func watchWritable(ctx context.Context, wg *sync.WaitGroup, probes map[string]roleProbe) func() string {
	var found string
	var mu sync.Mutex
	for _, p := range probes {
		p.db.SetMaxOpenConns(1)
	}
	wg.Go(func() {
		defer func() {
			for _, p := range probes {
				_ = p.db.Close()
			}
		}()
		seen := false
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			if !seen && found == "" {
				found = "no server was ever writable: the probes cannot tell"
			}
		}()
		for ctx.Err() == nil {
			var writable []string
			for name, p := range probes {
				cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
				var w bool
				if err := p.db.QueryRowContext(cctx, p.writable).Scan(&w); err == nil && w {
					writable = append(writable, name)
				}
				cancel()
			}
			seen = seen || len(writable) > 0
			if len(writable) > 1 {
				mu.Lock()
				if found == "" {
					found = fmt.Sprintf("%v at %s", writable, time.Now().Format(time.RFC3339Nano))
				}
				mu.Unlock()
			}
			sleep(ctx, 100*time.Millisecond)
		}
	})
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		return found
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func nameOf(m *pgMember) string {
	if m == nil {
		return "no pod"
	}
	return m.Name
}

func splitComma(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// pgQuoteConn escapes a value for a single-quoted keyword/value
// connection string.
func pgQuoteConn(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s)
}

// BenchmarkFailover loses the primary DBPLANE_FAILOVER_TRIALS times (10 by
// default), killed and cut off, with synchronous replication and the
// failover delay users get (5 s), and reports the time from the loss to the
// first commit the new primary acknowledged, and the acknowledged commits
// lost (make bench-failover).
func BenchmarkFailover(b *testing.B) {
	trials := 10
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	for name, mode := range map[string]failoverMode{"Killed": {synchronous: true}, "CutOff": {synchronous: true, cut: true}} {
		b.Run(name, func(b *testing.B) {
			for range b.N {
				r := failoverTrials(b, trials, 5, mode)
				b.ReportMetric(pct(r.times, 50).Seconds(), "p50-s")
				b.ReportMetric(pct(r.times, 99).Seconds(), "p99-s")
				b.ReportMetric(slices.Max(r.times).Seconds(), "max-s")
				b.ReportMetric(float64(r.acked), "acked")
				b.ReportMetric(float64(r.lost), "lost")
				if r.splitBrain != "" {
					b.Errorf("two servers were writable at once: %s", r.splitBrain)
				}
			}
		})
	}
}

// TestPostgreSQLSwitchover asks for each standby in turn to be primary
// (the Database's switchover annotation, as the Replication's
// switchoverTo) while a writer commits through the read-write Service: the
// provider stops the primary by deleting its pod (here the test stands in
// for the kubelet and the StatefulSet: it stops the server, recreates the
// pod, and starts it again), promotes the standby once it has replayed all
// it received, and the old primary rewinds into its standby. It reports the
// longest time the writer's commits failed, and checks none acknowledged
// is lost and two servers are never writable at once.
func TestPostgreSQLSwitchover(t *testing.T) {
	gaps := switchovers(t)
	t.Logf("switchover write unavailability: max %s over %d switchovers", slices.Max(gaps).Round(time.Millisecond), len(gaps))
}

// BenchmarkSwitchover reports the longest write unavailability of three
// switchovers (make bench-failover).
func BenchmarkSwitchover(b *testing.B) {
	for range b.N {
		gaps := switchovers(b)
		b.ReportMetric(slices.Max(gaps).Seconds(), "max-unavailable-s")
		b.ReportMetric(pct(gaps, 50).Seconds(), "p50-unavailable-s")
	}
}

func switchovers(t testing.TB) []time.Duration {
	t.Helper()
	c := startPGCluster(t, 3, "production")
	re := newReplicationEnv(t, c)
	cr := re.replicationOf(3, int(c.p.SyncStandbys))
	re.converge(t, cr)
	c.RouteByLabel(re.labelled)
	c.Primary().Query(t, "CREATE TABLE acked (id bigint PRIMARY KEY); CREATE TABLE probe (at timestamptz)")
	// On every standby before any is promoted: asynchronous standbys may
	// not have them yet.
	c.waitReplayed(t)

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	status, with := re.poll(ctx, t, &wg, cr, func(*v1alpha1.Replication) time.Duration { return 500 * time.Millisecond })
	stopped := re.kubelet(ctx, &wg)
	w := startWriter(ctx, t, &wg, c.rw.Port)
	splitBrain := watchRoles(ctx, &wg, c)

	var gaps []time.Duration
	for _, to := range []string{"orders-1", "orders-2", "orders-0"} {
		waitHealthy(t, status, 3, true)
		old := re.labelled()
		asked := time.Now()
		with(func() { cr.Spec.ForProvider.SwitchoverTo = to })
		select {
		case m := <-stopped:
			if m != old {
				t.Fatalf("switching over to %s stopped %s, not the primary %s", to, m.Name, old.Name)
			}
		case <-time.After(failoverTimeout):
			t.Fatalf("switching over to %s: the primary %s was not stopped", to, old.Name)
		}
		if err := harness.Poll(t.Context(), failoverTimeout, func(context.Context) error {
			if m := re.labelled(); m == nil || m.Name != to {
				return fmt.Errorf("primary label on %s", nameOf(m))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.acceptedAfter(ctx, time.Now(), failoverTimeout, 0); err != nil {
			t.Fatalf("after switching over to %s: %v", to, err)
		}
		gap := w.longestGapSince(asked)
		gaps = append(gaps, gap)
		t.Logf("switched over from %s to %s: commits failed for at most %s", old.Name, to, gap.Round(time.Millisecond))
		// Its pod is back: the init step rewinds it into a standby.
		old.Start(t)
		if !strings.Contains(old.lastInit, "rewound") {
			t.Errorf("%s started without rewinding: %s", old.Name, old.lastInit)
		}
	}
	waitHealthy(t, status, 3, true)
	stop()
	wg.Wait()
	if s := splitBrain(); s != "" {
		t.Errorf("two servers were writable at once: %s", s)
	}
	if lost := len(w.missing(ackedOn(t, re.labelled()))); lost != 0 {
		t.Errorf("%d of %d acknowledged commits are missing after the switchovers", lost, len(w.ids()))
	}
	return gaps
}

// kubelet stands in for the kubelet and the StatefulSet controller: when a
// member's Pod is deleted it stops its server (the image's stop signal,
// SIGINT: a fast shutdown), removes the Pod's finalizers if it has any,
// creates the Pod again, and says which member on the channel; the test
// starts the member again.
func (r *replicationEnv) kubelet(ctx context.Context, wg *sync.WaitGroup) <-chan *pgMember {
	out := make(chan *pgMember, len(r.c.Members))
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, m := range r.c.Members {
				p := &corev1.Pod{}
				err := r.kube.Get(ctx, client.ObjectKey{Namespace: providerNamespace, Name: m.Name}, p)
				switch {
				case err == nil && p.DeletionTimestamp != nil:
					// Deleted gracefully: the Pod goes once its server
					// stopped, or its grace period (here 5 s) ran out.
					if m.Proc != nil {
						m.Proc.StopTimeout = kubeletGrace
					}
					m.Stop()
					p.Finalizers = nil
					if err := r.kube.Update(ctx, p); err != nil {
						continue
					}
				case kerrors.IsNotFound(err):
					m.Stop()
				default:
					continue
				}
				// At the StatefulSet's revision, as its controller creates Pods.
				var revision map[string]string
				sts := &appsv1.StatefulSet{}
				if err := r.kube.Get(ctx, client.ObjectKey{Namespace: providerNamespace, Name: "orders"}, sts); err == nil {
					revision = map[string]string{appsv1.ControllerRevisionHashLabelKey: sts.Status.UpdateRevision}
				}
				_ = r.kube.Create(ctx, memberPod(m.Name, m.Index, revision))
				out <- m
			}
			sleep(ctx, 50*time.Millisecond)
		}
	})
	return out
}

// longestGapSince is the longest time after since between two commits
// acknowledged, or from since to the first.
func (w *writer) longestGapSince(since time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	prev := since
	for _, at := range w.at {
		if at.Before(since) {
			continue
		}
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return longest
}

// TestPostgreSQLRollingUpdate rolls a production Database's pods to a new
// StatefulSet revision as the provider does with the OnDelete strategy the
// function composes: standbys first, one at a time while every standby
// streams, then a switchover to an updated standby, which restarts the old
// primary last. A writer commits all along; none acknowledged is lost,
// two servers are never writable, and its commits fail only around the
// switchover.
func TestPostgreSQLRollingUpdate(t *testing.T) {
	c := startPGCluster(t, 3, "production")
	re := newReplicationEnv(t, c)
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: "orders"}}
	if err := re.kube.Create(t.Context(), sts); err != nil {
		t.Fatal(err)
	}
	setRevision := func(rev string) {
		sts.Status.UpdateRevision = rev
		if err := re.kube.Status().Update(t.Context(), sts); err != nil {
			t.Fatal(err)
		}
	}
	setRevision("orders-rev1")
	for _, m := range c.Members {
		p := &corev1.Pod{}
		if err := re.kube.Get(t.Context(), client.ObjectKey{Namespace: providerNamespace, Name: m.Name}, p); err != nil {
			t.Fatal(err)
		}
		p.Labels[appsv1.ControllerRevisionHashLabelKey] = "orders-rev1"
		if err := re.kube.Update(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	cr := re.replicationOf(3, int(c.p.SyncStandbys))
	if cr.Spec.ForProvider.StatefulSet != "orders" {
		t.Fatalf("the composed Replication rolls StatefulSet %q, want orders", cr.Spec.ForProvider.StatefulSet)
	}
	re.converge(t, cr)
	c.RouteByLabel(re.labelled)
	c.Primary().Query(t, "CREATE TABLE acked (id bigint PRIMARY KEY); CREATE TABLE probe (at timestamptz)")
	// On every standby before any is promoted: asynchronous standbys may
	// not have them yet.
	c.waitReplayed(t)

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	status, _ := re.poll(ctx, t, &wg, cr, func(*v1alpha1.Replication) time.Duration { return 500 * time.Millisecond })
	stopped := re.kubelet(ctx, &wg)
	w := startWriter(ctx, t, &wg, c.rw.Port)
	splitBrain := watchRoles(ctx, &wg, c)
	waitHealthy(t, status, 3, true)

	// A new pod template: the StatefulSet's update revision changes.
	started := time.Now()
	setRevision("orders-rev2")
	var order []string
	for range c.Members {
		select {
		case m := <-stopped:
			order = append(order, m.Name)
			m.Start(t)
		case <-time.After(failoverTimeout):
			t.Fatalf("rolling update: after %v no further pod was restarted; Replication %+v", order, status())
		}
	}
	waitHealthy(t, status, 3, true)
	took := time.Since(started)
	stop()
	wg.Wait()
	if diff := cmp.Diff([]string{"orders-2", "orders-1", "orders-0"}, order); diff != "" {
		t.Errorf("pods restarted, in order: standbys first, the primary last: -want, +got:\n%s", diff)
	}
	if p := re.labelled(); p == nil || p.Name == "orders-0" {
		t.Errorf("after the rolling update the primary is %s: want an updated standby switched over to", nameOf(p))
	}
	t.Logf("rolling update of 3 pods: %s; commits failed for at most %s", took.Round(time.Millisecond), w.longestGapSince(started).Round(time.Millisecond))
	if s := splitBrain(); s != "" {
		t.Errorf("two servers were writable at once: %s", s)
	}
	for _, id := range w.missing(ackedOn(t, re.labelled())) {
		t.Errorf("acknowledged commit %d is missing after the rolling update", id)
	}
}
