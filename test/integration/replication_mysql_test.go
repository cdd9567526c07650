package integration

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	"github.com/crossplane/crossplane-runtime/v2/pkg/event"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/fn"
	mysqlc "github.com/dbplane/dbplane/internal/clients/mysql"
	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/internal/controller/replication"
	"github.com/dbplane/dbplane/test/harness"
)

// MariaDB 10.11 stands in for MySQL 8 here: the controller's MariaDB
// flavor (CHANGE MASTER ... MASTER_USE_GTID=slave_pos, read_only,
// rpl_semi_sync_master_enabled) runs for real; the MySQL 8 flavor (CLONE,
// CHANGE REPLICATION SOURCE, super_read_only, SET PERSIST, the semisync
// plugins) is proven only by unit tests and render.

// mariadbOptions translates each setting of the composed my.cnf into the
// MariaDB 10.11 option that does the same, "" where loopback or MariaDB
// needs none: a new setting in myCnf fails the test until it is placed.
var mariadbOptions = map[string]string{
	"port":                           "", // the harness's free port
	"bind-address":                   "", // 127.0.0.1
	"skip-name-resolve":              "--skip-name-resolve",
	"max_connections":                "--max-connections",
	"innodb_buffer_pool_size":        "", // the harness's 256M
	"innodb_flush_log_at_trx_commit": "", // the harness's 2: no durability needed
	"sync_binlog":                    "--sync-binlog",
	"character_set_server":           "--character-set-server",
	// MariaDB always has GTIDs; strict mode is its enforcement.
	"gtid_mode":                  "--gtid-strict-mode",
	"enforce_gtid_consistency":   "",
	"binlog_expire_logs_seconds": "--binlog-expire-logs-seconds",
	"default_time_zone":          "--default-time-zone",
	// MySQL 8's names; MariaDB 10.11 has only the slave forms.
	"log_replica_updates": "--log-slave-updates",
	"skip_replica_start":  "--skip-slave-start",
	// MySQL 8's plugins: MariaDB has no CLONE and semi-sync built in.
	"plugin-load-add": "",
	// TLS: the same options, paths localised by the caller.
	"ssl_ca": "--ssl-ca", "ssl_cert": "--ssl-cert", "ssl_key": "--ssl-key", "tls_version": "--tls-version",
	"require_secure_transport": "--require-secure-transport",
	// Every server starts read-only: the provider opens the primary.
	"read_only":      "--read-only",
	"slow_query_log": "--slow-query-log", "slow_query_log_file": "--slow-query-log-file", "long_query_time": "--long-query-time",
	"log_error_verbosity": "",
}

// mariadbArgs are a member's MariaDB arguments: the composed my.cnf and
// pod arguments (server_id, report_host) in MariaDB's names, and the
// binary log, which MySQL 8 has on by default and MariaDB off.
func mariadbArgs(t testing.TB, cnf string, podArgs []string, name string, index int, tlsDir string) []string {
	t.Helper()
	cnf = localTLS(cnf, tlsDir)
	args := []string{"--log-bin=mysql-bin", "--binlog-format=ROW"}
	for _, l := range strings.Split(cnf, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || l == "[mysqld]" {
			continue
		}
		k, v, _ := strings.Cut(l, " = ")
		opt, ok := mariadbOptions[k]
		if !ok {
			t.Fatalf("composed my.cnf sets %q, which this test does not translate for MariaDB", k)
		}
		if opt == "" {
			continue
		}
		if k == "gtid_mode" {
			v = "ON"
		}
		args = append(args, opt+"="+strings.Trim(v, "'"))
	}
	for _, a := range podArgs {
		a = strings.ReplaceAll(a, "$(POD_INDEX)", strconv.Itoa(index))
		args = append(args, strings.ReplaceAll(a, "$(POD_NAME)", name))
	}
	return args
}

// A myCluster is a MySQL Database's pods as MariaDB servers on loopback,
// with the composed configuration, and the Replication controller.
type myCluster struct {
	p       fn.Params
	Members []*server
	Names   []string
	kube    client.Client
	conn    *replicationEnv
	cr      *v1alpha1.Replication
	// rw stands for the read-write Service, which replicas replicate
	// from: the first pod until byLabel, then the pod labelled primary,
	// as the function composes it once the Replication found a primary.
	rw      *proxy
	byLabel atomic.Bool
	// tlsDir holds the composed TLS Secret's files.
	tlsDir string
}

