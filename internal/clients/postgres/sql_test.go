package postgres

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// inSync is the Detail of a readWrite login "app_rw" with exactly its
// privileges on database "app" owned by admin "postgres": one table and one
// sequence in public.
func inSync() Detail {
	return Detail{
		Exists: true, Verifier: pencilSCRAM, Attributes: true, Admin: "postgres", DatabaseOwner: "postgres",
		CanConnect: true, Database: []string{"CONNECT"}, Schema: &Schema{Privileges: []string{"CREATE", "USAGE"}},
		Tables: 1, Sequences: 1,
		TableGrants:    map[string]int64{"SELECT": 1, "INSERT": 1, "UPDATE": 1, "DELETE": 1},
		SequenceGrants: map[string]int64{"SELECT": 1, "USAGE": 1},
		DefaultPrivileges: []DefaultPrivileges{
			{Creator: "postgres", Type: "r", Privileges: []string{"DELETE", "INSERT", "SELECT", "UPDATE"}},
			{Creator: "postgres", Type: "S", Privileges: []string{"SELECT", "USAGE"}},
		},
	}
}

// replicationInSync is the Detail of a replication login "app_rw" with
// exactly its level's nothing on database "app": it can connect only
// through PUBLIC's CONNECT, which is not managed.
func replicationInSync(d *Detail) {
	d.Replication, d.Database, d.Schema = true, nil, &Schema{}
	d.TableGrants, d.SequenceGrants, d.DefaultPrivileges = nil, nil, nil
}

