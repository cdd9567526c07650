//go:build e2e

package crossplane1

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// refusal is how Crossplane 1.20 refuses the XDatabase's composed objects:
// its legacy XRs' spec.resourceRefs have no namespace field (1.x composes
// cluster-scoped resources only), so recording a reference to a namespaced
// StatefulSet, Secret or Service fails before anything is created.
const refusal = ".spec.resourceRefs[0].namespace: field not declared in schema"

// TestClaimOnCrossplane1IsRefused creates a DatabaseClaim on Crossplane
// 1.20 with the claims package's XRD and Composition and the function
// package a 1.20 user would need (crossplane.version >=v1.20.0): Crossplane
// installs them, binds the claim to an XDatabase and calls the function,
// then refuses the namespaced objects it composes (refusal), and nothing is
// composed. It records what dbplane cannot do on 1.x; when it fails, 1.x
// (or dbplane) has changed and the README's Crossplane 1.20 statement with
// it.
func TestClaimOnCrossplane1IsRefused(t *testing.T) {
	const ns, name = "team-a", "billing"
	env.Namespace(t, ns)
	d := cluster.NewClaim(ns, name, map[string]any{
		"type":        "postgresql",
		"version":     "16",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
	})
	t0 := time.Now()
	env.ApplyDatabase(t, d)
	var xr *unstructured.Unstructured
	env.WaitFor(t, d, "XDatabase refused by Crossplane 1.20", func(ctx context.Context) error {
		claim, err := env.GetClaim(ctx, ns, name)
		if err != nil || claim == nil {
			return fmt.Errorf("no claim: %w", err)
		}
		if xr, err = env.ClaimXR(ctx, claim); err != nil {
			return err
		}
		s, _, m := cluster.Condition(xr, "Synced")
		if s != "False" || !strings.Contains(m, refusal) {
			return fmt.Errorf("XDatabase Synced %s: %s", s, m)
		}
		return nil
	})
	timings.Record("latency: apply -> XDatabase refused (Crossplane 1.20)", time.Since(t0))
	_, _, m := cluster.Condition(xr, "Synced")
	t.Logf("Crossplane 1.20: XDatabase %s Synced=False: %s", xr.GetName(), m)

	// The function was called: the refusal is of what it composed.
	if !strings.Contains(m, "cannot update composite resource spec.resourceRefs") {
		t.Errorf("want the refusal to come from recording the composed objects, got: %s", m)
	}
	for _, c := range cluster.ComposedObjects(d) {
		o, err := env.Object(t.Context(), c.Kind, ns, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		if o != nil {
			t.Errorf("%s %s was composed, though Crossplane 1.20 refused the XDatabase's references", c.Kind, c.Name)
		}
	}
	claim, err := env.GetClaim(t.Context(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if s, _, _ := cluster.Condition(claim, "Ready"); s == "True" {
		t.Errorf("claim Ready on Crossplane 1.20, want it not Ready: %s", cluster.Conditions(claim))
	}

	// And a claim goes away cleanly.
	if _, err := env.Kubectl(t.Context(), nil, "delete", "databaseclaim", name, "-n", ns, "--wait=true", "--timeout=2m"); err != nil {
		t.Fatal(err)
	}
	env.WaitFor(t, d, "XDatabase deleted", func(ctx context.Context) error {
		if _, err := env.Dynamic.Resource(cluster.GVRXDatabase).Get(ctx, xr.GetName(), metav1.GetOptions{}); err == nil {
			return errors.New("XDatabase still there")
		}
		return nil
	})
}
