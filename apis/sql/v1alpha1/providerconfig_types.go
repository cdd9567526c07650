package v1alpha1

import (
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Engine is the kind of database server a ProviderConfig names.
// +kubebuilder:validation:Enum=postgresql;mysql
type Engine string

// Supported engines. MySQL covers MySQL 8 and MariaDB: the provider tells
// them apart by the server's version string.
const (
	PostgreSQL Engine = "postgresql"
	MySQL      Engine = "mysql"
)

// TLSMode is how the provider, and the apps it writes connection Secrets
// for, secure connections to the server.
// +kubebuilder:validation:Enum=disable;require;verify-full
type TLSMode string

// TLS modes, named as libpq's sslmode.
const (
	// TLSDisable connects without TLS.
	TLSDisable TLSMode = "disable"
	// TLSRequire requires TLS but does not verify the server's certificate.
	TLSRequire TLSMode = "require"
	// TLSVerifyFull requires TLS with a certificate that names spec.host
	// and that spec.tlsSecretRef's CA verifies (the system's trust store
	// without one).
	TLSVerifyFull TLSMode = "verify-full"
)

// A ProviderConfigSpec names a database server and the admin login the
// provider manages other logins with.
type ProviderConfigSpec struct {
	// Engine of the server: postgresql, or mysql for MySQL 8 and MariaDB.
	Engine Engine `json:"engine"`

	// Host name or IP address of the server, as apps reach it too: it is
	// written into every User's connection Secret. For a dbplane Database
	// this is its client Service, <name>.<namespace>.svc.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host"`

	// Port of the server. Unset means the engine's default: 5432 for
	// postgresql, 3306 for mysql.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int `json:"port,omitempty"`

	// TLS to the server: disable, require (encrypted, certificate not
	// verified) or verify-full (certificate verified against
	// spec.tlsSecretRef's CA, or the system's trust store, and spec.host).
	// Apps get the same mode in their URI and DSN.
	// +kubebuilder:default=disable
	// +optional
	TLS TLSMode `json:"tls,omitempty"`

	// TLSSecretRef is a Secret in the ProviderConfig's namespace with the
	// CA that verifies the server (written into every User's connection
	// Secret as ca.crt) and, optionally, the certificate the server should
	// present: when the server presents another, the provider makes it
	// read its certificate files again (PostgreSQL pg_reload_conf(), MySQL
	// 8 ALTER INSTANCE RELOAD TLS, MariaDB FLUSH SSL), until it presents
	// that one. A dbplane Database's is its <name>-tls Secret.
	// +optional
	TLSSecretRef *TLSSecretReference `json:"tlsSecretRef,omitempty"`

	// Credentials of the admin login.
	Credentials ProviderCredentials `json:"credentials"`
}

// ProviderCredentials locate the admin login.
type ProviderCredentials struct {
	// SecretRef is a Secret in the ProviderConfig's namespace holding the
	// admin login's name and password. The login must be a PostgreSQL
	// superuser (it reads password verifiers from pg_authid) or, for MySQL,
	// hold CREATE USER, GRANT OPTION and SELECT on the mysql schema with
	// every privilege it grants (root does).
	SecretRef AdminSecretReference `json:"secretRef"`
}

// An AdminSecretReference is a Secret in the ProviderConfig's namespace and
// the keys of the admin login in it.
type AdminSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// UsernameKey is the key of the login name.
	// +kubebuilder:default=username
	// +optional
	UsernameKey string `json:"usernameKey,omitempty"`

	// PasswordKey is the key of the password.
	// +kubebuilder:default=password
	// +optional
	PasswordKey string `json:"passwordKey,omitempty"`
}

// A TLSSecretReference is a Secret in the ProviderConfig's namespace and the
// keys of the CA and the server certificate in it.
type TLSSecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// CAKey is the key of the PEM CA certificate.
	// +kubebuilder:default=ca.crt
	// +optional
	CAKey string `json:"caKey,omitempty"`

	// CertificateKey is the key of the PEM certificate the server should
	// present; a Secret without it only verifies.
	// +kubebuilder:default=tls.crt
	// +optional
	CertificateKey string `json:"certificateKey,omitempty"`
}

// A ProviderConfigStatus is the observed state of a ProviderConfig.
type ProviderConfigStatus struct {
	xpv2.ProviderConfigStatus `json:",inline"`
}

// A ProviderConfig names a database server and the admin login the provider
// manages Users on it with. Users reference a ProviderConfig in their own
// namespace; status.users counts them, and a ProviderConfig in use cannot be
// deleted.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={crossplane,provider,sql}
// +kubebuilder:printcolumn:name="ENGINE",type="string",JSONPath=".spec.engine"
// +kubebuilder:printcolumn:name="HOST",type="string",JSONPath=".spec.host"
// +kubebuilder:printcolumn:name="USERS",type="integer",JSONPath=".status.users"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type ProviderConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ProviderConfigSpec   `json:"spec"`
	Status ProviderConfigStatus `json:"status,omitempty"`
}

// ProviderConfigList is a list of ProviderConfigs.
// +kubebuilder:object:root=true
type ProviderConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ProviderConfig `json:"items"`
}

// A ProviderConfigUsage records that a User uses a ProviderConfig. The
// provider creates one per User, owned by the User; the ProviderConfig
// controller counts them.
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories={crossplane,provider,sql}
// +kubebuilder:printcolumn:name="CONFIG-NAME",type="string",JSONPath=".providerConfigRef.name"
// +kubebuilder:printcolumn:name="RESOURCE-KIND",type="string",JSONPath=".resourceRef.kind"
// +kubebuilder:printcolumn:name="RESOURCE-NAME",type="string",JSONPath=".resourceRef.name"
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type ProviderConfigUsage struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	xpv2.TypedProviderConfigUsage `json:",inline"`
}

// ProviderConfigUsageList is a list of ProviderConfigUsages.
// +kubebuilder:object:root=true
type ProviderConfigUsageList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []ProviderConfigUsage `json:"items"`
}
