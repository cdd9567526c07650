package fn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/resource"
)

// What a Database composes for TLS when the function issues its
// certificates (no cert-manager Issuer in the Input): the CA, kept apart
// from the server pods, and the server certificate the pods mount.
const (
	rnCA  resource.Name = "tls-ca"
	rnTLS resource.Name = "tls"
)

// Keys of the TLS Secrets, as cert-manager names them.
const (
	keyCACert  = "ca.crt"
	keyCAKey   = "ca.key"
	keyTLSCert = "tls.crt"
	keyTLSKey  = "tls.key"
)

// tlsDir is where every container that talks to a server mounts the TLS
// Secret's ca.crt, tls.crt and tls.key (the servers' own pods), or its
// ca.crt alone (backup and restore Jobs).
const tlsDir = "/etc/dbplane-tls"

// tlsVolume is the TLS Secret's volume name.
const tlsVolume = "tls"

// Lifetimes of what the function issues. The server certificate is renewed
// once two thirds of its lifetime passed, with the same CA, so that clients
// holding ca.crt keep verifying; the CA is not renewed.
const (
	caLifetime     = 10 * 365 * 24 * time.Hour
	serverLifetime = 90 * 24 * time.Hour
	// backdate is how far before now a certificate's validity starts, for
	// clocks that run a little behind the function's.
	backdate = time.Hour
)

// Certificates are a Database's CA and server certificate, PEM encoded.
// Only the TLS Secret builders read the keys.
type Certificates struct {
	CACert, CAKey []byte
	Cert, Key     []byte
}

// ServerFingerprint is the SHA-256 of the server certificate's DER, in hex:
// what the SQL provider compares with the certificate the server presents.
func (c Certificates) ServerFingerprint() string {
	b, _ := pem.Decode(c.Cert)
	if b == nil {
		return ""
	}
	s := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(s[:])
}

// An Issuer makes the CA and the server certificates. The real one
// generates ECDSA P-256 keys from crypto/rand; tests inject fixed ones.
type Issuer interface {
	// CA returns a new self-signed CA certificate and its key.
	CA(name string, now time.Time) (cert, key []byte, err error)
	// Server returns a new server certificate for hosts, signed by the CA.
	Server(caCert, caKey []byte, hosts []string, now time.Time) (cert, key []byte, err error)
}

// X509Issuer is the Issuer the function runs with.
type X509Issuer struct{}

// CA returns a new self-signed ECDSA P-256 CA valid for caLifetime.
func (X509Issuer) CA(name string, now time.Time) ([]byte, []byte, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot generate CA key")
	}
	tpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name + " CA", Organization: []string{"dbplane"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tpl, tpl, &k.PublicKey, k, k)
}

// Server returns a new ECDSA P-256 server certificate for hosts (DNS
// names and IP addresses) valid for serverLifetime, signed by the CA.
func (X509Issuer) Server(caCert, caKey []byte, hosts []string, now time.Time) ([]byte, []byte, error) {
	ca, cak, err := parseCA(caCert, caKey)
	if err != nil {
		return nil, nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot generate server key")
	}
	tpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{"dbplane"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(serverLifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if isIP(h) {
			tpl.IPAddresses = append(tpl.IPAddresses, net.ParseIP(h))
			continue
		}
		tpl.DNSNames = append(tpl.DNSNames, h)
	}
	return sign(tpl, ca, &k.PublicKey, cak, k)
}

// sign signs tpl, a certificate for pub, by parent's key, and returns it
// and key PEM encoded.
func sign(tpl, parent *x509.Certificate, pub *ecdsa.PublicKey, by, key *ecdsa.PrivateKey) ([]byte, []byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot generate serial number")
	}
	tpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tpl, parent, pub, by)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot sign certificate")
	}
	// SEC 1 (EC PRIVATE KEY): what every OpenSSL, wolfSSL and Go reads.
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot encode key")
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

func parseCA(caCert, caKey []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	ca, err := parseCertificate(caCert)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot parse CA certificate")
	}
	b, _ := pem.Decode(caKey)
	if b == nil {
		return nil, nil, errors.New("cannot parse CA key: no PEM block")
	}
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		return nil, nil, errors.Wrap(err, "cannot parse CA key")
	}
	return ca, k, nil
}

func parseCertificate(p []byte) (*x509.Certificate, error) {
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE PEM block")
	}
	return x509.ParseCertificate(b.Bytes)
}

// TLSHosts are every name clients reach the servers by, which the server
// certificate names: the read-write and read-only Services and the
// headless one in each form a resolver's search path completes (name,
// name.namespace, .svc, .svc.cluster.local), each pod through the headless
// Service (a wildcard, so that scaling needs no new certificate), and
// loopback for the pods' own probes and sidecars.
func (n names) TLSHosts() []string {
	var hs []string
	for _, s := range []string{n.Service(), n.ReadOnlyService(), n.HeadlessService(), "*." + n.HeadlessService()} {
		hs = append(hs, s, s+"."+n.Namespace, s+"."+n.Namespace+".svc", s+"."+n.Namespace+".svc.cluster.local")
	}
	return append(hs, "localhost", "127.0.0.1", "::1")
}

// renewAt is when a certificate is renewed: once two thirds of its
// lifetime passed.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// needsRenewal tells whether the observed server certificate must be
// issued again at now: it is due, names other hosts, or was not signed by
// the CA.
func needsRenewal(cert []byte, ca *x509.Certificate, hosts []string, now time.Time) bool {
	c, err := parseCertificate(cert)
	if err != nil {
		return true
	}
	if !now.Before(renewAt(c)) {
		return true
	}
	var got []string
	got = append(got, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		got = append(got, ip.String())
	}
	want := slices.Clone(hosts)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return true
	}
	return ca == nil || c.CheckSignatureFrom(ca) != nil
}

