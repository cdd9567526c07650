package integration

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // The pgx database/sql driver, to log in as apps do.
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/meta"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	mysqlc "github.com/dbplane/dbplane/internal/clients/mysql"
	pgc "github.com/dbplane/dbplane/internal/clients/postgres"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/controller/user"
)

// The provider's tests run the User controller's connector and external
// client for real against the throwaway servers, with a fake API server
// holding the ProviderConfig and Secrets. reconcile drives them the way
// crossplane-runtime's managed reconciler does.

const providerNamespace = "team-a"

// A providerEngine is what differs between the engines in these tests:
// the admin login, the Go driver apps use, and out-of-band SQL.
type providerEngine struct {
	engine    string
	api       v1alpha1.Engine
	admin     string
	driver    string
	ident     func(string) (string, error)
	account   func(string) string
	loginSQL  func(name string) string // counts logins named name
	setPW     func(name, pw string) string
	dropLogin func(name string) string
	// hostile login names, exercised end to end.
	hostile []string
	// refused login names.
	refused []string
}

var providerEngines = map[string]providerEngine{
	postgresql: {
		engine: postgresql, api: v1alpha1.PostgreSQL, admin: "postgres", driver: "pgx",
		ident:    pgc.QuoteIdentifier,
		account:  func(n string) string { q, _ := pgc.QuoteIdentifier(n); return q }, // Names are valid.
		loginSQL: func(n string) string { return "SELECT count(*) FROM pg_roles WHERE rolname = " + pgString(n) },
		setPW: func(n, pw string) string {
			q, _ := pgc.QuoteIdentifier(n) // Names are valid.
			return "ALTER ROLE " + q + " PASSWORD " + pgString(pw)
		},
		dropLogin: func(n string) string {
			q, _ := pgc.QuoteIdentifier(n) // Names are valid.
			return "DROP OWNED BY " + q + "; DROP ROLE " + q
		},
		hostile: []string{`we"ird'na;me\`, "Ünïcødé ユーザー", `x"; DROP ROLE postgres; --`, "UPPER case"},
		refused: []string{"nul\x00byte", strings.Repeat("long", 16)},
	},
	mysql: {
		engine: mysql, api: v1alpha1.MySQL, admin: "root", driver: "mysql",
		ident:   mysqlc.QuoteIdentifier,
		account: func(n string) string { return mysqlString(n) + "@'%'" },
		loginSQL: func(n string) string {
			return "SELECT count(*) FROM mysql.global_priv WHERE User = " + mysqlString(n) + " AND Host = '%'"
		},
		setPW: func(n, pw string) string {
			return "SET PASSWORD FOR " + mysqlString(n) + "@'%' = PASSWORD(" + mysqlString(pw) + ")"
		},
		dropLogin: func(n string) string { return "DROP USER " + mysqlString(n) + "@'%'" },
		hostile:   []string{`we"ird'na;me\`, "Ünïcødé ユーザー", `x'@'%'; DROP USER root; --`, "back`tick"},
		refused:   []string{"nul\x00byte", "colon:name", strings.Repeat("long", 9)},
	},
}

// A providerEnv is a fake API server with a ProviderConfig for one server
// and the User connector reaching it.
type providerEnv struct {
	srv       *server
	e         providerEngine
	kube      client.Client
	connector managed.TypedExternalConnector[*v1alpha1.User]
	counter   *xsql.Counter
}

func newProviderEnv(t testing.TB, s *server, objs ...client.Object) *providerEnv {
	t.Helper()
	e := providerEngines[s.Engine]
	kube := fakeAPI(t, e.api, s.Port, e.admin, s.Password, objs...)
	pools := xsql.NewPools(time.Minute)
	t.Cleanup(pools.Close)
	counter := &xsql.Counter{}
	newServer := user.NewServer(user.Options{Pools: pools, SQL: xsql.Options{Timeouts: xsql.DefaultTimeouts, Wrap: counter.Wrap}})
	return &providerEnv{
		srv: s, e: e, kube: kube, counter: counter,
		connector: user.NewConnector(kube, kube, newServer, event.NewNopRecorder(), time.Minute),
	}
}

// newUser returns a User named name for login, with a connection Secret of
// its own.
func newUser(name, login, database string, p v1alpha1.Privileges) *v1alpha1.User {
	u := &v1alpha1.User{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: providerNamespace, Name: name, UID: types.UID("uid-" + name),
			Annotations: map[string]string{meta.AnnotationKeyExternalName: login},
		},
		Spec: v1alpha1.UserSpec{
			WriteConnectionSecretToReference: &xpv2.LocalSecretReference{Name: name + "-conn"},
			ProviderConfigReference:          &xpv2.ProviderConfigReference{Kind: "ProviderConfig", Name: "default"},
			ForProvider:                      v1alpha1.UserParameters{Database: database, Privileges: p},
		},
	}
	u.SetGroupVersionKind(v1alpha1.UserGroupVersionKind)
	return u
}

// Outcomes of a reconcile.
const (
	upToDate = "up to date"
	created  = "created"
	updated  = "updated"
	deleting = "delete requested"
	gone     = "gone"
)

// reconcile runs one reconcile of u as the managed reconciler does: Connect,
// Observe, then Create, Update or Delete. It publishes connection details
// into the Secret (merging keys, as the reconciler's patching applicator
// does) and keeps status changes, except Create's, which the reconciler's
// annotation update discards.
func (p *providerEnv) reconcile(t testing.TB, u *v1alpha1.User) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ext, err := p.connector.Connect(ctx, u)
	if err != nil {
		t.Fatalf("Connect(%q): %v", u.GetName(), err)
	}
	defer ext.Disconnect(ctx) //nolint:errcheck // Does nothing.
	o, err := ext.Observe(ctx, u)
	if err != nil {
		t.Fatalf("Observe(%q): %v", u.GetName(), err)
	}
	switch {
	case meta.WasDeleted(u) && o.ResourceExists:
		if _, err := ext.Delete(ctx, u); err != nil {
			t.Fatalf("Delete(%q): %v", u.GetName(), err)
		}
		return deleting
	case meta.WasDeleted(u):
		return gone
	case !o.ResourceExists:
		status := u.Status.DeepCopy()
		c, err := ext.Create(ctx, u)
		if err != nil {
			t.Fatalf("Create(%q): %v", u.GetName(), err)
		}
		u.Status = *status
		p.publish(t, u, c.ConnectionDetails)
		return created
	case !o.ResourceUpToDate:
		t.Logf("%s: %s", u.GetName(), o.Diff)
		p.publish(t, u, o.ConnectionDetails)
		up, err := ext.Update(ctx, u)
		if err != nil {
			t.Fatalf("Update(%q): %v", u.GetName(), err)
		}
		p.publish(t, u, up.ConnectionDetails)
		return updated
	}
	p.publish(t, u, o.ConnectionDetails)
	return upToDate
}

