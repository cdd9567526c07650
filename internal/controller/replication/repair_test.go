package replication

import (
	"context"
	"strconv"
	"strings"
	"testing"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/mysql"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

const (
	uuidA = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
	uuidB = "4a22fa47-71ca-11e1-9e33-c80aa9429562"
)

var rwService = xsql.Endpoint{Host: "orders.team-a.svc.cluster.local", Port: 3306}

// mysqlPrimary is a writable MySQL server with tables and the clone plugin.
func mysqlPrimary(pos string) *xsql.ReplicationState {
	return &xsql.ReplicationState{OwnSource: true, Primary: true, Position: pos, UserTables: 3, CanClone: true, SemiSync: &xsql.SemiSync{WaitFor: 1}}
}

// mysqlReplica replicates from the read-write Service with threads io and
// sql.
func mysqlReplica(pos, io, sql string, protected bool) *xsql.ReplicationState {
	lag := int64(2)
	return &xsql.ReplicationState{OwnSource: true, Protected: protected, Position: pos, UserTables: 3, CanClone: true, SemiSync: &xsql.SemiSync{WaitFor: 1},
		Source: &xsql.Source{Host: rwService.Host, Port: 3306, IO: io, SQL: sql, LagSeconds: &lag}}
}

// mysqlBlank is what the image's entrypoint makes of an empty volume:
// writable, no source, no tables, a transaction of its own.
func mysqlBlank(uuid string) *xsql.ReplicationState {
	return &xsql.ReplicationState{OwnSource: true, Primary: true, Blank: true, Position: uuid + ":1", CanClone: true, SemiSync: &xsql.SemiSync{WaitFor: 1}}
}

func TestRepairs(t *testing.T) {
	type want struct {
		Repairs []string
		Why     map[int]string
	}
	str := func(rs []repair) []string {
		var out []string
		for _, r := range rs {
			out = append(out, string(r.kind)+" "+strconv.Itoa(r.member))
		}
		return out
	}
	diverged := &xsql.ReplicationState{OwnSource: true, Primary: false, Protected: true, Position: uuidA + ":1-9," + uuidB + ":1-4", UserTables: 2, CanClone: true}
	mariaFresh := &xsql.ReplicationState{OwnSource: true, Primary: true, Blank: true}
	formerPrimary := func(pos string, canClone bool) *xsql.ReplicationState {
		// Restarted read-only, as every pod starts: no primary, no source.
		return &xsql.ReplicationState{OwnSource: true, Position: pos, UserTables: 3, CanClone: canClone}
	}
	mariaPrimary := &xsql.ReplicationState{OwnSource: true, Primary: true, Position: "0-101-50", UserTables: 3}
	cases := map[string]struct {
		reason       string
		answers      []answer
		failoverFrom string
		want         want
	}{
		"FormerPrimaryRejoins": {
			reason:       "The primary a failover replaced, restarted read-only with GTIDs the new primary has, replicates from it.",
			answers:      []answer{{state: formerPrimary(uuidA+":1-9", true)}, {state: mysqlPrimary(uuidA + ":1-9," + uuidB + ":1-3")}},
			failoverFrom: "orders-0",
			want:         want{Repairs: []string{"replicate 0"}, Why: map[int]string{}},
		},
		"FormerPrimaryRecloned": {
			reason:       "MySQL 8: a former primary holding transactions the new primary lacks (lost asynchronously, or never acknowledged) is cloned from it, tables or not.",
			answers:      []answer{{state: formerPrimary(uuidA+":1-10", true)}, {state: mysqlPrimary(uuidA + ":1-9," + uuidB + ":1-3")}},
			failoverFrom: "orders-0",
			want:         want{Repairs: []string{"clone 0"}, Why: map[int]string{}},
		},
		"FormerPrimaryMariaDBReported": {
			reason:       "MariaDB has no CLONE: a former primary ahead of the new one keeps its data, stays read-only and is reported.",
			answers:      []answer{{state: formerPrimary("0-100-57", false)}, {state: mariaPrimary}},
			failoverFrom: "orders-0",
			want:         want{Why: map[int]string{0: "former primary: holds transactions the primary orders-1 does not have (lost by the failover, or committed but never acknowledged); it stays read-only and out of replication, and the provider does not delete them: without CLONE (MariaDB) resolve by hand"}},
		},
		"OtherDivergedNotRecloned": {
			reason:       "Only the primary a failover replaced is re-cloned: another member with transactions of its own and tables is left alone.",
			answers:      []answer{{state: formerPrimary(uuidA+":1-10", true)}, {state: mysqlPrimary(uuidA + ":1-9," + uuidB + ":1-3")}},
			failoverFrom: "orders-2",
			want:         want{Why: map[int]string{0: "has transactions the primary does not have and 3 tables: the provider neither clones nor replicates it; resolve by hand"}},
		},
		"Healthy": {
			reason:  "Replicas that replicate from the read-write Service and are read-only need nothing.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: mysqlReplica(uuidA+":1-9", "Yes", "Yes", true)}, {state: mysqlReplica(uuidA+":1-5", "Connecting", "Yes", true)}},
			want:    want{Why: map[int]string{}},
		},
		"NewPodsAreCloned": {
			reason:  "Blank pods (a transaction of their own from the entrypoint, no tables) are cloned from the primary.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: mysqlBlank(uuidB)}, {state: mysqlBlank("5b33fa47-71ca-11e1-9e33-c80aa9429562")}},
			want:    want{Repairs: []string{"clone 1", "clone 2"}, Why: map[int]string{}},
		},
		"ClonedPodReplicates": {
			reason:  "After the clone the pod has the primary's GTIDs and no source: it is pointed at the primary.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: &xsql.ReplicationState{OwnSource: true, Primary: false, Protected: false, Position: uuidA + ":1-9", UserTables: 3, CanClone: true}}},
			want:    want{Repairs: []string{"replicate 1"}, Why: map[int]string{}},
		},
		"RestartedReplica": {
			reason:  "A restarted replica (skip_replica_start: threads stopped) replicates again.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: mysqlReplica(uuidA+":1-7", "No", "No", true)}},
			want:    want{Repairs: []string{"replicate 1"}, Why: map[int]string{}},
		},
		"WritableReplica": {
			reason:  "A replica that replicates but accepts writes is made read-only.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: mysqlReplica(uuidA+":1-9", "Yes", "Yes", false)}},
			want:    want{Repairs: []string{"protect 1"}, Why: map[int]string{}},
		},
		"WrongSource": {
			reason: "A replica of another host is pointed at the read-write Service.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: func() *xsql.ReplicationState {
				s := mysqlReplica(uuidA+":1-9", "Yes", "Yes", true)
				s.Source.Host = "old"
				return s
			}()}},
			want: want{Repairs: []string{"replicate 1"}, Why: map[int]string{}},
		},
		"DivergedIsLeftAlone": {
			reason:  "A member with transactions the primary lacks and tables is never cloned or pointed at the primary: reported.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {state: diverged}},
			want:    want{Why: map[int]string{1: "has transactions the primary does not have and 2 tables: the provider neither clones nor replicates it; resolve by hand"}},
		},
		"MariaDBFreshReplicates": {
			reason:  "MariaDB cannot clone: a fresh server with no GTIDs replicates from the start of the binary log.",
			answers: []answer{{state: &xsql.ReplicationState{OwnSource: true, Primary: true, Position: "0-100-40", UserTables: 1}}, {state: mariaFresh}},
			want:    want{Repairs: []string{"replicate 1"}, Why: map[int]string{}},
		},
		"MariaDBAheadNoClone": {
			reason:  "MariaDB ahead of the primary in a domain, with no tables, cannot be cloned: reported.",
			answers: []answer{{state: &xsql.ReplicationState{OwnSource: true, Primary: true, Position: "0-100-40", UserTables: 1}}, {state: &xsql.ReplicationState{OwnSource: true, Primary: true, Blank: true, Position: "0-101-41"}}},
			want:    want{Why: map[int]string{1: "has transactions the primary does not have and cannot be cloned: the provider leaves it alone; resolve by hand"}},
		},
		"MariaDBOtherServerReported": {
			reason:  "MariaDB binlog states are per domain and server: a transaction of another server the primary never logged is its own, even with a lower sequence number: reported, not replicated.",
			answers: []answer{{state: &xsql.ReplicationState{OwnSource: true, Primary: true, Position: "0-100-40", UserTables: 1}}, {state: &xsql.ReplicationState{OwnSource: true, Primary: true, Blank: true, Position: "0-101-2"}}},
			want:    want{Why: map[int]string{1: "has transactions the primary does not have and cannot be cloned: the provider leaves it alone; resolve by hand"}},
		},
		"Unreachable": {
			reason:  "An unreachable member needs nothing it can be given.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-9")}, {err: errRefused}},
			want:    want{Why: map[int]string{}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a := assess(params(len(tc.answers), 0), tc.answers)
			if tc.failoverFrom != "" {
				a.at.LastFailover = &v1alpha1.Failover{From: tc.failoverFrom}
			}
			rs, why := repairs(a, tc.answers, rwService, 3306, mysql.PositionContains)
			if diff := cmp.Diff(tc.want, want{Repairs: str(rs), Why: why}); diff != "" {
				t.Errorf("%s\nrepairs(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestAssessMySQLPrimary(t *testing.T) {
	cases := map[string]struct {
		reason  string
		answers []answer
		want    string
	}{
		"FirstPodOfANewDatabase": {reason: "Every pod starts writable and blank: the first pod, which the read-write Service selects, is the primary.", answers: []answer{{state: mysqlBlank(uuidA)}, {state: mysqlBlank(uuidB)}}, want: "orders-0"},
		"DataWins":               {reason: "A writable pod with data is the primary, not a blank one.", answers: []answer{{state: mysqlBlank(uuidB)}, {state: mysqlPrimary(uuidA + ":1")}}, want: "orders-1"},
		"BlankOtherOrdinal":      {reason: "A blank pod other than the first is never the primary: apps must not be sent to it.", answers: []answer{{err: errRefused}, {state: mysqlBlank(uuidB)}}, want: ""},
		"SplitBrain":             {reason: "Two writable pods with data: split brain, no primary.", answers: []answer{{state: mysqlPrimary(uuidA + ":1")}, {state: mysqlPrimary(uuidB + ":1")}}, want: ""},
		"ReplicaWithSource":      {reason: "A writable pod with a source configured is no primary.", answers: []answer{{state: mysqlPrimary(uuidA + ":1")}, {state: mysqlReplica(uuidA+":1", "No", "No", false)}}, want: "orders-0"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := assess(params(len(tc.answers), 0), tc.answers).at.Primary; got != tc.want {
				t.Errorf("%s\nassess(...).primary = %q, want %q", tc.reason, got, tc.want)
			}
		})
	}
}

// A fakeReplicator is a MySQL fakeServer that records its repairs.
type fakeReplicator struct {
	fakeServer
}

func (f *fakeReplicator) Replicate(_ context.Context, src xsql.Endpoint, cred xsql.Credential, semiSync bool) error {
	*f.changes = append(*f.changes, f.name+": replicate from "+src.Host+" as "+cred.Username+" semi-sync "+map[bool]string{true: "on", false: "off"}[semiSync])
	return nil
}

func (f *fakeReplicator) Clone(_ context.Context, donor xsql.Endpoint, cred xsql.Credential) error {
	*f.changes = append(*f.changes, f.name+": clone "+donor.Host+" as "+cred.Username)
	return nil
}

func (f *fakeReplicator) Protect(context.Context) error {
	*f.changes = append(*f.changes, f.name+": protect")
	return nil
}

func (f *fakeReplicator) SetSemiSync(_ context.Context, n int) error {
	*f.changes = append(*f.changes, f.name+": semi-sync "+strconv.Itoa(n))
	return nil
}

func TestMySQLObserveAndUpdate(t *testing.T) {
	type want struct {
		Diff    string
		Changes []string
		Ready   corev1.ConditionStatus
		Message string
	}
	cred := &xsql.Credential{Username: "replication", Password: "pw"}
	cases := map[string]struct {
		reason      string
		synchronous int
		answers     []answer
		cred        *xsql.Credential
		want        want
	}{
		"NewDatabase": {
			reason:      "A new production Database: the first pod is labelled primary, semi-sync waits for one replica, the others are cloned.",
			synchronous: 1,
			answers:     []answer{{state: mysqlBlank(uuidA)}, {state: mysqlBlank(uuidB)}},
			cred:        cred,
			want: want{
				Diff:    "label Pod orders-0 database.example.com/role=primary; make commits wait for 1 replicas (semi-synchronous); clone the primary into orders-1",
				Changes: []string{"orders-0: semi-sync 1", "orders-1: clone orders-0.orders-headless.team-a.svc.cluster.local as replication"},
				Ready:   corev1.ConditionFalse,
			},
		},
		"NoSecretYet": {
			reason:  "Without the replication login's Secret nothing needing its password is planned; Ready says why.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1")}, {state: mysqlReplica(uuidA+":1", "No", "No", true)}},
			want: want{
				Diff:    "label Pod orders-0 database.example.com/role=primary",
				Ready:   corev1.ConditionFalse,
				Message: `waiting for the replication login's Secret "orders-replication"`,
			},
		},
		"Healthy": {
			reason:  "Replicating, read-only, asynchronous as asked: only labels.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1")}, {state: mysqlReplica(uuidA+":1", "Yes", "Yes", true)}},
			cred:    cred,
			want: want{
				Diff:  "label Pod orders-0 database.example.com/role=primary; label Pod orders-1 database.example.com/role=replica",
				Ready: corev1.ConditionTrue,
			},
		},
		"Restarted": {
			reason:  "A restarted replica is made to replicate again, acknowledging semi-sync since the plugin is there.",
			answers: []answer{{state: mysqlPrimary(uuidA + ":1-5")}, {state: mysqlReplica(uuidA+":1-3", "No", "No", false)}},
			cred:    cred,
			want: want{
				Diff:    "label Pod orders-0 database.example.com/role=primary; make orders-1 a read-only replica of the primary",
				Changes: []string{"orders-1: replicate from orders.team-a.svc.cluster.local as replication semi-sync on"},
				Ready:   corev1.ConditionFalse,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kube := newKube(t, newPod("orders-0", ""), newPod("orders-1", ""))
			var changes []string
			e := &external{pods: kube, kube: kube, record: event.NewNopRecorder(), contains: mysql.PositionContains, source: rwService, credential: tc.cred}
			if tc.cred == nil {
				e.noCredential = `waiting for the replication login's Secret "orders-replication"`
			}
			cr := newReplication(len(tc.answers), tc.synchronous)
			e.members = cr.Spec.ForProvider.Members
			for i, a := range tc.answers {
				e.servers = append(e.servers, &fakeReplicator{fakeServer{name: "orders-" + string(rune('0'+i)), state: a.state, err: a.err, changes: &changes}})
			}
			o, err := e.Observe(t.Context(), cr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Update(t.Context(), cr); err != nil {
				t.Fatal(err)
			}
			c := cr.GetCondition(xpv2.TypeReady)
			got := want{Diff: o.Diff, Changes: changes, Ready: c.Status}
			if tc.want.Message != "" && strings.Contains(c.Message, tc.want.Message) {
				got.Message = tc.want.Message
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nObserve and Update: -want, +got:\n%s\nReady: %s", tc.reason, diff, c.Message)
			}
			if strings.Contains(c.Message, "pw") || strings.Contains(o.Diff, "pw") {
				t.Errorf("the password is in a message: %q %q", c.Message, o.Diff)
			}
		})
	}
}

