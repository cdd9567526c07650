//go:build e2e

package e2e

import (
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/dbplane/dbplane/test/harness"
	"github.com/dbplane/dbplane/test/harness/cluster"
)

// env is the control plane every test shares. TestMain starts it before
// the first test and stops it after the last.
var env *cluster.Cluster

// timings are the run's measurements, printed at its end: start-up steps,
// binaries, suites and the latencies tests measure.
var timings harness.Timings

// record adds one measurement to timings.
func record(name string, d time.Duration) { timings.Record(name, d) }

// TestMain starts the control plane, runs the tests, and stops every process
// it started (cluster.Main). DBPLANE_E2E_AUDIT=FILE writes the apiserver's
// audit log to FILE.
func TestMain(m *testing.M) {
	os.Exit(cluster.Main(m, "e2e", cluster.Options{AuditLog: os.Getenv("DBPLANE_E2E_AUDIT")}, &env, &timings))
}

// start times a test: `defer start(t)()` records how long it took, with
// its parallel subtests, as "suite: <name>", and turns a panic into a
// failure, so that TestMain still stops every process.
func start(t *testing.T) func() {
	t.Helper()
	t0 := time.Now()
	t.Cleanup(func() { record("suite: "+t.Name(), time.Since(t0)) })
	return func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v\n%s", r, debug.Stack())
		}
	}
}
