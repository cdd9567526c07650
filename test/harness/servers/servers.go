// Package servers starts throwaway PostgreSQL and MariaDB servers on
// 127.0.0.1 for the real-server test tiers (test/integration, test/e2e),
// from the binaries test/servers/install.sh installs. Each server is stopped
// by its PID and its files deleted when the test that started it ends,
// unless the test failed or DBPLANE_E2E_KEEP is set.
//
// Without the server binaries a test skips, unless CI is set: then it
// fails.
package servers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbplane/dbplane/test/harness"
)

// Engines, named as the engine table's PortName.
const (
	PostgreSQL = "postgresql"
	MySQL      = "mysql"
)

// AppDatabase is the database the images create and dbplane backs up.
const AppDatabase = "app"

// Bounds of a server's start (each setup step, and until it answers) and
// stop.
const (
	StartTimeout = 90 * time.Second
	StopTimeout  = 30 * time.Second
)

// A Server is a throwaway database server on 127.0.0.1, stopped and deleted
// when the test that started it ends.
type Server struct {
	// Engine is PostgreSQL or MySQL (a MariaDB server).
	Engine string
	// Port the server listens on, on 127.0.0.1.
	Port int
	// Password of the superuser: postgres, or root.
	Password string

	// Dir holds the server's files: its data, socket and log.
	Dir string
	// Log is the server's log file, with its setup tools' output.
	Log string
	// Proc is the server process, once spawned.
	Proc *harness.Process

	// Args are the server's own arguments, kept for a restart; Extra are
	// the test's, replacing the defaults of startMariaDB they name.
	Args  []string
	Extra []string

	// TLS, when set, is served: the server offers TLS with its files (and
	// accepts plaintext too: the harness's own pg_hba.conf and MariaDB's
	// defaults).
	TLS *TLS
}

// TLS is a server's certificate files, PEM, as a Database's TLS Secret
// holds them.
type TLS struct {
	CA, Cert, Key []byte
	// Dir holds ca.crt, tls.crt and tls.key once written.
	Dir string
}

// WriteTLS writes the files into dir as the kubelet mounts a Secret into a
// pod whose fsGroup is the server's group: owned by root and that group,
// 0440. Not as root, owned by the tester, 0400: PostgreSQL refuses a key
// file of its own user that its group may read.
func WriteTLS(dir string, c *TLS, server *syscall.Credential) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // Certificates and a key readable only through the file modes below.
		return err
	}
	mode := os.FileMode(0o400)
	if os.Geteuid() == 0 {
		mode = 0o440
	}
	for name, b := range map[string][]byte{"ca.crt": c.CA, "tls.crt": c.Cert, "tls.key": c.Key} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil {
			return err
		}
		if os.Geteuid() == 0 && server != nil {
			if err := os.Chown(p, 0, int(server.Gid)); err != nil {
				return err
			}
		}
	}
	c.Dir = dir
	return nil
}

// RequireBinaries skips the test when a server binary is missing, or fails
// it in CI.
func RequireBinaries(t testing.TB, bins ...string) {
	t.Helper()
	var missing []string
	for _, b := range bins {
		if _, err := LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("cannot find %s: run test/servers/install.sh", strings.Join(missing, ", "))
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// LookPath finds a binary in PATH or, for server binaries, in the sbin
// directories a non-root PATH lacks.
func LookPath(b string) (string, error) {
	if filepath.IsAbs(b) {
		if _, err := os.Stat(b); err != nil {
			return "", err
		}
		return b, nil
	}
	if p, err := exec.LookPath(b); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(d, b); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("cannot find %s", b)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// PostgresBin is the newest installed PostgreSQL's bin directory.
func PostgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres") // The pattern is valid.
	if len(dirs) == 0 {
		return "/usr/lib/postgresql/15/bin"
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(a) - version(b) })
	return filepath.Dir(dirs[len(dirs)-1])
}

func version(bin string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(bin)))) // Not a number sorts first.
	return v
}

