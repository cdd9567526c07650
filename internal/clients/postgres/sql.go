package postgres

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// A level is what a privilege level grants, as data. need is what the login
// must hold; allowed is what it may hold (need plus privileges a newer
// server adds to ALL, such as MAINTAIN in PostgreSQL 17); grant is the
// privilege list GRANT statements use. An empty list grants nothing.
type level struct {
	// replication is the role's REPLICATION attribute; the other levels
	// assert NOREPLICATION.
	replication bool
	// memberOf are the predefined roles the login is a member of; it is
	// removed from every other role.
	memberOf []string
	// ownsDatabase makes the login the database's owner; database is what
	// it holds on the database otherwise.
	ownsDatabase bool
	database     []string
	// ownsNothing: any object the login owns in the database, or any
	// database, passes to the admin. Other levels keep what they own.
	ownsNothing bool

	schema []string

	tables, tablesAllowed []string
	tablesGrant           string

	sequences, sequencesAllowed []string
	sequencesGrant              string
}

var (
	allTables    = []string{"DELETE", "INSERT", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"}
	allTablesPG  = []string{"DELETE", "INSERT", "MAINTAIN", "REFERENCES", "SELECT", "TRIGGER", "TRUNCATE", "UPDATE"}
	allSequences = []string{"SELECT", "UPDATE", "USAGE"}
)

// levels defines the privilege levels. The Privileges type's doc comment
// in apis/sql/v1alpha1 says the same in words; keep them together.
var levels = map[v1alpha1.Privileges]level{
	v1alpha1.Owner: {
		ownsDatabase: true,
		schema:       []string{"CREATE", "USAGE"},
		tables:       allTables, tablesAllowed: allTablesPG, tablesGrant: "ALL",
		sequences: allSequences, sequencesAllowed: allSequences, sequencesGrant: "ALL",
	},
	v1alpha1.ReadWrite: {
		database: []string{"CONNECT"},
		schema:   []string{"CREATE", "USAGE"},
		tables:   []string{"DELETE", "INSERT", "SELECT", "UPDATE"}, tablesAllowed: []string{"DELETE", "INSERT", "SELECT", "UPDATE"},
		tablesGrant: "SELECT, INSERT, UPDATE, DELETE",
		sequences:   []string{"SELECT", "USAGE"}, sequencesAllowed: []string{"SELECT", "USAGE"},
		sequencesGrant: "USAGE, SELECT",
	},
	v1alpha1.ReadOnly: {
		database: []string{"CONNECT"},
		schema:   []string{"USAGE"},
		tables:   []string{"SELECT"}, tablesAllowed: []string{"SELECT"}, tablesGrant: "SELECT",
		sequences: []string{"SELECT"}, sequencesAllowed: []string{"SELECT"}, sequencesGrant: "SELECT",
	},
	// A physical replication login (walsender, pg_basebackup) needs the
	// attribute and nothing in any database: it connects to none.
	v1alpha1.ReplicationPrivileges: {
		replication: true,
		ownsNothing: true,
	},
	// A metrics exporter reads the statistics views through pg_monitor and
	// connects through PUBLIC's CONNECT: nothing of its own in any database.
	v1alpha1.MonitoringPrivileges: {
		memberOf:    []string{"pg_monitor"},
		ownsNothing: true,
	},
}

func levelOf(p v1alpha1.Privileges) (level, error) {
	lv, ok := levels[p]
	if !ok {
		return level{}, errors.Errorf("unsupported privileges %q: supported values: %q, %q, %q, %q, %q", p, v1alpha1.Owner, v1alpha1.ReadWrite, v1alpha1.ReadOnly, v1alpha1.ReplicationPrivileges, v1alpha1.MonitoringPrivileges)
	}
	return lv, nil
}

// attributes are the role attributes of a login at the level: the same at
// every level but for REPLICATION.
func (lv level) attributes() string {
	replication := "NOREPLICATION"
	if lv.replication {
		replication = "REPLICATION"
	}
	return "LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE " + replication + " NOBYPASSRLS VALID UNTIL 'infinity'"
}

// maxExtraGrants bounds how many relations with extra privileges one
// observation lists; a later poll repairs the rest.
const maxExtraGrants = 1000

// observeSQL returns, in one row and one round trip, everything Observe
// needs about login $1 in the current database as one JSON document: the
// password verifier from pg_authid, the role's attributes (REPLICATION
// apart from the others, which no level has) and memberships, whether it
// owns objects here or a database, and its explicit privileges on the database, schema public, the relations
// in public it does not own (with those holding privileges outside $2 for
// tables and $3 for sequences listed by name) and default privileges in
// public. It returns a row when the role does not exist, so Create learns
// the database's owner and the admin's name from it too.
var observeSQL = `WITH d AS (
  SELECT oid, datdba, datacl FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()
), r AS (
  SELECT oid, rolpassword, rolcanlogin, rolinherit, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,
         (rolvaliduntil IS NULL OR rolvaliduntil = 'infinity') AS validuntil
  FROM pg_catalog.pg_authid WHERE rolname = $1
), n AS (
  SELECT oid, nspowner, nspacl FROM pg_catalog.pg_namespace WHERE nspname = 'public'
), rel AS (
  SELECT c.oid, c.relname, c.relkind = 'S' AS seq, c.relacl FROM pg_catalog.pg_class c, n
  WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relowner IS DISTINCT FROM (SELECT oid FROM r)
), grants AS (
  SELECT rel.relname, rel.seq, a.privilege_type FROM rel, r, pg_catalog.aclexplode(rel.relacl) a WHERE a.grantee = r.oid
)
SELECT pg_catalog.json_build_object(
  'exists', r.oid IS NOT NULL,
  'verifier', r.rolpassword,
  'attributes', r.oid IS NOT NULL AND r.rolcanlogin AND r.rolinherit AND r.validuntil
    AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolbypassrls),
  'replication', r.oid IS NOT NULL AND r.rolreplication,
  'admin', CURRENT_USER,
  'databaseOwner', pg_catalog.pg_get_userbyid(d.datdba),
  'ownsDatabase', r.oid IS NOT NULL AND d.datdba = r.oid,
  'canConnect', r.oid IS NOT NULL AND pg_catalog.has_database_privilege(r.oid, d.oid, 'CONNECT'),
  'ownsObjects', EXISTS (SELECT FROM pg_catalog.pg_shdepend s WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
    AND s.refobjid = r.oid AND s.deptype = 'o' AND s.dbid IN (0, d.oid)),
  'database', (SELECT pg_catalog.json_agg(a.privilege_type ORDER BY a.privilege_type)
    FROM pg_catalog.aclexplode(d.datacl) a WHERE a.grantee = r.oid),
  'schema', (SELECT pg_catalog.json_build_object('owned', n.nspowner = r.oid, 'privileges',
      (SELECT pg_catalog.json_agg(a.privilege_type ORDER BY a.privilege_type) FROM pg_catalog.aclexplode(n.nspacl) a WHERE a.grantee = r.oid))
    FROM n),
  'tables', (SELECT pg_catalog.count(*) FROM rel WHERE NOT rel.seq),
  'sequences', (SELECT pg_catalog.count(*) FROM rel WHERE rel.seq),
  'tableGrants', (SELECT pg_catalog.json_object_agg(g.privilege_type, g.n)
    FROM (SELECT privilege_type, pg_catalog.count(*) AS n FROM grants WHERE NOT seq GROUP BY 1) g),
  'sequenceGrants', (SELECT pg_catalog.json_object_agg(g.privilege_type, g.n)
    FROM (SELECT privilege_type, pg_catalog.count(*) AS n FROM grants WHERE seq GROUP BY 1) g),
  'extraGrants', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('name', e.relname, 'sequence', e.seq, 'privileges', e.privs))
    FROM (SELECT relname, seq, pg_catalog.json_agg(privilege_type ORDER BY privilege_type) AS privs FROM grants
      WHERE privilege_type <> ALL (CASE WHEN seq THEN $3::text[] ELSE $2::text[] END)
      GROUP BY relname, seq ORDER BY relname LIMIT ` + strconv.Itoa(maxExtraGrants) + `) e),
  'defaultPrivileges', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('creator', pg_catalog.pg_get_userbyid(x.defaclrole), 'type', x.defaclobjtype, 'privileges', x.privs))
    FROM (SELECT da.defaclrole, da.defaclobjtype, pg_catalog.json_agg(a.privilege_type ORDER BY a.privilege_type) AS privs
      FROM pg_catalog.pg_default_acl da, n, r, pg_catalog.aclexplode(da.defaclacl) a
      WHERE da.defaclnamespace = n.oid AND da.defaclobjtype IN ('r', 'S') AND a.grantee = r.oid
      GROUP BY 1, 2) x),
  'memberOf', (SELECT pg_catalog.json_agg(pg_catalog.pg_get_userbyid(m.roleid) ORDER BY pg_catalog.pg_get_userbyid(m.roleid))
    FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid)
)
FROM d LEFT JOIN r ON true`

// ObserveQuery returns the query that observes login l. Its one column is
// the JSON document Detail decodes.
func ObserveQuery(l xsql.Login) (xsql.Query, error) {
	if err := ValidateName(l.Name); err != nil {
		return xsql.Query{}, errors.Wrap(err, "invalid login name")
	}
	lv, err := levelOf(l.Privileges)
	if err != nil {
		return xsql.Query{}, err
	}
	// A nil list would be a NULL array, and `<> ALL (NULL)` matches
	// nothing: a level that allows nothing passes an empty one.
	return xsql.Query{SQL: observeSQL, Args: []any{l.Name, nonNil(lv.tablesAllowed), nonNil(lv.sequencesAllowed)}}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Detail is what ObserveQuery returns about a login.
type Detail struct {
	Exists            bool                `json:"exists"`
	Verifier          string              `json:"verifier"`
	Attributes        bool                `json:"attributes"`
	Replication       bool                `json:"replication"`
	Admin             string              `json:"admin"`
	DatabaseOwner     string              `json:"databaseOwner"`
	OwnsDatabase      bool                `json:"ownsDatabase"`
	CanConnect        bool                `json:"canConnect"`
	OwnsObjects       bool                `json:"ownsObjects"`
	Database          []string            `json:"database"`
	Schema            *Schema             `json:"schema"`
	Tables            int64               `json:"tables"`
	Sequences         int64               `json:"sequences"`
	TableGrants       map[string]int64    `json:"tableGrants"`
	SequenceGrants    map[string]int64    `json:"sequenceGrants"`
	ExtraGrants       []RelationGrant     `json:"extraGrants"`
	DefaultPrivileges []DefaultPrivileges `json:"defaultPrivileges"`
	MemberOf          []string            `json:"memberOf"`

	// DatabaseMissing is set when the login's database does not exist and
	// the login was observed from the maintenance database instead.
	DatabaseMissing bool `json:"-"`
}

// Schema is the login's standing on schema public.
type Schema struct {
	Owned      bool     `json:"owned"`
	Privileges []string `json:"privileges"`
}

// A RelationGrant is a relation in schema public on which the login holds
// privileges its level does not allow.
type RelationGrant struct {
	Name       string   `json:"name"`
	Sequence   bool     `json:"sequence"`
	Privileges []string `json:"privileges"`
}

// DefaultPrivileges the login gets on relations of a type ("r" tables, "S"
// sequences) that creator makes in schema public.
type DefaultPrivileges struct {
	Creator    string   `json:"creator"`
	Type       string   `json:"type"`
	Privileges []string `json:"privileges"`
}

// ParseDetail decodes the JSON document ObserveQuery returns.
func ParseDetail(doc []byte) (Detail, error) {
	var d Detail
	if err := json.Unmarshal(doc, &d); err != nil {
		return Detail{}, errors.Wrap(err, "cannot decode the observed login")
	}
	return d, nil
}

// A plan is how a login differs from its level, for humans (drift), and the
// statements that repair it.
type plan struct {
	drift []string
	stmts []string
}

func (p *plan) add(drift string, stmts ...string) {
	p.drift = append(p.drift, drift)
	p.stmts = append(p.stmts, stmts...)
}

// Drift lists how an existing login differs from l. It is empty when the
// login is exactly as l asks.
func Drift(l xsql.Login, d Detail) ([]string, error) {
	p, err := privilegesPlan(l, d)
	return p.drift, err
}

// privilegesPlan compares d with the level l asks for.
func privilegesPlan(l xsql.Login, d Detail) (plan, error) { //nolint:gocognit,gocyclo // One linear pass over the levels' parts.
	var p plan
	lv, err := levelOf(l.Privileges)
	if err != nil {
		return p, err
	}
	role, err := QuoteIdentifier(l.Name)
	if err != nil {
		return p, errors.Wrap(err, "invalid login name")
	}
	db, err := QuoteIdentifier(l.Database)
	if err != nil {
		return p, errors.Wrap(err, "invalid database name")
	}
	if d.DatabaseMissing {
		p.add(fmt.Sprintf("database %q does not exist", l.Database))
		return p, nil
	}

	if d.Exists && (!d.Attributes || d.Replication != lv.replication) {
		p.add("role attributes differ from "+lv.attributes(), "ALTER ROLE "+role+" WITH "+lv.attributes())
	}
	if extra := minus(d.MemberOf, lv.memberOf); len(extra) > 0 {
		groups, err := quoteAll(extra)
		if err != nil {
			return p, err
		}
		p.add(fmt.Sprintf("member of %s", strings.Join(extra, ", ")), "REVOKE "+strings.Join(groups, ", ")+" FROM "+role)
	}
	if missing := minus(lv.memberOf, d.MemberOf); len(missing) > 0 {
		groups, err := quoteAll(missing)
		if err != nil {
			return p, err
		}
		p.add(fmt.Sprintf("not a member of %s", strings.Join(missing, ", ")), "GRANT "+strings.Join(groups, ", ")+" TO "+role)
	}

	grantDatabase := grantOf(lv.database, " ON DATABASE "+db+" TO "+role)
	switch {
	case lv.ownsDatabase && !d.OwnsDatabase:
		p.add(fmt.Sprintf("does not own database %q", l.Database), "ALTER DATABASE "+db+" OWNER TO "+role)
	case lv.ownsDatabase && !d.CanConnect:
		p.add("cannot connect to its own database", "GRANT ALL ON DATABASE "+db+" TO "+role)
	case !lv.ownsDatabase && d.OwnsDatabase:
		p.add(fmt.Sprintf("owns database %q", l.Database),
			append([]string{"ALTER DATABASE " + db + " OWNER TO CURRENT_USER", "REVOKE ALL ON DATABASE " + db + " FROM " + role}, grantDatabase...)...)
	case !lv.ownsDatabase && !equal(d.Database, lv.database):
		p.add(fmt.Sprintf("database privileges are [%s], want [%s]", strings.Join(d.Database, " "), strings.Join(lv.database, " ")),
			revokeThenGrant(len(d.Database) > 0, "REVOKE ALL ON DATABASE "+db+" FROM "+role, grantDatabase)...)
	}
	if lv.ownsNothing && d.OwnsObjects {
		// REASSIGN OWNED covers the current database and shared objects (a
		// database the login owns); the owner's privileges pass with them.
		p.add(fmt.Sprintf("owns objects in database %q or a database", l.Database), "REASSIGN OWNED BY "+role+" TO CURRENT_USER")
	}

	if d.Schema != nil && !d.Schema.Owned && !equal(d.Schema.Privileges, lv.schema) {
		p.add(fmt.Sprintf("schema public privileges are [%s], want [%s]", strings.Join(d.Schema.Privileges, " "), strings.Join(lv.schema, " ")),
			revokeThenGrant(len(d.Schema.Privileges) > 0, "REVOKE ALL ON SCHEMA public FROM "+role, grantOf(lv.schema, " ON SCHEMA public TO "+role))...)
	}

	if d.Schema != nil {
		if missing := missingOn(lv.tables, d.TableGrants, d.Tables); len(missing) > 0 {
			p.add(fmt.Sprintf("missing %s on some tables in public", strings.Join(missing, " ")),
				"GRANT "+lv.tablesGrant+" ON ALL TABLES IN SCHEMA public TO "+role)
		}
		if missing := missingOn(lv.sequences, d.SequenceGrants, d.Sequences); len(missing) > 0 {
			p.add(fmt.Sprintf("missing %s on some sequences in public", strings.Join(missing, " ")),
				"GRANT "+lv.sequencesGrant+" ON ALL SEQUENCES IN SCHEMA public TO "+role)
		}
	}
	for _, g := range d.ExtraGrants {
		rel, err := QuoteIdentifier(g.Name)
		if err != nil {
			return p, errors.Wrap(err, "invalid relation name")
		}
		kind, allowed := "TABLE", lv.tablesAllowed
		if g.Sequence {
			kind, allowed = "SEQUENCE", lv.sequencesAllowed
		}
		extra := minus(g.Privileges, allowed)
		if len(extra) == 0 {
			continue
		}
		for _, e := range extra {
			if !isPrivilege(e) {
				return p, errors.Errorf("unexpected privilege %q", e)
			}
		}
		p.add(fmt.Sprintf("extra %s on %s public.%s", strings.Join(extra, " "), strings.ToLower(kind), rel),
			"REVOKE "+strings.Join(extra, ", ")+" ON "+kind+" public."+rel+" FROM "+role)
	}

	if d.Schema != nil {
		dp, err := defaultPrivilegesPlan(l, lv, d, role)
		if err != nil {
			return p, err
		}
		p.drift = append(p.drift, dp.drift...)
		p.stmts = append(p.stmts, dp.stmts...)
	}
	return p, nil
}

// defaultPrivilegesPlan compares the default privileges in schema public
// that grant to the login with its level's: on objects the admin creates,
// and for readWrite and readOnly also those the database's owner creates.
func defaultPrivilegesPlan(l xsql.Login, lv level, d Detail, role string) (plan, error) {
	var p plan
	creators := []string{d.Admin}
	if !lv.ownsDatabase && d.DatabaseOwner != d.Admin {
		creators = append(creators, d.DatabaseOwner)
	}
	creators = slices.DeleteFunc(creators, func(c string) bool { return c == l.Name || c == "" })

	type key struct{ creator, typ string }
	have := map[key][]string{}
	for _, dp := range d.DefaultPrivileges {
		have[key{dp.Creator, dp.Type}] = dp.Privileges
		// Grants on the login's own future objects are an owner's rights;
		// other creators' are extra and revoked below.
		if dp.Creator != l.Name && !slices.Contains(creators, dp.Creator) {
			creators = append(creators, dp.Creator)
		}
	}
	wantFor := func(c string) bool { return c == d.Admin || (!lv.ownsDatabase && c == d.DatabaseOwner) }

	for _, c := range creators {
		creator, err := QuoteIdentifier(c)
		if err != nil {
			return p, errors.Wrap(err, "invalid role name")
		}
		for _, t := range []struct {
			typ, objects  string
			need, allowed []string
			grant         string
		}{
			{"r", "TABLES", lv.tables, lv.tablesAllowed, lv.tablesGrant},
			{"S", "SEQUENCES", lv.sequences, lv.sequencesAllowed, lv.sequencesGrant},
		} {
			got := have[key{c, t.typ}]
			prefix := "ALTER DEFAULT PRIVILEGES FOR ROLE " + creator + " IN SCHEMA public "
			if !wantFor(c) || len(t.need) == 0 {
				if len(got) > 0 {
					p.add(fmt.Sprintf("extra default privileges %s on %s %s creates", strings.Join(got, " "), strings.ToLower(t.objects), c),
						prefix+"REVOKE ALL ON "+t.objects+" FROM "+role)
				}
				continue
			}
			if len(minus(t.need, got)) == 0 && len(minus(got, t.allowed)) == 0 {
				continue
			}
			p.add(fmt.Sprintf("default privileges on %s %s creates are [%s], want [%s]", strings.ToLower(t.objects), c, strings.Join(got, " "), strings.Join(t.need, " ")),
				revokeThenGrant(len(got) > 0, prefix+"REVOKE ALL ON "+t.objects+" FROM "+role, []string{prefix + "GRANT " + t.grant + " ON " + t.objects + " TO " + role})...)
		}
	}
	return p, nil
}

// quoteAll quotes role names.
func quoteAll(roles []string) ([]string, error) {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		q, err := QuoteIdentifier(r)
		if err != nil {
			return nil, errors.Wrap(err, "invalid role name")
		}
		out = append(out, q)
	}
	return out, nil
}

// revokeThenGrant returns grant, preceded by revoke when there is something
// to revoke.
func revokeThenGrant(something bool, revoke string, grant []string) []string {
	if something {
		return append([]string{revoke}, grant...)
	}
	return grant
}

// grantOf is the GRANT of privileges followed by on, or none when there
// are none to grant.
func grantOf(privileges []string, on string) []string {
	if len(privileges) == 0 {
		return nil
	}
	return []string{"GRANT " + strings.Join(privileges, ", ") + on}
}

// missingOn returns the privileges of need that fewer than total relations
// grant.
func missingOn(need []string, counts map[string]int64, total int64) []string {
	var missing []string
	for _, n := range need {
		if counts[n] < total {
			missing = append(missing, n)
		}
	}
	return missing
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

func equal(a, b []string) bool {
	return len(minus(a, b)) == 0 && len(minus(b, a)) == 0
}

// isPrivilege reports whether p is a PostgreSQL privilege keyword, so that
// a privilege name read from the server can be written into SQL unquoted.
func isPrivilege(p string) bool {
	return slices.Contains([]string{
		"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN",
		"CREATE", "CONNECT", "TEMPORARY", "EXECUTE", "USAGE", "SET", "ALTER SYSTEM",
	}, p)
}

// Script joins statements into one simple-protocol query: PostgreSQL runs
// it in one round trip as one implicit transaction, so a failure applies
// none of it.
func Script(stmts ...string) xsql.Query {
	return xsql.Query{SQL: strings.Join(stmts, ";\n")}
}

// CreateStatements create login l with the password verifier and grant its
// level. d is the observation of the missing login, which names the
// database's owner and the admin.
func CreateStatements(l xsql.Login, d Detail, verifier string) ([]string, error) {
	lv, err := levelOf(l.Privileges)
	if err != nil {
		return nil, err
	}
	role, err := QuoteIdentifier(l.Name)
	if err != nil {
		return nil, errors.Wrap(err, "invalid login name")
	}
	v, err := QuoteLiteral(verifier)
	if err != nil {
		return nil, errors.Wrap(err, "invalid password verifier")
	}
	d.Exists, d.Attributes, d.Replication, d.OwnsDatabase, d.OwnsObjects, d.CanConnect = false, true, lv.replication, false, false, false
	d.Database, d.MemberOf, d.ExtraGrants, d.DefaultPrivileges = nil, nil, nil, nil
	d.TableGrants, d.SequenceGrants = nil, nil
	if d.Schema != nil {
		d.Schema = &Schema{}
	}
	p, err := privilegesPlan(l, d)
	if err != nil {
		return nil, err
	}
	return append([]string{"CREATE ROLE " + role + " WITH " + lv.attributes() + " PASSWORD " + v}, p.stmts...), nil
}

// PrivilegesStatements repair how the login differs from l.
func PrivilegesStatements(l xsql.Login, d Detail) ([]string, error) {
	p, err := privilegesPlan(l, d)
	return p.stmts, err
}

// SetPasswordStatement sets the login's password to a verifier.
func SetPasswordStatement(name, verifier string) (string, error) {
	role, err := QuoteIdentifier(name)
	if err != nil {
		return "", errors.Wrap(err, "invalid login name")
	}
	v, err := QuoteLiteral(verifier)
	if err != nil {
		return "", errors.Wrap(err, "invalid password verifier")
	}
	return "ALTER ROLE " + role + " WITH PASSWORD " + v, nil
}

// DropOwnedStatements end the login's sessions and hand what it owns in the
// current database (and shared objects: a database it owns) to the admin,
// then drop its remaining privileges there.
func DropOwnedStatements(name string) ([]string, error) {
	role, err := QuoteIdentifier(name)
	if err != nil {
		return nil, errors.Wrap(err, "invalid login name")
	}
	lit, err := QuoteLiteral(name)
	if err != nil {
		return nil, errors.Wrap(err, "invalid login name")
	}
	return []string{
		"SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = " + lit + " AND pid <> pg_catalog.pg_backend_pid()",
		"REASSIGN OWNED BY " + role + " TO CURRENT_USER",
		"DROP OWNED BY " + role,
	}, nil
}

// DependentDatabasesQuery lists the other databases in which login $1 still
// owns objects or holds privileges, from the shared pg_shdepend catalog.
func DependentDatabasesQuery(name string) (xsql.Query, error) {
	if err := ValidateName(name); err != nil {
		return xsql.Query{}, errors.Wrap(err, "invalid login name")
	}
	return xsql.Query{SQL: `SELECT DISTINCT d.datname FROM pg_catalog.pg_shdepend s
  JOIN pg_catalog.pg_database d ON d.oid = s.dbid
  WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
    AND s.refobjid = (SELECT oid FROM pg_catalog.pg_authid WHERE rolname = $1)
    AND d.datname <> pg_catalog.current_database() AND d.datallowconn
  ORDER BY 1`, Args: []any{name}}, nil
}

// DropRoleStatement drops the login.
func DropRoleStatement(name string) (string, error) {
	role, err := QuoteIdentifier(name)
	if err != nil {
		return "", errors.Wrap(err, "invalid login name")
	}
	return "DROP ROLE IF EXISTS " + role, nil
}
