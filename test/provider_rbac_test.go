package test

import (
	"go/ast"
	"go/types"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/go/packages"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

const providerRBAC = root + "/examples/provider/rbac.yaml"

// A permission: verb on group/resource (resource may have a /subresource).
type permission struct{ Group, Resource, Verb string }

func (p permission) String() string { return p.Verb + " " + p.Group + "/" + p.Resource }

// clientVerbs are the verbs a controller-runtime client method needs.
// Reads need get, list and watch: the manager's client reads through an
// informer (list and watch), the uncached reader with get and list.
var clientVerbs = map[string][]string{
	"Get": {"get", "list", "watch"}, "List": {"get", "list", "watch"},
	"Create": {"create"}, "Update": {"update"}, "Patch": {"patch"},
	"Delete": {"delete"}, "DeleteAllOf": {"deletecollection"},
}

// frameworkPermissions are what the provider's code does not call itself
// but crossplane-runtime and controller-runtime do on its behalf, each with
// why. TestProviderRBACIsWhatTheCodeUses fails when the ClusterRole grants
// anything neither these nor the code's own calls need.
var frameworkPermissions = map[string][]permission{
	"the managed reconciler (crossplane-runtime) watches, annotates, adds and removes the finalizer of Users and Replications": perms("sql.database.example.com",
		[]string{"users", "replications"}, "get", "list", "watch", "update", "patch"),
	"the managed reconciler writes their conditions": perms("sql.database.example.com",
		[]string{"users/status", "replications/status"}, "get", "update", "patch"),
	"controller-runtime sets blockOwnerDeletion on what it owns (OwnerReferencesPermissionEnforcement)": perms("sql.database.example.com",
		[]string{"users/finalizers", "replications/finalizers"}, "update"),
	"the ProviderConfig reconciler watches ProviderConfigs, adds its finalizer and counts users in status": append(
		perms("sql.database.example.com", []string{"providerconfigs"}, "get", "list", "watch", "update", "patch"),
		perms("sql.database.example.com", []string{"providerconfigs/status"}, "get", "update", "patch")...),
	"the usage tracker creates a ProviderConfigUsage per managed resource; the ProviderConfig reconciler lists and deletes them": perms("sql.database.example.com",
		[]string{"providerconfigusages"}, "get", "list", "watch", "create", "update", "patch", "delete"),
	"the connection publisher writes each User's connection Secret": perms("",
		[]string{"secrets"}, "get", "list", "watch", "create", "update", "patch"),
	"the event recorders (both event APIs)": append(perms("", []string{"events"}, "create", "patch", "update"),
		perms("events.k8s.io", []string{"events"}, "create", "patch", "update")...),
	"SetupGated starts a controller once its CRD exists": perms("apiextensions.k8s.io",
		[]string{"customresourcedefinitions"}, "get", "list", "watch"),
	"leader election (the namespaced Role)": perms("coordination.k8s.io",
		[]string{"leases"}, "get", "list", "watch", "create", "update", "patch", "delete"),
}

func perms(group string, resources []string, verbs ...string) []permission {
	var out []permission
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, permission{group, r, v})
		}
	}
	return out
}

// codePermissions type-checks the provider's packages and returns what
// each controller-runtime client call needs, from the static type of the
// object it passes: verb, group and resource, with where it is called.
func codePermissions(t *testing.T) map[permission][]string {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, sqlv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	byType := map[string]permission{}
	for gvk, typ := range s.AllKnownTypes() {
		kind := strings.TrimSuffix(gvk.Kind, "List")
		if typ.Kind() == reflect.Struct && strings.HasSuffix(gvk.Kind, "List") {
			if _, ok := s.AllKnownTypes()[gvk.GroupVersion().WithKind(kind)]; !ok {
				continue
			}
		}
		plural, _ := meta.UnsafeGuessKindToResource(gvk.GroupVersion().WithKind(kind))
		byType[typ.PkgPath()+"."+typ.Name()] = permission{Group: gvk.Group, Resource: plural.Resource}
	}

	cfg := &packages.Config{
		Mode:    packages.NeedName | packages.NeedTypes | packages.NeedTypesInfo | packages.NeedSyntax,
		Dir:     root,
		Context: t.Context(),
	}
	pkgs, err := packages.Load(cfg, "./internal/controller/...", "./cmd/provider/...")
	if err != nil {
		t.Fatal(err)
	}
	out := map[permission][]string{}
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Fatalf("cannot load %s: %v", p.PkgPath, e)
		}
		for _, f := range p.Syntax {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				fn, ok := p.TypesInfo.Uses[sel.Sel].(*types.Func)
				if !ok || fn.Pkg() == nil || fn.Pkg().Path() != "sigs.k8s.io/controller-runtime/pkg/client" {
					return true
				}
				verbs, ok := clientVerbs[fn.Name()]
				if !ok {
					return true
				}
				arg := 1
				if fn.Name() == "Get" {
					arg = 2
				}
				where := p.Fset.Position(call.Pos()).String()
				if len(call.Args) <= arg {
					t.Errorf("%s: client.%s with %d arguments", where, fn.Name(), len(call.Args))
					return true
				}
				typ := types.Unalias(p.TypesInfo.TypeOf(call.Args[arg]))
				ptr, ok := typ.(*types.Pointer)
				named, ok2 := types.Unalias(ptrElem(ptr, ok)).(*types.Named)
				if !ok || !ok2 || named.Obj().Pkg() == nil {
					t.Errorf("%s: client.%s of %s: cannot tell its resource statically; pass a concrete type", where, fn.Name(), typ)
					return true
				}
				perm, ok := byType[named.Obj().Pkg().Path()+"."+named.Obj().Name()]
				if !ok {
					t.Errorf("%s: client.%s of %s: not a kind the provider's scheme knows", where, fn.Name(), typ)
					return true
				}
				if isSubresource(p.TypesInfo, sel.X, "Status") {
					perm.Resource += "/status"
				}
				for _, v := range verbs {
					perm.Verb = v
					out[perm] = append(out[perm], where)
				}
				return true
			})
		}
	}
	return out
}

