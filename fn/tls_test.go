package fn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

// testNow is the time tests issue certificates at.
var testNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// testCerts are a CA and a server certificate for orders in team-a,
// issued once per test binary by the real issuer at testNow.
var testCerts = sync.OnceValue(func() Certificates {
	p := Params{names: names{Name: "orders", Namespace: "team-a"}}
	if err := p.ResolveTLS(Observed{}, Input{}, X509Issuer{}, testNow); err != nil {
		panic(err)
	}
	return p.TLS
})

// fixedIssuer issues testCerts whatever it is asked, so that calls without
// observed TLS Secrets compose the same objects.
type fixedIssuer struct{}

func (fixedIssuer) CA(string, time.Time) ([]byte, []byte, error) {
	return testCerts().CACert, testCerts().CAKey, nil
}

func (fixedIssuer) Server([]byte, []byte, []string, time.Time) ([]byte, []byte, error) {
	return testCerts().Cert, testCerts().Key, nil
}

// countingIssuer counts what it issues through the real issuer.
type countingIssuer struct{ cas, servers int }

func (c *countingIssuer) CA(name string, now time.Time) ([]byte, []byte, error) {
	c.cas++
	return X509Issuer{}.CA(name, now)
}

func (c *countingIssuer) Server(caCert, caKey []byte, hosts []string, now time.Time) ([]byte, []byte, error) {
	c.servers++
	return X509Issuer{}.Server(caCert, caKey, hosts, now)
}

// tlsSecretsJSON are the observed CA and TLS Secrets holding c.
func tlsSecretsJSON(c Certificates) map[string]string {
	b := func(v []byte) string { return base64.StdEncoding.EncodeToString(v) }
	return map[string]string{
		"tls-ca": fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"orders-ca","namespace":"team-a"},"data":{"ca.crt":%q,"ca.key":%q}}`, b(c.CACert), b(c.CAKey)),
		"tls":    fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"orders-tls","namespace":"team-a"},"data":{"ca.crt":%q,"tls.crt":%q,"tls.key":%q}}`, b(c.CACert), b(c.Cert), b(c.Key)),
	}
}

func observedTLS(c Certificates) ObservedTLS {
	return ObservedTLS{CACert: c.CACert, CAKey: c.CAKey, Cert: c.Cert, Key: c.Key, servedCA: c.CACert}
}

func mustParse(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	c, err := parseCertificate(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssuedCertificates: what the issuer makes is what servers and clients
// need: an ECDSA P-256 CA, and a server certificate it signs that names
// every host clients use, which a verifying client accepts for those names
// and refuses for another.
func TestIssuedCertificates(t *testing.T) {
	c := testCerts()
	ca, srv := mustParse(t, c.CACert), mustParse(t, c.Cert)
	if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA || ca.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() { //nolint:forcetypeassert // Checked ECDSA just before.
		t.Errorf("CA: want an ECDSA P-256 CA, got IsCA=%t %s", ca.IsCA, ca.PublicKeyAlgorithm)
	}
	if srv.IsCA || srv.PublicKeyAlgorithm != x509.ECDSA || !slices.Contains(srv.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("server: want an ECDSA server-auth leaf, got IsCA=%t %s %v", srv.IsCA, srv.PublicKeyAlgorithm, srv.ExtKeyUsage)
	}
	if got, want := srv.NotAfter.Sub(srv.NotBefore), serverLifetime+backdate; got != want {
		t.Errorf("server lifetime: want %s, got %s", want, got)
	}
	if _, err := tls.X509KeyPair(c.Cert, c.Key); err != nil {
		t.Errorf("tls.crt and tls.key are not a pair: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, h := range []string{
		"orders", "orders.team-a", "orders.team-a.svc", "orders.team-a.svc.cluster.local",
		"orders-ro.team-a.svc.cluster.local", "orders-headless.team-a.svc",
		"orders-0.orders-headless.team-a.svc.cluster.local", "orders-7.orders-headless.team-a.svc", "orders-1.orders-headless",
		"localhost", "127.0.0.1", "::1",
	} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, CurrentTime: testNow}); err != nil {
			t.Errorf("server certificate for %q: %v", h, err)
		}
	}
	for _, h := range []string{"other.team-a.svc.cluster.local", "orders.team-b.svc.cluster.local", "a.b.orders-headless.team-a.svc", "10.0.0.1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: h, CurrentTime: testNow}); err == nil {
			t.Errorf("server certificate for %q: verified, want refused", h)
		}
	}
	if net.ParseIP("127.0.0.1").Equal(srv.IPAddresses[0]) == false {
		t.Errorf("server IPs: want 127.0.0.1 first, got %v", srv.IPAddresses)
	}
}

