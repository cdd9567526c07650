// Package xsql holds what the engine clients share: the DB interface they run
// SQL through, its database/sql implementation with bounded timeouts and
// pools, a round-trip counter, the engine-neutral description of a login and
// the password generator.
package xsql

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"net"
	"sync/atomic"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/password"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// A Query is SQL text, built by an engine package's quoting helpers, and the
// parameters it binds. Neither is ever logged: statements can hold password
// verifiers.
type Query struct {
	SQL  string
	Args []any
}

// ErrNoRows is returned by QueryRow when the query returned no row.
var ErrNoRows = sql.ErrNoRows

// A DB runs SQL on one database of a server. Every call is one round trip to
// the server on an open connection.
type DB interface {
	// Exec runs q, which may be several statements for engines whose
	// protocol sends them together, and discards any rows.
	Exec(ctx context.Context, q Query) error

	// QueryRow runs q and scans its first row into dest. It returns
	// ErrNoRows when there is none.
	QueryRow(ctx context.Context, q Query, dest ...any) error

	// QueryStrings runs q and returns the first column of every row.
	QueryStrings(ctx context.Context, q Query) ([]string, error)

	// QueryMaps runs q and returns every row as its columns' values by
	// column name; a NULL column is left out. For statements such as
	// SHOW REPLICA STATUS, whose columns differ between servers.
	QueryMaps(ctx context.Context, q Query) ([]map[string]string, error)
}

// Timeouts bound every call to a server.
type Timeouts struct {
	// Call bounds one Exec or Query, including waiting for a connection.
	Call time.Duration
	// Dial bounds establishing a connection, its TLS handshake and login.
	Dial time.Duration
}

// A DialFunc connects to a server, like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options of the engine clients' connections.
type Options struct {
	// Timeouts bound every call.
	Timeouts Timeouts
	// Dial replaces the drivers' dialer and their name resolution, for
	// example to count traffic or to redirect it through an AddressMap:
	// it is given the host:port as configured. Nil dials TCP.
	Dial DialFunc
	// Wrap wraps every DB, for example in a Counter. Nil leaves them as
	// they are.
	Wrap func(DB) DB
}

// WrapDB applies o.Wrap to db.
func (o Options) WrapDB(db DB) DB {
	if o.Wrap == nil {
		return db
	}
	return o.Wrap(db)
}

// DefaultTimeouts are short enough that a reconcile (one minute by default)
// never waits on a dead server, and long enough for DDL on a busy one.
var DefaultTimeouts = Timeouts{Call: 20 * time.Second, Dial: 10 * time.Second}

// Pool limits of every database/sql pool. The provider needs few
// connections per server: reconciles of one ProviderConfig share them.
const (
	MaxOpenConns    = 4
	MaxIdleConns    = 2
	ConnMaxIdleTime = 5 * time.Minute
	ConnMaxLifetime = 30 * time.Minute
)

// NewDB returns a DB running SQL through a database/sql pool, which it
// configures with the pool limits above.
func NewDB(db *sql.DB, t Timeouts) DB {
	db.SetMaxOpenConns(MaxOpenConns)
	db.SetMaxIdleConns(MaxIdleConns)
	db.SetConnMaxIdleTime(ConnMaxIdleTime)
	db.SetConnMaxLifetime(ConnMaxLifetime)
	return &sqlDB{db: db, timeout: t.Call}
}

type sqlDB struct {
	db      *sql.DB
	timeout time.Duration
}

// Exec runs q within the call timeout.
func (d *sqlDB) Exec(ctx context.Context, q Query) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	_, err := d.db.ExecContext(ctx, q.SQL, q.Args...)
	return err
}

// QueryRow runs q within the call timeout and scans its first row.
func (d *sqlDB) QueryRow(ctx context.Context, q Query, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.db.QueryRowContext(ctx, q.SQL, q.Args...).Scan(dest...)
}

