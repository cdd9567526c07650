package mysql

import (
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// A Flavor is a MySQL-compatible server. They store accounts differently.
type Flavor string

// Flavors the provider knows.
const (
	// MariaDB keeps accounts as JSON in mysql.global_priv and creates
	// mysql_native_password accounts by default.
	MariaDB Flavor = "MariaDB"
	// MySQL 8 keeps accounts in mysql.user and defaults to (8.4: only
	// loads) caching_sha2_password.
	MySQL Flavor = "MySQL"
)

// FlavorQuery returns the server's version string; MariaDB's contains
// "MariaDB".
var FlavorQuery = xsql.Query{SQL: "SELECT VERSION()"}

// FlavorOf tells the flavor from a version string.
func FlavorOf(version string) Flavor {
	if strings.Contains(version, "MariaDB") {
		return MariaDB
	}
	return MySQL
}

// A level is what a privilege level grants, as data. need is what the
// account must hold on the database; allowed is what it may hold there, and
// allowAny lets it hold anything (ALL PRIVILEGES differs between versions);
// grant is the privilege list GRANT statements use, empty for none. global
// is what it holds ON *.*, per flavor: nothing for a flavor it does not
// name. database, when set, is the database need, allowed and grant apply
// to instead of the login's, which then gets nothing.
type level struct {
	need, allowed []string
	allowAny      bool
	grant         string
	global        map[Flavor]privileges
	database      string
}

// on is the database the level's database privileges apply to.
func (lv level) on(l xsql.Login) string {
	if lv.database != "" {
		return lv.database
	}
	return l.Database
}

// privileges are global privileges as information_schema.USER_PRIVILEGES
// names them, sorted, and the privilege list GRANT statements use.
type privileges struct {
	need  []string
	grant string
}

// levels defines the privilege levels. The Privileges type's doc comment
// in apis/sql/v1alpha1 says the same in words; keep them together.
var levels = map[v1alpha1.Privileges]level{
	v1alpha1.Owner: {
		// What ALL PRIVILEGES at database level means on both MySQL 8 and
		// MariaDB; newer servers add more (DELETE HISTORY, SHOW CREATE
		// ROUTINE), which are allowed.
		need: []string{
			"ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES", "CREATE VIEW",
			"DELETE", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT", "LOCK TABLES", "REFERENCES", "SELECT",
			"SHOW VIEW", "TRIGGER", "UPDATE",
		},
		allowAny: true,
		grant:    "ALL PRIVILEGES",
	},
	v1alpha1.ReadWrite: {
		need:    []string{"CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "SELECT", "UPDATE"},
		allowed: []string{"CREATE TEMPORARY TABLES", "DELETE", "EXECUTE", "INSERT", "SELECT", "UPDATE"},
		grant:   "SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE",
	},
	v1alpha1.ReadOnly: {
		need:    []string{"SELECT", "SHOW VIEW"},
		allowed: []string{"SELECT", "SHOW VIEW"},
		grant:   "SELECT, SHOW VIEW",
	},
	// Nothing on the database; global privileges only. REPLICATION SLAVE
	// lets a replica read the binary log, REPLICATION CLIENT shows its
	// position (SHOW BINARY LOG STATUS, SHOW REPLICA STATUS).
	v1alpha1.ReplicationPrivileges: {
		global: map[Flavor]privileges{
			// BACKUP_ADMIN is what CLONE INSTANCE FROM needs of the donor's
			// login. Not proven on a real server: no MySQL runs here. That
			// USER_PRIVILEGES lists dynamic privileges such as BACKUP_ADMIN
			// is from MySQL 8's own ndbcluster, which reads NDB_STORED_USER
			// from it.
			MySQL: {need: []string{"BACKUP_ADMIN", "REPLICATION CLIENT", "REPLICATION SLAVE"}, grant: "REPLICATION SLAVE, REPLICATION CLIENT, BACKUP_ADMIN"},
			// MariaDB has no BACKUP_ADMIN (GRANT fails on the name) and no
			// CLONE, and since 10.5.2 lists REPLICATION CLIENT as BINLOG
			// MONITOR (SHOW MASTER STATUS; SHOW REPLICA STATUS needs SLAVE
			// MONITOR, not granted). Proven on MariaDB 10.11.
			MariaDB: {need: []string{"BINLOG MONITOR", "REPLICATION SLAVE"}, grant: "REPLICATION SLAVE, REPLICATION CLIENT"},
		},
	},
	// What mysqld_exporter's collectors read: PROCESS for the process list
	// and InnoDB status, REPLICATION CLIENT for the binary logs and replica
	// status, and the performance_schema tables. Nothing on the database.
	v1alpha1.MonitoringPrivileges: {
		database: "performance_schema",
		need:     []string{"SELECT"},
		allowed:  []string{"SELECT"},
		grant:    "SELECT",
		global: map[Flavor]privileges{
			MySQL: {need: []string{"PROCESS", "REPLICATION CLIENT"}, grant: "PROCESS, REPLICATION CLIENT"},
			// MariaDB's REPLICATION CLIENT is BINLOG MONITOR, and SHOW
			// REPLICA STATUS needs SLAVE MONITOR (10.5.9 on). Proven on
			// MariaDB 10.11.
			MariaDB: {need: []string{"BINLOG MONITOR", "PROCESS", "SLAVE MONITOR"}, grant: "PROCESS, REPLICATION CLIENT, SLAVE MONITOR"},
		},
	},
}

func levelOf(p v1alpha1.Privileges) (level, error) {
	lv, ok := levels[p]
	if !ok {
		return level{}, errors.Errorf("unsupported privileges %q: supported values: %q, %q, %q, %q, %q", p, v1alpha1.Owner, v1alpha1.ReadWrite, v1alpha1.ReadOnly, v1alpha1.ReplicationPrivileges, v1alpha1.MonitoringPrivileges)
	}
	return lv, nil
}

// observeHead reads the account itself, per flavor: plugin, the stored
// authentication string (hex: MySQL 8's holds binary salt), locked, password
// expired, and whether MariaDB has other authentication methods (OR ...)
// besides the first.
var observeHead = map[Flavor]string{
	MariaDB: `SELECT JSON_VALUE(g.Priv, '$.plugin'), HEX(JSON_VALUE(g.Priv, '$.authentication_string')),
  IF(JSON_VALUE(g.Priv, '$.account_locked') IN ('1', 'true'), 'Y', 'N'),
  IF(JSON_VALUE(g.Priv, '$.password_last_changed') = '0', 'Y', 'N'),
  IF(JSON_EXISTS(g.Priv, '$.auth_or'), 'Y', 'N')`,
	MySQL: `SELECT u.plugin, HEX(u.authentication_string), u.account_locked, u.password_expired, 'N'`,
}

var observeFrom = map[Flavor]string{
	MariaDB: `FROM mysql.global_priv g WHERE g.User = ? AND g.Host = '%'`,
	MySQL:   `FROM mysql.user u WHERE u.User = ? AND u.Host = '%'`,
}

// observePrivileges reads the account's privileges from information_schema,
// where both flavors agree: global ones, those on exactly the database
// (with + marking GRANT OPTION), and how many grants it holds on other
// databases and on tables, columns and routines.
const observePrivileges = `,
  (SELECT GROUP_CONCAT(CONCAT(PRIVILEGE_TYPE, IF(IS_GRANTABLE = 'YES', '+', '')) ORDER BY PRIVILEGE_TYPE SEPARATOR ',')
    FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ? AND (PRIVILEGE_TYPE <> 'USAGE' OR IS_GRANTABLE = 'YES')),
  (SELECT GROUP_CONCAT(CONCAT(PRIVILEGE_TYPE, IF(IS_GRANTABLE = 'YES', '+', '')) ORDER BY PRIVILEGE_TYPE SEPARATOR ',')
    FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA = ?),
  (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND TABLE_SCHEMA <> ?),
  (SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES WHERE GRANTEE = ?)
    + (SELECT COUNT(*) FROM information_schema.COLUMN_PRIVILEGES WHERE GRANTEE = ?)
    + (SELECT COUNT(*) FROM mysql.procs_priv WHERE User = ? AND Host = '%')
`

// ObserveQuery returns the one query that observes login l on a server of
// flavor f. It returns no row when the account does not exist. Values are
// parameters, which the driver interpolates client-side (one round trip).
func ObserveQuery(f Flavor, l xsql.Login) (xsql.Query, error) {
	if err := ValidateUserName(l.Name); err != nil {
		return xsql.Query{}, errors.Wrap(err, "invalid login name")
	}
	if err := ValidateDatabaseName(l.Database); err != nil {
		return xsql.Query{}, errors.Wrap(err, "invalid database name")
	}
	head, ok := observeHead[f]
	if !ok {
		return xsql.Query{}, errors.Errorf("unknown MySQL flavor %q", f)
	}
	lv, err := levelOf(l.Privileges)
	if err != nil {
		return xsql.Query{}, err
	}
	// information_schema writes grantees as 'name'@'host' without escaping.
	grantee := "'" + l.Name + "'@'%'"
	pattern := DatabasePattern(lv.on(l))
	return xsql.Query{
		SQL:  head + observePrivileges + observeFrom[f],
		Args: []any{grantee, grantee, pattern, grantee, pattern, grantee, grantee, l.Name, l.Name},
	}, nil
}

// A Row receives ObserveQuery's columns.
type Row struct {
	Plugin, AuthHex                  sql.NullString
	Locked, Expired, MultipleAuth    string
	Global, Database                 sql.NullString
	OtherDatabases, ObjectPrivileges int64
}

// Dest are the scan destinations of ObserveQuery's columns.
func (r *Row) Dest() []any {
	return []any{&r.Plugin, &r.AuthHex, &r.Locked, &r.Expired, &r.MultipleAuth, &r.Global, &r.Database, &r.OtherDatabases, &r.ObjectPrivileges}
}

// Detail is what ObserveQuery found about an existing account.
type Detail struct {
	Plugin string
	// Auth is the stored authentication string.
	Auth []byte
	// Locked, Expired and MultipleAuth stop the app's password from logging
	// in; the first is repaired with the privileges, the others by setting
	// the password again.
	Locked, Expired, MultipleAuth bool
	// Global privileges, with + marking GRANT OPTION.
	Global []string
	// Database privileges on exactly the login's database (its level's, when it names one), with + marking
	// GRANT OPTION.
	Database []string
	// OtherDatabases and ObjectPrivileges count grants on other databases
	// (and wildcard patterns) and on tables, columns and routines.
	OtherDatabases, ObjectPrivileges int64
}

// ParseRow turns a Row into a Detail.
func ParseRow(r Row) (Detail, error) {
	auth, err := hex.DecodeString(r.AuthHex.String)
	if err != nil {
		return Detail{}, errors.Wrap(err, "cannot decode the stored authentication string")
	}
	split := func(s sql.NullString) []string {
		if !s.Valid || s.String == "" {
			return nil
		}
		return strings.Split(s.String, ",")
	}
	return Detail{
		Plugin: r.Plugin.String, Auth: auth,
		Locked: r.Locked == "Y", Expired: r.Expired == "Y", MultipleAuth: r.MultipleAuth == "Y",
		Global: split(r.Global), Database: split(r.Database),
		OtherDatabases: r.OtherDatabases, ObjectPrivileges: r.ObjectPrivileges,
	}, nil
}

// privilegeName matches what information_schema calls a privilege, so that
// one read from the server can be written into SQL unquoted.
var privilegeName = regexp.MustCompile(`^[A-Z][A-Z ]*[A-Z]$`)

// plan is how an account differs from its level, for humans (drift), and
// the statements that repair it.
type plan struct {
	drift []string
	stmts []string
}

func (p *plan) add(drift string, stmts ...string) {
	p.drift = append(p.drift, drift)
	p.stmts = append(p.stmts, stmts...)
}

// privilegesPlan compares d with the level l asks for on a server of
// flavor f.
func privilegesPlan(f Flavor, l xsql.Login, d Detail) (plan, error) { //nolint:gocognit // One linear pass over the level's parts.
	var p plan
	lv, err := levelOf(l.Privileges)
	if err != nil {
		return p, err
	}
	if _, ok := observeHead[f]; !ok {
		return p, errors.Errorf("unknown MySQL flavor %q", f)
	}
	global := lv.global[f]
	acct, err := Account(l.Name)
	if err != nil {
		return p, err
	}
	target, err := GrantTarget(lv.on(l))
	if err != nil {
		return p, err
	}
	if d.Locked {
		p.add("account is locked", "ALTER USER "+acct+" ACCOUNT UNLOCK")
	}
	var grants []string
	if global.grant != "" {
		grants = append(grants, "GRANT "+global.grant+" ON *.* TO "+acct)
	}
	if lv.grant != "" {
		grants = append(grants, "GRANT "+lv.grant+" ON "+target+" TO "+acct)
	}

	// A global privilege the level does not name, or GRANT OPTION on one,
	// is extra.
	var extraGlobal, haveGlobal []string
	for _, priv := range d.Global {
		if name, grantable := strings.CutSuffix(priv, "+"); !grantable && slices.Contains(global.need, name) {
			haveGlobal = append(haveGlobal, name)
			continue
		}
		extraGlobal = append(extraGlobal, priv)
	}
	var elsewhere []string
	if len(extraGlobal) > 0 {
		elsewhere = append(elsewhere, "global privileges "+strings.Join(extraGlobal, " "))
	}
	if d.OtherDatabases > 0 {
		elsewhere = append(elsewhere, fmt.Sprintf("%d grants on other databases", d.OtherDatabases))
	}
	if d.ObjectPrivileges > 0 {
		elsewhere = append(elsewhere, fmt.Sprintf("%d grants on tables, columns or routines", d.ObjectPrivileges))
	}
	if len(elsewhere) > 0 {
		// Only a full reset reaches every level; the account lacks its
		// privileges for the moment between the two statements.
		p.add("extra "+strings.Join(elsewhere, ", "), append([]string{"REVOKE ALL PRIVILEGES, GRANT OPTION FROM " + acct}, grants...)...)
		return p, nil
	}
	if missing := minus(global.need, haveGlobal); len(missing) > 0 {
		p.add("missing "+strings.Join(missing, ", ")+" on *.*", "GRANT "+global.grant+" ON *.* TO "+acct)
	}

	var have []string
	grantOption := false
	for _, priv := range d.Database {
		name, grantable := strings.CutSuffix(priv, "+")
		grantOption = grantOption || grantable
		if name != "USAGE" {
			have = append(have, name)
		}
	}
	if missing := minus(lv.need, have); len(missing) > 0 {
		p.add("missing "+strings.Join(missing, ", ")+" on "+target, "GRANT "+lv.grant+" ON "+target+" TO "+acct)
	}
	if !lv.allowAny {
		if extra := minus(have, lv.allowed); len(extra) > 0 {
			for _, e := range extra {
				if !privilegeName.MatchString(e) {
					return p, errors.Errorf("unexpected privilege %q", e)
				}
			}
			p.add("extra "+strings.Join(extra, ", ")+" on "+target, "REVOKE "+strings.Join(extra, ", ")+" ON "+target+" FROM "+acct)
		}
	}
	if grantOption {
		p.add("GRANT OPTION on "+target, "REVOKE GRANT OPTION ON "+target+" FROM "+acct)
	}
	return p, nil
}

// Drift lists how an existing account on a server of flavor f differs
// from l.
func Drift(f Flavor, l xsql.Login, d Detail) ([]string, error) {
	p, err := privilegesPlan(f, l, d)
	return p.drift, err
}

// PrivilegesStatements repair how the account on a server of flavor f
// differs from l.
func PrivilegesStatements(f Flavor, l xsql.Login, d Detail) ([]string, error) {
	p, err := privilegesPlan(f, l, d)
	return p.stmts, err
}

// identifiedBy is how an account authenticates with password on a flavor:
// MariaDB gets the pre-hashed mysql_native_password string, so the password
// never appears in a statement; MySQL 8 gets caching_sha2_password from the
// password itself (the server hashes it with a random salt and redacts it
// from its logs).
func identifiedBy(f Flavor, password string) (string, error) {
	switch f {
	case MariaDB:
		h, err := QuoteLiteral(NativeHash(password))
		return "IDENTIFIED VIA " + NativePassword + " USING " + h, err
	case MySQL:
		pw, err := QuoteLiteral(password)
		return "IDENTIFIED WITH " + CachingSHA2Password + " BY " + pw, err
	}
	return "", errors.Errorf("unknown MySQL flavor %q", f)
}

// CreateStatements create login l with password and grant its level.
func CreateStatements(f Flavor, l xsql.Login, password string) ([]string, error) {
	acct, err := Account(l.Name)
	if err != nil {
		return nil, err
	}
	by, err := identifiedBy(f, password)
	if err != nil {
		return nil, err
	}
	p, err := privilegesPlan(f, l, Detail{})
	if err != nil {
		return nil, err
	}
	return append([]string{"CREATE USER " + acct + " " + by}, p.stmts...), nil
}

// SetPasswordStatement sets the account's password, replacing any other
// authentication method and clearing an expired password.
func SetPasswordStatement(f Flavor, name, password string) (string, error) {
	acct, err := Account(name)
	if err != nil {
		return "", err
	}
	by, err := identifiedBy(f, password)
	if err != nil {
		return "", err
	}
	return "ALTER USER " + acct + " " + by, nil
}

// DropStatement drops the account. Open sessions of the account survive a
// DROP USER until they disconnect; Client.Delete ends them first on MariaDB.
func DropStatement(name string) (string, error) {
	acct, err := Account(name)
	if err != nil {
		return "", err
	}
	return "DROP USER IF EXISTS " + acct, nil
}

// minus returns the members of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
