package xsql

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// A TLSServer is a server whose certificate the provider can look at and
// make it read again.
type TLSServer interface {
	// ServedCertificate is the DER certificate the server presents to a
	// new connection.
	ServedCertificate(ctx context.Context) ([]byte, error)
	// ReloadTLS makes the server read its certificate, key and CA files
	// again, without a restart: new connections get the new certificate,
	// open ones keep theirs.
	ReloadTLS(ctx context.Context) error
}

// TLSReloads remembers which servers were seen presenting the certificate
// they should, so that a steady-state reconcile costs no handshake.
type TLSReloads struct {
	mu       sync.Mutex
	ok       map[string]bool
	inFlight map[string]bool
}

// EnsureInBackground runs Ensure for ep without blocking the caller, at
// most once at a time per server, bounded by timeout: for callers whose
// reconcile must not wait on a member that does not answer (failover).
// done, when set, is called with Ensure's outcome.
func (t *TLSReloads) EnsureInBackground(ep Endpoint, s TLSServer, timeout time.Duration, done func(bool, error)) {
	if Fingerprint(ep.Certificate) == "" {
		return
	}
	key := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))
	t.mu.Lock()
	if t.ok[key+"/"+Fingerprint(ep.Certificate)] || t.inFlight[key] {
		t.mu.Unlock()
		return
	}
	if t.inFlight == nil {
		t.inFlight = map[string]bool{}
	}
	t.inFlight[key] = true
	t.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		ok, err := t.Ensure(ctx, ep, s)
		t.mu.Lock()
		delete(t.inFlight, key)
		t.mu.Unlock()
		if done != nil {
			done(ok, err)
		}
	}()
}

// Ensure makes the server at ep present ep.Certificate: when a new
// connection gets another certificate, it reloads the server's TLS and
// looks again. It reports whether the server presents it; false while the
// server's files are not updated yet (the kubelet updates a Secret's
// volume a minute or so after the Secret): call again later. Calling it
// again is harmless: a reload of unchanged files changes nothing.
func (t *TLSReloads) Ensure(ctx context.Context, ep Endpoint, s TLSServer) (bool, error) {
	want := Fingerprint(ep.Certificate)
	if want == "" {
		return true, nil
	}
	key := net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port)) + "/" + want
	t.mu.Lock()
	done := t.ok[key]
	t.mu.Unlock()
	if done {
		return true, nil
	}
	served, err := s.ServedCertificate(ctx)
	if err != nil {
		return false, err
	}
	if FingerprintDER(served) != want {
		if err := s.ReloadTLS(ctx); err != nil {
			return false, err
		}
		if served, err = s.ServedCertificate(ctx); err != nil {
			return false, errors.Wrap(err, "after reloading TLS")
		}
		if FingerprintDER(served) != want {
			return false, nil
		}
	}
	t.mu.Lock()
	if t.ok == nil {
		t.ok = map[string]bool{}
	}
	t.ok[key] = true
	t.mu.Unlock()
	return true, nil
}
