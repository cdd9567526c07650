package postgres

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"database/sql"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// MaintenanceDatabase is the database the provider connects to when a
// login's own database does not exist.
const MaintenanceDatabase = "postgres"

// DefaultPort of PostgreSQL.
const DefaultPort = 5432

// Session settings of the provider's connections: DDL that waits for a lock
// gives up instead of hanging a reconcile, and so does a runaway statement.
var sessionSettings = map[string]string{
	"application_name":  "dbplane-provider",
	"lock_timeout":      "10s",
	"statement_timeout": "30s",
}

// pingIdle is how long a pooled connection may idle before it is pinged
// (one round trip) on reuse. Longer than the default poll interval, so a
// steady-state Observe does not pay for it.
const pingIdle = 2 * time.Minute

// An Opener returns a DB on one database of the server.
type Opener func(database string) (xsql.DB, error)

// A Client manages logins on one PostgreSQL server.
type Client struct {
	open     Opener
	endpoint xsql.Endpoint
	verifier func(password string) (string, error)
}

// NewClient returns a Client that reaches each database through open and
// writes endpoint into connection details.
func NewClient(open Opener, endpoint xsql.Endpoint) *Client {
	return &Client{open: open, endpoint: endpoint, verifier: NewSCRAMVerifier}
}

// connConfig is the driver configuration of the provider's connections
// to database as admin: with a CA, verify-full checks the server against
// it, and no connection falls back to another TLS mode.
func connConfig(ep xsql.Endpoint, admin xsql.Credential, database string, o xsql.Options) (*pgx.ConnConfig, error) {
	dsn := DSN(ep, admin, database) + " connect_timeout=" + strconv.Itoa(int(o.Timeouts.Dial.Seconds()))
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.Wrap(err, "cannot parse PostgreSQL connection settings")
	}
	tc, err := ep.TLSConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		cfg.TLSConfig, cfg.Fallbacks = tc, nil
	}
	for k, v := range sessionSettings {
		cfg.RuntimeParams[k] = v
	}
	if o.Dial != nil {
		// pgx resolves the host before it dials: leave that to the hook,
		// which may map names that do not resolve.
		cfg.DialFunc = pgconn.DialFunc(o.Dial)
		cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	}
	return cfg, nil
}

// ServedCertificate connects to ep once, as admin, over TLS verified as
// ep says, and returns the DER certificate the server presented.
func ServedCertificate(ctx context.Context, ep xsql.Endpoint, admin xsql.Credential, o xsql.Options) ([]byte, error) {
	cfg, err := connConfig(ep, admin, MaintenanceDatabase, o)
	if err != nil {
		return nil, err
	}
	if cfg.TLSConfig == nil {
		return nil, errors.New("cannot read the served certificate: TLS is disabled")
	}
	var served []byte
	cfg.TLSConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 {
			served = cs.PeerCertificates[0].Raw
		}
		return nil
	}
	conn, err := pgconn.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return nil, errors.Wrap(err, "cannot connect to read the served certificate")
	}
	_ = conn.Close(ctx) // Only the handshake was wanted.
	return served, nil
}

// ReloadTLSQuery makes the server read its configuration, certificate
// and key files among them, again: new connections get the new
// certificate, open ones keep theirs.
var ReloadTLSQuery = xsql.Query{SQL: "SELECT pg_catalog.pg_reload_conf()"}

// ReloadTLS makes the server read its TLS files again.
func (c *Client) ReloadTLS(ctx context.Context) error {
	db, err := c.open(MaintenanceDatabase)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, ReloadTLSQuery), "cannot reload the server's TLS")
}

// PoolOpener opens databases as admin through shared pools.
func PoolOpener(pools *xsql.Pools, ep xsql.Endpoint, admin xsql.Credential, o xsql.Options) Opener {
	return func(database string) (xsql.DB, error) {
		dsn := DSN(ep, admin, database) + " connect_timeout=" + strconv.Itoa(int(o.Timeouts.Dial.Seconds()))
		db, err := pools.Get(dsn+" "+ep.Key(), func() (*sql.DB, error) {
			cfg, err := connConfig(ep, admin, database, o)
			if err != nil {
				return nil, err
			}
			// Queries with parameters are prepared once per connection and
			// then run in one round trip each, reusing their plan: the
			// observe query costs ~1ms to plan and ~0.3ms to run. Scripts
			// without parameters use the simple protocol.
			cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
			return stdlib.OpenDB(*cfg, stdlib.OptionShouldPing(func(_ context.Context, p stdlib.ShouldPingParams) bool {
				return p.IdleDuration > pingIdle
			})), nil
		}, o.Timeouts)
		if err != nil {
			return nil, err
		}
		return o.WrapDB(db), nil
	}
}

