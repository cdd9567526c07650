// Package tools holds the wrapper modules that pin the tools the tests run
// (one directory each) and build.sh, which builds them into a cache keyed by
// the version each wrapper's go.mod requires. This file tests build.sh's
// reading of that version without building anything: every binary it would
// build is already in a throwaway cache.
package tools

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wrappers are build.sh's tools: the wrapper directory, the module whose
// require line is the version, and the build tags that follow it in the
// cache key.
var wrappers = map[string]struct{ dir, module, tags string }{
	"crossplane-cli":          {"crossplane-cli", "github.com/crossplane/cli/v2", ""},
	"crossplane-core":         {"crossplane-core", "github.com/crossplane/crossplane/v2", ""},
	"crossplane-core-v1":      {"crossplane-core-v1", "github.com/crossplane/crossplane", ""},
	"crank":                   {"crank", "github.com/crossplane/crossplane", ""},
	"registry":                {"registry", "github.com/distribution/distribution/v3", ""},
	"etcd":                    {"etcd", "go.etcd.io/etcd/server/v3", ""},
	"kwok":                    {"kwok", "sigs.k8s.io/kwok", ""},
	"golangci-lint":           {"golangci-lint", "github.com/golangci/golangci-lint/v2", ""},
	"kube-apiserver":          {"kube", "k8s.io/kubernetes", ""},
	"kube-controller-manager": {"kube", "k8s.io/kubernetes", ""},
	"kube-scheduler":          {"kube", "k8s.io/kubernetes", ""},
	"kubectl":                 {"kube", "k8s.io/kubernetes", ""},
	"postgres-exporter":       {"postgres-exporter", "github.com/prometheus-community/postgres_exporter", ""},
	"mysqld-exporter":         {"mysqld-exporter", "github.com/prometheus/mysqld_exporter", ""},
	"promtool":                {"promtool", "github.com/prometheus/prometheus", "remove_all_sd"},
	"versitygw":               {"versitygw", "github.com/versity/versitygw", ""},
}

// required is the version of module the go.mod in dir requires, as the go
// command reads it.
func required(t *testing.T, dir, module string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "mod", "edit", "-json")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod edit -json in %s: %v", dir, err)
	}
	var mf struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mf); err != nil {
		t.Fatal(err)
	}
	for _, r := range mf.Require {
		if r.Path == module {
			return r.Version
		}
	}
	t.Fatalf("%s/go.mod does not require %s", dir, module)
	return ""
}

// cached puts a stand-in binary where build.sh keeps name at version.
func cached(t *testing.T, cache, name, version string) string {
	t.Helper()
	p := filepath.Join(cache, "bin", name+"-"+version)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil { //nolint:gosec // A stand-in binary must be executable.
		t.Fatal(err)
	}
	return p
}

// build runs script for name with the cache and without the go command on
// PATH: it must find the binary, not build it.
func build(t *testing.T, script, cache, name string) (string, int) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "bash", script, name) //nolint:gosec // The repository's build.sh, or a copy of it.
	cmd.Env = []string{"PATH=/usr/bin:/bin", "DBPLANE_CACHE=" + cache, "HOME=" + t.TempDir()}
	out, err := cmd.Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return strings.TrimSpace(string(out)), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), 0
}

func TestBuildReadsWrapperVersion(t *testing.T) {
	for name, w := range wrappers {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(w.dir, "go.mod")); err != nil {
				t.Skipf("no wrapper module %s on this branch", w.dir)
			}
			// Read here so that go test's cache notices when they change:
			// it does not see what bash and go mod edit open.
			for _, f := range []string{"build.sh", filepath.Join(w.dir, "go.mod")} {
				if _, err := os.ReadFile(f); err != nil { //nolint:gosec // The test's own files.
					t.Fatal(err)
				}
			}
			cache := t.TempDir()
			key := required(t, w.dir, w.module)
			if w.tags != "" {
				key += "-" + w.tags
			}
			want := cached(t, cache, name, key)
			got, code := build(t, "build.sh", cache, name)
			if code != 0 || got != want {
				t.Errorf("build.sh %s: want %s (exit 0), got %q (exit %d)", name, want, got, code)
			}
		})
	}
}

func TestBuildKeyedByVersion(t *testing.T) {
	script, err := os.ReadFile("build.sh")
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/crossplane/cli/v2"
	cases := map[string]struct {
		reason string
		gomod  string
		want   string
		code   int
	}{
		"SingleRequire": {
			reason: "A one-line require is the version.",
			gomod:  "module x\n\ngo 1.26\n\nrequire " + mod + " v2.5.0\n",
			want:   "crossplane-cli-v2.5.0",
		},
		"Bumped": {
			reason: "A bump in go.mod is a different cache key, so build.sh builds it.",
			gomod:  "module x\n\ngo 1.26\n\nrequire " + mod + " v2.6.1\n",
			want:   "crossplane-cli-v2.6.1",
		},
		"Block": {
			reason: "A require block names the module among others.",
			gomod:  "module x\n\nrequire (\n\texample.com/a v1.0.0\n\t" + mod + " v2.5.0-rc.1 // indirect\n)\n\nrequire example.com/b v0.1.0\n",
			want:   "crossplane-cli-v2.5.0-rc.1",
		},
		"OtherModuleOnly": {
			reason: "A module whose path has the tool's as a prefix is not the tool.",
			gomod:  "module x\n\nrequire " + mod + "/extra v2.9.9\n",
			code:   2,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "build.sh"), script, 0o600); err != nil { //nolint:gosec // dir is the test's own temporary directory.
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "crossplane-cli"), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "crossplane-cli", "go.mod"), []byte(tc.gomod), 0o600); err != nil {
				t.Fatal(err)
			}
			cache := t.TempDir()
			for _, v := range []string{"v2.5.0", "v2.6.1", "v2.5.0-rc.1", "v2.9.9"} {
				cached(t, cache, "crossplane-cli", v)
			}
			want := ""
			if tc.want != "" {
				want = filepath.Join(cache, "bin", tc.want)
			}
			got, code := build(t, filepath.Join(dir, "build.sh"), cache, "crossplane-cli")
			if diff := cmp.Diff(want, got); diff != "" || code != tc.code {
				t.Errorf("%s\nbuild.sh crossplane-cli: exit want %d, got %d; -want, +got:\n%s", tc.reason, tc.code, code, diff)
			}
		})
	}
}
