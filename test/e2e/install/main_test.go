//go:build e2e

// Package install installs dbplane on a fresh local control plane the way
// platform teams do (test/harness/cluster's Options.FromRegistry): a
// loopback registry, the README's install steps run as written, and
// Crossplane's package manager resolving the function and the provider as
// the configuration's dependencies. Its own control plane: the e2e suites'
// one installs the pieces by hand, with Compositions of their own.
package install

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

// env is the control plane, started by TestMain with dbplane installed from
// the registry.
var env *cluster.Cluster

// timings are the run's measurements, printed at its end.
var timings harness.Timings

// TestMain starts the control plane and installs dbplane through the
// README's steps (a failure there fails the run, with every log printed),
// runs the tests, and stops every process by PID.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "install: cannot find the repository:", err)
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
	c, err := cluster.Start(ctx, cluster.Options{Root: root, FromRegistry: true, Record: timings.Record})
	teardown := func(failed bool) {
		if c == nil {
			return
		}
		for _, err := range c.Stop() {
			fmt.Fprintln(os.Stderr, "install:", err)
		}
		if failed || harness.Keep() {
			c.PrintLogs(os.Stderr)
			return
		}
		_ = os.RemoveAll(c.Dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "install: cannot start the control plane and install dbplane:", err)
		teardown(true)
		return 1
	}
	timings.Record("start-up: total", time.Since(t0))
	env = c
	code := m.Run()
	teardown(code != 0)
	fmt.Println("\ninstall timings:")
	timings.Print(os.Stdout)
	return code
}
