package fn

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// rnCertificate is the cert-manager Certificate a Database composes when
// the Input names an Issuer and cert-manager runs in the cluster.
const rnCertificate resource.Name = "certificate"

// requiredCertManager asks Crossplane for cert-manager's Certificate CRD,
// as monitoring asks for the Prometheus Operator's.
const (
	requiredCertManager = "crd-certificates"
	certManagerCRD      = "certificates.cert-manager.io"
)

// certManagerGroupVersion is cert-manager's API.
var certManagerGroupVersion = schema.GroupVersion{Group: "cert-manager.io", Version: "v1"}

// An IssuerRef names the cert-manager Issuer or ClusterIssuer that signs
// the Databases' certificates.
type IssuerRef struct {
	Name  string `json:"name"`
	Kind  string `json:"kind,omitempty"`
	Group string `json:"group,omitempty"`
}

// CertificateObject is the part of cert-manager's Certificate
// (cert-manager.io/v1) the function composes: the Go module would bring
// cert-manager's whole dependency tree for a handful of fields.
type CertificateObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec CertificateSpec `json:"spec"`
}

// CertificateSpec is the part of a Certificate's spec the function sets.
type CertificateSpec struct {
	SecretName     string           `json:"secretName"`
	CommonName     string           `json:"commonName,omitempty"`
	DNSNames       []string         `json:"dnsNames,omitempty"`
	IPAddresses    []string         `json:"ipAddresses,omitempty"`
	Duration       *metav1.Duration `json:"duration,omitempty"`
	RenewBefore    *metav1.Duration `json:"renewBefore,omitempty"`
	PrivateKey     *CertificateKey  `json:"privateKey,omitempty"`
	Usages         []string         `json:"usages,omitempty"`
	IssuerRef      IssuerRef        `json:"issuerRef"`
	SecretTemplate *SecretTemplate  `json:"secretTemplate,omitempty"`
}

// CertificateKey is the private key cert-manager generates.
type CertificateKey struct {
	Algorithm      string `json:"algorithm,omitempty"`
	Size           int    `json:"size,omitempty"`
	RotationPolicy string `json:"rotationPolicy,omitempty"`
}

// SecretTemplate labels the Secret cert-manager writes.
type SecretTemplate struct {
	Labels map[string]string `json:"labels,omitempty"`
}

// DeepCopyObject copies the Certificate, as runtime.Object needs.
func (c *CertificateObject) DeepCopyObject() runtime.Object {
	out := *c
	c.DeepCopyInto(&out.ObjectMeta)
	s := c.Spec
	s.DNSNames = append([]string(nil), c.Spec.DNSNames...)
	s.IPAddresses = append([]string(nil), c.Spec.IPAddresses...)
	s.Usages = append([]string(nil), c.Spec.Usages...)
	if c.Spec.Duration != nil {
		d := *c.Spec.Duration
		s.Duration = &d
	}
	if c.Spec.RenewBefore != nil {
		d := *c.Spec.RenewBefore
		s.RenewBefore = &d
	}
	if c.Spec.PrivateKey != nil {
		k := *c.Spec.PrivateKey
		s.PrivateKey = &k
	}
	if c.Spec.SecretTemplate != nil {
		t := SecretTemplate{Labels: map[string]string{}}
		for k, v := range c.Spec.SecretTemplate.Labels {
			t.Labels[k] = v
		}
		s.SecretTemplate = &t
	}
	out.Spec = s
	return &out
}

// Certificate asks cert-manager for the server certificate, in the same
// Secret (and keys) the function would write: the pods, the provider and
// the Jobs read it alike. cert-manager renews it at two thirds of its
// lifetime, as the function does; the key is rotated with it.
func Certificate(p Params) *CertificateObject {
	var dns, ips []string
	for _, h := range p.TLSHosts() {
		if isIP(h) {
			ips = append(ips, h)
			continue
		}
		dns = append(dns, h)
	}
	return &CertificateObject{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels("tls")},
		Spec: CertificateSpec{
			SecretName:     p.TLSSecret(),
			CommonName:     dns[0],
			DNSNames:       dns,
			IPAddresses:    ips,
			Duration:       &metav1.Duration{Duration: serverLifetime},
			RenewBefore:    &metav1.Duration{Duration: serverLifetime / 3},
			PrivateKey:     &CertificateKey{Algorithm: "ECDSA", Size: 256, RotationPolicy: "Always"},
			Usages:         []string{"server auth", "digital signature"},
			IssuerRef:      *p.Issuer,
			SecretTemplate: &SecretTemplate{Labels: p.Labels("tls")},
		},
	}
}

// certManagerCRDSelector asks for cert-manager's Certificate CRD by name.
func certManagerCRDSelector() *fnv1.ResourceSelector {
	return operatorCRDSelector(certManagerCRD)
}

// observeCertManager records whether cert-manager's Certificate CRD
// exists, once Crossplane answered.
func observeCertManager(req *fnv1.RunFunctionRequest, o *Observed) {
	rs, ok := answered(req, requiredCertManager)
	o.CertManagerKnown = ok
	o.CertManager = ok && len(rs.GetItems()) > 0
}

func certManager(p Params) bool { return p.CertManager }
