package mysql

import (
	"database/sql"
	"encoding/hex"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/test"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/clients/xsql/fake"
)

var rw = xsql.Login{Name: "app_rw", Database: "my_app", Privileges: v1alpha1.ReadWrite}

func TestPrivilegesPlan(t *testing.T) {
	type want struct {
		drift []string
		stmts []string
		err   bool
	}
	repl := xsql.Login{Name: "repl", Database: "app", Privileges: v1alpha1.ReplicationPrivileges}
	mon := xsql.Login{Name: "monitoring", Database: "app", Privileges: v1alpha1.MonitoringPrivileges}
	cases := map[string]struct {
		reason string
		// f is the server's flavor, MariaDB when unset: only the
		// replication level differs by flavor.
		f    Flavor
		l    xsql.Login
		d    Detail
		want want
	}{
		"InSync": {
			reason: "An account with exactly its level's privileges needs nothing.",
			l:      rw,
			d:      Detail{Database: []string{"CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "SELECT", "UPDATE"}},
		},
		"New": {
			reason: "An account without privileges is granted its level on exactly its database.",
			l:      rw,
			want: want{
				drift: []string{"missing CREATE TEMPORARY TABLES, DELETE, EXECUTE, INSERT, SELECT, UPDATE on `my\\_app`.*"},
				stmts: []string{"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON `my\\_app`.* TO 'app_rw'@'%'"},
			},
		},
		"ExtraAndMissingAndGrantOption": {
			reason: "Extra database privileges are revoked by name, missing ones granted, GRANT OPTION revoked.",
			l:      rw,
			d:      Detail{Database: []string{"ALTER+", "CREATE TEMPORARY TABLES", "DELETE", "DROP+", "EXECUTE", "SELECT", "UPDATE"}},
			want: want{
				drift: []string{"missing INSERT on `my\\_app`.*", "extra ALTER, DROP on `my\\_app`.*", "GRANT OPTION on `my\\_app`.*"},
				stmts: []string{
					"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON `my\\_app`.* TO 'app_rw'@'%'",
					"REVOKE ALTER, DROP ON `my\\_app`.* FROM 'app_rw'@'%'",
					"REVOKE GRANT OPTION ON `my\\_app`.* FROM 'app_rw'@'%'",
				},
			},
		},
		"Locked": {
			reason: "A locked account is unlocked.",
			l:      xsql.Login{Name: "ro", Database: "app", Privileges: v1alpha1.ReadOnly},
			d:      Detail{Locked: true, Database: []string{"SELECT", "SHOW VIEW"}},
			want:   want{drift: []string{"account is locked"}, stmts: []string{"ALTER USER 'ro'@'%' ACCOUNT UNLOCK"}},
		},
		"Elsewhere": {
			reason: "Global privileges or grants on other databases, tables or routines need a full reset, then the level's grant.",
			l:      xsql.Login{Name: "ro", Database: "app", Privileges: v1alpha1.ReadOnly},
			d:      Detail{Global: []string{"PROCESS", "USAGE+"}, OtherDatabases: 1, ObjectPrivileges: 2, Database: []string{"SELECT", "SHOW VIEW"}},
			want: want{
				drift: []string{"extra global privileges PROCESS USAGE+, 1 grants on other databases, 2 grants on tables, columns or routines"},
				stmts: []string{"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'ro'@'%'", "GRANT SELECT, SHOW VIEW ON `app`.* TO 'ro'@'%'"},
			},
		},
		"OwnerAllowsMore": {
			reason: "An owner may hold privileges newer servers add to ALL PRIVILEGES.",
			l:      xsql.Login{Name: "own", Database: "app", Privileges: v1alpha1.Owner},
			d:      Detail{Database: append(append([]string{}, levels[v1alpha1.Owner].need...), "DELETE HISTORY", "SHOW CREATE ROUTINE")},
		},
		"HostilePrivilegeName": {
			reason: "A privilege name that is not upper-case words is refused rather than written into SQL.",
			l:      rw,
			d:      Detail{Database: []string{"CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "SELECT", "UPDATE", "x; DROP"}},
			want:   want{err: true},
		},
		"UnknownFlavor": {
			reason: "An unknown flavor is an error, not a guess at its privilege names.",
			f:      "Oracle",
			l:      repl,
			want:   want{err: true},
		},
		"ReplicationNewMySQL": {
			reason: "A new replication account on MySQL 8 gets REPLICATION SLAVE, REPLICATION CLIENT and BACKUP_ADMIN (for CLONE) globally, nothing on the database.",
			f:      MySQL,
			l:      repl,
			want: want{
				drift: []string{"missing BACKUP_ADMIN, REPLICATION CLIENT, REPLICATION SLAVE on *.*"},
				stmts: []string{"GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO 'repl'@'%'"},
			},
		},
		"ReplicationNewMariaDB": {
			reason: "A new replication account on MariaDB gets REPLICATION SLAVE and REPLICATION CLIENT, which it lists as BINLOG MONITOR; it has no BACKUP_ADMIN.",
			f:      MariaDB,
			l:      repl,
			want: want{
				drift: []string{"missing BINLOG MONITOR, REPLICATION SLAVE on *.*"},
				stmts: []string{"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%'"},
			},
		},
		"ReplicationInSyncMariaDB": {
			reason: "A replication account with exactly its global privileges, as MariaDB lists them, needs nothing.",
			f:      MariaDB,
			l:      repl,
			d:      Detail{Global: []string{"BINLOG MONITOR", "REPLICATION SLAVE"}},
		},
		"ReplicationInSyncMySQL": {
			reason: "A replication account with exactly its global privileges, as MySQL 8 lists them, needs nothing.",
			f:      MySQL,
			l:      repl,
			d:      Detail{Global: []string{"BACKUP_ADMIN", "REPLICATION CLIENT", "REPLICATION SLAVE"}},
		},
		"ReplicationMissingBackupAdmin": {
			reason: "On MySQL 8 a replication account without BACKUP_ADMIN is granted the level's global privileges again.",
			f:      MySQL,
			l:      repl,
			d:      Detail{Global: []string{"REPLICATION CLIENT", "REPLICATION SLAVE"}},
			want: want{
				drift: []string{"missing BACKUP_ADMIN on *.*"},
				stmts: []string{"GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO 'repl'@'%'"},
			},
		},
		"ReplicationExtraGlobal": {
			reason: "A global privilege beyond the level's, or GRANT OPTION on one of its own, needs a full reset, then the level's global grant.",
			f:      MariaDB,
			l:      repl,
			d:      Detail{Global: []string{"BINLOG MONITOR", "REPLICATION SLAVE+", "SUPER"}},
			want: want{
				drift: []string{"extra global privileges REPLICATION SLAVE+ SUPER"},
				stmts: []string{"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'repl'@'%'", "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%'"},
			},
		},
		"ReplicationFromReadWrite": {
			reason: "Switching a readWrite account to replication grants the global privileges and revokes every one on the database.",
			f:      MariaDB,
			l:      repl,
			d:      Detail{Database: []string{"CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "SELECT+", "UPDATE"}},
			want: want{
				drift: []string{"missing BINLOG MONITOR, REPLICATION SLAVE on *.*", "extra CREATE TEMPORARY TABLES, DELETE, EXECUTE, INSERT, SELECT, UPDATE on `app`.*", "GRANT OPTION on `app`.*"},
				stmts: []string{
					"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%'",
					"REVOKE CREATE TEMPORARY TABLES, DELETE, EXECUTE, INSERT, SELECT, UPDATE ON `app`.* FROM 'repl'@'%'",
					"REVOKE GRANT OPTION ON `app`.* FROM 'repl'@'%'",
				},
			},
		},
		"MonitoringInSyncMariaDB": {
			reason: "A monitoring account on MariaDB with PROCESS, BINLOG MONITOR, SLAVE MONITOR and SELECT on performance_schema needs nothing.",
			l:      mon,
			d:      Detail{Global: []string{"BINLOG MONITOR", "PROCESS", "SLAVE MONITOR"}, Database: []string{"SELECT"}},
		},
		"MonitoringNewMySQL": {
			reason: "A new monitoring account on MySQL 8 is granted PROCESS and REPLICATION CLIENT, and SELECT on performance_schema, not on its database.",
			f:      MySQL,
			l:      mon,
			want: want{
				drift: []string{"missing PROCESS, REPLICATION CLIENT on *.*", "missing SELECT on `performance\\_schema`.*"},
				stmts: []string{
					"GRANT PROCESS, REPLICATION CLIENT ON *.* TO 'monitoring'@'%'",
					"GRANT SELECT ON `performance\\_schema`.* TO 'monitoring'@'%'",
				},
			},
		},
		"MonitoringExtraOnPerformanceSchema": {
			reason: "A monitoring account that can also write performance_schema (TRUNCATE is DROP there) loses that.",
			l:      mon,
			d:      Detail{Global: []string{"BINLOG MONITOR", "PROCESS", "SLAVE MONITOR"}, Database: []string{"DROP", "SELECT", "UPDATE"}},
			want: want{
				drift: []string{"extra DROP, UPDATE on `performance\\_schema`.*"},
				stmts: []string{"REVOKE DROP, UPDATE ON `performance\\_schema`.* FROM 'monitoring'@'%'"},
			},
		},
		"MonitoringWithSuper": {
			reason: "A monitoring account someone gave SUPER is reset to exactly its level.",
			l:      mon,
			d:      Detail{Global: []string{"BINLOG MONITOR", "PROCESS", "SLAVE MONITOR", "SUPER"}, Database: []string{"SELECT"}},
			want: want{
				drift: []string{"extra global privileges SUPER"},
				stmts: []string{
					"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'monitoring'@'%'",
					"GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'monitoring'@'%'",
					"GRANT SELECT ON `performance\\_schema`.* TO 'monitoring'@'%'",
				},
			},
		},
		"MonitoringOnItsDatabase": {
			reason: "A grant on the app database is another database's for a monitoring account: it reads no app data.",
			l:      mon,
			d:      Detail{Global: []string{"BINLOG MONITOR", "PROCESS", "SLAVE MONITOR"}, Database: []string{"SELECT"}, OtherDatabases: 1},
			want: want{
				drift: []string{"extra 1 grants on other databases"},
				stmts: []string{
					"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'monitoring'@'%'",
					"GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'monitoring'@'%'",
					"GRANT SELECT ON `performance\\_schema`.* TO 'monitoring'@'%'",
				},
			},
		},
		"ReadWriteFromReplication": {
			reason: "Switching a replication account to readWrite resets its global privileges, which no other level has, and grants readWrite.",
			f:      MySQL,
			l:      rw,
			d:      Detail{Global: []string{"BACKUP_ADMIN", "REPLICATION CLIENT", "REPLICATION SLAVE"}},
			want: want{
				drift: []string{"extra global privileges BACKUP_ADMIN REPLICATION CLIENT REPLICATION SLAVE"},
				stmts: []string{
					"REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'app_rw'@'%'",
					"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON `my\\_app`.* TO 'app_rw'@'%'",
				},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := tc.f
			if f == "" {
				f = MariaDB
			}
			p, err := privilegesPlan(f, tc.l, tc.d)
			if diff := cmp.Diff(tc.want, want{drift: p.drift, stmts: p.stmts, err: err != nil}, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nprivilegesPlan(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestStatementsPerFlavor(t *testing.T) {
	l := xsql.Login{Name: `x'y\`, Database: "app", Privileges: v1alpha1.ReadOnly}
	cases := map[string]struct {
		reason string
		f      Flavor
		want   []string
	}{
		"MariaDB": {
			reason: "MariaDB gets the mysql_native_password hash, so the password never appears in a statement.",
			f:      MariaDB,
			want: []string{
				`CREATE USER 'x''y\'@'%' IDENTIFIED VIA mysql_native_password USING '` + NativeHash("pencil") + `'`,
				`GRANT SELECT, SHOW VIEW ON ` + "`app`" + `.* TO 'x''y\'@'%'`,
			},
		},
		"MySQL": {
			reason: "MySQL 8 gets caching_sha2_password from the password, which the server hashes and redacts from its logs.",
			f:      MySQL,
			want: []string{
				`CREATE USER 'x''y\'@'%' IDENTIFIED WITH caching_sha2_password BY 'pencil'`,
				`GRANT SELECT, SHOW VIEW ON ` + "`app`" + `.* TO 'x''y\'@'%'`,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := CreateStatements(tc.f, l, "pencil")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCreateStatements(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCreateStatementsReplication(t *testing.T) {
	l := xsql.Login{Name: "repl", Database: "app", Privileges: v1alpha1.ReplicationPrivileges}
	cases := map[string]struct {
		reason string
		f      Flavor
		want   []string
	}{
		"MariaDB": {
			reason: "A replication account on MariaDB is created with REPLICATION SLAVE and REPLICATION CLIENT, and nothing on its database.",
			f:      MariaDB,
			want: []string{
				`CREATE USER 'repl'@'%' IDENTIFIED VIA mysql_native_password USING '` + NativeHash("pencil") + `'`,
				`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'repl'@'%'`,
			},
		},
		"MySQL": {
			reason: "A replication account on MySQL 8 also gets BACKUP_ADMIN, for CLONE.",
			f:      MySQL,
			want: []string{
				`CREATE USER 'repl'@'%' IDENTIFIED WITH caching_sha2_password BY 'pencil'`,
				`GRANT REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN ON *.* TO 'repl'@'%'`,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := CreateStatements(tc.f, l, "pencil")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nCreateStatements(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestObserveQuery(t *testing.T) {
	q, err := ObserveQuery(MariaDB, xsql.Login{Name: `x'y`, Database: "my_app", Privileges: v1alpha1.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	g := `'x'y'@'%'`
	want := []any{g, g, `my\_app`, g, `my\_app`, g, g, `x'y`, `x'y`}
	if diff := cmp.Diff(want, q.Args); diff != "" {
		t.Errorf("ObserveQuery passes names as parameters, grantees as information_schema writes them: -want, +got:\n%s", diff)
	}
	q, err = ObserveQuery(MySQL, xsql.Login{Name: "monitoring", Database: "app", Privileges: v1alpha1.MonitoringPrivileges})
	if err != nil {
		t.Fatal(err)
	}
	g = `'monitoring'@'%'`
	want = []any{g, g, `performance\_schema`, g, `performance\_schema`, g, g, "monitoring", "monitoring"}
	if diff := cmp.Diff(want, q.Args); diff != "" {
		t.Errorf("ObserveQuery reads a monitoring login's privileges on performance_schema, its level's database: -want, +got:\n%s", diff)
	}
	if _, err := ObserveQuery("Oracle", rw); err == nil {
		t.Error("ObserveQuery refuses an unknown flavor")
	}
}

func row(plugin, auth string, db string) func(xsql.Query, ...any) error {
	return func(_ xsql.Query, dest ...any) error {
		return fake.Scan(dest,
			sql.NullString{String: plugin, Valid: true}, sql.NullString{String: hex.EncodeToString([]byte(auth)), Valid: true},
			"N", "N", "N", sql.NullString{}, sql.NullString{String: db, Valid: db != ""}, int64(0), int64(0))
	}
}

func TestClientObserve(t *testing.T) {
	version := func(v string) func(dest ...any) error {
		return func(dest ...any) error { return fake.Scan(dest, v) }
	}
	type want struct {
		o   *xsql.Observation
		ran int
		err error
	}
	cases := map[string]struct {
		reason  string
		version func(dest ...any) error
		row     func(xsql.Query, ...any) error
		want    want
	}{
		"InSync": {
			reason:  "The first Observe reads the version, then one query observes the account.",
			version: version("10.11.14-MariaDB-0+deb12u2"),
			row:     row(NativePassword, NativeHash("pencil"), "CREATE TEMPORARY TABLES,DELETE,EXECUTE,INSERT,SELECT,UPDATE"),
			want: want{ran: 2, o: &xsql.Observation{Exists: true, Verifier: NativeHash("pencil"), Detail: Detail{
				Plugin: NativePassword, Auth: []byte(NativeHash("pencil")),
				Database: []string{"CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "SELECT", "UPDATE"},
			}}},
		},
		"Missing": {
			reason:  "No row is a missing account.",
			version: version("8.4.3"),
			row:     func(xsql.Query, ...any) error { return xsql.ErrNoRows },
			want:    want{ran: 2, o: &xsql.Observation{}},
		},
		"Error": {
			reason:  "A failed query is an error.",
			version: version("8.0.40"),
			row:     func(xsql.Query, ...any) error { return errors.New("boom") },
			want:    want{ran: 2, err: errors.Wrap(errors.New("boom"), "cannot observe login")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			db := &fake.DB{MockQueryRow: func(q xsql.Query, dest ...any) error {
				if q.SQL == FlavorQuery.SQL {
					return tc.version(dest...)
				}
				return tc.row(q, dest...)
			}}
			c := NewClient(db, xsql.Endpoint{Host: name}, &Flavors{})
			o, err := c.Observe(t.Context(), rw)
			if diff := cmp.Diff(tc.want, want{o: o, ran: len(db.Ran()), err: err}, cmp.AllowUnexported(want{}), test.EquateErrors(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s\nObserve(...): -want, +got:\n%s", tc.reason, diff)
			}
			if _, err := c.Observe(t.Context(), rw); err == nil && len(db.Ran()) != tc.want.ran+1 {
				t.Errorf("%s\nA second Observe is one query: the flavor is remembered; ran %d", tc.reason, len(db.Ran()))
			}
		})
	}
}

func TestClientVerifyPassword(t *testing.T) {
	c := NewClient(&fake.DB{}, xsql.Endpoint{}, &Flavors{})
	d := Detail{Plugin: NativePassword, Auth: []byte(NativeHash("pencil"))}
	for name, tc := range map[string]struct {
		reason string
		d      func(d Detail) Detail
		want   bool
	}{
		"Match":    {reason: "The Secret's password matches the stored hash.", d: func(d Detail) Detail { return d }, want: true},
		"Expired":  {reason: "An expired password does not log in: set it again.", d: func(d Detail) Detail { d.Expired = true; return d }},
		"OrMethod": {reason: "Another authentication method besides the password is reset.", d: func(d Detail) Detail { d.MultipleAuth = true; return d }},
	} {
		t.Run(name, func(t *testing.T) {
			ok, err := c.VerifyPassword(t.Context(), rw, &xsql.Observation{Exists: true, Detail: tc.d(d)}, "pencil")
			if err != nil || ok != tc.want {
				t.Errorf("%s\nVerifyPassword(...) = %v, %v, want %v", tc.reason, ok, err, tc.want)
			}
		})
	}
}

func TestClientDelete(t *testing.T) {
	for name, tc := range map[string]struct {
		reason  string
		version string
		want    []string
	}{
		"MariaDB": {reason: "MariaDB ends the account's sessions, then drops it.", version: "10.11.14-MariaDB", want: []string{FlavorQuery.SQL, "KILL CONNECTION USER 'app_rw'@'%'", "DROP USER IF EXISTS 'app_rw'@'%'"}},
		"MySQL":   {reason: "MySQL 8 drops it.", version: "8.4.3", want: []string{FlavorQuery.SQL, "DROP USER IF EXISTS 'app_rw'@'%'"}},
	} {
		t.Run(name, func(t *testing.T) {
			db := &fake.DB{MockQueryRow: func(_ xsql.Query, dest ...any) error { return fake.Scan(dest, tc.version) }}
			if err := NewClient(db, xsql.Endpoint{Host: name}, &Flavors{}).Delete(t.Context(), rw); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, db.Ran()); diff != "" {
				t.Errorf("%s\nDelete(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestConnectionDetails(t *testing.T) {
	ep := xsql.Endpoint{Host: "orders.team-a.svc", Port: 3306, TLS: v1alpha1.TLSRequire}
	got := ConnectionDetails(ep, xsql.Credential{Username: `we'ird@us/r`, Password: "p4ss"}, "my db/x?")
	s := map[string]string{}
	for k, v := range got {
		s[k] = string(v)
	}
	want := map[string]string{
		"host": "orders.team-a.svc", "port": "3306", "database": "my db/x?", "username": `we'ird@us/r`, "password": "p4ss",
		"uri": "mysql://we%27ird%40us%2Fr:p4ss@orders.team-a.svc:3306/my%20db%2Fx%3F?ssl-mode=REQUIRED",
		"dsn": "we'ird@us/r:p4ss@tcp(orders.team-a.svc:3306)/my%20db%2Fx%3F?tls=skip-verify",
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("ConnectionDetails: -want, +got:\n%s", diff)
	}
	cfg, err := mysql.ParseDSN(s["dsn"])
	if err != nil {
		t.Fatal(err)
	}
	parsed := []string{cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName, cfg.TLSConfig}
	if diff := cmp.Diff([]string{`we'ird@us/r`, "p4ss", "orders.team-a.svc:3306", "my db/x?", "skip-verify"}, parsed); diff != "" {
		t.Errorf("the dsn parses back into its parts: -want, +got:\n%s", diff)
	}
}