func (p *providerEnv) publish(t testing.TB, u *v1alpha1.User, d managed.ConnectionDetails) {
	t.Helper()
	if len(d) == 0 {
		return
	}
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: u.GetNamespace(), Name: u.Spec.WriteConnectionSecretToReference.Name}
	err := p.kube.Get(t.Context(), key, s)
	if client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	if err != nil {
		s = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Data: map[string][]byte{}}
		for k, v := range d {
			s.Data[k] = v
		}
		if err := p.kube.Create(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		return
	}
	for k, v := range d {
		s.Data[k] = v
	}
	if err := p.kube.Update(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// secret is the User's connection Secret.
func (p *providerEnv) secret(t testing.TB, u *v1alpha1.User) map[string]string {
	t.Helper()
	s := &corev1.Secret{}
	if err := p.kube.Get(t.Context(), types.NamespacedName{Namespace: u.GetNamespace(), Name: u.Spec.WriteConnectionSecretToReference.Name}, s); err != nil {
		t.Fatalf("cannot get the connection Secret of %q: %v", u.GetName(), err)
	}
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	return out
}

func (p *providerEnv) deleteSecret(t testing.TB, u *v1alpha1.User) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: u.GetNamespace(), Name: u.Spec.WriteConnectionSecretToReference.Name}}
	if err := p.kube.Delete(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

// converge reconciles until up to date, at most a few times, and returns
// the outcomes.
func (p *providerEnv) converge(t testing.TB, u *v1alpha1.User) []string {
	t.Helper()
	var got []string
	for range 4 {
		r := p.reconcile(t, u)
		got = append(got, r)
		if r == upToDate {
			return got
		}
	}
	t.Fatalf("%q did not converge: %v", u.GetName(), got)
	return nil
}

// remove deletes u the way the managed reconciler does and returns the
// outcomes.
func (p *providerEnv) remove(t testing.TB, u *v1alpha1.User) []string {
	t.Helper()
	now := metav1.Now()
	u.SetDeletionTimestamp(&now)
	var got []string
	for range 3 {
		r := p.reconcile(t, u)
		got = append(got, r)
		if r == gone {
			return got
		}
	}
	t.Fatalf("%q was not deleted: %v", u.GetName(), got)
	return nil
}

// admin runs SQL as the server's superuser in db.
func (p *providerEnv) admin(t testing.TB, db, query string) string {
	t.Helper()
	out, err := p.srv.exec(t.Context(), db, nil, query)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (p *providerEnv) logins(t testing.TB, name string) string {
	t.Helper()
	return p.admin(t, "", p.e.loginSQL(name))
}

// open logs in with the connection Secret's dsn, as an app would.
func (p *providerEnv) open(t testing.TB, dsn string) (*sql.DB, error) {
	t.Helper()
	db, err := sql.Open(p.e.driver, dsn)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close() // Reporting the ping.
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// login reports whether the Secret's dsn logs in and runs SELECT 1.
func (p *providerEnv) login(t testing.TB, dsn string) error {
	t.Helper()
	db, err := p.open(t, dsn)
	if err != nil {
		return err
	}
	defer db.Close() //nolint:errcheck // Test connection.
	var one int
	return db.QueryRowContext(t.Context(), "SELECT 1").Scan(&one)
}

// as runs statements as the Secret's login.
func (p *providerEnv) as(t testing.TB, dsn string, stmts ...string) error {
	t.Helper()
	db, err := p.open(t, dsn)
	if err != nil {
		return err
	}
	defer db.Close() //nolint:errcheck // Test connection.
	for _, s := range stmts {
		if _, err := db.ExecContext(t.Context(), s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func (p *providerEnv) mustLogin(t testing.TB, u *v1alpha1.User, why string) map[string]string {
	t.Helper()
	s := p.secret(t, u)
	if err := p.login(t, s["dsn"]); err != nil {
		t.Fatalf("%s: %s: the connection Secret's dsn must log in: %v", p.e.engine, why, err)
	}
	return s
}

// TestProviderUserLifecycle runs one User through create, steady state,
// drift repair, rotation and delete on each engine.
func TestProviderUserLifecycle(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			p := newProviderEnv(t, start(t, engine))
			e := p.e
			p.admin(t, appDatabase, "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(20))")

			u := newUser("orders-app", "orders_app", appDatabase, v1alpha1.ReadWrite)
			if diff := cmp.Diff([]string{created, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a new User is created, then up to date: -want, +got:\n%s", engine, diff)
			}
			s := p.mustLogin(t, u, "after create")
			checkSecret(t, p, u, s)
			if err := p.as(t, s["dsn"], "INSERT INTO items VALUES (1, 'one')", "UPDATE items SET name = 'uno'", "DELETE FROM items"); err != nil {
				t.Errorf("%s: readWrite reads and writes rows: %v", engine, err)
			}
			if err := p.as(t, s["dsn"], "DROP TABLE items"); err == nil {
				t.Errorf("%s: readWrite must not drop tables", engine)
			}
			if u.Status.AtProvider.PasswordChangedAt == nil || u.Status.AtProvider.Username != "orders_app" || u.Status.AtProvider.Privileges != v1alpha1.ReadWrite {
				t.Errorf("%s: status.atProvider after the first observation: %+v", engine, u.Status.AtProvider)
			}
			if c := u.GetCondition(xpv2.TypeReady); c.Status != corev1.ConditionTrue {
				t.Errorf("%s: a User whose login works is Ready, got %+v", engine, c)
			}
			if diff := cmp.Diff([]string{upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a steady state needs nothing: -want, +got:\n%s", engine, diff)
			}

			// Dropped out of band: re-created with the Secret's password, so
			// apps keep working.
			p.admin(t, appDatabase, e.dropLogin("orders_app"))
			if diff := cmp.Diff([]string{created, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a dropped login is re-created: -want, +got:\n%s", engine, diff)
			}
			if got := p.mustLogin(t, u, "after re-create"); got["password"] != s["password"] {
				t.Errorf("%s: a re-created login keeps the Secret's password", engine)
			}

			// Password changed out of band: reset to the Secret's.
			p.admin(t, "", e.setPW("orders_app", "changed-out-of-band"))
			if err := p.login(t, s["dsn"]); err == nil {
				t.Fatalf("%s: the Secret's password must stop working after an out-of-band change", engine)
			}
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a changed password is reset: -want, +got:\n%s", engine, diff)
			}
			if got := p.mustLogin(t, u, "after password reset"); got["password"] != s["password"] {
				t.Errorf("%s: a reset password is the Secret's", engine)
			}

			// Privilege drift, extra and missing, repaired.
			driftPrivileges(t, p, "orders_app")
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: privilege drift is repaired: -want, +got:\n%s", engine, diff)
			}
			checkRepaired(t, p, "orders_app")
			if err := p.as(t, s["dsn"], "INSERT INTO items VALUES (2, 'two')"); err != nil {
				t.Errorf("%s: readWrite can insert again after repair: %v", engine, err)
			}

			// Rotation on demand.
			old := p.secret(t, u)
			u.SetAnnotations(map[string]string{meta.AnnotationKeyExternalName: "orders_app", v1alpha1.AnnotationRotatePassword: "2026-01-01"})
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: the rotate annotation rotates: -want, +got:\n%s", engine, diff)
			}
			rotated := p.mustLogin(t, u, "after rotation")
			checkRotated(t, p, old, rotated)
			if u.Status.AtProvider.RotationTrigger != "2026-01-01" {
				t.Errorf("%s: status.atProvider.rotationTrigger records the annotation, got %q", engine, u.Status.AtProvider.RotationTrigger)
			}

			// Rotation on schedule.
			u.Spec.ForProvider.PasswordRotation = &v1alpha1.PasswordRotation{Period: "720h"}
			if diff := cmp.Diff([]string{upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a period not yet elapsed rotates nothing: -want, +got:\n%s", engine, diff)
			}
			long := metav1.NewTime(time.Now().Add(-721 * time.Hour))
			u.Status.AtProvider.PasswordChangedAt = &long
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: an elapsed period rotates: -want, +got:\n%s", engine, diff)
			}
			checkRotated(t, p, rotated, p.mustLogin(t, u, "after scheduled rotation"))
			if time.Since(u.Status.AtProvider.PasswordChangedAt.Time) > time.Minute {
				t.Errorf("%s: a rotation restarts the period, passwordChangedAt is %s", engine, u.Status.AtProvider.PasswordChangedAt)
			}

			// A lost Secret gets a new password.
			p.deleteSecret(t, u)
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a deleted connection Secret is refilled: -want, +got:\n%s", engine, diff)
			}
			p.mustLogin(t, u, "after the Secret was deleted")

			// Delete, with an app session open.
			s = p.secret(t, u)
			session, err := p.open(t, s["dsn"])
			if err != nil {
				t.Fatal(err)
			}
			defer session.Close() //nolint:errcheck // Test connection.
			started := time.Now()
			if diff := cmp.Diff([]string{deleting, gone}, p.remove(t, u)); diff != "" {
				t.Errorf("%s: delete drops the login: -want, +got:\n%s", engine, diff)
			}
			t.Logf("%s: delete took %s", engine, time.Since(started))
			if got := p.logins(t, "orders_app"); got != "0" {
				t.Errorf("%s: the login must be gone after delete, found %s", engine, got)
			}
			if err := p.login(t, s["dsn"]); err == nil {
				t.Errorf("%s: a deleted login must not log in", engine)
			}
		})
	}
}

// checkSecret checks every key of the connection Secret.
func checkSecret(t *testing.T, p *providerEnv, u *v1alpha1.User, s map[string]string) {
	t.Helper()
	want := map[string]string{
		"host": "127.0.0.1", "port": strconv.Itoa(p.srv.Port), "database": u.Spec.ForProvider.Database,
		"username": meta.GetExternalName(u),
	}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("%s: connection Secret key %q = %q, want %q", p.e.engine, k, s[k], v)
		}
	}
	if len(s["password"]) != 32 {
		t.Errorf("%s: a generated password has 32 characters, got %d", p.e.engine, len(s["password"]))
	}
	uri, err := url.Parse(s["uri"])
	if err != nil {
		t.Fatalf("%s: uri %q: %v", p.e.engine, s["uri"], err)
	}
	pw, _ := uri.User.Password()
	got := map[string]string{"scheme": uri.Scheme, "user": uri.User.Username(), "password": pw, "host": uri.Host, "database": strings.TrimPrefix(uri.Path, "/")}
	wantURI := map[string]string{
		"scheme": map[string]string{postgresql: "postgresql", mysql: "mysql"}[p.e.engine], "user": s["username"], "password": s["password"],
		"host": "127.0.0.1:" + strconv.Itoa(p.srv.Port), "database": s["database"],
	}
	if diff := cmp.Diff(wantURI, got); diff != "" {
		t.Errorf("%s: the uri decodes to the Secret's parts: -want, +got:\n%s", p.e.engine, diff)
	}
	if p.e.engine == postgresql {
		// pgx reads the URI too.
		if err := p.login(t, s["uri"]); err != nil {
			t.Errorf("postgresql: the uri logs in: %v", err)
		}
	}
}

