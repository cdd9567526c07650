//go:build e2e

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/servers"
)

// SQLUsersComposition is the Composition whose function step composes the
// SQL provider's ProviderConfig, Users and Replication (Input `sqlUsers:
// true`). Every other Database gets the XRD's default Composition, which
// composes none. A Database selects it with
// spec.crossplane.compositionRef.name.
const SQLUsersComposition = "databases-sql-users.database.example.com"

// providerServiceAccount is what examples/provider/rbac.yaml grants.
const providerServiceAccount = "provider-sql"

// crossplaneSQLRBAC grants Crossplane the provider's kinds it composes, as
// Crossplane's RBAC manager does for an installed Provider package (the
// provider runs here as a local process, not as a package).
const crossplaneSQLRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: crossplane:dbplane:compose-sql
  labels:
    rbac.crossplane.io/aggregate-to-crossplane: "true"
rules:
- apiGroups: [sql.database.example.com]
  resources: [providerconfigs, users, replications]
  verbs: [get, list, watch, create, update, patch, delete]
`

// installProvider does what installing the provider package and applying
// examples/provider/rbac.yaml would: the provider's CRDs, its
// ServiceAccount and RBAC, Crossplane's access to its kinds, and a
// kubeconfig holding the ServiceAccount's token.
func (c *Cluster) installProvider(ctx context.Context) error {
	if _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-f", filepath.Join(c.Root, "package", "provider", "crds")); err != nil {
		return err
	}
	if err := c.waitCRDsEstablished(ctx); err != nil {
		return err
	}
	if err := c.Apply(ctx, crossplaneSQLRBAC); err != nil {
		return err
	}
	return c.installProviderIdentity(ctx)
}

// installProviderIdentity gives the provider process the identity a
// provider Deployment would have: its ServiceAccount and RBAC
// (examples/provider/rbac.yaml) and a kubeconfig holding its token.
func (c *Cluster) installProviderIdentity(ctx context.Context) error {
	// Ours, as-is: what the README tells operators to apply.
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", filepath.Join(c.Root, "examples", "provider", "rbac.yaml")); err != nil {
		return err
	}
	token, err := c.Kubectl(ctx, nil, "create", "token", providerServiceAccount, "-n", crossplaneNamespace, "--duration=24h")
	if err != nil {
		return err
	}
	c.providerKubeconfig = filepath.Join(c.Dir, providerServiceAccount+".kubeconfig")
	server := "https://127.0.0.1:" + strconv.Itoa(c.ports["kube-apiserver"])
	return writeKubeconfig(c.providerKubeconfig, server, c.pki.caCert, providerServiceAccount, "\n    token: "+strings.TrimSpace(token))
}

// startProvider starts the SQL provider as its ServiceAccount, dialling
// servers through the address map MapAddress writes.
func (c *Cluster) startProvider(ctx context.Context) error {
	ports, err := c.port(ctx, "provider-metrics", "provider-health")
	if err != nil {
		return err
	}
	c.addressMap = filepath.Join(c.Dir, "sql-addresses.json")
	p := c.newProcess("provider", c.bins["provider"], ports, []string{"KUBECONFIG=" + c.providerKubeconfig},
		"--debug",
		"--address-map="+c.addressMap,
		// Users and Replications are checked every 2 s, not every minute:
		// a standby that starts streaming shows in its Pod's role label
		// within seconds.
		"--poll-interval=2s",
		"--metrics-address=127.0.0.1:"+strconv.Itoa(ports[0]),
		"--health-address=127.0.0.1:"+strconv.Itoa(ports[1]),
	)
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(ports[1])+"/readyz")
		return err
	})
}

// MapAddress makes the provider dial to (a loopback server) when it dials
// from (a Service's or pod's in-cluster host:port). The provider reads the
// map on every dial.
func (c *Cluster) MapAddress(from, to string) error {
	c.mapMu.Lock()
	defer c.mapMu.Unlock()
	m := map[string]string{}
	b, err := os.ReadFile(c.addressMap)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("cannot read the address map: %w", err)
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("cannot parse the address map: %w", err)
		}
	}
	m[from] = to
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		return err
	}
	// Renamed into place, so the provider never reads half a file.
	tmp := c.addressMap + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("cannot write the address map: %w", err)
	}
	return os.Rename(tmp, c.addressMap)
}

// AddressMap is the provider's address map file.
func (c *Cluster) AddressMap() string { return c.addressMap }

// ServePostgreSQL starts a real PostgreSQL server on loopback behind the
// first pod of Database ns/name (Serve).
func (c *Cluster) ServePostgreSQL(t testing.TB, ns, name string) *servers.Server {
	t.Helper()
	return c.Serve(t, servers.PostgreSQL, ns, name)
}

// Serve starts a real server of engine (PostgreSQL, or MariaDB for MySQL)
// on loopback behind the first pod of Database ns/name, and maps the
// read-write Service's host and the pod's host to it, so the provider and
// RunPod's pods reach it as they would in a cluster. The superuser's
// password is the one the function generated into the Database's
// credentials Secret, which it waits for. The server stops when the test
// ends.
func (c *Cluster) Serve(t testing.TB, engine, ns, name string) *servers.Server {
	t.Helper()
	// With the Database's TLS Secret, which the composed ProviderConfig
	// and Jobs verify the server against.
	srv := servers.StartTLS(t, engine, c.secretPassword(t, ns, name+"-credentials"), c.tlsFiles(t, ns, name+"-tls"))
	to := "127.0.0.1:" + strconv.Itoa(srv.Port)
	port := map[string]string{servers.PostgreSQL: ":5432", servers.MySQL: ":3306"}[engine]
	for _, h := range []string{name + "." + ns + ".svc.cluster.local", name + "-0." + name + "-headless." + ns + ".svc.cluster.local"} {
		if err := c.MapAddress(h+port, to); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

// ServeStandby starts a real streaming standby of primary behind pod ordinal
// of Database ns/name, and maps the pod's host to it. It copies the primary
// as the replication login, with the password from the login's connection
// Secret, which it waits for: the provider creates the login on the primary.
func (c *Cluster) ServeStandby(t testing.TB, ns, name string, primary *servers.Server, ordinal int) *servers.Server {
	t.Helper()
	pod := name + "-" + strconv.Itoa(ordinal)
	st := primary.StartStandby(t, pod, "replication", c.secretPassword(t, ns, name+"-replication"))
	if err := c.MapAddress(pod+"."+name+"-headless."+ns+".svc.cluster.local:5432", "127.0.0.1:"+strconv.Itoa(st.Port)); err != nil {
		t.Fatal(err)
	}
	return st
}

// tlsFiles waits until the TLS Secret ns/name exists and returns its files.
func (c *Cluster) tlsFiles(t testing.TB, ns, name string) *servers.TLS {
	t.Helper()
	var f *servers.TLS
	if err := harness.Poll(t.Context(), ReadyTimeout, func(ctx context.Context) error {
		s, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(s.Data["tls.key"]) == 0 {
			return errors.New("no tls.key")
		}
		f = &servers.TLS{CA: s.Data["ca.crt"], Cert: s.Data["tls.crt"], Key: s.Data["tls.key"]}
		return nil
	}); err != nil {
		t.Fatalf("Secret %s/%s: %v", ns, name, err)
	}
	return f
}

// secretPassword waits until Secret ns/name has a password and returns it.
func (c *Cluster) secretPassword(t testing.TB, ns, name string) string {
	t.Helper()
	var password string
	if err := harness.Poll(t.Context(), ReadyTimeout, func(ctx context.Context) error {
		s, err := c.Kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if password = string(s.Data["password"]); password == "" {
			return errors.New("no password")
		}
		return nil
	}); err != nil {
		t.Fatalf("Secret %s/%s: %v", ns, name, err)
	}
	return password
}
