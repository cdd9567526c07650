package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/controller/replication"
	"github.com/dbplane/dbplane/test/harness"
)

// The Replication controller's tests run its connector and external client
// for real against a composed primary and standbys on loopback (the
// pgCluster), with a fake API server holding the ProviderConfig, its admin
// Secret and the members' Pods.

// A replicationEnv is a fake API server and the Replication connector.
type replicationEnv struct {
	c         *pgCluster
	kube      client.Client
	connector managed.TypedExternalConnector[*v1alpha1.Replication]
	// net is the network between the provider and the servers: the
	// cluster's.
	net *partition
}

// observeTimeout is the provider's default --replication-observe-timeout.
const observeTimeout = 2 * time.Second

func newReplicationEnv(t testing.TB, c *pgCluster) *replicationEnv {
	t.Helper()
	var pods []client.Object
	for _, m := range c.Members {
		pods = append(pods, memberPod(m.Name, m.Index, nil))
	}
	kube := fakeAPI(t, v1alpha1.PostgreSQL, c.Primary().Port, "postgres", testPassword, append(pods, tlsSecret(tlsOf(c.p.TLS)))...)
	pools := xsql.NewPools(time.Minute)
	t.Cleanup(pools.Close)
	net := c.net
	newServer := replication.NewServer(replication.Options{Pools: pools, SQL: xsql.Options{Timeouts: xsql.Timeouts{Call: 10 * time.Second, Dial: 5 * time.Second}, Dial: net.ProviderDial}})
	return &replicationEnv{c: c, kube: kube, net: net, connector: replication.NewConnector(kube, kube, newServer, event.NewNopRecorder(), observeTimeout)}
}

// replicationOf is the Replication the function composes for the cluster,
// with its first n members on loopback and synchronous standbys.
func (r *replicationEnv) replicationOf(n, synchronous int) *v1alpha1.Replication {
	cr := fn.Replication(r.c.p)
	cr.UID = types.UID("uid-replication-" + cr.Name)
	cr.Spec.ProviderConfigReference.Name = "default" // the fake API server's
	cr.Spec.ForProvider.Synchronous = synchronous
	cr.SetGroupVersionKind(v1alpha1.ReplicationGroupVersionKind)
	r.setMembers(cr, n)
	return cr
}

// setMembers keeps the composed members' names for the first n and points
// them at the loopback servers.
func (r *replicationEnv) setMembers(cr *v1alpha1.Replication, n int) {
	composed := fn.Replication(r.c.p).Spec.ForProvider.Members
	cr.Spec.ForProvider.Members = nil
	for i, m := range r.c.Members[:n] {
		if composed[i].Name != m.Name {
			panic("composed member " + composed[i].Name + " is not " + m.Name)
		}
		cr.Spec.ForProvider.Members = append(cr.Spec.ForProvider.Members, v1alpha1.ReplicationMember{Name: m.Name, Host: "127.0.0.1", Port: m.Port})
	}
}

// reconcile runs one reconcile of cr as the managed reconciler does and
// returns its outcome; status changes are kept.
func (r *replicationEnv) reconcile(t testing.TB, cr *v1alpha1.Replication) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ext, err := r.connector.Connect(ctx, cr)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer ext.Disconnect(ctx) //nolint:errcheck // Does nothing.
	o, err := ext.Observe(ctx, cr)
	if err != nil {
		t.Fatalf("Observe: %v", err)
	}
	switch {
	case meta.WasDeleted(cr) && o.ResourceExists:
		if _, err := ext.Delete(ctx, cr); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		return deleting
	case meta.WasDeleted(cr):
		return gone
	case !o.ResourceExists:
		t.Fatalf("a Replication always exists, Observe said it does not")
	case !o.ResourceUpToDate:
		t.Logf("Replication: %s", o.Diff)
		if _, err := ext.Update(ctx, cr); err != nil {
			t.Fatalf("Update: %v", err)
		}
		return updated
	}
	return upToDate
}

// converge reconciles until up to date and returns the outcomes.
func (r *replicationEnv) converge(t testing.TB, cr *v1alpha1.Replication) []string {
	t.Helper()
	var got []string
	for range 4 {
		o := r.reconcile(t, cr)
		got = append(got, o)
		if o == upToDate {
			return got
		}
	}
	t.Fatalf("the Replication did not converge: %v", got)
	return nil
}

