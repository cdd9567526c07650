package integration

import (
	"context"
	"fmt"
	"io"
	"maps"
	stdnet "net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/servers"
)

// A pgCluster is a Database's PostgreSQL pods on loopback: member i runs what
// pod i of the composed StatefulSet runs, the init step and then the server,
// with the composed configuration files. Only what differs from a cluster is
// changed: paths, the loopback host and each member's port.
type pgCluster struct {
	p       fn.Params
	files   map[string]string
	init    corev1.Container
	server  corev1.Container
	Members []*pgMember
	// replicationPassword is the replication login's, from its Secret.
	replicationPassword string
	// rw stands for the read-write Service.
	rw *proxy
	// net is the network between the pods, the apps and the provider: a
	// port it cuts is cut off from the standbys and apps (through rw) and
	// from the provider, not from its kubelet.
	net          *partition
	mu           sync.Mutex
	primaryLabel func() *pgMember
}

// A pgMember is one pod of a pgCluster.
type pgMember struct {
	*server
	Index int
	Name  string

	c       *pgCluster
	config  string
	runDir  string
	data    string
	tls     string
	running bool
	// lastInit is what the init step last printed.
	lastInit string
}

// pgDatabase is a PostgreSQL Database with replicas and an environment.
func pgDatabase(replicas int, environment string) string {
	return `apiVersion: database.example.com/v1
kind: Database
metadata:
  name: orders
  namespace: team-a
spec:
  type: postgresql
  version: "15"
  replicas: ` + strconv.Itoa(replicas) + `
  environment: ` + environment + `
  storage:
    size: 5Gi
`
}

// composeCluster resolves a Database as the function does and takes the
// composed ConfigMap and pod template.
func composeCluster(t testing.TB, database string) *pgCluster {
	t.Helper()
	return composeClusterIssued(t, database, time.Now())
}

// composeClusterIssued is composeCluster with the certificates issued at
// issuedAt, as by the function's first call then.
func composeClusterIssued(t testing.TB, database string, issuedAt time.Time) *pgCluster {
	t.Helper()
	u := map[string]any{}
	if err := yaml.Unmarshal([]byte(database), &u); err != nil {
		t.Fatalf("cannot unmarshal Database: %v", err)
	}
	db, err := fn.Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	fn.Default(&db.Spec)
	if errs := fn.Validate(db); len(errs) > 0 {
		t.Fatalf("Validate(): %v", errs.ToAggregate())
	}
	p, err := fn.Resolve(db, fn.Observed{}, fn.Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ResolveTLS(fn.Observed{}, fn.Input{}, fn.X509Issuer{}, issuedAt); err != nil {
		t.Fatal(err)
	}
	pod := fn.StatefulSet(p).Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) < 1 {
		t.Fatalf("composed pod: want 1 init container and a server, got %d and %d", len(pod.InitContainers), len(pod.Containers))
	}
	c := &pgCluster{p: p, files: fn.ConfigMap(p).Data, init: pod.InitContainers[0], server: pod.Containers[0], net: newPartition()}
	c.rw = startProxy(t, c.net, func() int {
		if m := c.route(); m != nil {
			return m.Port
		}
		return 0
	})
	return c
}

// route is the member the read-write Service routes to: the pod labelled
// primary once Primary routing is on (as the function composes the Service
// once the Replication found a primary), else the first pod.
func (c *pgCluster) route() *pgMember {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.primaryLabel == nil {
		if len(c.Members) == 0 {
			return nil
		}
		return c.Members[0]
	}
	return c.primaryLabel()
}

// RouteByLabel makes the read-write Service select the member primary says.
func (c *pgCluster) RouteByLabel(primary func() *pgMember) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.primaryLabel = primary
}

// A proxy stands for a Service: each connection goes to the port to()
// names when it is made, and stays there, as kube-proxy's connection
// tracking keeps it; with no port, the connection is refused (closed). Its
// connections to a port net cuts are cut.
type proxy struct {
	Port int
	ln   stdnet.Listener
}

