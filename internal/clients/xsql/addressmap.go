package xsql

import (
	"context"
	"net"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// An AddressMap redirects connections: a YAML or JSON file mapping the
// host:port a ProviderConfig or Replication member names to the host:port
// to dial instead. It is for tests, where the servers a control plane's
// Services name run on loopback; a server's address not in the map is
// dialled as it is.
//
// The file is read on every dial, so a test can add entries while the
// provider runs. Dials are rare: the pools keep connections open.
type AddressMap struct {
	// Path of the file. A file that does not exist maps nothing.
	Path string
}

// Lookup returns where to dial addr: its entry in the file, else addr.
// Host names match regardless of case.
func (m AddressMap) Lookup(addr string) (string, error) {
	b, err := os.ReadFile(m.Path)
	if errors.Is(err, os.ErrNotExist) {
		return addr, nil
	}
	if err != nil {
		return "", errors.Wrapf(err, "cannot read address map %q", m.Path)
	}
	entries := map[string]string{}
	if err := yaml.Unmarshal(b, &entries); err != nil {
		return "", errors.Wrapf(err, "cannot parse address map %q", m.Path)
	}
	for from, to := range entries {
		if strings.EqualFold(from, addr) {
			return to, nil
		}
	}
	return addr, nil
}

// Dial returns a DialFunc that dials through next, or TCP when next is
// nil, to where the map sends each address.
func (m AddressMap) Dial(next DialFunc) DialFunc {
	if next == nil {
		next = (&net.Dialer{}).DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, err := m.Lookup(addr)
		if err != nil {
			return nil, err
		}
		return next(ctx, network, to)
	}
}
