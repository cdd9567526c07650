//go:build e2e

package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/test/harness"
)

// GVRDatabase is the resource of dbplane's Database XR.
var GVRDatabase = schema.GroupVersionResource{Group: "database.example.com", Version: "v1", Resource: "databases"}

// ReadyTimeout is how long a Database may take to become Ready, and
// WaitFor waits. Measured: about a second on an idle machine; the margin is
// for a busy CI runner.
const ReadyTimeout = 2 * time.Minute

// A Database is a Database XR as the tests write and read it.
type Database struct {
	*unstructured.Unstructured
}

// ReadDatabase reads a Database from a YAML file, failing the test when it
// cannot.
func ReadDatabase(t testing.TB, path string) Database {
	t.Helper()
	b, err := os.ReadFile(path) //nolint:gosec // Our own examples.
	if err != nil {
		t.Fatalf("cannot read Database: %v", err)
	}
	// Through JSON, so integers stay int64 as the API machinery reads them.
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatalf("cannot parse Database %s: %v", path, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatalf("cannot parse Database %s: %v", path, err)
	}
	return Database{u}
}

// NewDatabase returns a Database in namespace ns with spec.
func NewDatabase(ns, name string, spec map[string]any) Database {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "database.example.com/v1",
		"kind":       "Database",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	return Database{u}
}

// YAML returns the Database as YAML, failing the test when it cannot.
func (d Database) YAML(t testing.TB) string {
	t.Helper()
	b, err := yaml.Marshal(d.Object)
	if err != nil {
		t.Fatalf("cannot marshal Database: %v", err)
	}
	return string(b)
}

// Set sets a spec field, by path below spec, and returns the Database.
func (d Database) Set(t testing.TB, value any, path ...string) Database {
	t.Helper()
	if err := unstructured.SetNestedField(d.Object, value, append([]string{"spec"}, path...)...); err != nil {
		t.Fatalf("cannot set spec.%v: %v", path, err)
	}
	return d
}

// Str returns the string at path, or "".
func (d Database) Str(path ...string) string {
	s, _, _ := unstructured.NestedString(d.Object, path...)
	return s
}

// Num returns the integer at path, or 0.
func (d Database) Num(path ...string) int64 {
	n, _, _ := unstructured.NestedInt64(d.Object, path...)
	return n
}

// Bool returns the boolean at path, or false.
func (d Database) Bool(path ...string) bool {
	b, _, _ := unstructured.NestedBool(d.Object, path...)
	return b
}

// Namespace creates a namespace unless it exists.
func (c *Cluster) Namespace(t testing.TB, name string) {
	t.Helper()
	_, err := c.Kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !kerrors.IsAlreadyExists(err) {
		t.Fatalf("cannot create namespace %s: %v", name, err)
	}
}

// ApplyDatabase applies d with kubectl, as a user would.
func (c *Cluster) ApplyDatabase(t testing.TB, d Database) {
	t.Helper()
	if err := c.Apply(t.Context(), d.YAML(t)); err != nil {
		t.Fatal(err)
	}
}

// GetDatabase reads a Database; nil when it does not exist.
func (c *Cluster) GetDatabase(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	u, err := c.Dynamic.Resource(GVRDatabase).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	return u, err
}

// WaitReady waits until the Database is Ready as a user sees it: Synced and
// Ready True for its current generation, status.phase Ready and
// status.replicas equal to spec.replicas. It returns the Database.
func (c *Cluster) WaitReady(t testing.TB, ns, name string) Database {
	t.Helper()
	var last *unstructured.Unstructured
	breaker := false
	err := harness.Poll(t.Context(), ReadyTimeout, func(ctx context.Context) error {
		u, err := c.GetDatabase(ctx, ns, name)
		if err != nil {
			return err
		}
		if u == nil {
			return fmt.Errorf("Database %s/%s does not exist", ns, name)
		}
		last = u
		if s, r, m := Condition(u, "Responsive"); s == "False" && !breaker {
			// Crossplane's per-XR circuit breaker: changes now apply only
			// every 30 s or so. Worth knowing when this wait is slow.
			breaker = true
			t.Logf("Database %s/%s: Responsive=False (%s): %s", ns, name, r, m)
		}
		d := Database{u}
		// Synced and Ready for the current spec, not an earlier one.
		for _, typ := range []string{"Synced", "Ready"} {
			if s, _, _ := Condition(u, typ); s != "True" {
				return fmt.Errorf("not %s: %s", typ, Conditions(u))
			}
			if g := ObservedGeneration(u, typ); g != u.GetGeneration() {
				return fmt.Errorf("%s is for generation %d, the Database is at %d", typ, g, u.GetGeneration())
			}
		}
		// Crossplane stamps Synced and Ready with the generation it read
		// back after applying the status, which is newer than the one
		// composed when the reconcile began on a stale read: the function
		// says which generation it composed.
		if g := d.Num("status", "observedGeneration"); g != u.GetGeneration() {
			return fmt.Errorf("status is composed from generation %d, the Database is at %d", g, u.GetGeneration())
		}
		if p := d.Str("status", "phase"); p != "Ready" {
			return fmt.Errorf("status.phase is %q", p)
		}
		// With an autoscaler the count is its, within the bounds.
		if _, auto, _ := unstructured.NestedMap(d.Object, "spec", "autoscaling"); auto {
			if got := d.Num("status", "replicas"); got < d.Num("spec", "autoscaling", "minReplicas") || got > d.Num("spec", "autoscaling", "maxReplicas") {
				return fmt.Errorf("status.replicas is %d, outside spec.autoscaling", got)
			}
		} else if got, want := d.Num("status", "replicas"), d.Num("spec", "replicas"); got != want {
			return fmt.Errorf("status.replicas is %d, spec.replicas %d", got, want)
		}
		return nil
	})
	if err != nil {
		var status any
		if last != nil {
			status = last.Object["status"]
		}
		t.Fatalf("Database %s/%s did not become Ready: %v\nstatus: %v", ns, name, err, status)
	}
	return Database{last}
}

