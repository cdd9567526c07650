package harness

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
)

// FreePort returns a TCP port nothing listens on, on any interface. Another
// process may take it before the caller binds it: a caller that can, retries.
func FreePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close() //nolint:errcheck // Only the port is needed.
	a, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("cannot find a free port: %s is not a TCP address", l.Addr())
	}
	return a.Port, nil
}

// PortTaken tells whether something already listens on port, on any
// interface.
func PortTaken(port int) bool {
	// Listen uses its context only to resolve the address, and a numeric
	// one needs no resolving: Process.Start, the caller, has no context by
	// design.
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return true
	}
	_ = l.Close()
	return false
}

// listener says which process listens on port, when ss can tell.
func listener(port int) string {
	out, err := exec.Command("ss", "-Hltnp", "sport = :"+strconv.Itoa(port)).Output() //nolint:gosec,noctx // ss with a filter on a port number; a quick local query.
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
