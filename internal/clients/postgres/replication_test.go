package postgres

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/test"

	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/clients/xsql/fake"
)

func TestSynchronousStandbyNames(t *testing.T) {
	type want struct {
		value string
		err   error
	}
	cases := map[string]struct {
		reason   string
		n        int
		standbys []string
		want     want
	}{
		"Asynchronous": {
			reason:   "Zero standbys to wait for is an empty setting.",
			standbys: []string{"orders-1", "orders-2"},
		},
		"AnyOne": {
			reason:   "A commit waits for any one of the standbys, each quoted.",
			n:        1,
			standbys: []string{"orders-1", "orders-2"},
			want:     want{value: `ANY 1 ("orders-1", "orders-2")`},
		},
		"Clamped": {
			reason:   "More than there are standbys waits for all of them.",
			n:        5,
			standbys: []string{"orders-1", "orders-2"},
			want:     want{value: `ANY 2 ("orders-1", "orders-2")`},
		},
		"NoStandbys": {
			reason: "Without standbys nothing can be waited for: asynchronous.",
			n:      1,
		},
		"Hostile": {
			reason:   "A double quote in a name is doubled, as the setting's parser reads it; commas and parentheses stay inside the quotes.",
			n:        1,
			standbys: []string{`we"ird`, "a, b) x ("},
			want:     want{value: `ANY 1 ("we""ird", "a, b) x (")`},
		},
		"Invalid": {
			reason:   "A name PostgreSQL cannot hold is refused.",
			n:        1,
			standbys: []string{"nul\x00"},
			want:     want{err: errors.Wrap(errors.New(`name "nul\x00" contains a NUL character`), "invalid standby name")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := SynchronousStandbyNames(tc.n, tc.standbys)
			if diff := cmp.Diff(tc.want, want{value: v, err: err}, cmp.AllowUnexported(want{}), test.EquateErrors()); diff != "" {
				t.Errorf("%s\nSynchronousStandbyNames(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestSetSynchronousStandbyNamesStatements(t *testing.T) {
	cases := map[string]struct {
		reason string
		value  string
		want   []string
	}{
		"Set": {
			reason: "A value is set through ALTER SYSTEM as a literal, then the configuration reloads.",
			value:  `ANY 1 ("orders-1", "o'brien")`,
			want:   []string{`ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("orders-1", "o''brien")'`, "SELECT pg_catalog.pg_reload_conf()"},
		},
		"Reset": {
			reason: "Empty resets the setting, which is then empty.",
			want:   []string{"ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_catalog.pg_reload_conf()"},
		},
		"Backslash": {
			reason: "A backslash makes an escape string, read the same whatever standard_conforming_strings is.",
			value:  `ANY 1 ("a\")`,
			want:   []string{`ALTER SYSTEM SET synchronous_standby_names = E'ANY 1 ("a\\")'`, "SELECT pg_catalog.pg_reload_conf()"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := SetSynchronousStandbyNamesStatements(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nSetSynchronousStandbyNamesStatements(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestDropSlotQuery(t *testing.T) {
	cases := map[string]struct {
		reason string
		name   string
		want   []any
		err    bool
	}{
		"Valid":     {reason: "The name is bound as a parameter.", name: "orders_2", want: []any{"orders_2"}},
		"Injection": {reason: "A name no slot can have is refused before any SQL.", name: "x'; DROP TABLE t; --", err: true},
		"Upper":     {reason: "Slot names are lower case.", name: "Orders_2", err: true},
		"Empty":     {reason: "A slot has a name.", err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			q, err := DropSlotQuery(tc.name)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nDropSlotQuery(%q): error %v, want error %t", tc.reason, tc.name, err, tc.err)
			}
			if diff := cmp.Diff(tc.want, q.Args, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nDropSlotQuery(...): -want args, +got args:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestParseReplicationState(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	cases := map[string]struct {
		reason string
		doc    string
		want   *xsql.ReplicationState
	}{
		"Primary": {
			reason: "A primary's document, as PostgreSQL 15 writes it, with its senders and slots; NULLs read as empty.",
			doc: `{"primary" : true, "timeline" : 1, "receivedLSN" : null, "replayedLSN" : null, "receiver" : null, "synchronousStandbyNames" : "ANY 1 (\"orders-1\")",
				"replicas" : [{"name" : "orders-1", "state" : "streaming", "syncState" : "quorum", "lagBytes" : 0, "lagMillis" : 13}, {"name" : "orders-2", "state" : "catchup", "syncState" : "async", "lagBytes" : null, "lagMillis" : null}],
				"slots" : [{"name" : "orders_1", "active" : true, "walStatus" : "reserved", "retainedBytes" : 0}, {"name" : "orders_5", "active" : false, "walStatus" : null, "retainedBytes" : null}]}`,
			want: &xsql.ReplicationState{
				Primary: true, Timeline: 1, SynchronousStandbyNames: `ANY 1 ("orders-1")`,
				Replicas: []xsql.Replica{
					{Name: "orders-1", State: "streaming", SyncState: "quorum", LagBytes: i(0), LagMillis: i(13)},
					{Name: "orders-2", State: "catchup", SyncState: "async"},
				},
				Slots: []xsql.Slot{{Name: "orders_1", Active: true, WALStatus: "reserved", RetainedBytes: i(0)}, {Name: "orders_5"}},
			},
		},
		"Standby": {
			reason: "A standby's document.",
			doc:    `{"primary" : false, "timeline" : 2, "receivedLSN" : "0/3000000", "replayedLSN" : "0/2FFFFF0", "receiver" : "streaming", "synchronousStandbyNames" : "", "replicas" : [], "slots" : []}`,
			want: &xsql.ReplicationState{Timeline: 2, ReceivedLSN: "0/3000000", ReplayedLSN: "0/2FFFFF0", Receiver: "streaming",
				Replicas: []xsql.Replica{}, Slots: []xsql.Slot{}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseReplicationState([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nParseReplicationState(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestReplicationClient(t *testing.T) {
	db := &fake.DB{MockQueryRow: func(q xsql.Query, dest ...any) error {
		if strings.HasPrefix(q.SQL, "SELECT pg_catalog.current_setting(") {
			return fake.Scan(dest, `ANY 1 ("orders-1")`)
		}
		return fake.Scan(dest, []byte(`{"primary": true, "timeline": 3}`))
	}}
	c := NewReplicationClient(servers(map[string]*fake.DB{MaintenanceDatabase: db}))
	s, err := c.Observe(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&xsql.ReplicationState{Primary: true, Timeline: 3}, s); diff != "" {
		t.Errorf("Observe reads the document from the maintenance database: -want, +got:\n%s", diff)
	}
	if err := c.SetSynchronousStandbyNames(t.Context(), `ANY 1 ("orders-1")`); err != nil {
		t.Fatal(err)
	}
	if err := c.DropSlot(t.Context(), "orders_3"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		replicationSQL,
		`ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("orders-1")'`,
		"SELECT pg_catalog.pg_reload_conf()",
		"SELECT pg_catalog.current_setting('synchronous_standby_names')",
		"SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots\n  WHERE slot_name = $1 AND slot_type = 'physical' AND NOT active",
	}
	if diff := cmp.Diff(want, db.Ran()); diff != "" {
		t.Errorf("ALTER SYSTEM and the reload are separate queries, outside a transaction: -want, +got:\n%s", diff)
	}
}