// Observe reads everything about login l in one query on its database.
func (c *Client) Observe(ctx context.Context, l xsql.Login) (*xsql.Observation, error) {
	q, err := ObserveQuery(l)
	if err != nil {
		return nil, err
	}
	db, err := c.open(l.Database)
	if err != nil {
		return nil, err
	}
	var doc []byte
	err = db.QueryRow(ctx, q, &doc)
	missing := isMissingDatabase(err)
	if missing {
		// The database is gone (or not there yet): learn whether the login
		// exists from the maintenance database, for Delete's sake.
		if db, err = c.open(MaintenanceDatabase); err != nil {
			return nil, err
		}
		err = db.QueryRow(ctx, q, &doc)
	}
	if err != nil {
		return nil, errors.Wrap(err, "cannot observe login")
	}
	d, err := ParseDetail(doc)
	if err != nil {
		return nil, err
	}
	d.DatabaseMissing = missing
	o := &xsql.Observation{Exists: d.Exists, Verifier: d.Verifier, Detail: d}
	if d.Exists {
		if o.Drift, err = Drift(l, d); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// VerifyPassword reports whether password is the login's, from the verifier
// Observe read: no extra round trip. A match is remembered, so a steady
// state does not pay for SCRAM's key derivation every poll.
func (c *Client) VerifyPassword(_ context.Context, l xsql.Login, o *xsql.Observation, password string) (bool, error) {
	return verified.Verify(o.Verifier, l.Name, password)
}

// verified remembers matches between verifiers and passwords, process-wide.
var verified = &matches{m: map[[sha256.Size]byte]struct{}{}}

// maxMatches bounds the memory matches uses: about 32 bytes per login.
const maxMatches = 10_000

// matches remembers the digests of verifier, role and password triples that
// matched. A changed password or verifier makes a new digest, so a stale
// match is never used; a mismatch is not remembered.
type matches struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]struct{}
}

// Verify is VerifyPassword, remembering matches.
func (ms *matches) Verify(verifier, role, password string) (bool, error) {
	h := sha256.New()
	for _, s := range []string{verifier, role, password} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	ms.mu.Lock()
	_, ok := ms.m[k]
	ms.mu.Unlock()
	if ok {
		return true, nil
	}
	ok, err := VerifyPassword(verifier, role, password)
	if !ok || err != nil {
		return ok, err
	}
	ms.mu.Lock()
	if len(ms.m) >= maxMatches {
		clear(ms.m)
	}
	ms.m[k] = struct{}{}
	ms.mu.Unlock()
	return true, nil
}

// Create creates login l with password and its privileges, in one
// transaction.
func (c *Client) Create(ctx context.Context, l xsql.Login, o *xsql.Observation, password string) error {
	d, err := xsql.ObservedDetail[Detail](o)
	if err != nil {
		return err
	}
	if d.DatabaseMissing {
		return errors.Errorf("database %q does not exist", l.Database)
	}
	v, err := c.verifier(password)
	if err != nil {
		return err
	}
	stmts, err := CreateStatements(l, d, v)
	if err != nil {
		return err
	}
	db, err := c.open(l.Database)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, Script(stmts...)), "cannot create login")
}

// SetPassword sets the login's password, sending only its SCRAM verifier.
func (c *Client) SetPassword(ctx context.Context, l xsql.Login, password string) error {
	v, err := c.verifier(password)
	if err != nil {
		return err
	}
	stmt, err := SetPasswordStatement(l.Name, v)
	if err != nil {
		return err
	}
	db, err := c.open(l.Database)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, Script(stmt)), "cannot set password")
}

// SetPrivileges repairs the drift o found, in one transaction.
func (c *Client) SetPrivileges(ctx context.Context, l xsql.Login, o *xsql.Observation) error {
	d, err := xsql.ObservedDetail[Detail](o)
	if err != nil {
		return err
	}
	if d.DatabaseMissing {
		return errors.Errorf("cannot grant privileges: database %q does not exist", l.Database)
	}
	stmts, err := PrivilegesStatements(l, d)
	if err != nil || len(stmts) == 0 {
		return err
	}
	db, err := c.open(l.Database)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, Script(stmts...)), "cannot set privileges")
}

