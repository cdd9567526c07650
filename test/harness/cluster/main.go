//go:build e2e

package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbplane/dbplane/test/harness"
)

// Main is the TestMain of a package of tests on a control plane, called
// name in what it prints: it starts the control plane with o (Root, when
// unset, the repository the working directory is in; Record, when unset,
// timings'), sets *env, runs the tests, and stops every process it started
// by PID whether the tests pass, fail or the run is interrupted (^C,
// SIGTERM). It returns the exit code. (A panic in a test or go test's
// -timeout kill the test binary without this cleanup: the processes die
// with it, see harness.Process.)
//
// Component logs go to a temporary directory, printed and kept when
// anything fails; DBPLANE_E2E_KEEP=1 keeps it anyway, DBPLANE_E2E_HOLD=1
// keeps the control plane running after the tests until ^C. timings are
// printed at the end.
func Main(m *testing.M, name string, o Options, env **Cluster, timings *harness.Timings) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if o.Root == "" {
		root, err := repository()
		if err != nil {
			fmt.Fprintln(os.Stderr, name+": cannot find the repository:", err)
			return 1
		}
		o.Root = root
	}
	if o.Record == nil {
		o.Record = timings.Record
	}

	t0 := time.Now()
	c, err := Start(ctx, o)
	var once sync.Once
	teardown := func(failed bool) {
		once.Do(func() {
			if c == nil {
				return
			}
			for _, err := range c.Stop() {
				fmt.Fprintln(os.Stderr, name+":", err)
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
	defer signal.Stop(sig)
	go func() {
		s, ok := <-sig
		if !ok {
			return
		}
		fmt.Fprintf(os.Stderr, "%s: %v: stopping the control plane\n", name, s)
		teardown(true)
		os.Exit(1)
	}()

	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: cannot start the control plane: %v\n", name, err)
		teardown(true)
		return 1
	}
	o.Record("start-up: total", time.Since(t0))
	*env = c

	code := m.Run()
	if os.Getenv("DBPLANE_E2E_HOLD") != "" {
		fmt.Fprintf(os.Stderr, "%s: holding the control plane; ^C to stop it:\n  export KUBECONFIG=%s\n", name, c.Kubeconfig)
		select {}
	}
	teardown(code != 0)
	fmt.Printf("\n%s timings:\n", name)
	timings.Print(os.Stdout)
	return code
}

// repository is the directory above the working directory holding go.mod.
func repository() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		up := filepath.Dir(d)
		if up == d {
			return "", errors.New("no go.mod above the working directory")
		}
		d = up
	}
}
