package fn

import (
	"encoding/json"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// rnAutoscaler is the HorizontalPodAutoscaler's composed resource name.
const rnAutoscaler resource.Name = "hpa"

// HorizontalPodAutoscaler scales the StatefulSet within spec.autoscaling's
// bounds, never below the primary: a scale-down removes the highest
// ordinals, so while a failover left the primary on one at or above
// minReplicas the minimum is raised to keep it; when the autoscaler wants
// fewer, the provider switches over to pod 0. Up by one replica a minute at most; down by one replica every ten
// minutes at most, after ten minutes of lower use: a removed standby's
// volume stays, but the one that replaces it later copies the primary again
// if it fell too far behind.
func HorizontalPodAutoscaler(p Params) *autoscalingv2.HorizontalPodAutoscaler {
	a := p.Autoscaling
	var metrics []autoscalingv2.MetricSpec
	for _, m := range []struct {
		name   corev1.ResourceName
		target *int32
	}{{corev1.ResourceCPU, a.TargetCPUUtilization}, {corev1.ResourceMemory, a.TargetMemoryUtilization}} {
		if m.target == nil {
			continue
		}
		metrics = append(metrics, autoscalingv2.MetricSpec{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: m.name, Target: autoscalingv2.MetricTarget{
				Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To(*m.target),
			}},
		})
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: p.StatefulSet(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "StatefulSet", Name: p.StatefulSet()},
			MinReplicas:    ptr.To(p.AutoscalingMin),
			// Never below the minimum, which keeps the primary.
			MaxReplicas: max(a.MaxReplicas, p.AutoscalingMin),
			Metrics:     metrics,
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
				ScaleUp: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr.To[int32](60),
					SelectPolicy:               ptr.To(autoscalingv2.MinChangePolicySelect),
					Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 60}},
				},
				ScaleDown: &autoscalingv2.HPAScalingRules{
					StabilizationWindowSeconds: ptr.To[int32](600),
					SelectPolicy:               ptr.To(autoscalingv2.MinChangePolicySelect),
					Policies:                   []autoscalingv2.HPAScalingPolicy{{Type: autoscalingv2.PodsScalingPolicy, Value: 1, PeriodSeconds: 600}},
				},
			},
		},
	}
}

// autoscaledReplicas is the replica count to compose with spec.autoscaling:
// what the StatefulSet has once it exists, else spec.replicas within the
// bounds. leave tells the StatefulSet to leave spec.replicas out, because
// another field manager (the autoscaler, through the scale subresource)
// owns it: an apply without the field then leaves it alone. Until then the
// function keeps applying the count it sees, so that dropping the field
// never resets the StatefulSet to one replica.
func autoscaledReplicas(a *v1.Autoscaling, spec int32, sts *appsv1.StatefulSet) (replicas int32, leave bool) {
	if sts == nil || sts.Spec.Replicas == nil {
		return min(max(spec, a.MinReplicas), a.MaxReplicas), false
	}
	return *sts.Spec.Replicas, replicasOwnedByOthers(sts.ManagedFields)
}

// replicasOwnedByOthers tells whether a field manager other than Crossplane's
// composition owns spec.replicas.
func replicasOwnedByOthers(mfs []metav1.ManagedFieldsEntry) bool {
	for _, mf := range mfs {
		if strings.HasPrefix(mf.Manager, "apiextensions.crossplane.io/") || mf.FieldsV1 == nil {
			continue
		}
		var f struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if json.Unmarshal(mf.FieldsV1.Raw, &f) != nil {
			continue
		}
		if _, ok := f.Spec["f:replicas"]; ok {
			return true
		}
	}
	return false
}
