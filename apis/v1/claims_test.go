package v1_test

import (
	"slices"
	"testing"

	"github.com/crossplane/crossplane-runtime/v2/pkg/xcrd"
	"github.com/google/go-cmp/cmp"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// TestLegacyXRDSchemaIsTheDatabases: the legacy XRD carries the Database
// XRD's schema and printer columns, field for field: xrdgen wraps the same
// controller-gen schema into both, so neither can drift.
func TestLegacyXRDSchemaIsTheDatabases(t *testing.T) {
	db, legacy := readXRD(t, xrdPath), readXRD(t, legacyXRDPath)
	if len(db.Spec.Versions) != 1 || len(legacy.Spec.Versions) != 1 {
		t.Fatalf("want one version in each XRD, got %d and %d", len(db.Spec.Versions), len(legacy.Spec.Versions))
	}
	d, l := db.Spec.Versions[0], legacy.Spec.Versions[0]
	if diff := cmp.Diff(string(d.Schema.OpenAPIV3Schema.Raw), string(l.Schema.OpenAPIV3Schema.Raw)); diff != "" {
		t.Errorf("schema: -Database XRD, +legacy XRD:\n%s", diff)
	}
	if diff := cmp.Diff(d.AdditionalPrinterColumns, l.AdditionalPrinterColumns); diff != "" {
		t.Errorf("printer columns: -Database XRD, +legacy XRD:\n%s", diff)
	}
	if d.Name != l.Name || legacy.Spec.Group != db.Spec.Group {
		t.Errorf("want the same group and version: Database %s/%s, legacy %s/%s", db.Spec.Group, d.Name, legacy.Spec.Group, l.Name)
	}
}

// TestClaimNamesDoNotClash: the Database, the XDatabase and the
// DatabaseClaim share the group database.example.com, so no kind, list kind,
// plural, singular or short name of one may be another's: the apiserver
// would refuse the second CRD (or kubectl would resolve a name to the wrong
// kind).
func TestClaimNamesDoNotClash(t *testing.T) {
	db := compositeResourceCRD(t, xrdPath)
	xr := compositeResourceCRD(t, legacyXRDPath)
	claim, err := xcrd.ForCompositeResourceClaim(legacyXRD(t))
	if err != nil {
		t.Fatal(err)
	}
	if claim.Spec.Scope != extv1.NamespaceScoped || xr.Spec.Scope != extv1.ClusterScoped {
		t.Errorf("want a namespaced claim and a cluster-scoped XR, got %s and %s", claim.Spec.Scope, xr.Spec.Scope)
	}
	if diff := cmp.Diff([]string{"dbclaim"}, claim.Spec.Names.ShortNames); diff != "" {
		t.Errorf("claim short names, for kubectl get dbclaim: -want, +got:\n%s", diff)
	}
	seen := map[string]string{}
	for _, crd := range []*extv1.CustomResourceDefinition{db, xr, claim} {
		if crd.Spec.Group != "database.example.com" {
			t.Errorf("%s: group %s, want database.example.com", crd.Name, crd.Spec.Group)
		}
		n := crd.Spec.Names
		for _, name := range slices.Concat([]string{n.Kind, n.ListKind, n.Plural, n.Singular}, n.ShortNames) {
			if other, ok := seen[name]; ok && other != crd.Name {
				t.Errorf("%q names both %s and %s", name, other, crd.Name)
			}
			seen[name] = crd.Name
		}
	}
	// The apiserver admits all three.
	for _, crd := range []*extv1.CustomResourceDefinition{db, xr, claim} {
		admitCRD(t, crd)
	}
}
