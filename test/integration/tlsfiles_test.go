package integration

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/fn"
	"github.com/dbplane/dbplane/test/harness/servers"
)

// composedTLSDir is where the composed pods mount the TLS Secret.
const composedTLSDir = "/etc/dbplane-tls"

// sharedTLS is the certificate every test server offers TLS with: the
// function's issuer's CA and a server certificate for loopback, which a
// composed client (verify-full against the CA, host 127.0.0.1) accepts.
var sharedTLS = sync.OnceValue(func() servers.TLS {
	now := time.Now()
	ca, caKey, err := fn.X509Issuer{}.CA("test", now)
	if err != nil {
		panic(err)
	}
	cert, key, err := fn.X509Issuer{}.Server(ca, caKey, []string{"localhost", "127.0.0.1", "::1"}, now)
	if err != nil {
		panic(err)
	}
	return servers.TLS{CA: ca, Cert: cert, Key: key}
})

// testTLS is a copy of sharedTLS for one server.
func testTLS() *servers.TLS {
	c := sharedTLS()
	return &c
}

// tlsOf is a Database's composed certificates as a server's files.
func tlsOf(c fn.Certificates) *servers.TLS {
	return &servers.TLS{CA: c.CACert, Cert: c.Cert, Key: c.Key}
}

// resolveTLS issues p's certificates as the function does on a new
// Database's first call.
func resolveTLS(t testing.TB, p *fn.Params) {
	t.Helper()
	if err := p.ResolveTLS(fn.Observed{}, fn.Input{}, fn.X509Issuer{}, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// localTLS replaces the composed TLS directory in s with dir.
func localTLS(s, dir string) string {
	return strings.ReplaceAll(s, composedTLSDir, dir)
}

// tlsSecret is the TLS Secret "tls" in the provider's namespace holding c,
// which fakeAPI's ProviderConfig then verifies the server with.
func tlsSecret(c *servers.TLS) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: providerNamespace, Name: tlsSecretName},
		Data:       map[string][]byte{"ca.crt": c.CA, "tls.crt": c.Cert, "tls.key": c.Key},
	}
}

// tlsSecretName is the TLS Secret fakeAPI looks for.
const tlsSecretName = "tls"

// tempTLSDir writes c into a new directory of t's, for servers the test
// starts itself.
func tempTLSDir(t testing.TB, c *servers.TLS, cred *syscall.Credential) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := servers.WriteTLS(dir, c, cred); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil { //nolint:gosec // The server's user must reach the files.
		t.Fatal(err)
	}
	return dir
}
