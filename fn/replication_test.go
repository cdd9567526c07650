package fn

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// replicated resolves a PostgreSQL Database with replicas in env, with what
// was observed of its Replication.
func replicated(t *testing.T, replicas int32, env v1.Environment, r *sqlv1alpha1.ReplicationObservation, sync *int32) Params {
	t.Helper()
	db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: v1.DatabaseSpec{
		Type: v1.PostgreSQL, Version: "17", Replicas: ptr.To(replicas), Environment: env, Storage: v1.Storage{Size: "8Gi"},
		Backup: &v1.Backup{Enabled: true},
	}}
	if sync != nil {
		db.Spec.Replication = &v1.Replication{Synchronous: sync}
	}
	Default(&db.Spec)
	if errs := Validate(db); len(errs) > 0 {
		t.Fatalf("Validate(): %v", errs)
	}
	p, err := Resolve(db, Observed{Replication: r}, Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReplicationParams(t *testing.T) {
	found := &sqlv1alpha1.ReplicationObservation{Primary: "orders-0", Members: []sqlv1alpha1.MemberObservation{
		{Name: "orders-0", Role: sqlv1alpha1.MemberPrimary}, {Name: "orders-1", Role: sqlv1alpha1.MemberStandby, Streaming: true}, {Name: "orders-2", Role: sqlv1alpha1.MemberStandby},
	}}
	lost := &sqlv1alpha1.ReplicationObservation{LastPrimary: "orders-1", Members: []sqlv1alpha1.MemberObservation{
		{Name: "orders-0", Role: sqlv1alpha1.MemberStandby}, {Name: "orders-1", Role: sqlv1alpha1.MemberUnreachable}, {Name: "orders-2", Role: sqlv1alpha1.MemberStandby},
	}}
	none := &sqlv1alpha1.ReplicationObservation{Members: []sqlv1alpha1.MemberObservation{{Name: "orders-0", Role: sqlv1alpha1.MemberUnreachable}, {Name: "orders-1", Role: sqlv1alpha1.MemberStandby}}}
	type want struct {
		Replicated, RoleRouting, StandbyStreams bool
		SyncStandbys                            int32
		ReadWrite, ReadOnly                     map[string]string
		BackupHost                              string
		Logins                                  []string
	}
	first := map[string]string{labelName: "postgresql", labelInstance: "orders", labelComponent: "database", labelPodName: "orders-0"}
	primary := map[string]string{labelName: "postgresql", labelInstance: "orders", labelComponent: "database", labelRole: rolePrimary}
	replicas := map[string]string{labelName: "postgresql", labelInstance: "orders", labelComponent: "database", labelRole: roleReplica}
	cases := map[string]struct {
		reason string
		p      Params
		want   want
	}{
		"OneReplica": {
			reason: "One replica streams to no one: the Service selects the first pod and there is no read-only Service or replication login.",
			p:      replicated(t, 1, v1.Development, nil, nil),
			want:   want{ReadWrite: first, BackupHost: "orders.team-a.svc.cluster.local", Logins: []string{"app"}},
		},
		"NewStaging": {
			reason: "Before the Replication found a primary the Service selects the first pod, which a Database starts with as primary; staging is asynchronous.",
			p:      replicated(t, 3, v1.Staging, nil, nil),
			want:   want{Replicated: true, ReadWrite: first, ReadOnly: replicas, BackupHost: "orders.team-a.svc.cluster.local", Logins: []string{"app", "replication"}},
		},
		"ProductionWithAPrimary": {
			reason: "Once the Replication found the primary the Service selects by role; a standby streams, so backups read from the read-only Service; production waits for one standby.",
			p:      replicated(t, 3, v1.Production, found, nil),
			want: want{Replicated: true, RoleRouting: true, StandbyStreams: true, SyncStandbys: 1, ReadWrite: primary, ReadOnly: replicas,
				BackupHost: "orders-ro.team-a.svc.cluster.local", Logins: []string{"app", "replication"}},
		},
		"NoPrimaryFound": {
			reason: "A Replication that found no primary leaves routing to the first pod and backups to the primary.",
			p:      replicated(t, 2, v1.Production, none, nil),
			want: want{Replicated: true, SyncStandbys: 1, ReadWrite: first, ReadOnly: replicas,
				BackupHost: "orders.team-a.svc.cluster.local", Logins: []string{"app", "replication"}},
		},
		"FailingOver": {
			reason: "While the primary is lost no pod is labelled primary: the Service keeps selecting by label, not pod 0, which may be a standby or the lost primary.",
			p:      replicated(t, 3, v1.Production, lost, nil),
			want: want{Replicated: true, RoleRouting: true, SyncStandbys: 1, ReadWrite: primary, ReadOnly: replicas,
				BackupHost: "orders.team-a.svc.cluster.local", Logins: []string{"app", "replication"}},
		},
		"SynchronousOverride": {
			reason: "spec.replication.synchronous overrides the profile's.",
			p:      replicated(t, 3, v1.Production, nil, ptr.To[int32](2)),
			want: want{Replicated: true, SyncStandbys: 2, ReadWrite: first, ReadOnly: replicas,
				BackupHost: "orders.team-a.svc.cluster.local", Logins: []string{"app", "replication"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := tc.p
			got := want{
				Replicated: p.Replicated, RoleRouting: p.RoleRouting, StandbyStreams: p.StandbyStreams, SyncStandbys: p.SyncStandbys,
				ReadWrite: Service(p).Spec.Selector, BackupHost: p.BackupHost(),
			}
			if p.Replicated {
				got.ReadOnly = ReadOnlyService(p).Spec.Selector
			}
			for _, l := range p.Logins {
				got.Logins = append(got.Logins, l.Login)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestPostgreSQLPodReplicates checks what the integration tests cannot see
// through loopback: the pod's wiring of the init step and server.
func TestPostgreSQLPodReplicates(t *testing.T) {
	p := replicated(t, 3, v1.Production, nil, nil)
	pod := StatefulSet(p).Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("want one init container, got %d", len(pod.InitContainers))
	}
	init, srv := pod.InitContainers[0], pod.Containers[0]
	if diff := cmp.Diff([]string{"sh", "/etc/dbplane/init.sh"}, init.Command); diff != "" {
		t.Errorf("init command: -want, +got:\n%s", diff)
	}
	if init.Image != srv.Image {
		t.Errorf("the init step runs %s, the server %s: pg_basebackup must match the server", init.Image, srv.Image)
	}
	wantArgs := []string{"-c", "config_file=/etc/dbplane/postgresql.conf", "-c", "cluster_name=$(POD_NAME)", "-c", "primary_slot_name=orders_$(POD_INDEX)"}
	if diff := cmp.Diff(wantArgs, srv.Args); diff != "" {
		t.Errorf("server args: -want, +got:\n%s", diff)
	}

	// The replication password reaches only the init step, from the login's
	// Secret; the server has no PGPASSWORD, which libpq in its WAL receiver
	// would prefer to the password file.
	secrets := map[string]string{}
	for _, c := range []struct {
		name string
		env  []string
	}{{"init", envNames(init.Env)}, {"server", envNames(srv.Env)}} {
		for _, n := range c.env {
			if n == "PGPASSWORD" {
				t.Errorf("%s container sets PGPASSWORD", c.name)
			}
		}
	}
	for _, e := range append(init.Env, srv.Env...) {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	if diff := cmp.Diff(map[string]string{
		"REPLICATION_PASSWORD": "orders-replication/password", "POSTGRES_PASSWORD": "orders-credentials/password",
	}, secrets); diff != "" {
		t.Errorf("variables from Secrets: -want, +got:\n%s", diff)
	}

	conf := ConfigMap(p).Data["postgresql.conf"]
	for _, w := range []string{
		"hba_file = '/etc/dbplane/pg_hba.conf'",
		"primary_conninfo = 'host=orders.team-a.svc.cluster.local port=5432 user=replication passfile=/run/dbplane/pgpass connect_timeout=10 sslmode=verify-full sslrootcert=/etc/dbplane-tls/ca.crt'",
		"wal_log_hints = on", "hot_standby_feedback = on",
		"max_slot_wal_keep_size = 2048MB", // a quarter of 8Gi
	} {
		if !strings.Contains(conf, w) {
			t.Errorf("postgresql.conf: want %q in:\n%s", w, conf)
		}
	}
	if strings.Contains(conf, "synchronous_standby_names") {
		t.Errorf("postgresql.conf sets synchronous_standby_names: the entrypoint's first start would wait for a standby that cannot exist yet")
	}
}

func envNames(env []corev1.EnvVar) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		out = append(out, e.Name)
	}
	return out
}

func TestReplicationBuilder(t *testing.T) {
	p := replicated(t, 3, v1.Production, nil, nil)
	got := Replication(p).Spec.ForProvider
	want := sqlv1alpha1.ReplicationParameters{
		Members: []sqlv1alpha1.ReplicationMember{
			{Name: "orders-0", Host: "orders-0.orders-headless.team-a.svc.cluster.local", Port: 5432},
			{Name: "orders-1", Host: "orders-1.orders-headless.team-a.svc.cluster.local", Port: 5432},
			{Name: "orders-2", Host: "orders-2.orders-headless.team-a.svc.cluster.local", Port: 5432},
		},
		SlotPrefix:  "orders_",
		Synchronous: 1,
		StatefulSet: "orders",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Replication(...).spec.forProvider: every pod, its slot prefix, production's one synchronous standby and the StatefulSet it rolls: -want, +got:\n%s", diff)
	}
	if got := StatefulSet(p).Spec.UpdateStrategy.Type; got != "OnDelete" {
		t.Errorf("with the provider rolling the pods the StatefulSet updates OnDelete, got %s", got)
	}
	if got := StatefulSet(replicated(t, 1, v1.Development, nil, nil)).Spec.UpdateStrategy.Type; got != "RollingUpdate" {
		t.Errorf("one replica rolls by itself: want RollingUpdate, got %s", got)
	}
}

func TestReplicationStatus(t *testing.T) {
	r := &sqlv1alpha1.ReplicationObservation{Primary: "orders-0", Members: []sqlv1alpha1.MemberObservation{
		{Name: "orders-0", Role: sqlv1alpha1.MemberPrimary},
		{Name: "orders-1", Role: sqlv1alpha1.MemberStandby, Streaming: true, SyncState: "quorum", LagBytes: 120, LagMillis: 1234},
		{Name: "orders-2", Role: sqlv1alpha1.MemberUnreachable, LagBytes: 4096, Message: "cannot connect"},
	}}
	p := replicated(t, 3, v1.Production, r, nil)
	got := Status(p, Observed{Replication: r}, nil)
	want := []v1.Member{
		{Name: "orders-0", Role: "primary"},
		{Name: "orders-1", Role: "standby", Streaming: true, Sync: "quorum", LagBytes: 120, LagSeconds: "1.234"},
		{Name: "orders-2", Role: "unreachable", LagBytes: 4096, Message: "cannot connect"},
	}
	if got.Primary != "orders-0" {
		t.Errorf("status.primary: got %q, want orders-0", got.Primary)
	}
	if diff := cmp.Diff(want, got.Members); diff != "" {
		t.Errorf("status.members: what the Replication saw: -want, +got:\n%s", diff)
	}
}

func TestPrimaryAvailable(t *testing.T) {
	at := metav1.NewTime(time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC))
	cases := map[string]struct {
		reason string
		r      *sqlv1alpha1.ReplicationObservation
		why    string
		want   Advice
	}{
		"Found": {
			reason: "A primary found is True, and names the last failover.",
			r:      &sqlv1alpha1.ReplicationObservation{Primary: "orders-1", LastFailover: &sqlv1alpha1.Failover{At: at, From: "orders-0", To: "orders-1", Reason: "primary orders-0 unreachable for 5s"}},
			want:   Advice{ConditionPrimaryAvailable, corev1.ConditionTrue, ReasonPrimaryFound, "last failover 2026-12-01T11:00:00Z: from orders-0 to orders-1: primary orders-0 unreachable for 5s"},
		},
		"NotYet": {
			reason: "Before the provider found any primary it is Unknown.",
			r:      &sqlv1alpha1.ReplicationObservation{},
			want:   Advice{ConditionPrimaryAvailable, corev1.ConditionUnknown, ReasonNoPrimary, "the SQL provider has not found a primary yet"},
		},
		"FailingOver": {
			reason: "A lost primary being waited for is False, FailingOver, with the provider's words.",
			r:      &sqlv1alpha1.ReplicationObservation{LastPrimary: "orders-0"},
			why:    "primary orders-0 unreachable since 2026-12-01T11:00:00Z: failing over after 5s",
			want:   Advice{ConditionPrimaryAvailable, corev1.ConditionFalse, ReasonFailingOver, "primary orders-0 unreachable since 2026-12-01T11:00:00Z: failing over after 5s"},
		},
		"Impossible": {
			reason: "A failover the provider refuses is False, FailoverImpossible.",
			r:      &sqlv1alpha1.ReplicationObservation{LastPrimary: "orders-0"},
			why:    "cannot fail over from orders-0: no standby was synchronous when it was last seen",
			want:   Advice{ConditionPrimaryAvailable, corev1.ConditionFalse, ReasonFailoverImpossible, "cannot fail over from orders-0: no standby was synchronous when it was last seen"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, primaryAvailable(tc.r, tc.why)); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestSwitchoverAnnotation(t *testing.T) {
	db := func(to string) *v1.Database {
		d := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a", Annotations: map[string]string{AnnotationSwitchoverTo: to}},
			Spec: v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "17", Replicas: ptr.To[int32](3), Environment: v1.Production, Storage: v1.Storage{Size: "8Gi"}}}
		Default(&d.Spec)
		return d
	}
	p, err := Resolve(db("orders-2"), Observed{}, Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := Replication(p).Spec.ForProvider.SwitchoverTo; got != "orders-2" {
		t.Errorf("the annotation reaches the Replication's switchoverTo: got %q", got)
	}
	for _, bad := range []string{"orders-3", "orders-01", "other-1", "orders-", "orders-x"} {
		errs := Validate(db(bad))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "metadata.annotations[database.example.com/switchover-to]") {
			t.Errorf("annotation %q: want one error naming it, got %v", bad, errs)
		}
	}
	if errs := Validate(db("orders-0")); len(errs) != 0 {
		t.Errorf("annotation orders-0: %v", errs)
	}
}

func TestScaleDownKeepsThePrimary(t *testing.T) {
	resolve := func(replicas int32, stsReplicas int32, primary string) Params {
		t.Helper()
		d := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"},
			Spec: v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "17", Replicas: ptr.To(replicas), Environment: v1.Staging, Storage: v1.Storage{Size: "8Gi"}}}
		Default(&d.Spec)
		o := Observed{
			StatefulSet: &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "orders"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(stsReplicas)}},
			Replication: &sqlv1alpha1.ReplicationObservation{Primary: primary, LastPrimary: primary},
		}
		p, err := Resolve(d, o, Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	type got struct {
		Replicas     int32
		SwitchoverTo string
		Waits        bool
	}
	cases := map[string]struct {
		reason string
		p      Params
		want   got
	}{
		"PrimaryKept":     {reason: "Scaling 3 to 2 with the primary on pod 0 goes ahead.", p: resolve(2, 3, "orders-0"), want: got{Replicas: 2}},
		"PrimaryRemoved":  {reason: "Scaling 3 to 2 with the primary on pod 2 waits at 3 for a switchover to pod 0.", p: resolve(2, 3, "orders-2"), want: got{Replicas: 3, SwitchoverTo: "orders-0", Waits: true}},
		"ToOnePrimaryOn1": {reason: "Scaling 2 to 1 with the primary on pod 1: still replicated while it waits.", p: resolve(1, 2, "orders-1"), want: got{Replicas: 2, SwitchoverTo: "orders-0", Waits: true}},
		"ScaleUp":         {reason: "Scaling up never waits.", p: resolve(3, 2, "orders-1"), want: got{Replicas: 3}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := got{Replicas: tc.p.Replicas, SwitchoverTo: tc.p.SwitchoverTo, Waits: tc.p.ScaleDownWaits != ""}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestAutoscalerKeepsThePrimary(t *testing.T) {
	resolve := func(least int32, primary, last, annotation string, wantsFewer bool) Params {
		t.Helper()
		d := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"},
			Spec: v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "17", Replicas: ptr.To[int32](3), Environment: v1.Staging, Storage: v1.Storage{Size: "8Gi"},
				Autoscaling: &v1.Autoscaling{MinReplicas: least, MaxReplicas: 6, TargetCPUUtilization: ptr.To[int32](70)}}}
		if annotation != "" {
			d.Annotations = map[string]string{AnnotationSwitchoverTo: annotation}
		}
		Default(&d.Spec)
		o := Observed{
			StatefulSet: &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "orders"}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](5)}},
			Replication: &sqlv1alpha1.ReplicationObservation{Primary: primary, LastPrimary: last},
			Autoscaler:  &autoscalingv2.HorizontalPodAutoscaler{},
		}
		if wantsFewer {
			o.Autoscaler.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingLimited, Status: corev1.ConditionTrue, Reason: "TooFewReplicas"}}
		}
		p, err := Resolve(d, o, Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	type got struct {
		MinReplicas  int32
		MaxReplicas  int32
		SwitchoverTo string
		Waits        bool
	}
	cases := map[string]struct {
		reason string
		p      Params
		want   got
	}{
		"PrimaryBelowMin": {reason: "The primary on pod 1 with minReplicas 2: no scale-down can remove it.",
			p: resolve(2, "orders-1", "orders-1", "", true), want: got{MinReplicas: 2, MaxReplicas: 6}},
		"PrimaryAtMin": {reason: "The primary on pod 4 with minReplicas 2: the autoscaler keeps 5; it is content, so no switchover.",
			p: resolve(2, "orders-4", "orders-4", "", false), want: got{MinReplicas: 5, MaxReplicas: 6}},
		"PrimaryAtMinWantsFewer": {reason: "The autoscaler wants fewer than the raised minimum: the provider switches over to pod 0 first.",
			p: resolve(2, "orders-4", "orders-4", "", true), want: got{MinReplicas: 5, MaxReplicas: 6, SwitchoverTo: "orders-0", Waits: true}},
		"PrimaryLost": {reason: "While a failover is under way the last primary is kept.",
			p: resolve(1, "", "orders-2", "", true), want: got{MinReplicas: 3, MaxReplicas: 6, SwitchoverTo: "orders-0", Waits: true}},
		"AskedFor": {reason: "A switchover the annotation asks for wins; the minimum still keeps the primary.",
			p: resolve(1, "orders-3", "orders-3", "orders-2", true), want: got{MinReplicas: 4, MaxReplicas: 6, SwitchoverTo: "orders-2", Waits: true}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			hpa := HorizontalPodAutoscaler(tc.p)
			g := got{MinReplicas: *hpa.Spec.MinReplicas, MaxReplicas: hpa.Spec.MaxReplicas, SwitchoverTo: Replication(tc.p).Spec.ForProvider.SwitchoverTo, Waits: tc.p.ScaleDownWaits != ""}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("%s\n-want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