// Start starts a server of an engine whose superuser has password, with the
// app database created as the images create it.
func Start(t testing.TB, engine, password string) *Server {
	t.Helper()
	return StartWith(t, engine, password)
}

// StartWith starts a server as Start does, with extra server arguments
// (MariaDB only): a replicated server's binary log and server_id.
func StartWith(t testing.TB, engine, password string, extra ...string) *Server {
	t.Helper()
	return StartTLS(t, engine, password, nil, extra...)
}

// StartTLS starts a server as StartWith does, offering TLS with tls's
// files when tls is set.
func StartTLS(t testing.TB, engine, password string, tls *TLS, extra ...string) *Server {
	t.Helper()
	switch engine {
	case PostgreSQL:
		bin := PostgresBin()
		RequireBinaries(t, bin+"/initdb", bin+"/postgres", "psql", "pg_dump")
	case MySQL:
		RequireBinaries(t, "mariadb-install-db", "mariadbd", "mysql", "mysqldump")
	default:
		t.Fatalf("cannot start a server: unknown engine %q", engine)
	}

	// A free port can be taken between finding and binding it: try again.
	var errs []error
	for range 3 {
		s, err := try(t, engine, password, tls, extra...)
		if err == nil {
			return s
		}
		errs = append(errs, err)
		t.Logf("cannot start %s, trying again: %v", engine, err)
	}
	t.Fatalf("cannot start %s: %v", engine, errors.Join(errs...))
	return nil
}

func try(t testing.TB, engine, password string, tls *TLS, extra ...string) (*Server, error) {
	t.Helper()
	port, err := harness.FreePort(t.Context())
	if err != nil {
		return nil, err
	}
	// Cleanups run last first: the server stops, then its files go, unless
	// the test failed or DBPLANE_E2E_KEEP is set.
	dir := harness.TempDir(t, "dbplane-"+engine+"-")

	s := &Server{Engine: engine, Port: port, Password: password, Dir: dir, Log: filepath.Join(dir, "server.log"), Extra: extra}
	if tls != nil {
		c := *tls
		s.TLS = &c
	}
	t.Cleanup(s.Stop)
	switch engine {
	case PostgreSQL:
		err = s.startPostgreSQL(t)
	case MySQL:
		err = s.startMariaDB(t)
	}
	if err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, s.Tail())
	}
	t.Logf("started %s on 127.0.0.1:%d (pid %d) in %s", engine, port, s.Proc.PID(), dir)
	return s, nil
}

// ServiceUser is the credential to run a server that refuses root as, when
// the test runs as root, else nil.
func ServiceUser(name string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("cannot find the %s user to run the server as: %w", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)                                       // Numeric on Linux.
	gid, _ := strconv.Atoi(u.Gid)                                       // Numeric on Linux.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil //nolint:gosec // IDs fit.
}

// ChownAll hands every file under dir to c's user; nil changes nothing.
func ChownAll(dir string, c *syscall.Credential) error {
	if c == nil {
		return nil
	}
	// Through an os.Root, so that no path the walk meets leads out of dir.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	err = fs.WalkDir(root.FS(), ".", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return root.Lchown(p, int(c.Uid), int(c.Gid))
	})
	return errors.Join(err, root.Close())
}

