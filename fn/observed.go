package fn

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/crossplane/function-sdk-go/errors"
	fnresource "github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// Observed is what the function reads back from the observed composed
// resources, decoded once.
type Observed struct {
	// Exists holds the composed resources that exist.
	Exists map[fnresource.Name]bool

	StatefulSet  *appsv1.StatefulSet
	CronJob      *batchv1.CronJob
	BackupVolume *corev1.PersistentVolumeClaim
	RestoreJob   *batchv1.Job

	// RestoreSource is the Database spec.restore.from names, once Crossplane
	// supplied it and its type matches.
	RestoreSource *v1.Database

	// UsersReady holds the observed SQL Users whose Ready condition is true.
	UsersReady map[fnresource.Name]bool

	// Password from the observed Secret; empty when there is no Secret yet.
	Password string
}

// Observe decodes the observed composed resources the function reads. An
// object it cannot read is an error: guessing, for example generating a new
// password for an existing server, would break the Database.
func Observe(ocds map[fnresource.Name]fnresource.ObservedComposed) (Observed, error) {
	o := Observed{Exists: map[fnresource.Name]bool{}, UsersReady: map[fnresource.Name]bool{}}
	for n, oc := range ocds {
		o.Exists[n] = true
		if oc.Resource.GetKind() == "User" && oc.Resource.GetAPIVersion() == sqlAPIVersion {
			o.UsersReady[n] = oc.Resource.GetCondition(xpv2.TypeReady).Status == corev1.ConditionTrue
		}
	}
	if oc, ok := ocds[rnStatefulSet]; ok {
		o.StatefulSet = &appsv1.StatefulSet{}
		if err := fromComposed(oc.Resource, o.StatefulSet); err != nil {
			return Observed{}, errors.Wrapf(err, "cannot read observed StatefulSet %q", oc.Resource.GetName())
		}
	}
	if oc, ok := ocds[rnBackupCronJob]; ok {
		o.CronJob = &batchv1.CronJob{}
		if err := fromComposed(oc.Resource, o.CronJob); err != nil {
			return Observed{}, errors.Wrapf(err, "cannot read observed CronJob %q", oc.Resource.GetName())
		}
	}
	if oc, ok := ocds[rnBackupVolume]; ok {
		o.BackupVolume = &corev1.PersistentVolumeClaim{}
		if err := fromComposed(oc.Resource, o.BackupVolume); err != nil {
			return Observed{}, errors.Wrapf(err, "cannot read observed PersistentVolumeClaim %q", oc.Resource.GetName())
		}
	}
	if oc, ok := ocds[rnRestoreJob]; ok {
		o.RestoreJob = &batchv1.Job{}
		if err := fromComposed(oc.Resource, o.RestoreJob); err != nil {
			return Observed{}, errors.Wrapf(err, "cannot read observed Job %q", oc.Resource.GetName())
		}
	}
	if oc, ok := ocds[rnSecret]; ok {
		s := &corev1.Secret{}
		if err := fromComposed(oc.Resource, s); err != nil {
			return Observed{}, errors.Wrapf(err, "cannot read observed Secret %q", oc.Resource.GetName())
		}
		if len(s.Data[keyPassword]) == 0 {
			return Observed{}, errors.Errorf("observed Secret %q has no data.%s: refusing to generate a new password for an existing database", s.GetName(), keyPassword)
		}
		o.Password = string(s.Data[keyPassword])
	}
	return o, nil
}

// ClaimTemplate is the observed StatefulSet's data claim template, or nil.
// A StatefulSet's claim templates are immutable: once one exists, what we
// compose must repeat it.
func (o Observed) ClaimTemplate() *corev1.PersistentVolumeClaim {
	if o.StatefulSet == nil {
		return nil
	}
	for i, t := range o.StatefulSet.Spec.VolumeClaimTemplates {
		if t.Name == dataVolume {
			return &o.StatefulSet.Spec.VolumeClaimTemplates[i]
		}
	}
	return nil
}

// BackupVolumeSize is the observed backup volume's requested size.
func (o Observed) BackupVolumeSize() *resource.Quantity {
	if o.BackupVolume == nil {
		return nil
	}
	if q, ok := o.BackupVolume.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		return &q
	}
	return nil
}

// jobSucceeded reports a Job whose Complete condition is true.
func jobSucceeded(j *batchv1.Job) bool {
	if j == nil {
		return false
	}
	c := finishedCondition(*j)
	return c != nil && c.Type == batchv1.JobComplete
}

// jobFailure is a Job's true Failed condition, if it failed for good.
func jobFailure(j *batchv1.Job) *batchv1.JobCondition {
	if j == nil {
		return nil
	}
	if c := finishedCondition(*j); c != nil && c.Type == batchv1.JobFailed {
		return c
	}
	return nil
}
