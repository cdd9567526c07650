package fn

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// params resolves Params for a spec the way RunFunction does.
func params(t *testing.T, s v1.DatabaseSpec) Params {
	t.Helper()
	db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: s}
	Default(&db.Spec)
	if errs := Validate(db); len(errs) > 0 {
		t.Fatalf("Validate(): %v", errs)
	}
	p, err := Resolve(db, Observed{}, Input{SQLUsers: true}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatalf("Resolve(): %v", err)
	}
	return p
}

// every engine x environment x monitoring combination.
func everySpec() map[string]v1.DatabaseSpec {
	out := map[string]v1.DatabaseSpec{}
	for _, e := range []struct {
		t v1.Engine
		v string
	}{{v1.PostgreSQL, "14"}, {v1.PostgreSQL, "18"}, {v1.MySQL, "8.0"}, {v1.MySQL, "8.4"}} {
		for _, env := range []v1.Environment{v1.Development, v1.Staging, v1.Production} {
			for _, metrics := range []bool{false, true} {
				out[fmt.Sprintf("%s-%s-%s-metrics=%t", e.t, e.v, env, metrics)] = v1.DatabaseSpec{
					Type: e.t, Version: e.v, Replicas: ptr.To[int32](2), Environment: env,
					Storage:    v1.Storage{Size: "1Gi"},
					Backup:     &v1.Backup{Enabled: true},
					Monitoring: &v1.Monitoring{Enabled: metrics, Metrics: metrics, Logging: metrics},
				}
			}
		}
	}
	return out
}

func TestPodSecurityRestricted(t *testing.T) {
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	check := func(spec *corev1.PodSpec) policy.AggregateCheckResult {
		return policy.AggregateCheckResults(ev.EvaluatePod(restricted, &metav1.ObjectMeta{}, spec))
	}

	for name, s := range everySpec() {
		p := params(t, s)
		p.Restore = &v1.Restore{From: "orders-old", Backup: "latest"}
		pods := map[string]*corev1.PodSpec{
			"StatefulSet": &StatefulSet(p).Spec.Template.Spec,
			"CronJob":     &BackupCronJob(p).Spec.JobTemplate.Spec.Template.Spec,
			"RestoreJob":  &RestoreJob(p).Spec.Template.Spec,
		}
		for kind, pod := range pods {
			if r := check(pod); !r.Allowed {
				t.Errorf("%s %s: pods must pass the restricted Pod Security Standard: %s: %s", name, kind, r.ForbiddenReason(), r.ForbiddenDetail())
			}
		}
	}

	// The evaluator must be able to say no, or the checks above prove nothing.
	pod := StatefulSet(params(t, everySpec()["postgresql-18-production-metrics=true"])).Spec.Template.Spec
	pod.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	if r := check(&pod); r.Allowed {
		t.Errorf("restricted evaluator allowed privilege escalation: the test is broken")
	}
}

// TestNoServiceAccountToken: no pod a Database runs calls the Kubernetes
// API (servers, exporter, backup and restore scripts read their Secrets
// through the environment), so none gets a ServiceAccount token, and no
// Service environment variables either.
func TestNoServiceAccountToken(t *testing.T) {
	for name, s := range everySpec() {
		p := params(t, s)
		p.Restore = &v1.Restore{From: "orders-old", Backup: "latest"}
		pods := map[string]*corev1.PodSpec{
			"StatefulSet": &StatefulSet(p).Spec.Template.Spec,
			"CronJob":     &BackupCronJob(p).Spec.JobTemplate.Spec.Template.Spec,
			"RestoreJob":  &RestoreJob(p).Spec.Template.Spec,
		}
		for kind, pod := range pods {
			if ptr.Deref(pod.AutomountServiceAccountToken, true) {
				t.Errorf("%s %s: automountServiceAccountToken must be false", name, kind)
			}
			if ptr.Deref(pod.EnableServiceLinks, true) {
				t.Errorf("%s %s: enableServiceLinks must be false", name, kind)
			}
			for _, v := range pod.Volumes {
				if v.Projected != nil {
					t.Errorf("%s %s: volume %s projects a token or API data", name, kind, v.Name)
				}
			}
		}
	}
}

