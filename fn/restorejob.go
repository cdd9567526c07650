package fn

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// requiredRestoreSource names the Database spec.restore.from points at.
const requiredRestoreSource = "restore-source"

// restoreDeadline stops a stuck restore after three hours.
const restoreDeadline = 3 * 60 * 60

// RestoreJob loads the chosen backup from the source Database's backup
// volume into the first replica, through the headless Service: the client
// Service, which apps use, does not exist until this Job completed. The
// script verifies the backup's checksum first and refuses a database that
// already has tables, so a Job that runs again never loads twice.
func RestoreJob(p Params) *batchv1.Job {
	e := p.Engine
	env := append(passwordEnv(p, e.ClientPasswordEnv), literalEnv(map[string]string{
		"BACKUP_DIR":   backupMount,
		"DATABASE":     appDatabase,
		"DB_HOST":      p.FirstPodHost(),
		"DB_PORT":      itoa(e.Port),
		"DB_USER":      e.Superuser,
		"RESTORE_FROM": p.Restore.Backup,
	})...)
	pod := scriptPod(p, "restore", RestoreScript(e), env, names{Name: p.RestoreSource()}.BackupVolume(), true)
	if p.S3 != nil {
		// From the source's prefix in the bucket, downloaded into an
		// emptyDir in place of the source's backup volume.
		pod.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		pod.Spec.Containers[0].VolumeMounts[0].ReadOnly = false
		withS3(p, &pod, append(s3Env(p.S3, p.Namespace, p.RestoreSource()), corev1.EnvVar{Name: "RESTORE_SCRATCH", Value: backupMount}))
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: p.RestoreJob(), Namespace: p.Namespace, Labels: p.Labels("restore")},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](3),
			ActiveDeadlineSeconds: ptr.To[int64](restoreDeadline),
			Template:              pod,
		},
	}
}

// RestoreSource is the name the backups to restore were taken under:
// spec.restore.from's or fromBackup's.
func (p Params) RestoreSource() string {
	if r := p.Restore; r != nil && r.FromBackup != nil {
		return r.FromBackup.Database
	}
	if p.Restore != nil {
		return p.Restore.From
	}
	return ""
}

// RestoreSourceSelector selects the Database (or, for a claim, the
// DatabaseClaim) spec.restore.from names, in the same namespace.
func RestoreSourceSelector(p Params) *fnv1.ResourceSelector {
	return &fnv1.ResourceSelector{
		ApiVersion: v1.GroupVersionKind.GroupVersion().String(),
		Kind:       orString(p.RestoreKind, v1.Kind),
		Namespace:  ptr.To(p.Namespace),
		Match:      &fnv1.ResourceSelector_MatchName{MatchName: p.Restore.From},
	}
}

// Requirements are the resources the function asks Crossplane for.
func Requirements(p Params) map[string]*fnv1.ResourceSelector {
	rs := map[string]*fnv1.ResourceSelector{}
	if p.Backup {
		rs[requiredBackupJobs] = BackupJobs(p)
	}
	if p.Backup && p.Verify {
		rs[requiredVerifyJobs] = VerifyJobs(p)
	}
	if p.Backup || p.KeepBackupVolume {
		rs[requiredNamespace] = NamespaceSelector(p)
		rs[requiredBackupVolume] = BackupVolumeSelector(p)
	}
	if p.Restore != nil && p.Restore.From != "" {
		rs[requiredRestoreSource] = RestoreSourceSelector(p)
	}
	if p.Issuer != nil {
		rs[requiredCertManager] = certManagerCRDSelector()
	}
	if p.Metrics {
		for key, crd := range operatorCRDs {
			rs[key] = operatorCRDSelector(crd)
		}
	}
	return rs
}
