package integration

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/test/harness"
)

// The exporter tests run the exporters fn composes (the same versions,
// built from Go modules by test/tools/build.sh) against the throwaway
// servers, with exactly the composed container's arguments and
// environment, logged in as the monitoring login the provider's User
// controller creates from the User fn composes. Only the server's port
// and the exporter's listen address differ from a pod: the pod's server
// listens on the engine's port, and the exporter on its default port,
// which the test checks is the container port fn composes.

// exporterTools are the test/tools names of each engine's exporter.
var exporterTools = map[string]string{postgresql: "postgres-exporter", mysql: "mysqld-exporter"}

// exporterVersions are the versions composed for the exporter tests;
// MariaDB stands in for MySQL 8.4.
var exporterVersions = map[string]string{postgresql: "15", mysql: "8.4"}

// keyMetrics are metrics the exporter must report from a server it is
// logged in to, with the privileges the monitoring login has: each needs a
// query only a login with them can run.
var keyMetrics = map[string][]string{
	postgresql: {
		"pg_up",                                // it logged in
		"pg_stat_database_xact_commit",         // pg_stat_database
		"pg_stat_database_numbackends",         // connections
		"pg_settings_max_connections",          // pg_settings
		"pg_stat_activity_max_tx_duration",     // pg_stat_activity of other logins: pg_monitor
		"pg_stat_database_deadlocks",           // deadlocks
		"pg_database_size_bytes",               // pg_database_size: pg_monitor (pg_read_all_stats)
		"pg_replication_is_replica",            // pg_is_in_recovery
		"pg_stat_bgwriter_buffers_alloc_total", // pg_stat_bgwriter
	},
	mysql: {
		"mysql_up",
		"mysql_global_status_threads_connected",
		"mysql_global_variables_max_connections",
		"mysql_global_status_queries",
		"mysql_global_status_innodb_row_lock_waits",
		"mysql_global_status_uptime",
		"mysql_global_status_slow_queries",
		"mysql_info_schema_innodb_metrics_lock_lock_deadlocks", // --collect.info_schema.innodb_metrics
	},
}

// replicationScrapes scrapes x while its server has replication to report,
// as the replication alerts see it, and checks the values they read.
// PostgreSQL: a primary whose standby's slot nobody streams from (slot
// inactive). MariaDB: a replica of another server, streaming (threads
// running, 0 s behind), then stopped (threads not running).
func replicationScrapes(t *testing.T, env *providerEnv, x *exporterRun) []map[string]*dto.MetricFamily {
	t.Helper()
	get := func() map[string]*dto.MetricFamily {
		mfs, _, err := scrape(t.Context(), x.url)
		if err != nil {
			t.Fatal(err)
		}
		return mfs
	}
	want := func(mfs map[string]*dto.MetricFamily, state, name string, labels map[string]string, v float64) {
		if got := value(mfs, name, labels); got != v {
			t.Errorf("%s: %s%v = %v, want %v", state, name, labels, got, v)
		}
	}
	switch env.srv.Engine {
	case postgresql:
		env.admin(t, "", "SELECT pg_create_physical_replication_slot('orders_1')")
		broken := get()
		want(broken, "standby not streaming", "pg_replication_slot_slot_is_active", map[string]string{"slot_name": "orders_1", "slot_type": "physical"}, 0)
		want(broken, "primary", "pg_replication_lag_seconds", nil, 0)
		return []map[string]*dto.MetricFamily{broken}
	case mysql:
		src := startWith(t, mysql, "--log-bin=mysql-bin", "--server-id=1")
		env.admin(t, "", "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT="+strconv.Itoa(src.Port)+
			", MASTER_USER='root', MASTER_PASSWORD="+mysqlString(src.Password)+", MASTER_USE_GTID=slave_pos; START SLAVE")
		if err := harness.Poll(t.Context(), 30*time.Second, func(context.Context) error {
			if v := value(get(), "mysql_slave_status_slave_io_running", nil); v != 1 {
				return fmt.Errorf("slave_io_running %v", v)
			}
			return nil
		}); err != nil {
			t.Fatalf("replica does not stream: %v", err)
		}
		streaming := get()
		want(streaming, "streaming", "mysql_slave_status_slave_sql_running", nil, 1)
		want(streaming, "streaming", "mysql_slave_status_seconds_behind_master", nil, 0)
		env.admin(t, "", "STOP SLAVE")
		stopped := get()
		want(stopped, "stopped", "mysql_slave_status_slave_io_running", nil, 0)
		want(stopped, "stopped", "mysql_slave_status_slave_sql_running", nil, 0)
		return []map[string]*dto.MetricFamily{streaming, stopped}
	}
	return nil
}