func TestPasswordOnlyThroughSecretKeyRef(t *testing.T) {
	for name, s := range everySpec() {
		p := params(t, s)
		p.Restore, p.ComposeRestoreJob = &v1.Restore{From: "orders-old", Backup: "latest"}, true
		for _, c := range Compose(p) {
			if c.Name == rnSecret {
				continue
			}
			j, err := json.Marshal(c.Object)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(j), testPassword) {
				t.Errorf("%s: the password appears in %s", name, c.Name)
			}
		}
		containers := slices.Concat(StatefulSet(p).Spec.Template.Spec.Containers,
			BackupCronJob(p).Spec.JobTemplate.Spec.Template.Spec.Containers, RestoreJob(p).Spec.Template.Spec.Containers)
		for _, c := range containers {
			// The exporter's password is the monitoring login's, never the
			// superuser's.
			secret := p.Secret()
			if c.Name == "metrics" {
				secret = p.MonitoringUser()
			}
			for _, e := range c.Env {
				secretish := strings.Contains(e.Name, "PASS") || strings.Contains(e.Name, "PWD")
				if secretish && (e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != secret) {
					t.Errorf("%s: container %s env %s must come from Secret %s through a secretKeyRef", name, c.Name, e.Name, secret)
				}
			}
		}
	}
}

