package fn

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// The BackupHealthy condition of a Database and its reasons.
const (
	ConditionBackupHealthy = "BackupHealthy"

	ReasonBackupSucceeded     = "BackupSucceeded"
	ReasonBackupFailed        = "BackupFailed"
	ReasonAwaitingFirstBackup = "AwaitingFirstBackup"
	ReasonBackupsDisabled     = "BackupsDisabled"
)

// requiredBackupJobs names the backup Jobs the function asks Crossplane for:
// a CronJob's status says when a backup last succeeded, only its Jobs say why
// one failed.
const requiredBackupJobs = "backup-jobs"

// BackupJobs selects a Database's backup Jobs.
func BackupJobs(p Params) *fnv1.ResourceSelector {
	return &fnv1.ResourceSelector{
		ApiVersion: "batch/v1",
		Kind:       "Job",
		Namespace:  ptr.To(p.Namespace),
		Match: &fnv1.ResourceSelector_MatchLabels{MatchLabels: &fnv1.MatchLabels{Labels: map[string]string{
			labelName: string(p.names.Engine), labelInstance: p.Name, labelComponent: "backup",
		}}},
	}
}

// BackupHealthOf is the BackupHealthy advice: it judges backups by the
// newest finished backup Job, else by the CronJob's last successful time. A
// running Job does not change it.
func BackupHealthOf(enabled bool, cj *batchv1.CronJob, jobs []batchv1.Job) Advice {
	if !enabled {
		return Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionUnknown, Reason: ReasonBackupsDisabled, Message: "Backups are disabled."}
	}
	var finished []batchv1.Job
	for _, j := range jobs {
		if finishedCondition(j) != nil {
			finished = append(finished, j)
		}
	}
	slices.SortFunc(finished, func(a, b batchv1.Job) int {
		return a.CreationTimestamp.Compare(b.CreationTimestamp.Time)
	})
	if len(finished) > 0 {
		j := finished[len(finished)-1]
		c := finishedCondition(j)
		if c.Type == batchv1.JobFailed {
			return Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionFalse, Reason: ReasonBackupFailed,
				Message: fmt.Sprintf("Backup Job %s failed: %s: %s", j.Name, c.Reason, c.Message)}
		}
		return Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionTrue, Reason: ReasonBackupSucceeded,
			Message: fmt.Sprintf("Backup Job %s completed at %s.", j.Name, c.LastTransitionTime.UTC().Format("2006-01-02T15:04:05Z"))}
	}
	if cj != nil && cj.Status.LastSuccessfulTime != nil {
		return Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionTrue, Reason: ReasonBackupSucceeded,
			Message: fmt.Sprintf("The last backup completed at %s.", cj.Status.LastSuccessfulTime.UTC().Format("2006-01-02T15:04:05Z"))}
	}
	return Advice{Type: ConditionBackupHealthy, Status: corev1.ConditionUnknown, Reason: ReasonAwaitingFirstBackup, Message: "No backup has completed yet."}
}

// finishedCondition is a Job's true Complete or Failed condition, if any.
func finishedCondition(j batchv1.Job) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}
