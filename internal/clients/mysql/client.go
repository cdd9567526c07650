package mysql

import (
	"context"
	"crypto/tls"
	"database/sql"
	"net"
	"net/url"
	"strconv"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// DefaultPort of MySQL.
const DefaultPort = 3306

// Session settings of the provider's connections: the quoting mode
// QuoteLiteral relies on, and DDL that waits for a metadata lock gives up
// instead of hanging a reconcile.
var sessionSettings = map[string]string{
	"sql_mode":          "'NO_BACKSLASH_ESCAPES'",
	"lock_wait_timeout": "10",
}

// Flavors remembers each server's flavor, so that only the first Observe
// on a pool asks for the version.
type Flavors struct {
	m sync.Map
}

// Of returns the flavor of the server at addr, asking db the first time.
func (f *Flavors) Of(ctx context.Context, addr string, db xsql.DB) (Flavor, error) {
	if v, ok := f.m.Load(addr); ok {
		return v.(Flavor), nil //nolint:forcetypeassert // Only Flavors are stored.
	}
	var version string
	if err := db.QueryRow(ctx, FlavorQuery, &version); err != nil {
		return "", errors.Wrap(err, "cannot read the server version")
	}
	fl := FlavorOf(version)
	f.m.Store(addr, fl)
	return fl, nil
}

// A Client manages accounts on one MySQL or MariaDB server.
type Client struct {
	db       xsql.DB
	endpoint xsql.Endpoint
	flavors  *Flavors
}

// NewClient returns a Client that runs SQL through db, as admin, and writes
// endpoint into connection details.
func NewClient(db xsql.DB, endpoint xsql.Endpoint, flavors *Flavors) *Client {
	return &Client{db: db, endpoint: endpoint, flavors: flavors}
}

// AdminConfig is the driver configuration of the provider's own
// connections to a server.
func AdminConfig(ep xsql.Endpoint, admin xsql.Credential, o xsql.Options) *mysql.Config {
	t := o.Timeouts
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = admin.Username, admin.Password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(ep.Host, strconv.Itoa(port(ep)))
	cfg.TLSConfig = tlsParam(ep.TLS)
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = t.Dial, t.Call, t.Call
	// Parameters are escaped by the driver for the session's mode and sent
	// with the query: one round trip, no server-side prepared statement.
	cfg.InterpolateParams = true
	cfg.Collation = "utf8mb4_general_ci"
	cfg.Params = map[string]string{}
	for k, v := range sessionSettings {
		cfg.Params[k] = v
	}
	cfg.DialFunc = o.Dial
	return cfg
}

// tlsConfig gives cfg ep's TLS configuration: with a CA, verify-full
// checks the server against it.
func tlsConfig(cfg *mysql.Config, ep xsql.Endpoint) error {
	tc, err := ep.TLSConfig()
	if err != nil {
		return err
	}
	cfg.TLS = tc
	return nil
}

// PoolDB returns a DB for the server as admin from shared pools.
func PoolDB(pools *xsql.Pools, ep xsql.Endpoint, admin xsql.Credential, o xsql.Options) (xsql.DB, error) {
	cfg := AdminConfig(ep, admin, o)
	if err := tlsConfig(cfg, ep); err != nil {
		return nil, err
	}
	db, err := pools.Get(cfg.FormatDSN()+" "+ep.Key(), func() (*sql.DB, error) {
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			return nil, errors.Wrap(err, "cannot configure the MySQL driver")
		}
		return sql.OpenDB(c), nil
	}, o.Timeouts)
	if err != nil {
		return nil, err
	}
	return o.WrapDB(db), nil
}

// Observe reads everything about login l in one query; the first call on
// a server also reads its version.
func (c *Client) Observe(ctx context.Context, l xsql.Login) (*xsql.Observation, error) {
	f, err := c.flavor(ctx)
	if err != nil {
		return nil, err
	}
	q, err := ObserveQuery(f, l)
	if err != nil {
		return nil, err
	}
	var r Row
	err = c.db.QueryRow(ctx, q, r.Dest()...)
	if errors.Is(err, xsql.ErrNoRows) {
		return &xsql.Observation{}, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "cannot observe login")
	}
	d, err := ParseRow(r)
	if err != nil {
		return nil, err
	}
	drift, err := Drift(f, l, d)
	if err != nil {
		return nil, err
	}
	return &xsql.Observation{Exists: true, Verifier: string(d.Auth), Drift: drift, Detail: d}, nil
}

