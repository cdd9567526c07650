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
// the configuration package's dependencies: every package it depends on is
// pushed, before the configuration, from a file make xpkg writes, and the
// configuration is installed from the reference it was pushed to, with the
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

	b, err := os.ReadFile(filepath.Join("..", "crossplane.yaml"))
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
		t.Fatal("crossplane.yaml: no dependencies")
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
	inst := regexp.MustCompile(`crossplane xpkg install configuration (\S+):\S+`).FindStringSubmatch(sec)
	if inst == nil {
		t.Fatal("README: no crossplane xpkg install configuration step")
	}
	cfgAt := slices.IndexFunc(pushed, func(p [2]string) bool { return p[1] == inst[1] })
	if cfgAt < 0 {
		t.Fatalf("README installs %s, which it never pushes", inst[1])
	}
	for _, d := range cfg.Spec.DependsOn {
		at := slices.IndexFunc(pushed, func(p [2]string) bool { return p[1] == d.Package })
		switch {
		case at < 0:
			t.Errorf("README never pushes %s, which the configuration depends on: installing it would fail", d.Package)
		case at > cfgAt:
			t.Errorf("README pushes %s after the configuration that depends on it", d.Package)
		}
	}
}
