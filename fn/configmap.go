package fn

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMap holds the server configuration tuned for the environment. It
// never holds credentials.
func ConfigMap(p Params) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: p.ConfigMap(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Data:       map[string]string{p.Engine.ConfigKey: p.Config},
	}
}
