//go:build e2e

// Package crossplane1 runs DatabaseClaims on a local control plane with
// Crossplane 1.20's core (test/tools/crossplane-core-v1) instead of v2.4.2:
// what a platform team still on Crossplane 1.x would get from the claims
// package. Its own control plane, as test/e2e/install has. Not part of `make
// e2e`: `make e2e-crossplane1`.
package crossplane1

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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
// process by PID.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crossplane1: cannot find the repository:", err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	go func() {
		if _, ok := <-sig; ok {
			cancel()
		}
	}()

	t0 := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{Root: root, Crossplane1: true, Record: timings.Record})
	teardown := func(failed bool) {
		if c == nil {
			return
		}
		for _, err := range c.Stop() {
			fmt.Fprintln(os.Stderr, "crossplane1:", err)
		}
		if failed || harness.Keep() {
			c.PrintLogs(os.Stderr)
			return
		}
		_ = os.RemoveAll(c.Dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crossplane1: cannot start the control plane with Crossplane 1.20:", err)
		teardown(true)
		return 1
	}
	timings.Record("start-up: total", time.Since(t0))
	env = c
	code := m.Run()
	teardown(code != 0)
	fmt.Println("\ncrossplane 1.20 timings:")
	timings.Print(os.Stdout)
	return code
}
