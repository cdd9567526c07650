package replication

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/mysql"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// A fakeReplicaPromoter is a MySQL server the provider can promote and
// demote, recording what it is asked.
type fakeReplicaPromoter struct {
	fakeReplicator
}

func (f *fakeReplicaPromoter) Demote(context.Context) error {
	*f.changes = append(*f.changes, f.name+": demote")
	return nil
}

func (f *fakeReplicaPromoter) StopReplication(context.Context) error {
	*f.changes = append(*f.changes, f.name+": stop replication")
	return nil
}

func (f *fakeReplicaPromoter) StartReplication(context.Context) error {
	*f.changes = append(*f.changes, f.name+": start replication")
	return nil
}

var _ ReplicaPromoter = &fakeReplicaPromoter{}

// myReplica replicates from the read-write Service, executed exec and
// received recv, acknowledging semi-sync when acking.
func myReplica(exec, recv string, acking bool) *xsql.ReplicationState {
	s := mysqlReplica(exec, "Yes", "Yes", true)
	s.Received = recv
	s.SemiSync = &xsql.SemiSync{WaitFor: 1, ReplicaEnabled: true, ReplicaActive: acking}
	return s
}

func TestDecideMySQL(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	down := answer{err: errRefused}
	lost := v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: &metav1.Time{Time: t0.Add(-6 * time.Second)}}
	withQuorum := func(q ...string) v1alpha1.ReplicationObservation {
		o := *lost.DeepCopy()
		o.Quorum = q
		return o
	}
	a9, a12 := uuidA+":1-9", uuidA+":1-12"
	type want struct {
		to  int
		why string
	}
	cases := map[string]struct {
		reason      string
		synchronous int
		answers     []answer
		prev        v1alpha1.ReplicationObservation
		want        want
	}{
		"AsynchronousSuperset": {
			reason:  "Asynchronous: the replica whose GTIDs hold the other's is promoted.",
			answers: []answer{down, {state: myReplica(a9, a9, false)}, {state: myReplica(a12, a12, false)}},
			prev:    lost,
			want:    want{to: 2},
		},
		"ReceivedCounts": {
			reason:  "What a replica received and has not applied yet is what it holds once promoted (it applies it first).",
			answers: []answer{down, {state: myReplica(a9, a12, false)}, {state: myReplica(uuidA+":1-11", uuidA+":1-11", false)}},
			prev:    lost,
			want:    want{to: 1},
		},
		"SynchronousAcknowledgingOnly": {
			reason:      "Semi-sync: only a replica that was acknowledging when the primary was last seen may be promoted; it holds the other's GTIDs.",
			synchronous: 1,
			answers:     []answer{down, {state: myReplica(a12, a12, true)}, {state: myReplica(a9, a9, false)}},
			prev:        withQuorum("orders-1"),
			want:        want{to: 1},
		},
		"SynchronousAcknowledgingBehind": {
			reason:      "The acknowledging replica lacks GTIDs another replica has: promoting it would leave that one diverged; no failover.",
			synchronous: 1,
			answers:     []answer{down, {state: myReplica(a9, a9, true)}, {state: myReplica(a12, a12, false)}},
			prev:        withQuorum("orders-1"),
			want:        want{to: -1, why: "cannot fail over from orders-0: no replica that may be promoted holds the GTIDs of every other answering replica"},
		},
		"SynchronousNoneAcknowledging": {
			reason:      "Semi-sync, but no replica was acknowledging (the primary had fallen back to asynchronous): none is known to hold every acknowledged commit.",
			synchronous: 1,
			answers:     []answer{down, {state: myReplica(a9, a9, false)}, {state: myReplica(a12, a12, false)}},
			prev:        lost,
			want:        want{to: -1, why: "cannot fail over from orders-0: no standby was synchronous when it was last seen, so none is known to hold every acknowledged commit"},
		},
		"Diverged": {
			reason:  "Two replicas each with a transaction the other lacks: neither may be promoted.",
			answers: []answer{down, {state: myReplica(a9+","+uuidB+":1", a9+","+uuidB+":1", false)}, {state: myReplica(a12, a12, false)}},
			prev:    lost,
			want:    want{to: -1, why: "cannot fail over from orders-0: no replica that may be promoted holds the GTIDs of every other answering replica"},
		},
		"FormerPrimaryIsNoCandidate": {
			reason:  "A server replicating from no one (a former primary that has not rejoined) is neither promoted nor compared with.",
			answers: []answer{down, {state: &xsql.ReplicationState{OwnSource: true, Position: uuidA + ":1-20", Received: uuidA + ":1-20", UserTables: 3}}, {state: myReplica(a9, a9, false)}},
			prev:    lost,
			want:    want{to: 2},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(len(tc.answers), tc.synchronous)
			a := assess(p, tc.answers)
			remember(&a, tc.prev, t0)
			pr, why := decide(p, a, t0, mysqlMoves.pick)
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

func TestRememberMySQLQuorum(t *testing.T) {
	p := params(3, 1)
	primary := mysqlPrimary(uuidA + ":1-9")
	primary.SemiSync = &xsql.SemiSync{SourceEnabled: true, SourceActive: true, WaitFor: 1}
	fallenBack := mysqlPrimary(uuidA + ":1-9")
	fallenBack.SemiSync = &xsql.SemiSync{SourceEnabled: true, WaitFor: 1}
	cases := map[string]struct {
		reason  string
		answers []answer
		want    []string
	}{
		"Acknowledging": {
			reason:  "Replicas that acknowledge while the primary's commits wait for them are its quorum.",
			answers: []answer{{state: primary}, {state: myReplica(uuidA+":1-9", "", true)}, {state: myReplica(uuidA+":1-9", "", false)}},
			want:    []string{"orders-1"},
		},
		"FallenBack": {
			reason:  "A primary that fell back to asynchronous (no acknowledgement within its timeout) has no quorum, whatever its replicas say.",
			answers: []answer{{state: fallenBack}, {state: myReplica(uuidA+":1-9", "", true)}, {state: myReplica(uuidA+":1-9", "", true)}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := assess(p, tc.answers)
			remember(&a, v1alpha1.ReplicationObservation{}, time.Now())
			if diff := cmp.Diff(tc.want, a.at.Quorum); diff != "" {
				t.Errorf("%s\nQuorum: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestReopenDue(t *testing.T) {
	readOnly := &xsql.ReplicationState{OwnSource: true, Position: uuidA + ":1-9", UserTables: 3}
	blank := &xsql.ReplicationState{OwnSource: true, Blank: true}
	cases := map[string]struct {
		reason  string
		m       moves
		last    string
		answers []answer
		want    int
	}{
		"RestartedPrimary": {
			reason: "The last primary answers read-only, replicating from no one: it restarted before any failover, and takes writes again.",
			m:      mysqlMoves, last: "orders-1",
			answers: []answer{{state: myReplica(uuidA+":1-9", "", true)}, {state: readOnly}, {err: errRefused}},
			want:    1,
		},
		"NewDatabase": {
			reason:  "No primary was ever seen: the first pod, blank and read-only as every pod starts, is opened.",
			m:       mysqlMoves,
			answers: []answer{{state: blank}, {state: blank}},
			want:    0,
		},
		"NoStatusWithReplicas": {
			reason:  "No primary recorded, but a member replicates: the status was lost, not a new Database; no one is opened.",
			m:       mysqlMoves,
			answers: []answer{{state: readOnly}, {state: myReplica(uuidA+":1-9", "", false)}},
			want:    -1,
		},
		"LastPrimaryDown": {
			reason: "The last primary does not answer: that is for failover to decide.",
			m:      mysqlMoves, last: "orders-1",
			answers: []answer{{state: myReplica(uuidA+":1-9", "", true)}, {err: errRefused}},
			want:    -1,
		},
		"LastPrimaryIsAReplica": {
			reason: "The last primary replicates from someone: it is no primary to open.",
			m:      mysqlMoves, last: "orders-0",
			answers: []answer{{state: myReplica(uuidA+":1-9", "", true)}, {state: readOnly}},
			want:    -1,
		},
		"SomeoneWritable": {
			reason: "A member takes writes: nothing to open.",
			m:      mysqlMoves, last: "orders-1",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: readOnly}},
			want:    -1,
		},
		"PostgreSQL": {
			reason: "PostgreSQL servers do not start read-only: nothing is ever reopened.",
			m:      pgMoves, last: "orders-1",
			answers: []answer{{state: myReplica(uuidA+":1-9", "", true)}, {state: readOnly}},
			want:    -1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(len(tc.answers), 0)
			a := assess(p, tc.answers)
			a.at.LastPrimary = tc.last
			if got := reopenDue(tc.m, p.Members, a); got != tc.want {
				t.Errorf("%s\nreopenDue(...) = %d, want %d", tc.reason, got, tc.want)
			}
		})
	}
}

// newMySQLExternal is an external of MySQL members with the given answers.
func newMySQLExternal(kube client.Client, changes *[]string, answers ...answer) *external {
	e := &external{pods: kube, kube: kube, record: event.NewNopRecorder(), contains: mysql.PositionContains, source: rwService,
		credential: &xsql.Credential{Username: "replication", Password: "pw"}, failsOver: true, moves: mysqlMoves}
	for i, a := range answers {
		e.servers = append(e.servers, &fakeReplicaPromoter{fakeReplicator{fakeServer{name: "orders-" + string(rune('0'+i)), state: a.state, err: a.err, changes: changes}}})
	}
	return e
}

// TestMySQLFailover: a lost MySQL primary past the delay is replaced in
// order: its label off and its still-Ready pod deleted, the acknowledging
// replica given semi-sync and promoted (which makes it writable), then
// labelled, the other replica stopped before and started after, so that it
// reconnects through the Service to the new primary.
func TestMySQLFailover(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	lost := newPod("orders-0", "primary")
	lost.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	kube := newKube(t, lost, newPod("orders-1", "replica"), newPod("orders-2", "replica"))
	var changes []string
	e := newMySQLExternal(kube, &changes, answer{err: errRefused},
		answer{state: myReplica(uuidA+":1-12", uuidA+":1-12", true)}, answer{state: myReplica(uuidA+":1-9", uuidA+":1-9", true)})
	e.now = func() time.Time { return t0 }
	cr := newReplication(3, 1)
	cr.Status.AtProvider = v1alpha1.ReplicationObservation{LastPrimary: "orders-0", PrimaryLostAt: &metav1.Time{Time: t0.Add(-10 * time.Second)}, Quorum: []string{"orders-1", "orders-2"}}

	o, err := e.Observe(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if want := "fail over: primary orders-0 unreachable for 10s; promoted orders-1, the replica whose GTIDs hold every other answering replica's"; o.ResourceUpToDate || !strings.HasPrefix(o.Diff, want) {
		t.Fatalf("Observe: up to date %t, diff %q: want %q", o.ResourceUpToDate, o.Diff, want)
	}
	if _, err := e.Update(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	want := []string{"orders-2: stop replication", "orders-1: semi-sync 1", "orders-1: promote", "orders-2: start replication"}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("failover's changes on the servers, in order: -want, +got:\n%s", diff)
	}
	if err := kube.Get(t.Context(), client.ObjectKey{Namespace: "team-a", Name: "orders-0"}, &corev1.Pod{}); !kerrors.IsNotFound(err) {
		t.Errorf("the lost primary's Ready pod: want it deleted (fenced), got %v", err)
	}
	if got := labels(t, kube, "orders-1")["orders-1"][v1alpha1.LabelRole]; got != v1alpha1.RolePrimary {
		t.Errorf("orders-1's role label: got %q, want primary", got)
	}
	if f := cr.Status.AtProvider.LastFailover; f == nil || f.From != "orders-0" || f.To != "orders-1" || cr.Status.AtProvider.LastPrimary != "orders-1" || cr.Status.AtProvider.PrimaryLostAt != nil {
		t.Errorf("status after the failover: %+v", cr.Status.AtProvider)
	}
}

// TestMySQLSwitchover: the primary loses its label and is demoted before
// the replica is promoted; the other replica reconnects, and the old
// primary replicates from the read-write Service.
func TestMySQLSwitchover(t *testing.T) {
	kube := newKube(t, newPod("orders-0", "primary"), newPod("orders-1", "replica"), newPod("orders-2", "replica"))
	var changes []string
	primary := mysqlPrimary(uuidA + ":1-9")
	primary.SemiSync = &xsql.SemiSync{SourceEnabled: true, SourceActive: true, WaitFor: 1}
	e := newMySQLExternal(kube, &changes, answer{state: primary},
		answer{state: myReplica(uuidA+":1-9", "", true)}, answer{state: myReplica(uuidA+":1-9", "", true)})
	cr := newReplication(3, 1)
	cr.Spec.ForProvider.SwitchoverTo = "orders-2"

	o, err := e.Observe(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if o.Diff != "switch over from member 0 to member 2" {
		t.Fatalf("Observe: diff %q, want the switchover", o.Diff)
	}
	// While demoting, no one is labelled primary.
	if _, err := e.Update(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"orders-0: demote",
		"orders-1: stop replication",
		"orders-2: semi-sync 1",
		"orders-2: promote",
		"orders-1: start replication",
		"orders-0: replicate from orders.team-a.svc.cluster.local as replication semi-sync on",
	}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("switchover's changes on the servers, in order: -want, +got:\n%s", diff)
	}
	got := labels(t, kube, "orders-0", "orders-2")
	if got["orders-0"][v1alpha1.LabelRole] != "" || got["orders-2"][v1alpha1.LabelRole] != v1alpha1.RolePrimary {
		t.Errorf("role labels after the switchover: orders-0 %q, orders-2 %q; want none and primary", got["orders-0"][v1alpha1.LabelRole], got["orders-2"][v1alpha1.LabelRole])
	}
	if s := cr.Status.AtProvider.LastSwitchover; s == nil || s.From != "orders-0" || s.To != "orders-2" || cr.Status.AtProvider.Primary != "orders-2" {
		t.Errorf("status after the switchover: %+v", cr.Status.AtProvider)
	}
}

// TestMySQLSwitchoverWaitsForTarget: a target that never executes the old
// primary's transactions is not promoted.
func TestMySQLSwitchoverWaitsForTarget(t *testing.T) {
	kube := newKube(t, newPod("orders-0", "primary"), newPod("orders-1", "replica"))
	var changes []string
	e := newMySQLExternal(kube, &changes, answer{state: mysqlPrimary(uuidA + ":1-9")}, answer{state: myReplica(uuidA+":1-8", "", false)})
	e.answers = []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: myReplica(uuidA+":1-8", "", false)}}
	cr := newReplication(2, 0)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	err := e.switchoverReplicas(ctx, cr, switchover{from: 0, to: 1})
	if err == nil || !strings.Contains(err.Error(), "did not execute the old primary's transactions") {
		t.Errorf("switchoverReplicas: err %v, want it waiting for the target", err)
	}
	if diff := cmp.Diff([]string{"orders-0: demote"}, changes); diff != "" {
		t.Errorf("nothing but the demotion: -want, +got:\n%s", diff)
	}
}

// TestMySQLReopen: a primary that restarted read-only before any failover
// is made to take writes again, semi-sync first.
func TestMySQLReopen(t *testing.T) {
	kube := newKube(t, newPod("orders-0", "primary"), newPod("orders-1", "replica"))
	var changes []string
	restarted := &xsql.ReplicationState{OwnSource: true, Position: uuidA + ":1-9", UserTables: 3, SemiSync: &xsql.SemiSync{WaitFor: 1}}
	e := newMySQLExternal(kube, &changes, answer{state: restarted}, answer{state: myReplica(uuidA+":1-9", "", false)})
	cr := newReplication(2, 1)
	cr.Status.AtProvider.LastPrimary = "orders-0"
	o, err := e.Observe(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if o.Diff != "make member 0, the primary, take writes again: it started read-only" {
		t.Fatalf("Observe: diff %q", o.Diff)
	}
	if _, err := e.Update(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"orders-1: stop replication", "orders-0: semi-sync 1", "orders-0: promote", "orders-1: start replication"}, changes); diff != "" {
		t.Errorf("reopen's changes, in order: -want, +got:\n%s", diff)
	}
	if c := cr.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionFalse || c.Message != "orders-0, the primary, started read-only: making it take writes" {
		t.Errorf("Ready while the primary is being reopened: %+v", c)
	}
}

// TestMySQLFormerPrimaryReported: after an asynchronous failover on
// MariaDB (no CLONE), the old primary holding transactions the new one
// lacks is reported in its member status and the Ready condition, and
// nothing is done to it.
func TestMySQLFormerPrimaryReported(t *testing.T) {
	kube := newKube(t, newPod("orders-0", ""), newPod("orders-1", "primary"))
	var changes []string
	e := newMySQLExternal(kube, &changes,
		answer{state: &xsql.ReplicationState{OwnSource: true, Position: "0-100-57", UserTables: 3, SemiSync: &xsql.SemiSync{}}},
		answer{state: &xsql.ReplicationState{OwnSource: true, Primary: true, Position: "0-101-50", UserTables: 3, SemiSync: &xsql.SemiSync{}}})
	cr := newReplication(2, 0)
	cr.Status.AtProvider = v1alpha1.ReplicationObservation{LastPrimary: "orders-1", Primary: "orders-1", LastFailover: &v1alpha1.Failover{From: "orders-0", To: "orders-1"}}
	o, err := e.Observe(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Update(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 0 {
		t.Errorf("changes to the servers: %v, want none (diff %q)", changes, o.Diff)
	}
	const msg = "former primary: holds transactions the primary orders-1 does not have"
	if m := cr.Status.AtProvider.Members[0].Message; !strings.HasPrefix(m, msg) {
		t.Errorf("orders-0's status message: %q, want it to start %q", m, msg)
	}
	if c := cr.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, msg) {
		t.Errorf("Ready: %+v, want False saying %q", c, msg)
	}
}

func TestMySQLFailoverSurfacesErrors(t *testing.T) {
	kube := newKube(t, newPod("orders-0", ""), newPod("orders-1", "replica"))
	var changes []string
	e := newMySQLExternal(kube, &changes, answer{err: errRefused}, answer{state: myReplica(uuidA+":1-9", "", false)})
	e.servers[1] = &failingPromoter{fakeReplicaPromoter{fakeReplicator{fakeServer{name: "orders-1", changes: &changes}}}}
	cr := newReplication(2, 0)
	err := e.failoverReplicas(t.Context(), cr, promotion{to: 1, from: "orders-0"})
	if err == nil || !strings.HasPrefix(err.Error(), "cannot promote orders-1") {
		t.Errorf("failoverReplicas: err %v, want it to say it cannot promote", err)
	}
	if got := labels(t, kube, "orders-1")["orders-1"][v1alpha1.LabelRole]; got == v1alpha1.RolePrimary {
		t.Errorf("a replica that could not be promoted is labelled primary")
	}
}

type failingPromoter struct {
	fakeReplicaPromoter
}

func (f *failingPromoter) Promote(context.Context) error { return errors.New("read_only is locked") }
