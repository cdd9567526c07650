//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// volumeProvisioner is the provisioner of the harness's storage classes.
const volumeProvisioner = "volumes.e2e.dbplane.io"

// volumeWorkers is how many claims the binder provisions at once.
const volumeWorkers = 16

// A volumeBinder provisions and binds the claims of the harness's storage
// classes, as a CSI external-provisioner and kube-controller-manager's PV
// controller would on a real cluster: a PersistentVolume per claim, then the
// claim bound to it. It writes what kwok's volume/fast/pvc-provision and
// pv-bind stages write, but with many workers: kwok v0.8.0 plays resource
// stages one object at a time (PlayStageParallelism: 1, hard-coded in
// pkg/kwok/controllers/controller.go), so on a busy apiserver claim binding,
// not Crossplane or the function, set the pace of every scale run: pods
// wait unschedulable until their claim is bound. Released volumes are still
// deleted by kwok's pv-delete and pvc-delete stages.
type volumeBinder struct {
	kube  kubernetes.Interface
	queue workqueue.TypedRateLimitingInterface[string]
	pvcs  cache.Indexer
	pvs   cache.Indexer
	bound sync.Map // UIDs of the claims bound, which the cache may not show yet
}

// startVolumeBinder starts a binder that runs until ctx is done.
func startVolumeBinder(ctx context.Context, kube kubernetes.Interface) error {
	f := informers.NewSharedInformerFactory(kube, 0)
	inf := f.Core().V1().PersistentVolumeClaims().Informer()
	pvs := f.Core().V1().PersistentVolumes().Informer()
	b := &volumeBinder{
		kube:  kube,
		queue: workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]()),
		pvcs:  inf.GetIndexer(),
		pvs:   pvs.GetIndexer(),
	}
	enqueue := func(obj any) {
		if key, err := cache.MetaNamespaceKeyFunc(obj); err == nil {
			b.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		return err
	}
	f.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced, pvs.HasSynced) {
		return fmt.Errorf("cannot sync claims: %w", ctx.Err())
	}
	var wg sync.WaitGroup
	for range volumeWorkers {
		wg.Go(func() {
			for b.next(ctx) {
			}
		})
	}
	go func() {
		<-ctx.Done()
		b.queue.ShutDown()
		wg.Wait()
		f.Shutdown()
	}()
	return nil
}

// next processes one claim; false when the queue is shut down.
func (b *volumeBinder) next(ctx context.Context) bool {
	key, quit := b.queue.Get()
	if quit {
		return false
	}
	defer b.queue.Done(key)
	obj, ok, err := b.pvcs.GetByKey(key)
	if err != nil || !ok {
		b.queue.Forget(key)
		return true
	}
	if err := b.bind(ctx, obj.(*corev1.PersistentVolumeClaim)); err != nil && ctx.Err() == nil { //nolint:forcetypeassert // The informer's type.
		b.queue.AddRateLimited(key)
		return true
	}
	b.queue.Forget(key)
	return true
}

// bind provisions a volume for pvc if it is one of ours and unbound, and
// binds the two.
func (b *volumeBinder) bind(ctx context.Context, pvc *corev1.PersistentVolumeClaim) error {
	class := ""
	if pvc.Spec.StorageClassName != nil {
		class = *pvc.Spec.StorageClassName
	}
	if (class != defaultStorageClass && class != fastStorageClass) || pvc.DeletionTimestamp != nil || pvc.Status.Phase == corev1.ClaimBound {
		return nil
	}
	if _, ok := b.bound.Load(pvc.UID); ok {
		return nil
	}
	name := "pvc-" + string(pvc.UID)
	mode := corev1.PersistentVolumeFilesystem
	if pvc.Spec.VolumeMode != nil {
		mode = *pvc.Spec.VolumeMode
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{"pv.kubernetes.io/provisioned-by": volumeProvisioner},
		},
		Spec: corev1.PersistentVolumeSpec{
			AccessModes:                   pvc.Spec.AccessModes,
			Capacity:                      pvc.Spec.Resources.Requests,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              class,
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				APIVersion: "v1", Kind: "PersistentVolumeClaim",
				Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID, ResourceVersion: pvc.ResourceVersion,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/dbplane-e2e-volumes/" + name},
			},
		},
	}
	created, err := b.volume(ctx, pv)
	if err != nil {
		return err
	}
	if created.Status.Phase != corev1.VolumeBound {
		created.Status.Phase = corev1.VolumeBound
		if _, err := b.kube.CoreV1().PersistentVolumes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}

	claim := pvc.DeepCopy()
	if claim.Spec.VolumeName == "" {
		metav1.SetMetaDataAnnotation(&claim.ObjectMeta, "pv.kubernetes.io/bind-completed", "yes")
		metav1.SetMetaDataAnnotation(&claim.ObjectMeta, "pv.kubernetes.io/bound-by-controller", "yes")
		metav1.SetMetaDataAnnotation(&claim.ObjectMeta, "volume.kubernetes.io/storage-provisioner", volumeProvisioner)
		claim.Spec.VolumeName = name
		if claim, err = b.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, claim, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	claim.Status.Phase = corev1.ClaimBound
	claim.Status.AccessModes = pvc.Spec.AccessModes
	claim.Status.Capacity = pvc.Spec.Resources.Requests
	if _, err := b.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, claim, metav1.UpdateOptions{}); err != nil {
		return err
	}
	b.bound.Store(pvc.UID, true)
	return nil
}

// volume returns pv as it exists, creating it if it does not.
func (b *volumeBinder) volume(ctx context.Context, pv *corev1.PersistentVolume) (*corev1.PersistentVolume, error) {
	if obj, ok, err := b.pvs.GetByKey(pv.Name); err == nil && ok {
		return obj.(*corev1.PersistentVolume).DeepCopy(), nil //nolint:forcetypeassert // The informer's type.
	}
	created, err := b.kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if kerrors.IsAlreadyExists(err) {
		return b.kube.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
	}
	return created, err
}