// QueryStrings runs q within the call timeout and reads its first column.
func (d *sqlDB) QueryStrings(ctx context.Context, q Query) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rows, err := d.db.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // rows.Err reports what matters.
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// QueryMaps runs q within the call timeout and reads every row by column
// name.
func (d *sqlDB) QueryMaps(ctx context.Context, q Query) ([]map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	rows, err := d.db.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close() //nolint:errcheck // rows.Err reports what matters.
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make(map[string]string, len(cols))
		for i, c := range cols {
			if vals[i].Valid {
				row[c] = vals[i].String
			}
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

// A Counter counts the calls, and so the SQL round trips, made through the
// DBs it wraps. Benchmarks and tests use it to hold Observe to its budget.
type Counter struct {
	calls atomic.Int64
}

// Wrap returns db counting its calls into c.
func (c *Counter) Wrap(db DB) DB {
	return &counted{DB: db, calls: &c.calls}
}

// Calls made so far.
func (c *Counter) Calls() int64 {
	return c.calls.Load()
}

type counted struct {
	DB

	calls *atomic.Int64
}

// Exec counts one call and runs q.
func (c *counted) Exec(ctx context.Context, q Query) error {
	c.calls.Add(1)
	return c.DB.Exec(ctx, q)
}

// QueryRow counts one call and runs q.
func (c *counted) QueryRow(ctx context.Context, q Query, dest ...any) error {
	c.calls.Add(1)
	return c.DB.QueryRow(ctx, q, dest...)
}

// QueryStrings counts one call and runs q.
func (c *counted) QueryStrings(ctx context.Context, q Query) ([]string, error) {
	c.calls.Add(1)
	return c.DB.QueryStrings(ctx, q)
}

// QueryMaps counts one call and runs q.
func (c *counted) QueryMaps(ctx context.Context, q Query) ([]map[string]string, error) {
	c.calls.Add(1)
	return c.DB.QueryMaps(ctx, q)
}

// A Login is the desired state of one login, in engine-neutral terms.
type Login struct {
	// Name of the login on the server.
	Name string
	// Database the privileges apply to.
	Database string
	// Privileges on Database.
	Privileges v1alpha1.Privileges
}

// An Endpoint is where apps and the provider reach a server.
type Endpoint struct {
	Host string
	Port int
	TLS  v1alpha1.TLSMode
	// CA is the PEM CA certificate verify-full checks the server's
	// certificate against; nil means the system's trust store.
	CA []byte
	// Certificate is the PEM certificate the server should present, when
	// known: the provider reloads the server's TLS while it presents
	// another.
	Certificate []byte
	// CAFile is where a server reads the CA from, for replicas connecting
	// to this endpoint as their source; empty: they connect without TLS.
	CAFile string
}

// TLSConfig is the TLS configuration of connections to ep: nil for
// disable, unverified for require, and for verify-full verified against
// ep's CA and host name. At least TLS 1.2.
func (ep Endpoint) TLSConfig() (*tls.Config, error) {
	switch ep.TLS {
	case v1alpha1.TLSRequire:
		return &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}, nil //nolint:gosec // What tls: require means.
	case v1alpha1.TLSVerifyFull:
		c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ep.Host}
		if len(ep.CA) > 0 {
			c.RootCAs = x509.NewCertPool()
			if !c.RootCAs.AppendCertsFromPEM(ep.CA) {
				return nil, errors.New("cannot parse the CA certificate: no PEM certificate")
			}
		}
		return c, nil
	case v1alpha1.TLSDisable, "":
	}
	return nil, nil
}

// Key identifies everything but the login that connections to ep depend
// on, for pool keys.
func (ep Endpoint) Key() string {
	ca := sha256.Sum256(ep.CA)
	return string(ep.TLS) + "/" + hex.EncodeToString(ca[:])
}

// Fingerprint is the SHA-256 of a PEM certificate's DER, in hex; empty
// when p holds none.
func Fingerprint(p []byte) string {
	b, _ := pem.Decode(p)
	if b == nil {
		return ""
	}
	return FingerprintDER(b.Bytes)
}

// FingerprintDER is the SHA-256 of a DER certificate, in hex.
func FingerprintDER(der []byte) string {
	s := sha256.Sum256(der)
	return hex.EncodeToString(s[:])
}

// A Credential is a login name and its password.
type Credential struct {
	Username string
	Password string
}

// An Observation is what one query found out about a login.
type Observation struct {
	// Exists is true when the login exists.
	Exists bool

	// Verifier is what the server stores to check the login's password,
	// in the engine's format. Empty when it cannot be read.
	Verifier string

	// Drift lists, for humans, how the login's attributes and privileges
	// differ from the desired ones. Empty when they match.
	Drift []string

	// Detail is engine-specific state the engine's SetPrivileges needs to
	// repair the drift.
	Detail any
}

// ObservedDetail returns o's engine-specific Detail as the engine's type T.
func ObservedDetail[T any](o *Observation) (T, error) {
	var zero T
	if o == nil {
		return zero, errors.New("login was not observed")
	}
	d, ok := o.Detail.(T)
	if !ok {
		return zero, errors.Errorf("unexpected observation detail %T", o.Detail)
	}
	return d, nil
}

// PasswordBits is the entropy of a generated password: 32 characters from
// 62, about 190 bits from crypto/rand.
const PasswordBits = 190

// GeneratePassword returns a new random password of letters and digits,
// which every engine, URI and DSN carries without escaping.
func GeneratePassword() (string, error) {
	pw, err := password.Settings{
		CharacterSet: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
		Length:       32,
	}.Generate()
	return pw, errors.Wrap(err, "cannot generate a password")
}
