package fn

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

const (
	pgRestore  = `{"type":"postgresql","version":"16","storage":{"size":"1Gi"},"restore":{"from":"orders-old"}}`
	sourcePG   = `{"apiVersion":"database.example.com/v1","kind":"Database","metadata":{"name":"orders-old","namespace":"team-a"},"spec":{"type":"postgresql","version":"16","storage":{"size":"1Gi"}}}`
	sourceMy   = `{"apiVersion":"database.example.com/v1","kind":"Database","metadata":{"name":"orders-old","namespace":"team-a"},"spec":{"type":"mysql","version":"8.4","storage":{"size":"1Gi"}}}`
	jobDone    = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-restore","namespace":"team-a"},"status":{"conditions":[{"type":"Complete","status":"True"}]}}`
	jobFailed  = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-restore","namespace":"team-a"},"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}`
	jobRunning = `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"orders-restore","namespace":"team-a"},"status":{"active":1}}`
)

func withSource(r *fnv1.RunFunctionRequest, src ...string) *fnv1.RunFunctionRequest {
	items := []*fnv1.Resource{}
	for _, s := range src {
		items = append(items, &fnv1.Resource{Resource: resource.MustStructJSON(s)})
	}
	r.RequiredResources = map[string]*fnv1.Resources{requiredRestoreSource: {Items: items}}
	return r
}

func TestRunFunctionRestore(t *testing.T) {
	type want struct {
		Composed []string
		Results  []string
		Ready    string // of the restore Job
		Restored string // status/reason of the Restored condition
		Phase    string
	}
	base := map[string]string{"secret": secretJSON("pw")}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{"secret": secretJSON("pw")}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   want
	}{
		"AskForSource": {
			reason: "Before Crossplane supplied the source Database nothing loads and apps cannot connect: no restore Job, no client Service.",
			req:    req(xr("orders", pgRestore), base),
			want: want{
				Restored: "FALSE/WaitingForSource", Phase: "Creating",
				Composed: []string{"configmap", "networkpolicy", "secret", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"},
				Results:  []string{`SEVERITY_WARNING: spec.restore.from: waiting for Database "orders-old" in namespace "team-a"`},
			},
		},
		"SourceMissing": {
			reason: "A source that does not exist is waited for, and said so.",
			req:    withSource(req(xr("orders", pgRestore), base)),
			want: want{
				Restored: "FALSE/WaitingForSource", Phase: "Creating",
				Composed: []string{"configmap", "networkpolicy", "secret", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"},
				Results:  []string{`SEVERITY_WARNING: spec.restore.from: waiting for Database "orders-old" in namespace "team-a"`},
			},
		},
		"SourceOfAnotherType": {
			reason: "A MySQL backup cannot restore into PostgreSQL: fatal, naming the field, nothing composed.",
			req:    withSource(req(xr("orders", pgRestore), base), sourceMy),
			want:   want{Composed: []string{}, Results: []string{`SEVERITY_FATAL: cannot accept Database: spec.restore.from: Invalid value: "orders-old": is a mysql Database and this one postgresql: a backup only restores into the same type`}},
		},
		"WaitForFirstReplica": {
			reason: "The restore Job needs a running server.",
			req:    withSource(req(xr("orders", pgRestore), with(map[string]string{"statefulset": stsJSON(1, 0, "1Gi")})), sourcePG),
			want:   want{Restored: "UNKNOWN/Restoring", Phase: "Creating", Composed: []string{"configmap", "networkpolicy", "secret", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"}},
		},
		"Restoring": {
			reason: "With a ready replica the restore Job runs; the client Service still waits.",
			req:    withSource(req(xr("orders", pgRestore), with(map[string]string{"statefulset": stsJSON(1, 1, "1Gi")})), sourcePG),
			want:   want{Restored: "UNKNOWN/Restoring", Phase: "PartiallyReady", Composed: []string{"configmap", "networkpolicy", "restore-job", "secret", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"}, Ready: "READY_UNSPECIFIED"},
		},
		"StillRestoring": {
			reason: "A running restore Job is not ready.",
			req:    withSource(req(xr("orders", pgRestore), with(map[string]string{"statefulset": stsJSON(1, 1, "1Gi"), "restore-job": jobRunning})), sourcePG),
			want:   want{Restored: "UNKNOWN/Restoring", Phase: "PartiallyReady", Composed: []string{"configmap", "networkpolicy", "restore-job", "secret", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"}, Ready: "READY_FALSE"},
		},
		"Restored": {
			reason: "Once the restore Job completed, apps get their Service.",
			req:    withSource(req(xr("orders", pgRestore), with(map[string]string{"statefulset": stsJSON(1, 1, "1Gi"), "restore-job": jobDone})), sourcePG),
			want:   want{Restored: "TRUE/RestoreSucceeded", Phase: "PartiallyReady", Composed: []string{"configmap", "networkpolicy", "restore-job", "secret", "service", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"}, Ready: "READY_TRUE"},
		},
		"RestoreFailed": {
			reason: "A failed restore keeps apps out and says why.",
			req:    withSource(req(xr("orders", pgRestore), with(map[string]string{"statefulset": stsJSON(1, 1, "1Gi"), "restore-job": jobFailed})), sourcePG),
			want: want{
				Restored: "FALSE/RestoreFailed", Phase: "Failed",
				Composed: []string{"configmap", "networkpolicy", "restore-job", "secret", "service-headless", "sql-providerconfig", "sql-user-app", "statefulset", "tls", "tls-ca"},
				Results:  []string{"SEVERITY_WARNING: spec.restore: restore Job orders-restore failed: BackoffLimitExceeded: Job has reached the specified backoff limit"},
				Ready:    "READY_FALSE",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got := want{Composed: []string{}}
			for n := range rsp.GetDesired().GetResources() {
				got.Composed = append(got.Composed, n)
			}
			slices.Sort(got.Composed)
			for _, r := range rsp.GetResults() {
				got.Results = append(got.Results, r.GetSeverity().String()+": "+r.GetMessage())
			}
			if st, ok := rsp.GetDesired().GetComposite().GetResource().AsMap()["status"].(map[string]any); ok {
				got.Phase, _ = st["phase"].(string)
			}
			for _, c := range rsp.GetConditions() {
				if c.GetType() == ConditionRestored {
					got.Restored = strings.TrimPrefix(c.GetStatus().String(), "STATUS_CONDITION_") + "/" + c.GetReason()
				}
			}
			if j, ok := rsp.GetDesired().GetResources()["restore-job"]; ok {
				got.Ready = j.GetReady().String()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
			if tc.want.Results == nil || !strings.HasPrefix(tc.want.Results[0], "SEVERITY_FATAL") {
				if rsp.GetRequirements().GetResources()[requiredRestoreSource].GetMatchName() != "orders-old" {
					t.Errorf("%s\nRunFunction(...): want the source Database required by name", tc.reason)
				}
			}
		})
	}
}

func TestRestoreJob(t *testing.T) {
	p := params(t, everySpec()["mysql-8.4-production-metrics=false"])
	p.Restore = &v1.Restore{From: "orders-old", Backup: "latest"}
	j := RestoreJob(p)
	c := j.Spec.Template.Spec.Containers[0]
	got := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			got[e.Name] = "secret:" + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
			continue
		}
		got[e.Name] = e.Value
	}
	want := map[string]string{
		"MYSQL_PWD": "secret:orders-credentials/password", "BACKUP_DIR": "/backup", "DATABASE": "app",
		"DB_HOST": "orders-0.orders-headless.team-a.svc.cluster.local", "DB_PORT": "3306", "DB_USER": "root", "RESTORE_FROM": "latest",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RestoreJob(...): env: -want, +got:\n%s", diff)
	}
	v := j.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim
	if v.ClaimName != "orders-old-backup" || !v.ReadOnly || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("RestoreJob(...): want the source's backup volume mounted read-only, got %+v %+v", v, c.VolumeMounts[0])
	}
	if c.Command[2] != RestoreScript(p.Engine) {
		t.Errorf("RestoreJob(...): must run RestoreScript")
	}
}

// TestRunFunctionRestoreFromBackup: spec.restore.fromBackup restores from
// the bucket alone: no source Database is asked for or waited for, the
// restore Job reads the named Database's prefix in this namespace, and
// without the platform's object storage the Database is refused.
func TestRunFunctionRestoreFromBackup(t *testing.T) {
	const (
		spec  = `{"type":"postgresql","version":"16","storage":{"size":"1Gi"},"restore":{"fromBackup":{"database":"orders-gone"}}}`
		input = `{"apiVersion":"fn.database.example.com/v1alpha1","kind":"Input","backupStorage":{"s3":{"endpoint":"https://s3.example","bucket":"b","prefix":"prod/","credentialsSecretName":"backup-s3"}}}`
	)
	type want struct {
		RestoreJob bool
		Requires   []string
		S3Prefix   string
		Volume     string // the restore pod's backup volume: emptyDir or a claim
		Restored   string
		Results    []string
	}
	withInput := func(r *fnv1.RunFunctionRequest) *fnv1.RunFunctionRequest {
		r.Input = resource.MustStructJSON(input)
		return r
	}
	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   want
	}{
		"WaitForFirstReplica": {
			reason: "Nothing to wait for but a running server: no source Database is required.",
			req:    withInput(req(xr("orders", spec), map[string]string{"secret": secretJSON("pw"), "statefulset": stsJSON(1, 0, "1Gi")})),
			want:   want{Restored: "UNKNOWN/Restoring"},
		},
		"Restoring": {
			reason: "With a ready replica the restore Job downloads from orders-gone's prefix in this namespace, into an emptyDir.",
			req:    withInput(req(xr("orders", spec), map[string]string{"secret": secretJSON("pw"), "statefulset": stsJSON(1, 1, "1Gi")})),
			want:   want{RestoreJob: true, S3Prefix: "prod/team-a/orders-gone/", Volume: "emptyDir", Restored: "UNKNOWN/Restoring"},
		},
		"NoObjectStorage": {
			reason: "Without a bucket there is nothing to restore from: fatal, naming the field and what is missing.",
			req:    req(xr("orders", spec), map[string]string{"secret": secretJSON("pw"), "statefulset": stsJSON(1, 1, "1Gi")}),
			want: want{Results: []string{"SEVERITY_FATAL: cannot resolve parameters: spec.restore.fromBackup: restoring from the bucket needs the platform's object storage (the function Input's backupStorage.s3), which is not configured"},
				Requires: nil},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger(), WithoutCache()).RunFunction(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			g := summarise(t, rsp)
			w := want{Results: g.Results}
			for _, r := range g.Requires {
				if r == requiredRestoreSource {
					w.Requires = append(w.Requires, r)
				}
			}
			for _, c := range g.Conditions {
				if s, ok := strings.CutPrefix(c, ConditionRestored+"="); ok {
					w.Restored = s
				}
			}
			if r := rsp.GetDesired().GetResources()[string(rnRestoreJob)]; r != nil {
				w.RestoreJob = true
				j := batchv1.Job{}
				if err := fromObject(r.GetResource().AsMap(), &j); err != nil {
					t.Fatal(err)
				}
				for _, e := range j.Spec.Template.Spec.Containers[0].Env {
					if e.Name == "S3_PREFIX" {
						w.S3Prefix = e.Value
					}
				}
				// An emptyDir's {} is pruned: a volume without a source is
				// defaulted to an emptyDir by the apiserver.
				if v := j.Spec.Template.Spec.Volumes[0]; v.EmptyDir != nil || v.VolumeSource == (corev1.VolumeSource{}) {
					w.Volume = "emptyDir"
				} else if v.PersistentVolumeClaim != nil {
					w.Volume = "claim " + v.PersistentVolumeClaim.ClaimName
				}
			}
			if diff := cmp.Diff(tc.want, w); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
