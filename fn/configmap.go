package fn

import (
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigMap holds the server configuration tuned for the environment and
// the engine's other files, such as the pods' init step. It never holds
// credentials.
func ConfigMap(p Params) *corev1.ConfigMap {
	data := maps.Clone(p.Files)
	if data == nil {
		data = map[string]string{}
	}
	data[p.Engine.ConfigKey] = p.Config
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: p.ConfigMap(), Namespace: p.Namespace, Labels: p.Labels("database")},
		Data:       data,
	}
}
