package test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestInstallSteps reads the README's install steps and checks them against
// the configuration packages' dependencies: every package each depends on
// is pushed, before the configuration, from a file make xpkg writes, and
// each configuration is installed from the reference it was pushed to, with the
// ImageConfig that makes Crossplane pull the dependencies from there. It
// does not push or install anything: test/e2e/install runs these steps.
func TestInstallSteps(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sec := string(readme)
	start := strings.Index(sec, "## Install (platform teams)")
	if start < 0 {
		t.Fatal("README.md: no install section")
	}
	sec = sec[start:]
	if end := strings.Index(sec[3:], "\n## "); end >= 0 {
		sec = sec[:end+3]
	}

	// The steps name the repository once, as REPO, so that a platform
	// team changes one line (the e2e install runs them with REPO on a
	// loopback registry); read them with it expanded.
	// The upgrade's block sets it again, to the same.
	repo := regexp.MustCompile(`(?m)^REPO=(\S+)`).FindAllStringSubmatch(sec, -1)
	if len(repo) != 2 || repo[0][1] != repo[1][1] {
		t.Fatalf("README install and upgrade steps: want one REPO= line each, naming the same repository, got %q", repo)
	}
	sec = strings.ReplaceAll(sec, "${REPO}", repo[0][1])
	if !strings.Contains(sec, `sed "s|@REPO@|`+repo[0][1]+`|" examples/install/imageconfig.yaml | kubectl apply -f -`) {
		t.Error("README install steps: no ImageConfig rewriting the dependencies' xpkg.dbplane.io/dbplane/ to REPO: a push elsewhere would install nothing")
	}

	xpkg, err := os.ReadFile("xpkg.sh")
	if err != nil {
		t.Fatal(err)
	}
	// The packages pushed, in order: file, reference without the tag.
	var pushed [][2]string
	for _, m := range regexp.MustCompile(`crossplane xpkg push -f _output/xpkg/(\S+)\s+(\S+):\S+`).FindAllStringSubmatch(sec, -1) {
		pushed = append(pushed, [2]string{m[1], m[2]})
		if !strings.Contains(string(xpkg), `"${out}/`+m[1]+`"`) {
			t.Errorf("README pushes _output/xpkg/%s, which test/xpkg.sh (make xpkg) does not write", m[1])
		}
	}
	// Every configuration the steps install, by the metadata file of its
	// package: the Database configuration and the claims one.
	meta := map[string]string{
		repo[0][1] + "/configuration-dbplane":        filepath.Join("..", "crossplane.yaml"),
		repo[0][1] + "/configuration-dbplane-claims": filepath.Join("..", "package", "configuration-claims", "crossplane.yaml"),
	}
	installs := regexp.MustCompile(`crossplane xpkg install configuration (\S+):\S+`).FindAllStringSubmatch(sec, -1)
	if len(installs) != len(meta) {
		t.Fatalf("README: want %d crossplane xpkg install configuration steps (%v), got %q", len(meta), meta, installs)
	}
	for _, inst := range installs {
		path, ok := meta[inst[1]]
		if !ok {
			t.Errorf("README installs %s, which is none of dbplane's configurations", inst[1])
			continue
		}
		cfgAt := slices.IndexFunc(pushed, func(p [2]string) bool { return p[1] == inst[1] })
		if cfgAt < 0 {
			t.Errorf("README installs %s, which it never pushes", inst[1])
			continue
		}
		for _, d := range dependsOn(t, path) {
			at := slices.IndexFunc(pushed, func(p [2]string) bool { return p[1] == d })
			switch {
			case at < 0:
				t.Errorf("README never pushes %s, which %s depends on: installing it would fail", d, inst[1])
			case at > cfgAt:
				t.Errorf("README pushes %s after %s, which depends on it", d, inst[1])
			}
		}
	}
}

// dependsOn is the packages the configuration metadata in path depends on.
func dependsOn(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // The repository's package metadata.
	if err != nil {
		t.Fatal(err)
	}
	cfg := struct {
		Spec struct {
			DependsOn []struct{ Package string } `json:"dependsOn"`
		} `json:"spec"`
	}{}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Spec.DependsOn) == 0 {
		t.Fatalf("%s: no dependencies", path)
	}
	pkgs := make([]string, 0, len(cfg.Spec.DependsOn))
	for _, d := range cfg.Spec.DependsOn {
		pkgs = append(pkgs, d.Package)
	}
	return pkgs
}