// TestResolveTLS: the certificates are read back and kept, issued only
// when missing, and the server certificate renewed at two thirds of its
// lifetime with the same CA.
func TestResolveTLS(t *testing.T) {
	c := testCerts()
	renew := renewAt(mustParse(t, c.Cert))
	otherCA := func() Certificates {
		p := Params{names: names{Name: "orders", Namespace: "team-a"}}
		if err := p.ResolveTLS(Observed{}, Input{}, X509Issuer{}, testNow); err != nil {
			t.Fatal(err)
		}
		return p.TLS
	}()
	type want struct {
		cas, servers int
		sameCA       bool
		sameCert     bool
		err          string
	}
	cases := map[string]struct {
		reason string
		o      Observed
		now    time.Time
		want   want
	}{
		"New": {
			reason: "A new Database gets a CA and a server certificate.",
			now:    testNow,
			want:   want{cas: 1, servers: 1},
		},
		"Kept": {
			reason: "Observed certificates that are not due are kept as they are: no key is generated.",
			o:      Observed{TLS: observedTLS(c)},
			now:    testNow.Add(24 * time.Hour),
			want:   want{sameCA: true, sameCert: true},
		},
		"JustBeforeRenewal": {
			reason: "Until two thirds of its lifetime passed the server certificate is kept.",
			o:      Observed{TLS: observedTLS(c)},
			now:    renew.Add(-time.Second),
			want:   want{sameCA: true, sameCert: true},
		},
		"Renewed": {
			reason: "At two thirds of its lifetime the server certificate is renewed, by the same CA.",
			o:      Observed{TLS: observedTLS(c)},
			now:    renew,
			want:   want{servers: 1, sameCA: true},
		},
		"Expired": {
			reason: "An expired server certificate is renewed, by the same CA.",
			o:      Observed{TLS: observedTLS(c)},
			now:    testNow.Add(200 * 24 * time.Hour),
			want:   want{servers: 1, sameCA: true},
		},
		"ServerSecretLost": {
			reason: "A deleted TLS Secret gets a new server certificate from the CA clients hold.",
			o:      Observed{TLS: ObservedTLS{CACert: c.CACert, CAKey: c.CAKey}},
			now:    testNow,
			want:   want{servers: 1, sameCA: true},
		},
		"OtherCA": {
			reason: "A server certificate the observed CA did not sign is issued again by it.",
			o:      Observed{TLS: ObservedTLS{CACert: c.CACert, CAKey: c.CAKey, Cert: otherCA.Cert, Key: otherCA.Key}},
			now:    testNow,
			want:   want{servers: 1, sameCA: true},
		},
		"BrokenCA": {
			reason: "An unreadable CA is an error: a new one would break every client that holds ca.crt.",
			o:      Observed{TLS: ObservedTLS{CACert: []byte("not a certificate"), CAKey: c.CAKey}},
			now:    testNow,
			want:   want{err: `cannot read the observed CA Secret "orders-ca": refusing to replace the CA clients trust: cannot parse CA certificate: no CERTIFICATE PEM block`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			iss := &countingIssuer{}
			p := Params{names: names{Name: "orders", Namespace: "team-a"}}
			err := p.ResolveTLS(tc.o, Input{}, iss, tc.now)
			got := want{cas: iss.cas, servers: iss.servers}
			if err != nil {
				got.err = err.Error()
			} else {
				got.sameCA = string(p.TLS.CACert) == string(c.CACert) && string(p.TLS.CAKey) == string(c.CAKey)
				got.sameCert = string(p.TLS.Cert) == string(c.Cert) && string(p.TLS.Key) == string(c.Key)
				roots := x509.NewCertPool()
				roots.AddCert(mustParse(t, p.TLS.CACert))
				if _, err := mustParse(t, p.TLS.Cert).Verify(x509.VerifyOptions{Roots: roots, DNSName: "orders.team-a.svc", CurrentTime: tc.now}); err != nil {
					t.Errorf("%s\nResolveTLS(...): the server certificate does not verify at %s: %v", tc.reason, tc.now, err)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nResolveTLS(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestResolveTLSCertManager: with an Issuer in the Input, cert-manager
// issues the certificate once its CRD is known to exist; until Crossplane
// said, a Database keeps what it has.
func TestResolveTLSCertManager(t *testing.T) {
	iss := &IssuerRef{Name: "databases", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	cases := map[string]struct {
		reason string
		in     Input
		o      Observed
		want   bool
	}{
		"NoIssuer":          {reason: "Without an Issuer the function issues.", o: Observed{CertManager: true, CertManagerKnown: true}},
		"CRDExists":         {reason: "With an Issuer and cert-manager's CRD, cert-manager issues.", in: Input{Issuer: iss}, o: Observed{CertManager: true, CertManagerKnown: true}, want: true},
		"CRDMissing":        {reason: "Without cert-manager the function issues.", in: Input{Issuer: iss}, o: Observed{CertManagerKnown: true}},
		"UnknownNew":        {reason: "Not known yet, for a new Database: the function issues (this call's answer is not applied).", in: Input{Issuer: iss}},
		"UnknownHasCert":    {reason: "Not known yet, with a Certificate composed: it is kept.", in: Input{Issuer: iss}, o: Observed{Exists: map[resource.Name]bool{rnCertificate: true}}, want: true},
		"KnownMissingNoCRD": {reason: "cert-manager gone: the function issues again.", in: Input{Issuer: iss}, o: Observed{CertManagerKnown: true, Exists: map[resource.Name]bool{rnCertificate: true}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := Params{names: names{Name: "orders", Namespace: "team-a"}}
			if err := p.ResolveTLS(tc.o, tc.in, fixedIssuer{}, testNow); err != nil {
				t.Fatal(err)
			}
			if p.CertManager != tc.want {
				t.Errorf("%s\nResolveTLS(...): CertManager: want %t, got %t", tc.reason, tc.want, p.CertManager)
			}
			if !p.CertManager && len(p.TLS.Key) == 0 {
				t.Errorf("%s\nResolveTLS(...): the function issues, but issued nothing", tc.reason)
			}
		})
	}
}

// TestRunFunctionTLSStable: once the TLS Secrets are observed, calls issue
// nothing and compose the same Secrets; at renewal time the server
// certificate changes and the CA does not.
func TestRunFunctionTLSStable(t *testing.T) {
	iss := &countingIssuer{}
	now := testNow
	f := New(logging.NewNopLogger(), WithPasswordGenerator(func() (string, error) { return testPassword, nil }), WithIssuer(iss), WithClock(func() time.Time { return now }))
	secrets := func(observed map[string]string) Certificates {
		t.Helper()
		rsp, err := f.RunFunction(t.Context(), req(xr("orders", pgDev), observed))
		if err != nil {
			t.Fatal(err)
		}
		if len(rsp.GetResults()) > 0 {
			t.Fatalf("RunFunction(...): %v", rsp.GetResults())
		}
		d := rsp.GetDesired().GetResources()
		dec := func(n, k string) []byte {
			v, _ := d[n].GetResource().AsMap()["data"].(map[string]any)[k].(string)
			b, _ := base64.StdEncoding.DecodeString(v)
			return b
		}
		return Certificates{CACert: dec("tls-ca", "ca.crt"), CAKey: dec("tls-ca", "ca.key"), Cert: dec("tls", "tls.crt"), Key: dec("tls", "tls.key")}
	}
	first := secrets(map[string]string{"secret": secretJSON(testPassword)})
	if iss.cas != 1 || iss.servers != 1 {
		t.Fatalf("first call: want one CA and one server certificate, issued %d and %d", iss.cas, iss.servers)
	}
	observed := tlsSecretsJSON(first)
	observed["secret"] = secretJSON(testPassword)
	for range 3 {
		now = now.Add(24 * time.Hour)
		if got := secrets(observed); !cmp.Equal(first, got) {
			t.Errorf("a call with the TLS Secrets observed composed other certificates")
		}
	}
	if iss.cas != 1 || iss.servers != 1 {
		t.Errorf("calls with the TLS Secrets observed: want nothing issued, issued %d CAs and %d server certificates in all", iss.cas, iss.servers)
	}
	now = testNow.Add(61 * 24 * time.Hour)
	renewed := secrets(observed)
	if string(renewed.CACert) != string(first.CACert) || string(renewed.CAKey) != string(first.CAKey) {
		t.Errorf("after renewal: the CA changed, clients holding ca.crt would stop verifying")
	}
	if string(renewed.Cert) == string(first.Cert) || string(renewed.Key) == string(first.Key) {
		t.Errorf("after renewal: the server certificate and key are the old ones")
	}
	if strings.Contains(renewed.ServerFingerprint(), " ") || renewed.ServerFingerprint() == first.ServerFingerprint() {
		t.Errorf("after renewal: fingerprint %q, want a new one", renewed.ServerFingerprint())
	}
}

// BenchmarkIssueServer is what a renewal costs the function: one P-256 key
// and signature.
func BenchmarkIssueServer(b *testing.B) {
	c := testCerts()
	hosts := names{Name: "orders", Namespace: "team-a"}.TLSHosts()
	for b.Loop() {
		if _, _, err := (X509Issuer{}).Server(c.CACert, c.CAKey, hosts, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// TestServersUseTLS: what the builders make of TLS, per engine and
// environment: the servers' settings, production refusing plaintext, the
// Secret mounted read-only with 0440 (the key only into the server pods),
// the clients verifying, and the ProviderConfig verifying against the
// Secret.
func TestServersUseTLS(t *testing.T) {
	type want struct {
		config, files []string
		notConfig     []string
	}
	cases := map[string]struct {
		reason string
		spec   string
		want   want
	}{
		"PostgreSQLDevelopment": {
			reason: "PostgreSQL offers TLS from the mounted files, and host lines accept plaintext too outside production.",
			spec:   "postgresql-18-development-metrics=true",
			want: want{
				config: []string{"ssl = on", "ssl_cert_file = '/etc/dbplane-tls/tls.crt'", "ssl_key_file = '/etc/dbplane-tls/tls.key'", "ssl_ca_file = '/etc/dbplane-tls/ca.crt'", "ssl_min_protocol_version = 'TLSv1.2'", "sslmode=verify-full sslrootcert=/etc/dbplane-tls/ca.crt"},
				files:  []string{"host    all          all          all      scram-sha-256", "host    replication  replication  all      scram-sha-256"},
			},
		},
		"PostgreSQLProduction": {
			reason: "Production's pg_hba.conf has only hostssl lines: plaintext finds no line.",
			spec:   "postgresql-14-production-metrics=false",
			want: want{
				config: []string{"ssl = on"},
				files:  []string{"hostssl all          all          all      scram-sha-256", "hostssl replication  replication  all      scram-sha-256"},
			},
		},
		"MySQLStaging": {
			reason: "MySQL offers TLS from the mounted files; outside production it does not require it.",
			spec:   "mysql-8.4-staging-metrics=true",
			want: want{
				config:    []string{"ssl_ca = /etc/dbplane-tls/ca.crt", "ssl_cert = /etc/dbplane-tls/tls.crt", "ssl_key = /etc/dbplane-tls/tls.key", "tls_version = TLSv1.2,TLSv1.3"},
				notConfig: []string{"require_secure_transport"},
				files:     []string{"ssl-ca = /etc/dbplane-tls/ca.crt"},
			},
		},
		"MySQLProduction": {
			reason: "Production MySQL requires TLS.",
			spec:   "mysql-8.0-production-metrics=false",
			want:   want{config: []string{"require_secure_transport = ON"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(t, everySpec()[tc.spec])
			p.TLS = testCerts()
			files := strings.Join(slices.Collect(maps.Values(p.Files)), "\n")
			for _, w := range tc.want.config {
				if !strings.Contains(p.Config, w) {
					t.Errorf("%s\nconfig: want %q in:\n%s", tc.reason, w, p.Config)
				}
			}
			for _, w := range tc.want.notConfig {
				if strings.Contains(p.Config, w) {
					t.Errorf("%s\nconfig: want no %q in:\n%s", tc.reason, w, p.Config)
				}
			}
			for _, w := range tc.want.files {
				if !strings.Contains(files, w) {
					t.Errorf("%s\nfiles: want %q in:\n%s", tc.reason, w, files)
				}
			}
			if strings.Contains(files, "host    ") == strings.Contains(files, "hostssl") && p.names.Engine == "postgresql" {
				t.Errorf("%s\npg_hba.conf: want host or hostssl lines, not both:\n%s", tc.reason, files)
			}

			// The server pod mounts ca.crt, tls.crt and tls.key, 0440,
			// read-only, into every container; the Jobs the CA alone.
			pod := StatefulSet(p).Spec.Template.Spec
			if diff := cmp.Diff(tlsVolumeOf(p, "ca.crt", "tls.crt", "tls.key"), volume(pod.Volumes, "tls")); diff != "" {
				t.Errorf("%s\nStatefulSet TLS volume: -want, +got:\n%s", tc.reason, diff)
			}
			if v := volume(pod.Volumes, "tls"); v.Secret == nil || *v.Secret.DefaultMode != 0o440 || v.Secret.SecretName != "orders-tls" {
				t.Errorf("%s\nStatefulSet TLS volume: want Secret orders-tls, mode 0440, got %+v", tc.reason, v)
			}
			for _, c := range append(pod.InitContainers, pod.Containers...) {
				if !slices.Contains(c.VolumeMounts, tlsMount()) {
					t.Errorf("%s\ncontainer %s: no read-only TLS mount at %s", tc.reason, c.Name, tlsDir)
				}
			}
			if p.Backup {
				job := BackupCronJob(p).Spec.JobTemplate.Spec.Template.Spec
				if diff := cmp.Diff(tlsVolumeOf(p, "ca.crt"), volume(job.Volumes, "tls")); diff != "" {
					t.Errorf("%s\nbackup Job TLS volume, the CA alone: -want, +got:\n%s", tc.reason, diff)
				}
			}

			pc := ProviderConfig(p)
			if pc.Spec.TLS != "verify-full" || pc.Spec.TLSSecretRef == nil || pc.Spec.TLSSecretRef.Name != "orders-tls" {
				t.Errorf("%s\nProviderConfig: want verify-full against orders-tls, got %q %+v", tc.reason, pc.Spec.TLS, pc.Spec.TLSSecretRef)
			}
			// No key anywhere but the Secrets.
			for _, c := range Compose(p) {
				if c.Kind.Name == rnTLS || c.Kind.Name == rnCA {
					continue
				}
				u, err := ToComposed(c.Object)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(u.Object)
				for _, k := range [][]byte{p.TLS.Key, p.TLS.CAKey} {
					if strings.Contains(string(b), strings.TrimSpace(string(k))[40:80]) || strings.Contains(string(b), base64.StdEncoding.EncodeToString(k)) {
						t.Errorf("%s\n%s holds a private key", tc.reason, c.Name)
					}
				}
			}
		})
	}
}

func volume(vs []corev1.Volume, name string) corev1.Volume {
	for _, v := range vs {
		if v.Name == name {
			return v
		}
	}
	return corev1.Volume{}
}

// TestRunFunctionCertManager: with an Issuer in the Input the function asks
// for cert-manager's CRD; once it exists it composes a Certificate for the
// TLS Secret, and none of its own TLS Secrets.
func TestRunFunctionCertManager(t *testing.T) {
	r := req(xr("orders", pgDev), map[string]string{"secret": secretJSON(testPassword)})
	r.Input = resource.MustStructJSON(`{"apiVersion":"fn.database.example.com/v1alpha1","kind":"Input","tls":{"issuerRef":{"name":"databases","kind":"ClusterIssuer"}}}`)
	f := New(logging.NewNopLogger(), WithIssuer(fixedIssuer{}))
	rsp, err := f.RunFunction(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rsp.GetRequirements().GetResources()[requiredCertManager]; !ok {
		t.Fatalf("with an Issuer: want cert-manager's CRD required, got %v", rsp.GetRequirements())
	}
	r.RequiredResources = map[string]*fnv1.Resources{requiredCertManager: {Items: []*fnv1.Resource{{Resource: resource.MustStructJSON(`{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition","metadata":{"name":"certificates.cert-manager.io"}}`)}}}}
	rsp, err = f.RunFunction(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	d := rsp.GetDesired().GetResources()
	if d["tls"] != nil || d["tls-ca"] != nil {
		t.Errorf("with cert-manager: the function's own TLS Secrets are composed")
	}
	c := d["certificate"].GetResource().AsMap()
	spec, _ := c["spec"].(map[string]any)
	want := map[string]any{"name": "databases", "kind": "ClusterIssuer", "group": "cert-manager.io"}
	if diff := cmp.Diff(want, spec["issuerRef"]); diff != "" || c["kind"] != "Certificate" || spec["secretName"] != "orders-tls" {
		t.Errorf("with cert-manager: want a Certificate for Secret orders-tls from the Input's issuer, got %v (issuerRef -want, +got: %s)", c, diff)
	}
	if dns, _ := spec["dnsNames"].([]any); !slices.Contains(dns, any("*.orders-headless.team-a.svc.cluster.local")) || !slices.Contains(spec["ipAddresses"].([]any), any("127.0.0.1")) { //nolint:forcetypeassert // A test of what was composed.
		t.Errorf("with cert-manager: the Certificate does not name the pods and loopback: %v", spec)
	}
}