// checkRotated proves a rotation by logging in: the old password is
// refused, the new one works, and every detail carrying it changed.
func checkRotated(t *testing.T, p *providerEnv, old, rotated map[string]string) {
	t.Helper()
	if err := p.login(t, old["dsn"]); err == nil {
		t.Errorf("%s: the old password must stop working after a rotation", p.e.engine)
	}
	if err := p.login(t, rotated["dsn"]); err != nil {
		t.Errorf("%s: the new password must work after a rotation: %v", p.e.engine, err)
	}
	for _, k := range []string{"password", "uri", "dsn"} {
		if old[k] == rotated[k] {
			t.Errorf("%s: a rotation changes the Secret's %q", p.e.engine, k)
		}
	}
}

// driftPrivileges grants what a readWrite login must not have and revokes
// what it must.
func driftPrivileges(t *testing.T, p *providerEnv, name string) {
	t.Helper()
	a := p.e.account(name)
	switch p.e.engine {
	case postgresql:
		p.admin(t, appDatabase, strings.Join([]string{
			"ALTER ROLE " + a + " CREATEDB CREATEROLE VALID UNTIL '2000-01-01'",
			"GRANT TRUNCATE, TRIGGER ON items TO " + a,
			"REVOKE INSERT ON items FROM " + a,
			"GRANT CREATE, TEMPORARY ON DATABASE app TO " + a,
			"GRANT pg_read_all_data TO " + a,
			"REVOKE CREATE ON SCHEMA public FROM " + a,
			"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM " + a,
		}, "; "))
	case mysql:
		p.admin(t, "", strings.Join([]string{
			"GRANT DROP, ALTER ON app.* TO " + a + " WITH GRANT OPTION",
			"REVOKE INSERT ON app.* FROM " + a,
			"ALTER USER " + a + " ACCOUNT LOCK PASSWORD EXPIRE",
		}, "; "))
	}
}

