//go:build e2e

package cluster

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/test/harness"
)

// Crossplane's kinds the harness reads and writes.
var (
	gvrFunction         = schema.GroupVersionResource{Group: "pkg.crossplane.io", Version: "v1", Resource: "functions"}
	gvrFunctionRevision = schema.GroupVersionResource{Group: "pkg.crossplane.io", Version: "v1", Resource: "functionrevisions"}
	gvrXRD              = schema.GroupVersionResource{Group: "apiextensions.crossplane.io", Version: "v2", Resource: "compositeresourcedefinitions"}
)

// crossplaneInstall is what Crossplane's Helm chart installs besides its
// CRDs: the ServiceAccounts and RBAC Crossplane and its RBAC manager run as.
//
//go:embed testdata/crossplane-install.yaml
var crossplaneInstall string

// installCrossplane does what Crossplane's Helm chart and `crossplane core
// init` would: CRDs, namespace, Lock, ServiceAccounts and RBAC. Then it
// applies our examples/install/crossplane-rbac.yaml as an operator would, and
// writes kubeconfigs holding the two ServiceAccounts' tokens.
func (c *Cluster) installCrossplane(ctx context.Context) error {
	wrapper, mod := "crossplane-core", "github.com/crossplane/crossplane/v2"
	if c.opts.Crossplane1 {
		wrapper, mod = "crossplane-core-v1", "github.com/crossplane/crossplane"
	}
	dir, err := moduleDir(ctx, filepath.Join(c.Root, "test", "tools", wrapper), mod)
	if err != nil {
		return err
	}
	if _, err := c.Kubectl(ctx, nil, "apply", "--server-side", "-f", filepath.Join(dir, "cluster", "crds")); err != nil {
		return err
	}
	if err := c.waitCRDsEstablished(ctx); err != nil {
		return err
	}
	if err := c.Apply(ctx, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+crossplaneNamespace+"}\n---\n"+
		"apiVersion: pkg.crossplane.io/v1beta1\nkind: Lock\nmetadata: {name: lock}\n"); err != nil {
		return err
	}
	if err := c.Apply(ctx, crossplaneInstall); err != nil {
		return err
	}
	// Ours, as-is: what the README tells operators to apply.
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", filepath.Join(c.Root, "examples", "install", "crossplane-rbac.yaml")); err != nil {
		return err
	}
	server := "https://127.0.0.1:" + strconv.Itoa(c.ports["kube-apiserver"])
	for sa, path := range map[string]*string{"crossplane": &c.crossplane, "rbac-manager": &c.rbac} {
		token, err := c.Kubectl(ctx, nil, "create", "token", sa, "-n", crossplaneNamespace, "--duration=24h")
		if err != nil {
			return err
		}
		*path = filepath.Join(c.Dir, sa+".kubeconfig")
		if err := writeKubeconfig(*path, server, c.pki.caCert, sa, "\n    token: "+strings.TrimSpace(token)); err != nil {
			return err
		}
	}
	return nil
}

// waitCRDsEstablished waits until every CRD is Established. Polled rather
// than `kubectl wait --all`, which fails outright on a CRD too new to have
// any status conditions.
func (c *Cluster) waitCRDsEstablished(ctx context.Context) error {
	gvrCRD := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	return harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		l, err := c.Dynamic.Resource(gvrCRD).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range l.Items {
			if s, _, _ := Condition(&l.Items[i], "Established"); s != "True" {
				return fmt.Errorf("CRD %s not Established yet", l.Items[i].GetName())
			}
		}
		return nil
	})
}

// installFunction installs dbplane's Function package offline and then acts
// as Crossplane's External package runtime for it.
//
// The package client skips the registry when the package is a digest
// reference with pull policy Never, and reads the gzipped package.yaml
// stream from <xpkg cache>/<FriendlyID(source, digest)>.gz. Nobody deploys
// the function or sets its endpoint under the External runtime: the harness
// sets the FunctionRevision's endpoint to the local process, its TLS server
// Secret, and RuntimeHealthy.
func (c *Cluster) installFunction(ctx context.Context) error {
	meta, err := packageStream(filepath.Join(c.Root, "package", "function"))
	if err != nil {
		return err
	}
	if c.opts.Crossplane1 {
		// What a 1.20 user's function package would say: 1.x refuses a
		// package whose constraint its version does not meet.
		meta = bytes.Replace(meta, []byte(`version: ">=v2.0.0"`), []byte(`version: ">=v1.20.0"`), 1)
	}
	sum := sha256.Sum256(meta)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	cached := filepath.Join(c.Dir, "xpkg-cache", friendlyID(functionSource, digest)+".gz")
	if c.opts.Crossplane1 {
		// 1.x caches a Never-pulled package under its source as given.
		cached = filepath.Join(c.Dir, "xpkg-cache", functionSource+"@"+digest+".gz")
		if err := os.MkdirAll(filepath.Dir(cached), 0o700); err != nil {
			return err
		}
	}
	if err := writeGzip(cached, meta); err != nil {
		return err
	}
	if c.opts.Crossplane1 {
		// 1.x names the revision's TLS server Secret itself and waits for
		// it before it installs the package's objects (the Input CRD): the
		// runtime's job, which the harness plays.
		if err := c.createTLSSecret(ctx, functionName+"-tls-server"); err != nil {
			return err
		}
	}
	if err := c.Apply(ctx, fmt.Sprintf(`apiVersion: pkg.crossplane.io/v1
kind: Function
metadata:
  name: %s
spec:
  package: %s@%s
  packagePullPolicy: Never
`, functionName, functionSource, digest)); err != nil {
		return err
	}

	return c.runFunctionRevision(ctx, "")
}

