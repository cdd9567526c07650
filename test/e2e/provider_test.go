//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/dbplane/dbplane/internal/clients/xsql"
	"github.com/dbplane/dbplane/test/harness/cluster"
)

// gvrUser is the SQL provider's User.
var gvrUser = schema.GroupVersionResource{Group: "sql.database.example.com", Version: "v1alpha1", Resource: "users"}

// TestSQLLoginOnRealServer runs the whole chain for one Database with SQL
// logins: Crossplane composes the provider's ProviderConfig and the app
// User, the provider (a local process, as its ServiceAccount) logs in to a
// real PostgreSQL server on loopback behind the fake pod, reached through
// its address map at the Service's in-cluster name, and creates the app
// login. The Database is not Ready while no server answers, and becomes
// Ready once the User is; the app's connection Secret logs in to the server.
func TestSQLLoginOnRealServer(t *testing.T) {
	t.Parallel()
	defer start(t)()
	const ns, name = "provider", "shop"
	env.Namespace(t, ns)
	d := cluster.NewDatabase(ns, name, map[string]any{
		"type": "postgresql", "version": "15", "replicas": int64(1), "environment": "development",
		"storage":    map[string]any{"size": "5Gi"},
		"crossplane": map[string]any{"compositionRef": map[string]any{"name": cluster.SQLUsersComposition}},
	})
	t0 := time.Now()
	env.ApplyDatabase(t, d)

	// Before any server runs: the provider tries, fails, and the Database
	// waits for its login.
	env.WaitFor(t, d, "the provider fails to reach the server that does not run yet", func(ctx context.Context) error {
		u, err := user(ctx, ns, name+"-app")
		if err != nil {
			return err
		}
		if s, _, _ := cluster.Condition(u, "Synced"); s != "False" {
			return fmt.Errorf("User %s-app: %s", name, cluster.Conditions(u))
		}
		return nil
	})
	if db, err := env.GetDatabase(t.Context(), ns, name); err != nil {
		t.Fatal(err)
	} else if s, _, _ := cluster.Condition(db, "Ready"); s == "True" {
		t.Fatalf("Database %s/%s is Ready before its app login exists: %s", ns, name, cluster.Conditions(db))
	}

	srv := env.ServePostgreSQL(t, ns, name)
	t1 := time.Now()
	record("provider: Database applied -> its server started", t1.Sub(t0))
	env.WaitReady(t, ns, name)
	record("latency: server started -> Database with SQL logins Ready", time.Since(t1))

	u, err := user(t.Context(), ns, name+"-app")
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := cluster.Condition(u, "Ready"); s != "True" {
		t.Errorf("User %s-app: the Database is Ready, its User is not: %s", name, cluster.Conditions(u))
	}
	if got := srv.Query(t, "SELECT rolname FROM pg_roles WHERE rolname = 'app' AND rolcanlogin"); got != "app" {
		t.Errorf("the provider did not create the login app on the server: pg_roles has %q", got)
	}

	// The app's connection Secret: its host is the Service's in-cluster
	// name, which the address map sends to the loopback server.
	s := secret(t, ns, name+"-app")
	if got, want := string(s.data["host"]), name+"."+ns+".svc.cluster.local"; got != want {
		t.Errorf("Secret %s-app host: got %q, want %q", name, got, want)
	}
	conn := appConn(t, ns, name)
	var who, db string
	if err := conn.QueryRow(t.Context(), "SELECT current_user, current_database()").Scan(&who, &db); err != nil {
		t.Fatal(err)
	}
	if who != "app" || db != "app" {
		t.Errorf("Secret %s-app logs in as %q to database %q, want app to app", name, who, db)
	}
	// The login owns the app database's schema: it can create tables.
	if _, err := conn.Exec(t.Context(), "CREATE TABLE orders (id bigint PRIMARY KEY)"); err != nil {
		t.Errorf("the app login cannot create a table: %v", err)
	}
}