// value is the value of the one series of name with these labels, or -1.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var found []float64
	for _, m := range mfs[name].GetMetric() {
		ok := true
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			ok = ok && have[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.GetGauge() != nil:
			found = append(found, m.GetGauge().GetValue())
		case m.GetUntyped() != nil:
			found = append(found, m.GetUntyped().GetValue())
		case m.GetCounter() != nil:
			found = append(found, m.GetCounter().GetValue())
		}
	}
	if len(found) != 1 {
		return -1
	}
	return found[0]
}

// exporterDatabase is a Database with metrics, as a user writes it.
func exporterDatabase(engine string) string {
	return `apiVersion: database.example.com/v1
kind: Database
metadata:
  name: orders
  namespace: team-a
spec:
  type: ` + engine + `
  version: "` + exporterVersions[engine] + `"
  storage:
    size: 5Gi
  monitoring:
    enabled: true
    metrics: true
`
}

// composedExporter resolves the Database the way the function does and
// returns its exporter container and the User of its monitoring login.
func composedExporter(t *testing.T, engine string) (corev1.Container, *v1alpha1.User) {
	t.Helper()
	u := map[string]any{}
	if err := yaml.Unmarshal([]byte(exporterDatabase(engine)), &u); err != nil {
		t.Fatal(err)
	}
	db, err := fn.Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	fn.Default(&db.Spec)
	if errs := fn.Validate(db); len(errs) > 0 {
		t.Fatalf("Validate(): %v", errs.ToAggregate())
	}
	p, err := fn.Resolve(db, fn.Observed{}, fn.Input{SQLUsers: true}, func() (string, error) { return "cluster-password-unused", nil })
	if err != nil {
		t.Fatal(err)
	}
	var x *corev1.Container
	for _, c := range fn.StatefulSet(p).Spec.Template.Spec.Containers {
		if c.Name == "metrics" {
			x = &c
		}
	}
	if x == nil {
		t.Fatalf("%s with metrics: no exporter container composed", engine)
	}
	var user *v1alpha1.User
	for _, c := range fn.Compose(p) {
		if u, ok := c.Object.(*v1alpha1.User); ok && u.Spec.ForProvider.Privileges == v1alpha1.MonitoringPrivileges {
			user = u
		}
	}
	if user == nil {
		t.Fatalf("%s with metrics: no monitoring User composed", engine)
	}
	return *x, user
}

// composedExporterFiles are the composed ConfigMap's files and where the
// exporter container mounts them, when it does.
func composedExporterFiles(t *testing.T, engine string) (map[string]string, string) {
	t.Helper()
	u := map[string]any{}
	if err := yaml.Unmarshal([]byte(exporterDatabase(engine)), &u); err != nil {
		t.Fatal(err)
	}
	db, err := fn.Decode(u)
	if err != nil {
		t.Fatal(err)
	}
	fn.Default(&db.Spec)
	p, err := fn.Resolve(db, fn.Observed{}, fn.Input{SQLUsers: true}, func() (string, error) { return "cluster-password-unused", nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range fn.StatefulSet(p).Spec.Template.Spec.Containers {
		if c.Name != "metrics" {
			continue
		}
		for _, m := range c.VolumeMounts {
			if m.Name == "config" {
				return fn.ConfigMap(p).Data, m.MountPath
			}
		}
	}
	return nil, ""
}

// passwordFrom is the exporter's variable set from a Secret: the monitoring
// login's, never the superuser's.
func passwordFrom(t *testing.T, c corev1.Container) (env, secret string) {
	t.Helper()
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			continue
		}
		if e.ValueFrom.SecretKeyRef == nil || env != "" {
			t.Fatalf("exporter: want one variable from a Secret, got %+v", c.Env)
		}
		env, secret = e.Name, e.ValueFrom.SecretKeyRef.Name
	}
	if env == "" {
		t.Fatalf("exporter: no password variable from a Secret: %+v", c.Env)
	}
	return env, secret
}

