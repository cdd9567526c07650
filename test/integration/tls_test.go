package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/test/harness/servers"
)

// renewalAge is how long before now the renewal tests' certificates were
// issued: the function, called now, finds two thirds of the server
// certificate's 90 days passed.
const renewalAge = 61 * 24 * time.Hour

// verifying is a client's TLS configuration that verifies the server
// against ca for host, as the composed clients do (verify-full), and
// records the certificate the server presented.
func verifying(t testing.TB, ca []byte, host string, served *[]byte) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatal("cannot parse the composed ca.crt")
	}
	return &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12, VerifyConnection: func(cs tls.ConnectionState) error {
		if served != nil && len(cs.PeerCertificates) > 0 {
			*served = cs.PeerCertificates[0].Raw
		}
		return nil
	}}
}

// pgConnect opens a session to 127.0.0.1:port as postgres, with tc (nil:
// plaintext).
func pgConnect(ctx context.Context, port int, tc *tls.Config) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("host=127.0.0.1 port=" + strconv.Itoa(port) + " user=postgres dbname=postgres sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cfg.Password = testPassword
	cfg.TLSConfig, cfg.Fallbacks = tc, nil
	return pgx.ConnectConfig(ctx, cfg)
}

// myConnect opens a session to 127.0.0.1:port as root, with tc (nil:
// plaintext).
func myConnect(ctx context.Context, port int, tc *tls.Config) (*sql.Conn, func(), error) {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "root", testPassword, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg.TLS, cfg.Timeout = tc, 10*time.Second
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, nil, err
	}
	db := sql.OpenDB(c)
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return conn, func() { _ = conn.Close(); _ = db.Close() }, nil
}

// renew calls the function's certificate step again at a later time, with
// the Database's TLS Secrets observed, as a call after two thirds of the
// lifetime does.
func renew(t *testing.T, p fn.Params, at time.Time) fn.Params {
	t.Helper()
	o := fn.Observed{TLS: fn.ObservedTLS{CACert: p.TLS.CACert, CAKey: p.TLS.CAKey, Cert: p.TLS.Cert, Key: p.TLS.Key}}
	if err := p.ResolveTLS(o, fn.Input{}, fn.X509Issuer{}, at); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPostgreSQLTLS starts the first pod of a PostgreSQL Database with the
// composed configuration, pg_hba.conf and certificate files, in development
// and production, and checks what clients see: a client verifying with the
// composed CA connects over TLS, plaintext is refused in production and
// accepted elsewhere, a verify-full client refuses the certificate for
// another host name, the provider logs in verifying the server, and after
// a renewal (the function called again 61 days later) the provider's
// reload over SQL makes new connections get the new certificate while an
// open session keeps working.
func TestPostgreSQLTLS(t *testing.T) {
	for _, env := range []string{"development", "production"} {
		t.Run(env, func(t *testing.T) {
			c := startPGPrimaryIssued(t, 2, env, time.Now().Add(-renewalAge))
			m := c.Primary()
			ctx := t.Context()
			issued := c.p.TLS

			// Verified with the composed CA, for the name in the
			// composed ProviderConfig, on loopback as the sidecars use.
			var served []byte
			session, err := pgConnect(ctx, m.Port, verifying(t, issued.CACert, "127.0.0.1", &served))
			if err != nil {
				t.Fatalf("a client verifying with the composed CA: %v", err)
			}
			defer session.Close(context.Background()) //nolint:errcheck // Closing a test session.
			var ssl bool
			if err := session.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
				t.Fatalf("pg_stat_ssl: want this session encrypted, got %t (%v)", ssl, err)
			}
			if got, want := xsql.FingerprintDER(served), xsql.Fingerprint(issued.Cert); got != want {
				t.Fatalf("served certificate %s, want the composed tls.crt %s", got, want)
			}

			// Plaintext: refused in production by the hostssl-only
			// pg_hba.conf, accepted elsewhere.
			plain, err := pgConnect(ctx, m.Port, nil)
			switch {
			case env == "production" && err == nil:
				_ = plain.Close(ctx)
				t.Error("production: a plaintext connection was accepted")
			case env == "production" && !strings.Contains(err.Error(), "no pg_hba.conf entry"):
				t.Errorf("production: plaintext refused for another reason than pg_hba.conf: %v", err)
			case env != "production" && err != nil:
				t.Errorf("%s: a plaintext connection was refused: %v", env, err)
			case env != "production":
				_ = plain.Close(ctx)
			}

			// The certificate names the Database's hosts, not another's.
			if other, err := pgConnect(ctx, m.Port, verifying(t, issued.CACert, "orders.team-b.svc.cluster.local", nil)); err == nil {
				_ = other.Close(ctx)
				t.Error("a verify-full client accepted the certificate for another host name")
			} else if !strings.Contains(err.Error(), "certificate is valid for") {
				t.Errorf("another host name: refused, but not for the name: %v", err)
			}
			if other, err := pgConnect(ctx, m.Port, verifying(t, sharedTLS().CA, "127.0.0.1", nil)); err == nil {
				_ = other.Close(ctx)
				t.Error("a client verifying with another CA accepted the certificate")
			}

			// The provider, with the composed ProviderConfig's verify-full
			// and CA, manages a login; its connection Secret carries the
			// CA and verify-full.
			pe := newProviderEnv(t, m.server, tlsSecret(tlsOf(issued)))
			app := newUser("orders-app", "app", appDatabase, v1alpha1.Owner)
			pe.converge(t, app)
			sec := pe.secret(t, app)
			if sec["ca.crt"] != string(issued.CACert) || !strings.Contains(sec["uri"], "sslmode=verify-full") {
				t.Errorf("the app's connection Secret: want ca.crt and sslmode=verify-full, got ca.crt %t, uri sslmode %q", sec["ca.crt"] != "", sec["uri"][strings.LastIndex(sec["uri"], "?"):])
			}

			// Renewal: the function, called after two thirds of the
			// lifetime, issues a new server certificate by the same CA.
			renewed := renew(t, c.p, time.Now()).TLS
			if string(renewed.CACert) != string(issued.CACert) || string(renewed.Cert) == string(issued.Cert) {
				t.Fatal("renewal: want a new server certificate by the same CA")
			}
			pe.updateTLS(t, renewed)

			// The Secret changed, the kubelet has not updated the files
			// yet: the provider reloads, the server still serves the old
			// certificate, and nothing breaks.
			pe.converge(t, app)
			if got := pgServed(t, m.Port, issued.CACert); got != xsql.Fingerprint(issued.Cert) {
				t.Fatalf("before the files changed: served %s, want the old certificate", got)
			}
			// The kubelet updates the files; the next reconcile reloads.
			if err := servers.WriteTLS(m.tls, tlsOf(renewed), mustServiceUser(t, "postgres")); err != nil {
				t.Fatal(err)
			}
			pe.converge(t, app)
			if got := pgServed(t, m.Port, issued.CACert); got != xsql.Fingerprint(renewed.Cert) {
				t.Errorf("after the provider's reload: a new connection got %s, want the renewed certificate %s", got, xsql.Fingerprint(renewed.Cert))
			}
			// Without a restart: the session opened before still works.
			var one int
			if err := session.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Errorf("the session opened before the renewal: %v", err)
			}
			if !strings.Contains(m.tail(), "received SIGHUP, reloading configuration files") {
				t.Errorf("the server log shows no reload:\n%s", m.tail())
			}
		})
	}
}

