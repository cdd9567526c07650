// Package test holds dbplane's tests that use real components: the crossplane
// CLI rendering every example through our function over gRPC, and the CLI's
// validator checking what it renders.
package test

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"

	"github.com/crossplane/function-sdk-go"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	fnv1beta1 "github.com/crossplane/function-sdk-go/proto/v1beta1"

	"github.com/dbplane/dbplane/fn"
)

var update = flag.Bool("update", false, "rewrite golden files")

// xrKind matches a document whose top-level kind is Database or, for a
// claim, XDatabase.
var xrKind = regexp.MustCompile(`(?m)^kind: X?Database$`)

const (
	root         = ".."
	providerCRDs = root + "/package/provider/crds"
	xrd          = root + "/package/configuration/xrd.yaml"
	composition  = root + "/package/configuration/composition.yaml"
	functions    = root + "/examples/render/functions.yaml"
	// namespace is the examples' Namespace, which Crossplane supplies on
	// every call that asks for it: every render gets it.
	namespace = root + "/examples/render/namespace.yaml"
	// operatorCRDs are the Prometheus Operator's PodMonitor and
	// PrometheusRule CRDs, from its module at the version fn's Go types are
	// (v0.89.0, example/prometheus-operator-crd): the schemas the composed
	// objects are validated against, and the required resources that tell
	// the function the operator is installed.
	operatorCRDs = "testdata/prometheus-operator"
)

// goldenPassword makes renders repeatable. The real function draws from
// crypto/rand.
const goldenPassword = "golden-password-not-a-secret"

// goldenNow is when renders run the function: the observed TLS Secrets in
// testdata/observed were issued then, so they are never due.
var goldenNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

// goldenIssuer makes renders repeatable: placeholders where the real
// function writes a new ECDSA CA and server certificate and their keys.
type goldenIssuer struct{}

func (goldenIssuer) CA(string, time.Time) ([]byte, []byte, error) {
	return []byte("golden-ca-certificate-not-a-certificate"), []byte("golden-ca-key-not-a-key"), nil
}

func (goldenIssuer) Server([]byte, []byte, []string, time.Time) ([]byte, []byte, error) {
	return []byte("golden-server-certificate-not-a-certificate"), []byte("golden-server-key-not-a-key"), nil
}

// tools returns the crossplane CLI and core binaries. `make test` builds and
// passes them; without them the test is skipped locally and fails in CI.
func tools(t *testing.T) (cli, core string) {
	t.Helper()
	cli, core = os.Getenv("DBPLANE_CROSSPLANE"), os.Getenv("DBPLANE_CROSSPLANE_CORE")
	if cli == "" || core == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("DBPLANE_CROSSPLANE and DBPLANE_CROSSPLANE_CORE must be set in CI: run make test")
		}
		t.Skip("crossplane CLI not built: run make test")
	}
	return cli, core
}

// serve runs our function on a loopback port, as `crossplane render`'s
// Development runtime expects, and returns a functions.yaml pointing at it.
func serve(t *testing.T) string {
	t.Helper()
	return pointAt(t, functions, listen(t))
}

