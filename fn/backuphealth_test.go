package fn

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

var t0 = time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

func job(name string, created time.Time, typ batchv1.JobConditionType, reason, msg string) batchv1.Job {
	j := batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(created)}}
	if typ != "" {
		j.Status.Conditions = []batchv1.JobCondition{{Type: typ, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: metav1.NewTime(created.Add(time.Minute))}}
	}
	return j
}

func TestBackupHealthOf(t *testing.T) {
	succeeded := &batchv1.CronJob{Status: batchv1.CronJobStatus{LastSuccessfulTime: &metav1.Time{Time: t0}}}
	cases := map[string]struct {
		reason  string
		enabled bool
		cj      *batchv1.CronJob
		jobs    []batchv1.Job
		want    Advice
	}{
		"Disabled": {
			reason: "Without backups there is nothing to judge.",
			want:   Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionUnknown, Reason: ReasonBackupsDisabled, Message: "Backups are disabled."},
		},
		"NoRunYet": {
			reason:  "A new CronJob has not run: not a failure.",
			enabled: true, cj: &batchv1.CronJob{},
			want: Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionUnknown, Reason: ReasonAwaitingFirstBackup, Message: "No backup has completed yet."},
		},
		"OnlyRunning": {
			reason:  "A running first backup is not judged yet.",
			enabled: true, cj: &batchv1.CronJob{}, jobs: []batchv1.Job{job("b-1", t0, "", "", "")},
			want: Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionUnknown, Reason: ReasonAwaitingFirstBackup, Message: "No backup has completed yet."},
		},
		"LastFailed": {
			reason:  "The newest finished Job failed: the condition is False with the Job's reason, even though an older one succeeded.",
			enabled: true, cj: succeeded,
			jobs: []batchv1.Job{
				job("b-1", t0, batchv1.JobComplete, "CompletionsReached", ""),
				job("b-2", t0.Add(24*time.Hour), batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
				job("b-3", t0.Add(48*time.Hour), "", "", ""),
			},
			want: Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionFalse, Reason: ReasonBackupFailed, Message: "Backup Job b-2 failed: BackoffLimitExceeded: Job has reached the specified backoff limit"},
		},
		"RecoveredAfterFailure": {
			reason:  "A success after a failure makes backups healthy again.",
			enabled: true, cj: succeeded,
			jobs: []batchv1.Job{
				job("b-2", t0, batchv1.JobFailed, "DeadlineExceeded", "Job was active longer than specified deadline"),
				job("b-3", t0.Add(24*time.Hour), batchv1.JobComplete, "CompletionsReached", ""),
			},
			want: Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionTrue, Reason: ReasonBackupSucceeded, Message: "Backup Job b-3 completed at 2026-11-23T02:01:00Z."},
		},
		"JobsNotYetRequired": {
			reason:  "Before Crossplane supplies the Jobs, the CronJob's last success counts.",
			enabled: true, cj: succeeded,
			want: Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionTrue, Reason: ReasonBackupSucceeded, Message: "The last backup completed at 2026-11-22T02:00:00Z."},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := BackupHealthOf(tc.enabled, tc.cj, tc.jobs)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nBackupHealthOf(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRunFunctionBackupFailed shows a failed backup Job, supplied by
// Crossplane as a required resource, turns BackupHealthy False on the XR and
// is a Warning, since the XR did not say so yet.
func TestRunFunctionBackupFailed(t *testing.T) {
	r := req(xr("orders", pgProd), map[string]string{"secret": secretJSON("pw"), "backup-cronjob": cronJobJSON})
	r.RequiredResources = map[string]*fnv1.Resources{requiredBackupJobs: {Items: []*fnv1.Resource{{
		Resource: resource.MustStructJSON(fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-backup-29400","namespace":"team-a","creationTimestamp":%q},
		"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}`, t0.Add(48*time.Hour).Format(time.RFC3339))),
	}}}}
	rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range rsp.GetConditions() {
		if c.GetType() != ConditionBackupHealthy {
			continue
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %s", c.GetType(), c.GetStatus(), c.GetReason(), c.GetMessage(), c.GetTarget()))
	}
	want := []string{"BackupHealthy STATUS_CONDITION_FALSE BackupFailed Backup Job orders-backup-29400 failed: BackoffLimitExceeded: Job has reached the specified backoff limit TARGET_COMPOSITE_AND_CLAIM"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RunFunction(...): -want, +got:\n%s", diff)
	}
	var results []string
	for _, r := range rsp.GetResults() {
		results = append(results, r.GetSeverity().String()+": "+r.GetMessage())
	}
	if diff := cmp.Diff([]string{"SEVERITY_WARNING: Backup Job orders-backup-29400 failed: BackoffLimitExceeded: Job has reached the specified backoff limit"}, results); diff != "" {
		t.Errorf("RunFunction(...): a failed backup is also a Warning: -want, +got results:\n%s", diff)
	}
	sel := rsp.GetRequirements().GetResources()[requiredBackupJobs]
	if sel.GetKind() != "Job" || sel.GetNamespace() != "team-a" || sel.GetMatchLabels().GetLabels()[labelInstance] != "orders" {
		t.Errorf("RunFunction(...): want a requirement for the Database's backup Jobs, got %v", sel)
	}
}
