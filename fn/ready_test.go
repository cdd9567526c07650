package fn

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// TestStatefulSetReady: a StatefulSet is ready only for the spec being
// applied. The reconcile that applies a new spec observes the StatefulSet as
// it was, rolled out and ready; calling that ready would report the Database
// Ready for a generation whose rollout has not begun.
func TestStatefulSetReady(t *testing.T) {
	spec := func(version string, replicas int32) v1.DatabaseSpec {
		return v1.DatabaseSpec{
			Type: v1.MySQL, Version: version, Replicas: ptr.To(replicas), Environment: v1.Staging,
			Storage: v1.Storage{Size: "1Gi"},
		}
	}
	// observed is the StatefulSet applied for s, after the controller rolled
	// it out: every replica ready and updated.
	observed := func(s v1.DatabaseSpec) *appsv1.StatefulSet {
		o := StatefulSet(params(t, s))
		o.Generation = 4
		o.Status = appsv1.StatefulSetStatus{
			ObservedGeneration: 4, Replicas: *s.Replicas, ReadyReplicas: *s.Replicas, UpdatedReplicas: *s.Replicas,
			CurrentRevision: "r4", UpdateRevision: "r4",
		}
		return o
	}
	withoutDigest := func(o *appsv1.StatefulSet) *appsv1.StatefulSet {
		o.Annotations = nil
		return o
	}
	rolling := func(o *appsv1.StatefulSet) *appsv1.StatefulSet {
		o.Status.UpdatedReplicas, o.Status.UpdateRevision = 1, "r5"
		return o
	}
	// onDelete is a StatefulSet the provider rolled: every replica updated,
	// and currentRevision, which OnDelete never moves, still the old one.
	onDelete := func(o *appsv1.StatefulSet) *appsv1.StatefulSet {
		o.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
		o.Status.CurrentRevision = "r3"
		return o
	}
	unseen := func(o *appsv1.StatefulSet) *appsv1.StatefulSet {
		o.Generation = 5
		return o
	}

	cases := map[string]struct {
		reason   string
		observed *appsv1.StatefulSet
		want     v1.DatabaseSpec
		ready    resource.Ready
	}{
		"SpecApplied": {
			reason:   "The StatefulSet of the spec being applied, rolled out, is ready.",
			observed: observed(spec("8.0", 2)),
			want:     spec("8.0", 2),
			ready:    resource.ReadyTrue,
		},
		"VersionChangeBeingApplied": {
			reason:   "The reconcile that applies 8.4 observes the 8.0 StatefulSet, ready: it is not ready for 8.4.",
			observed: observed(spec("8.0", 2)),
			want:     spec("8.4", 2),
			ready:    resource.ReadyFalse,
		},
		"ScaleBeingApplied": {
			reason:   "Scaling is a new spec too.",
			observed: observed(spec("8.4", 1)),
			want:     spec("8.4", 3),
			ready:    resource.ReadyFalse,
		},
		"NotYetSeenByTheController": {
			reason:   "The spec is applied but the controller has not observed it.",
			observed: unseen(observed(spec("8.4", 2))),
			want:     spec("8.4", 2),
			ready:    resource.ReadyFalse,
		},
		"RollingOut": {
			reason:   "A rollout in progress is not ready.",
			observed: rolling(observed(spec("8.4", 2))),
			want:     spec("8.4", 2),
			ready:    resource.ReadyFalse,
		},
		"RolledOnDelete": {
			reason:   "OnDelete leaves currentRevision behind: every replica updated and ready is rolled out.",
			observed: onDelete(observed(spec("8.4", 2))),
			want:     spec("8.4", 2),
			ready:    resource.ReadyTrue,
		},
		"AppliedByAnOlderFunction": {
			reason:   "A StatefulSet without a digest (an older function applied it) is judged by its status alone, so upgrading the function flips no Database to not ready.",
			observed: withoutDigest(observed(spec("8.0", 2))),
			want:     spec("8.4", 2),
			ready:    resource.ReadyTrue,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			o := Observed{Exists: map[resource.Name]bool{rnStatefulSet: true}, StatefulSet: tc.observed}
			desired, err := ToComposed(StatefulSet(params(t, tc.want)))
			if err != nil {
				t.Fatal(err)
			}
			s, err := structpb.NewStruct(desired.Object)
			if err != nil {
				t.Fatal(err)
			}
			k, ok := kindOf(rnStatefulSet)
			if !ok {
				t.Fatal("kindOf(statefulset): no row")
			}
			got := k.ReadyOf(o, rnStatefulSet, WantOf(*tc.want.Replicas, s))
			if diff := cmp.Diff(tc.ready, got); diff != "" {
				t.Errorf("%s\nReady(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestStatefulSetDigest(t *testing.T) {
	spec := func(replicas int32) v1.DatabaseSpec {
		return v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Replicas: ptr.To(replicas), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}}
	}
	digest := func(s v1.DatabaseSpec) string { return StatefulSet(params(t, s)).Annotations[annotationSpecDigest] }
	if d := digest(spec(2)); len(d) != 16 {
		t.Errorf("StatefulSet(...): want a 16 hex digit spec digest annotation, got %q", d)
	}
	if a, b := digest(spec(2)), digest(spec(2)); a != b {
		t.Error("StatefulSet(...): equal Params gave different digests")
	}
	if digest(spec(2)) == digest(spec(3)) {
		t.Error("StatefulSet(...): 3 replicas gave the digest of 2")
	}
}
