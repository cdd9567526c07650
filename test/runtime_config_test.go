package test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	pkgv1beta1 "github.com/crossplane/crossplane/apis/v2/pkg/v1beta1"
)

const (
	runtimeConfigExample = root + "/examples/install/runtime-config.yaml"
	// crossplaneCRDs holds Crossplane v2.4.2's DeploymentRuntimeConfig CRD
	// (cluster/crds of github.com/crossplane/crossplane/v2, the core
	// test/tools builds).
	crossplaneCRDs = "testdata/crossplane"
)

// runtimeConfigs decodes the install example's DeploymentRuntimeConfigs,
// refusing fields the Go types do not have.
func runtimeConfigs(t *testing.T) map[string]*pkgv1beta1.DeploymentRuntimeConfig {
	t.Helper()
	b, err := os.ReadFile(runtimeConfigExample)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*pkgv1beta1.DeploymentRuntimeConfig{}
	for d := range strings.SplitSeq(string(b), "\n---\n") {
		rc := &pkgv1beta1.DeploymentRuntimeConfig{}
		if err := yaml.UnmarshalStrict([]byte(d), rc); err != nil {
			t.Fatalf("%s: %v", runtimeConfigExample, err)
		}
		out[rc.GetName()] = rc
	}
	return out
}

// TestRuntimeConfigValidates: the DeploymentRuntimeConfigs validate against
// Crossplane's CRD with the real CLI's validator.
func TestRuntimeConfigValidates(t *testing.T) {
	cli, _ := tools(t)
	out, stderr, err := run(t.Context(), cli, "resource", "validate", crossplaneCRDs, runtimeConfigExample, "--crossplane-image=", "--cache-dir="+t.TempDir(), "--error-on-missing-schemas")
	if err != nil || !strings.Contains(out, " 0 failure cases") || strings.Count(out, "validated successfully") != 2 {
		t.Errorf("crossplane resource validate %s: %v\n%s%s", runtimeConfigExample, err, out, stderr)
	}
}

// TestRuntimeConfigLeastPrivilege: one DeploymentRuntimeConfig per package,
// named as the packages are; each pod template, with the container
// Crossplane fills in (package-runtime, first), meets the restricted Pod
// Security Standard as k8s.io/pod-security-admission evaluates it, every
// container has CPU and memory requests and limits, and only the provider,
// which calls the Kubernetes API, gets a ServiceAccount token.
func TestRuntimeConfigLeastPrivilege(t *testing.T) {
	rcs := runtimeConfigs(t)
	names := make([]string, 0, len(rcs))
	for n := range rcs {
		names = append(names, n)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"function-dbplane", "provider-sql"}, names); diff != "" {
		t.Errorf("%s: one DeploymentRuntimeConfig per package: -want, +got:\n%s", runtimeConfigExample, diff)
	}

	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	check := func(spec *corev1.PodSpec) policy.AggregateCheckResult {
		return policy.AggregateCheckResults(ev.EvaluatePod(restricted, &metav1.ObjectMeta{}, spec))
	}
	wantToken := map[string]bool{"function-dbplane": false, "provider-sql": true}
	for name, rc := range rcs {
		dt := rc.Spec.DeploymentTemplate
		if dt == nil || dt.Spec == nil || len(dt.Spec.Template.Spec.Containers) == 0 {
			t.Errorf("%s: no pod template with containers", name)
			continue
		}
		pod := dt.Spec.Template.Spec
		if c := pod.Containers[0].Name; c != "package-runtime" {
			t.Errorf("%s: the first container is %q: Crossplane puts the package's image into package-runtime", name, c)
		}
		if r := check(&pod); !r.Allowed {
			t.Errorf("%s: the pod must pass the restricted Pod Security Standard: %s: %s", name, r.ForbiddenReason(), r.ForbiddenDetail())
		}
		for _, c := range pod.Containers {
			for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
				if rl.Cpu().IsZero() || rl.Memory().IsZero() {
					t.Errorf("%s: container %s needs CPU and memory requests and limits, has %v", name, c.Name, c.Resources)
				}
			}
		}
		if got := ptr.Deref(pod.AutomountServiceAccountToken, true); got != wantToken[name] {
			t.Errorf("%s: automountServiceAccountToken %t, want %t", name, got, wantToken[name])
		}
	}

	// The evaluator must be able to say no, or the checks above prove nothing.
	pod := rcs["function-dbplane"].Spec.DeploymentTemplate.Spec.Template.Spec
	pod.SecurityContext = nil
	if r := check(&pod); r.Allowed {
		t.Errorf("restricted evaluator allowed a pod without seccomp profile: the test is broken")
	}
}