// Delete drops the login: in its database and in every other database
// where it owns objects or holds privileges, it ends the login's sessions,
// reassigns what it owns to the admin and drops its privileges; then it
// drops the role. Each step is bounded by the DB's call timeout and the
// session's lock_timeout, so a busy server fails the attempt instead of
// hanging it; the next reconcile retries.
func (c *Client) Delete(ctx context.Context, l xsql.Login) error {
	drop, err := DropOwnedStatements(l.Name)
	if err != nil {
		return err
	}
	first := l.Database
	db, err := c.open(first)
	if err == nil {
		err = db.Exec(ctx, Script(drop...))
	}
	if isMissingDatabase(err) {
		first = MaintenanceDatabase
		if db, err = c.open(first); err == nil {
			err = db.Exec(ctx, Script(drop...))
		}
	}
	if err != nil {
		return errors.Wrapf(err, "cannot drop what login owns in database %q", first)
	}
	q, err := DependentDatabasesQuery(l.Name)
	if err != nil {
		return err
	}
	others, err := db.QueryStrings(ctx, q)
	if err != nil {
		return errors.Wrap(err, "cannot list the databases login has objects in")
	}
	for _, name := range others {
		other, err := c.open(name)
		if err == nil {
			err = other.Exec(ctx, Script(drop...))
		}
		if err != nil && !isMissingDatabase(err) {
			return errors.Wrapf(err, "cannot drop what login owns in database %q", name)
		}
	}
	stmt, err := DropRoleStatement(l.Name)
	if err != nil {
		return err
	}
	return errors.Wrap(db.Exec(ctx, Script(stmt)), "cannot drop login")
}

// ConnectionDetails are what an app needs to log in as cred to database.
func (c *Client) ConnectionDetails(database string, cred xsql.Credential) map[string][]byte {
	return ConnectionDetails(c.endpoint, cred, database)
}

// isMissingDatabase reports whether err is PostgreSQL's invalid_catalog_name:
// the database does not exist.
func isMissingDatabase(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "3D000"
}

// sslMode is libpq's sslmode for a TLS mode.
func sslMode(t v1alpha1.TLSMode) string {
	if t == "" {
		return string(v1alpha1.TLSDisable)
	}
	return string(t)
}

// ConnectionDetails are the keys of a User's connection Secret.
func ConnectionDetails(ep xsql.Endpoint, cred xsql.Credential, database string) map[string][]byte {
	d := map[string][]byte{
		v1alpha1.ConnectionKeyHost:     []byte(ep.Host),
		v1alpha1.ConnectionKeyPort:     []byte(strconv.Itoa(port(ep))),
		v1alpha1.ConnectionKeyDatabase: []byte(database),
		v1alpha1.ConnectionKeyUsername: []byte(cred.Username),
		v1alpha1.ConnectionKeyPassword: []byte(cred.Password),
		v1alpha1.ConnectionKeyURI:      []byte(URI(ep, cred, database)),
		v1alpha1.ConnectionKeyDSN:      []byte(DSN(ep, cred, database)),
	}
	if len(ep.CA) > 0 {
		d[v1alpha1.ConnectionKeyCA] = ep.CA
	}
	return d
}

func port(ep xsql.Endpoint) int {
	if ep.Port == 0 {
		return DefaultPort
	}
	return ep.Port
}

// URI is a postgresql:// connection URI, every part percent-encoded as
// libpq decodes it.
func URI(ep xsql.Endpoint, cred xsql.Credential, database string) string {
	u := url.URL{
		Scheme:   "postgresql",
		User:     url.UserPassword(cred.Username, cred.Password),
		Host:     net.JoinHostPort(ep.Host, strconv.Itoa(port(ep))),
		Path:     "/" + database,
		RawPath:  "/" + url.PathEscape(database),
		RawQuery: "sslmode=" + sslMode(ep.TLS),
	}
	return u.String()
}

// DSN is a libpq keyword/value connection string, which pgx and lib/pq
// read too. Every value is single-quoted, with backslashes and quotes
// escaped.
func DSN(ep xsql.Endpoint, cred xsql.Credential, database string) string {
	kv := func(k, v string) string {
		return k + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
	}
	return strings.Join([]string{
		kv("host", ep.Host), kv("port", strconv.Itoa(port(ep))), kv("user", cred.Username),
		kv("password", cred.Password), kv("dbname", database), kv("sslmode", sslMode(ep.TLS)),
	}, " ")
}