// pgServed is the fingerprint of the certificate a new verified
// connection gets.
func pgServed(t *testing.T, port int, ca []byte) string {
	t.Helper()
	var served []byte
	c, err := pgConnect(t.Context(), port, verifying(t, ca, "127.0.0.1", &served))
	if err != nil {
		t.Fatalf("a new verified connection: %v", err)
	}
	_ = c.Close(t.Context())
	return xsql.FingerprintDER(served)
}

func mustServiceUser(t *testing.T, name string) *syscall.Credential {
	t.Helper()
	c, err := serviceUser(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPostgreSQLKeyPermissions: PostgreSQL's own rule on the key file,
// which the composed volume's mode and the pod's fsGroup meet: a key of the
// server's user that its group may read is refused; one of root's, 0440
// and the server's group, as the kubelet mounts it, is accepted.
func TestPostgreSQLKeyPermissions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the key file to root and to postgres")
	}
	c := startPGPrimary(t, 2, "development")
	m := c.Primary()
	m.Stop()
	key := filepath.Join(m.tls, "tls.key")
	cred := mustServiceUser(t, "postgres")
	if err := os.Chown(key, int(cred.Uid), int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	if err := m.Proc.Start(); err != nil {
		t.Fatal(err)
	}
	err := m.Proc.WaitReady(t.Context(), 30*time.Second, func(ctx context.Context) error {
		_, err := m.exec(ctx, "postgres", nil, "SELECT 1")
		return err
	})
	if err == nil || !strings.Contains(m.tail(), "has group or world access") {
		t.Errorf("a postgres-owned 0440 key: want the server to refuse it, got %v:\n%s", err, m.tail())
	}
	if err := os.Chown(key, 0, int(cred.Gid)); err != nil {
		t.Fatal(err)
	}
	m.startServer(t)
	if got := pgServed(t, m.Port, c.p.TLS.CACert); got != xsql.Fingerprint(c.p.TLS.Cert) {
		t.Errorf("root:postgres 0440 key: served %s", got)
	}
}

// TestMySQLTLS starts a MySQL Database's server as MariaDB with the
// composed my.cnf and certificate files, in development and production,
// and checks what clients see, as TestPostgreSQLTLS does: MariaDB's
// FLUSH SSL is the reload (MySQL 8's ALTER INSTANCE RELOAD TLS is only
// unit-tested: no MySQL 8 server runs here).
func TestMySQLTLS(t *testing.T) {
	for _, env := range []string{"development", "production"} {
		t.Run(env, func(t *testing.T) {
			requireBinaries(t, "mariadb-install-db", "mariadbd", "mysql")
			p := composeMySQL(t, 1, env)
			if err := p.ResolveTLS(fn.Observed{}, fn.Input{}, fn.X509Issuer{}, time.Now().Add(-renewalAge)); err != nil {
				t.Fatal(err)
			}
			issued := p.TLS
			dir := tempTLSDir(t, tlsOf(issued), nil)
			s := startWith(t, mysql, mariadbArgs(t, fn.ConfigMap(p).Data["dbplane.cnf"], nil, "orders-0", 0, dir)...)
			ctx := t.Context()

			var served []byte
			session, done, err := myConnect(ctx, s.Port, verifying(t, issued.CACert, "127.0.0.1", &served))
			if err != nil {
				t.Fatalf("a client verifying with the composed CA: %v", err)
			}
			defer done()
			var name, cipher string
			if err := session.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
				t.Fatalf("Ssl_cipher: want this session encrypted, got %q (%v)", cipher, err)
			}
			if got, want := xsql.FingerprintDER(served), xsql.Fingerprint(issued.Cert); got != want {
				t.Fatalf("served certificate %s, want the composed tls.crt %s", got, want)
			}

			_, plainDone, err := myConnect(ctx, s.Port, nil)
			switch {
			case env == "production" && err == nil:
				plainDone()
				t.Error("production: a plaintext connection was accepted")
			case env == "production":
				// The same login connects over TLS (the session above):
				// what is refused is the transport.
				t.Logf("production: plaintext refused: %v", err)
			case env != "production" && err != nil:
				t.Errorf("%s: a plaintext connection was refused: %v", env, err)
			case env != "production":
				plainDone()
			}
			if _, otherDone, err := myConnect(ctx, s.Port, verifying(t, issued.CACert, "orders.team-b.svc.cluster.local", nil)); err == nil {
				otherDone()
				t.Error("a verify-full client accepted the certificate for another host name")
			} else if !strings.Contains(err.Error(), "certificate is valid for") {
				t.Errorf("another host name: refused, but not for the name: %v", err)
			}

			pe := newProviderEnv(t, s, tlsSecret(tlsOf(issued)))
			app := newUser("orders-app", "app", appDatabase, v1alpha1.Owner)
			pe.converge(t, app)
			if sec := pe.secret(t, app); sec["ca.crt"] != string(issued.CACert) || !strings.Contains(sec["uri"], "ssl-mode=VERIFY_IDENTITY") {
				t.Errorf("the app's connection Secret: want ca.crt and ssl-mode=VERIFY_IDENTITY, got ca.crt %t, uri %q", sec["ca.crt"] != "", sec["uri"][strings.LastIndex(sec["uri"], "?"):])
			}

			renewed := renew(t, p, time.Now()).TLS
			pe.updateTLS(t, renewed)
			pe.converge(t, app)
			if got := myServed(t, s.Port, issued.CACert); got != xsql.Fingerprint(issued.Cert) {
				t.Fatalf("before the files changed: served %s, want the old certificate", got)
			}
			if err := servers.WriteTLS(dir, tlsOf(renewed), nil); err != nil {
				t.Fatal(err)
			}
			pe.converge(t, app)
			if got := myServed(t, s.Port, issued.CACert); got != xsql.Fingerprint(renewed.Cert) {
				t.Errorf("after the provider's reload: a new connection got %s, want the renewed certificate %s", got, xsql.Fingerprint(renewed.Cert))
			}
			var one int
			if err := session.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
				t.Errorf("the session opened before the renewal: %v", err)
			}
		})
	}
}

