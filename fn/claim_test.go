package fn

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// legacyXR is the observed XDatabase Crossplane makes for the DatabaseClaim
// claim in namespace team-a: cluster-scoped, with a generated name and the
// claim's name and namespace as labels.
func legacyXR(claim, spec string) string {
	return fmt.Sprintf(`{"apiVersion":"database.example.com/v1","kind":"XDatabase","metadata":{"name":"%s-x7k2p",`+
		`"labels":{"crossplane.io/claim-name":%q,"crossplane.io/claim-namespace":"team-a","crossplane.io/composite":"%s-x7k2p"}},"spec":%s}`,
		claim, claim, claim, spec)
}

func TestIdentify(t *testing.T) {
	type want struct {
		name, namespace string
		err             string
	}
	cases := map[string]struct {
		reason string
		db     v1.Database
		want   want
	}{
		"Database": {
			reason: "A namespaced Database composes under its own name, in its own namespace.",
			db:     v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}},
			want:   want{name: "orders", namespace: "team-a"},
		},
		"DatabaseLabelledAsClaimed": {
			reason: "A namespaced Database keeps its own name and namespace even when labels name a claim: a label must not move it.",
			db: v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a",
				Labels: map[string]string{LabelClaimName: "other", LabelClaimNamespace: "team-b"}}},
			want: want{name: "orders", namespace: "team-a"},
		},
		"ClaimedXDatabase": {
			reason: "A claim's cluster-scoped XDatabase composes under the claim's name, in the claim's namespace.",
			db: v1.Database{TypeMeta: metav1.TypeMeta{Kind: LegacyKind}, ObjectMeta: metav1.ObjectMeta{Name: "orders-x7k2p",
				Labels: map[string]string{LabelClaimName: "orders", LabelClaimNamespace: "team-a"}}},
			want: want{name: "orders", namespace: "team-a"},
		},
		"UnclaimedXDatabase": {
			reason: "An XDatabase created without a claim has no namespace to compose into: refused, naming the label and what to do.",
			db:     v1.Database{TypeMeta: metav1.TypeMeta{Kind: LegacyKind}, ObjectMeta: metav1.ObjectMeta{Name: "orders"}},
			want: want{name: "orders", err: `metadata.labels[crossplane.io/claim-namespace]: Required value: ` +
				`a cluster-scoped XDatabase "orders" composes into its claim's namespace: create a DatabaseClaim in a namespace instead of an XDatabase`},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			db := tc.db
			got := want{name: db.GetName(), namespace: db.GetNamespace()}
			if err := Identify(&db); err != nil {
				got.err = err.Error()
			}
			got.name, got.namespace = db.GetName(), db.GetNamespace()
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{})); diff != "" {
				t.Errorf("%s\nIdentify(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRunFunctionComposesClaimsLikeDatabases composes a claim's XDatabase
// and the Database of the same name, namespace and spec: the function must
// return the same desired objects, status and conditions for both, every
// object in the claim's namespace (Crossplane v2 sets no namespace on the
// composed objects of a cluster-scoped XR), and its conditions must reach the
// claim.
func TestRunFunctionComposesClaimsLikeDatabases(t *testing.T) {
	generate := func() (string, error) { return testPassword, nil }
	specs := map[string]string{
		"ProductionPostgreSQL":  pgProd,
		"DevelopmentPostgreSQL": pgDev,
		"ProductionMySQL":       myProd,
		"EndOfLifeMySQL":        my80Dev,
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			db, err := New(logging.NewNopLogger(), WithPasswordGenerator(generate), WithIssuer(fixedIssuer{}), WithClock(func() time.Time { return testNow }), WithoutCache()).RunFunction(t.Context(), req(xr("orders", spec), nil))
			if err != nil {
				t.Fatal(err)
			}
			claim, err := New(logging.NewNopLogger(), WithPasswordGenerator(generate), WithIssuer(fixedIssuer{}), WithClock(func() time.Time { return testNow }), WithoutCache()).RunFunction(t.Context(), req(legacyXR("orders", spec), nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(db.GetDesired().GetResources(), claim.GetDesired().GetResources(), protocmp.Transform()); diff != "" {
				t.Errorf("a claim's XDatabase must compose what a Database of the same name and namespace composes\nRunFunction(...): -Database, +XDatabase:\n%s", diff)
			}
			if diff := cmp.Diff(db.GetDesired().GetComposite().GetResource().AsMap()["status"], claim.GetDesired().GetComposite().GetResource().AsMap()["status"]); diff != "" {
				t.Errorf("a claim's XDatabase must get the status a Database gets\nRunFunction(...): -Database, +XDatabase:\n%s", diff)
			}
			if diff := cmp.Diff(db.GetConditions(), claim.GetConditions(), protocmp.Transform()); diff != "" {
				t.Errorf("RunFunction(...): conditions -Database, +XDatabase:\n%s", diff)
			}
			if len(claim.GetDesired().GetResources()) < 8 {
				t.Errorf("RunFunction(...): want at least 8 composed resources, got %d: %v", len(claim.GetDesired().GetResources()), claim.GetResults())
			}
			for n, r := range claim.GetDesired().GetResources() {
				md, _ := r.GetResource().AsMap()["metadata"].(map[string]any)
				if md["namespace"] != "team-a" {
					t.Errorf("composed resource %s: want metadata.namespace team-a (the claim's), got %v", n, md["namespace"])
				}
			}
			for _, c := range claim.GetConditions() {
				if c.GetTarget() != fnv1.Target_TARGET_COMPOSITE_AND_CLAIM {
					t.Errorf("condition %s: want target CompositeAndClaim, so that the claim shows it; got %s", c.GetType(), c.GetTarget())
				}
			}
			for _, r := range claim.GetResults() {
				if r.GetSeverity() == fnv1.Severity_SEVERITY_WARNING && r.GetTarget() != fnv1.Target_TARGET_COMPOSITE_AND_CLAIM {
					t.Errorf("warning %q: want target CompositeAndClaim, got %s", r.GetMessage(), r.GetTarget())
				}
			}
		})
	}
}

// TestRunFunctionClaimRestoresFromClaim: a claim's spec.restore.from names
// another DatabaseClaim of its namespace, which the function asks Crossplane
// for.
func TestRunFunctionClaimRestoresFromClaim(t *testing.T) {
	cases := map[string]struct {
		reason string
		xr     string
		want   *fnv1.ResourceSelector
	}{
		"Database": {
			reason: "A Database restores from a Database of its namespace.",
			xr:     xr("orders", pgRestore),
			want: &fnv1.ResourceSelector{ApiVersion: "database.example.com/v1", Kind: "Database", Namespace: new("team-a"),
				Match: &fnv1.ResourceSelector_MatchName{MatchName: "orders-old"}},
		},
		"Claim": {
			reason: "A claim's XDatabase restores from a DatabaseClaim of the claim's namespace.",
			xr:     legacyXR("orders", pgRestore),
			want: &fnv1.ResourceSelector{ApiVersion: "database.example.com/v1", Kind: "DatabaseClaim", Namespace: new("team-a"),
				Match: &fnv1.ResourceSelector_MatchName{MatchName: "orders-old"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger(), WithPasswordGenerator(func() (string, error) { return testPassword, nil })).RunFunction(t.Context(), req(tc.xr, nil))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rsp.GetRequirements().GetResources()[requiredRestoreSource], protocmp.Transform()); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestRunFunctionRefusesUnclaimedXDatabase: an XDatabase made by hand, with
// no claim, is refused and nothing is composed.
func TestRunFunctionRefusesUnclaimedXDatabase(t *testing.T) {
	rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), req(`{"apiVersion":"database.example.com/v1","kind":"XDatabase","metadata":{"name":"orders"},"spec":`+pgDev+`}`, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := got{
		Results: []string{`SEVERITY_FATAL: cannot accept Database: metadata.labels[crossplane.io/claim-namespace]: Required value: ` +
			`a cluster-scoped XDatabase "orders" composes into its claim's namespace: create a DatabaseClaim in a namespace instead of an XDatabase`},
		Composed: map[string]string{}, Ready: map[string]string{},
	}
	if diff := cmp.Diff(want, summarise(t, rsp)); diff != "" {
		t.Errorf("RunFunction(...): -want, +got:\n%s", diff)
	}
}
