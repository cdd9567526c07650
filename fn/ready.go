package fn

import (
	"google.golang.org/protobuf/types/known/structpb"
	appsv1 "k8s.io/api/apps/v1"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// Ready reports whether an observed composed resource is ready. Readiness is
// explicit for every kind we compose; a kind not listed here is never ready.
//
// A StatefulSet is ready when it has the spec being applied now (its digest
// annotation: otherwise this very composition changes it, and the rollout
// has not begun), the controller has seen that spec, every wanted replica is
// ready and updated, and no rollout is in progress. Every
// other kind is ready once it exists: a CronJob does not wait for its first
// run, and a backup volume that binds on first use is not waited for. A
// restore Job is ready once it completed; a SQL User once the provider
// reports it Ready, that is when its login works.
func Ready(name resource.Name, o Observed, w Want) resource.Ready {
	if !o.Exists[name] {
		return resource.ReadyUnspecified
	}
	switch name {
	case rnStatefulSet:
		return readyIf(statefulSetReady(o.StatefulSet, w))
	case rnRestoreJob:
		return readyIf(jobSucceeded(o.RestoreJob))
	}
	if ready, ok := o.UsersReady[name]; ok {
		return readyIf(ready) // A User is ready when its app can log in.
	}
	switch name {
	case rnHeadlessService, rnService, rnConfigMap, rnSecret, rnBackupCronJob, rnBackupVolume, rnDisruption, rnProviderConfig:
		return resource.ReadyTrue
	}
	return resource.ReadyFalse
}

// Want is what readiness compares an observed object with.
type Want struct {
	Replicas int32
	// Digest is the desired object's spec digest annotation, if it has one.
	Digest string
}

// WantOf is what readiness wants of a desired composed object.
func WantOf(replicas int32, desired *structpb.Struct) Want {
	md := desired.GetFields()["metadata"].GetStructValue()
	return Want{
		Replicas: replicas,
		Digest:   md.GetFields()["annotations"].GetStructValue().GetFields()[annotationSpecDigest].GetStringValue(),
	}
}

func statefulSetReady(s *appsv1.StatefulSet, w Want) bool {
	// A StatefulSet an older function applied has no digest: the checks
	// below alone decide, as they did then.
	if d, ok := s.GetAnnotations()[annotationSpecDigest]; ok && d != w.Digest {
		return false
	}
	replicas := w.Replicas
	st := s.Status
	return st.ObservedGeneration >= s.GetGeneration() &&
		s.Spec.Replicas != nil && *s.Spec.Replicas == replicas &&
		st.ReadyReplicas == replicas &&
		st.UpdatedReplicas == replicas &&
		(st.UpdateRevision == "" || st.CurrentRevision == st.UpdateRevision)
}

func toProto(r resource.Ready) fnv1.Ready {
	switch r {
	case resource.ReadyTrue:
		return fnv1.Ready_READY_TRUE
	case resource.ReadyFalse:
		return fnv1.Ready_READY_FALSE
	default:
		return fnv1.Ready_READY_UNSPECIFIED
	}
}

func fromProto(r fnv1.Ready) resource.Ready {
	switch r {
	case fnv1.Ready_READY_TRUE:
		return resource.ReadyTrue
	case fnv1.Ready_READY_FALSE:
		return resource.ReadyFalse
	default:
		return resource.ReadyUnspecified
	}
}

func readyIf(b bool) resource.Ready {
	if b {
		return resource.ReadyTrue
	}
	return resource.ReadyFalse
}
