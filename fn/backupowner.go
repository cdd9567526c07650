package fn

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// Backups outlive their Database. Crossplane deletes nothing itself when a
// Database is deleted: every composed object has the Database as its
// controller owner reference, and Kubernetes' garbage collector deletes an
// object once none of its owners exists any more. The backup volume gets a
// second owner, the Database's Namespace, so deleting the Database only
// removes the Database's reference from it (a Namespace may own namespaced
// objects); deleting the Namespace deletes it, with the data volumes.
const (
	// requiredNamespace names the Database's Namespace, whose UID the
	// owner reference needs.
	requiredNamespace = "namespace"
	// requiredBackupVolume names a backup volume of the Database's name
	// that exists but is not composed: left by a deleted Database of the
	// same name, it is adopted with its size and class.
	requiredBackupVolume = "backup-volume"
)

// NamespaceSelector selects the Database's Namespace.
func NamespaceSelector(p Params) *fnv1.ResourceSelector {
	return &fnv1.ResourceSelector{
		ApiVersion: "v1",
		Kind:       "Namespace",
		Match:      &fnv1.ResourceSelector_MatchName{MatchName: p.Namespace},
	}
}

// BackupVolumeSelector selects the Database's backup volume by name, so a
// volume a deleted Database of the same name left is seen before it is
// composed again.
func BackupVolumeSelector(p Params) *fnv1.ResourceSelector {
	return &fnv1.ResourceSelector{
		ApiVersion: "v1",
		Kind:       "PersistentVolumeClaim",
		Namespace:  ptr.To(p.Namespace),
		Match:      &fnv1.ResourceSelector_MatchName{MatchName: p.BackupVolume()},
	}
}

// observeBackupOwner reads the Namespace and a left backup volume, once
// Crossplane supplied them.
func observeBackupOwner(req *fnv1.RunFunctionRequest, o *Observed) error {
	rs, err := required(req, requiredNamespace)
	if err != nil {
		return errors.Wrap(err, "cannot get the Namespace")
	}
	if len(rs) > 0 {
		o.Namespace = &corev1.Namespace{}
		if err := fromObject(rs[0], o.Namespace); err != nil {
			return errors.Wrap(err, "cannot read the Namespace")
		}
	}
	rs, err = required(req, requiredBackupVolume)
	if err != nil {
		return errors.Wrap(err, "cannot get the backup volume")
	}
	if len(rs) > 0 && o.BackupVolume == nil {
		o.LeftBackupVolume = &corev1.PersistentVolumeClaim{}
		if err := fromObject(rs[0], o.LeftBackupVolume); err != nil {
			return errors.Wrap(err, "cannot read the backup volume")
		}
	}
	return nil
}

// BackupVolumeOwner is the backup volume's Namespace owner reference: from
// the Namespace Crossplane supplied, else the one the composed volume
// already has (so a call without the Namespace never drops it). Nil until
// one is known.
func (o Observed) BackupVolumeOwner(namespace string) *metav1.OwnerReference {
	if o.Namespace != nil && o.Namespace.GetUID() != "" && o.Namespace.GetName() == namespace {
		return namespaceOwner(namespace, o.Namespace.GetUID())
	}
	for _, v := range []*corev1.PersistentVolumeClaim{o.BackupVolume, o.LeftBackupVolume} {
		if v == nil {
			continue
		}
		for _, r := range v.GetOwnerReferences() {
			if r.APIVersion == "v1" && r.Kind == "Namespace" && r.Name == namespace && r.UID != "" {
				return namespaceOwner(namespace, r.UID)
			}
		}
	}
	return nil
}

// namespaceOwner is an owner reference to a Namespace: neither controller
// nor blocking, so that Crossplane can still add the Database as the
// controller.
func namespaceOwner(name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "Namespace", Name: name, UID: uid}
}
