package fn

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// HeadlessService gives every replica a stable DNS name
// (<name>-<ordinal>.<name>-headless), including replicas not ready yet, so
// that peers can find each other while starting.
func HeadlessService(p Params) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: p.HeadlessService(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Spec: corev1.ServiceSpec{
			ClusterIP:                corev1.ClusterIPNone,
			PublishNotReadyAddresses: true,
			Selector:                 p.Selector(),
			Ports:                    servicePorts(p),
		},
	}
}

// Service is the read-write Service clients and standbys connect to: the
// primary. Once the SQL provider's Replication has found the primary it
// selects the pod labelled primary, so that it follows the primary from pod
// to pod; before (one replica, or a new Database) it selects the first pod,
// which a Database starts with as its primary.
func Service(p Params) *corev1.Service {
	sel := maps.Clone(p.Selector())
	sel[labelPodName] = p.FirstPod()
	if p.RoleRouting {
		delete(sel, labelPodName)
		sel[labelRole] = rolePrimary
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: p.Service(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: sel,
			Ports:    servicePorts(p),
		},
	}
}

func servicePorts(p Params) []corev1.ServicePort {
	e := p.Engine
	ports := []corev1.ServicePort{{Name: e.PortName, Port: e.Port, TargetPort: intstr.FromString(e.PortName), Protocol: corev1.ProtocolTCP}}
	if p.Metrics {
		ports = append(ports, corev1.ServicePort{Name: "metrics", Port: e.Exporter.Port, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP})
	}
	return ports
}

// ReadOnlyService reaches the standbys that stream, for reads that may lag
// the primary a little: the SQL provider labels them replica.
func ReadOnlyService(p Params) *corev1.Service {
	sel := maps.Clone(p.Selector())
	sel[labelRole] = roleReplica
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: p.ReadOnlyService(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: sel,
			Ports:    servicePorts(p),
		},
	}
}
