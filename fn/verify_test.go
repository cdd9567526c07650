package fn

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/logging"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// verifyJob is a finished verify Job that started a minute and a half
// before it finished.
func verifyJob(name string, created time.Time, typ batchv1.JobConditionType, reason, msg string) batchv1.Job {
	j := job(name, created, typ, reason, msg)
	j.Status.StartTime = ptr.To(metav1.NewTime(created.Add(-30 * time.Second)))
	return j
}

func TestVerificationOf(t *testing.T) {
	done := func(at time.Time) *metav1.Time { return ptr.To(metav1.NewTime(at.Add(time.Minute))) }
	cases := map[string]struct {
		reason  string
		enabled bool
		jobs    []batchv1.Job
		want    Verification
	}{
		"Disabled": {
			reason: "Without verification there is nothing to judge.",
			want:   Verification{Advice: Advice{Type: ConditionBackupVerified, Status: corev1.ConditionUnknown, Reason: ReasonVerificationDisabled, Message: "Backups are not verified (spec.backup.verify)."}},
		},
		"NoRunYet": {
			reason:  "A verify Job still running is not judged.",
			enabled: true, jobs: []batchv1.Job{verifyJob("v-1", t0, "", "", "")},
			want: Verification{Advice: Advice{Type: ConditionBackupVerified, Status: corev1.ConditionUnknown, Reason: ReasonAwaitingFirstVerification, Message: "No verify Job has finished yet."}},
		},
		"Verified": {
			reason:  "The newest finished Job completed: True, with the Job's time as the restore time.",
			enabled: true, jobs: []batchv1.Job{verifyJob("v-2", t0.Add(time.Hour), batchv1.JobComplete, "", ""), verifyJob("v-1", t0, batchv1.JobFailed, "PodFailurePolicy", "exit 3")},
			want: Verification{At: done(t0.Add(time.Hour)), Seconds: 90, Advice: Advice{Type: ConditionBackupVerified, Status: corev1.ConditionTrue, Reason: ReasonVerified,
				Message: "Verify Job v-2 restored the newest backup into a scratch server in 90s, every table and row count as dumped."}},
		},
		"Failed": {
			reason:  "The newest finished Job failed: False with its reason and what the exit codes mean; the last verified backup stays known.",
			enabled: true, jobs: []batchv1.Job{verifyJob("v-1", t0, batchv1.JobComplete, "", ""), verifyJob("v-2", t0.Add(time.Hour), batchv1.JobFailed, "PodFailurePolicy", "Container verify for pod team-a/v-2-x failed with exit code 3 matching FailJob rule at index 0")},
			want: Verification{At: done(t0), Seconds: 90, Advice: Advice{Type: ConditionBackupVerified, Status: corev1.ConditionFalse, Reason: ReasonVerificationFailed,
				Message: "Verify Job v-2 failed: PodFailurePolicy: Container verify for pod team-a/v-2-x failed with exit code 3 matching FailJob rule at index 0 (exit code 2: the newest backup does not restore; 3: it restores but its tables or row counts differ from those dumped; its log says which)"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, VerificationOf(tc.enabled, tc.jobs)); diff != "" {
				t.Errorf("%s\nVerificationOf(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestVerifyCronJob: the verify pod runs verify.sh in the server's image,
// weekly by default in production and never in development unless asked,
// reads the backups read-only and holds no Secret of the Database, and its
// Job ends at once on the backup's own failures.
func TestVerifyCronJob(t *testing.T) {
	cases := map[string]struct {
		reason string
		spec   v1.DatabaseSpec
		want   string // schedule; empty: not composed
	}{
		"Production": {
			reason: "Production verifies weekly by default.",
			spec:   v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Replicas: ptr.To[int32](2), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true}},
			want:   "0 4 * * 0",
		},
		"Development": {
			reason: "Development does not verify by default.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true}},
		},
		"DevelopmentAsked": {
			reason: "spec.backup.verify turns it on, on its schedule.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true, Verify: &v1.BackupVerify{Enabled: ptr.To(true), Schedule: "@daily"}}},
			want:   "@daily",
		},
		"ProductionOff": {
			reason: "spec.backup.verify turns it off.",
			spec:   v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Replicas: ptr.To[int32](2), Environment: v1.Production, Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true, Verify: &v1.BackupVerify{Enabled: ptr.To(false)}}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(t, tc.spec)
			p.BackupVolumeOwner = namespaceOwner(p.Namespace, "5f0c6a1e-team-a")
			got := ""
			var cj *batchv1.CronJob
			for _, c := range Compose(p) {
				if c.Name == rnVerifyCronJob {
					cj, _ = c.Object.(*batchv1.CronJob)
					got = cj.Spec.Schedule
				}
			}
			if got != tc.want {
				t.Fatalf("%s\nCompose(...): verify CronJob schedule: want %q, got %q", tc.reason, tc.want, got)
			}
			if cj == nil {
				return
			}
			js := cj.Spec.JobTemplate.Spec
			ps := js.Template.Spec
			c := ps.Containers[0]
			for _, e := range c.Env {
				if e.ValueFrom != nil {
					t.Errorf("verify pod: %s comes from %v: it needs no Secret of the Database", e.Name, e.ValueFrom)
				}
			}
			if c.Image != p.Release.Image || c.Command[2] != VerifyScript(p.Engine) {
				t.Errorf("verify pod: want verify.sh in the server's image %s, got %s", p.Release.Image, c.Image)
			}
			if v := ps.Volumes[0].PersistentVolumeClaim; v == nil || v.ClaimName != p.BackupVolume() || !v.ReadOnly {
				t.Errorf("verify pod: want the backup volume read-only, got %+v", ps.Volumes[0])
			}
			want := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{Action: batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptr.To("verify"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{2, 3}}}}}
			if diff := cmp.Diff(want, js.PodFailurePolicy); diff != "" {
				t.Errorf("verify Job: podFailurePolicy: -want, +got:\n%s", diff)
			}
			if cj.Labels[labelComponent] != "verify" || VerifyJobs(p).GetMatchLabels().GetLabels()[labelComponent] != "verify" || BackupJobs(p).GetMatchLabels().GetLabels()[labelComponent] != "backup" {
				t.Errorf("verify Jobs are selected by their own component label, apart from backup Jobs")
			}
		})
	}
}

