//go:build e2e

package install

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestInstalledFromRegistry checks what the README's install steps (run by
// TestMain) left: the configuration and, as its dependencies, the function
// and the provider, each pulled from the loopback registry and Installed
// and Healthy; the provider's CRDs owned by its ProviderRevision and the
// Database CRD by the installed XRD; and a Database composed by the
// installed Composition through the installed Function, with its SQL login
// a User of the installed provider's kind, Ready once a real PostgreSQL
// stands behind its pod; and the same for a DatabaseClaim through the claims
// configuration.
func TestInstalledFromRegistry(t *testing.T) {
	ctx := t.Context()
	if err := env.PackagesHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	pkgs, err := env.Packages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.GetKind()+"/"+p.GetName())
		resolved, _, _ := unstructured.NestedString(p.Object, "status", "resolvedPackage")
		if !strings.HasPrefix(resolved, env.RegistryRepo()+"/") {
			t.Errorf("%s %s resolved to %q, want a package of the loopback registry's %s", p.GetKind(), p.GetName(), resolved, env.RegistryRepo())
		}
	}
	slices.Sort(names)
	runtimeConfigsKept(t)
	want := []string{"Configuration/dbplane-configuration-dbplane", "Configuration/dbplane-configuration-dbplane-claims", "Function/dbplane-function-dbplane", "Provider/dbplane-provider-sql"}
	if !slices.Equal(names, want) {
		t.Errorf("installed packages: want %q, got %q", want, names)
	}

	for crd, owner := range map[string]string{
		"databases.database.example.com":           "CompositeResourceDefinition",
		"xdatabases.database.example.com":          "CompositeResourceDefinition",
		"databaseclaims.database.example.com":      "CompositeResourceDefinition",
		"users.sql.database.example.com":           "ProviderRevision",
		"replications.sql.database.example.com":    "ProviderRevision",
		"providerconfigs.sql.database.example.com": "ProviderRevision",
	} {
		o, err := env.Object(ctx, "CustomResourceDefinition", "", crd)
		if err != nil || o == nil {
			t.Errorf("CRD %s: not installed (%v)", crd, err)
			continue
		}
		if !slices.ContainsFunc(o.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.Kind == owner }) {
			t.Errorf("CRD %s: want it owned by a %s, got ownerReferences %+v", crd, owner, o.GetOwnerReferences())
		}
	}

	// The installed Composition composes SQL logins, which need a server
	// behind the pods (kwok runs none): first the Database is composed and
	// Synced, its app login a User of the installed provider's kind; then,
	// with a real PostgreSQL behind its pod, Ready.
	const ns = "team-a"
	env.Namespace(t, ns)
	d := cluster.ReadDatabase(t, filepath.Join(env.Root, "examples", "databases", "postgresql-development.yaml"))
	env.ApplyDatabase(t, d)
	name := d.GetName()
	for _, o := range []struct{ kind, name string }{{"StatefulSet", name}, {"Secret", name + "-credentials"}, {"User", name + "-app"}} {
		env.WaitFor(t, d, o.kind+" "+o.name+" composed", func(ctx context.Context) error {
			got, err := env.Object(ctx, o.kind, ns, o.name)
			if err == nil && got == nil {
				err = errors.New("not yet")
			}
			return err
		})
	}
	env.WaitFor(t, d, "Synced", func(ctx context.Context) error {
		got, err := env.GetDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		if got == nil {
			return errors.New("no Database")
		}
		if s, _, m := cluster.Condition(got, "Synced"); s != "True" {
			return fmt.Errorf("Synced %s: %s", s, m)
		}
		return nil
	})

	srv := env.ServePostgreSQL(t, ns, name)
	t0 := time.Now()
	env.WaitReady(t, ns, name)
	timings.Record("latency: server started -> Database Ready", time.Since(t0))
	if got := srv.Query(t, "SELECT rolname FROM pg_roles WHERE rolname = 'app' AND rolcanlogin"); got != "app" {
		t.Errorf("the installed provider did not create the login app on the server: pg_roles has %q", got)
	}

	claim := claimFromInstalledPackage(t)

	t.Run("upgrade", func(t *testing.T) {
		upgradeKeepsDatabase(t, d)
		runtimeConfigsKept(t)
		// The claims configuration moved to v0.2.0 with the others
		// (UpgradePackages waits for every package at v0.2.0).
		env.WaitClaimReady(t, claim.GetNamespace(), claim.GetName())
	})
}

