package fn

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// withBackupNow gives an observed Database the backup-now annotation.
func withBackupNow(xr, token string) string {
	return strings.Replace(xr, `"namespace":"team-a"}`, fmt.Sprintf(`"namespace":"team-a","annotations":{%q:%q}}`, AnnotationBackupNow, token), 1)
}

// backupNowJobJSON is an observed on-demand backup Job: named for token,
// with an image of its own (the template it was created with), and the
// status given.
func backupNowJobJSON(token, image, status string) string {
	return fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":%q,"namespace":"team-a","creationTimestamp":"2026-11-23T10:00:00Z",
	"labels":{"app.kubernetes.io/name":"postgresql","app.kubernetes.io/instance":"orders","app.kubernetes.io/component":"backup"}},
	"spec":{"template":{"metadata":{"labels":{"batch.kubernetes.io/job-name":"x"}},"spec":{"restartPolicy":"Never","containers":[{"name":"backup","image":%q}]}}},
	"status":%s}`, names{Name: "orders"}.BackupNowJob(token), image, status)
}

// rnNow is the composed resource name of token's on-demand Job.
func rnNow(token string) string { return string(rnBackupNowJob) + backupToken(token).Suffix() }

const (
	nowRunning   = `{"active":1}`
	nowSucceeded = `{"conditions":[{"type":"Complete","status":"True","lastTransitionTime":"2026-11-23T10:05:00Z"}]}`
	nowFailed    = `{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit","lastTransitionTime":"2026-11-23T10:05:00Z"}]}`
)

