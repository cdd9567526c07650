package replication

import (
	"context"
	"sync"
	"testing"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	"github.com/crossplane/crossplane-runtime/v2/pkg/test"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/postgres"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// A fakeServer answers Observe with its state or error and records what it
// is asked to change into changes.
type fakeServer struct {
	name    string
	state   *xsql.ReplicationState
	err     error
	changes *[]string
	// detachedState is what it says once detached, when set.
	detachedState *xsql.ReplicationState
	detached      bool
	// hang makes Observe wait for its context to end.
	hang bool
	// detachErr fails Detach; detachedErr fails Observe once detached.
	detachErr, detachedErr error
}

// changesMu serialises fakeServers' records: a failover detaches
// standbys at once.
var changesMu sync.Mutex

func (f *fakeServer) record(change string) {
	changesMu.Lock()
	defer changesMu.Unlock()
	*f.changes = append(*f.changes, change)
}

func (f *fakeServer) Observe(ctx context.Context) (*xsql.ReplicationState, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.detached && f.detachedErr != nil {
		return nil, f.detachedErr
	}
	if f.detached && f.detachedState != nil {
		return f.detachedState, nil
	}
	return f.state, f.err
}

func (f *fakeServer) Detach(context.Context) error {
	if f.detachErr != nil {
		return f.detachErr
	}
	f.detached = true
	f.record(f.name + ": detach")
	return nil
}

func (f *fakeServer) Attach(context.Context) error {
	f.detached = false
	f.record(f.name + ": attach")
	return nil
}

func (f *fakeServer) DropSlot(_ context.Context, name string) error {
	f.record(f.name + ": drop slot " + name)
	return nil
}

func (f *fakeServer) SetSynchronousStandbyNames(_ context.Context, v string) error {
	f.record(f.name + ": synchronous_standby_names = " + v)
	return nil
}

func (f *fakeServer) CreateSlot(_ context.Context, name string) error {
	f.record(f.name + ": create slot " + name)
	return nil
}

func (f *fakeServer) Promote(context.Context) error {
	f.record(f.name + ": promote")
	return nil
}

func (f *fakeServer) MarkDemoted(context.Context) error {
	f.record(f.name + ": mark demoted")
	return nil
}

func (f *fakeServer) RestartReceiver(context.Context) error {
	f.record(f.name + ": restart receiver")
	return nil
}

func newReplication(members, synchronous int) *v1alpha1.Replication {
	return &v1alpha1.Replication{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "orders", UID: "uid"},
		Spec: v1alpha1.ReplicationSpec{
			ProviderConfigReference: &xpv2.ProviderConfigReference{Kind: "ProviderConfig", Name: "default"},
			ForProvider:             params(members, synchronous),
		},
	}
}

// newPod is a member's Pod with the role label (none when empty) and a
// label of the StatefulSet's, which the controller must leave alone.
func newPod(name, role string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, Labels: map[string]string{"app.kubernetes.io/instance": "orders"}}}
	if role != "" {
		p.Labels[v1alpha1.LabelRole] = role
	}
	return p
}

func newKube(t *testing.T, pods ...*corev1.Pod) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(s)
	for _, p := range pods {
		b = b.WithObjects(p)
	}
	return b.Build()
}

func labels(t *testing.T, kube client.Client, names ...string) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, n := range names {
		p := &corev1.Pod{}
		if err := kube.Get(t.Context(), client.ObjectKey{Namespace: "team-a", Name: n}, p); err != nil {
			t.Fatal(err)
		}
		out[n] = p.Labels
	}
	return out
}

func newExternal(kube client.Client, changes *[]string, answers ...answer) *external {
	e := &external{pods: kube, kube: kube, render: postgres.SynchronousStandbyNames, record: event.NewNopRecorder(), moves: pgMoves}
	for i, a := range answers {
		e.servers = append(e.servers, &fakeServer{name: "orders-" + string(rune('0'+i)), state: a.state, err: a.err, changes: changes})
	}
	return e
}