func startProxy(t testing.TB, net *partition, to func() int) *proxy {
	t.Helper()
	ln, err := (&stdnet.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{Port: ln.Addr().(*stdnet.TCPAddr).Port, ln: ln} //nolint:forcetypeassert // A TCP listener.
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close() //nolint:errcheck // Closing both ends either way.
				port := to()
				if port == 0 {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				out, err := net.Dial(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
				cancel()
				if err != nil {
					return
				}
				defer out.Close() //nolint:errcheck // As above.
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
				go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return p
}

// startPGCluster starts a primary and replicas-1 standbys that copy it, as a
// new Database's pods start, and waits until every standby streams.
func startPGCluster(t testing.TB, replicas int, environment string) *pgCluster {
	t.Helper()
	c := startPGPrimary(t, replicas, environment)
	for range replicas - 1 {
		c.add(t).Start(t)
	}
	for _, m := range c.Members[1:] {
		c.WaitStreaming(t, m)
	}
	return c
}

// startPGPrimary starts only the first pod of a Database with replicas.
func startPGPrimary(t testing.TB, replicas int, environment string) *pgCluster {
	t.Helper()
	return startPGPrimaryIssued(t, replicas, environment, time.Now())
}

// startPGPrimaryIssued is startPGPrimary with the certificates issued at
// issuedAt.
func startPGPrimaryIssued(t testing.TB, replicas int, environment string, issuedAt time.Time) *pgCluster {
	t.Helper()
	bin := postgresBin()
	requireBinaries(t, bin+"/initdb", bin+"/postgres", bin+"/pg_basebackup", bin+"/pg_isready", "psql")
	c := composeClusterIssued(t, pgDatabase(replicas, environment), issuedAt)
	c.add(t)
	c.bootstrap(t)
	return c
}

// add adds the next pod, not started.
func (c *pgCluster) add(t testing.TB) *pgMember {
	t.Helper()
	i := len(c.Members)
	port, err := harness.FreePort(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := harness.TempDir(t, fmt.Sprintf("dbplane-orders-%d-", i))
	m := &pgMember{
		server: &server{&servers.Server{Engine: postgresql, Port: port, Password: testPassword, Dir: dir, Log: filepath.Join(dir, "server.log")}},
		Index:  i, Name: fmt.Sprintf("orders-%d", i), c: c,
		config: filepath.Join(dir, "config"), runDir: filepath.Join(dir, "run"), data: filepath.Join(dir, "data"),
		// Outside dir, which is chowned to the server's user: the
		// kubelet's files are root's.
		tls: filepath.Join(harness.TempDir(t, fmt.Sprintf("dbplane-orders-%d-tls-", i)), "tls"),
	}
	t.Cleanup(m.Stop)
	for _, d := range []string{m.config, m.runDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, text := range c.files {
		text = m.localize(t, text)
		for _, left := range []string{"/etc/dbplane", "/run/dbplane", c.p.Host()} {
			if strings.Contains(text, left) {
				t.Fatalf("composed %s: %s is left after localising it", name, left)
			}
		}
		if err := os.WriteFile(filepath.Join(m.config, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cred, err := serviceUser("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if err := chownAll(dir, cred); err != nil {
		t.Fatal(err)
	}
	// The TLS Secret's volume, as the kubelet mounts it: root's, the
	// server's group, 0440.
	m.TLS = tlsOf(c.p.TLS)
	if err := servers.WriteTLS(m.tls, m.TLS, cred); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(m.tls), 0o755); err != nil { //nolint:gosec // The server's user must reach the files.
		t.Fatal(err)
	}
	c.mu.Lock()
	c.Members = append(c.Members, m)
	c.mu.Unlock()
	return m
}

// Primary is the first member, which a new Database starts as its primary.
func (c *pgCluster) Primary() *pgMember { return c.Members[0] }

// bootstrap starts the first pod of a new Database: its init step finds no
// database and leaves it to the image's entrypoint, which runs initdb and
// creates the app database; the SQL provider then creates the replication
// login, as its User with privileges replication does.
func (c *pgCluster) bootstrap(t testing.TB) {
	t.Helper()
	m := c.Members[0]
	m.initStep(t)
	cred, err := serviceUser("postgres")
	if err != nil {
		t.Fatal(err)
	}
	pwfile := filepath.Join(m.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(m.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chownAll(m.Dir, cred); err != nil {
		t.Fatal(err)
	}
	if err := m.run(t, cred, postgresBin()+"/initdb", "--pgdata="+m.data, "--username=postgres", "--pwfile="+pwfile,
		"--auth-host=scram-sha-256", "--auth-local=trust", "--encoding=UTF8", "--locale=C.UTF-8"); err != nil {
		t.Fatalf("cannot initdb: %v\n%s", err, m.tail())
	}
	if err := os.Remove(pwfile); err != nil {
		t.Fatal(err)
	}
	m.startServer(t)
	if _, err := m.exec(t.Context(), "postgres", nil, "CREATE DATABASE "+appDatabase); err != nil {
		t.Fatal(err)
	}
	// The composed replication User, reconciled by the provider's User
	// controller against this server; its connection Secret's password is
	// what the pods' init step reads.
	var login *v1alpha1.User
	for _, l := range c.p.Logins {
		if u := fn.SQLUser(c.p, l); u.Spec.ForProvider.Privileges == v1alpha1.ReplicationPrivileges {
			login = u
		}
	}
	if login == nil {
		t.Fatal("the Database composes no User with privileges replication")
	}
	login.UID = types.UID("uid-" + login.Name)
	login.Spec.ProviderConfigReference.Name = "default" // providerEnv's
	login.SetGroupVersionKind(v1alpha1.UserGroupVersionKind)
	pe := newProviderEnv(t, m.server, tlsSecret(tlsOf(c.p.TLS)))
	pe.converge(t, login)
	c.replicationPassword = pe.secret(t, login)["password"]
	if c.replicationPassword == "" {
		t.Fatal("the replication User's connection Secret has no password")
	}
}

// Start starts the pod: its init step, then its server.
func (m *pgMember) Start(t testing.TB) {
	t.Helper()
	m.initStep(t)
	m.startServer(t)
}

// initStep runs the composed init container's command with its environment,
// as the kubelet would before every start of the pod.
func (m *pgMember) initStep(t testing.TB) {
	t.Helper()
	env := m.podEnv(t, m.c.init, map[string]string{"REPLICATION_PASSWORD": m.c.replicationPassword, "POSTGRES_PASSWORD": m.Password})
	script := m.localize(t, strings.Join(m.c.init.Command, " "))
	cmd := strings.Fields(script)
	cred, err := serviceUser("postgres")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	sh := exec.CommandContext(ctx, cmd[0], cmd[1:]...) //nolint:gosec // The composed init command, on our own files.
	sh.Dir, sh.Env = m.Dir, env
	sh.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := sh.CombinedOutput()
	_ = appendFile(m.Log, out) // Diagnostics only.
	if err != nil {
		t.Fatalf("%s: init step: %v: %s", m.Name, err, out)
	}
	m.lastInit = string(out)
}

// startServer starts the composed server container's postgres with its
// arguments.
func (m *pgMember) startServer(t testing.TB) {
	t.Helper()
	args := []string{"-D", m.data}
	for _, a := range m.c.server.Args {
		args = append(args, m.localize(t, m.expand(a)))
	}
	// The image's socket directory does not exist here.
	args = append(args, "-c", "unix_socket_directories="+m.Dir)
	cred, err := serviceUser("postgres")
	if err != nil {
		t.Fatal(err)
	}
	env := m.podEnv(t, m.c.server, nil)
	m.Proc = &harness.Process{
		Name: m.Name, Bin: postgresBin() + "/postgres", Args: args, Env: env, Dir: m.Dir,
		Ports: []int{m.Port}, Log: m.Log, Credential: cred,
		StopSignal: syscall.SIGINT, DeathSignal: syscall.SIGQUIT, StopTimeout: stopTimeout,
	}
	if err := m.Proc.Start(); err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	if err := m.waitReady(t, func(ctx context.Context) error {
		_, err := m.exec(ctx, "postgres", nil, "SELECT 1")
		return err
	}); err != nil {
		t.Fatalf("%s: %v\n%s", m.Name, err, m.tail())
	}
	m.running = true
}

// Stop stops the pod's server, as deleting the pod does.
func (m *pgMember) Stop() {
	m.server.Stop()
	m.running = false
}

// Wipe stops the pod and deletes its data, as losing its volume does.
func (m *pgMember) Wipe(t testing.TB) {
	t.Helper()
	m.Stop()
	if err := os.RemoveAll(m.data); err != nil {
		t.Fatal(err)
	}
}

// podEnv is a container's environment as the kubelet gives it: literals,
// the pod's name and index, values from Secrets (secrets), with $(VAR)
// expanded; paths localised. The PATH finds the server's tools.
func (m *pgMember) podEnv(t testing.TB, c corev1.Container, secrets map[string]string) []string {
	t.Helper()
	vars := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.Name == "PRIMARY_PORT":
			// The read-write Service's port: its stand-in's here.
			vars[e.Name] = strconv.Itoa(m.c.rw.Port)
		case e.ValueFrom == nil:
			vars[e.Name] = m.localize(t, m.expandWith(e.Value, vars))
		case e.ValueFrom.FieldRef != nil:
			vars[e.Name] = m.field(t, e.ValueFrom.FieldRef.FieldPath)
		case e.ValueFrom.SecretKeyRef != nil:
			if v, ok := secrets[e.Name]; ok {
				vars[e.Name] = v
			}
		}
	}
	if d, ok := vars["PGDATA"]; ok && d != m.data {
		t.Fatalf("%s: PGDATA is %s, not the member's data directory", c.Name, d)
	}
	env := []string{"PATH=" + postgresBin() + ":" + os.Getenv("PATH"), "HOME=" + m.Dir, "LANG=C.UTF-8", "TZ=UTC"}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

func (m *pgMember) field(t testing.TB, path string) string {
	t.Helper()
	switch path {
	case "metadata.name":
		return m.Name
	case "metadata.labels['apps.kubernetes.io/pod-index']":
		return strconv.Itoa(m.Index)
	}
	t.Fatalf("no such pod field here: %s", path)
	return ""
}

var varRef = regexp.MustCompile(`\$\(([A-Z_]+)\)`)

// expand expands $(POD_NAME) and $(POD_INDEX) as the kubelet does.
func (m *pgMember) expand(s string) string {
	return m.expandWith(s, map[string]string{"POD_NAME": m.Name, "POD_INDEX": strconv.Itoa(m.Index)})
}

func (m *pgMember) expandWith(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// localize changes what differs on loopback: the config and run
// directories, the data directory, the read-write Service (the primary's
// loopback port) and the member's own port.
func (m *pgMember) localize(t testing.TB, s string) string {
	t.Helper()
	p := m.c.p
	r := strings.NewReplacer(
		"host="+p.Host()+" port=5432", "host=127.0.0.1 port="+strconv.Itoa(m.c.rw.Port),
		p.Host(), "127.0.0.1",
		"port = 5432", "port = "+strconv.Itoa(m.Port),
		"listen_addresses = '*'", "listen_addresses = '127.0.0.1'",
		composedTLSDir, m.tls,
		"/etc/dbplane", m.config,
		"/run/dbplane", m.runDir,
		p.Release.DataDir, m.data,
	)
	return r.Replace(s)
}

// waitReplayed waits until every running standby has replayed the
// primary's WAL as it is now.
func (c *pgCluster) waitReplayed(t testing.TB) {
	t.Helper()
	lsn := c.Primary().Query(t, "SELECT pg_catalog.pg_current_wal_lsn()")
	for _, m := range c.Members[1:] {
		if !m.running {
			continue
		}
		if err := harness.Poll(t.Context(), startTimeout, func(ctx context.Context) error {
			out, err := m.exec(ctx, "postgres", nil, "SELECT pg_catalog.pg_last_wal_replay_lsn() >= "+pgString(lsn)+"::pg_lsn")
			if err != nil {
				return err
			}
			if out != "t" {
				return fmt.Errorf("%s has not replayed %s yet", m.Name, lsn)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// WaitStreaming waits until the primary reports the member streaming.
func (c *pgCluster) WaitStreaming(t testing.TB, m *pgMember) {
	t.Helper()
	q := "SELECT state FROM pg_stat_replication WHERE application_name = " + pgString(m.Name)
	if err := harness.Poll(t.Context(), startTimeout, func(ctx context.Context) error {
		out, err := c.Primary().exec(ctx, "postgres", nil, q)
		if err != nil {
			return err
		}
		if out != "streaming" {
			return fmt.Errorf("%s is %q on the primary", m.Name, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, m.tail())
	}
}

// TestInitStepPasswordFile checks the password file the init step writes: the
// login's password with : and \ escaped as libpq reads them, readable only
// by the server's user.
func TestInitStepPasswordFile(t *testing.T) {
	requireBinaries(t, postgresBin()+"/pg_isready")
	c := composeCluster(t, pgDatabase(2, "staging"))
	c.replicationPassword = `a:b\c 'd' $HOME`
	m := c.add(t)
	// A pod whose volume holds a database: the init step keeps it.
	if err := os.MkdirAll(m.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.data, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := serviceUser("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if err := chownAll(m.Dir, cred); err != nil {
		t.Fatal(err)
	}
	m.initStep(t)
	f := filepath.Join(m.runDir, "pgpass")
	b, err := os.ReadFile(f) //nolint:gosec // The test's own file.
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `*:*:*:replication:a\:b\\c 'd' $HOME`+"\n"; got != want {
		t.Errorf("pgpass: got %q, want %q", got, want)
	}
	if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pgpass mode: %v, %v; want 0600", fi.Mode(), err)
	}
	if !strings.Contains(m.lastInit, "holds a database") {
		t.Errorf("init step on a volume with a database: %s", m.lastInit)
	}
}
