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
	kerrors "k8s.io/apimachinery/pkg/api/errors"
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

// InstallSteps returns the shell blocks of the README's install section, in
// order: the install, then the upgrade.
func InstallSteps(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, "README.md")) //nolint:gosec // Our README.
	if err != nil {
		return nil, err
	}
	sec := string(b)
	start := strings.Index(sec, "## Install (platform teams)")
	if start < 0 {
		return nil, errors.New("README.md: no install section")
	}
	sec = sec[start:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}
	var blocks []string
	for {
		open := strings.Index(sec, "```sh\n")
		if open < 0 {
			break
		}
		sec = sec[open+len("```sh\n"):]
		end := strings.Index(sec, "```")
		if end < 0 {
			return nil, errors.New("README.md: an sh block of the install section does not end")
		}
		blocks = append(blocks, sec[:end])
		sec = sec[end+3:]
	}
	if len(blocks) != 2 {
		return nil, fmt.Errorf("README.md: want two sh blocks in the install section (install, upgrade), got %d", len(blocks))
	}
	return blocks, nil
}

// installPackages runs the README's install steps.
func (c *Cluster) installPackages(ctx context.Context) error {
	return c.runSteps(ctx, 0, "install")
}

// runSteps runs the README install section's shell block i as a platform
// team would, in a shell, with the pinned crossplane CLI and kubectl on PATH
// and the admin's kubeconfig. The one change: the REPO line names the
// loopback registry's repository.
func (c *Cluster) runSteps(ctx context.Context, i int, name string) error {
	blocks, err := InstallSteps(c.Root)
	if err != nil {
		return err
	}
	steps := blocks[i]
	if strings.Count(steps, readmeRepo) != 1 {
		return fmt.Errorf("README.md: the %s steps must set %q once, got:\n%s", name, readmeRepo, steps)
	}
	steps = strings.Replace(steps, readmeRepo, "REPO="+c.RegistryRepo(), 1)

	bin := filepath.Join(c.Dir, "install-bin")
	if err := os.MkdirAll(bin, 0o700); err != nil {
		return err
	}
	for name, tool := range map[string]string{"crossplane": "crossplane-cli", "kubectl": "kubectl"} {
		if err := os.Symlink(c.bins[tool], filepath.Join(bin, name)); err != nil && !errors.Is(err, os.ErrExist) {
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
	if werr := os.WriteFile(filepath.Join(c.logs, name+"-steps.log"), out.Bytes(), 0o600); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("the README's %s steps failed: %w\n%s", name, err, out.String())
	}
	c.opts.Record(name+": README steps", time.Since(t0))
	return nil
}

// UpgradePackages runs the README's upgrade steps (build the packages at
// the next version, push them, crossplane xpkg update each), acts as the
// External runtime for the new revisions, and waits until every package is
// Healthy at version.
func (c *Cluster) UpgradePackages(ctx context.Context, version string) error {
	if err := c.runSteps(ctx, 1, "upgrade"); err != nil {
		return err
	}
	t0 := time.Now()
	if err := c.runRevisions(ctx, ":"+version); err != nil {
		return err
	}
	if err := harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		if err := c.PackagesHealthy(ctx); err != nil {
			return err
		}
		pkgs, err := c.Packages(ctx)
		if err != nil {
			return err
		}
		for _, p := range pkgs {
			if r, _, _ := unstructured.NestedString(p.Object, "status", "resolvedPackage"); !strings.HasSuffix(r, ":"+version) {
				return fmt.Errorf("%s %s resolved to %q, not yet %s", p.GetKind(), p.GetName(), r, version)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	c.opts.Record("upgrade: crossplane xpkg update returned to every package Healthy", time.Since(t0))
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
	if err := c.runRevisions(ctx, ""); err != nil {
		return err
	}
	if err := harness.Poll(ctx, setupTimeout, c.PackagesHealthy); err != nil {
		return err
	}
	c.opts.Record("install: crossplane xpkg install returned to every package Healthy", time.Since(t0))
	return nil
}

// runRevisions acts as the External runtime for the active Function and
// Provider revisions whose package ends with suffix.
func (c *Cluster) runRevisions(ctx context.Context, suffix string) error {
	if err := c.runFunctionRevision(ctx, suffix); err != nil {
		return err
	}
	rev, err := c.activeRevision(ctx, gvrProvider, gvrProviderRevision, providerName, suffix)
	if err != nil {
		return err
	}
	// Crossplane installs a provider's objects only once its runtime has
	// named the revision's webhook TLS Secret, whose tls.crt it writes into
	// any webhook configuration the package has (ours has none). A serving
	// certificate of the harness's CA stands for the runtime's.
	if err := c.createTLSSecret(ctx, providerTLSSecret); err != nil {
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
	return nil
}

// createTLSSecret creates the TLS server Secret name in Crossplane's
// namespace, with the function's serving certificate, unless it exists.
func (c *Cluster) createTLSSecret(ctx context.Context, name string) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: crossplaneNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": c.pki.function.cert, "tls.key": c.pki.function.key, "ca.crt": c.pki.ca.pem},
	}
	if _, err := c.Kube.CoreV1().Secrets(crossplaneNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil && !kerrors.IsAlreadyExists(err) {
		return err
	}
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
