//go:build e2e

package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/dbplane/dbplane/test/harness"
)

// The legacy XR and its claim, which the claims package defines.
var (
	GVRDatabaseClaim = schema.GroupVersionResource{Group: "database.example.com", Version: "v1", Resource: "databaseclaims"}
	GVRXDatabase     = schema.GroupVersionResource{Group: "database.example.com", Version: "v1", Resource: "xdatabases"}
)

const legacyXRDName = "xdatabases.database.example.com"

// InstallClaims applies the claims package's XRD and Composition (with the
// Input `sqlUsers: false`, as installConfiguration does for Databases) once,
// and waits until DatabaseClaims are served and Crossplane may watch them
// and their XDatabases. Only the tests that use claims pay for it. (With
// Crossplane1, installConfiguration has installed them.)
func (c *Cluster) InstallClaims(t testing.TB) {
	t.Helper()
	if c.opts.Crossplane1 {
		return
	}
	// Not the test's context: a test that ends would fail the install for
	// every later one.
	c.claims.Do(func() { c.claimsErr = c.installClaims(context.Background()) })
	if c.claimsErr != nil {
		t.Fatalf("cannot install the claims package: %v", c.claimsErr)
	}
}

func (c *Cluster) installClaims(ctx context.Context) error {
	dir := filepath.Join(c.Root, "package", "configuration-claims")
	if _, err := c.Kubectl(ctx, nil, "apply", "-f", filepath.Join(dir, "xrd.yaml")); err != nil {
		return err
	}
	comp, err := compositionWithInput(filepath.Join(dir, "composition.yaml"), "", map[string]any{"sqlUsers": false})
	if err != nil {
		return err
	}
	if err := c.Apply(ctx, comp); err != nil {
		return err
	}
	return c.waitClaimsServed(ctx)
}

// waitClaimsServed waits until the legacy XRD is Established and Offered
// (its claim CRD is served) and Crossplane may watch both kinds.
func (c *Cluster) waitClaimsServed(ctx context.Context) error {
	// Read through the v2 API, which serves v1 XRDs too (as scope
	// LegacyCluster) without a deprecation warning on every poll; 1.x has
	// only v1.
	gvr := gvrXRD
	if c.opts.Crossplane1 {
		gvr.Version = "v1"
	}
	if err := harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		x, err := c.Dynamic.Resource(gvr).Get(ctx, legacyXRDName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, typ := range []string{"Established", "Offered"} {
			if s, _, _ := Condition(x, typ); s != "True" {
				return fmt.Errorf("legacy XRD not %s: %v", typ, Conditions(x))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return harness.Poll(ctx, setupTimeout, func(ctx context.Context) error {
		rl, err := c.Kube.Discovery().ServerResourcesForGroupVersion(GVRDatabaseClaim.GroupVersion().String())
		if err != nil {
			return err
		}
		for _, r := range []schema.GroupVersionResource{GVRDatabaseClaim, GVRXDatabase} {
			if !slices.ContainsFunc(rl.APIResources, func(a metav1.APIResource) bool { return a.Name == r.Resource }) {
				return fmt.Errorf("%s not served yet", r.Resource)
			}
			if _, err := c.Kubectl(ctx, nil, "auth", "can-i", "watch", r.GroupResource().String(),
				"--as=system:serviceaccount:"+crossplaneNamespace+":crossplane", "--all-namespaces"); err != nil {
				return err
			}
		}
		return nil
	})
}

// NewClaim returns a DatabaseClaim in namespace ns with spec.
func NewClaim(ns, name string, spec map[string]any) Database {
	d := NewDatabase(ns, name, spec)
	d.SetKind("DatabaseClaim")
	return d
}

// GetClaim reads a DatabaseClaim; nil when it does not exist.
func (c *Cluster) GetClaim(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	u, err := c.Dynamic.Resource(GVRDatabaseClaim).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// ClaimXR reads the XDatabase a claim is bound to (spec.resourceRef).
func (c *Cluster) ClaimXR(ctx context.Context, claim *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	name, _, _ := unstructured.NestedString(claim.Object, "spec", "resourceRef", "name")
	if name == "" {
		return nil, errors.New("the claim is not bound to an XDatabase yet (no spec.resourceRef)")
	}
	return c.Dynamic.Resource(GVRXDatabase).Get(ctx, name, metav1.GetOptions{})
}

// WaitClaimReady waits until the DatabaseClaim is Ready as a developer sees
// it: Synced and Ready True on the claim, status.phase Ready and
// status.replicas equal to spec.replicas on the claim (which Crossplane
// copies from the XDatabase); and its XDatabase Synced and Ready for its
// current generation, composed from that generation. It returns the claim
// and its XDatabase.
func (c *Cluster) WaitClaimReady(t testing.TB, ns, name string) (claim, xr Database) {
	t.Helper()
	var last, lastXR *unstructured.Unstructured
	err := harness.Poll(t.Context(), ReadyTimeout, func(ctx context.Context) error {
		u, err := c.GetClaim(ctx, ns, name)
		if err != nil {
			return err
		}
		if u == nil {
			return fmt.Errorf("DatabaseClaim %s/%s does not exist", ns, name)
		}
		last = u
		x, err := c.ClaimXR(ctx, u)
		if err != nil {
			return err
		}
		lastXR = x
		for _, typ := range []string{"Synced", "Ready"} {
			if s, _, _ := Condition(x, typ); s != "True" {
				return fmt.Errorf("XDatabase not %s: %s", typ, Conditions(x))
			}
			if g := ObservedGeneration(x, typ); g != x.GetGeneration() {
				return fmt.Errorf("XDatabase %s is for generation %d, it is at %d", typ, g, x.GetGeneration())
			}
		}
		if g := (Database{x}).Num("status", "observedGeneration"); g != x.GetGeneration() {
			return fmt.Errorf("XDatabase status is composed from generation %d, it is at %d", g, x.GetGeneration())
		}
		for _, typ := range []string{"Synced", "Ready"} {
			if s, _, _ := Condition(u, typ); s != "True" {
				return fmt.Errorf("claim not %s: %s", typ, Conditions(u))
			}
		}
		d := Database{u}
		if p := d.Str("status", "phase"); p != "Ready" {
			return fmt.Errorf("claim status.phase is %q", p)
		}
		if got, want := d.Num("status", "replicas"), d.Num("spec", "replicas"); got != want {
			return fmt.Errorf("claim status.replicas is %d, spec.replicas %d", got, want)
		}
		return nil
	})
	if err != nil {
		var status, xrStatus any
		if last != nil {
			status = last.Object["status"]
		}
		if lastXR != nil {
			xrStatus = lastXR.Object["status"]
		}
		t.Fatalf("DatabaseClaim %s/%s did not become Ready: %v\nclaim status: %v\nXDatabase status: %v", ns, name, err, status, xrStatus)
	}
	return Database{last}, Database{lastXR}
}