// roles are the role labels of the cluster's Pods that exist, "-" for none.
func (r *replicationEnv) roles(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range r.c.Members {
		p := &corev1.Pod{}
		err := r.kube.Get(t.Context(), types.NamespacedName{Namespace: providerNamespace, Name: m.Name}, p)
		if client.IgnoreNotFound(err) != nil {
			t.Fatal(err)
		}
		if err != nil {
			continue
		}
		if p.Labels["app.kubernetes.io/instance"] != "orders" {
			t.Errorf("Pod %s lost a label the controller does not own: %v", m.Name, p.Labels)
		}
		role, ok := p.Labels[v1alpha1.LabelRole]
		if !ok {
			role = "-"
		}
		out[m.Name] = role
	}
	return out
}

func memberOf(cr *v1alpha1.Replication, name string) v1alpha1.MemberObservation {
	for _, m := range cr.Status.AtProvider.Members {
		if m.Name == name {
			return m
		}
	}
	return v1alpha1.MemberObservation{}
}

func slotsOf(t testing.TB, m *pgMember) string {
	t.Helper()
	return m.Query(t, "SELECT string_agg(slot_name || ' ' || active, ',' ORDER BY slot_name) FROM pg_replication_slots")
}

// TestReplicationController runs the Replication controller against a
// composed primary and two standbys: it finds the roles and labels the Pods,
// reports a stopped standby's lag from its slot and the lag going back to 0
// once it streams again, sets ANY 1 (...) for synchronous 1, and drops the
// slot of a standby scaled away and no other.
func TestReplicationController(t *testing.T) {
	c := startPGCluster(t, 3, "staging")
	r := newReplicationEnv(t, c)
	primary := c.Primary()
	primary.Query(t, "CREATE TABLE orders (id int PRIMARY KEY, item text)")
	cr := r.replicationOf(3, 0)

	t.Run("RolesAndLabels", func(t *testing.T) {
		if got := r.converge(t, cr); len(got) != 2 || got[0] != updated {
			t.Errorf("the first poll labels the Pods, the second finds nothing to do: got %v", got)
		}
		want := map[string]string{"orders-0": v1alpha1.RolePrimary, "orders-1": v1alpha1.RoleReplica, "orders-2": v1alpha1.RoleReplica}
		if got := r.roles(t); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("role labels: got %v, want %v", got, want)
		}
		at := cr.Status.AtProvider
		if at.Primary != "orders-0" {
			t.Errorf("status.atProvider.primary = %q, want orders-0", at.Primary)
		}
		for _, m := range at.Members[1:] {
			if m.Role != v1alpha1.MemberStandby || !m.Streaming || m.SyncState != "async" || m.Timeline != 1 || m.ReplayedLSN == "" || m.Message != "" {
				t.Errorf("status of standby %s: %+v", m.Name, m)
			}
		}
		if p := at.Members[0]; p.Role != v1alpha1.MemberPrimary || p.Timeline != 1 {
			t.Errorf("status of the primary: %+v", p)
		}
		var slots []string
		for _, s := range at.Slots {
			slots = append(slots, fmt.Sprintf("%s %t %s", s.Name, s.Active, s.WALStatus))
		}
		if got, want := strings.Join(slots, ","), "orders_1 true reserved,orders_2 true reserved"; got != want {
			t.Errorf("status.atProvider.slots: got %q, want %q", got, want)
		}
		if c := cr.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionTrue {
			t.Errorf("one primary with every standby streaming is Ready, got %+v", c)
		}
	})

	t.Run("LagWhileAStandbyIsStopped", func(t *testing.T) {
		m := c.Members[2]
		m.Stop()
		primary.Query(t, "INSERT INTO orders SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
		if got := r.reconcile(t, cr); got != upToDate {
			t.Errorf("a stopped standby changes nothing: its label, slot and the setting stay; got %s", got)
		}
		s := memberOf(cr, m.Name)
		t.Logf("stopped %s: %+v", m.Name, s)
		if s.Role != v1alpha1.MemberUnreachable || s.Streaming || s.LagBytes <= 0 || s.Message == "" {
			t.Errorf("a stopped standby is unreachable, does not stream and lags by what its slot retains: %+v", s)
		}
		if o := memberOf(cr, "orders-1"); !o.Streaming || o.Role != v1alpha1.MemberStandby {
			t.Errorf("the other standby is observed as ever: %+v", o)
		}
		if c := cr.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, m.Name) {
			t.Errorf("Ready names the standby that does not stream, got %+v", c)
		}
		if got := r.roles(t)[m.Name]; got != v1alpha1.RoleReplica {
			t.Errorf("an unreachable standby keeps its label, got %q", got)
		}

		m.Start(t)
		c.WaitStreaming(t, m)
		var last v1alpha1.MemberObservation
		err := harness.Poll(t.Context(), catchUpTimeout, func(context.Context) error {
			r.reconcile(t, cr)
			last = memberOf(cr, m.Name)
			if !last.Streaming || last.LagBytes > 64<<10 {
				return fmt.Errorf("%s: streaming %t, %d bytes behind", m.Name, last.Streaming, last.LagBytes)
			}
			return nil
		})
		t.Logf("restarted %s: %+v", m.Name, last)
		if err != nil {
			t.Error(err)
		}
		if c := cr.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionTrue {
			t.Errorf("with the standby back the Replication is Ready again, got %+v", c)
		}
	})

	t.Run("Synchronous", func(t *testing.T) {
		cr.Spec.ForProvider.Synchronous = 1
		if got := r.converge(t, cr); len(got) != 2 || got[0] != updated {
			t.Errorf("synchronous 1 is set once: got %v", got)
		}
		want := `ANY 1 ("orders-1", "orders-2")`
		if got := primary.Query(t, "SHOW synchronous_standby_names"); got != want {
			t.Errorf("synchronous_standby_names on the primary = %q, want %q", got, want)
		}
		if got := primary.Query(t, "SELECT string_agg(application_name || ' ' || sync_state, ',' ORDER BY application_name) FROM pg_stat_replication"); got != "orders-1 quorum,orders-2 quorum" {
			t.Errorf("the standbys are quorum candidates: %q", got)
		}
		if got := cr.Status.AtProvider.SynchronousStandbyNames; got != want {
			t.Errorf("status.atProvider.synchronousStandbyNames = %q, want %q", got, want)
		}
		primary.Query(t, "INSERT INTO orders VALUES (0, 'committed with a standby')")
		waitTableRows(t, c.Members[1], "orders", 20001)
	})

	t.Run("ScaleDownDropsOnlyThatSlot", func(t *testing.T) {
		// Inactive slots that are not the provider's: one with its prefix
		// but no ordinal, and one with another prefix.
		primary.Query(t, "SELECT pg_create_physical_replication_slot('orders_backup')")
		primary.Query(t, "SELECT pg_create_physical_replication_slot('other_7')")
		// The StatefulSet scales to 2: its last pod goes.
		m := c.Members[2]
		m.Stop()
		// Its WAL sender ends moments after it.
		if err := harness.Poll(t.Context(), catchUpTimeout, func(ctx context.Context) error {
			out, err := primary.exec(ctx, "postgres", nil, "SELECT active FROM pg_replication_slots WHERE slot_name = 'orders_2'")
			if err == nil && out != "f" {
				err = fmt.Errorf("slot orders_2: active = %q", out)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := r.kube.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: m.Name}}); err != nil {
			t.Fatal(err)
		}
		r.setMembers(cr, 2)
		if got := r.converge(t, cr); len(got) != 2 || got[0] != updated {
			t.Errorf("the slot is dropped and the setting follows in one update: got %v", got)
		}
		if got, want := slotsOf(t, primary), "orders_1 true,orders_backup false,other_7 false"; got != want {
			t.Errorf("slots on the primary: got %q, want %q", got, want)
		}
		if got, want := primary.Query(t, "SHOW synchronous_standby_names"), `ANY 1 ("orders-1")`; got != want {
			t.Errorf("synchronous_standby_names = %q, want %q", got, want)
		}
	})

	t.Run("DeleteRemovesTheLabels", func(t *testing.T) {
		now := metav1.Now()
		cr.SetDeletionTimestamp(&now)
		var got []string
		for range 3 {
			o := r.reconcile(t, cr)
			got = append(got, o)
			if o == gone {
				break
			}
		}
		if fmt.Sprint(got) != fmt.Sprint([]string{deleting, gone}) {
			t.Errorf("delete removes the labels, then the Replication is gone: %v", got)
		}
		if got, want := r.roles(t), map[string]string{"orders-0": "-", "orders-1": "-"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("role labels after delete: got %v, want %v", got, want)
		}
		if got := primary.Query(t, "SHOW synchronous_standby_names"); got != `ANY 1 ("orders-1")` {
			t.Errorf("delete changes nothing on the servers: synchronous_standby_names = %q", got)
		}
	})
}
