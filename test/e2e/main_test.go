//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
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
// it started by PID, whether tests pass, fail or the run is interrupted.
// (A panic in a test or go test's -timeout kill the test binary without
// running this cleanup: the processes die with it, see harness.Process.)
//
// Component logs go to a temporary directory, printed and kept when
// anything fails; set DBPLANE_E2E_KEEP=1 to keep it anyway, and
// DBPLANE_E2E_HOLD=1 to keep the control plane running after the tests
// until ^C. DBPLANE_E2E_AUDIT=FILE writes the apiserver's audit log to FILE.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot find the repository:", err)
		return 1
	}
	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Root: root, AuditLog: os.Getenv("DBPLANE_E2E_AUDIT"), Record: record})
	var once sync.Once
	teardown := func(failed bool) {
		once.Do(func() {
			if c == nil {
				return
			}
			for _, err := range c.Stop() {
				fmt.Fprintln(os.Stderr, "e2e:", err)
			}
			if failed || harness.Keep() {
				c.PrintLogs(os.Stderr)
				return
			}
			_ = os.RemoveAll(c.Dir)
		})
	}

	// ^C or SIGTERM: stop everything rather than leave it running.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s, ok := <-sig
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "e2e: %v: stopping the control plane\n", s)
		teardown(true)
		os.Exit(1)
	}()
	defer signal.Stop(sig)

	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start the control plane:", err)
		teardown(true)
		return 1
	}
	record("start-up: total", time.Since(t0))
	env = c

	code := m.Run()
	if os.Getenv("DBPLANE_E2E_HOLD") != "" {
		// For debugging: keep the control plane up until ^C.
		fmt.Fprintf(os.Stderr, "e2e: holding the control plane; ^C to stop it:\n  export KUBECONFIG=%s\n", c.Kubeconfig)
		select {}
	}
	teardown(code != 0)
	fmt.Println("\ne2e timings:")
	timings.Print(os.Stdout)
	return code
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