// checkRepaired checks the login's privileges after a repair, from the
// server's own view.
func checkRepaired(t *testing.T, p *providerEnv, name string) {
	t.Helper()
	a := p.e.account(name)
	switch p.e.engine {
	case postgresql:
		got := p.admin(t, appDatabase, "SELECT concat_ws(',', has_table_privilege("+pgString(name)+", 'items', 'INSERT'), has_table_privilege("+pgString(name)+", 'items', 'TRUNCATE'), "+
			"has_database_privilege("+pgString(name)+", 'app', 'CREATE'), has_schema_privilege("+pgString(name)+", 'public', 'CREATE'), "+
			"(SELECT rolcreatedb OR rolcreaterole FROM pg_roles WHERE rolname = "+pgString(name)+"), "+
			"pg_has_role("+pgString(name)+", 'pg_read_all_data', 'MEMBER'))")
		if got != "t,f,f,t,f,f" {
			t.Errorf("postgresql: after repair INSERT, TRUNCATE, CREATE on app, CREATE on public, CREATEDB|CREATEROLE, pg_read_all_data = %s, want t,f,f,t,f,f", got)
		}
	case mysql:
		got := p.admin(t, "", "SHOW GRANTS FOR "+a)
		want := "GRANT USAGE ON *.* TO " + strings.ReplaceAll(a, "'%'", "`%`")
		if !strings.Contains(got, "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON `app`.*") || strings.Contains(got, "GRANT OPTION") ||
			strings.Count(got, "\n") != 1 {
			t.Errorf("mysql: after repair SHOW GRANTS = %q, want USAGE and exactly the readWrite set (%s ...)", got, want)
		}
	}
}

