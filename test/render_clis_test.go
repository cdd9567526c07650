package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// functionsV1 is the functions file for Crossplane 1.x's `beta render`.
const functionsV1 = root + "/examples/render/functions-crossplane-1.yaml"

// crank returns the Crossplane 1.16 CLI, which has `crossplane beta render`.
// `make golden-test` builds and passes it; without it the test is skipped
// locally and fails in CI.
func crank(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("DBPLANE_CROSSPLANE_1")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DBPLANE_CROSSPLANE_1 must be set in CI: run make test")
		}
		t.Skip("crossplane 1.x CLI not built: run make golden-test")
	}
	return bin
}

// composedResources parses a render's output into its composed resources,
// keyed by composed resource name (the crossplane.io/composition-resource-name
// annotation every CLI version sets). The XR and any Result or Context
// documents are left out: they are not composed resources.
func composedResources(t *testing.T, out string) map[string]map[string]any {
	t.Helper()
	got := map[string]map[string]any{}
	for d := range strings.SplitSeq(out, "\n---\n") {
		if strings.TrimSpace(strings.Trim(d, "-\n")) == "" {
			continue
		}
		o := map[string]any{}
		if err := yaml.Unmarshal([]byte(d), &o); err != nil {
			t.Fatalf("cannot parse a rendered document: %v\n%s", err, d)
		}
		if o["kind"] == "Database" || o["kind"] == "XDatabase" || o["apiVersion"] == "render.crossplane.io/v1beta1" {
			continue
		}
		meta, _ := o["metadata"].(map[string]any)
		ann, _ := meta["annotations"].(map[string]any)
		name, _ := ann["crossplane.io/composition-resource-name"].(string)
		if name == "" {
			t.Fatalf("a rendered document has no crossplane.io/composition-resource-name:\n%s", d)
		}
		if _, dup := got[name]; dup {
			t.Fatalf("composed resource %s rendered twice", name)
		}
		got[name] = o
	}
	return got
}

// TestRenderCommandsAgree renders every example with the three render
// commands a user may have: Crossplane 1.16's `crossplane beta render`, and
// the v2.5 CLI's `crossplane composition render` and its hidden alias
// `crossplane render`, all calling the same function process. The two v2.5
// commands must print the same bytes; 1.16 must compose the same resources,
// field for field, once normalise has removed what the CLI, not the
// function, decides.
func TestRenderCommandsAgree(t *testing.T) {
	cli, core := tools(t)
	v1 := crank(t)
	addr := listen(t)
	fns, fnsV1 := pointAt(t, functions, addr), pointAt(t, functionsV1, addr)

	for _, ex := range append(examples(t), claimExamples(t)...) {
		name := strings.TrimSuffix(filepath.Base(ex), ".yaml")
		composition, xrd := composition, xrd
		if isClaimExample(ex) {
			// A claim's XDatabase, with the claims package.
			name, composition, xrd = "claims/"+name, claimsComposition, claimsXRD
		}
		t.Run(name, func(t *testing.T) {
			renders := []struct {
				cmd  string
				args []string
			}{
				{"composition render", []string{cli, "composition", "render", ex, composition, fns, "--crossplane-binary=" + core, "--xrd=" + xrd, "--required-resources=" + namespace}},
				{"render", []string{cli, "render", ex, composition, fns, "--crossplane-binary=" + core, "--xrd=" + xrd, "--required-resources=" + namespace}},
				// 1.16 has no --xrd (its render never applied the XRD's
				// defaults: the examples spell out what they rely on) and
				// no --crossplane-binary (it renders in process). It
				// answers the function's requirements from
				// --extra-resources, in the deprecated field it asks in
				// for a Crossplane that advertises no capabilities.
				{"beta render", []string{v1, "beta", "render", ex, composition, fnsV1, "--extra-resources=" + namespace}},
			}
			outs := map[string]string{}
			for _, r := range renders {
				out, stderr, err := run(t.Context(), r.args[0], r.args[1:]...)
				if err != nil {
					t.Fatalf("crossplane %s %s: %v\n%s", r.cmd, ex, err, stderr)
				}
				outs[r.cmd] = out
			}

			if diff := cmp.Diff(outs["composition render"], outs["render"]); diff != "" {
				t.Errorf("%s: crossplane composition render, -want, crossplane render, +got (the alias must print the same):\n%s", name, diff)
			}
			want := normalise(composedResources(t, outs["composition render"]))
			got := normalise(composedResources(t, outs["beta render"]))
			if len(want) < 5 {
				t.Fatalf("crossplane composition render %s: want at least the Secret, ConfigMap, two Services and StatefulSet, got %d composed resources", ex, len(want))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: crossplane composition render (v2.5), -want, crossplane beta render (1.16), +got:\n%s", name, diff)
			}
		})
	}
}

// normalise removes from composed resources what the render CLI, not our
// function, writes, and differs between Crossplane 1.16 and v2.5, and only
// that:
//   - metadata.generateName: 1.16 gives every composed resource
//     generateName "<xr>-", as Crossplane 1.x did for resources a function
//     does not name; v2 does not. Our function names every resource, and
//     the apiserver ignores generateName when name is set, so it is dropped
//     only where metadata.name is set.
//   - the uid of ownerReferences to the XR: an XR read from a file has no
//     UID; v2.5 invents a stable one from its name, 1.16 leaves it empty. On
//     a cluster the apiserver assigns it. The reference's other fields
//     (apiVersion, kind, name, controller, blockOwnerDeletion) are kept.
func normalise(rs map[string]map[string]any) map[string]map[string]any {
	for _, o := range rs {
		meta, _ := o["metadata"].(map[string]any)
		if meta == nil {
			continue
		}
		if n, _ := meta["name"].(string); n != "" {
			delete(meta, "generateName")
		}
		refs, _ := meta["ownerReferences"].([]any)
		for _, r := range refs {
			if ref, ok := r.(map[string]any); ok && (ref["kind"] == "Database" || ref["kind"] == "XDatabase") {
				delete(ref, "uid")
			}
		}
	}
	return rs
}
