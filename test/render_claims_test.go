package test

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// The claims package: the legacy XDatabase's XRD and Composition.
const (
	claimsXRD         = root + "/package/configuration-claims/xrd.yaml"
	claimsComposition = root + "/package/configuration-claims/composition.yaml"
)

// claimExamples are the XDatabases Crossplane makes for the example claims:
// `crossplane render` renders a composite resource, never a claim.
func claimExamples(t *testing.T) []string {
	t.Helper()
	ex, err := filepath.Glob(root + "/examples/claims/render/*.yaml")
	if err != nil || len(ex) < 2 {
		t.Fatalf("want an XDatabase per example claim, got %v (%v)", ex, err)
	}
	return ex
}

// isClaimExample tells an XDatabase render input from a Database example.
func isClaimExample(path string) bool {
	return strings.Contains(filepath.ToSlash(path), "/examples/claims/render/")
}

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // The repository's own examples.
	if err != nil {
		t.Fatal(err)
	}
	o := map[string]any{}
	if err := yaml.Unmarshal(b, &o); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return o
}

// TestClaimRenderInputsAreTheClaims: each XDatabase render input is what
// Crossplane makes of its example claim: the claim's spec (and a claimRef to
// it), and the claim's name and namespace as labels. Otherwise the renders
// below would prove nothing about the claims users apply.
func TestClaimRenderInputsAreTheClaims(t *testing.T) {
	for _, ex := range claimExamples(t) {
		t.Run(filepath.Base(ex), func(t *testing.T) {
			xr := readYAML(t, ex)
			claim := readYAML(t, filepath.Join(root, "examples", "claims", filepath.Base(ex)))
			if claim["kind"] != "DatabaseClaim" || xr["kind"] != "XDatabase" {
				t.Fatalf("want a DatabaseClaim and its XDatabase, got %v and %v", claim["kind"], xr["kind"])
			}
			cm, _ := claim["metadata"].(map[string]any)
			xm, _ := xr["metadata"].(map[string]any)
			if _, ok := xm["namespace"]; ok {
				t.Errorf("an XDatabase is cluster-scoped: want no metadata.namespace")
			}
			labels, _ := xm["labels"].(map[string]any)
			if labels["crossplane.io/claim-name"] != cm["name"] || labels["crossplane.io/claim-namespace"] != cm["namespace"] {
				t.Errorf("XDatabase labels %v: want the claim's name %v and namespace %v", labels, cm["name"], cm["namespace"])
			}
			xs, _ := xr["spec"].(map[string]any)
			spec := maps.Clone(xs)
			ref, _ := spec["claimRef"].(map[string]any)
			if ref["kind"] != "DatabaseClaim" || ref["name"] != cm["name"] || ref["namespace"] != cm["namespace"] {
				t.Errorf("spec.claimRef %v: want the claim", ref)
			}
			delete(spec, "claimRef")
			if diff := cmp.Diff(claim["spec"], spec); diff != "" {
				t.Errorf("XDatabase spec: -claim, +XDatabase:\n%s", diff)
			}
		})
	}
}

// TestRenderClaims renders each claim's XDatabase through the real CLI with
// the claims Composition and XRD and compares it with its golden file; every
// composed object must be in the claim's namespace, validate against its
// schema, and be exactly what a Database of the claim's name, namespace and
// spec composes (but for the owner, the XR, and the labels Crossplane copies
// from it).
func TestRenderClaims(t *testing.T) {
	cli, core := tools(t)
	fns := serve(t)
	for _, ex := range claimExamples(t) {
		name := strings.TrimSuffix(filepath.Base(ex), ".yaml")
		t.Run(name, func(t *testing.T) {
			var flags []string
			if strings.HasSuffix(name, "-production") {
				flags = append(flags, "--required-resources="+operatorCRDs)
			}
			args := append([]string{"composition", "render", ex, claimsComposition, fns, "--crossplane-binary=" + core, "--xrd=" + claimsXRD, "--required-resources=" + namespace}, flags...)
			out, stderr, err := run(t.Context(), cli, args...)
			if err != nil {
				t.Fatalf("render %s: %v\n%s", ex, err, stderr)
			}
			golden(t, "render/claims/"+name+".yaml", out)
			validateComposed(t, cli, out)

			claim := readYAML(t, filepath.Join(root, "examples", "claims", name+".yaml"))
			cm, _ := claim["metadata"].(map[string]any)
			cname, _ := cm["name"].(string)
			cns, _ := cm["namespace"].(string)
			for n, o := range composedResources(t, out) {
				md, _ := o["metadata"].(map[string]any)
				if md["namespace"] != cm["namespace"] {
					t.Errorf("composed resource %s: metadata.namespace %v, want the claim's %v", n, md["namespace"], cm["namespace"])
				}
			}
			for _, want := range []string{"claimConditionTypes:", "- VersionSupported", "endpoint: " + cname + "." + cns + ".svc.cluster.local:"} {
				if !strings.Contains(out, want) {
					t.Errorf("render %s: want %q in the XDatabase's status (what the claim shows)", ex, want)
				}
			}

			// The Database of the claim's name, namespace and spec.
			db := maps.Clone(claim)
			db["kind"] = "Database"
			b, err := yaml.Marshal(db)
			if err != nil {
				t.Fatal(err)
			}
			dbEx := filepath.Join(t.TempDir(), name+".yaml")
			if err := os.WriteFile(dbEx, b, 0o600); err != nil {
				t.Fatal(err)
			}
			dbOut, stderr, err := render(t, cli, core, fns, dbEx, flags...)
			if err != nil {
				t.Fatalf("render %s as a Database: %v\n%s", ex, err, stderr)
			}
			want := ownerless(t, composedResources(t, dbOut))
			got := ownerless(t, composedResources(t, out))
			if len(want) < 8 {
				t.Fatalf("render %s as a Database: want at least 8 composed resources, got %d", ex, len(want))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: composed for a Database, -want, for the claim's XDatabase, +got:\n%s", name, diff)
			}
		})
	}
}

// ownerless removes from composed resources what Crossplane derives from
// the XR, not the function: the controller reference (a Database or the
// claim's XDatabase) and the crossplane.io/composite label (the XR's name), and the
// claim labels Crossplane copies from an XDatabase onto what it composes,
// after checking that every resource has them.
func ownerless(t *testing.T, rs map[string]map[string]any) map[string]map[string]any {
	t.Helper()
	for n, o := range rs {
		meta, _ := o["metadata"].(map[string]any)
		// The XR's controller reference goes; any other owner (the
		// Namespace, which co-owns the backup volume) stays, to compare.
		refs, _ := meta["ownerReferences"].([]any)
		var others []any
		controllers := 0
		for _, r := range refs {
			if ref, _ := r.(map[string]any); ref["controller"] == true {
				controllers++
				continue
			}
			others = append(others, r)
		}
		if controllers != 1 {
			t.Errorf("composed resource %s: want one controller reference (the XR), got %v", n, refs)
		}
		delete(meta, "ownerReferences")
		if len(others) > 0 {
			meta["ownerReferences"] = others
		}
		labels, _ := meta["labels"].(map[string]any)
		if labels["crossplane.io/composite"] == nil {
			t.Errorf("composed resource %s: no crossplane.io/composite label", n)
		}
		delete(labels, "crossplane.io/composite")
		delete(labels, "crossplane.io/claim-name")
		delete(labels, "crossplane.io/claim-namespace")
	}
	return rs
}