// TestProviderReplicationLogin runs a replication User through create,
// drift repair, a switch to readWrite and back, and delete on each engine,
// and proves the login replicates where the others cannot: PostgreSQL
// accepts its physical replication connection (through initdb's default
// `host replication all 127.0.0.1/32 scram-sha-256` line), MariaDB shows
// it the binary log position. MySQL 8's BACKUP_ADMIN, for CLONE, is not
// proven here: MariaDB has neither.
func TestProviderReplicationLogin(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			p := newProviderEnv(t, start(t, engine))
			p.admin(t, appDatabase, "CREATE TABLE items (id INT PRIMARY KEY)")

			u := newUser("replication", "replication", appDatabase, v1alpha1.ReplicationPrivileges)
			if diff := cmp.Diff([]string{created, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a new replication User is created, then up to date: -want, +got:\n%s", engine, diff)
			}
			checkReplicationLogin(t, p, "replication")
			s := p.secret(t, u)
			if err := p.replicate(t, s); err != nil {
				t.Errorf("%s: the replication login replicates: %v", engine, err)
			}
			if err := p.as(t, p.serverDSN(s), "SELECT * FROM "+appDatabase+".items"); err == nil {
				t.Errorf("%s: the replication login must not read the app's tables", engine)
			}

			// A readWrite login cannot replicate, and one that someone
			// allowed to is drift.
			rw := newUser("writer", "app_writer", appDatabase, v1alpha1.ReadWrite)
			p.converge(t, rw)
			rws := p.secret(t, rw)
			if err := p.replicate(t, rws); err == nil {
				t.Errorf("%s: a readWrite login must not replicate", engine)
			}
			a := p.e.account("app_writer")
			p.admin(t, "", map[string]string{
				postgresql: "ALTER ROLE " + a + " REPLICATION",
				mysql:      "GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO " + a,
			}[engine])
			if err := p.replicate(t, rws); err != nil {
				t.Fatalf("%s: the drifted readWrite login replicates before repair: %v", engine, err)
			}
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, rw)); diff != "" {
				t.Errorf("%s: replication on a readWrite login is repaired: -want, +got:\n%s", engine, diff)
			}
			if err := p.replicate(t, rws); err == nil {
				t.Errorf("%s: a repaired readWrite login must not replicate", engine)
			}

			// Drift on the replication login: its level's privileges taken,
			// others given.
			for i, drift := range driftReplication(p, "replication") {
				p.admin(t, appDatabase, drift)
				if err := p.replicate(t, s); err == nil && i == 0 {
					t.Errorf("%s: the drifted replication login must not replicate before repair", engine)
				}
				if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
					t.Errorf("%s: replication login drift %d is repaired: -want, +got:\n%s", engine, i, diff)
				}
				checkReplicationLogin(t, p, "replication")
				if err := p.replicate(t, s); err != nil {
					t.Errorf("%s: the repaired replication login replicates: %v", engine, err)
				}
			}

			// Away from replication and back.
			u.Spec.ForProvider.Privileges = v1alpha1.ReadWrite
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a switch to readWrite is applied: -want, +got:\n%s", engine, diff)
			}
			if err := p.replicate(t, s); err == nil {
				t.Errorf("%s: a login switched to readWrite must not replicate", engine)
			}
			if err := p.as(t, s["dsn"], "INSERT INTO items VALUES (1)"); err != nil {
				t.Errorf("%s: a login switched to readWrite writes: %v", engine, err)
			}
			u.Spec.ForProvider.Privileges = v1alpha1.ReplicationPrivileges
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: a switch back to replication is applied: -want, +got:\n%s", engine, diff)
			}
			checkReplicationLogin(t, p, "replication")
			if err := p.replicate(t, s); err != nil {
				t.Errorf("%s: a login switched back to replication replicates: %v", engine, err)
			}

			if diff := cmp.Diff([]string{deleting, gone}, p.remove(t, u)); diff != "" {
				t.Errorf("%s: delete drops the replication login: -want, +got:\n%s", engine, diff)
			}
			if got := p.logins(t, "replication"); got != "0" {
				t.Errorf("%s: the replication login must be gone, found %s", engine, got)
			}
		})
	}
}

