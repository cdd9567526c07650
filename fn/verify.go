package fn

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// rnVerifyCronJob is the composed resource name of the verify CronJob.
const rnVerifyCronJob resource.Name = "verify-cronjob"

// requiredVerifyJobs names the verify Jobs the function asks Crossplane
// for: their conditions and times are the BackupVerified condition and the
// restore time.
const requiredVerifyJobs = "verify-jobs"

// The BackupVerified condition and its reasons.
const (
	ConditionBackupVerified = "BackupVerified"

	ReasonVerified                  = "Verified"
	ReasonVerificationFailed        = "VerificationFailed"
	ReasonAwaitingFirstVerification = "AwaitingFirstVerification"
	ReasonVerificationDisabled      = "VerificationDisabled"
)

// Exit codes of verify.sh the Job ends on at once: the outcome is the
// backup's, another try would give the same. Any other failure (the scratch
// server did not start, the bucket was unreachable) is retried.
const (
	exitNotRestorable = 2
	exitDiffers       = 3
)

const (
	scratchVolume = "scratch"
	scratchMount  = "/scratch"
	verifyDir     = "/verify"
)

// VerifyCronJob restores the newest backup into a scratch server in its own
// pod on VerifySchedule and compares what it holds with the manifest
// recorded at dump time (verify.sh). It never connects to the Database's
// servers; it reads the backup volume read-only, or the bucket.
func VerifyCronJob(p Params) *batchv1.CronJob {
	e := p.Engine
	env := literalEnv(map[string]string{
		"BACKUP_DIR": backupMount,
		"DATABASE":   appDatabase,
		"DB_USER":    e.Superuser,
		"SCRATCH":    scratchMount,
	})
	pod := scriptPod(p, "verify", VerifyScript(e), env, p.BackupVolume(), true)
	if p.S3 != nil {
		withS3(p, &pod, s3Env(p.S3, p.Namespace, p.Name))
	}
	c := &pod.Spec.Containers[0]
	// The scratch server needs the memory of a small server.
	c.Resources.Limits[corev1.ResourceMemory] = mustQuantity("1Gi")
	c.Resources.Requests[corev1.ResourceMemory] = mustQuantity("256Mi")
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: scratchVolume, MountPath: scratchMount})
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: scratchVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	cj := scriptCronJob(p, p.VerifyCronJob(), "verify", p.VerifySchedule, pod)
	// A backup that does not restore, or differs, fails the Job at once:
	// retrying cannot change it.
	cj.Spec.JobTemplate.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action: batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("verify"),
			Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
			Values:        []int32{exitNotRestorable, exitDiffers},
		},
	}}}
	return cj
}

// VerifyCronJob is the verify CronJob's name.
func (n names) VerifyCronJob() string { return n.Name + "-verify" }

// ComposeVerify tells whether the verify CronJob is composed: with
// backups, and verification on.
func (p Params) ComposeVerify() bool { return p.Verify && p.ComposeBackupCronJob() }

// VerifyJobs selects a Database's verify Jobs.
func VerifyJobs(p Params) *fnv1.ResourceSelector {
	s := BackupJobs(p)
	s.GetMatchLabels().Labels[labelComponent] = "verify"
	return s
}

// A Verification is what the newest finished verify Job says.
type Verification struct {
	Advice
	// At is when the backup last verified, Seconds how long that Job ran.
	At      *metav1.Time
	Seconds int64
}

// VerificationOf is the BackupVerified advice and the last verified
// backup's time and restore time, from the newest finished verify Job.
func VerificationOf(enabled bool, jobs []batchv1.Job) Verification {
	if !enabled {
		return Verification{Advice: Advice{Type: ConditionBackupVerified, Status: corev1.ConditionUnknown, Reason: ReasonVerificationDisabled, Message: "Backups are not verified (spec.backup.verify)."}}
	}
	var finished []batchv1.Job
	for _, j := range jobs {
		if finishedCondition(j) != nil {
			finished = append(finished, j)
		}
	}
	slices.SortFunc(finished, func(a, b batchv1.Job) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	v := Verification{Advice: Advice{Type: ConditionBackupVerified, Status: corev1.ConditionUnknown, Reason: ReasonAwaitingFirstVerification, Message: "No verify Job has finished yet."}}
	for i := len(finished) - 1; i >= 0; i-- {
		j := finished[i]
		c := finishedCondition(j)
		if c.Type != batchv1.JobComplete {
			continue
		}
		v.At = ptr.To(c.LastTransitionTime)
		if s := j.Status.StartTime; s != nil && !c.LastTransitionTime.IsZero() {
			v.Seconds = int64(c.LastTransitionTime.Sub(s.Time).Seconds())
		}
		break
	}
	if len(finished) == 0 {
		return v
	}
	j := finished[len(finished)-1]
	if c := finishedCondition(j); c.Type == batchv1.JobFailed {
		v.Advice = Advice{Type: ConditionBackupVerified, Status: corev1.ConditionFalse, Reason: ReasonVerificationFailed,
			Message: fmt.Sprintf("Verify Job %s failed: %s: %s (exit code %d: the newest backup does not restore; %d: it restores but its tables or row counts differ from those dumped; its log says which)",
				j.Name, c.Reason, c.Message, exitNotRestorable, exitDiffers)}
		return v
	}
	v.Advice = Advice{Type: ConditionBackupVerified, Status: corev1.ConditionTrue, Reason: ReasonVerified,
		Message: fmt.Sprintf("Verify Job %s restored the newest backup into a scratch server in %ds, every table and row count as dumped.", j.Name, v.Seconds)}
	return v
}