// ResolveTLS decides the Database's certificates: with a cert-manager
// Issuer in the Input and cert-manager's Certificate CRD in the cluster,
// cert-manager issues them (a Certificate is composed); otherwise the
// function does. Its CA and server certificate are read back from the
// observed Secrets and issued only when missing or due, so they are stable
// across calls.
func (p *Params) ResolveTLS(o Observed, in Input, iss Issuer, now time.Time) error {
	p.Issuer = in.Issuer
	// Until Crossplane said whether cert-manager runs (the first call of a
	// reconcile), a Database keeps the Certificate it has.
	p.CertManager = in.Issuer != nil && (o.CertManager || (!o.CertManagerKnown && o.Exists[rnCertificate]))
	if p.CertManager {
		return nil
	}
	c := Certificates{CACert: o.TLS.CACert, CAKey: o.TLS.CAKey, Cert: o.TLS.Cert, Key: o.TLS.Key}
	hosts := p.TLSHosts()
	if len(c.CACert) == 0 {
		var err error
		if c.CACert, c.CAKey, err = iss.CA(p.Namespace+"/"+p.Name, now); err != nil {
			return errors.Wrap(err, "cannot issue CA")
		}
		if c.Cert, c.Key, err = iss.Server(c.CACert, c.CAKey, hosts, now); err != nil {
			return errors.Wrap(err, "cannot issue server certificate")
		}
		p.TLS = c
		return nil
	}
	ca, _, err := parseCA(c.CACert, c.CAKey)
	if err != nil {
		return errors.Wrapf(err, "cannot read the observed CA Secret %q: refusing to replace the CA clients trust", p.CASecret())
	}
	if len(c.Key) == 0 || needsRenewal(c.Cert, ca, hosts, now) {
		if c.Cert, c.Key, err = iss.Server(c.CACert, c.CAKey, hosts, now); err != nil {
			return errors.Wrap(err, "cannot issue server certificate")
		}
	}
	p.TLS = c
	return nil
}

// selfIssued: the function issues the Database's certificates.
func selfIssued(p Params) bool { return !p.CertManager }

func isIP(h string) bool { return net.ParseIP(h) != nil }

// CASecret holds the Database's CA certificate and key. No pod mounts it:
// only the function reads it, to renew the server certificate.
func CASecret(p Params) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: p.CASecret(), Namespace: p.Namespace, Labels: p.Labels("tls")},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{keyCACert: p.TLS.CACert, keyCAKey: p.TLS.CAKey},
	}
}

// TLSSecret holds the server certificate and key the server pods mount,
// and the CA certificate clients verify it with: the keys cert-manager
// writes.
func TLSSecret(p Params) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: p.TLSSecret(), Namespace: p.Namespace, Labels: p.Labels("tls")},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{keyCACert: p.TLS.CACert, corev1.TLSCertKey: p.TLS.Cert, corev1.TLSPrivateKeyKey: p.TLS.Key},
	}
}

// observeCA reads the CA back.
func observeCA(u map[string]any, n resource.Name, o *Observed) error {
	s, err := decodeObserved[corev1.Secret](u, n)
	if err != nil {
		return err
	}
	if len(s.Data[keyCACert]) == 0 || len(s.Data[keyCAKey]) == 0 {
		return errors.Errorf("observed Secret %q has no data.%s or data.%s: refusing to replace the CA clients trust", s.GetName(), keyCACert, keyCAKey)
	}
	o.TLS.CACert, o.TLS.CAKey = s.Data[keyCACert], s.Data[keyCAKey]
	return nil
}

// observeTLS reads the server certificate back, if it is for the observed
// CA: a TLS Secret whose CA differs (the CA Secret was replaced) gets a new
// certificate.
func observeTLS(u map[string]any, n resource.Name, o *Observed) error {
	s, err := decodeObserved[corev1.Secret](u, n)
	if err != nil {
		return err
	}
	o.TLS.Cert, o.TLS.Key, o.TLS.servedCA = s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey], s.Data[keyCACert]
	return nil
}

// sameCA drops an observed server certificate issued under another CA
// than the observed one, once both Secrets were read.
func (o *Observed) sameCA() {
	if len(o.TLS.servedCA) > 0 && !bytes.Equal(o.TLS.servedCA, o.TLS.CACert) {
		o.TLS.Cert, o.TLS.Key = nil, nil
	}
}

// ObservedTLS is what the function reads back of the Secrets it issued.
type ObservedTLS struct {
	CACert, CAKey []byte
	Cert, Key     []byte
	// servedCA is the TLS Secret's ca.crt.
	servedCA []byte
}

// tlsVolumeOf is the TLS Secret's volume with the keys given. Files are
// 0440 and, with the pod's fsGroup, owned by root and the server's group:
// PostgreSQL accepts a key of root's readable by its group, and no one
// else can read it.
func tlsVolumeOf(p Params, keys ...string) corev1.Volume {
	items := make([]corev1.KeyToPath, 0, len(keys))
	for _, k := range keys {
		items = append(items, corev1.KeyToPath{Key: k, Path: k})
	}
	return corev1.Volume{Name: tlsVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
		SecretName: p.TLSSecret(), Items: items, DefaultMode: ptr.To[int32](0o440),
	}}}
}

// tlsMount mounts the TLS volume at tlsDir, read-only.
func tlsMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: tlsVolume, MountPath: tlsDir, ReadOnly: true}
}