// TestRunFunctionVerifyFailed: a failed verify Job, supplied as a required
// resource, turns BackupVerified False with a Warning; a verified one sets
// status.lastVerifiedBackup and restoreSeconds.
func TestRunFunctionVerifyFailed(t *testing.T) {
	obs := map[string]string{"secret": secretJSON("pw"), "backup-cronjob": cronJobJSON, "backup-pvc": pvcJSON, "verify-cronjob": existsJSON}
	verified := fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-verify-1","namespace":"team-a","creationTimestamp":%q},
		"status":{"startTime":%q,"conditions":[{"type":"Complete","status":"True","lastTransitionTime":%q}]}}`, t0.Format(time.RFC3339), t0.Format(time.RFC3339), t0.Add(95*time.Second).Format(time.RFC3339))
	failed := fmt.Sprintf(`{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-verify-2","namespace":"team-a","creationTimestamp":%q},
		"status":{"conditions":[{"type":"Failed","status":"True","reason":"PodFailurePolicy","message":"exit code 2"}]}}`, t0.Add(time.Hour).Format(time.RFC3339))
	r := withRequired(withRequired(req(xr("orders", pgProd), obs), requiredNamespace, namespaceJSON), requiredVerifyJobs, verified, failed)
	rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	g := summarise(t, rsp)
	var warnings []string
	for _, r := range g.Results {
		if strings.Contains(r, "Verify Job") {
			warnings = append(warnings, r)
		}
	}
	want := []string{"SEVERITY_WARNING: Verify Job orders-verify-2 failed: PodFailurePolicy: exit code 2 (exit code 2: the newest backup does not restore; 3: it restores but its tables or row counts differ from those dumped; its log says which)"}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("RunFunction(...): a failed verification is a Warning: -want, +got:\n%s", diff)
	}
	if !strings.Contains(strings.Join(g.Conditions, " "), "BackupVerified=FALSE/VerificationFailed") {
		t.Errorf("RunFunction(...): want BackupVerified False, got %v", g.Conditions)
	}
	if g.Status["lastVerifiedBackup"] != "2026-11-22T02:01:35Z" || g.Status["restoreSeconds"] != float64(95) {
		t.Errorf("RunFunction(...): want the last verified backup and its restore time in status, got %v %v", g.Status["lastVerifiedBackup"], g.Status["restoreSeconds"])
	}
	if sel := rsp.GetRequirements().GetResources()[requiredVerifyJobs]; sel.GetKind() != "Job" || sel.GetMatchLabels().GetLabels()[labelComponent] != "verify" {
		t.Errorf("RunFunction(...): want a requirement for the verify Jobs, got %v", sel)
	}
}
