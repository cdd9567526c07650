package mysql

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/ptr"

	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// MySQL 8.0 and 8.4 are one flavor: the 8.0 image is past 8.0.26, from
// which both take the source/replica forms. These tests hold the MySQL
// statements to the 8.0 and 8.4 reference manuals; no MySQL 8 runs here.
var versions = map[string]Flavor{"8.0.43": MySQL, "8.4.6": MySQL, "10.11.14-MariaDB-0+deb12u2": MariaDB}

func TestReplicateStatements(t *testing.T) {
	src := xsql.Endpoint{Host: "orders.team-a.svc.cluster.local", Port: 3306}
	cred := xsql.Credential{Username: "replication", Password: "pw"}
	type args struct {
		version  string
		source   xsql.Endpoint
		cred     xsql.Credential
		semiSync bool
	}
	type want struct {
		stmts []string
		err   bool
	}
	mysql80 := []string{
		"STOP REPLICA",
		"SET PERSIST super_read_only = ON",
		"SET PERSIST rpl_semi_sync_replica_enabled = ON",
		"SET PERSIST rpl_semi_sync_source_enabled = OFF",
		"CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'orders.team-a.svc.cluster.local', SOURCE_PORT = 3306, SOURCE_USER = 'replication', SOURCE_PASSWORD = 'pw', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1",
		"START REPLICA",
	}
	cases := map[string]struct {
		reason string
		args   args
		want   want
	}{
		"MySQL80": {
			reason: "MySQL 8.0 stops, protects, acknowledges semi-sync and stops waiting as a source, points at the source with GTID auto-positioning (retrying it every second) and starts, in 8.0.26+ forms.",
			args:   args{version: "8.0.43", source: src, cred: cred, semiSync: true},
			want:   want{stmts: mysql80},
		},
		"MySQL84": {
			reason: "MySQL 8.4 takes exactly the 8.0 statements: none of the master/slave forms it removed.",
			args:   args{version: "8.4.6", source: src, cred: cred, semiSync: true},
			want:   want{stmts: mysql80},
		},
		"MySQLNoSemiSyncPlugin": {
			reason: "Without the semi-sync plugin loaded its variable is not set.",
			args:   args{version: "8.4.6", source: src, cred: cred},
			want:   want{stmts: []string{mysql80[0], mysql80[1], mysql80[4], mysql80[5]}},
		},
		"MariaDB": {
			reason: "MariaDB takes CHANGE MASTER with slave_pos GTIDs, read_only and its built-in semi-sync; its slave_pos is first set to all it executed, so that a former primary does not ask for its own transactions again.",
			args:   args{version: "10.11.14-MariaDB-0+deb12u2", source: xsql.Endpoint{Host: "127.0.0.1", Port: 33061}, cred: cred, semiSync: true},
			want: want{stmts: []string{
				"STOP SLAVE",
				"SET GLOBAL read_only = ON",
				"SET GLOBAL rpl_semi_sync_slave_enabled = ON",
				"SET GLOBAL rpl_semi_sync_master_enabled = OFF",
				"SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos",
				"CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = 33061, MASTER_USER = 'replication', MASTER_PASSWORD = 'pw', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
				"START SLAVE",
			}},
		},
		"DefaultPort": {
			reason: "No port is MySQL's 3306.",
			args:   args{version: "10.11.14-MariaDB-0+deb12u2", source: xsql.Endpoint{Host: "h"}, cred: cred},
			want: want{stmts: []string{"STOP SLAVE", "SET GLOBAL read_only = ON", "SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos",
				"CHANGE MASTER TO MASTER_HOST = 'h', MASTER_PORT = 3306, MASTER_USER = 'replication', MASTER_PASSWORD = 'pw', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1", "START SLAVE"}},
		},
		"HostilePasswordAndHost": {
			reason: "A password or host with quotes, backslashes and SQL stays one literal: quotes doubled (the session has NO_BACKSLASH_ESCAPES).",
			args:   args{version: "8.4.6", source: xsql.Endpoint{Host: `h', SOURCE_HOST='evil`, Port: 3306}, cred: xsql.Credential{Username: "replication", Password: `x', SOURCE_HOST = 'evil'; DROP USER root; -- \`}}, //nolint:gosec // A hostile test password, no credential.
			want: want{stmts: []string{"STOP REPLICA", "SET PERSIST super_read_only = ON",
				`CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'h'', SOURCE_HOST=''evil', SOURCE_PORT = 3306, SOURCE_USER = 'replication', SOURCE_PASSWORD = 'x'', SOURCE_HOST = ''evil''; DROP USER root; -- \', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1`,
				"START REPLICA"}},
		},
		"MySQLTLS": {
			reason: "With the members' CA file the replica connects to its source over TLS, verifying its certificate and host name; a hostile path stays one literal.",
			args:   args{version: "8.4.6", source: xsql.Endpoint{Host: "h", Port: 3306, CAFile: `/etc/dbplane-tls/ca.crt', SOURCE_SSL = 0 -- `}, cred: cred},
			want: want{stmts: []string{"STOP REPLICA", "SET PERSIST super_read_only = ON",
				`CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'h', SOURCE_PORT = 3306, SOURCE_USER = 'replication', SOURCE_PASSWORD = 'pw', SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1, SOURCE_SSL = 1, SOURCE_SSL_CA = '/etc/dbplane-tls/ca.crt'', SOURCE_SSL = 0 -- ', SOURCE_SSL_VERIFY_SERVER_CERT = 1`,
				"START REPLICA"}},
		},
		"MariaDBTLS": {
			reason: "MariaDB's forms: MASTER_SSL, MASTER_SSL_CA, MASTER_SSL_VERIFY_SERVER_CERT.",
			args:   args{version: "10.11.14-MariaDB-0+deb12u2", source: xsql.Endpoint{Host: "h", CAFile: "/etc/dbplane-tls/ca.crt"}, cred: cred},
			want: want{stmts: []string{"STOP SLAVE", "SET GLOBAL read_only = ON", "SET GLOBAL gtid_slave_pos = @@global.gtid_current_pos",
				"CHANGE MASTER TO MASTER_HOST = 'h', MASTER_PORT = 3306, MASTER_USER = 'replication', MASTER_PASSWORD = 'pw', MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_SSL = 1, MASTER_SSL_CA = '/etc/dbplane-tls/ca.crt', MASTER_SSL_VERIFY_SERVER_CERT = 1", "START SLAVE"}},
		},
		"NULInPassword": {
			reason: "A NUL cannot be quoted: refused.",
			args:   args{version: "8.4.6", source: src, cred: xsql.Credential{Username: "replication", Password: "a\x00b"}},
			want:   want{err: true},
		},
		"EmptyHost": {
			reason: "A source needs a host.",
			args:   args{version: "8.4.6", cred: cred},
			want:   want{err: true},
		},
		"BadLogin": {
			reason: "The login name must be a valid account name.",
			args:   args{version: "8.4.6", source: src, cred: xsql.Credential{Username: "a:b", Password: "pw"}},
			want:   want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ReplicateStatements(versions[tc.args.version], tc.args.source, tc.args.cred, tc.args.semiSync)
			if diff := cmp.Diff(tc.want, want{stmts: got, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nReplicateStatements(...): -want, +got:\n%s (err %v)", tc.reason, diff, err)
			}
			if err != nil && strings.Contains(err.Error(), tc.args.cred.Password) && tc.args.cred.Password != "" {
				t.Errorf("the error holds the password: %v", err)
			}
		})
	}
}

