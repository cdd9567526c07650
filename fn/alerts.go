package fn

import (
	"strconv"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// runbookURL is where each alert's runbook is: a section of the README.
const runbookURL = "https://github.com/dbplane/dbplane/blob/main/README.md#"

// An alert is one alerting rule of a Database's PrometheusRule. Its
// expression is text with placeholders the builder fills in for the
// Database: {{pods}} selects its server pods' exporter series (namespace and
// pod, as the PodMonitor labels them), {{claims}} its data and backup
// volume claims (kubelet_volume_stats_*), {{cronjob}} its backup CronJob,
// {{jobs}} its backup Jobs (kube-state-metrics): the CronJob's
// (<name>-backup-<minutes>) and the on-demand one (<name>-backup-now-<6 hex
// digits>, BackupNowJob), so that an on-demand backup that fails alerts and
// one that succeeds counts as a success; {{verifyjobs}} the verify
// CronJob's Jobs, {{backupAge}} the seconds a backup may be old, and {{ns}}
// the namespace.
type alert struct {
	Name     string
	Severity string
	For      monitoringv1.Duration
	Expr     string
	// Summary and Description are alert annotations; {{ $labels.pod }}
	// and the like are Prometheus' own templates, filled in when it fires.
	Summary     string
	Description string
	// When tells whether the Database has what the alert is about; nil is
	// always.
	When func(Params) bool
}

// alertsOf are a Database's alerts: the engine's (what its exporter
// measures) and the ones every engine has (the exporter's scrape, volumes
// and backups, measured by Prometheus, the kubelet and kube-state-metrics).
func alertsOf(p Params) []alert {
	x := p.Engine.Exporter
	all := []alert{
		{
			Name: "DatabaseMetricsAbsent", Severity: "warning", For: "10m",
			Expr:        `absent(up{{{pods}}})`,
			Summary:     "No metrics from Database {{ns}}/" + p.Name,
			Description: "Prometheus scrapes no exporter of Database " + p.Name + ": its pods are gone or the PodMonitor selects none.",
		},
		{
			Name: "DatabaseInstanceDown", Severity: "critical", For: "5m",
			Expr:        x.Up + `{{{pods}}} == 0 or up{{{pods}}} == 0`,
			Summary:     "Database server {{ $labels.namespace }}/{{ $labels.pod }} is down",
			Description: "For 5 minutes the exporter of {{ $labels.pod }} could not be scraped, or could not log in to its server.",
		},
	}
	all = append(all, x.Alerts...)
	all = append(all,
		alert{
			Name: "DatabaseVolumeAlmostFull", Severity: "warning", For: "5m",
			Expr:        `kubelet_volume_stats_available_bytes{{{claims}}} / kubelet_volume_stats_capacity_bytes{{{claims}}} < 0.1`,
			Summary:     "Volume {{ $labels.persistentvolumeclaim }} of Database {{ns}}/" + p.Name + " is almost full",
			Description: "Volume claim {{ $labels.persistentvolumeclaim }} has {{ $value | humanizePercentage }} of its space left.",
		},
		alert{
			Name: "DatabaseVolumeFillingUp", Severity: "warning", For: "1h",
			Expr: `kubelet_volume_stats_available_bytes{{{claims}}} / kubelet_volume_stats_capacity_bytes{{{claims}}} < 0.4` +
				` and predict_linear(kubelet_volume_stats_available_bytes{{{claims}}}[6h], 24 * 3600) < 0`,
			Summary:     "Volume {{ $labels.persistentvolumeclaim }} of Database {{ns}}/" + p.Name + " fills up within a day",
			Description: "At the rate of the last 6 hours, volume claim {{ $labels.persistentvolumeclaim }} is full within 24 hours.",
		},
		alert{
			Name: "DatabaseBackupFailed", Severity: "warning",
			// The newest failed backup Job started after the last success:
			// the CronJob's (kept after its Jobs are gone) or any backup
			// Job's that succeeded, the on-demand one's included.
			Expr: `max by (namespace) (kube_job_status_start_time{{{jobs}}} * on (namespace, job_name) group_left () max by (namespace, job_name) (kube_job_status_failed{{{jobs}}} > bool 0))` +
				` > on (namespace) max by (namespace) (kube_cronjob_status_last_successful_time{{{cronjob}}}` +
				` or (kube_job_status_completion_time{{{jobs}}} and on (namespace, job_name) kube_job_status_succeeded{{{jobs}}} > 0)` +
				` or label_replace(vector(0), "namespace", "{{ns}}", "", ""))`,
			Summary:     "The last backup of Database {{ns}}/" + p.Name + " failed",
			Description: "A backup Job of Database " + p.Name + " failed after its last successful backup. The Database's BackupHealthy condition says why.",
			When:        func(p Params) bool { return p.Backup },
		},
		alert{
			Name: "DatabaseBackupTooOld", Severity: "critical",
			Expr: `time() - max by (namespace) (kube_cronjob_status_last_successful_time{{{cronjob}}}) > {{backupAge}}` +
				` or (time() - max by (namespace) (kube_cronjob_created{{{cronjob}}}) > {{backupAge}} unless on (namespace) kube_cronjob_status_last_successful_time{{{cronjob}}})`,
			Summary:     "Database {{ns}}/" + p.Name + " has no recent backup",
			Description: "The last successful backup of Database " + p.Name + " is older than its schedule allows ({{backupAge}} s), or there never was one.",
			When:        func(p Params) bool { return p.Backup },
		},
		alert{
			Name: "DatabaseBackupVerifyFailed", Severity: "warning",
			Expr: `max by (namespace) (kube_job_status_start_time{{{verifyjobs}}} * on (namespace, job_name) group_left () max by (namespace, job_name) (kube_job_status_failed{{{verifyjobs}}} > bool 0))` +
				` >= on (namespace) max by (namespace) (kube_job_status_start_time{{{verifyjobs}}})`,
			Summary:     "The newest backup of Database {{ns}}/" + p.Name + " failed its restore test",
			Description: "The newest verify Job of Database " + p.Name + " failed: the backup did not restore into a scratch server, or restored other tables or row counts than were dumped. The Database's BackupVerified condition says which.",
			When:        func(p Params) bool { return p.Backup && p.Verify },
		},
	)
	out := all[:0]
	for _, a := range all {
		if a.When == nil || a.When(p) {
			out = append(out, a)
		}
	}
	return out
}

// PrometheusRule holds a Database's alerts, one group of its own: the
// rules select this Database's series, and their thresholds follow its
// backup schedule, engine and replication, so they are composed and
// deleted with it.
func PrometheusRule(p Params) *monitoringv1.PrometheusRule {
	r := strings.NewReplacer(
		"{{pods}}", `namespace="`+p.Namespace+`",pod=~"`+p.StatefulSet()+`-[0-9]+"`,
		"{{claims}}", `namespace="`+p.Namespace+`",persistentvolumeclaim=~"`+dataVolume+"-"+p.StatefulSet()+`-[0-9]+|`+p.BackupVolume()+`"`,
		"{{cronjob}}", `namespace="`+p.Namespace+`",cronjob="`+p.BackupCronJob()+`"`,
		"{{jobs}}", `namespace="`+p.Namespace+`",job_name=~"`+backupJobNames(p)+`"`,
		"{{verifyjobs}}", `namespace="`+p.Namespace+`",job_name=~"`+p.VerifyCronJob()+`-[0-9]+"`,
		"{{backupAge}}", strconv.FormatInt(int64(backupAge(p.Schedule).Seconds()), 10),
		"{{ns}}", p.Namespace,
	)
	var rules []monitoringv1.Rule
	for _, a := range alertsOf(p) {
		rule := monitoringv1.Rule{
			Alert:  a.Name,
			Expr:   intstr.FromString(r.Replace(a.Expr)),
			Labels: map[string]string{"severity": a.Severity, "database": p.Name},
			Annotations: map[string]string{
				"summary":     r.Replace(a.Summary),
				"description": r.Replace(a.Description),
				"runbook_url": runbookURL + strings.ToLower(a.Name),
			},
		}
		if a.For != "" {
			rule.For = &a.For
		}
		rules = append(rules, rule)
	}
	return &monitoringv1.PrometheusRule{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels("monitoring")},
		Spec: monitoringv1.PrometheusRuleSpec{Groups: []monitoringv1.RuleGroup{{
			Name:  "dbplane-" + p.Namespace + "-" + p.Name,
			Rules: rules,
		}}},
	}
}

// backupJobNames matches the names of a Database's backup Jobs: the
// CronJob's, <name>-backup-<minutes>, and the on-demand one's
// (BackupNowJob), <name>-backup-now-<the token's Suffix>. PromQL anchors it.
func backupJobNames(p Params) string {
	return p.BackupCronJob() + `-([0-9]+|now-[0-9a-f]{6})`
}

// backupAge is how old the newest backup may be: the longest gap between
// two runs of the schedule within a year, plus a run's deadline and the
// CronJob's start deadline. A schedule Validate accepted always parses.
func backupAge(schedule string) time.Duration {
	s, err := cron.ParseStandard(schedule)
	if err != nil {
		return 0
	}
	// A fixed start: the result must not depend on when it is computed.
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := t.AddDate(1, 0, 0)
	var gap time.Duration
	prev := s.Next(t)
	for range 10000 {
		next := s.Next(prev)
		if next.After(end) || next.IsZero() {
			break
		}
		gap = max(gap, next.Sub(prev))
		prev = next
	}
	if gap == 0 { // Once a year or less often.
		gap = 366 * 24 * time.Hour
	}
	return gap + (backupDeadline+backupStartDeadline)*time.Second
}
