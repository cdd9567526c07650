package fn

import (
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/resource/composed"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// scheme knows every kind the function composes.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(appsv1.AddToScheme(s))
	utilruntime.Must(autoscalingv2.AddToScheme(s))
	utilruntime.Must(batchv1.AddToScheme(s))
	utilruntime.Must(corev1.AddToScheme(s))
	utilruntime.Must(networkingv1.AddToScheme(s))
	utilruntime.Must(policyv1.AddToScheme(s))
	utilruntime.Must(sqlv1alpha1.AddToScheme(s))
	utilruntime.Must(monitoringv1.AddToScheme(s))
	s.AddKnownTypeWithName(certManagerGroupVersion.WithKind("Certificate"), &CertificateObject{})
	return s
}()

// ToComposed is the one place typed objects become composed resources. What
// it returns is Crossplane's server-side apply intent, so it must hold only
// fields we have an opinion on: it drops status, nulls (creationTimestamp)
// and empty objects (a claim template's status). Builders use no field whose
// empty object means something, such as emptyDir: {}.
func ToComposed(o runtime.Object) (*composed.Unstructured, error) {
	gvks, _, err := scheme.ObjectKinds(o)
	if err != nil {
		return nil, errors.Wrap(err, "cannot determine kind")
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil, errors.Wrapf(err, "cannot convert %s", gvks[0].Kind)
	}
	delete(m, "status")
	prune(m)
	u := unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvks[0])
	return &composed.Unstructured{Unstructured: u}, nil
}

// prune removes nulls and empty objects, depth first.
func prune(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			prune(t)
			if len(t) == 0 {
				delete(m, k)
			}
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					prune(em)
				}
			}
		}
	}
}

// fromObject decodes unstructured content into a typed object.
func fromObject(u map[string]any, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u, into)
}
