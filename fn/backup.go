package fn

import (
	_ "embed"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

//go:embed scripts/backup.sh
var backupScript string

// Backup job limits: a stuck dump is stopped after backupDeadline seconds; a
// run missed by more than backupStartDeadline seconds is skipped.
const (
	backupDeadline      = 3 * 60 * 60
	backupStartDeadline = 60 * 60
	backupHistory       = 3
)

//go:embed scripts/lock.sh
var lockScript string

// backupLockStale is the age in seconds at which the backup volume's lock
// is stale (lock.sh): longer than a backup Job runs (backupDeadline), with
// 15 minutes for its pod's grace period and clocks that differ.
const backupLockStale = backupDeadline + 15*60

// volumeLock is lock.sh, which backup.sh takes turns with and restore.sh
// waits for.
func volumeLock() string {
	return strings.ReplaceAll(lockScript, "@STALE@", strconv.Itoa(backupLockStale))
}

// BackupScript is the shell script the backup job runs for an engine.
func BackupScript(e engine) string {
	return strings.NewReplacer("@DUMP@", e.Dump, "@EXT@", e.DumpExt, "@COUNT@", e.Count, "@LOCK@", volumeLock()).Replace(backupScript)
}

// BackupCronJob takes a logical backup of the app database on the schedule,
// one run at a time, with the server's own image so that the dump tool
// matches the server.
func BackupCronJob(p Params) *batchv1.CronJob {
	e := p.Engine
	env := append(passwordEnv(p, e.ClientPasswordEnv), literalEnv(map[string]string{
		"BACKUP_DIR":     backupMount,
		"DATABASE":       appDatabase,
		"DB_HOST":        p.BackupHost(),
		"DB_PORT":        itoa(e.Port),
		"DB_USER":        e.Superuser,
		"RETENTION_DAYS": strconv.Itoa(p.RetentionDays),
	})...)

	pod := scriptPod(p, "backup", BackupScript(e), env, p.BackupVolume(), false)
	if p.S3 != nil {
		withS3(p, &pod, s3Env(p.S3, p.Namespace, p.Name))
	}
	return scriptCronJob(p, p.BackupCronJob(), "backup", p.Schedule, pod)
}

// scriptCronJob runs pod, a script pod of component, on schedule (UTC):
// never two at once, a start missed by more than backupStartDeadline
// skipped, backupHistory runs kept each way, backupDeadline per run.
func scriptCronJob(p Params, name, component, schedule string, pod corev1.PodTemplateSpec) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: p.Labels(component)},
		Spec: batchv1.CronJobSpec{
			Schedule:                   schedule,
			TimeZone:                   ptr.To("Etc/UTC"),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			StartingDeadlineSeconds:    ptr.To[int64](backupStartDeadline),
			SuccessfulJobsHistoryLimit: ptr.To[int32](backupHistory),
			FailedJobsHistoryLimit:     ptr.To[int32](backupHistory),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: p.Labels(component)},
				Spec: batchv1.JobSpec{
					BackoffLimit:          ptr.To[int32](2),
					ActiveDeadlineSeconds: ptr.To[int64](backupDeadline),
					Template:              pod,
				},
			},
		},
	}
}

// BackupVolume holds the backups. It is composed while backups are enabled
// and kept composed after they are disabled, so that no update deletes a
// backup, and it is owned by the Namespace besides the Database, so that
// deleting the Database does not delete it either (see backupowner.go).
func BackupVolume(p Params) *corev1.PersistentVolumeClaim {
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: p.BackupVolume(), Namespace: p.Namespace, Labels: p.Labels("backup")},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: p.BackupVolumeClass,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: p.BackupVolumeSize},
			},
		},
	}
	if p.BackupVolumeOwner != nil {
		pvc.OwnerReferences = []metav1.OwnerReference{*p.BackupVolumeOwner}
	}
	return pvc
}

// scriptPod is the pod of a backup or restore Job: one container, named
// for its component, running script in the server's own image (so the
// client tools match the server) with env, and the backup volume claim
// mounted at backupMount.
func scriptPod(p Params, component, script string, env []corev1.EnvVar, claim string, readOnly bool) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: p.Labels(component)},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			SecurityContext:              podSecurityContext(p),
			Containers: []corev1.Container{{
				Name:            component,
				Image:           p.Release.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"bash", "-c", script},
				Env:             append(env, literalEnv(p.Engine.ClientTLSEnv)...),
				Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("100m"), corev1.ResourceMemory: mustQuantity("128Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1"), corev1.ResourceMemory: mustQuantity("512Mi")},
				},
				VolumeMounts:    []corev1.VolumeMount{{Name: backupVolume, MountPath: backupMount, ReadOnly: readOnly}, tlsMount()},
				SecurityContext: containerSecurityContext(),
			}},
			// The CA alone: the Job verifies the server, and never holds
			// its key.
			Volumes: []corev1.Volume{{
				Name: backupVolume,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
					ClaimName: claim,
					ReadOnly:  readOnly,
				}},
			}, tlsVolumeOf(p, keyCACert)},
		},
	}
}
