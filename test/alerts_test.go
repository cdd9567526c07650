package test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1 "github.com/dbplane/dbplane/apis/v1"
	"github.com/dbplane/dbplane/fn"
)

// The alerts are proven with Prometheus' own rule tester: promtool, built
// from the pinned Prometheus module (test/tools/promtool). Each alert fires
// on synthetic series of a broken Database and stays silent on a healthy
// one (test/testdata/alerts), and every metric an alert reads is one the
// real exporters reported (test/testdata/exporter, written by
// test/integration's TestExporters) or one of the documented metrics of
// Prometheus, the kubelet and kube-state-metrics below.

// otherMetrics are the metrics alerts read that the exporters do not
// report, each with where it comes from.
var otherMetrics = map[string]string{
	"up":                                       "Prometheus: 1 when the scrape succeeded",
	"kubelet_volume_stats_available_bytes":     "kubelet",
	"kubelet_volume_stats_capacity_bytes":      "kubelet",
	"kube_job_status_start_time":               "kube-state-metrics",
	"kube_job_status_failed":                   "kube-state-metrics",
	"kube_job_status_succeeded":                "kube-state-metrics",
	"kube_job_status_completion_time":          "kube-state-metrics: set when the Job succeeded",
	"kube_cronjob_status_last_successful_time": "kube-state-metrics",
	"kube_cronjob_created":                     "kube-state-metrics",
	// MySQL 8.4 has only SHOW REPLICA STATUS, whose columns mysqld_exporter
	// names replica_* and *_source; MariaDB, which stands in for MySQL in
	// test/integration, has the slave_* names only.
	"mysql_slave_status_replica_io_running":    "mysqld_exporter on MySQL 8.4 (SHOW REPLICA STATUS)",
	"mysql_slave_status_replica_sql_running":   "mysqld_exporter on MySQL 8.4 (SHOW REPLICA STATUS)",
	"mysql_slave_status_seconds_behind_source": "mysqld_exporter on MySQL 8.4 (SHOW REPLICA STATUS)",
}

// promtool is the pinned promtool. `make golden-test` builds and passes it;
// without it the test is skipped locally and fails in CI.
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("DBPLANE_PROMTOOL")
	if p == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DBPLANE_PROMTOOL must be set in CI: run make test")
		}
		t.Skip("promtool not built: run make golden-test")
	}
	return p
}

// alertingDatabase is what the rules are composed for: a production
// Database with standbys, backups and metrics, orders in team-a.
func alertingDatabase(t *testing.T, engine v1.Engine, version string) fn.Params {
	t.Helper()
	db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: v1.DatabaseSpec{
		Type: engine, Version: version, Replicas: ptr.To[int32](3), Environment: v1.Production,
		Storage: v1.Storage{Size: "10Gi"}, Backup: &v1.Backup{Enabled: true},
		Monitoring: &v1.Monitoring{Enabled: true, Metrics: true},
	}}
	fn.Default(&db.Spec)
	if errs := fn.Validate(db); len(errs) > 0 {
		t.Fatalf("Validate(): %v", errs.ToAggregate())
	}
	p, err := fn.Resolve(db, fn.Observed{}, fn.Input{SQLUsers: true}, func() (string, error) { return "unused", nil })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ruleFile writes the composed PrometheusRule's groups as a Prometheus rule
// file into dir and returns its alert names.
func ruleFile(t *testing.T, p fn.Params, dir string) (alerts, exprs []string) {
	t.Helper()
	r := fn.PrometheusRule(p)
	b, err := yaml.Marshal(r.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, g := range r.Spec.Groups {
		for _, rule := range g.Rules {
			alerts = append(alerts, rule.Alert)
			exprs = append(exprs, rule.Expr.String())
		}
	}
	return alerts, exprs
}

// promtoolTests are the rule unit test files of an engine: the alerts every
// engine has, and its own.
func promtoolTests(engine v1.Engine) []string {
	return []string{filepath.Join("testdata", "alerts", "common.test.yaml"), filepath.Join("testdata", "alerts", string(engine)+".test.yaml")}
}

// TestAlerts: promtool accepts each engine's composed rules, and its rule
// unit tests pass, with a firing and a silent case for every alert.
func TestAlerts(t *testing.T) {
	tool := promtool(t)
	for _, e := range []struct {
		engine  v1.Engine
		version string
	}{{v1.PostgreSQL, "16"}, {v1.MySQL, "8.4"}} {
		t.Run(string(e.engine), func(t *testing.T) {
			dir := t.TempDir()
			alerts, _ := ruleFile(t, alertingDatabase(t, e.engine, e.version), dir)
			out, err := exec.CommandContext(t.Context(), tool, "check", "rules", filepath.Join(dir, "rules.yaml")).CombinedOutput() //nolint:gosec // The pinned promtool.
			if err != nil || !strings.Contains(string(out), "SUCCESS: "+strconv.Itoa(len(alerts))+" rules found") {
				t.Fatalf("promtool check rules: %v\n%s", err, out)
			}

			unitTest(t, tool, dir, alerts, promtoolTests(e.engine)...)
		})
	}
}

// unitTest runs promtool's rule unit tests files against dir/rules.yaml, and
// fails for an alert of alerts without a case where it fires and one where it
// stays silent.
func unitTest(t *testing.T, tool, dir string, alerts []string, files ...string) {
	t.Helper()
	firing, silent := map[string]bool{}, map[string]bool{}
	var tests []string
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // Test data.
		if err != nil {
			t.Fatal(err)
		}
		var ut struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `json:"alertname"`
					ExpAlerts []any  `json:"exp_alerts"`
				} `json:"alert_rule_test"`
			} `json:"tests"`
		}
		if err := yaml.Unmarshal(b, &ut); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range ut.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
		// The rule file is found next to the test file.
		to := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(to, b, 0o600); err != nil { //nolint:gosec // A copy of our test data into the test's temp dir.
			t.Fatal(err)
		}
		tests = append(tests, to)
	}
	for _, a := range alerts {
		if !firing[a] || !silent[a] {
			t.Errorf("alert %s: want a promtool case where it fires (%t) and one where it stays silent (%t)", a, firing[a], silent[a])
		}
	}
	cmd := exec.CommandContext(t.Context(), tool, append([]string{"test", "rules"}, tests...)...) //nolint:gosec // The pinned promtool and our test files.
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	t.Logf("promtool test rules:\n%s", out)
	if err != nil {
		t.Errorf("promtool test rules: %v", err)
	}
}