// listen runs our function on a loopback port and returns its address.
func listen(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	lis, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	f := fn.New(logging.NewNopLogger(), fn.WithPasswordGenerator(func() (string, error) { return goldenPassword, nil }), fn.WithIssuer(goldenIssuer{}), fn.WithClock(func() time.Time { return goldenNow }))
	fnv1.RegisterFunctionRunnerServiceServer(s, f)
	// What function.Serve (cmd/function) registers too: Crossplane 1.16 and
	// earlier, `crossplane beta render` included, call only v1beta1.
	fnv1beta1.RegisterFunctionRunnerServiceServer(s, function.ServeBeta(f))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// pointAt copies the functions file fns with its Development runtime target
// set to addr, and returns the copy's path.
func pointAt(t *testing.T, fns, addr string) string {
	t.Helper()
	f, err := os.ReadFile(fns) //nolint:gosec // The repository's examples.
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(f, []byte("127.0.0.1:9443")) {
		t.Fatalf("%s has no Development runtime target 127.0.0.1:9443 to point at the test's function", fns)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(fns))
	f = bytes.ReplaceAll(f, []byte("127.0.0.1:9443"), []byte(addr))
	if err := os.WriteFile(out, f, 0o600); err != nil { //nolint:gosec // The test's temp dir.
		t.Fatal(err)
	}
	return out
}

func run(ctx context.Context, name string, args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...) //nolint:gosec // The pinned crossplane binaries.
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

func render(t *testing.T, cli, core, fns, example string, flags ...string) (string, string, error) {
	t.Helper()
	args := append([]string{"composition", "render", example, composition, fns, "--crossplane-binary=" + core, "--xrd=" + xrd, "--required-resources=" + namespace}, flags...)
	return run(t.Context(), cli, args...)
}

func examples(t *testing.T) []string {
	t.Helper()
	ex, err := filepath.Glob(root + "/examples/databases/*.yaml")
	if err != nil || len(ex) < 6 {
		t.Fatalf("want an example per type x environment, got %v (%v)", ex, err)
	}
	return ex
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path) //nolint:gosec // Test data.
	if err != nil {
		t.Fatalf("cannot read golden file (run go test ./test/ -update): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("render %s: -want, +got (go test ./test/ -update to accept):\n%s", name, diff)
	}
}

// TestRenderExamples renders every example through the real CLI and compares
// the output with its golden file, then validates every composed object
// against its Kubernetes schema with the CLI's validator.
func TestRenderExamples(t *testing.T) {
	cli, core := tools(t)
	fns := serve(t)
	for _, ex := range examples(t) {
		name := strings.TrimSuffix(filepath.Base(ex), ".yaml")
		t.Run(name, func(t *testing.T) {
			// Production clusters have the Prometheus Operator; the
			// staging examples show a Database with metrics without it.
			var flags []string
			kinds := []string{"StatefulSet", "Service", "ConfigMap", "Secret"}
			if strings.HasSuffix(name, "-production") {
				flags = append(flags, "--required-resources="+operatorCRDs)
				kinds = append(kinds, "PodMonitor", "PrometheusRule")
			}
			out, stderr, err := render(t, cli, core, fns, ex, flags...)
			if err != nil {
				t.Fatalf("render %s: %v\n%s", ex, err, stderr)
			}
			golden(t, "render/"+name+".yaml", out)

			for _, kind := range kinds {
				if !strings.Contains(out, "\nkind: "+kind+"\n") {
					t.Errorf("render %s: no %s composed", ex, kind)
				}
			}
			validateComposed(t, cli, out)
		})
	}
}

// TestRenderReady renders the default example against observed objects of a
// running Database: every resource ready, status Ready, lastBackup set.
func TestRenderReady(t *testing.T) {
	cli, core := tools(t)
	out, stderr, err := render(t, cli, core, serve(t), root+"/examples/databases/postgresql-production.yaml",
		"--observed-resources=testdata/observed/postgresql-production.yaml", "--required-resources="+operatorCRDs)
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr)
	}
	golden(t, "render/postgresql-production-ready.yaml", out)
	for _, want := range []string{"phase: Ready", "ready: true", "replicas: 3", "lastBackup: \"2026-11-22T02:00:41Z\"", "reason: Available"} {
		if !strings.Contains(out, want) {
			t.Errorf("render with observed resources: want %q in the XR:\n%s", want, out)
		}
	}
}

