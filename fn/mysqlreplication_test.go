package fn

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// TestMySQLReplication: a MySQL Database with replicas >= 2 composes what a
// PostgreSQL one does (read-only Service, replication login, Replication),
// and its pods differ only in server_id and report_host. MySQL 8 itself is
// not run by any test: this is render only.
func TestMySQLReplication(t *testing.T) {
	type want struct {
		Kinds     []string
		Args      []string
		PodEnv    []string
		SecretRef *xpv2.LocalSecretKeySelector
		Sync      int
	}
	names := func(p Params) []string {
		var out []string
		for _, c := range Compose(p) {
			out = append(out, string(c.Name))
		}
		return out
	}
	args := []string{"--server-id=10$(POD_INDEX)", "--report-host=$(POD_NAME).orders-headless.team-a.svc.cluster.local"}
	ref := &xpv2.LocalSecretKeySelector{LocalSecretReference: xpv2.LocalSecretReference{Name: "orders-replication"}, Key: "password"}
	cases := map[string]struct {
		reason string
		spec   v1.DatabaseSpec
		want   want
	}{
		"OneReplica": {
			reason: "One replica replicates to no one: no read-only Service, replication login or Replication; the server still gets its server_id.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](1), Environment: v1.Development, Storage: v1.Storage{Size: "1Gi"}},
			want: want{
				Kinds: []string{"secret", "tls-ca", "tls", "configmap", "service-headless", "statefulset", "networkpolicy", "service", "sql-providerconfig", "sql-user-app"},
				Args:  args, PodEnv: []string{"POD_NAME", "POD_INDEX"},
			},
		},
		"StagingAsynchronous": {
			reason: "Staging replicates asynchronously, and the Replication is given the replication login's Secret to configure replicas with.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.0", Replicas: ptr.To[int32](3), Environment: v1.Staging, Storage: v1.Storage{Size: "1Gi"}},
			want: want{
				Kinds: []string{"secret", "tls-ca", "tls", "configmap", "service-headless", "statefulset", "networkpolicy", "service", "service-ro", "sql-providerconfig", "sql-user-app", "sql-user-replication", "replication"},
				Args:  args, PodEnv: []string{"POD_NAME", "POD_INDEX"}, SecretRef: ref,
			},
		},
		"ProductionSemiSynchronous": {
			reason: "Production waits for one replica: semi-synchronous.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](2), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}},
			want: want{
				Kinds: []string{"secret", "tls-ca", "tls", "configmap", "service-headless", "statefulset", "networkpolicy", "service", "service-ro", "sql-providerconfig", "sql-user-app", "sql-user-replication", "replication", "pdb"},
				Args:  args, PodEnv: []string{"POD_NAME", "POD_INDEX"}, SecretRef: ref, Sync: 1,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(t, tc.spec)
			srv := StatefulSet(p).Spec.Template.Spec.Containers[0]
			got := want{Kinds: names(p), Args: srv.Args}
			for _, e := range srv.Env {
				if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
					got.PodEnv = append(got.PodEnv, e.Name)
				}
			}
			if p.Replicated {
				r := Replication(p).Spec.ForProvider
				got.SecretRef, got.Sync = r.ReplicationSecretRef, r.Synchronous
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nMySQL Database: -want, +got:\n%s", tc.reason, diff)
			}
			if n := len(StatefulSet(p).Spec.Template.Spec.InitContainers); n != 0 {
				t.Errorf("MySQL pods have no init step, got %d", n)
			}
		})
	}
}

// TestPostgreSQLReplicationHasNoSecretRef: PostgreSQL standbys read the
// replication password in their pods; the provider is not given it.
func TestPostgreSQLReplicationHasNoSecretRef(t *testing.T) {
	p := replicated(t, 3, v1.Staging, nil, nil)
	if r := Replication(p).Spec.ForProvider.ReplicationSecretRef; r != nil {
		t.Errorf("PostgreSQL Replication: replicationSecretRef = %+v, want none", r)
	}
}

// TestMyCnfReplication: the replication settings of my.cnf, each with its
// MySQL 8.0.26+ and 8.4 name (no master/slave forms), on every pod alike.
func TestMyCnfReplication(t *testing.T) {
	p := params(t, v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](2), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}})
	want := []string{
		"gtid_mode = ON",
		"enforce_gtid_consistency = ON",
		"log_replica_updates = ON",
		"skip_replica_start = ON",
		"plugin-load-add = mysql_clone.so",
		"plugin-load-add = semisync_source.so",
		"plugin-load-add = semisync_replica.so",
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(p.Config, "\n") {
		lines[l] = true
		if strings.Contains(l, "master") || strings.Contains(l, "slave") {
			t.Errorf("my.cnf: %q uses a form MySQL 8.4 removed", l)
		}
		if strings.Contains(l, "server_id") || strings.Contains(l, "server-id") {
			t.Errorf("my.cnf: %q: server_id differs per pod and belongs in its arguments", l)
		}
	}
	for _, w := range want {
		if !lines[w] {
			t.Errorf("my.cnf: no line %q in:\n%s", w, p.Config)
		}
	}
	// The server_id is a number for every ordinal a Replication allows (0
	// to 9), unique, and never 0.
	seen := map[string]bool{}
	for i := range 10 {
		id := strings.ReplaceAll(engines[v1.MySQL].PodArgs(p.names)[0], "$(POD_INDEX)", itoa(int32(i)))
		if seen[id] || id == "--server-id=0" {
			t.Errorf("ordinal %d: %s is 0 or not unique", i, id)
		}
		seen[id] = true
	}
}

// TestMyCnfStartsReadOnly: with replicas and the SQL provider, every MySQL
// server starts read-only and the provider makes the primary take writes
// (the fencing of a primary that restarts after a failover); a lone
// server, or one with no provider to open it, starts writable, and
// PostgreSQL has no such setting.
func TestMyCnfStartsReadOnly(t *testing.T) {
	cases := map[string]struct {
		reason   string
		spec     v1.DatabaseSpec
		sqlUsers bool
		want     bool
	}{
		"Replicated": {
			reason:   "Three pods and the provider: read_only at start.",
			spec:     v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](3), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}},
			sqlUsers: true, want: true,
		},
		"OneReplica": {
			reason:   "One pod has no Replication to open it: writable.",
			spec:     v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](1), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}},
			sqlUsers: true,
		},
		"NoProvider": {
			reason: "Without the SQL provider no one would open the primary: writable.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](3), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}},
		},
		"PostgreSQL": {
			reason:   "PostgreSQL standbys are read-only by recovery: nothing to add.",
			spec:     v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Replicas: ptr.To[int32](3), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}},
			sqlUsers: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			db := &v1.Database{}
			db.Name, db.Namespace, db.Spec = "orders", "team-a", tc.spec
			Default(&db.Spec)
			p, err := Resolve(db, Observed{}, Input{SQLUsers: tc.sqlUsers}, func() (string, error) { return "pw", nil })
			if err != nil {
				t.Fatal(err)
			}
			got := slices.Contains(strings.Split(p.Config, "\n"), "read_only = ON")
			if got != tc.want {
				t.Errorf("%s\nread_only = ON in the configuration: got %t, want %t:\n%s", tc.reason, got, tc.want, p.Config)
			}
		})
	}
}
