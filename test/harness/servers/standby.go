package servers

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dbplane/dbplane/test/harness"
)

// StartStandby starts a PostgreSQL streaming standby of s on its own port:
// a pg_basebackup of s as the replication login user with password, which
// then streams from s as application_name name (the pod name a
// Replication's member has). It stops when the test ends.
func (s *Server) StartStandby(t testing.TB, name, user, password string) *Server {
	t.Helper()
	bin := PostgresBin()
	RequireBinaries(t, bin+"/pg_basebackup", bin+"/postgres", "psql")
	port, err := harness.FreePort(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.TempDir(t, "dbplane-standby-")
	st := &Server{Engine: PostgreSQL, Port: port, Password: s.Password, Dir: dir, Log: filepath.Join(dir, "server.log")}
	if s.TLS != nil {
		c := *s.TLS
		st.TLS = &c
	}
	t.Cleanup(st.Stop)
	cred, err := ServiceUser("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if err := ChownAll(dir, cred); err != nil {
		t.Fatal(err)
	}
	kv := func(k, v string) string { return k + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	conninfo := strings.Join([]string{kv("host", "127.0.0.1"), kv("port", strconv.Itoa(s.Port)), kv("user", user),
		kv("password", password), kv("application_name", name)}, " ")
	data := filepath.Join(dir, "data")
	// --write-recovery-conf keeps the connection string, application_name
	// included, as the standby's primary_conninfo.
	if err := st.Run(t, cred, bin+"/pg_basebackup", "--pgdata="+data, "--dbname="+conninfo,
		"--write-recovery-conf", "--wal-method=stream", "--checkpoint=fast", "--no-sync"); err != nil {
		t.Fatalf("cannot copy the primary: %v\n%s", err, st.Tail())
	}
	// The primary's certificate, as every pod of a Database mounts it.
	ssl, err := st.pgTLSArgs(cred)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Spawn(cred, syscall.SIGINT, syscall.SIGQUIT, bin+"/postgres", append([]string{"-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port=" + strconv.Itoa(port), "-c", "unix_socket_directories=" + dir,
		"-c", "hot_standby=on", "-c", "fsync=off", "-c", "logging_collector=off"}, ssl...)...); err != nil {
		t.Fatal(err)
	}
	if err := st.WaitReady(t, func(ctx context.Context) error {
		_, err := st.Exec(ctx, "postgres", nil, "SELECT 1")
		return err
	}); err != nil {
		t.Fatalf("standby %s: %v\n%s", name, err, st.Tail())
	}
	t.Logf("started standby %s of 127.0.0.1:%d on 127.0.0.1:%d (pid %d) in %s", name, s.Port, port, st.Proc.PID(), dir)
	return st
}
