package replication

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

func i64(v int64) *int64 { return &v }

func params(n int, synchronous int) v1alpha1.ReplicationParameters {
	p := v1alpha1.ReplicationParameters{SlotPrefix: "orders_", Synchronous: synchronous}
	for i := range n {
		name := "orders-" + string(rune('0'+i))
		p.Members = append(p.Members, v1alpha1.ReplicationMember{Name: name, Host: name + ".orders-headless.team-a.svc.cluster.local"})
	}
	return p
}

// primaryState is a primary streaming to the named standbys, each with a
// slot.
func primaryState(streaming ...string) *xsql.ReplicationState {
	s := &xsql.ReplicationState{Primary: true, Timeline: 1}
	for _, n := range streaming {
		s.Replicas = append(s.Replicas, xsql.Replica{Name: n, State: "streaming", SyncState: "async", LagBytes: i64(16), LagMillis: i64(2)})
	}
	s.Slots = []xsql.Slot{
		{Name: "orders_1", Active: true, WALStatus: "reserved", RetainedBytes: i64(16)},
		{Name: "orders_2", Active: true, WALStatus: "reserved", RetainedBytes: i64(16)},
	}
	return s
}

func standbyState(receiver string) *xsql.ReplicationState {
	return &xsql.ReplicationState{Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060", Receiver: receiver}
}

var errRefused = errors.New("dial tcp 10.0.0.2:5432: connect: connection refused")

func TestAssess(t *testing.T) {
	standby := func(name string) v1alpha1.MemberObservation {
		return v1alpha1.MemberObservation{Name: name, Role: v1alpha1.MemberStandby, Streaming: true, SyncState: "async",
			Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060", LagBytes: 16, LagMillis: 2}
	}
	slots := []v1alpha1.SlotObservation{
		{Name: "orders_1", Active: true, WALStatus: "reserved", RetainedBytes: 16},
		{Name: "orders_2", Active: true, WALStatus: "reserved", RetainedBytes: 16},
	}
	type want struct {
		at    v1alpha1.ReplicationObservation
		ready string
	}
	cases := map[string]struct {
		reason  string
		answers []answer
		want    want
	}{
		"Healthy": {
			reason:  "One primary streaming to every standby is available; a standby's lag is what the primary says.",
			answers: []answer{{state: primaryState("orders-1", "orders-2")}, {state: standbyState("streaming")}, {state: standbyState("streaming")}},
			want: want{at: v1alpha1.ReplicationObservation{
				Primary: "orders-0", Slots: slots,
				Members: []v1alpha1.MemberObservation{{Name: "orders-0", Role: v1alpha1.MemberPrimary, Timeline: 1}, standby("orders-1"), standby("orders-2")},
			}},
		},
		"StandbyDown": {
			reason:  "An unreachable standby does not fail the others; its lag is what its slot retains, and the message names it.",
			answers: []answer{{state: primaryState("orders-1")}, {state: standbyState("streaming")}, {err: errRefused}},
			want: want{
				at: v1alpha1.ReplicationObservation{
					Primary: "orders-0", Slots: slots,
					Members: []v1alpha1.MemberObservation{{Name: "orders-0", Role: v1alpha1.MemberPrimary, Timeline: 1}, standby("orders-1"),
						{Name: "orders-2", Role: v1alpha1.MemberUnreachable, LagBytes: 16, Message: errRefused.Error()}},
				},
				ready: "not streaming from orders-0: orders-2 (" + errRefused.Error() + ")",
			},
		},
		"StandbyNotStreaming": {
			reason:  "A reachable standby the primary does not stream to says what its WAL receiver does.",
			answers: []answer{{state: primaryState("orders-1")}, {state: standbyState("streaming")}, {state: standbyState("")}},
			want: want{
				at: v1alpha1.ReplicationObservation{
					Primary: "orders-0", Slots: slots,
					Members: []v1alpha1.MemberObservation{{Name: "orders-0", Role: v1alpha1.MemberPrimary, Timeline: 1}, standby("orders-1"),
						{Name: "orders-2", Role: v1alpha1.MemberStandby, Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060", LagBytes: 16,
							Message: "not streaming from primary orders-0: WAL receiver not running"}},
				},
				ready: "not streaming from orders-0: orders-2 (not streaming from primary orders-0: WAL receiver not running)",
			},
		},
		"CatchingUp": {
			reason: "A standby still catching up does not stream yet.",
			answers: []answer{{state: &xsql.ReplicationState{Primary: true, Timeline: 1, Replicas: []xsql.Replica{{Name: "orders-1", State: "catchup", SyncState: "async", LagBytes: i64(4096)}}}},
				{state: standbyState("streaming")}},
			want: want{
				at: v1alpha1.ReplicationObservation{
					Primary: "orders-0",
					Members: []v1alpha1.MemberObservation{{Name: "orders-0", Role: v1alpha1.MemberPrimary, Timeline: 1},
						{Name: "orders-1", Role: v1alpha1.MemberStandby, SyncState: "async", Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060", LagBytes: 4096, Message: "WAL sender state catchup"}},
				},
				ready: "not streaming from orders-0: orders-1 (WAL sender state catchup)",
			},
		},
		"SplitBrain": {
			reason: "Two servers out of recovery is split brain: neither is the primary, and no slots or settings are reported.",
			answers: []answer{{state: primaryState("orders-2")}, {state: &xsql.ReplicationState{Primary: true, Timeline: 2}},
				{state: standbyState("streaming")}},
			want: want{
				at: v1alpha1.ReplicationObservation{Members: []v1alpha1.MemberObservation{
					{Name: "orders-0", Role: v1alpha1.MemberPrimary, Timeline: 1, Message: "split brain: out of recovery together with orders-1"},
					{Name: "orders-1", Role: v1alpha1.MemberPrimary, Timeline: 2, Message: "split brain: out of recovery together with orders-0"},
					{Name: "orders-2", Role: v1alpha1.MemberStandby, Streaming: true, Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060"},
				}},
				ready: "split brain: orders-0 and orders-1 are all out of recovery; the provider changes nothing until only one is",
			},
		},
		"NoPrimary": {
			reason:  "Without a reachable primary a standby's own receiver says whether it streams.",
			answers: []answer{{err: errRefused}, {state: standbyState("streaming")}, {state: standbyState("waiting")}},
			want: want{
				at: v1alpha1.ReplicationObservation{Members: []v1alpha1.MemberObservation{
					{Name: "orders-0", Role: v1alpha1.MemberUnreachable, Message: errRefused.Error()},
					{Name: "orders-1", Role: v1alpha1.MemberStandby, Streaming: true, Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060"},
					{Name: "orders-2", Role: v1alpha1.MemberStandby, Timeline: 1, ReceivedLSN: "0/3000060", ReplayedLSN: "0/3000060", Message: "WAL receiver waiting"},
				}},
				ready: "no primary: orders-0 is unreachable, orders-1 is standby, orders-2 is standby",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := assess(params(len(tc.answers), 0), tc.answers)
			got := want{at: a.at, ready: readyMessage(a)}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nassess(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestLabelChanges(t *testing.T) {
	healthy := []answer{{state: primaryState("orders-1", "orders-2")}, {state: standbyState("streaming")}, {state: standbyState("streaming")}}
	all := func(roles ...string) map[string]pod {
		out := map[string]pod{}
		for i, r := range roles {
			out["orders-"+string(rune('0'+i))] = pod{exists: true, role: r}
		}
		return out
	}
	cases := map[string]struct {
		reason  string
		answers []answer
		pods    map[string]pod
		want    []labelChange
	}{
		"FirstLabels": {
			reason:  "Unlabeled Pods get primary and replica.",
			answers: healthy,
			pods:    all("", "", ""),
			want:    []labelChange{{pod: "orders-0", value: "primary"}, {pod: "orders-1", value: "replica"}, {pod: "orders-2", value: "replica"}},
		},
		"Steady": {
			reason:  "Pods labeled as they should be need nothing.",
			answers: healthy,
			pods:    all("primary", "replica", "replica"),
		},
		"NotStreaming": {
			reason:  "A reachable standby that does not stream leaves the read-only Service.",
			answers: []answer{{state: primaryState("orders-1")}, {state: standbyState("streaming")}, {state: standbyState("")}},
			pods:    all("primary", "replica", "replica"),
			want:    []labelChange{{pod: "orders-2"}},
		},
		"Unreachable": {
			reason:  "An unreachable member keeps its label: the provider failing to reach it is not the member failing.",
			answers: []answer{{err: errRefused}, {state: standbyState("streaming")}, {err: errRefused}},
			pods:    all("primary", "replica", "replica"),
		},
		"Promoted": {
			reason:  "After a failover the new primary is labeled primary and the old one, now a standby, replica.",
			answers: []answer{{state: standbyState("streaming")}, {state: primaryState("orders-0", "orders-2")}, {state: standbyState("streaming")}},
			pods:    all("primary", "replica", "replica"),
			want:    []labelChange{{pod: "orders-0", value: "replica"}, {pod: "orders-1", value: "primary"}},
		},
		"SplitBrain": {
			reason:  "With two primaries no label changes, and neither is labeled primary anew.",
			answers: []answer{{state: primaryState()}, {state: primaryState()}, {state: standbyState("")}},
			pods:    all("", "", "replica"),
		},
		"MissingPod": {
			reason:  "A Pod that does not exist needs no label.",
			answers: healthy,
			pods:    map[string]pod{"orders-0": {exists: true, role: "primary"}, "orders-1": {exists: true, role: "replica"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := labelChanges(assess(params(len(tc.answers), 0), tc.answers), tc.pods)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(labelChange{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nlabelChanges(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestStaleSlots(t *testing.T) {
	cases := map[string]struct {
		reason  string
		members int
		slots   []xsql.Slot
		want    []string
	}{
		"ScaledAway": {
			reason:  "An inactive slot of an ordinal no member has is stale.",
			members: 2,
			slots:   []xsql.Slot{{Name: "orders_1", Active: true}, {Name: "orders_2"}},
			want:    []string{"orders_2"},
		},
		"MemberDown": {
			reason:  "A current member's slot is kept while it is down.",
			members: 3,
			slots:   []xsql.Slot{{Name: "orders_1"}, {Name: "orders_2"}},
		},
		"FormerPrimary": {
			reason:  "Ordinal 0 is a member too, once it is a standby.",
			members: 2,
			slots:   []xsql.Slot{{Name: "orders_0"}},
		},
		"Active": {
			reason:  "An active slot is never dropped, whoever uses it.",
			members: 2,
			slots:   []xsql.Slot{{Name: "orders_7", Active: true}},
		},
		"Foreign": {
			reason:  "Slots not named <prefix><digits> are not the provider's.",
			members: 1,
			slots:   []xsql.Slot{{Name: "orders_backup"}, {Name: "orders_"}, {Name: "orders_2x"}, {Name: "other_2"}, {Name: "xorders_2"}, {Name: "orders_99999999999999999999"}},
		},
		"LeadingZero": {
			reason:  "orders_01 is ordinal 1's, which is a member: kept.",
			members: 2,
			slots:   []xsql.Slot{{Name: "orders_01"}, {Name: "orders_03"}},
			want:    []string{"orders_03"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := staleSlots("orders_", params(tc.members, 0).Members, tc.slots)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nstaleSlots(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestClampMessage(t *testing.T) {
	cases := map[string]struct {
		reason                string
		synchronous, standbys int
		want                  string
	}{
		"Fits":    {reason: "Waiting for as many standbys as there are needs no note.", synchronous: 2, standbys: 2},
		"Async":   {reason: "Asynchronous needs no note.", standbys: 0},
		"Clamped": {reason: "More than there are is clamped, and said.", synchronous: 3, standbys: 2, want: "spec.forProvider.synchronous is 3 but there are 2 standbys: commits wait for 2"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, clampMessage(tc.synchronous, tc.standbys)); diff != "" {
				t.Errorf("%s\nclampMessage(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