// myServed is the fingerprint of the certificate a new verified
// connection gets.
func myServed(t *testing.T, port int, ca []byte) string {
	t.Helper()
	var served []byte
	_, done, err := myConnect(t.Context(), port, verifying(t, ca, "127.0.0.1", &served))
	if err != nil {
		t.Fatalf("a new verified connection: %v", err)
	}
	done()
	return xsql.FingerprintDER(served)
}

// composeMySQL resolves a MySQL Database as the function does.
func composeMySQL(t *testing.T, replicas int, environment string) fn.Params {
	t.Helper()
	u := map[string]any{}
	if err := yaml.Unmarshal([]byte(myDatabase(replicas, environment)), &u); err != nil {
		t.Fatal(err)
	}
	db, err := fn.Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	fn.Default(&db.Spec)
	p, err := fn.Resolve(db, fn.Observed{}, fn.Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// updateTLS writes renewed certificates into the TLS Secret, as the
// function's next apply does.
func (p *providerEnv) updateTLS(t *testing.T, c fn.Certificates) {
	t.Helper()
	s := &corev1.Secret{}
	if err := p.kube.Get(t.Context(), types.NamespacedName{Namespace: providerNamespace, Name: tlsSecretName}, s); err != nil {
		t.Fatal(err)
	}
	s.Data = tlsSecret(tlsOf(c)).Data
	if err := p.kube.Update(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}