// TestAlertMetricsExist: every metric an alert reads (parsed by Prometheus'
// own PromQL parser) is in the real exporter's output, or is one of
// otherMetrics.
func TestAlertMetricsExist(t *testing.T) {
	for _, e := range []struct {
		engine  v1.Engine
		version string
	}{{v1.PostgreSQL, "16"}, {v1.MySQL, "8.4"}} {
		t.Run(string(e.engine), func(t *testing.T) {
			_, exprs := ruleFile(t, alertingDatabase(t, e.engine, e.version), t.TempDir())
			checkMetricsExist(t, e.engine, exprs)
		})
	}
}

// checkMetricsExist fails for every metric of exprs that the engine's real
// exporter did not report and otherMetrics does not name; exprs must parse.
func checkMetricsExist(t *testing.T, engine v1.Engine, exprs []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "exporter", string(engine)+".txt"))
	if err != nil {
		t.Fatalf("%v: run test/integration's TestExporters, which writes it from the real exporter", err)
	}
	scraped := strings.Fields(string(b))
	for _, r := range parsePromQL(t, exprs) {
		if r.Error != "" {
			t.Errorf("%s: does not parse: %s", r.Expr, r.Error)
		}
		for _, m := range r.Metrics {
			if !slices.Contains(scraped, m) && otherMetrics[m] == "" {
				t.Errorf("%s reads %s, which the real %s exporter does not report (test/testdata/exporter/%s.txt) and no documented source has", r.Expr, m, engine, engine)
			}
		}
	}
}

// A parsed is what test/tools/promtool/promql says of an expression.
type parsed struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
	Error   string   `json:"error"`
}

// parsePromQL parses exprs with Prometheus' own parser, through
// test/tools/promtool/promql in the pinned Prometheus module.
func parsePromQL(t *testing.T, exprs []string) []parsed {
	t.Helper()
	in, err := json.Marshal(exprs)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "run", "./promql")
	cmd.Dir = filepath.Join("tools", "promtool")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	cmd.Stdin = strings.NewReader(string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var rs []parsed
	if jerr := json.Unmarshal(out, &rs); jerr != nil || len(rs) != len(exprs) {
		t.Fatalf("promql: %v %v\n%s%s", err, jerr, out, stderr.String())
	}
	return rs
}

// TestDashboardMetricsExist: every query of each engine's composed dashboard
// parses as PromQL (Prometheus' own parser) and reads only metrics the real
// exporter reported, or otherMetrics.
func TestDashboardMetricsExist(t *testing.T) {
	for _, e := range []struct {
		engine  v1.Engine
		version string
	}{{v1.PostgreSQL, "16"}, {v1.MySQL, "8.4"}} {
		t.Run(string(e.engine), func(t *testing.T) {
			cm := fn.Dashboard(alertingDatabase(t, e.engine, e.version))
			var d struct {
				Panels []struct {
					Targets []struct {
						Expr string `json:"expr"`
					} `json:"targets"`
				} `json:"panels"`
			}
			if err := json.Unmarshal([]byte(cm.Data["dbplane.json"]), &d); err != nil {
				t.Fatal(err)
			}
			var exprs []string
			for _, p := range d.Panels {
				for _, tg := range p.Targets {
					exprs = append(exprs, tg.Expr)
				}
			}
			if len(exprs) < 10 {
				t.Fatalf("want a dashboard of at least 10 queries, got %d", len(exprs))
			}
			checkMetricsExist(t, e.engine, exprs)
		})
	}
}