// appConn logs in with the uri of Database ns/name's app connection Secret,
// dialling through the provider's address map, as an app in the cluster
// would through the Service. The connection closes when the test ends.
func appConn(t *testing.T, ns, name string) *pgx.Conn {
	t.Helper()
	s := secret(t, ns, name+"-app")
	// As an app that mounts the Secret: the uri verifies the server
	// (sslmode=verify-full) against the Secret's ca.crt.
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, s.data["ca.crt"], 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(s.data["uri"]), "sslmode=verify-full") || len(s.data["ca.crt"]) == 0 {
		t.Fatalf("Secret %s-app: want a verify-full uri and ca.crt", name)
	}
	cfg, err := pgx.ParseConfig(string(s.data["uri"]) + "&sslrootcert=" + url.QueryEscape(ca))
	if err != nil {
		t.Fatalf("Secret %s-app uri: %v", name, err)
	}
	cfg.DialFunc = pgconn.DialFunc(xsql.AddressMap{Path: env.AddressMap()}.Dial(nil))
	cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("cannot log in with Secret %s-app: %v", name, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(t.Context())) }) // Closing a client.
	return conn
}

// user reads a SQL provider User.
func user(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	return env.Dynamic.Resource(gvrUser).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// TestReplicationOnRealServers: a 2-replica PostgreSQL Database whose pods
// have a real primary and a real streaming standby behind them. The
// provider creates the replication login on the primary, the standby copies
// the primary with it and streams; the provider's Replication labels the
// fake pods primary and replica from what the servers say, the function
// then switches the read-write Service to the role label, and the
// EndpointSlices follow: the read-write Service's endpoint is the primary's
// pod, the read-only Service's the standby's.
func TestReplicationOnRealServers(t *testing.T) {
	t.Parallel()
	defer start(t)()
	const ns, name = "provider-replication", "ledger"
	env.Namespace(t, ns)
	d := cluster.NewDatabase(ns, name, map[string]any{
		"type": "postgresql", "version": "15", "replicas": int64(2), "environment": "staging",
		"storage":    map[string]any{"size": "5Gi"},
		"crossplane": map[string]any{"compositionRef": map[string]any{"name": cluster.SQLUsersComposition}},
	})
	t0 := time.Now()
	env.ApplyDatabase(t, d)
	primary := env.ServePostgreSQL(t, ns, name)
	standby := env.ServeStandby(t, ns, name, primary, 1)
	t1 := time.Now()
	record("provider: Database applied -> primary and standby started", t1.Sub(t0))
	env.WaitReady(t, ns, name)
	record("latency: standby started -> replicated Database Ready", time.Since(t1))

	if got := primary.Query(t, "SELECT state FROM pg_stat_replication WHERE application_name = '"+name+"-1'"); got != "streaming" {
		t.Errorf("the primary's WAL sender to %s-1 is %q, want streaming", name, got)
	}
	if got := standby.Query(t, "SELECT pg_is_in_recovery()"); got != "t" {
		t.Errorf("the standby is not in recovery: %q", got)
	}

	roles := map[string]string{name + "-0": "primary", name + "-1": "replica"}
	env.WaitFor(t, d, "the provider labels the pods by what their servers are", func(ctx context.Context) error {
		for pod, want := range roles {
			p, err := env.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got := p.Labels[roleLabel]; got != want {
				return fmt.Errorf("Pod %s: %s=%q, want %q", pod, roleLabel, got, want)
			}
		}
		return nil
	})
	env.WaitFor(t, d, "the read-write Service selects the primary by its role label", func(ctx context.Context) error {
		s, err := env.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := s.Spec.Selector[roleLabel]; got != "primary" {
			return fmt.Errorf("Service %s selector: %v", name, s.Spec.Selector)
		}
		return nil
	})
	env.WaitEndpoints(t, ns, name, []string{name + "-0"})
	env.WaitEndpoints(t, ns, name+"-ro", []string{name + "-1"})
	record("latency: standby started -> Services route by role", time.Since(t1))
}
