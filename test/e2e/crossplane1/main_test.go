//go:build e2e

// Package crossplane1 runs DatabaseClaims on a local control plane with
// Crossplane 1.20's core (test/tools/crossplane-core-v1) instead of v2.4.2:
// what a platform team still on Crossplane 1.x would get from the claims
// package. Its own control plane, as test/e2e/install has. Not part of `make
// e2e`: `make e2e-crossplane1`.
package crossplane1

import (
	"os"
	"testing"

	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/cluster"
)

// env is the control plane, started by TestMain with Crossplane 1.20 and the
// claims package.
var env *cluster.Cluster

// timings are the run's measurements, printed at its end.
var timings harness.Timings

// TestMain starts the control plane with Crossplane 1.20 (a failure there
// fails the run, with every log printed), runs the tests, and stops every
// process by PID (cluster.Main).
func TestMain(m *testing.M) {
	os.Exit(cluster.Main(m, "crossplane1", cluster.Options{Crossplane1: true}, &env, &timings))
}