// route is the port of the member the read-write Service selects, or 0.
func (c *myCluster) route() int {
	if !c.byLabel.Load() {
		return c.Members[0].Port
	}
	if m := c.member(c.conn.labelledPod()); m != nil {
		return m.Port
	}
	return 0
}

// member is the member named name, or nil.
func (c *myCluster) member(name string) *server {
	for i, n := range c.Names {
		if n == name {
			return c.Members[i]
		}
	}
	return nil
}

func myDatabase(replicas int, environment string) string {
	return `apiVersion: database.example.com/v1
kind: Database
metadata:
  name: orders
  namespace: team-a
spec:
  type: mysql
  version: "8.4"
  replicas: ` + strconv.Itoa(replicas) + `
  environment: ` + environment + `
  storage:
    size: 5Gi
`
}

func startMyCluster(t *testing.T, replicas int, environment string) *myCluster {
	t.Helper()
	requireBinaries(t, "mariadb-install-db", "mariadbd", "mysql")
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
	resolveTLS(t, &p)
	cnf := fn.ConfigMap(p).Data["dbplane.cnf"]
	srv := fn.StatefulSet(p).Spec.Template.Spec.Containers[0]
	c := &myCluster{p: p}
	// The TLS Secret's volume, one directory standing for every pod's.
	c.tlsDir = tempTLSDir(t, tlsOf(p.TLS), nil)
	for i := range replicas {
		name := fmt.Sprintf("orders-%d", i)
		c.Members = append(c.Members, startWith(t, mysql, mariadbArgs(t, cnf, srv.Args, name, i, c.tlsDir)...))
		c.Names = append(c.Names, name)
	}

	// The replication login, created on the primary by the User controller
	// from the composed User, as in a cluster; replicas get it through the
	// binary log.
	var login *v1alpha1.User
	for _, l := range p.Logins {
		if u := fn.SQLUser(p, l); u.Spec.ForProvider.Privileges == v1alpha1.ReplicationPrivileges {
			login = u
		}
	}
	if login == nil {
		t.Fatal("the Database composes no User with privileges replication")
	}
	login.UID = types.UID("uid-" + login.Name)
	login.Spec.ProviderConfigReference.Name = "default"
	login.SetGroupVersionKind(v1alpha1.UserGroupVersionKind)
	pe := newProviderEnv(t, c.Members[0], tlsSecret(tlsOf(p.TLS)))
	pe.converge(t, login)
	password := pe.secret(t, login)["password"]
	if password == "" {
		t.Fatal("the replication User's connection Secret has no password")
	}

	cr := fn.Replication(p)
	ref := cr.Spec.ForProvider.ReplicationSecretRef
	if ref == nil {
		t.Fatal("the composed MySQL Replication has no replicationSecretRef")
	}
	objs := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: ref.Name},
			Data: map[string][]byte{ref.Key: []byte(password)}},
		tlsSecret(tlsOf(p.TLS)),
	}
	for i, n := range c.Names {
		objs = append(objs, memberPod(n, i, nil))
	}
	// The read-write Service is a proxy on loopback.
	c.rw = startProxy(t, newPartition(), c.route)
	c.kube = fakeAPI(t, v1alpha1.MySQL, c.rw.Port, "root", testPassword, objs...)
	pools := xsql.NewPools(time.Minute)
	t.Cleanup(pools.Close)
	newServer := replication.NewServer(replication.Options{Pools: pools, SQL: xsql.Options{Timeouts: xsql.Timeouts{Call: 10 * time.Second, Dial: 5 * time.Second}}})
	c.conn = &replicationEnv{kube: c.kube, connector: replication.NewConnector(c.kube, c.kube, newServer, event.NewNopRecorder(), observeTimeout)}

	cr.UID = types.UID("uid-replication")
	cr.Spec.ProviderConfigReference.Name = "default"
	cr.SetGroupVersionKind(v1alpha1.ReplicationGroupVersionKind)
	for i := range cr.Spec.ForProvider.Members {
		cr.Spec.ForProvider.Members[i].Host, cr.Spec.ForProvider.Members[i].Port = "127.0.0.1", c.Members[i].Port
	}
	// Where each server reads the CA: the test's directory.
	if cr.Spec.ForProvider.SourceCAFile != composedTLSDir+"/ca.crt" {
		t.Fatalf("the composed Replication's sourceCAFile is %q, not the mounted CA", cr.Spec.ForProvider.SourceCAFile)
	}
	cr.Spec.ForProvider.SourceCAFile = localTLS(cr.Spec.ForProvider.SourceCAFile, c.tlsDir)
	c.cr = cr
	return c
}