func TestReadReplicationSecret(t *testing.T) {
	ref := &xpv2.LocalSecretKeySelector{LocalSecretReference: xpv2.LocalSecretReference{Name: "orders-replication"}, Key: "password"}
	cases := map[string]struct {
		reason string
		secret *corev1.Secret
		want   *xsql.Credential
		note   string
	}{
		"Found": {
			reason: "The login is replication, its password the Secret's key.",
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "orders-replication"}, Data: map[string][]byte{"password": []byte("pw")}},
			want:   &xsql.Credential{Username: "replication", Password: "pw"},
		},
		"Missing": {reason: "No Secret yet: a note, no error.", note: `waiting for the replication login's Secret "orders-replication"`},
		"NoKey": {
			reason: "A Secret without the key: a note.",
			secret: &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "orders-replication"}, Data: map[string][]byte{"other": []byte("x")}},
			note:   `the replication login's Secret "orders-replication" has no key "password"`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			kube := newKube(t)
			if tc.secret != nil {
				if err := kube.Create(t.Context(), tc.secret); err != nil {
					t.Fatal(err)
				}
			}
			cr := newReplication(2, 0)
			cr.Spec.ForProvider.ReplicationSecretRef = ref
			e := &external{}
			if err := e.readReplicationSecret(t.Context(), kube, cr); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, e.credential); diff != "" || e.noCredential != tc.note {
				t.Errorf("%s\nreadReplicationSecret: -want, +got:\n%s\nnote %q, want %q", tc.reason, diff, e.noCredential, tc.note)
			}
		})
	}
}

var _ Replicator = &fakeReplicator{}