func TestStatefulSetPerRelease(t *testing.T) {
	type want struct {
		Image, Mount, SubPath, PGDATA string
	}
	cases := map[string]struct {
		reason string
		spec   v1.DatabaseSpec
		want   want
	}{
		"PostgreSQL17": {
			reason: "Before 18 the postgres image keeps its data under /var/lib/postgresql/data; PGDATA is a sub directory so a volume's lost+found does not stop initdb.",
			spec:   v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "17", Storage: v1.Storage{Size: "1Gi"}},
			want:   want{Image: "docker.io/library/postgres:17", Mount: "/var/lib/postgresql/data", PGDATA: "/var/lib/postgresql/data/pgdata"},
		},
		"PostgreSQL18": {
			reason: "From 18 the postgres image wants the volume at /var/lib/postgresql and PGDATA at /var/lib/postgresql/18/docker.",
			spec:   v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "18", Storage: v1.Storage{Size: "1Gi"}},
			want:   want{Image: "docker.io/library/postgres:18", Mount: "/var/lib/postgresql", PGDATA: "/var/lib/postgresql/18/docker"},
		},
		"MySQL84": {
			reason: "MySQL initialises only an empty data directory, so the volume's sub directory is mounted.",
			spec:   v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Storage: v1.Storage{Size: "1Gi"}},
			want:   want{Image: "docker.io/library/mysql:8.4", Mount: "/var/lib/mysql", SubPath: "mysql"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := StatefulSet(params(t, tc.spec)).Spec.Template.Spec.Containers[0]
			got := want{Image: c.Image, Mount: c.VolumeMounts[0].MountPath, SubPath: c.VolumeMounts[0].SubPath}
			for _, e := range c.Env {
				if e.Name == "PGDATA" {
					got.PGDATA = e.Value
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nStatefulSet(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestStatefulSetStorage(t *testing.T) {
	s := StatefulSet(params(t, v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Storage: v1.Storage{Size: "20Gi"}}))
	vct := s.Spec.VolumeClaimTemplates[0].Spec
	if vct.StorageClassName != nil {
		t.Errorf("StatefulSet(...): an unset storage.class must leave storageClassName unset for the cluster default, got %q", *vct.StorageClassName)
	}
	if got := vct.Resources.Requests.Storage().String(); got != "20Gi" {
		t.Errorf("StatefulSet(...): want 20Gi claims, got %s", got)
	}
	if r := s.Spec.PersistentVolumeClaimRetentionPolicy; r.WhenDeleted != "Retain" || r.WhenScaled != "Retain" {
		t.Errorf("StatefulSet(...): data claims must be retained on delete and scale down, got %+v", r)
	}
	s = StatefulSet(params(t, v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Storage: v1.Storage{Size: "20Gi", Class: "fast"}}))
	if got := ptr.Deref(s.Spec.VolumeClaimTemplates[0].Spec.StorageClassName, ""); got != "fast" {
		t.Errorf("StatefulSet(...): want storageClassName fast, got %q", got)
	}
}

// TestStatefulSetImmutableFields checks that every update the XRD allows
// leaves what the apiserver refuses to change in a StatefulSet alone: its
// selector, service name, pod management policy and claim templates. One
// version label in a claim template once made every version change fail.
func TestStatefulSetImmutableFields(t *testing.T) {
	immutable := func(s v1.DatabaseSpec) any {
		st := StatefulSet(params(t, s)).Spec
		return []any{st.Selector, st.ServiceName, st.PodManagementPolicy, st.VolumeClaimTemplates}
	}
	from := v1.DatabaseSpec{Type: v1.MySQL, Version: "8.0", Replicas: ptr.To[int32](1), Storage: v1.Storage{Size: "20Gi"}}
	updates := map[string]func(s *v1.DatabaseSpec){
		"Version":     func(s *v1.DatabaseSpec) { s.Version = "8.4" },
		"Replicas":    func(s *v1.DatabaseSpec) { s.Replicas = ptr.To[int32](3) },
		"Environment": func(s *v1.DatabaseSpec) { s.Environment = v1.Staging },
		"Backup":      func(s *v1.DatabaseSpec) { s.Backup = &v1.Backup{Enabled: true} },
		"Monitoring":  func(s *v1.DatabaseSpec) { s.Monitoring = &v1.Monitoring{Enabled: true, Metrics: true, Logging: true} },
		"Resources": func(s *v1.DatabaseSpec) {
			s.Resources = &v1.Resources{Limits: &v1.ResourceList{CPU: "3", Memory: "2Gi"}}
		},
	}
	for name, update := range updates {
		t.Run(name, func(t *testing.T) {
			to := *from.DeepCopy()
			update(&to)
			if diff := cmp.Diff(immutable(from), immutable(to)); diff != "" {
				t.Errorf("StatefulSet(...): updating %s changes immutable fields (-before +after):\n%s", name, diff)
			}
		})
	}
}

// TestStatefulSetRepeatsObservedClaimTemplate checks that once a
// StatefulSet exists its claim template is composed as observed, even when
// an earlier function composed other labels or the spec asks for more
// storage: the apiserver refuses any change to it.
func TestStatefulSetRepeatsObservedClaimTemplate(t *testing.T) {
	observed := StatefulSet(params(t, v1.DatabaseSpec{Type: v1.MySQL, Version: "8.0", Storage: v1.Storage{Size: "20Gi"}}))
	observed.Spec.VolumeClaimTemplates[0].Labels["app.kubernetes.io/version"] = "8.0"
	want := observed.Spec.VolumeClaimTemplates

	db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: v1.DatabaseSpec{
		Type: v1.MySQL, Version: "8.4", Storage: v1.Storage{Size: "50Gi"},
	}}
	Default(&db.Spec)
	p, err := Resolve(db, Observed{StatefulSet: observed}, Input{}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatalf("Resolve(): %v", err)
	}
	if diff := cmp.Diff(want, StatefulSet(p).Spec.VolumeClaimTemplates); diff != "" {
		t.Errorf("StatefulSet(...): claim templates differ from the observed ones (-observed +composed):\n%s", diff)
	}
}

// TestStorageGrowthKeepsVolumes checks that growing spec.storage.size
// changes no existing claim (the data claim template is immutable, and
// growing the backup claim fails on classes that cannot expand volumes) and
// says so in its advice.
func TestStorageGrowthKeepsVolumes(t *testing.T) {
	old := v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Storage: v1.Storage{Size: "20Gi"}, Backup: &v1.Backup{Enabled: true}}
	p := params(t, old)
	o := Observed{StatefulSet: StatefulSet(p), BackupVolume: BackupVolume(p)}

	db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: *old.DeepCopy()}
	db.Spec.Storage.Size = "50Gi"
	Default(&db.Spec)
	p, err := Resolve(db, o, Input{}, func() (string, error) { return testPassword, nil })
	if err != nil {
		t.Fatalf("Resolve(): %v", err)
	}
	got := []string{
		StatefulSet(p).Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String(),
		BackupVolume(p).Spec.Resources.Requests.Storage().String(),
	}
	if diff := cmp.Diff([]string{"20Gi", "20Gi"}, got); diff != "" {
		t.Errorf("data claim template and backup claim sizes (-want +got):\n%s", diff)
	}
	want := []Advice{
		{Type: ConditionVersionSupported, Status: corev1.ConditionTrue, Reason: ReasonSupported},
		{Type: ConditionStorageSized, Status: corev1.ConditionFalse, Reason: ReasonGrowthNotAutomated, Message: "spec.storage.size: existing data volumes stay at 20Gi; growing them to 50Gi is not automated yet (a StatefulSet's volume claim templates are immutable). " +
			"spec.storage.size: the backup volume stays at 20Gi; growing it to 50Gi is not automated yet (not every storage class can expand a volume)"},
	}
	if diff := cmp.Diff(want, Advise(p, o)); diff != "" {
		t.Errorf("Advise(...) (-want +got):\n%s", diff)
	}
}

