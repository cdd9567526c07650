package fn

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// xrdPath is the XRD Crossplane installs, generated from the kubebuilder
// markers in apis/v1 (make check-generate keeps the two equal).
const xrdPath = "../package/configuration/xrd.yaml"

var (
	// versionRule is the CEL rule that lists an engine's versions.
	versionRule = regexp.MustCompile(`^self\.type != '([a-z]+)' \|\| self\.version in \[(.*)\]$`)
	// quoted is a CEL string literal.
	quoted = regexp.MustCompile(`'([^']*)'`)
	// versionLiteral is a version a rule compares spec.version with.
	versionLiteral = regexp.MustCompile(`[sS]elf\.version == '([^']*)'`)
)

// xrdSpec is the Database spec schema of the XRD's first version.
func xrdSpec(t *testing.T) extv1.JSONSchemaProps {
	t.Helper()
	b, err := os.ReadFile(xrdPath)
	if err != nil {
		t.Fatal(err)
	}
	var xrd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema extv1.JSONSchemaProps `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &xrd); err != nil {
		t.Fatal(err)
	}
	if len(xrd.Spec.Versions) == 0 {
		t.Fatalf("%s has no versions", xrdPath)
	}
	spec, ok := xrd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	if !ok {
		t.Fatalf("%s has no spec schema", xrdPath)
	}
	return spec
}

// and joins items as a message does: "a", "a and b", "a, b and c".
func and(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// TestEngineVersionsMatchXRD keeps the versions the API server accepts (the
// XRD's CEL rules and the spec.type enum) and the versions the function can
// compose (the engine table) from drifting: a version added to one and not
// the other is either refused at admission or accepted and then refused by
// the function.
func TestEngineVersionsMatchXRD(t *testing.T) {
	spec := xrdSpec(t)

	// The spec.type enum is the engine table's keys.
	var enum []string
	for _, e := range spec.Properties["type"].Enum {
		var s string
		if err := json.Unmarshal(e.Raw, &s); err != nil {
			t.Fatal(err)
		}
		enum = append(enum, s)
	}
	slices.Sort(enum)
	var table []string
	for e := range engines {
		table = append(table, string(e))
	}
	slices.Sort(table)
	if diff := cmp.Diff(table, enum); diff != "" {
		t.Errorf("%s spec.type enum: -engine table, +XRD:\n%s", xrdPath, diff)
	}

	type listed struct {
		versions []string
		message  string
	}
	rules := map[v1.Engine]listed{}
	literals := map[v1.Engine][]string{}
	for _, r := range spec.XValidations {
		if m := versionRule.FindStringSubmatch(r.Rule); m != nil {
			var vs []string
			for _, q := range quoted.FindAllStringSubmatch(m[2], -1) {
				vs = append(vs, q[1])
			}
			e := v1.Engine(m[1])
			if _, dup := rules[e]; dup {
				t.Errorf("%s: two rules list the versions of %q", xrdPath, e)
			}
			rules[e] = listed{versions: vs, message: r.Message}
			continue
		}
		// Any other rule that names one engine and compares spec.version
		// with a literal, like the MySQL downgrade rule, must name a
		// version that engine has.
		var named []v1.Engine
		for e := range engines {
			if strings.Contains(r.Rule, "'"+string(e)+"'") {
				named = append(named, e)
			}
		}
		if len(named) == 1 {
			for _, m := range versionLiteral.FindAllStringSubmatch(r.Rule, -1) {
				literals[named[0]] = append(literals[named[0]], m[1])
			}
		}
	}

	for e, eng := range engines {
		t.Run(string(e), func(t *testing.T) {
			want := slices.Sorted(maps.Keys(eng.Versions))
			got, ok := rules[e]
			if !ok {
				t.Fatalf("%s: no rule `self.type != '%s' || self.version in [...]` lists the versions of the engine table", xrdPath, e)
			}
			if diff := cmp.Diff(want, got.versions); diff != "" {
				t.Errorf("%s: versions of %q: -engine table, +CEL rule (sorted as the table):\n%s", xrdPath, e, diff)
			}
			wantMsg := fmt.Sprintf("spec.version: %s supports versions %s", e, and(want))
			if diff := cmp.Diff(wantMsg, got.message); diff != "" {
				t.Errorf("%s: message of the versions rule of %q: -want, +got:\n%s", xrdPath, e, diff)
			}
			for _, v := range literals[e] {
				if _, ok := eng.Versions[v]; !ok {
					t.Errorf("%s: a rule on %q compares spec.version with %q, which the engine table lacks", xrdPath, e, v)
				}
			}
		})
	}
	for e := range rules {
		if _, ok := engines[e]; !ok {
			t.Errorf("%s: a rule lists versions of %q, which the engine table lacks", xrdPath, e)
		}
	}
}
