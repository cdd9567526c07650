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

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/test/harness"
)

// testFailoverAfter is the failover delay the tests compose; users get 5 s
// unless they set it.
const testFailoverAfter = 2

// failoverTimeout bounds one failover, from the kill to a write accepted by
// the new primary.
const failoverTimeout = 60 * time.Second

// TestPostgreSQLFailover kills the primary of a production Database
// (synchronous, three pods) with SIGKILL again and again, while a writer
// commits through the read-write Service and every server's role is polled
// every 100 ms. After each kill the Replication controller promotes a
// standby that was synchronous, the writer's commits go on there, and the
// killed server, started again as its pod would be, rewinds itself into a
// standby of the new primary. No commit the writer saw acknowledged is
// lost, and two servers are never writable at once.
func TestPostgreSQLFailover(t *testing.T) {
	trials := 10
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	r := failoverTrials(t, trials, testFailoverAfter)
	t.Logf("failover, %d kills: p50 %s, p99 %s, max %s; %d commits acknowledged, %d lost", trials,
		pct(r.times, 50), pct(r.times, 99), slices.Max(r.times), r.acked, r.lost)
	if r.lost != 0 {
		t.Errorf("%d acknowledged commits are missing on the last primary: synchronous replication must lose none", r.lost)
	}
	if r.splitBrain != "" {
		t.Errorf("two servers were writable at once: %s", r.splitBrain)
	}
}

// A failoverResult is what failoverTrials measured.
type failoverResult struct {
	times      []time.Duration
	acked      int
	lost       int
	splitBrain string
}

