package fn

import (
	"google.golang.org/protobuf/types/known/structpb"
	appsv1 "k8s.io/api/apps/v1"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// Readiness tells whether an observed composed resource is ready, given what
// is being applied. Every row of Kinds has one; it is pure and called only
// for resources that exist.
type Readiness func(o Observed, n resource.Name, w Want) bool

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

// ReadyOf is the readiness of composed resource n of row k: unspecified until
// it exists, then what the row's Readiness says. A row without one is never
// ready (a test fails on such a row).
func (k Kind) ReadyOf(o Observed, n resource.Name, w Want) resource.Ready {
	if !o.Exists[n] {
		return resource.ReadyUnspecified
	}
	return readyIf(k.Ready != nil && k.Ready(o, n, w))
}

// exists: a Service, ConfigMap, Secret, PodDisruptionBudget or
// ProviderConfig is ready once it exists, a CronJob does not wait for its
// first run, and a backup volume that binds on first use is not waited for.
func exists(Observed, resource.Name, Want) bool { return true }

// rolledOut: a StatefulSet is ready when it has the spec being applied now
// (its digest annotation: otherwise this very composition changes it, and
// the rollout has not begun), the controller has seen that spec, every
// wanted replica is ready and updated, and no rollout is in progress.
func rolledOut(o Observed, _ resource.Name, w Want) bool {
	s := o.StatefulSet
	if s == nil {
		return false
	}
	// A StatefulSet an older function applied has no digest: the checks
	// below alone decide, as they did then.
	if d, ok := s.GetAnnotations()[annotationSpecDigest]; ok && d != w.Digest {
		return false
	}
	st := s.Status
	return st.ObservedGeneration >= s.GetGeneration() &&
		s.Spec.Replicas != nil && *s.Spec.Replicas == w.Replicas &&
		st.ReadyReplicas == w.Replicas &&
		st.UpdatedReplicas == w.Replicas &&
		// OnDelete never moves currentRevision: every replica updated
		// is all there is.
		(s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType || st.UpdateRevision == "" || st.CurrentRevision == st.UpdateRevision)
}

// restoreCompleted: a restore Job is ready once it completed.
func restoreCompleted(o Observed, _ resource.Name, _ Want) bool { return jobSucceeded(o.RestoreJob) }

// readyCondition: a SQL User is ready when the provider reports it Ready,
// that is when its login works.
func readyCondition(o Observed, n resource.Name, _ Want) bool { return o.ReadyCondition[n] }

// SetDesired adds the composed resources to the response's desired state,
// beside those of earlier steps, each with its row's readiness unless an
// earlier step decided it. It returns the readiness of each.
func SetDesired(rsp *fnv1.RunFunctionResponse, ds []Desired, o Observed) map[resource.Name]resource.Ready {
	if rsp.GetDesired() == nil {
		rsp.Desired = &fnv1.State{}
	}
	if rsp.GetDesired().GetResources() == nil {
		rsp.Desired.Resources = make(map[string]*fnv1.Resource, len(ds))
	}
	ready := make(map[resource.Name]resource.Ready, len(ds))
	for _, d := range ds {
		r := d.Kind.ReadyOf(o, d.Name, d.Want)
		if prev, ok := rsp.Desired.Resources[string(d.Name)]; ok && prev.GetReady() != fnv1.Ready_READY_UNSPECIFIED {
			r = fromProto(prev.GetReady())
		}
		rsp.Desired.Resources[string(d.Name)] = &fnv1.Resource{Resource: d.Struct, Ready: toProto(r)}
		ready[d.Name] = r
	}
	return ready
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

func readyIf(b bool) resource.Ready {
	if b {
		return resource.ReadyTrue
	}
	return resource.ReadyFalse
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
