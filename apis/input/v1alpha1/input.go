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

	// TLS says who issues the servers' certificates. Every server speaks
	// TLS; production servers refuse connections without it.
	// +optional
	TLS *TLS `json:"tls,omitempty"`

	// BackupStorage is where backups go besides each Database's backup
	// volume: set once by the platform team for every Database of the
	// Composition. Unset keeps backups on the volumes only.
	// +optional
	BackupStorage *BackupStorage `json:"backupStorage,omitempty"`
}

// TLS is who issues the Databases' server certificates.
type TLS struct {
	// IssuerRef names a cert-manager Issuer or ClusterIssuer that signs
	// every Database's server certificate through a composed Certificate,
	// where cert-manager's CRDs exist. Without it, or while cert-manager is
	// not installed, the function issues a CA per Database and the server
	// certificate itself, and renews the latter before it expires.
	// +optional
	IssuerRef *IssuerReference `json:"issuerRef,omitempty"`
}

// An IssuerReference names a cert-manager issuer.
type IssuerReference struct {
	// Name of the Issuer (in each Database's namespace) or ClusterIssuer.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// Kind of the issuer: Issuer or ClusterIssuer.
	// +kubebuilder:validation:Enum=Issuer;ClusterIssuer
	// +kubebuilder:default=Issuer
	// +optional
	Kind string `json:"kind,omitempty"`

	// Group of the issuer's API.
	// +kubebuilder:default=cert-manager.io
	// +optional
	Group string `json:"group,omitempty"`
}

// BackupStorage is an off-volume destination for backups.
type BackupStorage struct {
	// S3 is an S3-compatible bucket. Each Database's backups are uploaded
	// under <prefix><namespace>/<name>/, each with its .sha256 object, and
	// pruned there by the Database's retention as on its volume.
	S3 *S3 `json:"s3"`
}

// S3 is an S3-compatible bucket and how to reach it.
type S3 struct {
	// Endpoint is the server's URL, such as https://s3.eu-west-1.amazonaws.com
	// or https://minio.storage.svc:9000.
	// +kubebuilder:validation:Pattern=`^https?://[^\s/]+(/.*)?$`
	Endpoint string `json:"endpoint"`

	// Bucket is the bucket's name. It must exist.
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`
	Bucket string `json:"bucket"`

	// Prefix is prepended to every Database's own prefix; empty, or a
	// path ending in /.
	// +kubebuilder:validation:Pattern=`^(([A-Za-z0-9._-]+/)+)?$`
	// +optional
	Prefix string `json:"prefix,omitempty"`

	// Region of the bucket.
	// +kubebuilder:default=us-east-1
	// +optional
	Region string `json:"region,omitempty"`

	// CredentialsSecretName is a Secret the platform team provides in
	// every namespace with Databases, with the keys AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY. The backup and restore pods read it through
	// secretKeyRef; the function never reads it.
	// +kubebuilder:validation:MinLength=1
	CredentialsSecretName string `json:"credentialsSecretName"`

	// CASecretName is an optional Secret in the same namespaces whose key
	// ca.crt is the PEM bundle the server's certificate is checked
	// against, for a server a private CA signed.
	// +optional
	CASecretName string `json:"caSecretName,omitempty"`

	// EncryptionKeySecretName is an optional Secret in the same
	// namespaces whose key "key" (say 32 random bytes, base64) encrypts
	// every backup before it leaves the pod for the bucket, with rclone's
	// crypt (NaCl secretbox: XSalsa20 and Poly1305, in authenticated 64 KiB
	// chunks, the key stretched by scrypt). Restore decrypts with it; a
	// backup encrypted with another key is refused, nothing loaded.
	// +optional
	EncryptionKeySecretName string `json:"encryptionKeySecretName,omitempty"`
}
