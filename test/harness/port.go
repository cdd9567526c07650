package harness

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
)

// FreePort returns a TCP port nothing listens on, on any interface. Another
// process may take it before the caller binds it: a caller that can, retries.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close() //nolint:errcheck // Only the port is needed.
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortTaken tells whether something already listens on port, on any
// interface.
func PortTaken(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return true
	}
	_ = l.Close()
	return false
}

// listener says which process listens on port, when ss can tell.
func listener(port int) string {
	out, err := exec.Command("ss", "-Hltnp", "sport = :"+strconv.Itoa(port)).Output() //nolint:noctx // A quick local query.
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