func ptrElem(p *types.Pointer, ok bool) types.Type {
	if !ok {
		return nil
	}
	return p.Elem()
}

// isSubresource tells whether x is a call of client method m, such as
// kube.Status().
func isSubresource(info *types.Info, x ast.Expr, m string) bool {
	c, ok := x.(*ast.CallExpr)
	if !ok {
		return false
	}
	s, ok := c.Fun.(*ast.SelectorExpr)
	return ok && s.Sel.Name == m && info.Uses[s.Sel] != nil
}

// granted are the permissions the install example's ClusterRole and Role
// give the provider's ServiceAccount.
func granted(t *testing.T) map[permission]bool {
	t.Helper()
	b, err := os.ReadFile(providerRBAC)
	if err != nil {
		t.Fatal(err)
	}
	out := map[permission]bool{}
	for d := range strings.SplitSeq(string(b), "\n---\n") {
		if !strings.Contains(d, "\nkind: ClusterRole\n") && !strings.Contains(d, "\nkind: Role\n") {
			continue
		}
		r := &rbacv1.ClusterRole{}
		if err := yaml.Unmarshal([]byte(d), r); err != nil {
			t.Fatal(err)
		}
		for _, rule := range r.Rules {
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						out[permission{g, res, v}] = true
					}
				}
			}
		}
	}
	return out
}

// TestProviderRBACIsWhatTheCodeUses compares examples/provider/rbac.yaml
// with what the provider uses: every controller-runtime client call in
// internal/controller and cmd/provider, found by type-checking them (the
// object's static type names the resource), must be granted, and every
// grant must be needed by such a call or by frameworkPermissions.
func TestProviderRBACIsWhatTheCodeUses(t *testing.T) {
	code := codePermissions(t)
	if len(code) == 0 {
		t.Fatal("no client calls found in the provider's code: the analysis is broken")
	}
	// The calls the Replication controller is known to make must be found,
	// or the analysis proves nothing.
	for _, p := range []permission{{"", "pods", "patch"}, {"", "pods", "delete"}, {"", "secrets", "get"}} {
		if _, ok := code[p]; !ok {
			t.Errorf("the analysis did not find %s in the provider's code", p)
		}
	}

	g := granted(t)
	var missing []string
	for p, where := range code {
		if !g[p] {
			missing = append(missing, p.String()+" (called at "+strings.Join(where, ", ")+")")
		}
	}
	slices.Sort(missing)
	if diff := cmp.Diff([]string(nil), missing); diff != "" {
		t.Errorf("%s does not grant what the provider's code calls: -want, +got:\n%s", providerRBAC, diff)
	}

	needed := map[permission]bool{}
	for p := range code {
		needed[p] = true
	}
	for _, ps := range frameworkPermissions {
		for _, p := range ps {
			needed[p] = true
		}
	}
	var unused []string
	for p := range g {
		if !needed[p] {
			unused = append(unused, p.String())
		}
	}
	slices.Sort(unused)
	if diff := cmp.Diff([]string(nil), unused); diff != "" {
		t.Errorf("%s grants what neither the provider's code nor its frameworks use: -want, +got:\n%s", providerRBAC, diff)
	}
}
