package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/fn"
)

// TestMySQLSlowLogToStderr: with monitoring.logging, a MySQL server started
// from the composed configuration (on MariaDB, option by option) writes a
// slow query to its stderr, where the container runtime's log collection
// reads it, and to no file in the data directory.
func TestMySQLSlowLogToStderr(t *testing.T) {
	u := map[string]any{}
	if err := yaml.Unmarshal([]byte(`apiVersion: database.example.com/v1
kind: Database
metadata: {name: orders, namespace: team-a}
spec:
  type: mysql
  version: "8.4"
  environment: staging
  storage: {size: 5Gi}
  monitoring: {enabled: true, logging: true}
`), &u); err != nil {
		t.Fatal(err)
	}
	db, err := fn.Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	fn.Default(&db.Spec)
	p, err := fn.Resolve(db, fn.Observed{}, fn.Input{SQLUsers: true}, func() (string, error) { return "unused", nil })
	if err != nil {
		t.Fatal(err)
	}
	cnf := fn.ConfigMap(p).Data["dbplane.cnf"]
	for _, want := range []string{"slow_query_log = ON", "slow_query_log_file = /dev/stderr", "long_query_time = 0.5"} {
		if !strings.Contains(cnf, want) {
			t.Fatalf("composed my.cnf lacks %q:\n%s", want, cnf)
		}
	}
	resolveTLS(t, &p)
	s := startWith(t, mysql, mariadbArgs(t, cnf, nil, "orders-0", 0, tempTLSDir(t, tlsOf(p.TLS), nil))...)

	// Over staging's 500 ms threshold; a marker to find it by.
	if _, err := s.Exec(t.Context(), "", nil, "SELECT SLEEP(0.7) AS dbplane_slow_marker"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(s.Log)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	if !strings.Contains(log, "dbplane_slow_marker") || !strings.Contains(log, "# Query_time:") {
		t.Errorf("the slow query is not in the server's stderr:\n%s", log)
	}
	slow, err := filepath.Glob(filepath.Join(s.Dir, "data", "*slow*"))
	if err != nil || len(slow) > 0 {
		t.Errorf("slow log files in the data directory: %v %v", slow, err)
	}
	i := strings.Index(log, "# Time:")
	if i < 0 {
		i = strings.Index(log, "# User@Host:")
	}
	if i >= 0 {
		t.Logf("slow log entry on stderr:\n%s", log[i:min(len(log), i+400)])
	}
}
