package fn

import (
	"crypto/sha256"
	"encoding/hex"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// AnnotationBackupNow on a Database asks for a backup now: any value is a
// token, and a new token is a new backup. The function composes a one-off
// Job from the backup CronJob's template, named after the token, and keeps
// it, so that its result stays visible until the next token replaces it.
const AnnotationBackupNow = "database.example.com/backup-now"

// annotationBackupToken on an on-demand backup Job is the token it ran for.
const annotationBackupToken = "database.example.com/backup-token"

// rnBackupNowJob, followed by the token's digest, is the composed resource
// name of the on-demand backup Job. Crossplane keeps a composed resource's
// object name once it exists, so the Job of a new token must be a new
// composed resource: the last token's is no longer desired and deleted.
const rnBackupNowJob resource.Name = "backup-now-"

// A backupToken is the backup-now annotation's value, the member of the
// on-demand backup family.
type backupToken string

// Suffix is the token's digest: 6 hex digits of its SHA-256.
func (t backupToken) Suffix() string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:3])
}

// BackupNowJob is the Job name for a token: stable per token, within a
// Job's 63 characters for the longest Database name, and never a name the
// CronJob gives its Jobs (<name>-backup-<minutes>).
func (n names) BackupNowJob(token string) string {
	return n.Name + "-backup-now-" + backupToken(token).Suffix()
}

// backupTokens is the family's one member while a backup is asked for.
func backupTokens(p Params) []backupToken {
	if !p.ComposeBackupNow() {
		return nil
	}
	return []backupToken{backupToken(p.BackupNow)}
}

// ComposeBackupNow tells whether the on-demand backup Job is composed:
// while the annotation holds a token and backups run.
func (p Params) ComposeBackupNow() bool { return p.BackupNow != "" && p.ComposeBackupCronJob() }

// BackupNowJob runs a backup now: the backup CronJob's Job template (the
// same script, destination and labels, so BackupHealthy and status read it
// like a scheduled run). A Job's pod template is immutable: once the Job
// exists, it keeps the template it was created with (BackupNowPod), so
// that a later change of the CronJob (a new image) does not fail the apply.
func BackupNowJob(p Params, _ backupToken) *batchv1.Job {
	t := BackupCronJob(p).Spec.JobTemplate
	if p.BackupNowPod != nil {
		t.Spec.Template = *p.BackupNowPod
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.BackupNowJob(p.BackupNow), Namespace: p.Namespace, Labels: t.Labels,
			Annotations: map[string]string{annotationBackupToken: p.BackupNow},
		},
		Spec: t.Spec,
	}
}

// backupNowPod is the pod template of the observed on-demand Job when it is
// the one for token.
func backupNowPod(o Observed, n names, token string) *corev1.PodTemplateSpec {
	j := o.BackupNowJob
	if j == nil || token == "" || j.Name != n.BackupNowJob(token) {
		return nil
	}
	return j.Spec.Template.DeepCopy()
}

// BackupNowStatus is the on-demand backup's status: its token, its Job and
// how it went.
func BackupNowStatus(p Params, o Observed) *v1.OnDemandBackup {
	if !p.ComposeBackupNow() {
		return nil
	}
	s := &v1.OnDemandBackup{Token: p.BackupNow, Job: p.BackupNowJob(p.BackupNow), Result: v1.BackupPending}
	j := o.BackupNowJob
	if j == nil || j.Name != s.Job {
		return s
	}
	switch c := finishedCondition(*j); {
	case c == nil && j.Status.Active > 0:
		s.Result = v1.BackupRunning
	case c == nil:
	case c.Type == batchv1.JobComplete:
		s.Result = v1.BackupSucceeded
		s.CompletionTime = ptrTime(c.LastTransitionTime)
	default:
		s.Result = v1.BackupFailed
		s.Message = c.Reason + ": " + c.Message
		s.CompletionTime = ptrTime(c.LastTransitionTime)
	}
	return s
}

func ptrTime(t metav1.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
