package integration

import (
	"context"
	"testing"
)

// BenchmarkConnect opens and closes one connection per iteration, login
// included, as a pool that grows or a client without a pool does, against
// loopback servers: in plaintext, and with TLS verified against the CA and
// the host name as the composed clients do (ECDSA P-256 certificates, as
// the function issues). The difference is the handshake's cost. Run with
// make bench-tls.
func BenchmarkConnect(b *testing.B) {
	for _, engine := range []string{postgresql, mysql} {
		s := start(b, engine)
		ca := s.TLS.CA
		for _, mode := range []string{"plaintext", "verify-full"} {
			b.Run(engine+"/"+mode, func(b *testing.B) {
				ctx := context.Background()
				tc := verifying(b, ca, "127.0.0.1", nil)
				if mode == "plaintext" {
					tc = nil
				}
				for b.Loop() {
					switch engine {
					case postgresql:
						c, err := pgConnect(ctx, s.Port, tc)
						if err != nil {
							b.Fatal(err)
						}
						_ = c.Close(ctx)
					case mysql:
						_, done, err := myConnect(ctx, s.Port, tc)
						if err != nil {
							b.Fatal(err)
						}
						done()
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "conns/s")
			})
		}
	}
}