// An exporterRun is a running exporter.
type exporterRun struct {
	proc *harness.Process
	url  string
	// probe is the composed liveness command, reaching this exporter.
	probe []string
}

// runExporter starts the engine's exporter binary with the composed
// container's arguments and literal environment, the server's port in
// place of the engine's, and password in the Secret's variable ("" when
// the Secret does not exist yet, as the optional variable is then unset).
func runExporter(t *testing.T, s *server, c corev1.Container, password string) *exporterRun {
	t.Helper()
	bin := tool(t, exporterTools[s.Engine])
	enginePort := map[string]string{postgresql: "5432", mysql: "3306"}[s.Engine]
	// The server's TLS files, and the ConfigMap's files (mysqld_exporter's
	// option file) in a directory of the test's.
	confDir := t.TempDir()
	files, confPath := composedExporterFiles(t, s.Engine)
	local := func(v string) string {
		v = localTLS(strings.ReplaceAll(v, "127.0.0.1:"+enginePort, "127.0.0.1:"+strconv.Itoa(s.Port)), s.TLS.Dir)
		if confPath != "" {
			v = strings.ReplaceAll(v, confPath+"/", confDir+"/")
		}
		return v
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(confDir, name), []byte(local(text)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.Ports) != 1 {
		t.Fatalf("exporter: want one port, got %+v", c.Ports)
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--web.listen-address") {
			t.Fatalf("exporter: the composed args set %s; the test assumes the default", a)
		}
	}
	if def := defaultListen(t, bin); def != ":"+strconv.Itoa(int(c.Ports[0].ContainerPort)) {
		t.Fatalf("exporter listens on %s by default, the composed container port is %d", def, c.Ports[0].ContainerPort)
	}
	port, err := harness.FreePort(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	args := make([]string, 0, len(c.Args)+1)
	for _, a := range c.Args {
		args = append(args, local(a))
	}
	args = append(args, "--web.listen-address=127.0.0.1:"+strconv.Itoa(port))

	pwEnv, _ := passwordFrom(t, c)
	// HOME: mysqld_exporter reads ~/.my.cnf if there is one; a pod has none.
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+local(e.Value))
		}
	}
	if password != "" {
		env = append(env, pwEnv+"="+password)
	}
	p := &harness.Process{
		Name: exporterTools[s.Engine], Bin: bin, Args: args, Env: env, Ports: []int{port},
		Log: filepath.Join(t.TempDir(), "exporter.log"),
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("exporter log:\n%s", harness.Tail(p.Log, 8<<10))
		}
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	if err := p.WaitReady(t.Context(), 30*time.Second, func(ctx context.Context) error {
		_, _, err := scrape(ctx, url)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var probe []string
	if c.LivenessProbe == nil || c.LivenessProbe.Exec == nil {
		t.Fatal("exporter: no exec liveness probe")
	}
	for _, a := range c.LivenessProbe.Exec.Command {
		probe = append(probe, strings.ReplaceAll(a, "127.0.0.1:"+strconv.Itoa(int(c.Ports[0].ContainerPort)), "127.0.0.1:"+strconv.Itoa(port)))
	}
	return &exporterRun{proc: p, url: url, probe: probe}
}

// defaultListen is the exporter's default --web.listen-address, from its
// own --help.
func defaultListen(t *testing.T, bin string) string {
	t.Helper()
	out, _ := exec.CommandContext(t.Context(), bin, "--help").CombinedOutput()
	// Kingpin prints a flag's default as its value: --web.listen-address=:9187 ...
	m := regexp.MustCompile(`--web\.listen-address=(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot find the default listen address in %s --help:\n%s", bin, out)
	}
	return string(m[1])
}

var (
	toolsOnce sync.Mutex
	toolPaths = map[string]string{}
)

// tool builds (once, cached by version) or finds a pinned tool.
func tool(t testing.TB, name string) string {
	t.Helper()
	toolsOnce.Lock()
	defer toolsOnce.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join("..", "tools", "build.sh"), name) //nolint:gosec // Our own build script and tool names.
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cannot build %s: %v", name, err)
	}
	toolPaths[name] = strings.TrimSpace(string(out))
	return toolPaths[name]
}

// scrape fetches and parses one scrape, and how long it took.
func scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	begin := time.Now()
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer rsp.Body.Close() //nolint:errcheck // Read to the end below.
	b, err := io.ReadAll(rsp.Body)
	took := time.Since(begin)
	if err != nil {
		return nil, 0, err
	}
	if rsp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("GET %s: %s", url, rsp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	return mfs, took, err
}

// gauge is the value of an unlabelled gauge or untyped metric, or -1.
func gauge(mfs map[string]*dto.MetricFamily, name string) float64 {
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) != 1 {
		return -1
	}
	m := mf.GetMetric()[0]
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetUntyped().GetValue()
}

func series(mfs map[string]*dto.MetricFamily) int {
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// probeExit runs the composed liveness command and returns its exit code.
func (x *exporterRun) probeExit(t *testing.T) int {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), x.probe[0], x.probe[1:]...) //nolint:gosec // The composed probe.
	err := cmd.Run()
	if ee := (*exec.ExitError)(nil); err != nil && !asExit(err, &ee) {
		t.Fatalf("liveness probe %v: %v", x.probe, err)
	} else if err != nil {
		return ee.ExitCode()
	}
	return 0
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError) //nolint:errorlint // exec returns it unwrapped.
	*ee = e
	return ok
}

// TestExporters: each engine's exporter, run with the composed arguments
// and environment, logs in as the monitoring login the User controller
// created, not the superuser; reports the key metrics with it; and the
// composed liveness probe fails while the login's Secret is missing (the
// pod's first start) and passes once the exporter logged in.
func TestExporters(t *testing.T) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			var s *server
			if engine == mysql {
				// MySQL 8 runs performance_schema by default; MariaDB not.
				// A server_id of its own: it becomes a replica below.
				s = startWith(t, engine, "--performance-schema=ON", "--server-id=2")
			} else {
				s = start(t, engine)
			}
			c, u := composedExporter(t, engine)
			_, secret := passwordFrom(t, c)
			if secret != u.Spec.WriteConnectionSecretToReference.Name {
				t.Fatalf("exporter reads Secret %q, the monitoring User writes %q", secret, u.Spec.WriteConnectionSecretToReference.Name)
			}

			// Before the provider made the login, the pod's exporter
			// starts without a password: it is not up, and the composed
			// liveness probe fails, which restarts it.
			before := runExporter(t, s, c, "")
			mfs, _, err := scrape(t.Context(), before.url)
			if err != nil {
				t.Fatal(err)
			}
			up := c.LivenessProbe.Exec.Command[2]
			upName := regexp.MustCompile(`\^([a-z_]+) 1`).FindStringSubmatch(up)[1]
			if got := gauge(mfs, upName); got != 0 {
				t.Errorf("without the Secret: %s = %v, want 0", upName, got)
			}
			if code := before.probeExit(t); code == 0 {
				t.Errorf("without the Secret: the liveness probe passed; it must fail so that the kubelet restarts the exporter")
			}
			if err := before.proc.Stop(); err != nil {
				t.Fatal(err)
			}

			// The User fn composes, reconciled by the provider's User
			// controller against this server's ProviderConfig.
			env := newProviderEnv(t, s)
			u.SetUID(types.UID("uid-" + u.GetName()))
			u.Spec.ProviderConfigReference = &xpv2.ProviderConfigReference{Kind: "ProviderConfig", Name: "default"}
			u.SetGroupVersionKind(v1alpha1.UserGroupVersionKind)
			if got := env.converge(t, u); got[0] != created {
				t.Fatalf("monitoring User: want created, got %v", got)
			}
			sec := env.secret(t, u)
			if sec["username"] != "monitoring" || sec["password"] == "" || sec["password"] == s.Password {
				t.Fatalf("monitoring login's Secret: username %q, a password of its own: %t", sec["username"], sec["password"] != s.Password)
			}
			checkLeastPrivilege(t, env, sec)

			x := runExporter(t, s, c, sec["password"])
			_, took, err := scrape(t.Context(), x.url)
			if err != nil {
				t.Fatal(err)
			}
			// A second scrape: the first includes one-off work.
			mfs, took2, err := scrape(t.Context(), x.url)
			if err != nil {
				t.Fatal(err)
			}
			if got := gauge(mfs, upName); got != 1 {
				t.Errorf("%s = %v, want 1: the exporter did not log in as the monitoring login", upName, got)
			}
			for _, m := range keyMetrics[engine] {
				if _, ok := mfs[m]; !ok {
					t.Errorf("scrape has no %s", m)
				}
			}
			if code := x.probeExit(t); code != 0 {
				t.Errorf("logged in: the liveness probe exits %d, want 0", code)
			}
			// What the monitoring login may not do shows in the exporter's
			// log: every collector it runs must work with it.
			log, err := os.ReadFile(x.proc.Log)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(log), "\n") {
				ll := strings.ToLower(l)
				if strings.Contains(ll, "permission denied") || strings.Contains(ll, "access denied") || strings.Contains(ll, "must be superuser") {
					t.Errorf("exporter, logged in as the monitoring login, lacks a privilege: %s", l)
				}
			}
			t.Logf("%s: %d metric families, %d series; scrape %s, then %s", engine, len(mfs), series(mfs), took.Round(time.Millisecond), took2.Round(time.Millisecond))

			names := map[string]bool{}
			for n := range mfs {
				names[n] = true
			}
			// The replication metrics appear only on a server with
			// standbys (PostgreSQL) or a replica (MySQL).
			for _, sc := range replicationScrapes(t, env, x) {
				for n := range sc {
					names[n] = true
				}
			}
			writeScraped(t, engine, slices.Sorted(maps.Keys(names)))
		})
	}
}

// checkLeastPrivilege: the monitoring login is no superuser and reads no
// app data.
func checkLeastPrivilege(t *testing.T, env *providerEnv, sec map[string]string) {
	t.Helper()
	env.admin(t, appDatabase, "CREATE TABLE secrets (v text)")
	// The Secret's dsn names the app database: PostgreSQL lets every login
	// connect to it (PUBLIC's CONNECT), MySQL lets in no account without a
	// privilege on it.
	db, err := env.open(t, sec["dsn"])
	switch {
	case err != nil && env.srv.Engine == mysql && strings.Contains(err.Error(), "Access denied for user 'monitoring'@'%' to database 'app'"):
		t.Logf("the monitoring login cannot use the app database: %v", err)
	case err != nil:
		t.Fatalf("monitoring login cannot log in with its Secret's dsn: %v", err)
	default:
		defer db.Close() //nolint:errcheck // Read only.
		var n int
		if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM secrets").Scan(&n); err == nil {
			t.Error("the monitoring login reads the app's tables")
		} else {
			t.Logf("the monitoring login cannot read the app's tables: %v", err)
		}
	}
	switch env.srv.Engine {
	case postgresql:
		got := env.admin(t, "postgres", "SELECT rolsuper, rolreplication, pg_has_role('monitoring', 'pg_monitor', 'member') FROM pg_roles WHERE rolname = 'monitoring'")
		if strings.TrimSpace(got) != "f\tf\tt" {
			t.Errorf("monitoring role: superuser, replication, member of pg_monitor = %q, want f f t", got)
		}
	case mysql:
		got := env.admin(t, "", "SHOW GRANTS FOR 'monitoring'@'%'")
		t.Logf("grants of the monitoring login:\n%s", got)
		if strings.Contains(got, "ALL PRIVILEGES") || strings.Contains(got, "SUPER") || strings.Contains(got, "`app`") {
			t.Errorf("monitoring login has more than it needs:\n%s", got)
		}
	}
}

// scrapedDir holds the metric names the real exporters reported, which
// test/'s alert and dashboard checks read. TestExporters checks every name
// there is still reported (an exporter that drops or renames a metric an
// alert reads fails here), and rewrites the lists with DBPLANE_UPDATE_SCRAPED=1.
var scrapedDir = filepath.Join("..", "testdata", "exporter")

func writeScraped(t *testing.T, engine string, names []string) {
	t.Helper()
	path := filepath.Join(scrapedDir, engine+".txt")
	if os.Getenv("DBPLANE_UPDATE_SCRAPED") != "" {
		if err := os.MkdirAll(scrapedDir, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.Join(names, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path) //nolint:gosec // Test data.
	if err != nil {
		t.Fatalf("%v: run with DBPLANE_UPDATE_SCRAPED=1 to write it", err)
	}
	var gone []string
	for _, n := range strings.Fields(string(b)) {
		if !slices.Contains(names, n) {
			gone = append(gone, n)
		}
	}
	if len(gone) > 0 {
		t.Errorf("%s lists metrics the real %s exporter no longer reports (DBPLANE_UPDATE_SCRAPED=1 rewrites it, then test/ checks the alerts and dashboards against it): %v", path, engine, gone)
	}
}

// procUsage is a process's CPU time so far and its peak resident memory,
// from /proc.
func procUsage(t *testing.T, pid int) (cpu time.Duration, peakRSS int64) {
	t.Helper()
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command (which may hold spaces) in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // Numeric in /proc.
	stime, _ := strconv.ParseInt(f[12], 10, 64) // Numeric in /proc.
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64) // Numeric in /proc.
			peakRSS = kb << 10
		}
	}
	// Linux counts CPU time in clock ticks of 1/100 s.
	return time.Duration(utime+stime) * 10 * time.Millisecond, peakRSS
}

// TestExporterResources measures the exporter sidecar's CPU and memory on an
// idle server and on a busy one (40 clients writing and reading), scraped
// back to back, and checks the composed requests and limits hold it: peak
// memory under the limit, and the CPU of one scrape every 30 s (the
// PodMonitor's interval) under the request.
func TestExporterResources(t *testing.T) {
	const scrapes = 20
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			s := start(t, engine)
			c, u := composedExporter(t, engine)
			env := newProviderEnv(t, s)
			u.SetUID(types.UID("uid-" + u.GetName()))
			u.Spec.ProviderConfigReference = &xpv2.ProviderConfigReference{Kind: "ProviderConfig", Name: "default"}
			u.SetGroupVersionKind(v1alpha1.UserGroupVersionKind)
			env.converge(t, u)
			app := newUser("orders-app", "app", appDatabase, v1alpha1.Owner)
			env.converge(t, app)
			x := runExporter(t, s, c, env.secret(t, u)["password"])

			measure := func(state string) (time.Duration, int64) {
				cpu0, _ := procUsage(t, x.proc.PID())
				for range scrapes {
					if _, _, err := scrape(t.Context(), x.url); err != nil {
						t.Fatal(err)
					}
				}
				cpu1, rss := procUsage(t, x.proc.PID())
				per := (cpu1 - cpu0) / scrapes
				t.Logf("%s %s: %s CPU a scrape (%.1f millicores at one scrape every 30 s), peak RSS %d MiB", engine, state, per, float64(per.Microseconds())/30/1000, rss>>20)
				return per, rss
			}
			idleCPU, idleRSS := measure("idle")

			db, err := sql.Open(env.e.driver, env.secret(t, app)["dsn"])
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close() //nolint:errcheck // Closed at the end.
			db.SetMaxOpenConns(40)
			if _, err := db.ExecContext(t.Context(), "CREATE TABLE busy (id integer, v varchar(100))"); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			for range 40 {
				wg.Go(func() {
					for ctx.Err() == nil {
						_, _ = db.ExecContext(ctx, "INSERT INTO busy VALUES (1, 'x')") // Load, errors at cancel.
						_, _ = db.ExecContext(ctx, "SELECT count(*) FROM busy WHERE id = 1")
					}
				})
			}
			time.Sleep(2 * time.Second) // Every client connected.
			busyCPU, busyRSS := measure("busy, 40 clients")
			cancel()
			wg.Wait()

			limit := c.Resources.Limits.Memory().Value()
			request := c.Resources.Requests.Cpu().MilliValue()
			for _, m := range []struct {
				cpu time.Duration
				rss int64
			}{{idleCPU, idleRSS}, {busyCPU, busyRSS}} {
				if m.rss >= limit {
					t.Errorf("peak RSS %d MiB is over the composed memory limit %d MiB", m.rss>>20, limit>>20)
				}
				if mc := m.cpu.Microseconds() / 30 / 1000; mc >= request {
					t.Errorf("%d millicores at one scrape every 30 s is over the composed CPU request %dm", mc, request)
				}
			}
		})
	}
}