// serverDSN is the connection Secret's dsn without its database: a MySQL
// account with no privilege on a database cannot connect to it.
func (p *providerEnv) serverDSN(s map[string]string) string {
	if p.e.engine == postgresql {
		return s["dsn"]
	}
	return mysqlc.DSN(xsql.Endpoint{Host: s["host"], Port: p.srv.Port}, xsql.Credential{Username: s["username"], Password: s["password"]}, "")
}

// replicate does what a standby does with the Secret's login: on
// PostgreSQL it opens a physical replication connection and runs
// IDENTIFY_SYSTEM, on MariaDB it reads the binary log position.
func (p *providerEnv) replicate(t testing.TB, s map[string]string) error {
	t.Helper()
	if p.e.engine == mysql {
		return p.as(t, p.serverDSN(s), "SHOW MASTER STATUS")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, s["dsn"]+" replication=true")
	if err != nil {
		return err
	}
	defer conn.Close(ctx) //nolint:errcheck // Test connection.
	res, err := conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return err
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		return fmt.Errorf("IDENTIFY_SYSTEM returned %d results, want one row", len(res))
	}
	return nil
}

// driftReplication are out-of-band changes to a replication login, each
// repaired on its own: the first takes what replication needs.
func driftReplication(p *providerEnv, name string) []string {
	a := p.e.account(name)
	if p.e.engine == postgresql {
		return []string{strings.Join([]string{
			"ALTER ROLE " + a + " NOREPLICATION CREATEDB",
			"GRANT CONNECT, CREATE ON DATABASE app TO " + a,
			"GRANT CREATE ON SCHEMA public TO " + a,
			"GRANT SELECT ON items TO " + a,
			"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO " + a,
			"CREATE TABLE stolen (x int)",
			"ALTER TABLE stolen OWNER TO " + a,
		}, "; ")}
	}
	return []string{
		"REVOKE REPLICATION CLIENT ON *.* FROM " + a + "; GRANT SELECT ON app.* TO " + a,
		"GRANT PROCESS ON *.* TO " + a + " WITH GRANT OPTION",
	}
}

// checkReplicationLogin checks, from the server's own view, that the login
// has exactly the replication level: on PostgreSQL LOGIN and REPLICATION,
// no other attribute, no explicit privilege in the app database, owning
// nothing and a member of nothing; on MariaDB REPLICATION SLAVE and
// REPLICATION CLIENT (BINLOG MONITOR) on *.* and no other grant.
func checkReplicationLogin(t *testing.T, p *providerEnv, name string) {
	t.Helper()
	switch p.e.engine {
	case postgresql:
		got := p.admin(t, appDatabase, `SELECT concat_ws(',', r.rolcanlogin, r.rolreplication, r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolbypassrls,
  (SELECT count(*) FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = 'app' AND a.grantee = r.oid),
  (SELECT count(*) FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public' AND a.grantee = r.oid),
  (SELECT count(*) FROM pg_class c, aclexplode(c.relacl) a WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = r.oid),
  (SELECT count(*) FROM pg_default_acl da, aclexplode(da.defaclacl) a WHERE a.grantee = r.oid),
  (SELECT count(*) FROM pg_shdepend s WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND s.deptype = 'o'),
  (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid))
FROM pg_authid r WHERE r.rolname = `+pgString(name))
		if got != "t,t,f,0,0,0,0,0,0" {
			t.Errorf("postgresql: LOGIN, REPLICATION, another attribute, privileges on app, public, relations, default privileges, owned objects, memberships = %s, want t,t,f,0,0,0,0,0,0", got)
		}
	case mysql:
		got := p.admin(t, "", "SHOW GRANTS FOR "+p.e.account(name))
		want := "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `" + name + "`@`%`"
		if !strings.HasPrefix(got, want) || strings.Contains(got, "\n") || strings.Contains(got, "GRANT OPTION") {
			t.Errorf("mysql: SHOW GRANTS = %q, want one line starting %q", got, want)
		}
	}
}

