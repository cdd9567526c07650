package fn

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// exporterOf is the composed exporter sidecar, or nil.
func exporterOf(p Params) *corev1.Container {
	for _, c := range StatefulSet(p).Spec.Template.Spec.Containers {
		if c.Name == "metrics" {
			return &c
		}
	}
	return nil
}

// TestExporterLeastPrivilege: with metrics, the exporter logs in as its own
// monitoring login, whose User has the monitoring privileges, with the
// password from that login's Secret; nothing of it names the superuser.
func TestExporterLeastPrivilege(t *testing.T) {
	for name, s := range everySpec() {
		if !s.Monitoring.Metrics {
			continue
		}
		t.Run(name, func(t *testing.T) {
			p := params(t, s)
			x := exporterOf(p)
			if x == nil {
				t.Fatal("metrics on: no exporter sidecar")
			}
			var mon []login
			for _, l := range p.Logins {
				if l.Privileges == sqlv1alpha1.MonitoringPrivileges {
					mon = append(mon, l)
				}
			}
			want := []login{{Object: "orders-monitoring", Login: "monitoring", Privileges: sqlv1alpha1.MonitoringPrivileges}}
			if diff := cmp.Diff(want, mon); diff != "" {
				t.Errorf("logins: one monitoring login with its own Secret: -want, +got:\n%s", diff)
			}
			wantEnv := corev1.EnvVar{Name: p.Engine.Exporter.PasswordEnv, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: "orders-monitoring"}, Key: "password", Optional: ptr.To(true),
			}}}
			if diff := cmp.Diff(wantEnv, x.Env[0]); diff != "" {
				t.Errorf("exporter password: from the monitoring login's Secret, optional until the provider wrote it: -want, +got:\n%s", diff)
			}
			all, err := yaml.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{p.Secret(), "=" + p.Engine.Superuser + "\n", ": " + p.Engine.Superuser + "\n", "username=" + p.Engine.Superuser} {
				if strings.Contains(string(all), bad) {
					t.Errorf("exporter container mentions the superuser (%q):\n%s", bad, all)
				}
			}
			if !strings.Contains(strings.Join(append(x.Args, envValues(x.Env)...), " "), monitoringLogin) {
				t.Errorf("exporter names no monitoring login in its args or env:\n%s", all)
			}
			if x.LivenessProbe == nil || x.LivenessProbe.Exec == nil || !strings.Contains(strings.Join(x.LivenessProbe.Exec.Command, " "), p.Engine.Exporter.Up+" 1") {
				t.Errorf("exporter liveness must check that it logged in (%s 1): %+v", p.Engine.Exporter.Up, x.LivenessProbe)
			}
		})
	}
}

func envValues(env []corev1.EnvVar) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		out = append(out, e.Value)
	}
	return out
}

// TestExporterNeedsTheSQLProvider: without the SQL provider (the input's
// sqlUsers off) there is no monitoring login, so no exporter either, rather
// than one that logs in as the superuser or not at all.
func TestExporterNeedsTheSQLProvider(t *testing.T) {
	s := everySpec()["postgresql-18-production-metrics=true"]
	db := &v1.Database{Spec: s}
	db.Name, db.Namespace = "orders", "team-a"
	Default(&db.Spec)
	p, err := Resolve(db, Observed{}, Input{SQLUsers: false}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatal(err)
	}
	if x := exporterOf(p); x != nil {
		t.Errorf("sqlUsers off: want no exporter, got %+v", x)
	}
	if a := StatefulSet(p).Spec.Template.Annotations["prometheus.io/scrape"]; a != "" {
		t.Errorf("sqlUsers off: want no scrape annotation, got %q", a)
	}
}

// TestExporterImagesMatchTools: the exporter images fn composes are the
// versions test/tools builds and test/integration runs against the real
// servers, so what is proven is what runs.
func TestExporterImagesMatchTools(t *testing.T) {
	for e, tool := range map[v1.Engine]string{v1.PostgreSQL: "postgres-exporter", v1.MySQL: "mysqld-exporter"} {
		b, err := os.ReadFile(filepath.Join("..", "test", "tools", tool, "go.mod")) //nolint:gosec // A wrapper module of this repository.
		if err != nil {
			t.Fatal(err)
		}
		version := ""
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "require" {
				version = f[2]
			}
		}
		image := engines[e].Exporter.Image
		if version == "" || !strings.HasSuffix(image, ":"+version) {
			t.Errorf("%s: fn composes %s, test/tools/%s builds %q", e, image, tool, version)
		}
	}
}