// VerifyPassword reports whether password logs in as the account, from what
// Observe read: no extra round trip. An expired password, or other
// authentication methods besides it, count as a mismatch so that the
// password is set again.
func (c *Client) VerifyPassword(_ context.Context, _ xsql.Login, o *xsql.Observation, password string) (bool, error) {
	d, err := xsql.ObservedDetail[Detail](o)
	if err != nil {
		return false, err
	}
	if d.Expired || d.MultipleAuth {
		return false, nil
	}
	return VerifyPassword(d.Plugin, d.Auth, password)
}

// Create creates login l with password and grants its level. MySQL commits
// each statement on its own; if a later one fails, the next Observe sees
// the drift and Update repairs it.
func (c *Client) Create(ctx context.Context, l xsql.Login, _ *xsql.Observation, password string) error {
	f, err := c.flavor(ctx)
	if err != nil {
		return err
	}
	stmts, err := CreateStatements(f, l, password)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, stmts...), "cannot create login")
}

// SetPassword sets the account's password.
func (c *Client) SetPassword(ctx context.Context, l xsql.Login, password string) error {
	f, err := c.flavor(ctx)
	if err != nil {
		return err
	}
	stmt, err := SetPasswordStatement(f, l.Name, password)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, stmt), "cannot set password")
}

// SetPrivileges repairs the drift o found.
func (c *Client) SetPrivileges(ctx context.Context, l xsql.Login, o *xsql.Observation) error {
	d, err := xsql.ObservedDetail[Detail](o)
	if err != nil {
		return err
	}
	// Observe read the flavor: this asks no server.
	f, err := c.flavor(ctx)
	if err != nil {
		return err
	}
	stmts, err := PrivilegesStatements(f, l, d)
	if err != nil {
		return err
	}
	return errors.Wrap(c.exec(ctx, stmts...), "cannot set privileges")
}

// Delete drops the account. On MariaDB it first ends the account's
// sessions (KILL CONNECTION USER); MySQL 8 has no such statement and keeps
// a dropped account's open sessions until they close.
func (c *Client) Delete(ctx context.Context, l xsql.Login) error {
	f, err := c.flavor(ctx)
	if err != nil {
		return err
	}
	drop, err := DropStatement(l.Name)
	if err != nil {
		return err
	}
	stmts := []string{drop}
	if f == MariaDB {
		acct, err := Account(l.Name)
		if err != nil {
			return err
		}
		stmts = []string{"KILL CONNECTION USER " + acct, drop}
	}
	return errors.Wrap(c.exec(ctx, stmts...), "cannot drop login")
}

// ConnectionDetails are what an app needs to log in as cred to database.
func (c *Client) ConnectionDetails(database string, cred xsql.Credential) map[string][]byte {
	return ConnectionDetails(c.endpoint, cred, database)
}

func (c *Client) flavor(ctx context.Context) (Flavor, error) {
	return c.flavors.Of(ctx, net.JoinHostPort(c.endpoint.Host, strconv.Itoa(port(c.endpoint))), c.db)
}

func (c *Client) exec(ctx context.Context, stmts ...string) error {
	for _, s := range stmts {
		if err := c.db.Exec(ctx, xsql.Query{SQL: s}); err != nil {
			return err
		}
	}
	return nil
}

func port(ep xsql.Endpoint) int {
	if ep.Port == 0 {
		return DefaultPort
	}
	return ep.Port
}

// tlsParam is the Go driver's tls parameter for a TLS mode.
func tlsParam(t v1alpha1.TLSMode) string {
	switch t {
	case v1alpha1.TLSRequire:
		return "skip-verify"
	case v1alpha1.TLSVerifyFull:
		return "true"
	case v1alpha1.TLSDisable:
	}
	return "false"
}