// TestProviderAdoption adopts an existing login: its password is replaced
// by a generated one and its privileges cut to the requested ones.
func TestProviderAdoption(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			p := newProviderEnv(t, start(t, engine))
			a := p.e.account("legacy")
			switch engine {
			case postgresql:
				p.admin(t, appDatabase, "CREATE ROLE legacy LOGIN SUPERUSER PASSWORD 'legacy-pw'; CREATE TABLE t (x int); GRANT ALL ON t TO legacy")
			case mysql:
				p.admin(t, "", "CREATE USER "+a+" IDENTIFIED BY 'legacy-pw'; GRANT ALL ON *.* TO "+a+" WITH GRANT OPTION")
			}
			legacyDSN := map[string]string{
				postgresql: fmt.Sprintf("host=127.0.0.1 port=%d user=legacy password=legacy-pw dbname=app sslmode=disable", p.srv.Port),
				mysql:      fmt.Sprintf("legacy:legacy-pw@tcp(127.0.0.1:%d)/app", p.srv.Port),
			}[engine]
			if err := p.login(t, legacyDSN); err != nil {
				t.Fatalf("%s: the legacy login works before adoption: %v", engine, err)
			}

			u := newUser("legacy", "legacy", appDatabase, v1alpha1.ReadOnly)
			if diff := cmp.Diff([]string{updated, upToDate}, p.converge(t, u)); diff != "" {
				t.Errorf("%s: an existing login is adopted (updated, not created): -want, +got:\n%s", engine, diff)
			}
			s := p.mustLogin(t, u, "after adoption")
			if err := p.login(t, legacyDSN); err == nil {
				t.Errorf("%s: the adopted login's old password must stop working", engine)
			}
			if err := p.as(t, s["dsn"], "CREATE TABLE adopted_may_not (x int)"); err == nil {
				t.Errorf("%s: an adopted readOnly login must not create tables", engine)
			}
			if engine == postgresql {
				if got := p.admin(t, appDatabase, "SELECT rolsuper FROM pg_roles WHERE rolname = 'legacy'"); got != "f" {
					t.Errorf("postgresql: adoption strips SUPERUSER, rolsuper = %s", got)
				}
				if got := p.admin(t, appDatabase, "SELECT has_table_privilege('legacy', 't', 'UPDATE')"); got != "f" {
					t.Errorf("postgresql: adoption revokes extra table privileges, UPDATE on t = %s", got)
				}
			}
		})
	}
}

// TestProviderOwnerDelete deletes an owner login that owns objects in its
// database and another one: they are reassigned to the admin and the login
// is dropped.
func TestProviderOwnerDelete(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			p := newProviderEnv(t, start(t, engine))
			u := newUser("owner", "app_owner", appDatabase, v1alpha1.Owner)
			p.converge(t, u)
			s := p.mustLogin(t, u, "owner")
			// A readWrite login next to it gets default privileges on what
			// the owner creates.
			rw := newUser("writer", "app_writer", appDatabase, v1alpha1.ReadWrite)
			p.converge(t, rw)
			if err := p.as(t, s["dsn"], "CREATE TABLE owned (id INT PRIMARY KEY)", "INSERT INTO owned VALUES (1)", "DROP TABLE owned", "CREATE TABLE owned (id INT PRIMARY KEY)"); err != nil {
				t.Fatalf("%s: an owner creates and drops tables: %v", engine, err)
			}
			if engine == postgresql {
				if got := p.admin(t, appDatabase, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'"); got != "app_owner" {
					t.Errorf("postgresql: an owner owns the database, owner is %q", got)
				}
				p.admin(t, "", "CREATE DATABASE other")
				p.admin(t, "other", "CREATE TABLE elsewhere (x int); ALTER TABLE elsewhere OWNER TO app_owner")
			}
			if diff := cmp.Diff([]string{deleting, gone}, p.remove(t, u)); diff != "" {
				t.Errorf("%s: delete drops an owner: -want, +got:\n%s", engine, diff)
			}
			if got := p.logins(t, "app_owner"); got != "0" {
				t.Errorf("%s: the owner login must be gone, found %s", engine, got)
			}
			if err := p.as(t, p.mustLogin(t, rw, "writer after the owner left")["dsn"], "INSERT INTO owned VALUES (2)"); err != nil {
				t.Errorf("%s: the readWrite login still writes the owner's old table: %v", engine, err)
			}
			if got := p.converge(t, rw); len(got) > 2 {
				t.Errorf("%s: the readWrite login converges after its database's owner left: %v", engine, got)
			}
			if engine == postgresql {
				got := p.admin(t, appDatabase, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'app'") + " " +
					p.admin(t, appDatabase, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'owned'") + " " +
					p.admin(t, "other", "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'elsewhere'")
				if got != "postgres postgres postgres" {
					t.Errorf("postgresql: the database and the tables the owner owned in app and other pass to the admin, owners: %s", got)
				}
			}
		})
	}
}

