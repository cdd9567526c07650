//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
)

// env is the control plane every test shares. TestMain starts it before
// the first test and stops it after the last.
var env *cluster

// TestMain starts the control plane, runs the tests, and stops every process
// it started by PID, whether tests pass, fail or the run is interrupted.
// (A panic in a test or go test's -timeout kill the test binary without
// running this cleanup: the processes die with it, see process.start.)
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

	t0 := time.Now()
	c, err := startCluster(ctx)
	var once sync.Once
	teardown := func(failed bool) {
		once.Do(func() {
			if c == nil {
				return
			}
			for _, err := range c.stop() {
				fmt.Fprintln(os.Stderr, "e2e:", err)
			}
			if failed || os.Getenv("DBPLANE_E2E_KEEP") != "" {
				printLogs(c)
				return
			}
			_ = os.RemoveAll(c.dir)
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
		fmt.Fprintf(os.Stderr, "e2e: holding the control plane; ^C to stop it:\n  export KUBECONFIG=%s\n", c.admin)
		select {}
	}
	teardown(code != 0)
	printTimings()
	return code
}

// printLogs prints where the component logs are and the end of each.
func printLogs(c *cluster) {
	fmt.Fprintf(os.Stderr, "\ne2e: everything the control plane wrote is in %s\n", c.dir)
	for _, p := range c.procs {
		fmt.Fprintf(os.Stderr, "\n----- %s: last lines of %s\n%s\n", p.name, p.log, logTail(p.log, 3000))
	}
	fmt.Fprintf(os.Stderr, "\ne2e: logs in %s\n", filepath.Join(c.dir, "logs"))
}

// Timings of the run, printed at the end: start-up steps, binaries, suites
// and the latencies tests measure.
var (
	timingsMu sync.Mutex
	timings   = map[string][]time.Duration{}
)

// record adds one measurement.
func record(name string, d time.Duration) {
	timingsMu.Lock()
	defer timingsMu.Unlock()
	timings[name] = append(timings[name], d)
}

func printTimings() {
	timingsMu.Lock()
	defer timingsMu.Unlock()
	names := make([]string, 0, len(timings))
	for n := range timings {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("\ne2e timings:")
	for _, n := range names {
		ds := timings[n]
		if len(ds) == 1 {
			fmt.Printf("  %-60s %8.2fs\n", n, ds[0].Seconds())
			continue
		}
		lo, hi, sum := ds[0], ds[0], time.Duration(0)
		for _, d := range ds {
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		fmt.Printf("  %-60s %8.2fs avg  (min %.2fs, max %.2fs, n=%d)\n", n, (sum / time.Duration(len(ds))).Seconds(), lo.Seconds(), hi.Seconds(), len(ds))
	}
}
