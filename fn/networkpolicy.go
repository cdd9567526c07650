package fn

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	pkgv1 "github.com/crossplane/crossplane/apis/v2/pkg/v1"
	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// rnNetworkPolicy is the NetworkPolicy's composed resource name.
const rnNetworkPolicy resource.Name = "networkpolicy"

// Labels that select pods of other namespaces: the one every namespace has
// (Kubernetes sets it to the namespace's name) and the one Crossplane puts on
// a provider's pods (the package's metadata.name).
const (
	labelNamespaceName = corev1.LabelMetadataName
	labelProvider      = pkgv1.LabelProvider
	providerPackage    = "provider-sql"
	dnsPort            = 53
)

// Pod components of a Database that connect to its servers: the servers
// themselves (standbys streaming from the primary) and the backup and
// restore Jobs.
var peerComponents = []string{"database", "backup", "restore"}

// NetworkPolicy isolates the database pods. Ingress: the database port
// admits p.Clients, the Database's own pods and Jobs and the SQL provider;
// the metrics port, with metrics on, admits the monitoring namespace;
// nothing else is admitted. Egress: DNS and the database port of the
// Database's own pods (standbys stream from the primary; MySQL replicas
// connect to it); a server needs nothing else (no API access, backups go to
// a volume), so a compromised one cannot reach other services.
func NetworkPolicy(p Params) *networkingv1.NetworkPolicy {
	tcp, udp := ptr.To(corev1.ProtocolTCP), ptr.To(corev1.ProtocolUDP)
	dbPort := []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(p.Engine.Port))}}
	own := networkingv1.NetworkPolicyPeer{PodSelector: p.peerSelector()}
	provider := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: namespaceNamed(p.ProviderNamespace),
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{labelProvider: providerPackage}},
	}
	from := append([]networkingv1.NetworkPolicyPeer{own, provider}, p.Clients...)
	ingress := []networkingv1.NetworkPolicyIngressRule{{Ports: dbPort, From: from}}
	if p.Metrics {
		ingress = append(ingress, networkingv1.NetworkPolicyIngressRule{
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: tcp, Port: ptr.To(intstr.FromInt32(p.Engine.Exporter.Port))}},
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: namespaceNamed(p.MonitoringNamespace),
			}},
		})
	}
	dns := ptr.To(intstr.FromInt32(dnsPort))
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: p.NetworkPolicy(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: p.Selector()},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     ingress,
			Egress: []networkingv1.NetworkPolicyEgressRule{
				// DNS wherever the cluster serves it (kube-dns, a node-local
				// cache on a link-local address): no To, port 53 only.
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: udp, Port: dns}, {Protocol: tcp, Port: dns}}},
				{Ports: dbPort, To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: p.Selector()}}}},
			},
		},
	}
}

// peerSelector selects the Database's pods that connect to its servers:
// its servers and its backup and restore Jobs' pods.
func (n names) peerSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{
		MatchLabels: map[string]string{labelName: string(n.Engine), labelInstance: n.Name},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: labelComponent, Operator: metav1.LabelSelectorOpIn, Values: peerComponents,
		}},
	}
}

// NetworkPolicy is named after the Database.
func (n names) NetworkPolicy() string { return n.Name }

// clients are the NetworkPolicy peers spec.network.from names: every pod
// of the Database's namespace when it names none. The apply intent holds no
// empty objects (ToComposed prunes them), so an empty selector, which
// selects everything, is spelled out: podSelector {} as a peer is the
// namespace's pods, and with a namespaceSelector it adds nothing;
// namespaceSelector {} selects the namespaces that have a name label,
// which every namespace has.
func clients(ns string, n *v1.Network) []networkingv1.NetworkPolicyPeer {
	if n == nil || len(n.From) == 0 {
		return []networkingv1.NetworkPolicyPeer{{NamespaceSelector: namespaceNamed(ns)}}
	}
	out := make([]networkingv1.NetworkPolicyPeer, 0, len(n.From))
	for _, f := range n.From {
		c := networkingv1.NetworkPolicyPeer{NamespaceSelector: f.NamespaceSelector.DeepCopy(), PodSelector: f.PodSelector.DeepCopy()}
		if empty(c.NamespaceSelector) {
			c.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: labelNamespaceName, Operator: metav1.LabelSelectorOpExists,
			}}}
		}
		if empty(c.PodSelector) {
			c.PodSelector = nil
			if c.NamespaceSelector == nil {
				c.NamespaceSelector = namespaceNamed(ns)
			}
		}
		out = append(out, c)
	}
	return out
}

// namespaceNamed selects the namespace ns.
func namespaceNamed(ns string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{labelNamespaceName: ns}}
}

// empty tells whether s is set and selects everything.
func empty(s *metav1.LabelSelector) bool {
	return s != nil && len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}
