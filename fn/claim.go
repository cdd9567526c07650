package fn

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// The legacy composite resource and its claim: a DatabaseClaim in a namespace
// makes Crossplane create a cluster-scoped XDatabase with the claim's spec,
// which this function composes like a Database.
const (
	LegacyKind = "XDatabase"
	ClaimKind  = "DatabaseClaim"
)

// Labels Crossplane sets on a claim's composite resource, naming the claim.
const (
	LabelClaimName      = "crossplane.io/claim-name"
	LabelClaimNamespace = "crossplane.io/claim-namespace"
)

// Identify gives a decoded composite resource the name and namespace its
// composed objects take. A Database keeps its own. A legacy XDatabase is
// cluster-scoped with a generated name: it takes its claim's name and
// namespace from the labels Crossplane sets on it, so that a DatabaseClaim
// orders in team-a composes the same objects, in team-a, as a Database orders
// there would (Crossplane v2 puts a cluster-scoped XR's composed objects in
// no namespace of its own: the function names it). An XDatabase without a
// claim has no namespace to compose into and is refused.
func Identify(db *v1.Database) *field.Error {
	if db.GetNamespace() != "" {
		return nil
	}
	name, ns := db.GetLabels()[LabelClaimName], db.GetLabels()[LabelClaimNamespace]
	if name == "" || ns == "" {
		return field.Required(field.NewPath("metadata", "labels").Key(LabelClaimNamespace),
			fmt.Sprintf("a cluster-scoped %s %q composes into its claim's namespace: create a %s in a namespace instead of an %s",
				orString(db.Kind, LegacyKind), db.GetName(), ClaimKind, LegacyKind))
	}
	db.SetName(name)
	db.SetNamespace(ns)
	return nil
}

// restoreKind is the kind spec.restore.from names, if set: a Database
// restores from a Database's backups, a claim's XDatabase from a
// DatabaseClaim's.
func restoreKind(db *v1.Database) string {
	switch {
	case db.Spec.Restore == nil:
		return ""
	case db.Kind == LegacyKind:
		return ClaimKind
	default:
		return v1.Kind
	}
}
