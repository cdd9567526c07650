//go:build e2e

// Package install installs dbplane on a fresh local control plane the way
// platform teams do (test/harness/cluster's Options.FromRegistry): a
// loopback registry, the README's install steps run as written, and
// Crossplane's package manager resolving the function and the provider as
// the configuration's dependencies. Its own control plane: the e2e suites'
// one installs the pieces by hand, with Compositions of their own.
package install

import (
	"os"
	"testing"

	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/cluster"
)

// env is the control plane, started by TestMain with dbplane installed from
// the registry.
var env *cluster.Cluster

// timings are the run's measurements, printed at its end.
var timings harness.Timings

// TestMain starts the control plane and installs dbplane through the
// README's steps (a failure there fails the run, with every log printed),
// runs the tests, and stops every process by PID (cluster.Main).
func TestMain(m *testing.M) {
	os.Exit(cluster.Main(m, "install", cluster.Options{FromRegistry: true}, &env, &timings))
}
