package v1_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	xpv1 "github.com/crossplane/crossplane/apis/v2/apiextensions/v1"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// undocumented walks a schema and returns the path of every field, array item
// or map value whose schema has no description: what `kubectl explain` would
// print with an empty DESCRIPTION.
func undocumented(path string, s extv1.JSONSchemaProps) []string {
	var missing []string
	if strings.TrimSpace(s.Description) == "" {
		missing = append(missing, path)
	}
	for name, p := range s.Properties {
		missing = append(missing, undocumented(path+"."+name, p)...)
	}
	// An array's items and a map's values are described by their field's
	// description, which kubectl explain shows for both; only their own
	// properties are fields of their own.
	if s.Items != nil && s.Items.Schema != nil {
		for name, p := range s.Items.Schema.Properties {
			missing = append(missing, undocumented(path+"[]."+name, p)...)
		}
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		for name, p := range s.AdditionalProperties.Schema.Properties {
			missing = append(missing, undocumented(path+"{}."+name, p)...)
		}
	}
	slices.Sort(missing)
	return missing
}

// xrdSchema is the openAPIV3Schema of every version of the generated XRD.
func xrdSchema(t *testing.T) map[string]extv1.JSONSchemaProps {
	t.Helper()
	b, err := os.ReadFile(xrdPath)
	if err != nil {
		t.Fatalf("cannot read the XRD: %v", err)
	}
	xrd := &xpv1.CompositeResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, xrd); err != nil {
		t.Fatalf("cannot decode the XRD: %v", err)
	}
	schemas := map[string]extv1.JSONSchemaProps{}
	for _, v := range xrd.Spec.Versions {
		if v.Schema == nil {
			t.Fatalf("XRD version %s has no schema", v.Name)
		}
		s := extv1.JSONSchemaProps{}
		if err := json.Unmarshal(v.Schema.OpenAPIV3Schema.Raw, &s); err != nil {
			t.Fatalf("cannot decode the schema of XRD version %s: %v", v.Name, err)
		}
		schemas[v.Name] = s
	}
	return schemas
}

func TestEveryFieldDocumented(t *testing.T) {
	for version, s := range xrdSchema(t) {
		// Walk from the root the way kubectl explain does (database,
		// database.spec, ...). Crossplane's own additions (spec.crossplane,
		// status.conditions) are not in this file: Crossplane documents them.
		if missing := undocumented("database", s); len(missing) > 0 {
			t.Errorf("XRD version %s: fields without a description (kubectl explain shows nothing for them; "+
				"add a doc comment on the Go field in apis/v1 and run make generate):\n%s",
				version, strings.Join(missing, "\n"))
		}
	}
}

func TestUndocumented(t *testing.T) {
	described := func(props map[string]extv1.JSONSchemaProps) extv1.JSONSchemaProps {
		return extv1.JSONSchemaProps{Description: "d", Properties: props}
	}
	s := described(map[string]extv1.JSONSchemaProps{
		"spec": described(map[string]extv1.JSONSchemaProps{
			"documented": {Description: "d"},
			"bare":       {},
			"blank":      {Description: " \n"},
			"users": {Description: "d", Items: &extv1.JSONSchemaPropsOrArray{Schema: &extv1.JSONSchemaProps{
				Properties: map[string]extv1.JSONSchemaProps{"name": {}, "role": {Description: "d"}},
			}}},
			"labels": {Description: "d", AdditionalProperties: &extv1.JSONSchemaPropsOrBool{Schema: &extv1.JSONSchemaProps{
				Properties: map[string]extv1.JSONSchemaProps{"value": {}},
			}}},
		}),
		"status": {},
	})
	want := []string{"x.spec.bare", "x.spec.blank", "x.spec.labels{}.value", "x.spec.users[].name", "x.status"}
	if got := undocumented("x", s); !slices.Equal(got, want) {
		t.Errorf("undocumented: every field without a description, nested in objects, arrays and maps, and only those:\nwant %q\ngot  %q", want, got)
	}
}

func TestShortName(t *testing.T) {
	// The CRD Crossplane derives from the XRD is what kubectl's discovery
	// reads: `kubectl get db` works only if the short name reaches it.
	crd := compositeResourceCRD(t, xrdPath)
	if !slices.Contains(crd.Spec.Names.ShortNames, "db") {
		t.Errorf("the Database CRD Crossplane creates has short names %q: want db, for kubectl get db", crd.Spec.Names.ShortNames)
	}
}
