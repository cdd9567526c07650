// Package v1alpha1 contains the input of dbplane's composition function,
// fn.database.example.com/v1alpha1.
//
// +kubebuilder:object:generate=true
// +groupName=fn.database.example.com
// +versionName=v1alpha1
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersionKind of the function's Input.
var GroupVersionKind = schema.GroupVersionKind{Group: "fn.database.example.com", Version: "v1alpha1", Kind: "Input"}

// Input configures the function for one Composition step. It is optional:
// without it every feature is on.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:categories=crossplane
type Input struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// SQLUsers composes, for every Database, a ProviderConfig and an app
	// User for dbplane's SQL provider, and makes the Database Ready only
	// when its app can log in. Turn it off only where no SQL provider runs,
	// such as a control plane whose pods run nothing.
	// +kubebuilder:default=true
	// +optional
	SQLUsers *bool `json:"sqlUsers,omitempty"`

	// ProviderNamespace is the namespace dbplane's SQL provider runs in.
	// Each Database's NetworkPolicy admits the provider's pods (labelled
	// pkg.crossplane.io/provider: provider-sql, as Crossplane labels them)
	// of this namespace to the database port.
	// +kubebuilder:default=crossplane-system
	// +optional
	ProviderNamespace *string `json:"providerNamespace,omitempty"`

	// MonitoringNamespace is the namespace whose pods (Prometheus) may
	// scrape the metrics port of Databases with monitoring.metrics. No
	// other namespace may, and this one may not reach the database port.
	// +kubebuilder:default=monitoring
	// +optional
	MonitoringNamespace *string `json:"monitoringNamespace,omitempty"`
}