// A Composed object is one the tests expect a Database to compose, by kind
// and name.
type Composed struct {
	Kind string
	Name string
}

// ComposedObjects are the objects a Database composes, as the README lists
// them.
func ComposedObjects(d Database) []Composed {
	n := d.GetName()
	want := []Composed{
		{"StatefulSet", n},
		{"Service", n},
		{"Service", n + "-headless"},
		{"ConfigMap", n + "-config"},
		{"Secret", n + "-credentials"},
	}
	if d.Bool("spec", "backup", "enabled") {
		want = append(want, Composed{"CronJob", n + "-backup"}, Composed{"PersistentVolumeClaim", n + "-backup"})
	}
	if d.Str("spec", "environment") == "production" && d.Num("spec", "replicas") >= 2 {
		want = append(want, Composed{"PodDisruptionBudget", n})
	}
	if d.Str("spec", "type") == "postgresql" && d.Num("spec", "replicas") >= 2 {
		want = append(want, Composed{"Service", n + "-ro"})
	}
	if _, ok, _ := unstructured.NestedMap(d.Object, "spec", "autoscaling"); ok {
		want = append(want, Composed{"HorizontalPodAutoscaler", n})
	}
	return want
}

// Object reads a namespaced object of any kind the apiserver serves (the
// kind's name alone, such as StatefulSet: the kinds a Database composes are
// unambiguous); nil when it does not exist.
func (c *Cluster) Object(ctx context.Context, kind, ns, name string) (metav1.Object, error) {
	gvr, err := c.Mapper.ResourceFor(schema.GroupVersionResource{Resource: strings.ToLower(kind)})
	if err != nil {
		return nil, fmt.Errorf("cannot find the resource of kind %s: %w", kind, err)
	}
	o, err := c.Dynamic.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if kerrors.IsNotFound(err) {
		return nil, nil
	}
	return o, err
}

// ControlledBy tells whether o's controller is the object with uid.
func ControlledBy(o metav1.Object, uid types.UID) bool {
	c := metav1.GetControllerOf(o)
	return c != nil && c.UID == uid
}

// DataClaims returns the data PVCs of a Database's StatefulSet, by name.
func (c *Cluster) DataClaims(t testing.TB, ns, name string, replicas int) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	for i := range replicas {
		n := fmt.Sprintf("data-%s-%d", name, i)
		pvc, err := c.Kube.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), n, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("cannot get data PVC %s: %v", n, err)
		}
		out[n] = pvc.UID
	}
	return out
}

// describe summarises a Database's conditions and phase, for failure
// messages.
func (c *Cluster) describe(ctx context.Context, ns, name string) string {
	u, err := c.GetDatabase(ctx, ns, name)
	if err != nil || u == nil {
		return fmt.Sprintf("Database %s/%s: %v", ns, name, err)
	}
	return fmt.Sprintf("Database %s/%s (generation %d): %s; phase %q", ns, name, u.GetGeneration(), Conditions(u), Database{u}.Str("status", "phase"))
}

// WaitFor polls fn until it returns nil, failing the test after
// ReadyTimeout with fn's last error and what the Database d shows.
func (c *Cluster) WaitFor(t testing.TB, d Database, what string, fn func(context.Context) error) {
	t.Helper()
	if err := harness.Poll(t.Context(), ReadyTimeout, fn); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, c.describe(context.WithoutCancel(t.Context()), d.GetNamespace(), d.GetName()))
	}
}

// WaitEndpoints waits until the Service's ready endpoints are exactly the
// pods named, in any order.
func (c *Cluster) WaitEndpoints(t testing.TB, ns, service string, pods []string) {
	t.Helper()
	want := slices.Sorted(slices.Values(pods))
	var got []string
	err := harness.Poll(t.Context(), ReadyTimeout, func(ctx context.Context) error {
		l, err := c.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return err
		}
		got = nil
		for _, s := range l.Items {
			for _, e := range s.Endpoints {
				if e.TargetRef != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
					got = append(got, e.TargetRef.Name)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("endpoints %v", got)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Service %s/%s: want endpoints %v: %v", ns, service, want, err)
	}
}