func TestObserve(t *testing.T) {
	healthy := []answer{{state: primaryState("orders-1", "orders-2")}, {state: standbyState("streaming")}, {state: standbyState("streaming")}}
	labeled := []*corev1.Pod{newPod("orders-0", "primary"), newPod("orders-1", "replica"), newPod("orders-2", "replica")}
	withSync := func(v string, a ...answer) []answer {
		s := *a[0].state
		s.SynchronousStandbyNames = v
		return append([]answer{{state: &s}}, a[1:]...)
	}
	withSlot := func(slot xsql.Slot, a ...answer) []answer {
		s := *a[0].state
		s.Slots = append(append([]xsql.Slot{}, s.Slots...), slot)
		return append([]answer{{state: &s}}, a[1:]...)
	}
	type want struct {
		o     managed.ExternalObservation
		ready xpv2.Condition
	}
	cases := map[string]struct {
		reason  string
		cr      *v1alpha1.Replication
		pods    []*corev1.Pod
		answers []answer
		want    want
	}{
		"UpToDate": {
			reason:  "Labeled Pods, no stale slot and asynchronous replication as asked: up to date and Available.",
			cr:      newReplication(3, 0),
			pods:    labeled,
			answers: healthy,
			want:    want{o: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, ready: xpv2.Available()},
		},
		"FirstPoll": {
			reason:  "Unlabeled Pods and a synchronous request are what Update will change, listed in the diff.",
			cr:      newReplication(3, 1),
			pods:    []*corev1.Pod{newPod("orders-0", ""), newPod("orders-1", ""), newPod("orders-2", "")},
			answers: healthy,
			want: want{
				o: managed.ExternalObservation{ResourceExists: true, Diff: "label Pod orders-0 database.example.com/role=primary; " +
					"label Pod orders-1 database.example.com/role=replica; label Pod orders-2 database.example.com/role=replica; " +
					`set synchronous_standby_names to "ANY 1 (\"orders-1\", \"orders-2\")"`},
				ready: xpv2.Available(),
			},
		},
		"SynchronousUpToDate": {
			reason:  "The setting already as desired needs nothing.",
			cr:      newReplication(3, 1),
			pods:    labeled,
			answers: withSync(`ANY 1 ("orders-1", "orders-2")`, healthy...),
			want:    want{o: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true}, ready: xpv2.Available()},
		},
		"BackToAsynchronous": {
			reason:  "Synchronous 0 with the setting left over resets it.",
			cr:      newReplication(3, 0),
			pods:    labeled,
			answers: withSync(`ANY 1 ("orders-1", "orders-2")`, healthy...),
			want:    want{o: managed.ExternalObservation{ResourceExists: true, Diff: `set synchronous_standby_names to ""`}, ready: xpv2.Available()},
		},
		"Clamped": {
			reason:  "More standbys asked for than exist are clamped, and the Ready condition says so.",
			cr:      newReplication(3, 4),
			pods:    labeled,
			answers: withSync(`ANY 2 ("orders-1", "orders-2")`, healthy...),
			want: want{o: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true},
				ready: xpv2.Available().WithMessage("spec.forProvider.synchronous is 4 but there are 2 standbys: commits wait for 2")},
		},
		"StaleSlot": {
			reason:  "The inactive slot of a standby scaled away is to be dropped.",
			cr:      newReplication(2, 0),
			pods:    labeled[:2],
			answers: withSlot(xsql.Slot{Name: "orders_3"}, healthy[:2]...),
			want: want{o: managed.ExternalObservation{ResourceExists: true, Diff: `drop stale replication slot "orders_3"`},
				ready: xpv2.Available()},
		},
		"StandbyDown": {
			reason: "A standby down keeps its label, its slot and the synchronous setting, and makes the Replication Unavailable.",
			cr:     newReplication(3, 1),
			pods:   labeled,
			answers: withSync(`ANY 1 ("orders-1", "orders-2")`,
				answer{state: primaryState("orders-1")}, answer{state: standbyState("streaming")}, answer{err: errRefused}),
			want: want{o: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true},
				ready: xpv2.Unavailable().WithMessage("not streaming from orders-0: orders-2 (" + errRefused.Error() + ")")},
		},
		"SplitBrain": {
			reason:  "Split brain changes nothing, not even labels, and is reported.",
			cr:      newReplication(3, 1),
			pods:    []*corev1.Pod{newPod("orders-0", "primary"), newPod("orders-1", ""), newPod("orders-2", "")},
			answers: withSlot(xsql.Slot{Name: "orders_9"}, answer{state: primaryState()}, answer{state: primaryState()}, answer{state: standbyState("")}),
			want: want{o: managed.ExternalObservation{ResourceExists: true, ResourceUpToDate: true},
				ready: xpv2.Unavailable().WithMessage("split brain: orders-0 and orders-1 are all out of recovery; the provider changes nothing until only one is")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var changes []string
			e := newExternal(newKube(t, tc.pods...), &changes, tc.answers...)
			o, err := e.Observe(t.Context(), tc.cr)
			if err != nil {
				t.Fatal(err)
			}
			got := want{o: o, ready: tc.cr.GetCondition(xpv2.TypeReady)}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime")); diff != "" {
				t.Errorf("%s\ne.Observe(...): -want, +got:\n%s", tc.reason, diff)
			}
			if len(changes) > 0 {
				t.Errorf("%s\ne.Observe(...) changed servers: %v", tc.reason, changes)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	var changes []string
	kube := newKube(t, newPod("orders-0", ""), newPod("orders-1", "primary"), newPod("orders-2", "replica"))
	// orders-1 was the primary; after a failover orders-0 is, orders-1
	// streams from it, orders-2 is down, and orders-3 was scaled away.
	p := primaryState("orders-1")
	p.Slots = append(p.Slots, xsql.Slot{Name: "orders_3"}, xsql.Slot{Name: "user_slot"})
	e := newExternal(kube, &changes, answer{state: p}, answer{state: standbyState("streaming")}, answer{state: standbyState("")})
	cr := newReplication(3, 1)
	if _, err := e.Observe(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Update(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	// The setting before the labels (no commit through the Service is the
	// primary's alone), the slot after.
	wantChanges := []string{`orders-0: synchronous_standby_names = ANY 1 ("orders-1", "orders-2")`, "orders-0: drop slot orders_3"}
	if diff := cmp.Diff(wantChanges, changes); diff != "" {
		t.Errorf("Update drops the stale slot and sets the setting, on the primary only: -want, +got:\n%s", diff)
	}
	wantLabels := map[string]map[string]string{
		"orders-0": {"app.kubernetes.io/instance": "orders", v1alpha1.LabelRole: "primary"},
		"orders-1": {"app.kubernetes.io/instance": "orders", v1alpha1.LabelRole: "replica"},
		"orders-2": {"app.kubernetes.io/instance": "orders"},
	}
	if diff := cmp.Diff(wantLabels, labels(t, kube, "orders-0", "orders-1", "orders-2")); diff != "" {
		t.Errorf("Update moves the role labels and leaves other labels alone: -want, +got:\n%s", diff)
	}

	// The next poll finds nothing to do.
	e = newExternal(kube, &changes, answer{state: func() *xsql.ReplicationState {
		s := primaryState("orders-1")
		s.SynchronousStandbyNames = `ANY 1 ("orders-1", "orders-2")`
		return s
	}()}, answer{state: standbyState("streaming")}, answer{state: standbyState("")})
	o, err := e.Observe(t.Context(), cr)
	if err != nil {
		t.Fatal(err)
	}
	if !o.ResourceUpToDate {
		t.Errorf("after Update the Replication is up to date, got diff %q", o.Diff)
	}
}

func TestUpdateWithoutPrimary(t *testing.T) {
	e := &external{plan: plan{dropSlots: []string{"orders_3"}}, record: event.NewNopRecorder()}
	if _, err := e.Update(t.Context(), newReplication(2, 0)); err == nil {
		t.Error("Update refuses server changes without an observed primary")
	}
}

func TestDelete(t *testing.T) {
	kube := newKube(t, newPod("orders-0", "primary"), newPod("orders-1", "replica"))
	cr := newReplication(3, 1)
	now := metav1.NewTime(time.Now())
	cr.SetDeletionTimestamp(&now)
	var changes []string
	e := newExternal(kube, &changes)
	o, err := e.Observe(t.Context(), cr)
	if err != nil || !o.ResourceExists {
		t.Fatalf("a Replication being deleted with labeled Pods exists: %+v, %v", o, err)
	}
	if _, err := e.Delete(t.Context(), cr); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"orders-0": {"app.kubernetes.io/instance": "orders"}, "orders-1": {"app.kubernetes.io/instance": "orders"}}
	if diff := cmp.Diff(want, labels(t, kube, "orders-0", "orders-1")); diff != "" {
		t.Errorf("Delete removes the role labels only: -want, +got:\n%s", diff)
	}
	if len(changes) > 0 {
		t.Errorf("Delete changes nothing on the servers, got %v", changes)
	}
	e = newExternal(kube, &changes)
	if o, err := e.Observe(t.Context(), cr); err != nil || o.ResourceExists {
		t.Errorf("once no Pod carries the label the Replication is gone: %+v, %v", o, err)
	}
}

func TestConnect(t *testing.T) {
	pc := func(engine v1alpha1.Engine) *v1alpha1.ProviderConfig {
		return &v1alpha1.ProviderConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "default"},
			Spec: v1alpha1.ProviderConfigSpec{Engine: engine, Host: "orders", TLS: v1alpha1.TLSRequire,
				Credentials: v1alpha1.ProviderCredentials{SecretRef: v1alpha1.AdminSecretReference{Name: "admin"}}},
		}
	}
	admin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "admin"},
		Data: map[string][]byte{"username": []byte("postgres"), "password": []byte("s3cret")}}
	type want struct {
		endpoints []xsql.Endpoint
		err       bool
	}
	cases := map[string]struct {
		reason string
		pc     *v1alpha1.ProviderConfig
		want   want
	}{
		"PostgreSQL": {
			reason: "Each member is reached at its own host and port, with the ProviderConfig's TLS mode and admin login.",
			pc:     pc(v1alpha1.PostgreSQL),
			want: want{endpoints: []xsql.Endpoint{
				{Host: "orders-0.orders-headless.team-a.svc.cluster.local", TLS: v1alpha1.TLSRequire},
				{Host: "orders-1.orders-headless.team-a.svc.cluster.local", Port: 5433, TLS: v1alpha1.TLSRequire},
			}},
		},
		"MySQL": {
			reason: "MySQL members are reached like PostgreSQL's; replicas replicate from the ProviderConfig's host, the read-write Service.",
			pc:     pc(v1alpha1.MySQL),
			want: want{endpoints: []xsql.Endpoint{
				{Host: "orders-0.orders-headless.team-a.svc.cluster.local", TLS: v1alpha1.TLSRequire},
				{Host: "orders-1.orders-headless.team-a.svc.cluster.local", Port: 5433, TLS: v1alpha1.TLSRequire},
			}},
		},
		"NoProviderConfig": {
			reason: "A missing ProviderConfig is an error.",
			want:   want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			objs := []client.Object{admin}
			if tc.pc != nil {
				objs = append(objs, tc.pc)
			}
			s := runtime.NewScheme()
			_ = corev1.AddToScheme(s)   // Registers known types.
			_ = v1alpha1.AddToScheme(s) // Registers known types.
			kube := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
			var got want
			c := &connector{
				kube: kube, pods: kube, record: event.NewNopRecorder(),
				usage: resource.ModernTrackerFn(func(context.Context, resource.ModernManaged) error { return nil }),
				newServer: func(pc *v1alpha1.ProviderConfig, ep xsql.Endpoint, a xsql.Credential) (Server, error) {
					if a != (xsql.Credential{Username: "postgres", Password: "s3cret"}) {
						t.Errorf("admin login %+v", a)
					}
					got.endpoints = append(got.endpoints, ep)
					return NewServer(Options{Pools: xsql.NewPools(time.Minute)})(pc, ep, a)
				},
				render:   func(e v1alpha1.Engine) RenderFn { return engines[e].synchronousStandbyNames },
				contains: func(e v1alpha1.Engine) ContainsFn { return engines[e].contains },
			}
			cr := newReplication(2, 0)
			cr.Spec.ForProvider.Members[1].Port = 5433
			_, err := c.Connect(t.Context(), cr)
			got.err = err != nil
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), test.EquateConditions(), cmpopts.IgnoreFields(xpv2.Condition{}, "LastTransitionTime")); diff != "" {
				t.Errorf("%s\nc.Connect(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
