package fake

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// AddressMapTo starts a TCP listener on loopback that accepts connections
// and closes them at once, writes an address map sending from to it, and
// returns the map and a channel that receives once per accepted
// connection. It shows which address a driver dialled, with no server.
func AddressMapTo(t testing.TB, from string) (xsql.AddressMap, <-chan struct{}) {
	t.Helper()
	l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() }) // Stops the accept loop.
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			// Counted before it closes: the driver's error comes after.
			select {
			case accepted <- struct{}{}:
			default:
			}
			_ = c.Close() // The driver sees a closed connection.
		}
	}()
	m := xsql.AddressMap{Path: filepath.Join(t.TempDir(), "addresses.yaml")}
	if err := os.WriteFile(m.Path, []byte(from+": "+l.Addr().String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return m, accepted
}