func (s *Server) startPostgreSQL(t testing.TB) error {
	t.Helper()
	bin := PostgresBin()
	cred, err := ServiceUser("postgres")
	if err != nil {
		return err
	}
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("cannot write password file: %w", err)
	}
	if err := ChownAll(s.Dir, cred); err != nil {
		return fmt.Errorf("cannot hand the server directory to postgres: %w", err)
	}
	data := filepath.Join(s.Dir, "data")
	if err := s.Run(t, cred, bin+"/initdb", "--pgdata="+data, "--username=postgres", "--pwfile="+pwfile,
		"--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return fmt.Errorf("cannot initdb: %w", err)
	}
	if err := os.Remove(pwfile); err != nil {
		return fmt.Errorf("cannot remove password file: %w", err)
	}

	// Durability is not needed from a throwaway server.
	args := []string{"-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port=" + strconv.Itoa(s.Port), "-c", "unix_socket_directories=" + s.Dir,
		"-c", "password_encryption=scram-sha-256", "-c", "timezone=UTC", "-c", "log_timezone=UTC",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_wal_size=1GB",
		"-c", "shared_buffers=128MB", "-c", "logging_collector=off"}
	ssl, err := s.pgTLSArgs(cred)
	if err != nil {
		return err
	}
	if err := s.Spawn(cred, syscall.SIGINT, syscall.SIGQUIT, bin+"/postgres", append(args, ssl...)...); err != nil {
		return err
	}
	if err := s.WaitReady(t, func(ctx context.Context) error {
		_, err := s.Exec(ctx, "postgres", nil, "SELECT 1")
		return err
	}); err != nil {
		return err
	}
	_, err = s.Exec(t.Context(), "postgres", nil, "CREATE DATABASE "+AppDatabase)
	return err
}

// pgTLSArgs writes s's TLS files, when it has them, and returns the
// PostgreSQL settings that serve them.
func (s *Server) pgTLSArgs(cred *syscall.Credential) ([]string, error) {
	if s.TLS == nil {
		return nil, nil
	}
	if err := WriteTLS(filepath.Join(s.Dir, "tls"), s.TLS, cred); err != nil {
		return nil, fmt.Errorf("cannot write TLS files: %w", err)
	}
	return []string{"-c", "ssl=on", "-c", "ssl_cert_file=" + s.TLS.Dir + "/tls.crt", "-c", "ssl_key_file=" + s.TLS.Dir + "/tls.key",
		"-c", "ssl_ca_file=" + s.TLS.Dir + "/ca.crt", "-c", "ssl_min_protocol_version=TLSv1.2"}, nil
}

func (s *Server) startMariaDB(t testing.TB) error {
	t.Helper()
	data := filepath.Join(s.Dir, "data")
	sock := filepath.Join(s.Dir, "mysqld.sock")
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	install, err := LookPath("mariadb-install-db")
	if err != nil {
		return err
	}
	if err := s.Run(t, nil, install, append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"}, asRoot...)...); err != nil {
		return fmt.Errorf("cannot mariadb-install-db: %w", err)
	}

	mariadbd, err := LookPath("mariadbd")
	if err != nil {
		return err
	}
	// As dbplane configures MySQL (utf8mb4, UTC, no name resolution), with
	// MySQL 8's default packet limit. Durability is not needed.
	args := append([]string{"--no-defaults", "--datadir=" + data, "--socket=" + sock,
		"--port=" + strconv.Itoa(s.Port), "--bind-address=127.0.0.1", "--skip-networking=0",
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"), "--tmpdir=" + s.Dir,
		"--skip-name-resolve", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
		"--default-time-zone=+00:00", "--max-allowed-packet=64M",
		"--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=2", "--innodb-use-native-aio=0"}, asRoot...)
	if len(s.Extra) == 0 {
		args = append(args, "--skip-log-bin")
	}
	if s.TLS != nil {
		if err := WriteTLS(filepath.Join(s.Dir, "tls"), s.TLS, nil); err != nil {
			return fmt.Errorf("cannot write TLS files: %w", err)
		}
		args = append(args, "--ssl-ca="+s.TLS.Dir+"/ca.crt", "--ssl-cert="+s.TLS.Dir+"/tls.crt", "--ssl-key="+s.TLS.Dir+"/tls.key")
	}
	args = append(args, s.Extra...)
	s.Args = args
	if err := s.Spawn(nil, syscall.SIGTERM, syscall.SIGKILL, mariadbd, s.Args...); err != nil {
		return err
	}

	// root@localhost has no password yet and logs in over the socket only.
	socket := func(ctx context.Context, query string) error {
		cmd := exec.CommandContext(ctx, "mysql", "--no-defaults", "--socket="+sock, "--user=root", "--batch", "--execute="+query) //nolint:gosec // The mysql client on our own server's socket, with the test's own queries.
		cmd.Env = s.ClientEnv(false)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("cannot run %q over the socket: %w: %s", query, err, out)
		}
		return nil
	}
	if err := s.WaitReady(t, func(ctx context.Context) error { return socket(ctx, "SELECT 1") }); err != nil {
		return err
	}
	// As in the images: root@localhost and root@'%', both with the
	// password. mariadb-install-db also creates password-less root accounts
	// for 127.0.0.1, ::1 and the host name, which TCP logins would match.
	// Not into the binary log, which replicas replay: each server is set up
	// as its image would set it up.
	pw := MySQLString(s.Password)
	if err := socket(t.Context(), strings.Join([]string{
		"SET SESSION sql_log_bin = 0",
		"DELETE FROM mysql.global_priv WHERE User = 'root' AND Host <> 'localhost'",
		"DELETE FROM mysql.proxies_priv WHERE User = 'root' AND Host <> 'localhost'",
		"FLUSH PRIVILEGES",
		"ALTER USER root@localhost IDENTIFIED BY " + pw,
		"CREATE USER root@'%' IDENTIFIED BY " + pw,
		"GRANT ALL PRIVILEGES ON *.* TO root@'%' WITH GRANT OPTION",
		"CREATE DATABASE " + AppDatabase,
	}, "; ")); err != nil {
		return err
	}
	_, err = s.Exec(t.Context(), "", nil, "SELECT 1")
	return err
}