// settle reconciles until the Replication is Ready and up to date.
func (c *myCluster) settle(t *testing.T) []string {
	t.Helper()
	var got []string
	err := harness.Poll(t.Context(), catchUpTimeout, func(context.Context) error {
		o := c.conn.reconcile(t, c.cr)
		got = append(got, o)
		if r := c.cr.GetCondition(xpv2.TypeReady); o != upToDate || r.Status != corev1.ConditionTrue {
			return fmt.Errorf("%s, Ready %s: %s", o, r.Status, r.Message)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the Replication did not settle: %v (reconciles: %v)", err, got)
	}
	return got
}

func (c *myCluster) roles(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range c.Names {
		p := &corev1.Pod{}
		if err := c.kube.Get(t.Context(), types.NamespacedName{Namespace: providerNamespace, Name: n}, p); err != nil {
			t.Fatal(err)
		}
		out[n] = p.Labels[v1alpha1.LabelRole]
	}
	return out
}

func waitMyRows(t *testing.T, s *server, want int) {
	t.Helper()
	if err := harness.Poll(t.Context(), catchUpTimeout, func(ctx context.Context) error {
		out, err := s.exec(ctx, appDatabase, nil, "SELECT COUNT(*) FROM orders")
		if err == nil && out != strconv.Itoa(want) {
			err = fmt.Errorf("%s rows, want %d", out, want)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestMySQLReplicationController runs the Replication controller against
// a composed MySQL Database's three pods as MariaDB servers: it finds the
// primary, makes the others read-only GTID replicas of the read-write
// Service, labels the Pods, reports Seconds_Behind_Master as lag, starts a
// restarted replica again (skip_slave_start) and turns semi-sync on for
// synchronous 1.
func TestMySQLReplicationController(t *testing.T) {
	c := startMyCluster(t, 3, "staging")
	primary := c.Members[0]
	primary.Query(t, "CREATE TABLE orders (id INT PRIMARY KEY, item VARCHAR(64))")
	primary.Query(t, "INSERT INTO orders VALUES (1, 'before replication')")

	t.Run("ReplicasConfiguredAndLabeled", func(t *testing.T) {
		got := c.settle(t)
		if got[0] != updated {
			t.Errorf("the first reconcile configures the replicas: %v", got)
		}
		want := map[string]string{"orders-0": v1alpha1.RolePrimary, "orders-1": v1alpha1.RoleReplica, "orders-2": v1alpha1.RoleReplica}
		if got := c.roles(t); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("role labels: got %v, want %v", got, want)
		}
		if got := c.cr.Status.AtProvider.Primary; got != "orders-0" {
			t.Errorf("status.atProvider.primary = %q", got)
		}
		primary.Query(t, "INSERT INTO orders VALUES (2, 'after')")
		for _, m := range c.Members[1:] {
			waitMyRows(t, m, 2)
			if got := m.Query(t, "SELECT CONCAT_WS(',', @@global.read_only + 0, @@global.gtid_slave_pos <> '', @@global.rpl_semi_sync_slave_enabled + 0)"); got != "1,1,1" {
				t.Errorf("replica %d: read_only, GTID position, semi-sync replica = %s, want 1,1,1", m.Port, got)
			}
			using := m.Query(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'")
			if using != "1" {
				t.Errorf("replica %d: no running IO thread", m.Port)
			}
		}
		// They log in as the replication login, not the superuser.
		if got := primary.Query(t, "SELECT GROUP_CONCAT(DISTINCT USER) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'"); got != "replication" {
			t.Errorf("replicas read the binary log as %q, want replication", got)
		}
		for _, m := range c.cr.Status.AtProvider.Members[1:] {
			if m.Role != v1alpha1.MemberStandby || !m.Streaming || m.Message != "" {
				t.Errorf("status of replica %s: %+v", m.Name, m)
			}
		}
	})

	t.Run("LagIsSecondsBehindMaster", func(t *testing.T) {
		// A lock on the replica holds its SQL thread on the next row, which
		// ages while the provider looks.
		m := c.Members[2]
		db, err := sql.Open("mysql", mysqlc.DSN(xsql.Endpoint{Host: "127.0.0.1", Port: m.Port, TLS: v1alpha1.TLSRequire}, xsql.Credential{Username: "root", Password: testPassword}, appDatabase))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close() //nolint:errcheck // Test connection.
		conn, err := db.Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close() //nolint:errcheck // Test connection.
		if _, err := conn.ExecContext(t.Context(), "LOCK TABLES orders WRITE"); err != nil {
			t.Fatal(err)
		}
		primary.Query(t, "INSERT INTO orders VALUES (3, 'held back')")
		var last v1alpha1.MemberObservation
		err = harness.Poll(t.Context(), catchUpTimeout, func(context.Context) error {
			c.conn.reconcile(t, c.cr)
			last = memberOf(c.cr, c.Names[2])
			if last.LagMillis < 2000 {
				return fmt.Errorf("lag %d ms", last.LagMillis)
			}
			return nil
		})
		t.Logf("held-back replica: %+v", last)
		if err != nil {
			t.Error(err)
		}
		if last.LagBytes != 0 {
			t.Errorf("MySQL has no byte lag: %d", last.LagBytes)
		}
		if _, err := conn.ExecContext(t.Context(), "UNLOCK TABLES"); err != nil {
			t.Fatal(err)
		}
		waitMyRows(t, m, 3)
		c.settle(t)
		if got := memberOf(c.cr, c.Names[2]).LagMillis; got != 0 {
			t.Errorf("caught up, lag %d ms", got)
		}
	})

	t.Run("RestartedReplicaCatchesUp", func(t *testing.T) {
		m := c.Members[1]
		m.Stop()
		primary.Query(t, "INSERT INTO orders VALUES (4, 'while down')")
		c.conn.reconcile(t, c.cr)
		if s := memberOf(c.cr, c.Names[1]); s.Role != v1alpha1.MemberUnreachable {
			t.Errorf("a stopped replica is unreachable: %+v", s)
		}
		m.Restart(t)
		// skip-slave-start: it waits for the provider; MariaDB has no SET
		// PERSIST, but the composed read_only makes it start read-only.
		if got := m.Query(t, "SELECT CONCAT_WS(',', @@global.read_only + 0, (SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'))"); got != "1,0" {
			t.Errorf("restarted replica: read_only, IO threads = %s, want 1,0", got)
		}
		c.settle(t)
		waitMyRows(t, m, 4)
		if got := m.Query(t, "SELECT @@global.read_only"); got != "1" {
			t.Errorf("the restarted replica is read-only again: %s", got)
		}
		if got := c.roles(t)[c.Names[1]]; got != v1alpha1.RoleReplica {
			t.Errorf("restarted replica's label: %q", got)
		}
	})

	t.Run("SynchronousEnablesSemiSync", func(t *testing.T) {
		if got := primary.Query(t, "SELECT @@global.rpl_semi_sync_master_enabled"); got != "0" {
			t.Errorf("staging is asynchronous: rpl_semi_sync_master_enabled = %s", got)
		}
		c.cr.Spec.ForProvider.Synchronous = 1
		if got := c.settle(t); got[0] != updated {
			t.Errorf("synchronous 1 is set: %v", got)
		}
		if got := primary.Query(t, "SELECT @@global.rpl_semi_sync_master_enabled"); got != "1" {
			t.Errorf("rpl_semi_sync_master_enabled = %s, want 1", got)
		}
		primary.Query(t, "INSERT INTO orders VALUES (5, 'semi-sync')")
		// Both replicas acknowledge (the provider enabled their side before
		// starting them), and the commit was acknowledged.
		got := primary.Query(t, "SELECT GROUP_CONCAT(CONCAT(VARIABLE_NAME, '=', VARIABLE_VALUE) ORDER BY VARIABLE_NAME) FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('RPL_SEMI_SYNC_MASTER_CLIENTS', 'RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_MASTER_NO_TX')")
		if want := "RPL_SEMI_SYNC_MASTER_CLIENTS=2,RPL_SEMI_SYNC_MASTER_NO_TX=0,RPL_SEMI_SYNC_MASTER_STATUS=ON"; got != want {
			t.Errorf("primary semi-sync status: got %s, want %s", got, want)
		}
		if got := primary.Query(t, "SELECT VARIABLE_VALUE > 0 FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_YES_TX'"); got != "1" {
			t.Errorf("the commit was not acknowledged by a replica")
		}
		waitMyRows(t, c.Members[1], 5)
	})
}
