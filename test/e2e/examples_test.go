//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestExamplesBecomeReady applies every example Database as an app team
// would and checks what the team and the cluster see: each composed object
// exists and is controlled by its Database, the StatefulSet's replicas are
// ready, the Database is Ready with every replica counted, `kubectl get db`
// (the short name) fills in its columns, and `kubectl explain` documents
// every field of the spec from the schema the apiserver serves.
func TestExamplesBecomeReady(t *testing.T) {
	defer start(t)()
	const ns = "team-a"
	env.Namespace(t, ns)

	files, err := filepath.Glob(filepath.Join(env.Root, "examples", "databases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	examples := map[string]cluster.Database{}

	t.Run("each", func(t *testing.T) {
		for _, f := range files {
			d := cluster.ReadDatabase(t, f)
			if d.GetNamespace() != ns {
				t.Fatalf("%s: namespace %q, want %q", f, d.GetNamespace(), ns)
			}
			examples[d.GetName()] = d
			t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
				defer start(t)()
				t.Parallel()
				exampleBecomesReady(t, d)
			})
		}
	})
	if t.Failed() {
		return
	}

	// What `kubectl get db` shows: the XRD's printer columns, through the
	// short name Crossplane copied from the XRD into the CRD.
	out, err := env.Kubectl(t.Context(), nil, "get", "db", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get db -n %s:\n%s", ns, out)
	rows := table(out)
	for name, d := range examples {
		r, ok := rows[name]
		if !ok {
			t.Errorf("kubectl get databases: no row for %s", name)
			continue
		}
		want := map[string]string{
			"TYPE":        d.Str("spec", "type"),
			"VERSION":     d.Str("spec", "version"),
			"REPLICAS":    fmt.Sprint(d.Num("spec", "replicas")),
			"ENVIRONMENT": d.Str("spec", "environment"),
			"SYNCED":      "True",
			"READY":       "True",
		}
		for col, v := range want {
			if r[col] != v {
				t.Errorf("kubectl get db: %s: %s is %q, want %q", name, col, r[col], v)
			}
		}
	}
	explainSpec(t)
}

// xrdSchema is the openAPIV3Schema of the Database XRD's one version.
func xrdSchema(t *testing.T) extv1.JSONSchemaProps {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(env.Root, "package", "configuration", "xrd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var xrd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema extv1.JSONSchemaProps `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &xrd); err != nil || len(xrd.Spec.Versions) != 1 {
		t.Fatalf("cannot read the XRD's one version: %v", err)
	}
	return xrd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

// explainSpec checks `kubectl explain db.spec` against the XRD: every field
// of the spec is listed with its whole description, as the apiserver's
// OpenAPI serves it from the CRD Crossplane made.
func explainSpec(t *testing.T) {
	t.Helper()
	out, err := env.Kubectl(t.Context(), nil, "explain", "db.spec")
	if err != nil {
		t.Fatal(err)
	}
	// kubectl wraps and indents descriptions: compare words.
	got := strings.Join(strings.Fields(out), " ")
	spec := xrdSchema(t).Properties["spec"]
	if len(spec.Properties) == 0 {
		t.Fatal("the XRD's spec has no fields")
	}
	for field, p := range spec.Properties {
		if field == "crossplane" {
			continue // Crossplane's, documented by Crossplane.
		}
		desc := strings.Join(strings.Fields(p.Description), " ")
		if !strings.Contains(got, field+" <") || desc == "" || !strings.Contains(got, desc) {
			t.Errorf("kubectl explain db.spec: field %s with description %q missing from:\n%s", field, desc, out)
		}
	}
	t.Logf("kubectl explain db.spec: %d fields, each with its description", len(spec.Properties))
}

func exampleBecomesReady(t *testing.T, d cluster.Database) {
	t.Helper()
	ns, name := d.GetNamespace(), d.GetName()

	t0 := time.Now()
	env.ApplyDatabase(t, d)
	env.WaitFor(t, d, "StatefulSet created", func(ctx context.Context) error {
		s, err := env.Object(ctx, "StatefulSet", ns, name)
		if err == nil && s == nil {
			err = errors.New("no StatefulSet yet")
		}
		return err
	})
	record("latency: apply -> StatefulSet created", time.Since(t0))
	got := env.WaitReady(t, ns, name)
	record("latency: apply -> Database Ready", time.Since(t0))

	for _, c := range cluster.ComposedObjects(d) {
		o, err := env.Object(t.Context(), c.Kind, ns, c.Name)
		if err != nil {
			t.Fatal(err)
		}
		if o == nil {
			t.Errorf("%s %s was not composed", c.Kind, c.Name)
			continue
		}
		if !cluster.ControlledBy(o, got.GetUID()) {
			t.Errorf("%s %s is not controlled by its Database: ownerReferences %+v", c.Kind, c.Name, o.GetOwnerReferences())
		}
	}
	if !d.Bool("spec", "backup", "enabled") {
		if o, err := env.Object(t.Context(), "CronJob", ns, name+"-backup"); err != nil || o != nil {
			t.Errorf("backups are off, yet CronJob %s-backup exists (err %v)", name, err)
		}
	}

	sts, err := env.Kube.AppsV1().StatefulSets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if replicas := d.Num("spec", "replicas"); replicas < 0 || replicas > math.MaxInt32 {
		t.Errorf("Database %s: spec.replicas %d is out of a StatefulSet's range", name, replicas)
	} else if want := int32(replicas); sts.Spec.Replicas == nil || *sts.Spec.Replicas != want || sts.Status.ReadyReplicas != want {
		t.Errorf("StatefulSet %s: spec.replicas %v, ready %d; want %d", name, sts.Spec.Replicas, sts.Status.ReadyReplicas, want)
	}

	sec, err := env.Kube.CoreV1().Secrets(ns).Get(t.Context(), name+"-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"username", "password", "host", "port", "database"} {
		if len(sec.Data[k]) == 0 {
			t.Errorf("Secret %s-credentials has no %s", name, k)
		}
	}
	if ep := got.Str("status", "endpoint"); ep == "" {
		t.Errorf("status.endpoint is empty")
	}
}

// table parses kubectl's table output into rows by NAME, each a map by
// column header. Cells hold no spaces in the tables the tests read.
func table(out string) map[string]map[string]string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	rows := map[string]map[string]string{}
	if len(lines) < 2 {
		return rows
	}
	head := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		cells := strings.Fields(l)
		r := map[string]string{}
		for i, h := range head {
			if i < len(cells) {
				r[h] = cells[i]
			}
		}
		rows[r["NAME"]] = r
	}
	return rows
}