// TestRenderWarnsEndOfLife shows MySQL 8.0 is composed with a warning.
func TestRenderWarnsEndOfLife(t *testing.T) {
	cli, core := tools(t)
	out, stderr, err := render(t, cli, core, serve(t), root+"/examples/databases/mysql-production.yaml", "--include-function-results")
	if err != nil {
		t.Fatalf("render: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "severity: Warning") || !strings.Contains(out, "spec.version: MySQL 8.0 reached its end") {
		t.Errorf("render of MySQL 8.0: want a Warning result about its end of life, got:\n%s", out)
	}
}

// TestRenderRefusesInvalid shows a Database that got past the schema is
// refused with the field named, and the CLI exits non-zero.
func TestRenderRefusesInvalid(t *testing.T) {
	cli, core := tools(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: database.example.com/v1
kind: Database
metadata: {name: bad, namespace: team-a}
spec: {type: postgresql, version: "16", environment: production, replicas: 1, storage: {size: 1Gi}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := render(t, cli, core, serve(t), bad)
	if err == nil {
		t.Fatal("render of a production Database with one replica: want an error, got none")
	}
	if !strings.Contains(stderr, "spec.replicas") {
		t.Errorf("render error must name spec.replicas, got:\n%s", stderr)
	}
}

// validateComposed checks every composed object of a render with
// `crossplane resource validate`. The XR in render output carries status but
// no spec, so it is validated separately (TestValidateExamples).
func validateComposed(t *testing.T, cli, rendered string) {
	t.Helper()
	var docs []string
	for d := range strings.SplitSeq(rendered, "\n---\n") {
		// The XR is the one document whose top-level kind is Database or
		// XDatabase (every composed object names it in its ownerReferences).
		if xrKind.MatchString(d) || strings.TrimSpace(strings.Trim(d, "-")) == "" {
			continue
		}
		docs = append(docs, d)
	}
	if len(docs) < 5 {
		t.Fatalf("validate: want at least the Secret, ConfigMap, two Services and StatefulSet, got %d documents", len(docs))
	}
	f := filepath.Join(t.TempDir(), "composed.yaml")
	if err := os.WriteFile(f, []byte(strings.Join(docs, "\n---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run(t.Context(), cli, "resource", "validate", xrd+","+providerCRDs+","+operatorCRDs, f, "--crossplane-image=", "--cache-dir="+t.TempDir(), "--error-on-missing-schemas")
	if err != nil || !strings.Contains(out, " 0 failure cases") {
		t.Errorf("crossplane resource validate: %v\n%s%s", err, out, stderr)
	}
	if n := strings.Count(out, "validated successfully"); n != len(docs) {
		t.Errorf("crossplane resource validate: want %d objects validated, got %d:\n%s", len(docs), n, out)
	}
}

// TestValidateExamples validates every example Database against the XRD's
// schema and CEL rules with the CLI's validator, and shows the validator
// rejects a bad one.
func TestValidateExamples(t *testing.T) {
	cli, _ := tools(t)
	for _, ex := range examples(t) {
		out, stderr, err := run(t.Context(), cli, "resource", "validate", xrd, ex, "--crossplane-image=", "--cache-dir="+t.TempDir(), "--error-on-missing-schemas")
		if err != nil {
			t.Errorf("crossplane resource validate %s: %v\n%s%s", ex, err, out, stderr)
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(`apiVersion: database.example.com/v1
kind: Database
metadata: {name: bad, namespace: team-a}
spec: {type: mysql, version: "9.0", storage: {size: 1Gi}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t.Context(), cli, "resource", "validate", xrd, bad, "--crossplane-image=", "--cache-dir="+t.TempDir())
	if err == nil || !strings.Contains(out, "spec.version: mysql supports versions 8.0 and 8.4") {
		t.Errorf("crossplane resource validate of mysql 9.0: want a CEL error naming spec.version, got %v:\n%s", err, out)
	}

	// And a composed object with an unknown field must fail, or the
	// validation of renders above proves nothing.
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	if err := os.WriteFile(broken, []byte(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: x, namespace: team-a}
spec: {replicas: 1, serviceName: x, selector: {matchLabels: {a: b}}, template: {spec: {containers: [{name: c, image: i, imagePullPolicyy: Always}]}}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(t.Context(), cli, "resource", "validate", xrd, broken, "--crossplane-image=", "--cache-dir="+t.TempDir()); err == nil {
		t.Errorf("crossplane resource validate of a StatefulSet with an unknown field: want failure, got:\n%s", out)
	}
}
