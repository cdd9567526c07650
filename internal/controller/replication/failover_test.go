package replication

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

func TestDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	standby := func(lsn string) answer {
		return answer{state: &xsql.ReplicationState{ReceivedLSN: lsn, Receiver: "waiting"}}
	}
	down := answer{err: errors.New("connection refused")}
	heard := func(a answer, ms int64) answer {
		s := *a.state
		s.Receiver, s.HeardMillis = "streaming", &ms
		return answer{state: &s}
	}
	primary := answer{state: &xsql.ReplicationState{Primary: true}}
	lostSince := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(-d)} }

	type want struct {
		to  int // -1: no promotion
		why string
	}
	cases := map[string]struct {
		reason      string
		synchronous int
		after       *int
		answers     []answer
		prev        v1alpha1.ReplicationObservation
		want        want
	}{
		"PrimaryAnswers": {
			reason:  "With a primary there is nothing to fail over from.",
			answers: []answer{primary, standby("0/3000000"), standby("0/3000000")},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0"},
			want:    want{to: -1},
		},
		"JustLost": {
			reason:  "A primary lost for less than the delay is waited for.",
			answers: []answer{down, standby("0/3000000"), standby("0/3000000")},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(time.Second)},
			want:    want{to: -1, why: "primary orders-0 unreachable since 2026-12-01T11:59:59Z: failing over after 5s"},
		},
		"AsynchronousMostWAL": {
			reason:  "Asynchronous: the standby that received the most WAL is promoted.",
			answers: []answer{down, standby("0/3000000"), standby("0/3000100")},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second)},
			want:    want{to: 2},
		},
		"AsynchronousLSNComparesAsNumbers": {
			reason:  "WAL locations compare as 64-bit numbers, not strings: 1/0 is past 0/FFFFFFFF.",
			answers: []answer{down, standby("0/FFFFFFFF"), standby("1/0")},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second)},
			want:    want{to: 2},
		},
		"SynchronousOnlyQuorum": {
			reason:      "Synchronous: only a standby that was synchronous is promoted, even when another received more.",
			synchronous: 1,
			answers:     []answer{down, standby("0/3000000"), standby("0/3000100"), standby("0/3000200")},
			prev:        v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second), Quorum: []string{"orders-1", "orders-2"}},
			want:        want{to: 2},
		},
		"SynchronousQuorumMissing": {
			reason:      "Synchronous ANY 1 of two: with one of them not answering, the acknowledged commits may be only on it: no failover.",
			synchronous: 1,
			answers:     []answer{down, standby("0/3000000"), down},
			prev:        v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second), Quorum: []string{"orders-1", "orders-2"}},
			want:        want{to: -1, why: "cannot fail over from orders-0: synchronous standbys orders-2 do not answer, and a commit the primary acknowledged may be only on them"},
		},
		"SynchronousTwoOfThreeOneMissing": {
			reason:      "Synchronous ANY 2 of three: each commit is on two of them, so with one missing another answering has it.",
			synchronous: 2,
			answers:     []answer{down, standby("0/3000000"), standby("0/3000300"), down},
			prev:        v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second), Quorum: []string{"orders-1", "orders-2", "orders-3"}},
			want:        want{to: 2},
		},
		"SynchronousNoQuorumKnown": {
			reason:      "Synchronous with no standby synchronous when the primary was last seen: none is known to hold every acknowledged commit.",
			synchronous: 1,
			answers:     []answer{down, standby("0/3000000"), standby("0/3000000")},
			prev:        v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second)},
			want:        want{to: -1, why: "cannot fail over from orders-0: no standby was synchronous when it was last seen, so none is known to hold every acknowledged commit"},
		},
		"StandbyStillHears": {
			reason:  "A standby that heard from the primary within the delay: the primary serves, only the provider cannot reach it.",
			answers: []answer{down, standby("0/3000000"), heard(standby("0/3000100"), 300)},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second)},
			want:    want{to: -1, why: "primary orders-0 unreachable since 2026-12-01T11:59:54Z, but standby orders-2 still streams from it: no failover while a standby hears from the primary"},
		},
		"StandbyHeardLongAgo": {
			reason:  "A receiver that still says streaming but heard nothing for longer than the delay is no witness.",
			answers: []answer{down, standby("0/3000000"), heard(standby("0/3000100"), 6000)},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(6 * time.Second)},
			want:    want{to: 2},
		},
		"Off": {
			reason:  "failoverAfterSeconds 0 turns automatic failover off.",
			after:   new(int),
			answers: []answer{down, standby("0/3000000"), standby("0/3000000")},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: lostSince(time.Hour)},
			want:    want{to: -1, why: "primary orders-0 unreachable since 2026-12-01T11:00:00Z; automatic failover is off"},
		},
		"NeverHadAPrimary": {
			reason:  "A Replication that never saw a primary (a new Database) has nothing to fail over from.",
			answers: []answer{down, standby("0/3000000")},
			want:    want{to: -1},
		},
		"SplitBrain": {
			reason:  "Two primaries: no promotion makes it better.",
			answers: []answer{primary, primary, standby("0/3000000")},
			prev:    v1alpha1.ReplicationObservation{LastPrimary: "orders-0"},
			want:    want{to: -1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(len(tc.answers), tc.synchronous)
			p.FailoverAfterSeconds = tc.after
			a := assess(p, tc.answers)
			remember(&a, tc.prev, t0)
			pr, why := decide(p, a, t0, mostWAL)
			got := want{to: -1, why: why}
			if pr != nil {
				got.to = pr.to
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\ndecide(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestDecideSteadyWhileWaiting: what decide says while it waits for a lost
// primary is the Replication's Ready message. Polled every 0.5 s, a message
// that changed each time would be a status write each time, and a
// reconcile of the Database for each, enough to open Crossplane's circuit
// breaker on it (seen on the local control plane: the Database's status
// then lagged the failover by a minute).
func TestDecideSteadyWhileWaiting(t *testing.T) {
	lostAt := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	down := answer{err: errors.New("connection refused")}
	standby := answer{state: &xsql.ReplicationState{ReceivedLSN: "0/3000000", Receiver: "waiting"}}
	cases := map[string]struct {
		reason string
		after  *int
	}{
		"WaitingToFailOver": {reason: "Within failoverAfterSeconds every poll says the same."},
		"FailoverOff":       {reason: "With automatic failover off every poll says the same, however long the primary stays lost.", after: new(int)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(2, 0)
			p.FailoverAfterSeconds = tc.after
			var whys []string
			for _, d := range []time.Duration{0, 500 * time.Millisecond, 1300 * time.Millisecond, 4900 * time.Millisecond} {
				a := assess(p, []answer{down, standby})
				remember(&a, v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: &metav1.Time{Time: lostAt}}, lostAt.Add(d))
				pr, why := decide(p, a, lostAt.Add(d), mostWAL)
				if pr != nil {
					t.Fatalf("%s\ndecide(...) %s after the loss: promoted %d", tc.reason, d, pr.to)
				}
				whys = append(whys, why)
			}
			for _, why := range whys[1:] {
				if diff := cmp.Diff(whys[0], why); diff != "" {
					t.Errorf("%s\ndecide(...) on a later poll: -first, +later:\n%s", tc.reason, diff)
				}
			}
		})
	}
}

func TestRemember(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	p := params(3, 1)
	// The primary answers: it is remembered with its synchronous standbys.
	a := assess(p, []answer{{state: &xsql.ReplicationState{Primary: true, Replicas: []xsql.Replica{
		{Name: "orders-1", State: "streaming", SyncState: "quorum"}, {Name: "orders-2", State: "streaming", SyncState: "async"},
	}}}, {state: &xsql.ReplicationState{}}, {state: &xsql.ReplicationState{}}})
	remember(&a, v1alpha1.ReplicationObservation{}, t0)
	if a.at.LastPrimary != "orders-0" || a.at.PrimaryLostAt != nil || !cmp.Equal(a.at.Quorum, []string{"orders-1"}) {
		t.Errorf("with a primary: LastPrimary %q, PrimaryLostAt %v, Quorum %v; want orders-0, nil, [orders-1]", a.at.LastPrimary, a.at.PrimaryLostAt, a.at.Quorum)
	}
	// It stops answering: lost from now, and the quorum is kept.
	b := assess(p, []answer{{err: errors.New("refused")}, {state: &xsql.ReplicationState{}}, {state: &xsql.ReplicationState{}}})
	remember(&b, a.at, t0)
	if b.at.LastPrimary != "orders-0" || b.at.PrimaryLostAt == nil || !b.at.PrimaryLostAt.Time.Equal(t0) || !cmp.Equal(b.at.Quorum, []string{"orders-1"}) {
		t.Errorf("primary lost: LastPrimary %q, PrimaryLostAt %v, Quorum %v", b.at.LastPrimary, b.at.PrimaryLostAt, b.at.Quorum)
	}
	// Still lost later: the first time is kept.
	c := assess(p, []answer{{err: errors.New("refused")}, {state: &xsql.ReplicationState{}}, {state: &xsql.ReplicationState{}}})
	remember(&c, b.at, t0.Add(time.Second))
	if c.at.PrimaryLostAt == nil || !c.at.PrimaryLostAt.Time.Equal(t0) {
		t.Errorf("still lost: PrimaryLostAt %v, want %v", c.at.PrimaryLostAt, t0)
	}
}

func TestMissingSlots(t *testing.T) {
	p := params(3, 0)
	got := missingSlots(p.SlotPrefix, p.Members, 1, []xsql.Slot{{Name: "orders_2"}, {Name: "other"}})
	if diff := cmp.Diff([]string{"orders_0"}, got); diff != "" {
		t.Errorf("a promoted orders-1 needs the slot of orders-0, not its own: -want, +got:\n%s", diff)
	}
}

// TestFailover: a lost primary past the delay is replaced in order: its
// label off and its still-Ready pod deleted, every standby detached, the
// eligible one that received the most once detached promoted with slots
// and synchronous standbys, labelled, the other standby attached again.
// orders-1 had received the most when decided on, but orders-2 went on
// receiving from the primary, cut off from the provider only, until it was
// detached: orders-2 holds commits orders-1 lacks, so it is promoted.
func TestFailover(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	lost := newPod("orders-0", "primary")
	lost.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	kube := newKube(t, lost, newPod("orders-1", "replica"), newPod("orders-2", "replica"))
	var changes []string
	e := newExternal(kube, &changes,
		answer{err: errors.New("connection refused")},
		answer{state: &xsql.ReplicationState{ReceivedLSN: "0/3000100", Receiver: "waiting"}},
		answer{state: &xsql.ReplicationState{ReceivedLSN: "0/3000000", Receiver: "waiting"}})
	e.failsOver, e.now = true, func() time.Time { return t0 }
	e.servers[2].(*fakeServer).detachedState = &xsql.ReplicationState{ReceivedLSN: "0/3000200", Receiver: ""} //nolint:forcetypeassert // newExternal's.
	cr := newReplication(3, 1)
	cr.Status.AtProvider = v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: &metav1.Time{Time: t0.Add(-10 * time.Second)}, Quorum: []string{"orders-1", "orders-2"}}

	o, err := e.Observe(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if o.ResourceUpToDate || !strings.HasPrefix(o.Diff, "fail over: primary orders-0 unreachable for 10s; promoted orders-1") {
		t.Fatalf("Observe: up to date %t, diff %q: want a failover to orders-1", o.ResourceUpToDate, o.Diff)
	}
	if _, err := e.Update(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"orders-1: detach",
		"orders-2: detach",
		`orders-2: synchronous_standby_names = ANY 1 ("orders-0", "orders-1")`,
		"orders-2: promote",
		"orders-2: attach",
		"orders-2: create slot orders_0",
		"orders-2: create slot orders_1",
		"orders-1: attach",
	}
	// The standbys are detached at once, in either order.
	if len(changes) > 2 {
		slices.Sort(changes[:2])
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("failover's changes on the servers, in order: -want, +got:\n%s", diff)
	}
	if err := kube.Get(t.Context(), client.ObjectKey{Namespace: "team-a", Name: "orders-0"}, &corev1.Pod{}); !kerrors.IsNotFound(err) {
		t.Errorf("the lost primary's Ready pod: want it deleted (fenced), got %v", err)
	}
	if got := labels(t, kube, "orders-2")["orders-2"][v1alpha1.LabelRole]; got != v1alpha1.RolePrimary {
		t.Errorf("orders-2's role label: got %q, want primary", got)
	}
	if f := cr.Status.AtProvider.LastFailover; f == nil || f.From != "orders-0" || f.To != "orders-2" || !strings.Contains(f.Reason, "promoted orders-2, the standby with the most WAL received (0/3000200)") ||
		cr.Status.AtProvider.LastPrimary != "orders-2" || cr.Status.AtProvider.PrimaryLostAt != nil {
		t.Errorf("status after the failover: %+v", cr.Status.AtProvider)
	}
}

// TestAttachDetached: a standby a failover left detached (it stopped half
// way) is attached again once there is a primary, and only then.
func TestAttachDetached(t *testing.T) {
	detached := standbyState("")
	detached.Detached = true
	for name, tc := range map[string]struct {
		answers []answer
		label1  string
		diff    string
		changes []string
	}{
		"WithPrimary": {
			label1:  "replica",
			answers: []answer{{state: primaryState("orders-1")}, {state: standbyState("streaming")}, {state: detached}},
			diff:    "attach detached standby orders-2 to the primary",
			changes: []string{"orders-2: attach"},
		},
		"PrimaryLost": {
			answers: []answer{{err: errRefused}, {state: standbyState("")}, {state: detached}},
		},
	} {
		t.Run(name, func(t *testing.T) {
			var changes []string
			// Standbys that do not stream carry no replica label.
			kube := newKube(t, newPod("orders-0", "primary"), newPod("orders-1", tc.label1), newPod("orders-2", ""))
			e := newExternal(kube, &changes, tc.answers...)
			e.failsOver = true
			cr := newReplication(3, 0)
			cr.Status.AtProvider.LastPrimary = "orders-0"
			o, err := e.Observe(t.Context(), cr)
			if err != nil {
				t.Fatal(err)
			}
			if o.Diff != tc.diff {
				t.Errorf("Observe diff: got %q, want %q", o.Diff, tc.diff)
			}
			if !o.ResourceUpToDate {
				if _, err := e.Update(t.Context(), cr); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.changes, changes); diff != "" {
				t.Errorf("changes: -want, +got:\n%s", diff)
			}
		})
	}
}

// TestObserveTimeout: a member that does not answer (cut off, not
// refusing) costs one observe timeout, and is unreachable for the poll.
func TestObserveTimeout(t *testing.T) {
	var changes []string
	kube := newKube(t, newPod("orders-0", "primary"), newPod("orders-1", "replica"))
	e := newExternal(kube, &changes, answer{}, answer{state: standbyState("")})
	e.servers[0].(*fakeServer).hang = true //nolint:forcetypeassert // newExternal's.
	e.observeTimeout = 50 * time.Millisecond
	cr := newReplication(2, 0)
	cr.Status.AtProvider.LastPrimary = "orders-0"
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	// The clock moves on while the member is asked.
	clock := t0
	e.now = func() time.Time { c := clock; clock = clock.Add(time.Second); return c }
	start := time.Now()
	if _, err := e.Observe(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Observe with a member that hangs took %s; want about the observe timeout", took)
	}
	if m := cr.Status.AtProvider.Members[0]; m.Role != v1alpha1.MemberUnreachable || cr.Status.AtProvider.PrimaryLostAt == nil || !cr.Status.AtProvider.PrimaryLostAt.Time.Equal(t0) {
		t.Errorf("a member that hangs: %+v, primary lost at %v; want unreachable, and lost since before it was asked (%s)", m, cr.Status.AtProvider.PrimaryLostAt, t0)
	}
	// Asked again while lost: the shorter re-ask timeout, not the observe
	// timeout.
	e.observeTimeout = time.Minute
	start = time.Now()
	if _, err := e.Observe(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("re-asking a member that was unreachable took %s; want about %s", took, reaskTimeout)
	}
}

func TestSwitchoverDue(t *testing.T) {
	healthy := []answer{{state: primaryState("orders-1", "orders-2")}, {state: standbyState("streaming")}, {state: standbyState("streaming")}}
	cases := map[string]struct {
		reason string
		to     string
		ans    []answer
		want   *switchover
		why    string
	}{
		"NotAsked":            {reason: "No switchoverTo: nothing to do.", ans: healthy},
		"AlreadyThere":        {reason: "The primary is the one asked for.", to: "orders-0", ans: healthy},
		"ToAStreamingStandby": {reason: "A standby that streams is switched to.", to: "orders-2", ans: healthy, want: &switchover{from: 0, to: 2}},
		"NotStreaming": {
			reason: "A standby that does not stream is waited for.", to: "orders-2",
			ans: []answer{{state: primaryState("orders-1")}, {state: standbyState("streaming")}, {state: standbyState("")}},
			why: "cannot switch over to orders-2 yet: it does not stream",
		},
		"NotAMember": {reason: "A name that is no member is said so.", to: "orders-7", ans: healthy, why: "cannot switch over to orders-7: it is not a member"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(3, 1)
			p.SwitchoverTo = tc.to
			got, why := switchoverDue(p, assess(p, tc.ans))
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(switchover{})); diff != "" || why != tc.why {
				t.Errorf("%s\nswitchoverDue: -want, +got:\n%s\nwhy: got %q, want %q", tc.reason, diff, why, tc.why)
			}
		})
	}
}