// TestRunFunctionBackupNow: the backup-now annotation composes a one-off
// Job from the CronJob's template, named for its token and kept; its result
// is the Database's status.onDemandBackup, lastBackup and BackupHealthy.
func TestRunFunctionBackupNow(t *testing.T) {
	type want struct {
		Job        string // kind/name of backup-now-job, empty: not composed
		Image      string // the Job's container image
		Token      string // the Job's token annotation
		SameSpec   bool   // the Job's spec is the CronJob's jobTemplate.spec
		Status     any    // status.onDemandBackup
		LastBackup any    // status.lastBackup
		Health     string // BackupHealthy condition
		Results    []string
	}
	ns := func(r *fnv1.RunFunctionRequest) *fnv1.RunFunctionRequest {
		return withRequired(r, requiredNamespace, namespaceJSON)
	}
	observed := func(extra ...string) map[string]string {
		m := map[string]string{"secret": secretJSON("pw"), "backup-cronjob": cronJobJSON, "backup-pvc": pvcJSON}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	job := "Job/" + names{Name: "orders"}.BackupNowJob("t1")
	image := "docker.io/library/postgres:16"
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   want
	}{
		"NoAnnotation": {
			reason: "Without the annotation only the CronJob backs up.",
			req:    ns(req(xr("orders", pgProd), observed())),
			want:   want{LastBackup: "2026-11-22T02:00:31Z", Health: "TRUE/BackupSucceeded"},
		},
		"New": {
			reason: "A new token composes a Job from the CronJob's template, named for the token; status says it is pending.",
			req:    ns(req(withBackupNow(xr("orders", pgProd), "t1"), observed())),
			want: want{Job: job, Image: image, Token: "t1", SameSpec: true, LastBackup: "2026-11-22T02:00:31Z", Health: "TRUE/BackupSucceeded",
				Status: map[string]any{"token": "t1", "job": job[4:], "result": "Pending"}},
		},
		"Running": {
			reason: "Once the Job exists it keeps the template it was created with (a Job's template is immutable), here an older image.",
			req:    ns(req(withBackupNow(xr("orders", pgProd), "t1"), observed(rnNow("t1"), backupNowJobJSON("t1", "postgres:16.0", nowRunning)))),
			want: want{Job: job, Image: "postgres:16.0", Token: "t1", LastBackup: "2026-11-22T02:00:31Z", Health: "TRUE/BackupSucceeded",
				Status: map[string]any{"token": "t1", "job": job[4:], "result": "Running"}},
		},
		"Succeeded": {
			reason: "A finished Job stays composed, so its result stays visible; it is the last backup and BackupHealthy names it.",
			req: withRequired(ns(req(withBackupNow(xr("orders", pgProd), "t1"), observed(rnNow("t1"), backupNowJobJSON("t1", "postgres:16.0", nowSucceeded)))),
				requiredBackupJobs, backupNowJobJSON("t1", "postgres:16.0", nowSucceeded)),
			want: want{Job: job, Image: "postgres:16.0", Token: "t1", LastBackup: "2026-11-23T10:05:00Z", Health: "TRUE/BackupSucceeded",
				Status: map[string]any{"token": "t1", "job": job[4:], "result": "Succeeded", "completionTime": "2026-11-23T10:05:00Z"}},
		},
		"Failed": {
			reason: "A failed on-demand backup turns BackupHealthy False, with a Warning, like a scheduled one, and says why in status.",
			req: withRequired(ns(req(withBackupNow(xr("orders", pgProd), "t1"), observed(rnNow("t1"), backupNowJobJSON("t1", "postgres:16.0", nowFailed)))),
				requiredBackupJobs, backupNowJobJSON("t1", "postgres:16.0", nowFailed)),
			want: want{Job: job, Image: "postgres:16.0", Token: "t1", LastBackup: "2026-11-22T02:00:31Z", Health: "FALSE/BackupFailed",
				Status:  map[string]any{"token": "t1", "job": job[4:], "result": "Failed", "completionTime": "2026-11-23T10:05:00Z", "message": "BackoffLimitExceeded: Job has reached the specified backoff limit"},
				Results: []string{"SEVERITY_WARNING: Backup Job " + job[4:] + " failed: BackoffLimitExceeded: Job has reached the specified backoff limit"}},
		},
		"NewToken": {
			reason: "A new token replaces the last Job with a new one, from the CronJob's current template.",
			req:    ns(req(withBackupNow(xr("orders", pgProd), "t2"), observed(rnNow("t1"), backupNowJobJSON("t1", "postgres:16.0", nowSucceeded)))),
			want: want{Job: "Job/" + names{Name: "orders"}.BackupNowJob("t2"), Image: image, Token: "t2", SameSpec: true, LastBackup: "2026-11-23T10:05:00Z", Health: "TRUE/BackupSucceeded",
				Status: map[string]any{"token": "t2", "job": names{Name: "orders"}.BackupNowJob("t2"), "result": "Pending"}},
		},
		"BackupsDisabled": {
			reason: "Without backups the annotation asks for nothing.",
			req:    ns(req(withBackupNow(xr("orders", pgDev), "t1"), map[string]string{"secret": secretJSON("pw")})),
			want:   want{Health: "UNKNOWN/BackupsDisabled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger(), WithoutCache()).RunFunction(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			g := summarise(t, rsp)
			w := want{Status: g.Status["onDemandBackup"], LastBackup: g.Status["lastBackup"], Results: g.Results}
			var nows []string
			for n, c := range g.Composed {
				if strings.HasPrefix(n, string(rnBackupNowJob)) {
					nows = append(nows, n)
					w.Job = c
				}
			}
			// One composed resource per token: Crossplane keeps an
			// object's name, so only a new resource name makes a new Job,
			// and the last token's, no longer desired, is deleted.
			if len(nows) > 1 || (len(nows) == 1 && tc.want.Token != "" && nows[0] != rnNow(tc.want.Token)) {
				t.Errorf("%s\nwant the on-demand Job composed as %q alone, got %v", tc.reason, rnNow(tc.want.Token), nows)
			}
			for _, c := range g.Conditions {
				if s, ok := strings.CutPrefix(c, ConditionBackupHealthy+"="); ok {
					w.Health = s
				}
			}
			if r := rsp.GetDesired().GetResources()[rnNow(tc.want.Token)]; r != nil {
				j := r.GetResource().AsMap()
				md, _ := j["metadata"].(map[string]any)
				ann, _ := md["annotations"].(map[string]any)
				w.Token, _ = ann[annotationBackupToken].(string)
				spec, _ := j["spec"].(map[string]any)
				cs, _ := spec["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)
				w.Image, _ = cs[0].(map[string]any)["image"].(string)
				cj := batchv1.CronJob{}
				if err := fromObject(rsp.GetDesired().GetResources()[string(rnBackupCronJob)].GetResource().AsMap(), &cj); err != nil {
					t.Fatal(err)
				}
				nj := batchv1.Job{}
				if err := fromObject(j, &nj); err != nil {
					t.Fatal(err)
				}
				w.SameSpec = cmp.Equal(cj.Spec.JobTemplate.Spec, nj.Spec)
				if lbl, _ := md["labels"].(map[string]any); lbl[labelComponent] != "backup" {
					t.Errorf("%s\nthe on-demand Job must carry the backup Jobs' labels, which BackupHealthy selects: got %v", tc.reason, lbl)
				}
			}
			if diff := cmp.Diff(tc.want, w); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestBackupLockStale: no Job that runs backup.sh outlives its lock on the
// backup volume (lock.sh): each ends, at its deadline and the pod's grace
// period, before the lock is stale, so that a run takes a lock over only
// from a run that is gone.
func TestBackupLockStale(t *testing.T) {
	p := params(t, everySpec()["postgresql-18-production-metrics=true"])
	p.BackupNow = "2026-01-01"
	cases := map[string]struct {
		reason string
		job    batchv1.JobSpec
	}{
		"Scheduled": {reason: "The CronJob's Jobs take the lock.", job: BackupCronJob(p).Spec.JobTemplate.Spec},
		"OnDemand":  {reason: "The on-demand Job takes the lock.", job: BackupNowJob(p, backupToken(p.BackupNow)).Spec},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
			if g := tc.job.Template.Spec.TerminationGracePeriodSeconds; g != nil {
				grace = *g
			}
			if d := tc.job.ActiveDeadlineSeconds; d == nil || *d+grace >= backupLockStale {
				t.Errorf("%s\nactiveDeadlineSeconds %v and a %ds grace period: want a Job that ends before its lock is stale (%ds)", tc.reason, d, grace, backupLockStale)
			}
			if script := tc.job.Template.Spec.Containers[0].Command[2]; !strings.Contains(script, "\nlock_stale="+strconv.Itoa(backupLockStale)+"\n") {
				t.Errorf("%s\nthe Job's script does not take the lock with the bound %ds", tc.reason, backupLockStale)
			}
		})
	}
}