// runFunctionRevision acts as Crossplane's External package runtime for the
// Function functionName, however it was installed: it points the active
// FunctionRevision whose package ends with suffix at the local function
// process, with its TLS server Secret and RuntimeHealthy, and waits until
// the Function is Healthy.
func (c *Cluster) runFunctionRevision(ctx context.Context, suffix string) error {
	if err := c.createTLSSecret(ctx, functionTLSSecret); err != nil {
		return err
	}
	rev, err := c.activeRevision(ctx, gvrFunction, gvrFunctionRevision, functionName, suffix)
	if err != nil {
		return err
	}
	endpoint := "127.0.0.1:" + strconv.Itoa(c.ports["function"])
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		r, err := c.Dynamic.Resource(gvrFunctionRevision).Get(ctx, rev, metav1.GetOptions{})
		if err != nil {
			return err
		}
		_ = unstructured.SetNestedField(r.Object, endpoint, "status", "endpoint")
		_ = unstructured.SetNestedField(r.Object, functionTLSSecret, "status", "tlsServerSecretName")
		setCondition(r, "RuntimeHealthy", "True", "HealthyPackageRevision", "The dbplane e2e harness runs the function as a local process at "+endpoint)
		_, err = c.Dynamic.Resource(gvrFunctionRevision).UpdateStatus(ctx, r, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("cannot set the FunctionRevision's endpoint: %w", err)
	}

	return harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		f, err := c.Dynamic.Resource(gvrFunction).Get(ctx, functionName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s, _, _ := Condition(f, "Healthy"); s != "True" {
			return fmt.Errorf("Function not Healthy: %v", Conditions(f))
		}
		r, err := c.Dynamic.Resource(gvrFunctionRevision).Get(ctx, rev, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if e, _, _ := unstructured.NestedString(r.Object, "status", "endpoint"); e != endpoint {
			return fmt.Errorf("FunctionRevision endpoint is %q, want %q", e, endpoint)
		}
		return nil
	})
}

// activeRevision waits for the active revision of package name (a Function
// or a Provider) whose package (spec.image) ends with suffix, and returns
// its name.
func (c *Cluster) activeRevision(ctx context.Context, pkg, revs schema.GroupVersionResource, name, suffix string) (string, error) {
	var rev string
	err := harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		l, err := c.Dynamic.Resource(revs).List(ctx, metav1.ListOptions{LabelSelector: "pkg.crossplane.io/package=" + name})
		if err != nil {
			return err
		}
		for _, r := range l.Items {
			state, _, _ := unstructured.NestedString(r.Object, "spec", "desiredState")
			image, _, _ := unstructured.NestedString(r.Object, "spec", "image")
			if state == "Active" && strings.HasSuffix(image, suffix) {
				rev = r.GetName()
				return nil
			}
		}
		p, _ := c.Dynamic.Resource(pkg).Get(ctx, name, metav1.GetOptions{})
		return fmt.Errorf("no active revision of %s %s at %q yet; its conditions: %v", pkg.Resource, name, suffix, Conditions(p))
	})
	return rev, err
}

// installConfiguration applies the XRD and the Composition as the
// configuration package holds them, and waits until Databases are served.
//
// The Composition's function step gets the Input `sqlUsers: false`: the
// servers of the fake pods do not run, and a Database with SQL logins is
// Ready only once the provider has logged in. A second Composition,
// SQLUsersComposition, composes them: a test that runs the servers behind a
// Database's pods (StartPostgreSQL) selects it by its compositionRef.
func (c *Cluster) installConfiguration(ctx context.Context) error {
	if c.opts.Crossplane1 {
		// 1.x serves no v2 XRD: only claims.
		return c.installClaims(ctx)
	}
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", filepath.Join(c.Root, "package", "configuration", "xrd.yaml")); err != nil {
		return err
	}
	for _, in := range []struct {
		name     string
		sqlUsers bool
	}{{"", false}, {SQLUsersComposition, true}} {
		comp, err := compositionWithInput(filepath.Join(c.Root, "package", "configuration", "composition.yaml"), in.name, map[string]any{"sqlUsers": in.sqlUsers})
		if err != nil {
			return err
		}
		if err := c.Apply(ctx, comp); err != nil {
			return err
		}
	}
	return c.waitDatabasesServed(ctx)
}

