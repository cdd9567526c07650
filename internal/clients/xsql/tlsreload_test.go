package xsql

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// selfSigned is a throwaway certificate, PEM and DER.
func selfSigned(t *testing.T, cn string) ([]byte, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}

// fakeTLS serves certificates in turn: served[0] until a reload, then the
// next.
type fakeTLS struct {
	served    [][]byte
	reloads   int
	looks     int
	reloadErr error
}

func (f *fakeTLS) ServedCertificate(context.Context) ([]byte, error) {
	f.looks++
	return f.served[min(f.reloads, len(f.served)-1)], nil
}

func (f *fakeTLS) ReloadTLS(context.Context) error {
	if f.reloadErr != nil {
		return f.reloadErr
	}
	f.reloads++
	return nil
}

func TestTLSReloadsEnsure(t *testing.T) {
	_, oldDER := selfSigned(t, "old")
	newPEM, newDER := selfSigned(t, "new")
	errBoom := errors.New("boom")
	type want struct {
		ok             bool
		err            error
		reloads, looks int
	}
	cases := map[string]struct {
		reason string
		cert   []byte
		server *fakeTLS
		calls  int
		want   want
	}{
		"NoCertificate": {
			reason: "Without a certificate to present nothing is looked at.",
			server: &fakeTLS{served: [][]byte{oldDER}}, calls: 1,
			want: want{ok: true},
		},
		"AlreadyPresented": {
			reason: "A server that presents its certificate is not reloaded, and looked at once however often asked.",
			cert:   newPEM, server: &fakeTLS{served: [][]byte{newDER}}, calls: 3,
			want: want{ok: true, looks: 1},
		},
		"Reloaded": {
			reason: "A server that presents an older certificate is reloaded, and presents the new one.",
			cert:   newPEM, server: &fakeTLS{served: [][]byte{oldDER, newDER}}, calls: 2,
			want: want{ok: true, reloads: 1, looks: 2},
		},
		"FilesNotUpdatedYet": {
			reason: "While the server's files hold the old certificate, every call reloads and reports false: the next reconcile tries again.",
			cert:   newPEM, server: &fakeTLS{served: [][]byte{oldDER, oldDER, oldDER}}, calls: 2,
			want: want{ok: false, reloads: 2, looks: 4},
		},
		"ReloadFails": {
			reason: "A failed reload is an error.",
			cert:   newPEM, server: &fakeTLS{served: [][]byte{oldDER}, reloadErr: errBoom}, calls: 1,
			want: want{err: errBoom, looks: 1},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := &TLSReloads{}
			var got want
			for range tc.calls {
				got.ok, got.err = r.Ensure(t.Context(), Endpoint{Host: "db", Port: 5432, Certificate: tc.cert}, tc.server)
			}
			got.reloads, got.looks = tc.server.reloads, tc.server.looks
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), cmpopts.EquateErrors()); diff != "" {
				t.Errorf("%s\nEnsure(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestEndpointTLSConfig(t *testing.T) {
	caPEM, _ := selfSigned(t, "ca")
	cases := map[string]struct {
		reason     string
		ep         Endpoint
		nilConfig  bool
		skipVerify bool
		roots      bool
		err        bool
	}{
		"Disable":         {reason: "disable: no TLS.", ep: Endpoint{TLS: v1alpha1.TLSDisable}, nilConfig: true},
		"Unset":           {reason: "unset: no TLS, as the CRD's default.", ep: Endpoint{}, nilConfig: true},
		"Require":         {reason: "require: encrypted, not verified.", ep: Endpoint{TLS: v1alpha1.TLSRequire}, skipVerify: true},
		"VerifyFullCA":    {reason: "verify-full with a CA: verified against it, for the host.", ep: Endpoint{Host: "db.ns.svc", TLS: v1alpha1.TLSVerifyFull, CA: caPEM}, roots: true},
		"VerifyFullNoCA":  {reason: "verify-full without a CA: the system's trust store.", ep: Endpoint{Host: "db.ns.svc", TLS: v1alpha1.TLSVerifyFull}},
		"VerifyFullBadCA": {reason: "An unparseable CA is an error, not the system's trust store.", ep: Endpoint{Host: "db", TLS: v1alpha1.TLSVerifyFull, CA: []byte("x")}, err: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := tc.ep.TLSConfig()
			if (err != nil) != tc.err {
				t.Fatalf("%s\nTLSConfig(): error %v", tc.reason, err)
			}
			if err != nil {
				return
			}
			if (c == nil) != tc.nilConfig {
				t.Fatalf("%s\nTLSConfig(): %v", tc.reason, c)
			}
			if c == nil {
				return
			}
			if c.InsecureSkipVerify != tc.skipVerify || (c.RootCAs != nil) != tc.roots || c.MinVersion < 0x0303 {
				t.Errorf("%s\nTLSConfig(): skip verify %t, roots %t, min version %x", tc.reason, c.InsecureSkipVerify, c.RootCAs != nil, c.MinVersion)
			}
			if !c.InsecureSkipVerify && c.ServerName != tc.ep.Host {
				t.Errorf("%s\nTLSConfig(): ServerName %q, want %q", tc.reason, c.ServerName, tc.ep.Host)
			}
		})
	}
}

// TestTLSReloadsEnsureInBackground: the caller does not wait, the server
// is reloaded, and once it presents its certificate nothing more is done.
func TestTLSReloadsEnsureInBackground(t *testing.T) {
	_, oldDER := selfSigned(t, "old")
	newPEM, newDER := selfSigned(t, "new")
	srv := &fakeTLS{served: [][]byte{oldDER, newDER}}
	r := &TLSReloads{}
	ep := Endpoint{Host: "db", Port: 5432, Certificate: newPEM}
	done := make(chan bool, 1)
	r.EnsureInBackground(ep, srv, time.Second, func(ok bool, err error) {
		if err != nil {
			t.Error(err)
		}
		done <- ok
	})
	if ok := <-done; !ok || srv.reloads != 1 {
		t.Fatalf("EnsureInBackground: want the server reloaded once and presenting its certificate, got ok %t, %d reloads", ok, srv.reloads)
	}
	r.EnsureInBackground(ep, srv, time.Second, func(bool, error) {
		t.Error("EnsureInBackground: looked again at a server that presents its certificate")
	})
	if srv.looks != 2 {
		t.Errorf("EnsureInBackground: want 2 looks in all, got %d", srv.looks)
	}
}