// Restart starts a stopped MariaDB server again on its data, with the
// arguments it first started with, as a pod's container restarts.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	mariadbd, err := LookPath("mariadbd")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Spawn(nil, syscall.SIGTERM, syscall.SIGKILL, mariadbd, s.Args...); err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(t, func(ctx context.Context) error {
		_, err := s.Exec(ctx, "", nil, "SELECT 1")
		return err
	}); err != nil {
		t.Fatalf("%v\n%s", err, s.Tail())
	}
}

// Wipe stops a MariaDB server, deletes its data and sets it up again from
// nothing, on the same port with the same arguments, as a pod whose volume
// was replaced starts.
func (s *Server) Wipe(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := os.RemoveAll(filepath.Join(s.Dir, "data")); err != nil {
		t.Fatal(err)
	}
	if err := s.startMariaDB(t); err != nil {
		t.Fatalf("cannot set up %s again: %v\n%s", s.Engine, err, s.Tail())
	}
}

// Run runs a setup command to completion, logging to the server log.
func (s *Server) Run(t testing.TB, cred *syscall.Credential, name string, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), StartTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...) //nolint:gosec // An installed server's setup tool (initdb, mariadb-install-db) with the test's own arguments.
	cmd.Dir = s.Dir
	cmd.Env = s.ServerEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	_ = AppendFile(s.Log, out) // Diagnostics only.
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(name), err)
	}
	return nil
}

// Spawn starts the server process, logging to the server log. Stop sends it
// stop, by PID; if the test binary dies first the kernel sends it death.
func (s *Server) Spawn(cred *syscall.Credential, stop, death syscall.Signal, name string, args ...string) error {
	s.Proc = &harness.Process{
		Name:        s.Engine + " server",
		Bin:         name,
		Args:        args,
		Env:         s.ServerEnv(),
		Dir:         s.Dir,
		Ports:       []int{s.Port},
		Log:         s.Log,
		Credential:  cred,
		StopSignal:  stop,
		DeathSignal: death,
		StopTimeout: StopTimeout,
	}
	return s.Proc.Start()
}

// WaitReady polls ready until it succeeds, the server exits or time is up.
func (s *Server) WaitReady(t testing.TB, ready func(context.Context) error) error {
	t.Helper()
	return s.Proc.WaitReady(t.Context(), StartTimeout, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return ready(ctx)
	})
}

