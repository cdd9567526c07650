//go:build e2e

package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"

	"github.com/dbplane/dbplane/test/harness"
)

// Crossplane's package kinds the registry install reads and writes.
var (
	gvrConfiguration    = schema.GroupVersionResource{Group: "pkg.crossplane.io", Version: "v1", Resource: "configurations"}
	gvrProvider         = schema.GroupVersionResource{Group: "pkg.crossplane.io", Version: "v1", Resource: "providers"}
	gvrProviderRevision = schema.GroupVersionResource{Group: "pkg.crossplane.io", Version: "v1", Resource: "providerrevisions"}
)

// providerName is the Provider object Crossplane's package manager creates
// for the configuration's dependency xpkg.dbplane.io/dbplane/provider-sql.
const providerName = "dbplane-provider-sql"

// providerTLSSecret is the provider revision's webhook TLS Secret.
const providerTLSSecret = "dbplane-provider-sql-tls-server"

// readmeRepo is the README install steps' line naming the repository.
const readmeRepo = "REPO=xpkg.dbplane.io/dbplane"

// RegistryRepo is the repository on the loopback registry the packages are
// pushed to, once Start has started it (Options.FromRegistry).
func (c *Cluster) RegistryRepo() string {
	return "127.0.0.1:" + strconv.Itoa(c.ports["registry"]) + "/dbplane"
}

// startRegistry starts the CNCF distribution registry on loopback, storing
// in the cluster's directory. Crossplane and the crossplane CLI speak plain
// HTTP to a loopback registry (go-containerregistry's rule for 127.0.0.1).
func (c *Cluster) startRegistry(ctx context.Context) error {
	ports, err := c.port(ctx, "registry")
	if err != nil {
		return err
	}
	cfg := filepath.Join(c.Dir, "registry.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `version: 0.1
log: {level: info}
storage:
  filesystem: {rootdirectory: %s}
http:
  addr: 127.0.0.1:%d
`, filepath.Join(c.Dir, "registry"), ports[0]), 0o600); err != nil {
		return fmt.Errorf("cannot write the registry's configuration: %w", err)
	}
	p := c.newProcess("registry", c.bins["registry"], ports, []string{"OTEL_TRACES_EXPORTER=none"}, "serve", cfg)
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitReady(ctx, componentTimeout, func(ctx context.Context) error {
		_, err := httpGet(ctx, http.DefaultClient, "http://127.0.0.1:"+strconv.Itoa(ports[0])+"/v2/")
		return err
	})
}

// InstallSteps returns the shell block of the README's install section.
func InstallSteps(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "README.md")) //nolint:gosec // Our README.
	if err != nil {
		return "", err
	}
	sec := string(b)
	start := strings.Index(sec, "## Install (platform teams)")
	if start < 0 {
		return "", errors.New("README.md: no install section")
	}
	sec = sec[start:]
	open := strings.Index(sec, "```sh\n")
	if open < 0 {
		return "", errors.New("README.md: no sh block in the install section")
	}
	sec = sec[open+len("```sh\n"):]
	end := strings.Index(sec, "```")
	if end < 0 {
		return "", errors.New("README.md: the install section's sh block does not end")
	}
	return sec[:end], nil
}

// installPackages runs the README's install steps as a platform team would,
// in a shell, with the pinned crossplane CLI and kubectl on PATH and the
// admin's kubeconfig. The one change: the REPO line names the loopback
// registry's repository.
func (c *Cluster) installPackages(ctx context.Context) error {
	steps, err := InstallSteps(c.Root)
	if err != nil {
		return err
	}
	if strings.Count(steps, readmeRepo) != 1 {
		return fmt.Errorf("README.md: the install steps must set %q once, got:\n%s", readmeRepo, steps)
	}
	steps = strings.Replace(steps, readmeRepo, "REPO="+c.RegistryRepo(), 1)

	bin := filepath.Join(c.Dir, "install-bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return err
	}
	for name, tool := range map[string]string{"crossplane": "crossplane-cli", "kubectl": "kubectl"} {
		if err := os.Symlink(c.bins[tool], filepath.Join(bin, name)); err != nil {
			return err
		}
	}
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-xc", steps) //nolint:gosec // The README's own install steps.
	cmd.Dir = c.Root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "KUBECONFIG="+c.Kubeconfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if werr := os.WriteFile(filepath.Join(c.logs, "install-steps.log"), out.Bytes(), 0o600); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("the README's install steps failed: %w\n%s", err, out.String())
	}
	c.opts.Record("install: README steps (make xpkg, push, install)", time.Since(t0))
	return nil
}

