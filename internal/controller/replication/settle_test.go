package replication

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

func TestSettle(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 17, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { return &metav1.Time{Time: t0.Add(d)} }
	observed := func(measuredAt *metav1.Time, lsn string, lagMillis, lagBytes, retained int64, mutate ...func(*v1alpha1.ReplicationObservation)) v1alpha1.ReplicationObservation {
		o := v1alpha1.ReplicationObservation{
			Primary: "orders-0",
			Members: []v1alpha1.MemberObservation{
				{Name: "orders-0", Role: v1alpha1.MemberPrimary, Timeline: 1},
				{Name: "orders-1", Role: v1alpha1.MemberStandby, Streaming: true, SyncState: "quorum", Timeline: 1,
					ReceivedLSN: lsn, ReplayedLSN: lsn, LagMillis: lagMillis, LagBytes: lagBytes},
			},
			Slots:      []v1alpha1.SlotObservation{{Name: "orders_1", Active: true, WALStatus: "reserved", RetainedBytes: retained}},
			MeasuredAt: measuredAt,
		}
		for _, m := range mutate {
			m(&o)
		}
		return o
	}
	prev := observed(at(0), "0/3000060", 2, 16, 16)

	cases := map[string]struct {
		reason string
		prev   v1alpha1.ReplicationObservation
		now    time.Duration
		at     v1alpha1.ReplicationObservation
		want   v1alpha1.ReplicationObservation
	}{
		"FirstObservation": {
			reason: "Measures never written before are written, and when.",
			prev:   v1alpha1.ReplicationObservation{},
			now:    time.Second,
			at:     observed(nil, "0/3000100", 3, 32, 32),
			want:   observed(at(time.Second), "0/3000100", 3, 32, 32),
		},
		"SteadyKeepsTheLastMeasures": {
			reason: "Within statusRefresh, measures that stayed on their steps are not written again: the status does not change.",
			prev:   prev,
			now:    29 * time.Second,
			at:     observed(nil, "0/3000100", 900, 60<<10, 60<<10),
			want:   prev,
		},
		"RefreshedAfterStatusRefresh": {
			reason: "Every statusRefresh the measures are written again.",
			prev:   prev,
			now:    statusRefresh,
			at:     observed(nil, "0/3000100", 3, 32, 32),
			want:   observed(at(statusRefresh), "0/3000100", 3, 32, 32),
		},
		"LagOnAnotherStep": {
			reason: "A lag that grew past 1 s is written at once.",
			prev:   prev,
			now:    2 * time.Second,
			at:     observed(nil, "0/3000100", 1500, 16, 16),
			want:   observed(at(2*time.Second), "0/3000100", 1500, 16, 16),
		},
		"LagWithinItsStep": {
			reason: "A lag that moves within its step (1 s to 2 s) is not written.",
			prev:   observed(at(0), "0/3000060", 1200, 16, 16),
			now:    2 * time.Second,
			at:     observed(nil, "0/3000100", 1900, 16, 16),
			want:   observed(at(0), "0/3000060", 1200, 16, 16),
		},
		"BytesOnAnotherStep": {
			reason: "A standby that fell 128 KiB behind is written at once.",
			prev:   prev,
			now:    2 * time.Second,
			at:     observed(nil, "0/3000100", 2, 128<<10, 16),
			want:   observed(at(2*time.Second), "0/3000100", 2, 128<<10, 16),
		},
		"RoleChanged": {
			reason: "A member that changed role is written at once, with fresh measures.",
			prev:   prev,
			now:    time.Second,
			at: observed(nil, "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) {
				o.Members[1] = v1alpha1.MemberObservation{Name: "orders-1", Role: v1alpha1.MemberUnreachable, LagBytes: 32, Message: "connection refused"}
			}),
			want: observed(at(time.Second), "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) {
				o.Members[1] = v1alpha1.MemberObservation{Name: "orders-1", Role: v1alpha1.MemberUnreachable, LagBytes: 32, Message: "connection refused"}
			}),
		},
		"SyncStateChanged": {
			reason: "A standby that stopped being synchronous is written at once.",
			prev:   prev,
			now:    time.Second,
			at:     observed(nil, "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) { o.Members[1].SyncState = "async" }),
			want:   observed(at(time.Second), "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) { o.Members[1].SyncState = "async" }),
		},
		"SlotChanged": {
			reason: "A slot whose WAL status changed is written at once.",
			prev:   prev,
			now:    time.Second,
			at:     observed(nil, "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) { o.Slots[0].WALStatus = "extended" }),
			want:   observed(at(time.Second), "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) { o.Slots[0].WALStatus = "extended" }),
		},
		"MemberAdded": {
			reason: "A new member is written at once.",
			prev:   prev,
			now:    time.Second,
			at: observed(nil, "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) {
				o.Members = append(o.Members, v1alpha1.MemberObservation{Name: "orders-2", Role: v1alpha1.MemberStandby})
			}),
			want: observed(at(time.Second), "0/3000100", 3, 32, 32, func(o *v1alpha1.ReplicationObservation) {
				o.Members = append(o.Members, v1alpha1.MemberObservation{Name: "orders-2", Role: v1alpha1.MemberStandby})
			}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := tc.at
			fresh := tc.at.Members[1]
			settle(&got, tc.prev, t0.Add(tc.now))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nsettle(...): -want, +got:\n%s", tc.reason, diff)
			}
			if tc.at.Members[1] != fresh {
				t.Errorf("%s\nsettle(...) changed the assessment it was given: the controller decides on fresh measures", tc.reason)
			}
		})
	}
}

func TestScaleStep(t *testing.T) {
	cases := map[string]struct {
		v    int64
		want int
	}{
		"Below":         {v: 999, want: 0},
		"One":           {v: 1000, want: 1},
		"BelowTwo":      {v: 1999, want: 1},
		"Two":           {v: 2000, want: 2},
		"Five":          {v: 5000, want: 3},
		"Ten":           {v: 10000, want: 4},
		"FiftyThousand": {v: 50000, want: 6},
		"HugeEnds":      {v: 1 << 62, want: 46}, // the last step it counts to without overflow
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := scaleStep(tc.v, lagStep); got != tc.want {
				t.Errorf("scaleStep(%d, %d): want %d, got %d", tc.v, lagStep, tc.want, got)
			}
		})
	}
}
