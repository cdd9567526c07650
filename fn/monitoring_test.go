package fn

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// TestRunFunctionMonitoring: a Database with metrics asks Crossplane for the
// Prometheus Operator's CRDs; with both it composes a PodMonitor and a
// PrometheusRule, without either it composes the rest and says so in the
// Monitored condition and a Warning, once.
func TestRunFunctionMonitoring(t *testing.T) {
	pgMetrics := `{"type":"postgresql","version":"16","storage":{"size":"1Gi"},"monitoring":{"enabled":true,"metrics":true}}`
	missing := "the Prometheus Operator's CRDs podmonitors.monitoring.coreos.com, prometheusrules.monitoring.coreos.com are not installed: no PodMonitor or PrometheusRule is composed; the pods keep their prometheus.io/scrape annotations"
	crd := func(name string) *fnv1.Resources {
		return &fnv1.Resources{Items: []*fnv1.Resource{{Resource: resource.MustStructJSON(
			fmt.Sprintf(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":%q}}`, name))}}}
	}
	with := func(x string, rs map[string]*fnv1.Resources, input string) *fnv1.RunFunctionRequest {
		r := req(x, nil)
		r.RequiredResources = rs
		if input != "" {
			r.Input = resource.MustStructJSON(input)
		}
		return r
	}
	both := map[string]*fnv1.Resources{"crd-podmonitors": crd("podmonitors.monitoring.coreos.com"), "crd-prometheusrules": crd("prometheusrules.monitoring.coreos.com")}
	none := map[string]*fnv1.Resources{"crd-podmonitors": {}, "crd-prometheusrules": {}}
	onlyRules := map[string]*fnv1.Resources{"crd-podmonitors": {}, "crd-prometheusrules": crd("prometheusrules.monitoring.coreos.com")}
	said := strings.TrimSuffix(xr("orders", pgMetrics), "}") +
		`,"status":{"conditions":[{"type":"Monitored","status":"False","reason":"PrometheusOperatorMissing","message":` + fmt.Sprintf("%q", missing) + `,"lastTransitionTime":"2026-11-23T10:00:00Z"}]}}`

	type want struct {
		Monitoring []string // composed podmonitor, prometheusrule
		Requires   []string
		Monitored  string
		Results    []string
	}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   want
	}{
		"FirstCall": {
			reason: "Before Crossplane answered, the function asks for both CRDs and composes neither object.",
			req:    with(xr("orders", pgMetrics), nil, ""),
			want:   want{Requires: []string{"crd-podmonitors", "crd-prometheusrules"}, Monitored: "Monitored=UNKNOWN/CheckingPrometheusOperator"},
		},
		"OperatorInstalled": {
			reason: "With both CRDs a PodMonitor and a PrometheusRule are composed.",
			req:    with(xr("orders", pgMetrics), both, ""),
			want: want{
				Monitoring: []string{"podmonitor", "prometheusrule"}, Requires: []string{"crd-podmonitors", "crd-prometheusrules"},
				Monitored: "Monitored=TRUE/PrometheusOperator",
			},
		},
		"OperatorMissing": {
			reason: "Without the CRDs the rest is composed, the condition says why not, and a Warning says it once.",
			req:    with(xr("orders", pgMetrics), none, ""),
			want: want{
				Requires: []string{"crd-podmonitors", "crd-prometheusrules"}, Monitored: "Monitored=FALSE/PrometheusOperatorMissing",
				Results: []string{"SEVERITY_WARNING: " + missing},
			},
		},
		"OperatorMissingAlreadySaid": {
			reason: "A Database whose condition already says the CRDs are missing gets no second Warning.",
			req:    with(said, none, ""),
			want:   want{Requires: []string{"crd-podmonitors", "crd-prometheusrules"}, Monitored: "Monitored=FALSE/PrometheusOperatorMissing"},
		},
		"OneCRDMissing": {
			reason: "Rules without a scrape would only fire DatabaseMetricsAbsent: neither is composed with one CRD missing.",
			req:    with(xr("orders", pgMetrics), onlyRules, ""),
			want: want{
				Requires: []string{"crd-podmonitors", "crd-prometheusrules"}, Monitored: "Monitored=FALSE/PrometheusOperatorMissing",
				Results: []string{"SEVERITY_WARNING: the Prometheus Operator's CRDs podmonitors.monitoring.coreos.com are not installed: no PodMonitor or PrometheusRule is composed; the pods keep their prometheus.io/scrape annotations"},
			},
		},
		"NoMetrics": {
			reason: "A Database without metrics asks for nothing and has no Monitored condition.",
			req:    with(xr("orders", pgDev), both, ""),
		},
		"NoSQLProvider": {
			reason: "Without the SQL provider there is no monitoring login, so no exporter: the condition says so.",
			req:    with(xr("orders", pgMetrics), both, `{"apiVersion":"fn.database.example.com/v1alpha1","kind":"Input","sqlUsers":false}`),
			want: want{
				Monitored: "Monitored=FALSE/NoMonitoringLogin",
				Results:   []string{"SEVERITY_WARNING: spec.monitoring.metrics: the exporter logs in as a monitoring login, which only the SQL provider makes; the Composition's input turns it off (sqlUsers: false)"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			g := summarise(t, rsp)
			got := want{Results: g.Results}
			for n := range g.Composed {
				if n == string(rnPodMonitor) || n == string(rnPrometheusRule) {
					got.Monitoring = append(got.Monitoring, n)
				}
			}
			for _, r := range g.Requires {
				if strings.HasPrefix(r, "crd-") {
					got.Requires = append(got.Requires, r)
				}
			}
			for _, c := range g.Conditions {
				if strings.HasPrefix(c, ConditionMonitored) {
					got.Monitored = c
				}
			}
			slices.Sort(got.Monitoring)
			slices.Sort(got.Requires)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestBackupAge: a backup may be as old as the longest gap of its schedule,
// plus a run's deadline (3 h) and start deadline (1 h).
func TestBackupAge(t *testing.T) {
	for schedule, want := range map[string]string{
		"0 2 * * *":    "28h0m0s",  // daily
		"@daily":       "28h0m0s",  // the same
		"0 */6 * * *":  "10h0m0s",  // every 6 hours
		"0 3 * * 0":    "172h0m0s", // weekly
		"0 1 1 * *":    "748h0m0s", // monthly: the longest month, 31 days
		"30 2 * * 1-5": "76h0m0s",  // weekdays: Friday to Monday
	} {
		if got := backupAge(schedule).String(); got != want {
			t.Errorf("backupAge(%q) = %s, want %s", schedule, got, want)
		}
	}
}

// TestDashboard: with metrics, each engine's dashboard is a ConfigMap the
// Grafana sidecar loads, with a uid of the Database's own, and panels for
// availability, connections, throughput, replication, storage and backups
// whose every query selects this Database's series only.
func TestDashboard(t *testing.T) {
	uids := map[string]string{}
	for name, s := range everySpec() {
		if !s.Monitoring.Metrics {
			continue
		}
		p := params(t, s)
		cm := Dashboard(p)
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("%s: dashboard ConfigMap labels %v lack grafana_dashboard: \"1\"", name, cm.Labels)
		}
		var d struct {
			UID    string `json:"uid"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(cm.Data["dbplane.json"]), &d); err != nil {
			t.Fatalf("%s: dashboard is not JSON: %v", name, err)
		}
		uids[string(s.Type)+d.UID] = name
		var titles []string
		for _, pn := range d.Panels {
			titles = append(titles, pn.Title)
			if len(pn.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, pn.Title)
			}
			for _, tg := range pn.Targets {
				if !strings.Contains(tg.Expr, `namespace="team-a"`) || strings.Contains(tg.Expr, "{{") {
					t.Errorf("%s: panel %q query %q does not select this Database's series", name, pn.Title, tg.Expr)
				}
			}
		}
		for _, want := range []string{"Availability", "Connections", "Replication lag", "Volume space used", "Last successful backup (age)"} {
			if !slices.Contains(titles, want) {
				t.Errorf("%s: no %q panel in %v", name, want, titles)
			}
		}
	}
	other := params(t, everySpec()["postgresql-18-production-metrics=true"])
	other.Name = "invoices"
	var d struct {
		UID string `json:"uid"`
	}
	if err := json.Unmarshal([]byte(Dashboard(other).Data["dbplane.json"]), &d); err != nil {
		t.Fatal(err)
	}
	if _, ok := uids[string(other.names.Engine)+d.UID]; ok || d.UID == "" {
		t.Errorf("two Databases' dashboards share uid %q: Grafana would keep one", d.UID)
	}
}

// TestPrometheusRuleFollowsTheDatabase: a Database's alerts are about what
// it has: replication alerts only with standbys, backup alerts only with
// backups, and every rule selects this Database's namespace.
func TestPrometheusRuleFollowsTheDatabase(t *testing.T) {
	alertsOf := func(s string) []string {
		p := params(t, everySpec()[s])
		var names []string
		for _, g := range PrometheusRule(p).Spec.Groups {
			for _, r := range g.Rules {
				names = append(names, r.Alert)
				if !strings.Contains(r.Expr.String(), `namespace="team-a"`) {
					t.Errorf("%s: %s does not select the Database's namespace: %s", s, r.Alert, r.Expr.String())
				}
			}
		}
		return names
	}
	base := []string{"DatabaseMetricsAbsent", "DatabaseInstanceDown", "DatabaseConnectionsNearMax", "DatabaseLongTransaction", "DatabaseDeadlocks"}
	volumes := []string{"DatabaseVolumeAlmostFull", "DatabaseVolumeFillingUp"}
	backups := []string{"DatabaseBackupFailed", "DatabaseBackupTooOld"}
	replication := []string{"DatabaseReplicationLagging", "DatabaseReplicationBroken"}

	verified := slices.Concat(backups, []string{"DatabaseBackupVerifyFailed"})
	if diff := cmp.Diff(slices.Concat(base, replication, volumes, verified), alertsOf("postgresql-18-production-metrics=true")); diff != "" {
		t.Errorf("PostgreSQL with standbys and backups: -want, +got:\n%s", diff)
	}
	one := everySpec()["postgresql-18-development-metrics=true"]
	one.Replicas = ptr.To[int32](1)
	one.Backup = &v1.Backup{Enabled: false}
	p := params(t, one)
	var got []string
	for _, r := range PrometheusRule(p).Spec.Groups[0].Rules {
		got = append(got, r.Alert)
	}
	if diff := cmp.Diff(slices.Concat(base, volumes), got); diff != "" {
		t.Errorf("PostgreSQL, one server, no backups: no replication or backup alerts: -want, +got:\n%s", diff)
	}
	mysql := slices.Concat([]string{"DatabaseMetricsAbsent", "DatabaseInstanceDown", "DatabaseConnectionsNearMax", "DatabaseLockWaits", "DatabaseDeadlocks"}, replication, volumes, verified)
	if diff := cmp.Diff(mysql, alertsOf("mysql-8.4-production-metrics=true")); diff != "" {
		t.Errorf("MySQL: lock waits instead of long transactions: -want, +got:\n%s", diff)
	}
}

// TestBackupJobNames: the backup alerts read the Database's backup Jobs,
// scheduled and on demand, and no other Job.
func TestBackupJobNames(t *testing.T) {
	p := params(t, everySpec()["postgresql-18-production-metrics=true"])
	other := p
	other.names = names{Name: p.Name + "-2", Namespace: p.Namespace}
	re := regexp.MustCompile(`^(?:` + backupJobNames(p) + `)$`) // PromQL anchors =~.
	cases := map[string]struct {
		reason string
		job    string
		want   bool
	}{
		"Scheduled":        {reason: "The CronJob's Jobs are named for the minute they were scheduled.", job: p.BackupCronJob() + "-29000000", want: true},
		"OnDemand":         {reason: "The on-demand backup Job is a backup Job.", job: p.BackupNowJob("2026-01-01"), want: true},
		"Verify":           {reason: "A verify Job is not a backup.", job: p.VerifyCronJob() + "-29000000"},
		"OtherScheduled":   {reason: "Another Database's backups are its own.", job: other.BackupCronJob() + "-29000000"},
		"OtherOnDemand":    {reason: "Another Database's on-demand backups are its own.", job: other.BackupNowJob("2026-01-01")},
		"NotAToken":        {reason: "Only a token's digest follows backup-now-.", job: p.BackupCronJob() + "-now-29000000"},
		"OnDemandOfPrefix": {reason: "A Database whose name extends this one's is another.", job: names{Name: p.Name + "-backup"}.BackupNowJob("x")},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := re.MatchString(tc.job); got != tc.want {
				t.Errorf("%s\nbackupJobNames(...) matches %q: want %t, got %t", tc.reason, tc.job, tc.want, got)
			}
		})
	}
}
