package harness

import (
	"os"
	"testing"
)

// KeepEnv is the environment variable that, set to anything, keeps what the
// tests' processes wrote (logs, data directories) after they pass.
const KeepEnv = "DBPLANE_E2E_KEEP"

// Keep tells whether KeepEnv is set.
func Keep() bool { return os.Getenv(KeepEnv) != "" }

// TempDir creates a directory for a test's processes, named after pattern as
// os.MkdirTemp names it. It is removed when the test ends, unless the test
// failed or Keep: then the test logs where it is. Register it before the
// cleanups of the processes that write in it, so that they stop first.
func TempDir(t testing.TB, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatalf("cannot create a directory: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() || Keep() {
			t.Logf("kept %s", dir)
			return
		}
		_ = os.RemoveAll(dir) // Best effort.
	})
	return dir
}