// runtimeConfigsKept checks that the function and the provider the README
// installs before the configuration run with the DeploymentRuntimeConfigs
// of examples/install/runtime-config.yaml (least privilege), and that those
// exist: the configuration's dependency resolution took the packages
// installed by name instead of installing its own with the default runtime
// config, and an upgrade keeps them.
func runtimeConfigsKept(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	for _, p := range []struct{ kind, name, config string }{
		{"Function", "dbplane-function-dbplane", "function-dbplane"},
		{"Provider", "dbplane-provider-sql", "provider-sql"},
	} {
		o, err := env.Object(ctx, p.kind, "", p.name)
		if err != nil || o == nil {
			t.Errorf("%s %s: not installed (%v)", p.kind, p.name, err)
			continue
		}
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			t.Fatalf("%s %s: a %T, want unstructured", p.kind, p.name, o)
		}
		if got, _, _ := unstructured.NestedString(u.Object, "spec", "runtimeConfigRef", "name"); got != p.config {
			t.Errorf("%s %s: spec.runtimeConfigRef.name %q, want %q (examples/install/runtime-config.yaml)", p.kind, p.name, got, p.config)
		}
		if rc, err := env.Object(ctx, "DeploymentRuntimeConfig", "", p.config); err != nil || rc == nil {
			t.Errorf("DeploymentRuntimeConfig %s: not applied (%v)", p.config, err)
		}
	}
}

// claimFromInstalledPackage creates a DatabaseClaim through the installed
// claims configuration: its XDatabase composed by the installed Composition
// in the claim's namespace, Synced; then, with a real PostgreSQL behind its
// pod, the claim Ready and the app login created by the installed provider.
func claimFromInstalledPackage(t *testing.T) cluster.Database {
	t.Helper()
	const ns = "team-b"
	env.Namespace(t, ns)
	c := cluster.ReadDatabase(t, filepath.Join(env.Root, "examples", "databases", "postgresql-development.yaml"))
	spec, _ := c.Object["spec"].(map[string]any)
	claim := cluster.NewClaim(ns, "billing-pg-dev", spec)
	t0 := time.Now()
	env.ApplyDatabase(t, claim)
	name := claim.GetName()
	for _, o := range []struct{ kind, name string }{{"StatefulSet", name}, {"Secret", name + "-credentials"}, {"User", name + "-app"}} {
		env.WaitFor(t, claim, o.kind+" "+o.name+" composed in the claim's namespace", func(ctx context.Context) error {
			got, err := env.Object(ctx, o.kind, ns, o.name)
			if err == nil && got == nil {
				err = errors.New("not yet")
			}
			return err
		})
	}
	timings.Record("latency: apply -> DatabaseClaim's StatefulSet, Secret and User composed", time.Since(t0))
	srv := env.ServePostgreSQL(t, ns, name)
	t0 = time.Now()
	env.WaitClaimReady(t, ns, name)
	timings.Record("latency: server started -> DatabaseClaim Ready", time.Since(t0))
	if got := srv.Query(t, "SELECT rolname FROM pg_roles WHERE rolname = 'app' AND rolcanlogin"); got != "app" {
		t.Errorf("the installed provider did not create the claim's login app on the server: pg_roles has %q", got)
	}
	return claim
}

// upgradeKeepsDatabase runs the README's upgrade steps to v0.2.0 and checks
// that every package is Healthy at v0.2.0, while the Database stays Ready
// (polled throughout) and is left as it was: its StatefulSet's spec not
// rolled (same generation) and its credentials unchanged.
func upgradeKeepsDatabase(t *testing.T, d cluster.Database) {
	ctx := t.Context()
	ns, name := d.GetNamespace(), d.GetName()
	sts, err := env.Kube.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := env.Kube.CoreV1().Secrets(ns).Get(ctx, name+"-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Watch Ready while the packages move.
	var notReady []string
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
			}
			db, err := env.GetDatabase(context.WithoutCancel(ctx), ns, name)
			if err != nil || db == nil {
				notReady = append(notReady, fmt.Sprintf("%s: cannot read the Database: %v", time.Now().Format(time.TimeOnly), err))
				continue
			}
			if s, r, m := cluster.Condition(db, "Ready"); s != "True" {
				notReady = append(notReady, fmt.Sprintf("%s: Ready %s %s: %s", time.Now().Format(time.TimeOnly), s, r, m))
			}
		}
	}()

	t0 := time.Now()
	err = env.UpgradePackages(ctx, "v0.2.0")
	// A reconcile through the new revisions: the Database's poll interval
	// is Crossplane's; touching an annotation makes one now.
	if err == nil {
		_, err = env.Kubectl(ctx, nil, "annotate", "--overwrite", "-n", ns, "database", name, "dbplane.test/upgraded="+time.Now().Format(time.RFC3339Nano))
	}
	time.Sleep(5 * time.Second)
	close(done)
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	timings.Record("upgrade: README steps to every package Healthy at v0.2.0", time.Since(t0))
	if len(notReady) > 0 {
		t.Errorf("the Database was not Ready during the upgrade:\n%s", strings.Join(notReady, "\n"))
	}
	env.WaitReady(t, ns, name)

	after, err := env.Kube.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != sts.Generation {
		t.Errorf("StatefulSet %s: generation %d before the upgrade, %d after: its spec changed", name, sts.Generation, after.Generation)
	}
	credsAfter, err := env.Kube.CoreV1().Secrets(ns).Get(ctx, name+"-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(credsAfter.Data["password"]) != string(creds.Data["password"]) {
		t.Errorf("Secret %s-credentials: the password changed over the upgrade", name)
	}
}