func TestServiceSelectsFirstPodOnly(t *testing.T) {
	p := params(t, v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Replicas: ptr.To[int32](3), Storage: v1.Storage{Size: "1Gi"}})
	want := map[string]string{
		labelName: "mysql", labelInstance: "orders", labelComponent: "database", labelPodName: "orders-0",
	}
	if diff := cmp.Diff(want, Service(p).Spec.Selector); diff != "" {
		t.Errorf("Service(...): until replication exists the client Service selects the first pod only: -want, +got:\n%s", diff)
	}
	if diff := cmp.Diff(p.Selector(), HeadlessService(p).Spec.Selector); diff != "" {
		t.Errorf("HeadlessService(...): selects every replica: -want, +got:\n%s", diff)
	}
}

func TestConfig(t *testing.T) {
	cases := map[string]struct {
		reason string
		spec   v1.DatabaseSpec
		want   []string
		never  []string
	}{
		"PostgreSQLDevelopment": {
			reason: "Development's 512Mi limit gives a quarter to shared_buffers.",
			spec:   v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Storage: v1.Storage{Size: "1Gi"}},
			want:   []string{"shared_buffers = 128MB", "effective_cache_size = 384MB", "max_connections = 50", "listen_addresses = '*'"},
			never:  []string{"log_min_duration_statement"},
		},
		"PostgreSQLProductionLogging": {
			reason: "Production's 4Gi limit and logging on.",
			spec: v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "18", Replicas: ptr.To[int32](2), Environment: v1.Production,
				Storage: v1.Storage{Size: "1Gi"}, Monitoring: &v1.Monitoring{Enabled: true, Logging: true}},
			want: []string{"shared_buffers = 1024MB", "max_connections = 200", "log_min_duration_statement = 1000", "log_connections = on"},
		},
		"MySQLStagingOwnResources": {
			reason: "spec.resources replaces the profile, and the buffer pool follows its memory limit.",
			spec: v1.DatabaseSpec{Type: v1.MySQL, Version: "8.4", Environment: v1.Staging, Storage: v1.Storage{Size: "1Gi"},
				Resources: &v1.Resources{Limits: &v1.ResourceList{Memory: "3Gi"}}},
			want: []string{"innodb_buffer_pool_size = 1536M", "max_connections = 100"},
			// Settings MySQL 8 removed (query cache) or 8.4 removed stop the server from starting.
			never: []string{"query_cache", "default_authentication_plugin", "slow_query_log"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := params(t, tc.spec)
			cm := ConfigMap(p).Data[p.Engine.ConfigKey]
			for _, w := range tc.want {
				if !strings.Contains(cm, w) {
					t.Errorf("%s\nConfigMap(...): want %q in:\n%s", tc.reason, w, cm)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(cm, n) {
					t.Errorf("%s\nConfigMap(...): %q must not appear in:\n%s", tc.reason, n, cm)
				}
			}
		})
	}
}

func TestToComposed(t *testing.T) {
	p := params(t, v1.DatabaseSpec{Type: v1.PostgreSQL, Version: "16", Storage: v1.Storage{Size: "1Gi"}})
	got, err := ToComposed(ConfigMap(p))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "v1",
		"kind":       "ConfigMap",
		"metadata": map[string]any{
			"name": "orders-config", "namespace": "team-a",
			"labels": map[string]any{
				labelName: "postgresql", labelInstance: "orders", labelVersion: "16",
				labelComponent: "database", labelManagedBy: "dbplane",
			},
		},
		"data": map[string]any{"postgresql.conf": p.Config, "pg_hba.conf": pgHBA(false), "init.sh": postgresqlInit},
	}
	if diff := cmp.Diff(want, got.Object); diff != "" {
		t.Errorf("ToComposed(ConfigMap): the exact apply intent: -want, +got:\n%s", diff)
	}

	// No status, nulls or zero values we have no opinion on, anywhere.
	for _, c := range Compose(params(t, everySpec()["mysql-8.4-production-metrics=true"])) {
		u, err := ToComposed(c.Object)
		if err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{`"status"`, `"creationTimestamp"`, `null`, `"hostNetwork"`, `{}`} {
			if strings.Contains(string(j), bad) {
				t.Errorf("ToComposed(%s): %s must not be part of the apply intent:\n%s", c.Name, bad, j)
			}
		}
	}
}
