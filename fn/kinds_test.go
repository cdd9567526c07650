package fn

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/crossplane/function-sdk-go/resource"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// everything is a Params that composes every row of Kinds at least once.
func everything(t *testing.T) Params {
	t.Helper()
	p := params(t, v1.DatabaseSpec{
		Type: v1.PostgreSQL, Version: "16", Replicas: ptr.To[int32](2), Environment: v1.Production,
		Storage: v1.Storage{Size: "1Gi"}, Backup: &v1.Backup{Enabled: true},
		Users:       []v1.User{{Name: "reporting", Privileges: v1.ReadOnly}},
		Restore:     &v1.Restore{From: "orders-old"},
		Autoscaling: &v1.Autoscaling{MinReplicas: 2, MaxReplicas: 4, TargetCPUUtilization: ptr.To[int32](70)},
		Monitoring:  &v1.Monitoring{Enabled: true, Metrics: true},
	})
	p.ComposeRestoreJob, p.ComposeService, p.Operator = true, true, true
	p.Issuer = &IssuerRef{Name: "databases", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	p.BackupVolumeOwner = namespaceOwner(p.Namespace, "5f0c6a1e-team-a")
	p.BackupNow = "2026-11-22"
	return p
}

// withCertManager is everything with cert-manager issuing the server
// certificate: the function's own CA and TLS Secrets give way to a
// Certificate, so no single Params composes every row.
func withCertManager(t *testing.T) Params {
	t.Helper()
	p := everything(t)
	p.CertManager = true
	return p
}

// TestKinds: every row of the table can be composed (the function's own
// TLS Secrets without cert-manager, the Certificate with it), is ready in a
// way of its own and knows its kind; names are unique.
func TestKinds(t *testing.T) {
	p := everything(t)
	composed := map[resource.Name]int{}
	for _, c := range append(Compose(p), Compose(withCertManager(t))...) {
		composed[c.Kind.Name]++
	}
	seen := map[string]bool{}
	for _, k := range Kinds {
		if k.Ready == nil {
			t.Errorf("Kinds: row %q has no readiness: it would never be Ready", k.Name)
		}
		if composed[k.Name] == 0 {
			t.Errorf("Kinds: row %q composes nothing even when everything is enabled", k.Name)
		}
		if _, err := k.gvk(); err != nil {
			t.Errorf("Kinds: row %q: %v", k.Name, err)
		}
		if seen[string(k.Name)] {
			t.Errorf("Kinds: row %q appears twice", k.Name)
		}
		seen[string(k.Name)] = true
	}
	for _, c := range Compose(p) {
		if k, ok := kindOf(c.Name); !ok || k.Name != c.Kind.Name {
			t.Errorf("Compose: %q does not map back to its row %q", c.Name, c.Kind.Name)
		}
	}
}

// TestCrossplaneMayComposeEveryKind reads the ClusterRole the install
// applies for Crossplane and checks it grants every kind a row of Kinds
// composes, and reading every kind the function requires. The SQL
// provider's kinds are Crossplane's to grant once the provider package is
// installed: for those the provider package must hold the CRD.
func TestCrossplaneMayComposeEveryKind(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "examples", "install", "crossplane-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cr := rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(b, &cr); err != nil {
		t.Fatal(err)
	}
	allows := func(gvk schema.GroupVersionKind, verbs ...string) bool {
		plural, _ := meta.UnsafeGuessKindToResource(gvk)
		for _, r := range cr.Rules {
			if slices.Contains(r.APIGroups, gvk.Group) && slices.Contains(r.Resources, plural.Resource) &&
				!slices.ContainsFunc(verbs, func(v string) bool { return !slices.Contains(r.Verbs, v) }) {
				return true
			}
		}
		return false
	}
	crd := func(gvk schema.GroupVersionKind) bool {
		plural, _ := meta.UnsafeGuessKindToResource(gvk)
		_, err := os.Stat(filepath.Join("..", "package", "provider", "crds", gvk.Group+"_"+plural.Resource+".yaml"))
		return err == nil
	}

	for _, k := range Kinds {
		gvk, err := k.gvk()
		if err != nil {
			t.Fatal(err)
		}
		if gvk.Group == sqlv1alpha1.Group {
			if !crd(gvk) {
				t.Errorf("row %q composes %s, whose CRD is not in package/provider/crds", k.Name, gvk)
			}
			continue
		}
		if !allows(gvk, "get", "list", "watch", "create", "update", "patch", "delete") {
			t.Errorf("row %q composes %s, which examples/install/crossplane-rbac.yaml does not let Crossplane manage", k.Name, gvk)
		}
	}

	for name, sel := range Requirements(everything(t)) {
		gvk := schema.FromAPIVersionAndKind(sel.GetApiVersion(), sel.GetKind())
		if gvk == v1.GroupVersionKind {
			continue // The XRD's own kind: Crossplane may read it.
		}
		if !allows(gvk, "get", "list", "watch") {
			t.Errorf("required resource %q is a %s, which examples/install/crossplane-rbac.yaml does not let Crossplane read", name, gvk)
		}
	}
}

// TestREADMEListsEveryKind: the README's table of composed resources names
// every row of Kinds, so the next engineer reads the table the code runs.
func TestREADMEListsEveryKind(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if !strings.Contains(string(b), "\n| `"+string(k.Name)) {
			t.Errorf("README.md: the table of composed resources has no row for %q", k.Name)
		}
	}
}