// Stop stops the server by its PID, killing its process group if it does
// not stop in time. It may be called more than once.
func (s *Server) Stop() {
	if s.Proc != nil {
		_ = s.Proc.Stop() // Killed is stopped too.
	}
}

// Kill kills the server and every process it started with SIGKILL, with
// no shutdown of any kind, and waits until it exited. It may be called
// more than once.
func (s *Server) Kill() {
	if s.Proc != nil {
		s.Proc.Kill()
	}
}

// ServerEnv is the environment of server processes.
func (s *Server) ServerEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Dir, "LANG=C.UTF-8", "TZ=UTC"}
}

// ClientEnv is the environment of client commands, with the password when
// withPassword is set. HOME is the server's directory so that no ~/.my.cnf
// or ~/.pgpass is read.
func (s *Server) ClientEnv(withPassword bool) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + s.Dir, "LANG=C.UTF-8", "PGCONNECT_TIMEOUT=10"}
	if withPassword {
		env = append(env, s.PasswordEnv()+"="+s.Password)
	}
	return env
}

// PasswordEnv is the variable the engine's clients read the password from.
func (s *Server) PasswordEnv() string {
	if s.Engine == PostgreSQL {
		return "PGPASSWORD"
	}
	return "MYSQL_PWD"
}

// Exec runs SQL, from query or else from stdin, in database db over TCP as
// the superuser, and returns its tab-separated output.
func (s *Server) Exec(ctx context.Context, db string, stdin io.Reader, query string) (string, error) {
	var args []string
	switch s.Engine {
	case PostgreSQL:
		args = []string{"psql", "--no-psqlrc", "--host=127.0.0.1", "--port=" + strconv.Itoa(s.Port),
			"--username=postgres", "--dbname=" + db, "--no-password", "--set=ON_ERROR_STOP=1",
			"--quiet", "--tuples-only", "--no-align", "--field-separator=\t"}
	case MySQL:
		args = []string{"mysql", "--no-defaults", "--protocol=TCP", "--host=127.0.0.1", "--port=" + strconv.Itoa(s.Port),
			"--user=root", "--default-character-set=utf8mb4", "--batch", "--skip-column-names"}
		if db != "" {
			args = append(args, "--database="+db)
		}
		if s.TLS != nil {
			// Production servers refuse plaintext; psql prefers TLS by
			// itself, MariaDB's client only when asked.
			args = append(args, "--ssl")
		}
	}
	if query != "" {
		args = append(args, "--execute="+query)
		if s.Engine == PostgreSQL {
			args[len(args)-1] = "--command=" + query
		}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...) //nolint:gosec // psql or mysql, chosen above, on our own server with the test's own SQL.
	cmd.Env = s.ClientEnv(true)
	cmd.Stdin = stdin
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cannot run SQL on %s:%d: %w: %s", s.Engine, s.Port, err, stderr.String())
	}
	return strings.TrimRight(out.String(), "\n"), nil
}

// Query runs SQL in the app database and returns its output, failing the
// test on error.
func (s *Server) Query(t testing.TB, query string) string {
	t.Helper()
	out, err := s.Exec(t.Context(), AppDatabase, nil, query)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Load runs SQL from r in the app database, failing the test on error.
func (s *Server) Load(t testing.TB, r io.Reader) {
	t.Helper()
	if _, err := s.Exec(t.Context(), AppDatabase, r, ""); err != nil {
		t.Fatal(err)
	}
}

// Tail is the end of the server log.
func (s *Server) Tail() string { return harness.Tail(s.Log, 4000) }

// AppendFile appends b to the file name, creating it.
func AppendFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644) //nolint:gosec // A log file.
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close() // Reporting the write error.
		return err
	}
	return f.Close()
}

// MySQLString quotes s as a MySQL string literal.
func MySQLString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// PGString quotes s as a PostgreSQL string literal.
func PGString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
