// Package v1alpha1 contains the provider's API, sql.database.example.com/v1alpha1:
// the namespaced ProviderConfig (a database server and its admin login), its
// ProviderConfigUsage, and the User and Replication managed resources.
//
// +kubebuilder:object:generate=true
// +groupName=sql.database.example.com
// +versionName=v1alpha1
package v1alpha1

import (
	"reflect"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

// Group and version of the provider's API.
const (
	Group   = "sql.database.example.com"
	Version = "v1alpha1"
)

var (
	// SchemeGroupVersion is the group and version of the provider's API.
	SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: Version}

	// SchemeBuilder registers the provider's types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: SchemeGroupVersion}

	// AddToScheme adds the provider's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kinds of the provider's API.
var (
	UserKind             = reflect.TypeFor[User]().Name()
	UserGroupKind        = schema.GroupKind{Group: Group, Kind: UserKind}.String()
	UserGroupVersionKind = SchemeGroupVersion.WithKind(UserKind)

	ReplicationKind             = reflect.TypeFor[Replication]().Name()
	ReplicationGroupKind        = schema.GroupKind{Group: Group, Kind: ReplicationKind}.String()
	ReplicationGroupVersionKind = SchemeGroupVersion.WithKind(ReplicationKind)

	ProviderConfigKind             = reflect.TypeFor[ProviderConfig]().Name()
	ProviderConfigGroupKind        = schema.GroupKind{Group: Group, Kind: ProviderConfigKind}.String()
	ProviderConfigGroupVersionKind = SchemeGroupVersion.WithKind(ProviderConfigKind)

	ProviderConfigUsageKind                 = reflect.TypeFor[ProviderConfigUsage]().Name()
	ProviderConfigUsageGroupVersionKind     = SchemeGroupVersion.WithKind(ProviderConfigUsageKind)
	ProviderConfigUsageListKind             = reflect.TypeFor[ProviderConfigUsageList]().Name()
	ProviderConfigUsageListGroupVersionKind = SchemeGroupVersion.WithKind(ProviderConfigUsageListKind)
)

func init() {
	SchemeBuilder.Register(&User{}, &UserList{})
	SchemeBuilder.Register(&Replication{}, &ReplicationList{})
	SchemeBuilder.Register(&ProviderConfig{}, &ProviderConfigList{})
	SchemeBuilder.Register(&ProviderConfigUsage{}, &ProviderConfigUsageList{})
}
