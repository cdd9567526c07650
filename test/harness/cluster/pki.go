//go:build e2e

package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// A ca issues every certificate of the test cluster: the apiserver's, the
// admin's, the function's and Crossplane's client certificate, so that one
// ca.crt verifies them all.
type ca struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

// A leaf is an issued certificate and its key, PEM-encoded.
type leaf struct {
	cert []byte
	key  []byte
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func newCA() (*ca, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "dbplane-e2e-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// A certRequest says who a certificate is for and what it may do.
type certRequest struct {
	cn    string
	orgs  []string
	dns   []string
	ips   []net.IP
	usage []x509.ExtKeyUsage
}

func (c *ca) issue(r certRequest) (*leaf, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: r.cn, Organization: r.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  r.usage,
		DNSNames:     r.dns,
		IPAddresses:  r.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &leaf{
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}),
	}, nil
}

// writeTLSDir writes dir/{ca.crt,tls.crt,tls.key}, the layout both the
// function's --tls-certs-dir and Crossplane's --tls-client-certs-dir read.
func (c *ca) writeTLSDir(dir string, l *leaf) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"ca.crt": c.pem, "tls.crt": l.cert, "tls.key": l.key} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pki is every certificate and key the control plane needs, written under
// one directory.
type pki struct {
	dir string
	ca  *ca

	caCert, caKey       string // the cluster CA, also the controller-manager's signing CA
	apiserverCert       string // serving: 127.0.0.1, localhost
	apiserverKey        string
	adminCert, adminKey string // O=system:masters
	saKey, saPub        string // service account token signing
	functionTLS         string // the function's serving dir: serverAuth, IP 127.0.0.1
	crossplaneTLS       string // Crossplane's client dir: clientAuth

	function *leaf // kept to put in the FunctionRevision's TLS Secret
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c, err := newCA()
	if err != nil {
		return nil, fmt.Errorf("cannot create CA: %w", err)
	}
	p := &pki{dir: dir, ca: c}
	write := func(name string, b []byte) (string, error) {
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, b, 0o600)
	}
	caKey, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		return nil, err
	}
	if p.caCert, err = write("ca.crt", c.pem); err != nil {
		return nil, err
	}
	if p.caKey, err = write("ca.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: caKey})); err != nil {
		return nil, err
	}

	localhost := []net.IP{net.ParseIP("127.0.0.1")}
	api, err := c.issue(certRequest{
		cn:    "kube-apiserver",
		dns:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		ips:   append(localhost, net.ParseIP("10.96.0.1")),
		usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot issue apiserver certificate: %w", err)
	}
	if p.apiserverCert, err = write("apiserver.crt", api.cert); err != nil {
		return nil, err
	}
	if p.apiserverKey, err = write("apiserver.key", api.key); err != nil {
		return nil, err
	}

	admin, err := c.issue(certRequest{cn: "e2e-admin", orgs: []string{"system:masters"}, usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("cannot issue admin certificate: %w", err)
	}
	if p.adminCert, err = write("admin.crt", admin.cert); err != nil {
		return nil, err
	}
	if p.adminKey, err = write("admin.key", admin.key); err != nil {
		return nil, err
	}

	sa, err := newKey()
	if err != nil {
		return nil, err
	}
	saKey, err := x509.MarshalPKCS8PrivateKey(sa)
	if err != nil {
		return nil, err
	}
	saPub, err := x509.MarshalPKIXPublicKey(sa.Public())
	if err != nil {
		return nil, err
	}
	if p.saKey, err = write("sa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: saKey})); err != nil {
		return nil, err
	}
	if p.saPub, err = write("sa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPub})); err != nil {
		return nil, err
	}

	// Crossplane dials functions with TLS, always, and verifies them
	// against the CA in its client certs dir; the function verifies
	// Crossplane's client certificate against the same CA.
	p.function, err = c.issue(certRequest{
		cn:    "function-dbplane",
		dns:   []string{"localhost", "dbplane-function-dbplane", "dbplane-function-dbplane.crossplane-system"},
		ips:   localhost,
		usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot issue function certificate: %w", err)
	}
	p.functionTLS = filepath.Join(dir, "function")
	if err := c.writeTLSDir(p.functionTLS, p.function); err != nil {
		return nil, err
	}
	xp, err := c.issue(certRequest{cn: "crossplane", usage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, fmt.Errorf("cannot issue Crossplane client certificate: %w", err)
	}
	p.crossplaneTLS = filepath.Join(dir, "crossplane-client")
	if err := c.writeTLSDir(p.crossplaneTLS, xp); err != nil {
		return nil, err
	}
	return p, nil
}
