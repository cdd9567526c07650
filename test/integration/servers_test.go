package integration

import (
	"context"
	"io"
	"syscall"
	"testing"

	"github.com/dbplane/dbplane/test/harness/servers"
)

// The server starter lives in test/harness/servers, which the e2e suite
// imports too; these are its names as this package's tests use them.

// Engines, named as the engine table's PortName.
const (
	postgresql = servers.PostgreSQL
	mysql      = servers.MySQL
)

// appDatabase is the database the images create and dbplane backs up.
const appDatabase = servers.AppDatabase

// testPassword is the superuser password of every test server. It holds
// characters a shell or SQL would mangle, to show the scripts pass it through
// the environment untouched.
const testPassword = `p@ss word $HOME 'single' "double" \back ;&|`

const (
	startTimeout = servers.StartTimeout
	stopTimeout  = servers.StopTimeout
)

// A server is a throwaway database server on 127.0.0.1, stopped and deleted
// when the test that started it ends.
type server struct {
	*servers.Server
}

// start starts a server of an engine, with testPassword and the app
// database created as the images create it, offering TLS with sharedTLS
// (and accepting plaintext).
func start(t testing.TB, engine string) *server {
	t.Helper()
	return &server{servers.StartTLS(t, engine, testPassword, testTLS())}
}

// startWith starts a server as start does, with extra server arguments
// (MariaDB only): a replicated server's binary log and server_id.
func startWith(t testing.TB, engine string, extra ...string) *server {
	t.Helper()
	return &server{servers.StartTLS(t, engine, testPassword, testTLS(), extra...)}
}

// requireBinaries skips the test when a server binary is missing, or fails
// it in CI.
func requireBinaries(t testing.TB, bins ...string) {
	t.Helper()
	servers.RequireBinaries(t, bins...)
}

// postgresBin is the newest installed PostgreSQL's bin directory.
func postgresBin() string { return servers.PostgresBin() }

// serviceUser is the credential to run a server that refuses root as, when
// the test runs as root, else nil.
func serviceUser(name string) (*syscall.Credential, error) { return servers.ServiceUser(name) }

func chownAll(dir string, c *syscall.Credential) error { return servers.ChownAll(dir, c) }

func appendFile(name string, b []byte) error { return servers.AppendFile(name, b) }

// mysqlString quotes s as a MySQL string literal.
func mysqlString(s string) string { return servers.MySQLString(s) }

// pgString quotes s as a PostgreSQL string literal.
func pgString(s string) string { return servers.PGString(s) }

// run runs a setup command to completion, logging to the server log.
func (s *server) run(t testing.TB, cred *syscall.Credential, name string, args ...string) error {
	t.Helper()
	return s.Run(t, cred, name, args...)
}

// waitReady polls ready until it succeeds, the server exits or time is up.
func (s *server) waitReady(t testing.TB, ready func(context.Context) error) error {
	t.Helper()
	return s.WaitReady(t, ready)
}

// exec runs SQL, from query or else from stdin, in database db over TCP as
// the superuser, and returns its tab-separated output.
func (s *server) exec(ctx context.Context, db string, stdin io.Reader, query string) (string, error) {
	return s.Exec(ctx, db, stdin, query)
}

// clientEnv is the environment of client commands, with the password when
// withPassword is set.
func (s *server) clientEnv(withPassword bool) []string { return s.ClientEnv(withPassword) }

// tail is the end of the server log.
func (s *server) tail() string { return s.Tail() }