// sslMode is the ssl-mode query parameter of a mysql:// URI, as MySQL
// Shell and Connector/J read it; empty for no TLS.
func sslMode(t v1alpha1.TLSMode) string {
	switch t {
	case v1alpha1.TLSRequire:
		return "REQUIRED"
	case v1alpha1.TLSVerifyFull:
		return "VERIFY_IDENTITY"
	case v1alpha1.TLSDisable:
	}
	return ""
}

// ServedCertificate connects to ep once, as admin, over TLS verified as
// ep says, and returns the DER certificate the server presented.
func ServedCertificate(ctx context.Context, ep xsql.Endpoint, admin xsql.Credential, o xsql.Options) ([]byte, error) {
	cfg := AdminConfig(ep, admin, o)
	if err := tlsConfig(cfg, ep); err != nil {
		return nil, err
	}
	if cfg.TLS == nil {
		return nil, errors.New("cannot read the served certificate: TLS is disabled")
	}
	var served []byte
	cfg.TLS.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) > 0 {
			served = cs.PeerCertificates[0].Raw
		}
		return nil
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, errors.Wrap(err, "cannot configure the MySQL driver")
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		return nil, errors.Wrap(err, "cannot connect to read the served certificate")
	}
	_ = conn.Close() // Only the handshake was wanted.
	return served, nil
}

// ReloadTLS makes the server read its TLS files again.
func (c *Client) ReloadTLS(ctx context.Context) error {
	f, err := c.flavor(ctx)
	if err != nil {
		return err
	}
	stmt, err := ReloadTLSStatement(f)
	if err != nil {
		return err
	}
	return errors.Wrap(c.db.Exec(ctx, xsql.Query{SQL: stmt}), "cannot reload the server's TLS")
}

// ConnectionDetails are the keys of a User's connection Secret.
func ConnectionDetails(ep xsql.Endpoint, cred xsql.Credential, database string) map[string][]byte {
	return withCA(ep, map[string][]byte{
		v1alpha1.ConnectionKeyHost:     []byte(ep.Host),
		v1alpha1.ConnectionKeyPort:     []byte(strconv.Itoa(port(ep))),
		v1alpha1.ConnectionKeyDatabase: []byte(database),
		v1alpha1.ConnectionKeyUsername: []byte(cred.Username),
		v1alpha1.ConnectionKeyPassword: []byte(cred.Password),
		v1alpha1.ConnectionKeyURI:      []byte(URI(ep, cred, database)),
		v1alpha1.ConnectionKeyDSN:      []byte(DSN(ep, cred, database)),
	})
}

// withCA adds the CA that verifies the server to connection details.
func withCA(ep xsql.Endpoint, d map[string][]byte) map[string][]byte {
	if len(ep.CA) > 0 {
		d[v1alpha1.ConnectionKeyCA] = ep.CA
	}
	return d
}

// URI is a mysql:// connection URI with every part percent-encoded.
func URI(ep xsql.Endpoint, cred xsql.Credential, database string) string {
	u := url.URL{
		Scheme:  "mysql",
		User:    url.UserPassword(cred.Username, cred.Password),
		Host:    net.JoinHostPort(ep.Host, strconv.Itoa(port(ep))),
		Path:    "/" + database,
		RawPath: "/" + url.PathEscape(database),
	}
	if m := sslMode(ep.TLS); m != "" {
		u.RawQuery = "ssl-mode=" + m
	}
	return u.String()
}

// DSN is a github.com/go-sql-driver/mysql data source name, as the driver
// formats it (the database name path-escaped).
func DSN(ep xsql.Endpoint, cred xsql.Credential, database string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = cred.Username, cred.Password
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(ep.Host, strconv.Itoa(port(ep)))
	cfg.DBName = database
	if ep.TLS != "" && ep.TLS != v1alpha1.TLSDisable {
		cfg.TLSConfig = tlsParam(ep.TLS)
	}
	return cfg.FormatDSN()
}
