//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"
)

// How long a Database may take to become Ready. Measured: about a second on
// an idle machine; the margin is for a busy CI runner.
const readyTimeout = 2 * time.Minute

// start times a test: `defer start(t)()` records how long it took and turns
// a panic into a failure, so that TestMain still stops every process.
func start(t *testing.T) func() {
	t.Helper()
	t0 := time.Now()
	return func() {
		record("suite: "+t.Name(), time.Since(t0))
		if r := recover(); r != nil {
			t.Fatalf("panic: %v\n%s", r, debug.Stack())
		}
	}
}

// A database is a Database as the tests write it.
type database struct {
	*unstructured.Unstructured
}

// readDatabase reads a Database from a YAML file.
func readDatabase(t *testing.T, path string) database {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // Our own examples.
	if err != nil {
		t.Fatal(err)
	}
	return parseDatabase(t, string(b))
}

func parseDatabase(t *testing.T, y string) database {
	t.Helper()
	// Through JSON, so integers stay int64 as the API machinery reads them.
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatalf("cannot parse Database: %v\n%s", err, y)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("cannot parse Database: %v\n%s", err, y)
	}
	return database{u}
}

// newDatabase returns a Database in namespace ns with spec.
func newDatabase(ns, name string, spec map[string]any) database {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "database.example.com/v1",
		"kind":       "Database",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	return database{u}
}

func (d database) yaml(t *testing.T) string {
	t.Helper()
	b, err := yaml.Marshal(d.Object)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// set sets a spec field, by path below spec.
func (d database) set(t *testing.T, value any, path ...string) database {
	t.Helper()
	if err := unstructured.SetNestedField(d.Object, value, append([]string{"spec"}, path...)...); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d database) str(path ...string) string {
	s, _, _ := unstructured.NestedString(d.Object, path...)
	return s
}

func (d database) num(path ...string) int64 {
	n, _, _ := unstructured.NestedInt64(d.Object, path...)
	return n
}

func (d database) bool(path ...string) bool {
	b, _, _ := unstructured.NestedBool(d.Object, path...)
	return b
}

// namespace creates a namespace unless it exists.
func namespace(t *testing.T, name string) {
	t.Helper()
	_, err := env.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !kerrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// applyDatabase applies d with kubectl, as a user would.
func applyDatabase(t *testing.T, d database) {
	t.Helper()
	if _, err := env.kubectl(t.Context(), strings.NewReader(d.yaml(t)), "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
}

// getDatabase reads a Database; nil when it does not exist.
func getDatabase(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	u, err := env.dyn.Resource(gvrDatabase).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// waitReady waits until the Database is Ready as a user sees it: Synced and
// Ready True for its current generation, status.phase Ready and
// status.replicas equal to spec.replicas. It returns the Database.
func waitReady(t *testing.T, ns, name string) database {
	t.Helper()
	var last *unstructured.Unstructured
	breaker := false
	err := poll(t.Context(), readyTimeout, func(ctx context.Context) error {
		u, err := getDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		if u == nil {
			return fmt.Errorf("Database %s/%s does not exist", ns, name)
		}
		last = u
		if s, r, m := condition(u, "Responsive"); s == "False" && !breaker {
			// Crossplane's per-XR circuit breaker: changes now apply only
			// every 30 s or so. Worth knowing when this wait is slow.
			breaker = true
			t.Logf("Database %s/%s: Responsive=False (%s): %s", ns, name, r, m)
		}
		d := database{u}
		// Synced and Ready for the current spec, not an earlier one.
		for _, typ := range []string{"Synced", "Ready"} {
			if s, _, _ := condition(u, typ); s != "True" {
				return fmt.Errorf("not %s: %s", typ, conditions(u))
			}
			if g := observedGeneration(u, typ); g != u.GetGeneration() {
				return fmt.Errorf("%s is for generation %d, the Database is at %d", typ, g, u.GetGeneration())
			}
		}
		if p := d.str("status", "phase"); p != "Ready" {
			return fmt.Errorf("status.phase is %q", p)
		}
		if got, want := d.num("status", "replicas"), d.num("spec", "replicas"); got != want {
			return fmt.Errorf("status.replicas is %d, spec.replicas %d", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Database %s/%s did not become Ready: %v\nstatus: %v", ns, name, err, statusOf(last))
	}
	return database{last}
}

func statusOf(u *unstructured.Unstructured) any {
	if u == nil {
		return nil
	}
	return u.Object["status"]
}

// A composed object the tests expect, by kind and name.
type composed struct {
	kind string
	name string
}

// composedObjects are the objects a Database composes, as the README lists
// them.
func composedObjects(d database) []composed {
	n := d.GetName()
	want := []composed{
		{"StatefulSet", n},
		{"Service", n},
		{"Service", n + "-headless"},
		{"ConfigMap", n + "-config"},
		{"Secret", n + "-credentials"},
	}
	if d.bool("spec", "backup", "enabled") {
		want = append(want, composed{"CronJob", n + "-backup"}, composed{"PersistentVolumeClaim", n + "-backup"})
	}
	if d.str("spec", "environment") == "production" && d.num("spec", "replicas") >= 2 {
		want = append(want, composed{"PodDisruptionBudget", n})
	}
	return want
}

// getObject reads a namespaced object of a kind the Database composes;
// nil when it does not exist.
func getObject(ctx context.Context, kind, ns, name string) (metav1.Object, error) {
	var (
		o   metav1.Object
		err error
	)
	k := env.kube
	switch kind {
	case "StatefulSet":
		o, err = k.AppsV1().StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
	case "Service":
		o, err = k.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	case "ConfigMap":
		o, err = k.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	case "Secret":
		o, err = k.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	case "CronJob":
		o, err = k.BatchV1().CronJobs(ns).Get(ctx, name, metav1.GetOptions{})
	case "PersistentVolumeClaim":
		o, err = k.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	case "PodDisruptionBudget":
		o, err = k.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
	default:
		return nil, fmt.Errorf("unknown kind %s", kind)
	}
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	return o, err
}

// controlledBy tells whether o's controller is the object with uid.
func controlledBy(o metav1.Object, uid types.UID) bool {
	c := metav1.GetControllerOf(o)
	return c != nil && c.UID == uid
}

// dataClaims returns the data PVCs of a Database's StatefulSet, by name.
func dataClaims(t *testing.T, ns, name string, replicas int) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	for i := range replicas {
		n := fmt.Sprintf("data-%s-%d", name, i)
		pvc, err := env.kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("cannot get data PVC %s: %v", n, err)
		}
		out[n] = pvc.UID
	}
	return out
}

// describe summarises a Database's conditions and phase, for failure
// messages.
func describe(ctx context.Context, ns, name string) string {
	u, err := getDatabase(ctx, ns, name)
	if err != nil || u == nil {
		return fmt.Sprintf("Database %s/%s: %v", ns, name, err)
	}
	return fmt.Sprintf("Database %s/%s (generation %d): %s; phase %q", ns, name, u.GetGeneration(), conditions(u), database{u}.str("status", "phase"))
}

// waitFor polls fn until it returns nil, failing the test after
// readyTimeout with fn's last error and what the Database d shows.
func waitFor(t *testing.T, d database, what string, fn func(context.Context) error) {
	t.Helper()
	if err := poll(t.Context(), readyTimeout, fn); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, describe(context.Background(), d.GetNamespace(), d.GetName()))
	}
}