// waitDatabasesServed waits until the XRD is Established, Databases are
// served and Crossplane may watch them.
func (c *Cluster) waitDatabasesServed(ctx context.Context) error {
	if err := harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		x, err := c.Dynamic.Resource(gvrXRD).Get(ctx, xrdName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s, _, _ := Condition(x, "Established"); s != "True" {
			return fmt.Errorf("XRD not Established: %v", Conditions(x))
		}
		return nil
	}); err != nil {
		return err
	}
	return harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		rl, err := c.Kube.Discovery().ServerResourcesForGroupVersion(GVRDatabase.GroupVersion().String())
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(rl.APIResources, func(r metav1.APIResource) bool { return r.Name == GVRDatabase.Resource }) {
			return errors.New("databases not served yet")
		}
		// Served is not enough: Crossplane must be allowed to read them,
		// which the RBAC manager grants per XRD, and aggregation copies
		// into Crossplane's ClusterRole.
		_, err = c.Kubectl(ctx, nil, "auth", "can-i", "watch", GVRDatabase.GroupResource().String(),
			"--as=system:serviceaccount:"+crossplaneNamespace+":crossplane", "--all-namespaces")
		return err
	})
}

// packageStream returns what `crossplane xpkg build` puts in a package's
// package.yaml: the crossplane.yaml metadata first, then every other YAML
// document under the package root (for the function, its Input CRD).
func packageStream(root string) ([]byte, error) {
	meta, err := os.ReadFile(filepath.Join(root, "crossplane.yaml")) //nolint:gosec // Our package.
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, meta...)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == filepath.Join(root, "crossplane.yaml") {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		b, err := os.ReadFile(path) //nolint:gosec // Our package.
		if err != nil {
			return err
		}
		out = append(append(out, []byte("\n---\n")...), b...)
		return nil
	})
	return out, err
}

// ApplyComposition applies the configuration package's Composition as
// name, with input's fields as the Input of dbplane's function step. A
// Database selects it with spec.crossplane.compositionRef.name.
func (c *Cluster) ApplyComposition(t testing.TB, name string, input map[string]any) {
	t.Helper()
	comp, err := compositionWithInput(filepath.Join(c.Root, "package", "configuration", "composition.yaml"), name, input)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(t.Context(), comp); err != nil {
		t.Fatal(err)
	}
}

// compositionWithInput returns the Composition in path, as YAML, renamed
// to name unless it is empty, with the Input of fields on dbplane's
// function step.
func compositionWithInput(path, name string, fields map[string]any) (string, error) {
	b, err := os.ReadFile(path) //nolint:gosec // Our package.
	if err != nil {
		return "", err
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return "", err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return "", err
	}
	steps, _, _ := unstructured.NestedSlice(u.Object, "spec", "pipeline")
	found := false
	for _, s := range steps {
		step, ok := s.(map[string]any)
		if !ok {
			continue
		}
		if ref, _ := step["functionRef"].(map[string]any); ref["name"] != functionName {
			continue
		}
		in := map[string]any{"apiVersion": "fn.database.example.com/v1alpha1", "kind": "Input"}
		maps.Copy(in, fields)
		step["input"] = in
		found = true
	}
	if !found {
		return "", fmt.Errorf("%s: no pipeline step calls %s", path, functionName)
	}
	if err := unstructured.SetNestedSlice(u.Object, steps, "spec", "pipeline"); err != nil {
		return "", err
	}
	if name != "" {
		u.SetName(name)
	}
	out, err := yaml.Marshal(u.Object)
	return string(out), err
}

// friendlyID is xpkg.FriendlyID of crossplane-runtime v2.4.0 (the version
// test/tools/crossplane-core builds core with): the name of a package in the
// package cache. Copied because importing pkg/xpkg would add its
// dependencies to the main module.
func friendlyID(name, hash string) string {
	truncate := func(s string, n int) string { return s[:min(len(s), n)] }
	s := strings.Join([]string{truncate(name, 50), truncate(hash, 12)}, "-")
	var cut strings.Builder
	for i := range s {
		b := s[i]
		if ('a' <= b && b <= 'z') || ('0' <= b && b <= '9') {
			cut.WriteByte(b)
		}
		if (b == '.' || b == '/' || b == ':' || b == '-') && (i != 0 && i != 62 && i != len(s)-1) {
			cut.WriteByte('-')
		}
		if i == 62 {
			break
		}
	}
	return strings.Trim(cut.String(), "-")
}

func writeGzip(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) //nolint:gosec // Our own cache.
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