func TestPrivilegesPlan(t *testing.T) {
	rw := xsql.Login{Name: "app_rw", Database: "app", Privileges: v1alpha1.ReadWrite}
	repl := xsql.Login{Name: "app_rw", Database: "app", Privileges: v1alpha1.ReplicationPrivileges}
	mon := xsql.Login{Name: "monitoring", Database: "app", Privileges: v1alpha1.MonitoringPrivileges}
	monInSync := func(d *Detail) { replicationInSync(d); d.Replication, d.MemberOf = false, []string{"pg_monitor"} }
	rwAttributes := "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS VALID UNTIL 'infinity'"
	replAttributes := "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS VALID UNTIL 'infinity'"
	type want struct {
		drift []string
		stmts []string
		err   bool
	}
	cases := map[string]struct {
		reason string
		l      xsql.Login
		d      func(d *Detail)
		want   want
	}{
		"InSync": {
			reason: "A login with exactly its level's privileges needs nothing.",
			l:      rw,
			d:      func(*Detail) {},
			want:   want{},
		},
		"Attributes": {
			reason: "A login with an extra attribute such as SUPERUSER gets the managed attributes back.",
			l:      rw,
			d:      func(d *Detail) { d.Attributes = false },
			want: want{
				drift: []string{"role attributes differ from " + rwAttributes},
				stmts: []string{`ALTER ROLE "app_rw" WITH ` + rwAttributes},
			},
		},
		"ReplicationOnReadWrite": {
			reason: "A readWrite login that someone gave REPLICATION has it taken away.",
			l:      rw,
			d:      func(d *Detail) { d.Replication = true },
			want: want{
				drift: []string{"role attributes differ from " + rwAttributes},
				stmts: []string{`ALTER ROLE "app_rw" WITH ` + rwAttributes},
			},
		},
		"OwnedObjectsKeptBelowReplication": {
			reason: "A readWrite login keeps the objects it owns, with their owner's rights.",
			l:      rw,
			d:      func(d *Detail) { d.OwnsObjects = true },
			want:   want{},
		},
		"ReplicationInSync": {
			reason: "A replication login with the attribute and no privilege in its database needs nothing.",
			l:      repl,
			d:      replicationInSync,
			want:   want{},
		},
		"ReplicationAttributeMissing": {
			reason: "A replication login without REPLICATION gets it back with the other attributes.",
			l:      repl,
			d:      func(d *Detail) { replicationInSync(d); d.Replication = false },
			want: want{
				drift: []string{"role attributes differ from " + replAttributes},
				stmts: []string{`ALTER ROLE "app_rw" WITH ` + replAttributes},
			},
		},
		"ReplicationOtherAttribute": {
			reason: "A replication login that someone made SUPERUSER loses it and keeps REPLICATION.",
			l:      repl,
			d:      func(d *Detail) { replicationInSync(d); d.Attributes = false },
			want: want{
				drift: []string{"role attributes differ from " + replAttributes},
				stmts: []string{`ALTER ROLE "app_rw" WITH ` + replAttributes},
			},
		},
		"MonitoringInSync": {
			reason: "A monitoring login that is a member of pg_monitor and has nothing in its database needs nothing.",
			l:      mon,
			d:      monInSync,
			want:   want{},
		},
		"MonitoringNotMember": {
			reason: "A monitoring login that lost pg_monitor is granted it again, and nothing else.",
			l:      mon,
			d:      func(d *Detail) { monInSync(d); d.MemberOf = nil },
			want: want{
				drift: []string{"not a member of pg_monitor"},
				stmts: []string{`GRANT "pg_monitor" TO "monitoring"`},
			},
		},
		"MonitoringOtherRoles": {
			reason: "A monitoring login someone made a member of pg_read_all_data and pg_write_all_data leaves both and keeps pg_monitor.",
			l:      mon,
			d: func(d *Detail) {
				monInSync(d)
				d.MemberOf = []string{"pg_monitor", "pg_read_all_data", "pg_write_all_data"}
			},
			want: want{
				drift: []string{"member of pg_read_all_data, pg_write_all_data"},
				stmts: []string{`REVOKE "pg_read_all_data", "pg_write_all_data" FROM "monitoring"`},
			},
		},
		"MonitoringNoReplication": {
			reason: "A monitoring login is no replication login: REPLICATION is taken away.",
			l:      mon,
			d:      func(d *Detail) { monInSync(d); d.Replication = true },
			want: want{
				drift: []string{"role attributes differ from " + rwAttributes},
				stmts: []string{`ALTER ROLE "monitoring" WITH ` + rwAttributes},
			},
		},
		"MonitoringOwnsNothing": {
			reason: "Objects a monitoring login owns pass to the admin: it reads statistics, never data.",
			l:      mon,
			d:      func(d *Detail) { monInSync(d); d.OwnsObjects = true },
			want: want{
				drift: []string{`owns objects in database "app" or a database`},
				stmts: []string{`REASSIGN OWNED BY "monitoring" TO CURRENT_USER`},
			},
		},
		"ReadWriteMemberOfPgMonitor": {
			reason: "pg_monitor is only for the monitoring level: an app login that is a member leaves it.",
			l:      rw,
			d:      func(d *Detail) { d.MemberOf = []string{"pg_monitor"} },
			want: want{
				drift: []string{"member of pg_monitor"},
				stmts: []string{`REVOKE "pg_monitor" FROM "app_rw"`},
			},
		},
		"ReplicationFromReadWrite": {
			reason: "Switching a readWrite login to replication sets REPLICATION and revokes every privilege, default ones included, granting none.",
			l:      repl,
			d: func(d *Detail) {
				d.ExtraGrants = []RelationGrant{
					{Name: "items", Privileges: []string{"DELETE", "INSERT", "SELECT", "UPDATE"}},
					{Name: "items_id_seq", Sequence: true, Privileges: []string{"SELECT", "USAGE"}},
				}
			},
			want: want{
				drift: []string{
					"role attributes differ from " + replAttributes,
					"database privileges are [CONNECT], want []",
					"schema public privileges are [CREATE USAGE], want []",
					`extra DELETE INSERT SELECT UPDATE on table public."items"`,
					`extra SELECT USAGE on sequence public."items_id_seq"`,
					"extra default privileges DELETE INSERT SELECT UPDATE on tables postgres creates",
					"extra default privileges SELECT USAGE on sequences postgres creates",
				},
				stmts: []string{
					`ALTER ROLE "app_rw" WITH ` + replAttributes,
					`REVOKE ALL ON DATABASE "app" FROM "app_rw"`,
					`REVOKE ALL ON SCHEMA public FROM "app_rw"`,
					`REVOKE DELETE, INSERT, SELECT, UPDATE ON TABLE public."items" FROM "app_rw"`,
					`REVOKE SELECT, USAGE ON SEQUENCE public."items_id_seq" FROM "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public REVOKE ALL ON TABLES FROM "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public REVOKE ALL ON SEQUENCES FROM "app_rw"`,
				},
			},
		},
		"ReadWriteFromReplication": {
			reason: "Switching a replication login to readWrite removes REPLICATION and grants readWrite.",
			l:      rw,
			d:      func(d *Detail) { replicationInSync(d); d.Tables, d.Sequences = 0, 0 },
			want: want{
				drift: []string{
					"role attributes differ from " + rwAttributes,
					"database privileges are [], want [CONNECT]",
					"schema public privileges are [], want [CREATE USAGE]",
					"default privileges on tables postgres creates are [], want [DELETE INSERT SELECT UPDATE]",
					"default privileges on sequences postgres creates are [], want [SELECT USAGE]",
				},
				stmts: []string{
					`ALTER ROLE "app_rw" WITH ` + rwAttributes,
					`GRANT CONNECT ON DATABASE "app" TO "app_rw"`,
					`GRANT CREATE, USAGE ON SCHEMA public TO "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "app_rw"`,
				},
			},
		},
		"ReplicationOwnsDatabase": {
			reason: "A replication login that owns its database hands it, and whatever else it owns, to the admin, and is granted nothing back.",
			l:      repl,
			d: func(d *Detail) {
				replicationInSync(d)
				d.OwnsDatabase, d.OwnsObjects, d.DatabaseOwner, d.Database = true, true, "app_rw", []string{"CONNECT", "CREATE", "TEMPORARY"}
			},
			want: want{
				drift: []string{`owns database "app"`, `owns objects in database "app" or a database`},
				stmts: []string{
					`ALTER DATABASE "app" OWNER TO CURRENT_USER`, `REVOKE ALL ON DATABASE "app" FROM "app_rw"`,
					`REASSIGN OWNED BY "app_rw" TO CURRENT_USER`,
				},
			},
		},
		"ReplicationOwnsSchema": {
			reason: "A replication login that owns schema public hands it to the admin.",
			l:      repl,
			d:      func(d *Detail) { replicationInSync(d); d.OwnsObjects, d.Schema = true, &Schema{Owned: true} },
			want: want{
				drift: []string{`owns objects in database "app" or a database`},
				stmts: []string{`REASSIGN OWNED BY "app_rw" TO CURRENT_USER`},
			},
		},
		"Memberships": {
			reason: "Membership in any role is revoked, quoting each role.",
			l:      rw,
			d:      func(d *Detail) { d.MemberOf = []string{"pg_read_all_data", `we"ird`} },
			want: want{
				drift: []string{`member of pg_read_all_data, we"ird`},
				stmts: []string{`REVOKE "pg_read_all_data", "we""ird" FROM "app_rw"`},
			},
		},
		"ExtraDatabasePrivileges": {
			reason: "Database privileges besides CONNECT are revoked and CONNECT granted again.",
			l:      rw,
			d:      func(d *Detail) { d.Database = []string{"CONNECT", "CREATE", "TEMPORARY"} },
			want: want{
				drift: []string{"database privileges are [CONNECT CREATE TEMPORARY], want [CONNECT]"},
				stmts: []string{`REVOKE ALL ON DATABASE "app" FROM "app_rw"`, `GRANT CONNECT ON DATABASE "app" TO "app_rw"`},
			},
		},
		"MissingConnect": {
			reason: "A missing CONNECT is granted without a revoke.",
			l:      rw,
			d:      func(d *Detail) { d.Database = nil },
			want: want{
				drift: []string{"database privileges are [], want [CONNECT]"},
				stmts: []string{`GRANT CONNECT ON DATABASE "app" TO "app_rw"`},
			},
		},
		"OwnsDatabaseButReadWrite": {
			reason: "A readWrite login that owns the database hands it to the admin.",
			l:      rw,
			d:      func(d *Detail) { d.OwnsDatabase, d.DatabaseOwner = true, "app_rw" },
			want: want{
				drift: []string{`owns database "app"`},
				stmts: []string{`ALTER DATABASE "app" OWNER TO CURRENT_USER`, `REVOKE ALL ON DATABASE "app" FROM "app_rw"`, `GRANT CONNECT ON DATABASE "app" TO "app_rw"`},
			},
		},
		"SchemaAndTables": {
			reason: "Missing schema and table privileges are granted on all tables; extra ones revoked per table.",
			l:      rw,
			d: func(d *Detail) {
				d.Schema.Privileges = []string{"USAGE"}
				d.Tables = 2
				d.ExtraGrants = []RelationGrant{{Name: `it"ems`, Privileges: []string{"SELECT", "TRUNCATE"}}, {Name: "s", Sequence: true, Privileges: []string{"UPDATE"}}}
			},
			want: want{
				drift: []string{
					"schema public privileges are [USAGE], want [CREATE USAGE]",
					"missing DELETE INSERT SELECT UPDATE on some tables in public",
					`extra TRUNCATE on table public."it""ems"`,
					`extra UPDATE on sequence public."s"`,
				},
				stmts: []string{
					`REVOKE ALL ON SCHEMA public FROM "app_rw"`, `GRANT CREATE, USAGE ON SCHEMA public TO "app_rw"`,
					`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "app_rw"`,
					`REVOKE TRUNCATE ON TABLE public."it""ems" FROM "app_rw"`,
					`REVOKE UPDATE ON SEQUENCE public."s" FROM "app_rw"`,
				},
			},
		},
		"DefaultPrivilegesOfOwnerAndStranger": {
			reason: "readWrite gets default privileges on what the database owner creates too; another creator's are revoked.",
			l:      rw,
			d: func(d *Detail) {
				d.DatabaseOwner = "app_owner"
				d.DefaultPrivileges = append(d.DefaultPrivileges, DefaultPrivileges{Creator: "stranger", Type: "r", Privileges: []string{"SELECT"}})
			},
			want: want{
				drift: []string{
					"default privileges on tables app_owner creates are [], want [DELETE INSERT SELECT UPDATE]",
					"default privileges on sequences app_owner creates are [], want [SELECT USAGE]",
					"extra default privileges SELECT on tables stranger creates",
				},
				stmts: []string{
					`ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "app_owner" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "stranger" IN SCHEMA public REVOKE ALL ON TABLES FROM "app_rw"`,
				},
			},
		},
		"ReadOnlyFromReadWrite": {
			reason: "Lowering readWrite to readOnly revokes what readOnly does not allow.",
			l:      xsql.Login{Name: "app_rw", Database: "app", Privileges: v1alpha1.ReadOnly},
			d: func(d *Detail) {
				d.ExtraGrants = []RelationGrant{{Name: "items", Privileges: []string{"DELETE", "INSERT", "UPDATE"}}}
				d.TableGrants = map[string]int64{"SELECT": 1, "INSERT": 1, "UPDATE": 1, "DELETE": 1}
			},
			want: want{
				drift: []string{
					"schema public privileges are [CREATE USAGE], want [USAGE]",
					"extra DELETE INSERT UPDATE on table public.\"items\"",
					"default privileges on tables postgres creates are [DELETE INSERT SELECT UPDATE], want [SELECT]",
					"default privileges on sequences postgres creates are [SELECT USAGE], want [SELECT]",
				},
				stmts: []string{
					`REVOKE ALL ON SCHEMA public FROM "app_rw"`, `GRANT USAGE ON SCHEMA public TO "app_rw"`,
					`REVOKE DELETE, INSERT, UPDATE ON TABLE public."items" FROM "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public REVOKE ALL ON TABLES FROM "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public GRANT SELECT ON TABLES TO "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public REVOKE ALL ON SEQUENCES FROM "app_rw"`,
					`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public GRANT SELECT ON SEQUENCES TO "app_rw"`,
				},
			},
		},
		"Owner": {
			reason: "An owner takes the database over, and ALL on tables and sequences; MAINTAIN (PostgreSQL 17) is allowed.",
			l:      xsql.Login{Name: "app_rw", Database: "app", Privileges: v1alpha1.Owner},
			d: func(d *Detail) {
				d.TableGrants = map[string]int64{"SELECT": 1, "INSERT": 1, "UPDATE": 1, "DELETE": 1, "TRUNCATE": 1, "REFERENCES": 1, "TRIGGER": 1, "MAINTAIN": 1}
				d.SequenceGrants = map[string]int64{"SELECT": 1, "USAGE": 1, "UPDATE": 1}
				d.DefaultPrivileges = []DefaultPrivileges{
					{Creator: "postgres", Type: "r", Privileges: allTablesPG},
					{Creator: "postgres", Type: "S", Privileges: allSequences},
				}
			},
			want: want{
				drift: []string{`does not own database "app"`},
				stmts: []string{`ALTER DATABASE "app" OWNER TO "app_rw"`},
			},
		},
		"OwnSchemaUntouched": {
			reason: "A login that owns schema public keeps its owner's rights there.",
			l:      rw,
			d:      func(d *Detail) { d.Schema = &Schema{Owned: true} },
			want:   want{},
		},
		"NoPublicSchema": {
			reason: "Without schema public only the database level is managed.",
			l:      rw,
			d:      func(d *Detail) { d.Schema, d.Tables, d.TableGrants, d.DefaultPrivileges = nil, 3, nil, nil },
			want:   want{},
		},
		"DatabaseMissing": {
			reason: "A missing database is drift with nothing to run.",
			l:      rw,
			d:      func(d *Detail) { d.DatabaseMissing = true },
			want:   want{drift: []string{`database "app" does not exist`}},
		},
		"HostilePrivilegeName": {
			reason: "A privilege name that is not a keyword is refused rather than written into SQL.",
			l:      rw,
			d:      func(d *Detail) { d.ExtraGrants = []RelationGrant{{Name: "t", Privileges: []string{"SELECT; DROP"}}} },
			want:   want{err: true},
		},
		"UnknownLevel": {
			reason: "An unknown privilege level is an error.",
			l:      xsql.Login{Name: "app_rw", Database: "app", Privileges: "superuser"},
			d:      func(*Detail) {},
			want:   want{err: true},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			d := inSync()
			tc.d(&d)
			p, err := privilegesPlan(tc.l, d)
			got := want{drift: p.drift, stmts: p.stmts, err: err != nil}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nprivilegesPlan(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCreateStatements(t *testing.T) {
	d := Detail{Admin: "postgres", DatabaseOwner: "postgres", Schema: &Schema{}, Tables: 2}
	got, err := CreateStatements(xsql.Login{Name: `a'b"c`, Database: "app", Privileges: v1alpha1.ReadOnly}, d, pencilSCRAM)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`CREATE ROLE "a'b""c" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS VALID UNTIL 'infinity' PASSWORD '` + pencilSCRAM + `'`,
		`GRANT CONNECT ON DATABASE "app" TO "a'b""c"`,
		`GRANT USAGE ON SCHEMA public TO "a'b""c"`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA public TO "a'b""c"`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public GRANT SELECT ON TABLES TO "a'b""c"`,
		`ALTER DEFAULT PRIVILEGES FOR ROLE "postgres" IN SCHEMA public GRANT SELECT ON SEQUENCES TO "a'b""c"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateStatements: a new readOnly role with its privileges, the verifier as a literal: -want, +got:\n%s", diff)
	}

	if _, err := CreateStatements(xsql.Login{Name: "a\x00b", Database: "app", Privileges: v1alpha1.ReadOnly}, d, pencilSCRAM); err == nil {
		t.Error("CreateStatements: a name with a NUL is refused")
	}

	got, err = CreateStatements(xsql.Login{Name: "replication", Database: "app", Privileges: v1alpha1.ReplicationPrivileges}, d, pencilSCRAM)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		`CREATE ROLE "replication" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION NOBYPASSRLS VALID UNTIL 'infinity' PASSWORD '` + pencilSCRAM + `'`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateStatements: a new replication role has REPLICATION and is granted nothing: -want, +got:\n%s", diff)
	}

	got, err = CreateStatements(xsql.Login{Name: "monitoring", Database: "app", Privileges: v1alpha1.MonitoringPrivileges}, d, pencilSCRAM)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		`CREATE ROLE "monitoring" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS VALID UNTIL 'infinity' PASSWORD '` + pencilSCRAM + `'`,
		`GRANT "pg_monitor" TO "monitoring"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CreateStatements: a new monitoring role is a member of pg_monitor and is granted nothing else: -want, +got:\n%s", diff)
	}
}

func TestDeleteStatements(t *testing.T) {
	got, err := DropOwnedStatements(`x"; DROP ROLE postgres; --`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = 'x"; DROP ROLE postgres; --' AND pid <> pg_catalog.pg_backend_pid()`,
		`REASSIGN OWNED BY "x""; DROP ROLE postgres; --" TO CURRENT_USER`,
		`DROP OWNED BY "x""; DROP ROLE postgres; --"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DropOwnedStatements: -want, +got:\n%s", diff)
	}
	drop, err := DropRoleStatement(`it's`)
	if err != nil || drop != `DROP ROLE IF EXISTS "it's"` {
		t.Errorf("DropRoleStatement: got %q, %v", drop, err)
	}
	q, err := DependentDatabasesQuery(`it's`)
	if err != nil || len(q.Args) != 1 || q.Args[0] != `it's` {
		t.Errorf("DependentDatabasesQuery passes the name as a parameter: %+v, %v", q, err)
	}
}

func TestObserveQuery(t *testing.T) {
	q, err := ObserveQuery(xsql.Login{Name: `x'y`, Database: "app", Privileges: v1alpha1.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	want := []any{`x'y`, []string{"SELECT"}, []string{"SELECT"}}
	if diff := cmp.Diff(want, q.Args); diff != "" {
		t.Errorf("ObserveQuery passes the name and the allowed privileges as parameters: -want, +got:\n%s", diff)
	}
	if _, err := ObserveQuery(xsql.Login{Name: "a\x00", Database: "app", Privileges: v1alpha1.ReadOnly}); err == nil {
		t.Error("ObserveQuery refuses a name with a NUL")
	}
	q, err = ObserveQuery(xsql.Login{Name: "r", Database: "app", Privileges: v1alpha1.ReplicationPrivileges})
	if err != nil {
		t.Fatal(err)
	}
	want = []any{"r", []string{}, []string{}}
	if diff := cmp.Diff(want, q.Args); diff != "" {
		t.Errorf("ObserveQuery passes empty arrays, not NULL, for a level that allows nothing: -want, +got:\n%s", diff)
	}
}

func TestConnectionDetails(t *testing.T) {
	ep := xsql.Endpoint{Host: "orders.team-a.svc", Port: 5432, TLS: v1alpha1.TLSVerifyFull, CA: []byte("-----BEGIN CERTIFICATE-----\nca\n")}
	got := ConnectionDetails(ep, xsql.Credential{Username: `we'ird:us@r/`, Password: `p@ss:w/rd'\`}, "my db/x") //nolint:gosec // Test credentials.

	want := map[string]string{ //nolint:gosec // Test credentials.
		"host": "orders.team-a.svc", "port": "5432", "database": "my db/x", "username": `we'ird:us@r/`, "password": `p@ss:w/rd'\`,
		"uri": "postgresql://we%27ird%3Aus%40r%2F:p%40ss%3Aw%2Frd%27%5C@orders.team-a.svc:5432/my%20db%2Fx?sslmode=verify-full",
		"dsn": `host='orders.team-a.svc' port='5432' user='we\'ird:us@r/' password='p@ss:w/rd\'\\' dbname='my db/x' sslmode='verify-full'`,
		// The CA that verifies the server, for sslrootcert.
		"ca.crt": "-----BEGIN CERTIFICATE-----\nca\n",
	}
	s := map[string]string{}
	for k, v := range got {
		s[k] = string(v)
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("ConnectionDetails: every part escaped for its syntax: -want, +got:\n%s", diff)
	}
}
