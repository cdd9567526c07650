package test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPackages builds the packages offline with `make xpkg`'s script and
// reads them back: each configuration holds exactly its metadata, its XRD and
// its Composition (the claims one the legacy XRD); the function holds its metadata and a runtime image whose
// /function runs as nonroot.
func TestPackages(t *testing.T) {
	tools(t)
	out := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", "xpkg.sh")
	cmd.Env = append(os.Environ(), "XPKG_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xpkg.sh: %v\n%s", err, b)
	}

	cfg := files(t, filepath.Join(out, "configuration-dbplane.xpkg"))
	pkg := cfg["package.yaml"]
	for _, want := range []string{"kind: Configuration", "kind: CompositeResourceDefinition", "kind: Composition", "name: dbplane-function-dbplane"} {
		if !strings.Contains(pkg, want) {
			t.Errorf("configuration package: want %q in package.yaml", want)
		}
	}
	kinds := regexp.MustCompile(`(?m)^kind: (\S+)$`).FindAllStringSubmatch(pkg, -1)
	got := make([]string, 0, len(kinds))
	for _, k := range kinds {
		got = append(got, k[1])
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"CompositeResourceDefinition", "Composition", "Configuration"}, got); diff != "" {
		t.Errorf("configuration package: must hold only its metadata, the XRD and the Composition: -want, +got:\n%s", diff)
	}

	claims := files(t, filepath.Join(out, "configuration-dbplane-claims.xpkg"))["package.yaml"]
	for _, want := range []string{"name: dbplane-claims", "apiVersion: apiextensions.crossplane.io/v1\nkind: CompositeResourceDefinition",
		"name: xdatabases.database.example.com", "kind: DatabaseClaim", "kind: XDatabase", "name: dbplane-function-dbplane",
		"package: xpkg.dbplane.io/dbplane/provider-sql"} {
		if !strings.Contains(claims, want) {
			t.Errorf("claims configuration package: want %q in package.yaml", want)
		}
	}
	got = got[:0]
	for _, k := range regexp.MustCompile(`(?m)^kind: (\S+)$`).FindAllStringSubmatch(claims, -1) {
		got = append(got, k[1])
	}
	slices.Sort(got)
	if diff := cmp.Diff([]string{"CompositeResourceDefinition", "Composition", "Configuration"}, got); diff != "" {
		t.Errorf("claims configuration package: must hold only its metadata, the legacy XRD and its Composition: -want, +got:\n%s", diff)
	}
	if strings.Contains(claims, "name: databases.database.example.com") {
		t.Errorf("claims configuration package: must not hold the Database's XRD or Composition, which the other configuration installs")
	}

	fn := files(t, filepath.Join(out, "function-dbplane.xpkg"))
	if !strings.Contains(fn["package.yaml"], "kind: Function") || !strings.Contains(fn["package.yaml"], "- composition") {
		t.Errorf("function package: want a Function with the composition capability, got:\n%s", fn["package.yaml"])
	}
	if len(fn["function"]) < 1<<20 {
		t.Errorf("function package: want the /function binary in the runtime image, got %d bytes", len(fn["function"]))
	}
	if !strings.Contains(fn["config"], `"User":"65532:65532"`) || !strings.Contains(fn["config"], `"Entrypoint":["/function"]`) {
		t.Errorf("function package: the runtime image must run /function as 65532, got config %s", fn["config"])
	}
	if !strings.Contains(fn["package.yaml"], "name: inputs.fn.database.example.com") {
		t.Errorf("function package: want the Input CRD")
	}

	pv := files(t, filepath.Join(out, "provider-sql.xpkg"))
	for _, want := range []string{"kind: Provider", "name: users.sql.database.example.com", "name: providerconfigs.sql.database.example.com"} {
		if !strings.Contains(pv["package.yaml"], want) {
			t.Errorf("provider package: want %q in package.yaml", want)
		}
	}
	if len(pv["provider"]) < 1<<20 || !strings.Contains(pv["etc/ssl/certs/ca-certificates.crt"], "BEGIN CERTIFICATE") {
		t.Errorf("provider package: want /provider and a CA bundle in the runtime image")
	}
	if !strings.Contains(pv["config"], `"User":"65532:65532"`) || !strings.Contains(pv["config"], `"Entrypoint":["/provider"]`) {
		t.Errorf("provider package: the runtime image must run /provider as 65532, got config %s", pv["config"])
	}
}

// files reads an xpkg (an image tarball) into its layers' files, plus the
// image config as "config".
func files(t *testing.T, path string) map[string]string {
	t.Helper()
	outer := untar(t, mustOpen(t, path))
	var manifest []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal([]byte(outer["manifest.json"]), &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("%s: bad manifest.json: %v", path, err)
	}
	got := map[string]string{"config": outer[manifest[0].Config]}
	for _, l := range manifest[0].Layers {
		zr, err := gzip.NewReader(strings.NewReader(outer[l]))
		if err != nil {
			t.Fatalf("%s: layer %s: %v", path, l, err)
		}
		for k, v := range untar(t, zr) {
			got[k] = v
		}
	}
	return got
}

func mustOpen(t *testing.T, path string) io.Reader {
	t.Helper()
	f, err := os.Open(path) //nolint:gosec // Test output.
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func untar(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(h.Name, "./")] = string(b)
	}
}