func TestNoMasterSlaveForMySQL(t *testing.T) {
	d := dialects[MySQL]
	all := append([]string{d.observe, d.status, d.stop, d.start, d.protect, d.semiSyncReplica, d.semiSyncOn, d.semiSyncOff, d.waitFor,
		d.received, d.adopt, d.stopReceiver, d.waitApplied, d.forget, d.demote}, d.change...)
	for _, s := range append(all, d.open...) {
		if u := strings.ToUpper(s); strings.Contains(u, "MASTER") || strings.Contains(u, "SLAVE") {
			t.Errorf("MySQL 8.4 removed the master/slave forms: %q", s)
		}
	}
}

func TestSemiSyncSourceStatements(t *testing.T) {
	cases := map[string]struct {
		reason string
		f      Flavor
		n      int
		want   []string
	}{
		"MySQLOne":   {"MySQL waits for one replica.", MySQL, 1, []string{"SET PERSIST rpl_semi_sync_source_wait_for_replica_count = 1", "SET PERSIST rpl_semi_sync_source_enabled = ON"}},
		"MySQLTwo":   {"MySQL waits for N replicas.", MySQL, 2, []string{"SET PERSIST rpl_semi_sync_source_wait_for_replica_count = 2", "SET PERSIST rpl_semi_sync_source_enabled = ON"}},
		"MySQLOff":   {"0 is asynchronous.", MySQL, 0, []string{"SET PERSIST rpl_semi_sync_source_enabled = OFF"}},
		"MariaDBOne": {"MariaDB has no replica count: it waits for one.", MariaDB, 2, []string{"SET GLOBAL rpl_semi_sync_master_enabled = ON"}},
		"MariaDBOff": {"0 is asynchronous.", MariaDB, 0, []string{"SET GLOBAL rpl_semi_sync_master_enabled = OFF"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := SemiSyncSourceStatements(tc.f, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nSemiSyncSourceStatements(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCloneStatements(t *testing.T) {
	cred := xsql.Credential{Username: "replication", Password: "p'w"}
	donor := xsql.Endpoint{Host: "orders-0.orders-headless.team-a.svc.cluster.local", Port: 3306}
	cases := map[string]struct {
		reason string
		f      Flavor
		donor  xsql.Endpoint
		want   []string
		err    bool
	}{
		"MySQL": {
			reason: "MySQL 8 allows the donor, then clones from it as the replication login, the password quoted.",
			f:      MySQL, donor: donor,
			want: []string{
				"SET GLOBAL clone_valid_donor_list = 'orders-0.orders-headless.team-a.svc.cluster.local:3306'",
				"CLONE INSTANCE FROM 'replication'@'orders-0.orders-headless.team-a.svc.cluster.local':3306 IDENTIFIED BY 'p''w'",
			},
		},
		"MariaDB":  {reason: "MariaDB has no CLONE.", f: MariaDB, donor: donor, err: true},
		"Colon":    {reason: "clone_valid_donor_list cannot carry an IPv6 address.", f: MySQL, donor: xsql.Endpoint{Host: "::1", Port: 3306}, err: true},
		"Comma":    {reason: "A comma would add a donor.", f: MySQL, donor: xsql.Endpoint{Host: "a,evil", Port: 3306}, err: true},
		"Injected": {reason: "A quote in the host stays in the literal.", f: MySQL, donor: xsql.Endpoint{Host: "a'b", Port: 1}, want: []string{"SET GLOBAL clone_valid_donor_list = 'a''b:1'", "CLONE INSTANCE FROM 'replication'@'a''b':1 IDENTIFIED BY 'p''w'"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := CloneStatements(tc.f, tc.donor, cred)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nCloneStatements(...): err %v, want error %t", tc.reason, err, tc.err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCloneStatements(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func replRow(vals ...any) ReplicationRow {
	var r ReplicationRow
	for i, v := range vals {
		if s, ok := v.(string); ok {
			r[i] = sql.NullString{String: s, Valid: true}
		}
	}
	return r
}

func TestParseReplication(t *testing.T) {
	mysqlReplica := map[string]string{"Source_Host": "orders.team-a.svc.cluster.local", "Source_Port": "3306", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes", "Seconds_Behind_Source": "3", "Last_IO_Error": "", "Last_SQL_Error": ""}
	mariaReplica := map[string]string{"Master_Host": "127.0.0.1", "Master_Port": "33061", "Slave_IO_Running": "Connecting", "Slave_SQL_Running": "Yes", "Last_IO_Error": "error connecting to master", "Last_SQL_Error": ""}
	cases := map[string]struct {
		reason string
		f      Flavor
		row    ReplicationRow
		status []map[string]string
		want   *xsql.ReplicationState
	}{
		"MySQLFreshPrimary": {
			reason: "A writable MySQL server replicating from no one with no tables is a blank primary; the plugins are active.",
			f:      MySQL, row: replRow("0", "0", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1", "0", "ACTIVE", "OFF", "1", "OFF"),
			want: &xsql.ReplicationState{OwnSource: true, Primary: true, Blank: true, Position: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1", Received: "3e11fa47-71ca-11e1-9e33-c80aa9429562:1", CanClone: true,
				SemiSync: &xsql.SemiSync{WaitFor: 1}},
		},
		"MySQLPrimaryWithData": {
			reason: "Tables outside the system schemas: a primary apps wrote to, semi-sync on.",
			f:      MySQL, row: replRow("0", "0", "u:1-9", "4", "ACTIVE", "ON", "2", "ON", "ON", "OFF"),
			want: &xsql.ReplicationState{OwnSource: true, Primary: true, Position: "u:1-9", Received: "u:1-9", UserTables: 4, CanClone: true,
				SemiSync: &xsql.SemiSync{SourceEnabled: true, WaitFor: 2, ReplicaEnabled: true, SourceActive: true}},
		},
		"MySQLReplica": {
			reason: "super_read_only and a source: a replica, its lag Seconds_Behind_Source; no plugins loaded.",
			f:      MySQL, row: replRow("1", "1", "u:1-9", "4", nil, nil, nil, nil), status: []map[string]string{mysqlReplica},
			want: &xsql.ReplicationState{OwnSource: true, Protected: true, Position: "u:1-9", Received: "u:1-9", UserTables: 4,
				Source: &xsql.Source{Host: "orders.team-a.svc.cluster.local", Port: 3306, IO: "Yes", SQL: "Yes", LagSeconds: ptr.To[int64](3)}},
		},
		"MySQLWritableReplica": {
			reason: "Writable but with a source configured (a replica restarted without persisted settings): not a primary.",
			f:      MySQL, row: replRow("0", "0", "u:1-9", "4", "ACTIVE", nil, nil, nil), status: []map[string]string{mysqlReplica},
			want: &xsql.ReplicationState{OwnSource: true, Position: "u:1-9", Received: "u:1-9", UserTables: 4, CanClone: true,
				Source: &xsql.Source{Host: "orders.team-a.svc.cluster.local", Port: 3306, IO: "Yes", SQL: "Yes", LagSeconds: ptr.To[int64](3)}},
		},
		"ReadOnlyIsNoPrimary": {
			reason: "read_only alone (not super_read_only) is no primary either: a new pod, read-only from the composed configuration until the provider opens it, is blank all the same.",
			f:      MySQL, row: replRow("1", "0", "", "0", "ACTIVE", nil, nil, nil),
			want: &xsql.ReplicationState{OwnSource: true, Blank: true, CanClone: true},
		},
		"MariaDBReplicaConnecting": {
			reason: "MariaDB's Slave_* columns; a thread not running leaves the lag out and the error is reported.",
			f:      MariaDB, row: replRow("1", "1", "0-100-12", "1", nil, "OFF", nil, "ON", "OFF", "OFF"), status: []map[string]string{mariaReplica},
			want: &xsql.ReplicationState{OwnSource: true, Protected: true, Position: "0-100-12", Received: "0-100-12", UserTables: 1,
				SemiSync: &xsql.SemiSync{ReplicaEnabled: true},
				Source:   &xsql.Source{Host: "127.0.0.1", Port: 33061, IO: "Connecting", SQL: "Yes", LastError: "error connecting to master"}},
		},
		"MySQLReplicaReceivedMore": {
			reason: "What a MySQL replica received and has not applied (Retrieved_Gtid_Set) counts: Received is the union, as it would be once promoted; it acknowledges semi-sync.",
			f:      MySQL, row: replRow("1", "1", "u:1-9", "4", "ACTIVE", "OFF", "1", "ON", "OFF", "ON"),
			status: []map[string]string{{"Source_Host": "h", "Source_Port": "3306", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "Yes", "Retrieved_Gtid_Set": "u:5-12"}},
			want: &xsql.ReplicationState{OwnSource: true, Protected: true, Position: "u:1-9", Received: "u:1-9,u:5-12", UserTables: 4, CanClone: true,
				SemiSync: &xsql.SemiSync{WaitFor: 1, ReplicaEnabled: true, ReplicaActive: true},
				Source:   &xsql.Source{Host: "h", Port: 3306, IO: "Yes", SQL: "Yes", Received: "u:5-12"}},
		},
		"MariaDBReplicaReceivedMore": {
			reason: "A MariaDB replica's Gtid_IO_Pos ahead of its gtid_current_pos: Received takes each domain's later transaction.",
			f:      MariaDB, row: replRow("1", "1", "0-100-12,1-100-3", "1", nil, "OFF", nil, "ON", "OFF", "ON"),
			status: []map[string]string{{"Master_Host": "h", "Master_Port": "3306", "Slave_IO_Running": "No", "Slave_SQL_Running": "Yes", "Gtid_IO_Pos": "0-100-15"}},
			want: &xsql.ReplicationState{OwnSource: true, Protected: true, Position: "0-100-12,1-100-3", Received: "0-100-15,1-100-3", UserTables: 1,
				SemiSync: &xsql.SemiSync{ReplicaEnabled: true, ReplicaActive: true},
				Source:   &xsql.Source{Host: "h", Port: 3306, IO: "No", SQL: "Yes", Received: "0-100-15"}},
		},
		"RestartedPrimaryIsReadOnly": {
			reason: "A primary restarted with the composed read_only: data, no source, read-only: no primary, and not blank.",
			f:      MariaDB, row: replRow("1", "1", "0-100-40", "3", nil, "ON", nil, "OFF", "OFF", "OFF"),
			want: &xsql.ReplicationState{OwnSource: true, Protected: true, Position: "0-100-40", Received: "0-100-40", UserTables: 3,
				SemiSync: &xsql.SemiSync{SourceEnabled: true}},
		},
		"EmptyHostIsNoSource": {
			reason: "A status row without a host (RESET REPLICA ALL leaves none; a reset one may) is no source.",
			f:      MariaDB, row: replRow("0", "0", "", "0", nil, "OFF", nil, "OFF"), status: []map[string]string{{"Master_Host": ""}},
			want: &xsql.ReplicationState{OwnSource: true, Primary: true, Blank: true, SemiSync: &xsql.SemiSync{}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := ParseReplication(tc.f, tc.row, tc.status)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nParseReplication(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFlavorOfVersions(t *testing.T) {
	for v, want := range versions {
		if got := FlavorOf(v); got != want {
			t.Errorf("FlavorOf(%q) = %s, want %s", v, got, want)
		}
	}
}

func TestPositionContains(t *testing.T) {
	const a, b = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4a22fa47-71ca-11e1-9e33-c80aa9429562"
	cases := map[string]struct {
		reason     string
		super, sub string
		want       bool
		err        bool
	}{
		"EmptySub":            {reason: "Nothing executed is in anything.", super: "", sub: "", want: true},
		"Equal":               {reason: "A set contains itself.", super: a + ":1-10", sub: a + ":1-10", want: true},
		"Behind":              {reason: "A replica behind the primary.", super: a + ":1-10," + b + ":1-3", sub: a + ":1-7", want: true},
		"OwnTransaction":      {reason: "A server with a transaction of its own UUID (the image's entrypoint ran on it).", super: a + ":1-10", sub: a + ":1-10,\n" + b + ":1", want: false},
		"Gap":                 {reason: "Intervals with gaps are compared interval by interval.", super: a + ":1-5:7-10", sub: a + ":6", want: false},
		"Adjacent":            {reason: "Adjacent intervals are one.", super: a + ":1-5:6-10", sub: a + ":3-8", want: true},
		"CaseInsensitiveUUID": {reason: "UUIDs compare without case.", super: strings.ToUpper(a) + ":1-3", sub: a + ":2", want: true},
		"Tagged":              {reason: "MySQL 8.4 tags name their own transactions.", super: a + ":1-5:dbplane:1-2", sub: a + ":dbplane:2", want: true},
		"TaggedMissing":       {reason: "A tag's transactions are not the untagged ones.", super: a + ":1-5", sub: a + ":dbplane:2", want: false},
		"Malformed":           {reason: "Garbage is an error, not a yes.", super: a + ":1-5", sub: a + ":5-1", err: true},
		"MariaDBBehind":       {reason: "MariaDB: a lower sequence number in the domain.", super: "0-100-12,1-100-3", sub: "0-100-9", want: true},
		"MariaDBEqual":        {reason: "MariaDB: the same last transaction.", super: "0-100-12", sub: "0-100-12", want: true},
		"MariaDBOtherServer":  {reason: "MariaDB: the same sequence number from another server has diverged.", super: "0-100-12", sub: "0-101-12", want: false},
		"MariaDBAhead":        {reason: "MariaDB: ahead of the primary.", super: "0-100-12", sub: "0-100-13", want: false},
		"MariaDBOtherDomain":  {reason: "MariaDB: a domain the primary has not seen.", super: "0-100-12", sub: "0-100-1,2-101-1", want: false},
		"MariaDBMalformed":    {reason: "MariaDB: garbage is an error.", super: "0-100-12", sub: "0-x-1", err: true},
		"MariaDBFormerPrimaryDiverged": {
			reason: "MariaDB: a killed primary's transaction 0-100-6 that no replica received is not in the new primary's binlog state, though its domain went on past 6 from another server.",
			super:  "0-100-5,0-101-7790", sub: "0-100-6", want: false,
		},
		"MariaDBFormerPrimaryBehind": {reason: "MariaDB: a former primary whose last transaction the new primary has.", super: "0-100-6,0-101-7790", sub: "0-100-6", want: true},
		"MariaDBReplicaOfBoth":       {reason: "MariaDB: a replica of both primaries, behind on the second.", super: "0-100-5,0-101-7790", sub: "0-100-5,0-101-7000", want: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := PositionContains(tc.super, tc.sub)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("%s\nPositionContains(%q, %q) = %t, %v; want %t, error %t", tc.reason, tc.super, tc.sub, got, err, tc.want, tc.err)
			}
		})
	}
}

// TestFailoverStatements holds the statements of a failover and a
// switchover to the MySQL 8.0 and 8.4 manuals (MySQL) and to MariaDB 10.11,
// which the integration tests run.
func TestFailoverStatements(t *testing.T) {
	type got struct {
		StopReceiver string
		WaitApplied  xsql.Query
		Promote      []string
		Open         []string
		Demote       string
		StopStart    []string
	}
	build := func(f Flavor) (got, error) {
		var g got
		var err error
		errs := make([]error, 6)
		g.StopReceiver, errs[0] = StopReceiverStatement(f)
		g.WaitApplied, errs[1] = WaitAppliedQuery(f, "u:1-9", 30*time.Second)
		g.Promote, errs[2] = PromoteStatements(f, true)
		g.Open, errs[3] = PromoteStatements(f, false)
		g.Demote, errs[4] = DemoteStatement(f)
		var stop, start string
		stop, errs[5] = StopReplicationStatement(f)
		start, _ = StartReplicationStatement(f)
		g.StopStart = []string{stop, start}
		for _, e := range errs {
			if e != nil {
				err = e
			}
		}
		return g, err
	}
	cases := map[string]struct {
		reason string
		f      Flavor
		want   got
		err    bool
	}{
		"MySQL": {
			reason: "MySQL 8 stops the receiver, waits with WAIT_FOR_EXECUTED_GTID_SET for what it received (the set an argument), resets the replica and turns super_read_only then read_only off with SET GLOBAL (the persisted super_read_only stays for its next start); a server replicating from no one is only opened, with no STOP REPLICA; a demoted primary gets super_read_only.",
			f:      MySQL,
			want: got{
				StopReceiver: "STOP REPLICA IO_THREAD",
				WaitApplied:  xsql.Query{SQL: "SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)", Args: []any{"u:1-9", int64(30)}},
				Promote:      []string{"STOP REPLICA", "RESET REPLICA ALL", "SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"},
				Open:         []string{"SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"},
				Demote:       "SET GLOBAL super_read_only = ON",
				StopStart:    []string{"STOP REPLICA", "START REPLICA"},
			},
		},
		"MariaDB": {
			reason: "MariaDB waits with MASTER_GTID_WAIT, resets with RESET SLAVE ALL and has only read_only.",
			f:      MariaDB,
			want: got{
				StopReceiver: "STOP SLAVE IO_THREAD",
				WaitApplied:  xsql.Query{SQL: "SELECT MASTER_GTID_WAIT(?, ?)", Args: []any{"u:1-9", int64(30)}},
				Promote:      []string{"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only = OFF"},
				Open:         []string{"SET GLOBAL read_only = OFF"},
				Demote:       "SET GLOBAL read_only = ON",
				StopStart:    []string{"STOP SLAVE", "START SLAVE"},
			},
		},
		"Unknown": {reason: "An unknown flavor has no statements.", f: Flavor("Percona"), err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g, err := build(tc.f)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nfailover statements: err %v, want error %t", tc.reason, err, tc.err)
			}
			if tc.err {
				return
			}
			if diff := cmp.Diff(tc.want, g); diff != "" {
				t.Errorf("%s\nfailover statements: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
	if got, want := KillStatement(42), "KILL CONNECTION 42"; got != want {
		t.Errorf("KillStatement(42) = %q, want %q", got, want)
	}
}

func TestUnion(t *testing.T) {
	cases := map[string]struct {
		reason string
		a, b   string
		want   string
		err    bool
	}{
		"MySQLSets":     {reason: "MySQL sets are joined; PositionContains merges the intervals.", a: "u:1-9", b: "u:5-12", want: "u:1-9,u:5-12"},
		"MySQLEmpty":    {reason: "Nothing received: the executed set.", a: "u:1-9", want: "u:1-9"},
		"MariaDBLater":  {reason: "Each domain and server's later transaction, sorted.", a: "1-100-3,0-100-12", b: "0-101-15,0-100-14", want: "0-100-14,0-101-15,1-100-3"},
		"MariaDBBehind": {reason: "A received position behind the executed one changes nothing.", a: "0-100-12", b: "0-100-10", want: "0-100-12"},
		"Bad":           {reason: "A position that does not parse is an error.", a: "0-100-12", b: "x-y", err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := union(tc.a, tc.b)
			if (err != nil) != tc.err {
				t.Fatalf("%s\nunion(%q, %q): err %v", tc.reason, tc.a, tc.b, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nunion(...): -want, +got:\n%s", tc.reason, diff)
			}
			if tc.err {
				return
			}
			for _, p := range []string{tc.a, tc.b} {
				if in, err := PositionContains(got, p); err != nil || !in {
					t.Errorf("%s\nunion(...) = %q does not contain %q (err %v)", tc.reason, got, p, err)
				}
			}
		})
	}
}

// TestReloadTLSStatement: each flavour's statement that reads the TLS
// files again without a restart. MySQL 8's is checked here only: no MySQL 8
// server runs in the tests (MariaDB's runs in test/integration).
func TestReloadTLSStatement(t *testing.T) {
	for v, want := range map[string]string{
		"8.0.43":                     "ALTER INSTANCE RELOAD TLS",
		"8.4.6":                      "ALTER INSTANCE RELOAD TLS",
		"10.11.14-MariaDB-0+deb12u2": "FLUSH SSL",
	} {
		got, err := ReloadTLSStatement(FlavorOf(v))
		if err != nil || got != want {
			t.Errorf("ReloadTLSStatement(FlavorOf(%q)): want %q, got %q (%v)", v, want, got, err)
		}
	}
	if _, err := ReloadTLSStatement("Other"); err == nil {
		t.Error(`ReloadTLSStatement("Other"): want an error`)
	}
}
