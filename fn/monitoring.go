package fn

import (
	"slices"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// What a Database with metrics composes for the Prometheus Operator, when
// its CRDs exist in the cluster.
const (
	rnPodMonitor     resource.Name = "podmonitor"
	rnPrometheusRule resource.Name = "prometheusrule"
)

// The Prometheus Operator's CRDs the function asks Crossplane for, by
// required resource name. Each names the CRD, so Crossplane answers with it
// or with nothing.
var operatorCRDs = map[string]string{
	"crd-podmonitors":     "podmonitors." + monitoringv1.SchemeGroupVersion.Group,
	"crd-prometheusrules": "prometheusrules." + monitoringv1.SchemeGroupVersion.Group,
}

// The Monitored condition: whether a Database with metrics is scraped and
// alerted on by the Prometheus Operator.
const (
	ConditionMonitored             = "Monitored"
	ReasonPrometheusOperator       = "PrometheusOperator"
	ReasonPrometheusOperatorAbsent = "PrometheusOperatorMissing"
	ReasonCheckingOperator         = "CheckingPrometheusOperator"
	ReasonNoMonitoringLogin        = "NoMonitoringLogin"
)

// operatorCRDSelector asks for one CRD by name; CRDs are cluster scoped.
func operatorCRDSelector(name string) *fnv1.ResourceSelector {
	return &fnv1.ResourceSelector{
		ApiVersion: "apiextensions.k8s.io/v1",
		Kind:       "CustomResourceDefinition",
		Match:      &fnv1.ResourceSelector_MatchName{MatchName: name},
	}
}

// observeOperatorCRDs records which of the Prometheus Operator's CRDs
// Crossplane found. A requirement Crossplane did not answer yet (the first
// call of a reconcile) is left out: unknown, not missing.
func observeOperatorCRDs(req *fnv1.RunFunctionRequest, o *Observed) {
	for key, crd := range operatorCRDs {
		rs, ok := answered(req, key)
		if !ok {
			continue
		}
		if o.OperatorCRDs == nil {
			o.OperatorCRDs = map[string]bool{}
		}
		o.OperatorCRDs[crd] = len(rs.GetItems()) > 0
	}
}

// resolveMonitoring decides what is composed for the Prometheus Operator:
// a PodMonitor and a PrometheusRule when both CRDs exist (one is no use
// without the other's scrape), nothing while that is unknown or when one is
// missing.
func (p *Params) resolveMonitoring(o Observed, wanted bool) {
	if !p.Metrics {
		p.MonitoringUnavailable = ""
		if wanted {
			p.MonitoringUnavailable = "spec.monitoring.metrics: the exporter logs in as a monitoring login, which only the SQL provider makes; the Composition's input turns it off (sqlUsers: false)"
		}
		return
	}
	var missing []string
	for _, crd := range slices.Sorted(func(yield func(string) bool) {
		for _, c := range operatorCRDs {
			if !yield(c) {
				return
			}
		}
	}) {
		found, known := o.OperatorCRDs[crd]
		if !known {
			p.OperatorUnknown = true
			return
		}
		if !found {
			missing = append(missing, crd)
		}
	}
	if len(missing) > 0 {
		p.MonitoringUnavailable = "the Prometheus Operator's CRDs " + strings.Join(missing, ", ") +
			" are not installed: no PodMonitor or PrometheusRule is composed; the pods keep their prometheus.io/scrape annotations"
		return
	}
	p.Operator = true
}

// monitored is the Monitored advice, for Databases that ask for metrics.
func monitored(p Params) Advice {
	switch {
	case p.Operator:
		return Advice{ConditionMonitored, corev1.ConditionTrue, ReasonPrometheusOperator, ""}
	case p.OperatorUnknown:
		return Advice{ConditionMonitored, corev1.ConditionUnknown, ReasonCheckingOperator, "asking Crossplane for the Prometheus Operator's CRDs"}
	case p.Metrics:
		return Advice{ConditionMonitored, corev1.ConditionFalse, ReasonPrometheusOperatorAbsent, p.MonitoringUnavailable}
	default:
		return Advice{ConditionMonitored, corev1.ConditionFalse, ReasonNoMonitoringLogin, p.MonitoringUnavailable}
	}
}

// PodMonitor has the Prometheus Operator scrape every server pod's
// exporter, ready or not: a pod that is not ready is what an alert is for.
// Its target labels (namespace, pod) are what the PrometheusRule selects.
func PodMonitor(p Params) *monitoringv1.PodMonitor {
	return &monitoringv1.PodMonitor{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels("monitoring")},
		Spec: monitoringv1.PodMonitorSpec{
			Selector: metav1.LabelSelector{MatchLabels: p.Selector()},
			PodMetricsEndpoints: []monitoringv1.PodMetricsEndpoint{{
				Port:          ptr.To(exporterPort),
				Path:          "/metrics",
				Interval:      scrapeInterval,
				ScrapeTimeout: scrapeTimeout,
			}},
		},
	}
}

// The exporter's port name, and how often and how long a scrape takes at
// most: the exporters answer in well under a second (test/integration).
const (
	exporterPort                         = "metrics"
	scrapeInterval monitoringv1.Duration = "30s"
	scrapeTimeout  monitoringv1.Duration = "10s"
)