// TestProviderHostileNames runs logins and a database with names that
// quote, escape and inject through their whole life, and refuses names the
// server cannot hold.
func TestProviderHostileNames(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			p := newProviderEnv(t, start(t, engine))
			const hostileDB = `my_db "x'y; z\`
			q, err := p.e.ident(hostileDB)
			if err != nil {
				t.Fatal(err)
			}
			p.admin(t, "", "CREATE DATABASE "+q)
			if engine == mysql {
				// A grant on my_db... must not match myXdb...: `_` is a
				// wildcard unless escaped.
				p.admin(t, "", "CREATE DATABASE `myXdb \"x'y; z\\`; CREATE TABLE `myXdb \"x'y; z\\`.secret (x int)")
			}
			for i, name := range p.e.hostile {
				u := newUser("hostile-"+strconv.Itoa(i), name, hostileDB, v1alpha1.ReadOnly)
				if diff := cmp.Diff([]string{created, upToDate}, p.converge(t, u)); diff != "" {
					t.Errorf("%s: login %q: created then up to date: -want, +got:\n%s", engine, name, diff)
					continue
				}
				s := p.mustLogin(t, u, fmt.Sprintf("login %q", name))
				if s["username"] != name {
					t.Errorf("%s: the Secret names login %q, got %q", engine, name, s["username"])
				}
				if engine == mysql {
					if err := p.as(t, s["dsn"], "SELECT * FROM `myXdb \"x'y; z\\`.secret"); err == nil {
						t.Errorf("mysql: login %q granted on %q must not read myXdb...", name, hostileDB)
					}
				}
				if diff := cmp.Diff([]string{deleting, gone}, p.remove(t, u)); diff != "" {
					t.Errorf("%s: login %q deleted: -want, +got:\n%s", engine, name, diff)
				}
				if got := p.logins(t, name); got != "0" {
					t.Errorf("%s: login %q must be gone, found %s", engine, name, got)
				}
			}
			for _, name := range p.e.refused {
				u := newUser("refused", name, appDatabase, v1alpha1.ReadOnly)
				ext, err := p.connector.Connect(t.Context(), u)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ext.Observe(t.Context(), u); err == nil {
					t.Errorf("%s: login name %q must be refused", engine, name)
				}
			}
			// The server still has its admin.
			if got := p.logins(t, p.e.admin); got == "0" {
				t.Errorf("%s: the admin login survived the hostile names", engine)
			}
		})
	}
}

// TestProviderObserveBudget measures a steady-state Observe of an
// up-to-date User on each real server, through the pooled connection a
// running provider reuses between polls, and holds it to at most two SQL
// round trips. It counts calls through the DB wrapper and, to catch hidden
// traffic such as liveness pings, the writes the driver makes on the wire.
// Time per call is BenchmarkProviderObserve's.
func TestProviderObserveBudget(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			srv := start(t, engine)
			p := newProviderEnv(t, srv)
			writes := &atomic.Int64{}
			pools := xsql.NewPools(time.Minute)
			t.Cleanup(pools.Close)
			newServer := user.NewServer(user.Options{Pools: pools, SQL: xsql.Options{
				Timeouts: xsql.DefaultTimeouts, Wrap: p.counter.Wrap, Dial: countingDialer(writes),
			}})
			p.connector = user.NewConnector(p.kube, p.kube, newServer, event.NewNopRecorder(), time.Minute)

			u := newUser("bench", "bench", appDatabase, v1alpha1.ReadWrite)
			p.admin(t, appDatabase, "CREATE TABLE bench_t (id INT PRIMARY KEY)")
			p.converge(t, u)
			ext, err := p.connector.Connect(t.Context(), u)
			if err != nil {
				t.Fatal(err)
			}
			observe := func() {
				o, err := ext.Observe(t.Context(), u)
				if err != nil || !o.ResourceExists || !o.ResourceUpToDate {
					t.Fatalf("%s: steady-state Observe: %+v, %v", engine, o, err)
				}
			}
			observe() // Warm: the pool has a connection, MySQL's flavor is known.

			const n = 50
			calls, wire := p.counter.Calls(), writes.Load()
			for range n {
				observe()
			}
			callsPer := float64(p.counter.Calls()-calls) / n
			wirePer := float64(writes.Load()-wire) / n
			if callsPer > 2 || wirePer > 2 {
				t.Errorf("%s: a steady-state Observe makes %.1f SQL calls and %.1f client writes, want at most 2", engine, callsPer, wirePer)
			}

			t.Logf("%s: steady-state Observe: %.1f SQL round trips (%.1f client writes on the wire) per call", engine, callsPer, wirePer)
		})
	}
}

// BenchmarkProviderObserve times a steady-state Observe of an up-to-date User
// on each real server, through the pooled connection a running provider
// reuses between polls (make bench).
func BenchmarkProviderObserve(b *testing.B) {
	for _, engine := range engines {
		b.Run(engine, func(b *testing.B) {
			srv := start(b, engine)
			p := newProviderEnv(b, srv)
			u := newUser("bench", "bench", appDatabase, v1alpha1.ReadWrite)
			p.converge(b, u)
			ext, err := p.connector.Connect(b.Context(), u)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ext.Observe(b.Context(), u); err != nil { // Warm the pool.
				b.Fatal(err)
			}
			calls := p.counter.Calls()
			b.ReportAllocs()
			for b.Loop() {
				o, err := ext.Observe(b.Context(), u)
				if err != nil || !o.ResourceExists || !o.ResourceUpToDate {
					b.Fatalf("steady-state Observe: %+v, %v", o, err)
				}
			}
			b.ReportMetric(float64(p.counter.Calls()-calls)/float64(b.N), "roundtrips/op")
		})
	}
}

// countingDialer dials TCP and counts the client's writes: one per request
// the driver sends, so one per round trip.
func countingDialer(writes *atomic.Int64) xsql.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, writes: writes}, nil
	}
}

type countingConn struct {
	net.Conn

	writes *atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}