func TestRolloutStep(t *testing.T) {
	healthy := []answer{{state: primaryState("orders-1", "orders-2")}, {state: standbyState("streaming")}, {state: standbyState("streaming")}}
	degraded := []answer{{state: primaryState("orders-1")}, {state: standbyState("streaming")}, {state: standbyState("")}}
	pods := func(revs ...string) map[string]pod {
		out := map[string]pod{}
		for i, r := range revs {
			out["orders-"+string(rune('0'+i))] = pod{exists: true, revision: r}
		}
		return out
	}
	cases := map[string]struct {
		reason string
		ans    []answer
		pods   map[string]pod
		want   step
	}{
		"UpToDate":       {reason: "Every pod at the new revision: nothing to do.", ans: healthy, pods: pods("new", "new", "new")},
		"HighestStandby": {reason: "Standbys first, the highest ordinal first.", ans: healthy, pods: pods("old", "old", "old"), want: step{plan: &plan{restart: "orders-2"}}},
		"NextStandby":    {reason: "Then the next standby.", ans: healthy, pods: pods("old", "old", "new"), want: step{plan: &plan{restart: "orders-1"}}},
		"PrimaryLast": {
			reason: "With only the primary outdated, a switchover to an updated standby that streams restarts it.",
			ans:    healthy, pods: pods("old", "new", "new"), want: step{plan: &plan{switchover: &switchover{from: 0, to: 1}}},
		},
		"WaitsForStreaming": {
			reason: "A standby that does not stream (one just restarted) is waited for.",
			ans:    degraded, pods: pods("old", "old", "new"),
			want: step{why: "rolling update waits: not streaming from orders-0: orders-2 (not streaming from primary orders-0: WAL receiver not running)"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(3, 0)
			got := rolloutStep(p.Members, assess(p, tc.ans), tc.pods, "new")
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(step{}, plan{}, switchover{})); diff != "" {
				t.Errorf("%s\nrolloutStep: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestFailoverStops: a failover stops, and promotes no one, when an
// acknowledged commit may be only on a standby it cannot read or detach.
func TestFailoverStops(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		reason string
		break2 func(*fakeServer)
		want   string
	}{
		"DetachFails": {
			reason: "ANY 1 of two: orders-2 cannot be detached and may still acknowledge the lost primary's commits.",
			break2: func(f *fakeServer) { f.detachErr = errors.New("read-only file system") },
			want:   "cannot fail over from orders-0: standbys orders-2 (read-only file system) could not be detached",
		},
		"SilentOnceDetached": {
			reason: "ANY 1 of two: orders-2 stops answering once detached; the last commit may be only on it.",
			break2: func(f *fakeServer) { f.detachedErr = errors.New("connection refused") },
			want:   "cannot fail over from orders-0: synchronous standbys orders-2 do not answer once detached",
		},
	} {
		t.Run(name, func(t *testing.T) {
			lost := newPod("orders-0", "primary")
			kube := newKube(t, lost, newPod("orders-1", "replica"), newPod("orders-2", "replica"))
			var changes []string
			e := newExternal(kube, &changes,
				answer{err: errors.New("connection refused")},
				answer{state: &xsql.ReplicationState{ReceivedLSN: "0/3000100", Receiver: "waiting"}},
				answer{state: &xsql.ReplicationState{ReceivedLSN: "0/3000000", Receiver: "waiting"}})
			e.failsOver, e.now = true, func() time.Time { return t0 }
			tc.break2(e.servers[2].(*fakeServer)) //nolint:forcetypeassert // newExternal's.
			cr := newReplication(3, 1)
			cr.Status.AtProvider = v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: &metav1.Time{Time: t0.Add(-10 * time.Second)}, Quorum: []string{"orders-1", "orders-2"}}
			if _, err := e.Observe(t.Context(), cr); err != nil {
				t.Fatal(err)
			}
			_, err := e.Update(t.Context(), cr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s\nUpdate: got %v, want an error containing %q", tc.reason, err, tc.want)
			}
			if slices.ContainsFunc(changes, func(c string) bool { return strings.HasSuffix(c, ": promote") }) {
				t.Errorf("%s\npromoted anyway: %v", tc.reason, changes)
			}
		})
	}
}

func TestStalePrimaries(t *testing.T) {
	both := []answer{{state: primaryState()}, {state: primaryState()}, {state: standbyState("streaming")}}
	cases := map[string]struct {
		reason string
		last   string
		labels [3]string
		want   []string
	}{
		"CameBack": {reason: "orders-0 came back as a primary after orders-1 was promoted and labelled: its Pod goes.",
			last: "orders-1", labels: [3]string{"", "primary", "replica"}, want: []string{"orders-0"}},
		"RecordedNotLabelled": {reason: "The recorded primary does not carry the label: nothing tells which one apps write to; nothing is deleted.",
			last: "orders-1", labels: [3]string{"", "", "replica"}},
		"BothLabelled": {reason: "Both carry the label: the Service routes to both; a human decides.",
			last: "orders-1", labels: [3]string{"primary", "primary", "replica"}},
		"RecordedNotPrimary": {reason: "The recorded primary is not among the primaries.",
			last: "orders-2", labels: [3]string{"", "primary", "replica"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := assess(params(3, 0), both)
			a.at.LastPrimary = tc.last
			pods := map[string]pod{}
			for i, l := range tc.labels {
				pods[fmt.Sprintf("orders-%d", i)] = pod{exists: true, role: l}
			}
			if diff := cmp.Diff(tc.want, stalePrimaries(a, pods)); diff != "" {
				t.Errorf("%s\nstalePrimaries: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
