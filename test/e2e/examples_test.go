//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestExamplesBecomeReady applies every example Database as an app team
// would and checks what the team and the cluster see: each composed object
// exists and is controlled by its Database, the StatefulSet's replicas are
// ready, the Database is Ready with every replica counted, and `kubectl get
// databases` fills in its columns.
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

	// What `kubectl get databases` shows: the XRD's printer columns.
	out, err := env.Kubectl(t.Context(), nil, "get", "databases", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubectl get databases -n %s:\n%s", ns, out)
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
				t.Errorf("kubectl get databases: %s: %s is %q, want %q", name, col, r[col], v)
			}
		}
	}
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