// runPackages acts as Crossplane's External package runtime for the
// packages the configuration's install brought in (the function's and the
// provider's processes are this harness's), and waits until the
// configuration and both dependencies are Installed and Healthy. It records
// the install time: from the README's last step, `crossplane xpkg install
// configuration`, returning (it only creates the Configuration) to every
// package Healthy: Crossplane resolving the dependencies from the registry,
// pulling the three packages and installing their objects, and this
// harness's part as the runtime.
func (c *Cluster) runPackages(ctx context.Context) error {
	t0 := time.Now()
	if err := c.runFunctionRevision(ctx); err != nil {
		return err
	}
	rev, err := c.activeRevision(ctx, gvrProvider, gvrProviderRevision, providerName)
	if err != nil {
		return err
	}
	// Crossplane installs a provider's objects only once its runtime has
	// named the revision's webhook TLS Secret, whose tls.crt it writes into
	// any webhook configuration the package has (ours has none). A serving
	// certificate of the harness's CA stands for the runtime's.
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: providerTLSSecret, Namespace: crossplaneNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": c.pki.function.cert, "tls.key": c.pki.function.key, "ca.crt": c.pki.ca.pem},
	}
	if _, err := c.Kube.CoreV1().Secrets(crossplaneNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := c.Dynamic.Resource(gvrProviderRevision).Get(ctx, rev, metav1.GetOptions{})
		if err != nil {
			return err
		}
		_ = unstructured.SetNestedField(r.Object, providerTLSSecret, "status", "tlsServerSecretName")
		setCondition(r, "RuntimeHealthy", "True", "HealthyPackageRevision", "The dbplane e2e harness runs the provider as a local process")
		_, err = c.Dynamic.Resource(gvrProviderRevision).UpdateStatus(ctx, r, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("cannot mark the ProviderRevision's runtime healthy: %w", err)
	}
	if err := harness.Poll(ctx, setupTimeout, c.PackagesHealthy); err != nil {
		return err
	}
	c.opts.Record("install: crossplane xpkg install returned to every package Healthy", time.Since(t0))
	return nil
}

// PackagesHealthy returns nil when every Configuration, Function and
// Provider is Installed and Healthy, and there is at least one of each.
func (c *Cluster) PackagesHealthy(ctx context.Context) error {
	for _, gvr := range []schema.GroupVersionResource{gvrConfiguration, gvrFunction, gvrProvider} {
		l, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(l.Items) == 0 {
			return fmt.Errorf("no %s installed", gvr.Resource)
		}
		for i := range l.Items {
			p := &l.Items[i]
			for _, typ := range []string{"Installed", "Healthy"} {
				if s, _, _ := Condition(p, typ); s != "True" {
					return fmt.Errorf("%s %s not %s: %v", gvr.Resource, p.GetName(), typ, Conditions(p))
				}
			}
		}
	}
	return nil
}

// Packages returns every installed Configuration, Function and Provider.
func (c *Cluster) Packages(ctx context.Context) ([]unstructured.Unstructured, error) {
	var all []unstructured.Unstructured
	for _, gvr := range []schema.GroupVersionResource{gvrConfiguration, gvrFunction, gvrProvider} {
		l, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		all = append(all, l.Items...)
	}
	return all, nil
}