func failoverTrials(t testing.TB, trials, after int) failoverResult {
	t.Helper()
	c := startPGCluster(t, 3, "production")
	re := newReplicationEnv(t, c)
	cr := re.replicationOf(3, int(c.p.SyncStandbys))
	cr.Spec.ForProvider.FailoverAfterSeconds = &after
	re.converge(t, cr)
	c.RouteByLabel(re.labelled)
	c.Primary().Query(t, "CREATE TABLE acked (id bigint PRIMARY KEY)")

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()

	// The provider: a reconcile on each poll, at the provider's default
	// intervals (--replication-poll 2s, --replication-lost-poll 500ms).
	status, _ := re.poll(ctx, t, &wg, cr, func(cr *v1alpha1.Replication) time.Duration {
		if cr.Status.AtProvider.PrimaryLostAt != nil {
			return 500 * time.Millisecond
		}
		return 2 * time.Second
	})

	w := startWriter(ctx, t, &wg, c.rw.Port)
	var res failoverResult
	splitBrain := watchRoles(ctx, &wg, c)

	for i := range trials {
		waitHealthy(t, status, 3)
		old := re.labelled()
		if old == nil {
			t.Fatal("no pod is labelled primary")
		}
		// From when it is dead: a commit acknowledged after can only be
		// the new primary's.
		old.Kill()
		killed := time.Now()
		took, err := w.acceptedAfter(ctx, killed, failoverTimeout)
		if err != nil {
			t.Fatalf("trial %d: after killing %s: %v; Replication: %+v", i+1, old.Name, err, status())
		}
		res.times = append(res.times, took)
		now := re.labelled()
		t.Logf("trial %d: killed %s, %s took writes %s later", i+1, old.Name, nameOf(now), took.Round(time.Millisecond))
		if now == nil || now == old {
			t.Fatalf("trial %d: the primary label is on %s after killing %s", i+1, nameOf(now), old.Name)
		}
		// Its pod's container restarts: the init step rewinds it.
		old.Start(t)
		if !strings.Contains(old.lastInit, "rewound") {
			t.Errorf("trial %d: %s started without rewinding: %s", i+1, old.Name, old.lastInit)
		}
	}
	waitHealthy(t, status, 3)
	stop()
	wg.Wait()
	res.splitBrain = splitBrain()

	// Every commit acknowledged is on the last primary.
	last := re.labelled()
	got := map[int64]bool{}
	out := last.Query(t, "SELECT string_agg(id::text, ',') FROM acked")
	for _, f := range splitComma(out) {
		n, _ := strconv.ParseInt(f, 10, 64)
		got[n] = true
	}
	for _, id := range w.ids() {
		if !got[id] {
			res.lost++
		}
	}
	res.acked = len(w.ids())
	return res
}

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
// streaming, two of them synchronous for the primary: a failover then has
// a synchronous standby to promote.
func waitHealthy(t testing.TB, status func() v1alpha1.ReplicationObservation, n int) {
	t.Helper()
	if err := harness.Poll(t.Context(), failoverTimeout, func(context.Context) error {
		s := status()
		streaming := 0
		for _, m := range s.Members {
			if m.Streaming {
				streaming++
			}
		}
		if s.Primary == "" || streaming != n-1 || len(s.Quorum) != n-1 {
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
}

func startWriter(ctx context.Context, t testing.TB, wg *sync.WaitGroup, port int) *writer {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='%s' dbname=%s sslmode=disable connect_timeout=2",
		port, pgQuoteConn(testPassword), appDatabase))
	if err != nil {
		t.Fatal(err)
	}
	return startWriterOn(ctx, t, wg, db, "INSERT INTO acked VALUES ($1)")
}

// startWriterOn commits insert, with each row's id, through db, one
// session at a time, and records the rows acknowledged.
func startWriterOn(ctx context.Context, t testing.TB, wg *sync.WaitGroup, db *sql.DB, insert string) *writer {
	t.Helper()
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	t.Cleanup(func() { _ = db.Close() })
	w := &writer{}
	wg.Go(func() {
		for id := int64(1); ctx.Err() == nil; {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := db.ExecContext(cctx, insert, id)
			cancel()
			if err != nil {
				// A commit whose acknowledgement never came may or may
				// not be there; the next id is new either way.
				id++
				sleep(ctx, 20*time.Millisecond)
				continue
			}
			w.mu.Lock()
			w.acked, w.at = append(w.acked, id), append(w.at, time.Now())
			w.mu.Unlock()
			id++
			sleep(ctx, 5*time.Millisecond)
		}
	})
	return w
}

// acceptedAfter waits for a commit acknowledged after since and returns
// how long after since it was.
func (w *writer) acceptedAfter(ctx context.Context, since time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		if n := len(w.at); n > 0 && w.at[n-1].After(since) {
			// The first one after since.
			i, _ := slices.BinarySearchFunc(w.at, since, func(a, b time.Time) int { return a.Compare(b) })
			for i < n && !w.at[i].After(since) {
				i++
			}
			d := w.at[i].Sub(since)
			w.mu.Unlock()
			return d, nil
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

// watchRoles polls every server's role every 100 ms until ctx ends; what it
// returns tells, once wg is done, the first moment two were writable.
func watchRoles(ctx context.Context, wg *sync.WaitGroup, c *pgCluster) func() string {
	probes := map[string]roleProbe{}
	for _, m := range c.Members {
		db, err := sql.Open("pgx", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password='%s' dbname=postgres sslmode=disable connect_timeout=1",
			m.Port, pgQuoteConn(testPassword)))
		if err != nil {
			continue
		}
		probes[m.Name] = roleProbe{db: db, writable: "SELECT NOT pg_is_in_recovery()"}
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

// BenchmarkFailover kills the primary DBPLANE_FAILOVER_TRIALS times (10 by
// default) with the failover delay users get (5 s) and reports the time
// from the kill to the first commit the new primary acknowledged, and the
// acknowledged commits lost (make bench-failover).
func BenchmarkFailover(b *testing.B) {
	trials := 10
	if v, err := strconv.Atoi(os.Getenv("DBPLANE_FAILOVER_TRIALS")); err == nil && v > 0 {
		trials = v
	}
	for range b.N {
		r := failoverTrials(b, trials, 5)
		b.ReportMetric(pct(r.times, 50).Seconds(), "p50-s")
		b.ReportMetric(pct(r.times, 99).Seconds(), "p99-s")
		b.ReportMetric(slices.Max(r.times).Seconds(), "max-s")
		b.ReportMetric(float64(r.acked), "acked")
		b.ReportMetric(float64(r.lost), "lost")
		if r.splitBrain != "" {
			b.Errorf("two servers were writable at once: %s", r.splitBrain)
		}
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
	c.Primary().Query(t, "CREATE TABLE acked (id bigint PRIMARY KEY)")

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	status, with := re.poll(ctx, t, &wg, cr, func(*v1alpha1.Replication) time.Duration { return 500 * time.Millisecond })
	stopped := re.kubelet(ctx, &wg)
	w := startWriter(ctx, t, &wg, c.rw.Port)
	splitBrain := watchRoles(ctx, &wg, c)

	var gaps []time.Duration
	for _, to := range []string{"orders-1", "orders-2", "orders-0"} {
		waitHealthy(t, status, 3)
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
		if _, err := w.acceptedAfter(ctx, time.Now(), failoverTimeout); err != nil {
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
	waitHealthy(t, status, 3)
	stop()
	wg.Wait()
	if s := splitBrain(); s != "" {
		t.Errorf("two servers were writable at once: %s", s)
	}
	last := re.labelled()
	out := last.Query(t, "SELECT string_agg(id::text, ',') FROM acked")
	got := map[string]bool{}
	for _, f := range splitComma(out) {
		got[f] = true
	}
	lost := 0
	for _, id := range w.ids() {
		if !got[strconv.FormatInt(id, 10)] {
			lost++
		}
	}
	if lost != 0 {
		t.Errorf("%d of %d acknowledged commits are missing after the switchovers", lost, len(w.ids()))
	}
	return gaps
}

// kubelet stands in for the kubelet and the StatefulSet controller: when a
// member's Pod is deleted it stops its server (the image's stop signal,
// SIGINT: a fast shutdown), creates the Pod again, and says which member on
// the channel; the test starts the member again.
func (r *replicationEnv) kubelet(ctx context.Context, wg *sync.WaitGroup) <-chan *pgMember {
	out := make(chan *pgMember, len(r.c.Members))
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, m := range r.c.Members {
				p := &corev1.Pod{}
				err := r.kube.Get(ctx, client.ObjectKey{Namespace: providerNamespace, Name: m.Name}, p)
				if err == nil || !kerrors.IsNotFound(err) {
					continue
				}
				m.Stop()
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
	c.Primary().Query(t, "CREATE TABLE acked (id bigint PRIMARY KEY)")

	ctx, stop := context.WithCancel(context.WithoutCancel(t.Context()))
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	status, _ := re.poll(ctx, t, &wg, cr, func(*v1alpha1.Replication) time.Duration { return 500 * time.Millisecond })
	stopped := re.kubelet(ctx, &wg)
	w := startWriter(ctx, t, &wg, c.rw.Port)
	splitBrain := watchRoles(ctx, &wg, c)
	waitHealthy(t, status, 3)

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
	waitHealthy(t, status, 3)
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
	out := re.labelled().Query(t, "SELECT string_agg(id::text, ',') FROM acked")
	got := map[string]bool{}
	for _, f := range splitComma(out) {
		got[f] = true
	}
	for _, id := range w.ids() {
		if !got[strconv.FormatInt(id, 10)] {
			t.Errorf("acknowledged commit %d is missing after the rolling update", id)
		}
	}
}
