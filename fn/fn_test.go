package fn

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"
)

const testPassword = "generated-password-0123456789abcdef"

// xr is an observed Database with the given spec (YAML-ish JSON fragment).
func xr(name, spec string) string {
	return fmt.Sprintf(`{"apiVersion":"database.example.com/v1","kind":"Database","metadata":{"name":%q,"namespace":"team-a"},"spec":%s}`, name, spec)
}

// atGeneration gives an observed Database a metadata.generation.
func atGeneration(xr string, g int) string {
	return strings.Replace(xr, `"namespace":"team-a"}`, fmt.Sprintf(`"namespace":"team-a","generation":%d}`, g), 1)
}

const (
	pgProd  = `{"type":"postgresql","version":"16","replicas":2,"environment":"production","storage":{"size":"20Gi"},"backup":{"enabled":true}}`
	pgDev   = `{"type":"postgresql","version":"17","storage":{"size":"1Gi"}}`
	myProd  = `{"type":"mysql","version":"8.4","replicas":2,"environment":"production","storage":{"size":"20Gi","class":"fast"},"backup":{"enabled":true,"schedule":"@daily","retention":"3d"}}`
	my80Dev = `{"type":"mysql","version":"8.0","storage":{"size":"1Gi"}}`
)

// crossplaneV2 is what Crossplane v2.4 (and the v2.5 CLI's render)
// advertises in every request.
var crossplaneV2 = []fnv1.Capability{
	fnv1.Capability_CAPABILITY_CAPABILITIES, fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES, fnv1.Capability_CAPABILITY_CREDENTIALS,
	fnv1.Capability_CAPABILITY_CONDITIONS, fnv1.Capability_CAPABILITY_REQUIRED_SCHEMAS,
}

// req is a request from Crossplane v2.4 for observed XR oxr and composed
// resources ocds.
func req(oxr string, ocds map[string]string) *fnv1.RunFunctionRequest {
	r := &fnv1.RunFunctionRequest{
		Meta:     &fnv1.RequestMeta{Tag: "t", Capabilities: crossplaneV2},
		Observed: &fnv1.State{Composite: &fnv1.Resource{Resource: resource.MustStructJSON(oxr)}},
	}
	if len(ocds) > 0 {
		r.Observed.Resources = map[string]*fnv1.Resource{}
		for n, j := range ocds {
			r.Observed.Resources[n] = &fnv1.Resource{Resource: resource.MustStructJSON(j)}
		}
	}
	return r
}

// namespaceJSON is the Database's Namespace, as Crossplane supplies it.
const namespaceJSON = `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a","uid":"5f0c6a1e-team-a"}}`

// withRequired gives a request the required resources Crossplane
// answered with for name.
func withRequired(r *fnv1.RunFunctionRequest, name string, objs ...string) *fnv1.RunFunctionRequest {
	if r.RequiredResources == nil {
		r.RequiredResources = map[string]*fnv1.Resources{}
	}
	items := make([]*fnv1.Resource, 0, len(objs))
	for _, o := range objs {
		items = append(items, &fnv1.Resource{Resource: resource.MustStructJSON(o)})
	}
	r.RequiredResources[name] = &fnv1.Resources{Items: items}
	return r
}

func secretJSON(password string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"orders-credentials","namespace":"team-a"},"data":{"password":%q}}`,
		base64.StdEncoding.EncodeToString([]byte(password)))
}

func stsJSON(replicas, ready int, size string) string {
	return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"orders","namespace":"team-a","generation":3},
	"spec":{"replicas":%d,"volumeClaimTemplates":[{"metadata":{"name":"data"},"spec":{"resources":{"requests":{"storage":%q}}}}]},
	"status":{"observedGeneration":3,"replicas":%d,"readyReplicas":%d,"updatedReplicas":%d,"currentRevision":"r1","updateRevision":"r1"}}`,
		replicas, size, replicas, ready, replicas)
}

// userJSON is an observed SQL User, Ready when its login works.
// replicationJSON is an observed Replication that found its primary.
const replicationJSON = `{"apiVersion":"sql.database.example.com/v1alpha1","kind":"Replication","metadata":{"name":"orders","namespace":"team-a"},` +
	`"status":{"atProvider":{"primary":"orders-0","lastPrimary":"orders-0","members":[{"name":"orders-0","role":"primary"},{"name":"orders-1","role":"standby","streaming":true}]},` +
	`"conditions":[{"type":"Ready","status":"True","reason":"Available"}]}}`

func userJSON(ready bool) string {
	st := "False"
	if ready {
		st = "True"
	}
	return fmt.Sprintf(`{"apiVersion":"sql.database.example.com/v1alpha1","kind":"User","metadata":{"name":"orders-app","namespace":"team-a"},"status":{"conditions":[{"type":"Ready","status":%q,"reason":"Available"}]}}`, st)
}

const (
	existsJSON  = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"team-a"}}`
	cronJobJSON = `{"apiVersion":"batch/v1","kind":"CronJob","metadata":{"name":"orders-backup","namespace":"team-a"},"status":{"lastSuccessfulTime":"2026-11-22T02:00:31Z"}}`
	pvcJSON     = `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"orders-backup","namespace":"team-a"},"spec":{"resources":{"requests":{"storage":"30Gi"}}}}`
)

// got is what a test reads back from a response.
type got struct {
	Results    []string          // severity: message
	Composed   map[string]string // resource name -> kind/name
	Ready      map[string]string // resource name -> readiness
	Status     map[string]any
	Passwords  []string // every password a Secret holds
	Conditions []string // type=status/reason
	Requires   []string // required resource names
}

func summarise(t *testing.T, rsp *fnv1.RunFunctionResponse) got {
	t.Helper()
	g := got{Composed: map[string]string{}, Ready: map[string]string{}}
	for _, r := range rsp.GetResults() {
		g.Results = append(g.Results, r.GetSeverity().String()+": "+r.GetMessage())
	}
	for n, r := range rsp.GetDesired().GetResources() {
		m := r.GetResource().AsMap()
		md, _ := m["metadata"].(map[string]any)
		g.Composed[n] = fmt.Sprintf("%s/%s", m["kind"], md["name"])
		g.Ready[n] = r.GetReady().String()
		if d, _ := m["data"].(map[string]any); m["kind"] == "Secret" && d["password"] != nil {
			pw, _ := base64.StdEncoding.DecodeString(fmt.Sprint(d["password"]))
			g.Passwords = append(g.Passwords, string(pw))
		}
	}
	for _, c := range rsp.GetConditions() {
		g.Conditions = append(g.Conditions, fmt.Sprintf("%s=%s/%s", c.GetType(), strings.TrimPrefix(c.GetStatus().String(), "STATUS_CONDITION_"), c.GetReason()))
	}
	for n := range rsp.GetRequirements().GetResources() {
		g.Requires = append(g.Requires, n)
	}
	slices.Sort(g.Requires)
	if x := rsp.GetDesired().GetComposite().GetResource(); x != nil {
		if s, ok := x.AsMap()["status"].(map[string]any); ok {
			g.Status = s
		}
	}
	return g
}

func TestRunFunction(t *testing.T) {
	generate := func() (string, error) { return testPassword, nil }
	mustNotGenerate := func() (string, error) { return "", errors.New("must not generate a password") }

	type args struct {
		req      *fnv1.RunFunctionRequest
		password func() (string, error)
	}
	cases := map[string]struct {
		reason string
		args   args
		want   got
	}{
		"NewProductionPostgreSQL": {
			reason: "A new production Database composes every kind, a disruption budget, a backup, the read-only Service, the replication login and the Replication, all with readiness unset until they exist, and is Pending.",
			args:   args{req: withRequired(req(xr("orders", pgProd), nil), requiredNamespace, namespaceJSON), password: generate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders",
					"statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app", "pdb": "PodDisruptionBudget/orders",
					"backup-pvc": "PersistentVolumeClaim/orders-backup", "backup-cronjob": "CronJob/orders-backup", "verify-cronjob": "CronJob/orders-verify",
					"service-ro": "Service/orders-ro", "sql-user-replication": "User/orders-replication", "replication": "Replication/orders",
				},
				Ready: map[string]string{ //nolint:gosec // Composed resource names, no credential.
					"secret": "READY_UNSPECIFIED", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_UNSPECIFIED", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED", "pdb": "READY_UNSPECIFIED",
					"backup-pvc": "READY_UNSPECIFIED", "backup-cronjob": "READY_UNSPECIFIED", "verify-cronjob": "READY_UNSPECIFIED",
					"service-ro": "READY_UNSPECIFIED", "sql-user-replication": "READY_UNSPECIFIED", "replication": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "Pending", "ready": false, "replicas": float64(0), "endpoint": "orders.team-a.svc.cluster.local:5432"},
				Passwords:  []string{testPassword},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/AwaitingFirstBackup", "BackupVerified=UNKNOWN/AwaitingFirstVerification"},
				Requires:   []string{"backup-jobs", "backup-volume", "namespace", "verify-jobs"},
			},
		},
		"DevelopmentWithoutDefaults": {
			reason: "A Database whose schema defaults were never applied gets them from the function: one replica, development, no backup.",
			args:   args{req: req(xr("orders", pgDev), nil), password: generate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders", "statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app",
				},
				Ready: map[string]string{ //nolint:gosec // Composed resource names, no credential.
					"secret": "READY_UNSPECIFIED", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_UNSPECIFIED", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "Pending", "ready": false, "replicas": float64(0), "endpoint": "orders.team-a.svc.cluster.local:5432"},
				Passwords:  []string{testPassword},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/BackupsDisabled", "BackupVerified=UNKNOWN/VerificationDisabled"},
			},
		},
		"KeepsObservedPassword": {
			reason: "Once the Secret exists its password is read back, never generated again.",
			args:   args{req: req(xr("orders", pgDev), map[string]string{"secret": secretJSON("s3cret-from-the-cluster")}), password: mustNotGenerate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders", "statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app",
				},
				Ready: map[string]string{
					"secret": "READY_TRUE", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_UNSPECIFIED", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "Creating", "ready": false, "replicas": float64(0), "endpoint": "orders.team-a.svc.cluster.local:5432"},
				Passwords:  []string{"s3cret-from-the-cluster"},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/BackupsDisabled", "BackupVerified=UNKNOWN/VerificationDisabled"},
			},
		},
		"BrokenObservedSecret": {
			reason: "An observed Secret without a password is fatal, naming the field: a new password would lock the app out of its data.",
			args:   args{req: req(xr("orders", pgDev), map[string]string{"secret": `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"orders-credentials"},"data":{}}`}), password: generate}, //nolint:gosec // A test Secret without a password.
			want: got{
				Results:  []string{`SEVERITY_FATAL: cannot observe the Database's resources: observed Secret "orders-credentials" has no data.password: refusing to generate a new password for an existing database`},
				Composed: map[string]string{}, Ready: map[string]string{},
			},
		},
		"ProductionWithOneReplica": {
			reason: "Input the schema should have refused is fatal, naming the field, and nothing is composed (so nothing is deleted).",
			args:   args{req: req(xr("orders", `{"type":"postgresql","version":"16","replicas":1,"environment":"production","storage":{"size":"1Gi"}}`), nil), password: generate},
			want: got{
				Results:  []string{`SEVERITY_FATAL: cannot accept Database: spec.replicas: Invalid value: 1: production databases need at least 2 replicas`},
				Composed: map[string]string{}, Ready: map[string]string{},
			},
		},
		"UnsupportedVersion": {
			reason: "An unsupported version is fatal and lists the supported ones.",
			args:   args{req: req(xr("orders", `{"type":"mysql","version":"9.0","storage":{"size":"1Gi"}}`), nil), password: generate},
			want: got{
				Results:  []string{`SEVERITY_FATAL: cannot accept Database: spec.version: Unsupported value: "9.0": supported values: "8.0", "8.4"`},
				Composed: map[string]string{}, Ready: map[string]string{},
			},
		},
		"BadScheduleAndSize": {
			reason: "Every invalid field is reported at once.",
			args:   args{req: req(xr("orders", `{"type":"mysql","version":"8.4","storage":{"size":"lots"},"backup":{"enabled":true,"schedule":"61 * * * *"}}`), nil), password: generate},
			want: got{
				Results:  []string{`SEVERITY_FATAL: cannot accept Database: [spec.storage.size: Invalid value: "lots": must be a positive quantity such as 20Gi, spec.backup.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61]`},
				Composed: map[string]string{}, Ready: map[string]string{},
			},
		},
		"NameTooLong": {
			reason: "A name that leaves no room for composed names is fatal.",
			args:   args{req: req(xr(strings.Repeat("a", 46), pgDev), nil), password: generate},
			want: got{
				Results:  []string{`SEVERITY_FATAL: cannot accept Database: metadata.name: Too long: may not be more than 45 bytes`},
				Composed: map[string]string{}, Ready: map[string]string{},
			},
		},
		"EndOfLifeVersion": {
			reason: "MySQL 8.0 is accepted with a warning.",
			args:   args{req: req(xr("orders", my80Dev), nil), password: generate},
			want: got{
				Results: []string{"SEVERITY_WARNING: spec.version: MySQL 8.0 reached its end of life in April 2026 and gets no more security fixes: move to 8.4"},
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders", "statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app",
				},
				Ready: map[string]string{ //nolint:gosec // Composed resource names, no credential.
					"secret": "READY_UNSPECIFIED", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_UNSPECIFIED", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "Pending", "ready": false, "replicas": float64(0), "endpoint": "orders.team-a.svc.cluster.local:3306"},
				Passwords:  []string{testPassword},
				Conditions: []string{"VersionSupported=FALSE/EndOfLife", "StorageSized=TRUE/AsRequested", "BackupHealthy=UNKNOWN/BackupsDisabled", "BackupVerified=UNKNOWN/VerificationDisabled"},
			},
		},
		"AllReady": {
			reason: "When every composed resource exists and every replica is ready and updated the Database is Ready, with the last backup time read from the CronJob, the generation composed, and the primary and members the Replication reports.",
			args: args{req: req(atGeneration(xr("orders", myProd), 4), map[string]string{
				"secret": secretJSON("pw"), "configmap": existsJSON, "networkpolicy": existsJSON, "service-headless": existsJSON, "service": existsJSON,
				"statefulset": stsJSON(2, 2, "20Gi"), "pdb": existsJSON, "backup-pvc": pvcJSON, "backup-cronjob": cronJobJSON, "verify-cronjob": existsJSON,
				"sql-providerconfig": existsJSON, "sql-user-app": userJSON(true),
				"service-ro": existsJSON, "sql-user-replication": userJSON(true), "replication": replicationJSON,
				"tls-ca": tlsSecretsJSON(testCerts())["tls-ca"], "tls": tlsSecretsJSON(testCerts())["tls"],
			}), password: mustNotGenerate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders",
					"statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app", "pdb": "PodDisruptionBudget/orders",
					"backup-pvc": "PersistentVolumeClaim/orders-backup", "backup-cronjob": "CronJob/orders-backup", "verify-cronjob": "CronJob/orders-verify",
					"service-ro": "Service/orders-ro", "sql-user-replication": "User/orders-replication", "replication": "Replication/orders",
				},
				Ready: map[string]string{
					"secret": "READY_TRUE", "tls-ca": "READY_TRUE", "tls": "READY_TRUE", "configmap": "READY_TRUE", "networkpolicy": "READY_TRUE", "service-headless": "READY_TRUE", "service": "READY_TRUE",
					"statefulset": "READY_TRUE", "sql-providerconfig": "READY_TRUE", "sql-user-app": "READY_TRUE", "pdb": "READY_TRUE", "backup-pvc": "READY_TRUE", "backup-cronjob": "READY_TRUE", "verify-cronjob": "READY_TRUE",
					"service-ro": "READY_TRUE", "sql-user-replication": "READY_TRUE", "replication": "READY_TRUE",
				},
				Status: map[string]any{
					"phase": "Ready", "ready": true, "replicas": float64(2), "endpoint": "orders.team-a.svc.cluster.local:3306",
					"lastBackup": "2026-11-22T02:00:31Z", "observedGeneration": float64(4),
					"primary": "orders-0", "members": []any{
						map[string]any{"name": "orders-0", "role": "primary"},
						map[string]any{"name": "orders-1", "role": "standby", "streaming": true, "lagSeconds": "0.000"},
					},
				},
				Passwords:  []string{"pw"},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "PrimaryAvailable=TRUE/PrimaryFound", "BackupHealthy=TRUE/BackupSucceeded", "BackupVerified=UNKNOWN/AwaitingFirstVerification"},
				Requires:   []string{"backup-jobs", "backup-volume", "namespace", "verify-jobs"},
			},
		},
		"PartiallyReady": {
			reason: "One of two replicas ready is PartiallyReady, and the StatefulSet is not ready.",
			args: args{req: req(xr("orders", pgDev), map[string]string{
				"secret": secretJSON("pw"), "configmap": existsJSON, "networkpolicy": existsJSON, "service-headless": existsJSON, "service": existsJSON,
				"statefulset": stsJSON(2, 1, "1Gi"),
			}), password: mustNotGenerate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders", "statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app",
				},
				Ready: map[string]string{
					"secret": "READY_TRUE", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_TRUE", "networkpolicy": "READY_TRUE", "service-headless": "READY_TRUE", "service": "READY_TRUE",
					"statefulset": "READY_FALSE", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "PartiallyReady", "ready": false, "replicas": float64(1), "endpoint": "orders.team-a.svc.cluster.local:5432"},
				Passwords:  []string{"pw"},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/BackupsDisabled", "BackupVerified=UNKNOWN/VerificationDisabled"},
			},
		},
		"BackupDisabledKeepsVolume": {
			reason: "Disabling backups removes the CronJob but keeps the backup volume composed, so no backup is deleted.",
			args: args{req: req(xr("orders", pgDev), map[string]string{
				"secret": secretJSON("pw"), "backup-pvc": pvcJSON, "backup-cronjob": cronJobJSON,
			}), password: mustNotGenerate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders", "statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app",
					"backup-pvc": "PersistentVolumeClaim/orders-backup",
				},
				Ready: map[string]string{
					"secret": "READY_TRUE", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_UNSPECIFIED", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED", "backup-pvc": "READY_TRUE",
				},
				Status: map[string]any{
					"phase": "Creating", "ready": false, "replicas": float64(0), "endpoint": "orders.team-a.svc.cluster.local:5432",
					"lastBackup": "2026-11-22T02:00:31Z",
				},
				Passwords:  []string{"pw"},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/BackupsDisabled", "BackupVerified=UNKNOWN/VerificationDisabled"},
				Requires:   []string{"backup-volume", "namespace"},
			},
		},
		"NewBackupWaitsForNamespace": {
			reason: "A new Database with backups composes neither the backup volume nor its CronJob until Crossplane supplied the Namespace that keeps the volume when the Database is deleted, and asks for it.",
			args:   args{req: req(xr("orders", pgProd), nil), password: generate},
			want: got{
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "configmap": "ConfigMap/orders-config",
					"service-headless": "Service/orders-headless", "service": "Service/orders",
					"statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app", "pdb": "PodDisruptionBudget/orders", "networkpolicy": "NetworkPolicy/orders",
					"service-ro": "Service/orders-ro", "sql-user-replication": "User/orders-replication", "replication": "Replication/orders",
					"tls": "Secret/orders-tls", "tls-ca": "Secret/orders-ca",
				},
				Ready: map[string]string{ //nolint:gosec // Composed resource names, no credential.
					"secret": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_UNSPECIFIED", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED", "pdb": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED",
					"service-ro": "READY_UNSPECIFIED", "sql-user-replication": "READY_UNSPECIFIED", "replication": "READY_UNSPECIFIED",
					"tls": "READY_UNSPECIFIED", "tls-ca": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "Pending", "ready": false, "replicas": float64(0), "endpoint": "orders.team-a.svc.cluster.local:5432"},
				Passwords:  []string{testPassword},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=TRUE/AsRequested", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/AwaitingFirstBackup", "BackupVerified=UNKNOWN/AwaitingFirstVerification"},
				Requires:   []string{"backup-jobs", "backup-volume", "namespace", "verify-jobs"},
			},
		},
		"StorageGrowth": {
			reason: "Growing storage keeps the StatefulSet's immutable claim template and warns that existing volumes are not grown yet.",
			args: args{req: req(xr("orders", `{"type":"postgresql","version":"16","storage":{"size":"50Gi"}}`), map[string]string{
				"secret": secretJSON("pw"), "statefulset": stsJSON(1, 1, "20Gi"),
			}), password: mustNotGenerate},
			want: got{
				Results: []string{"SEVERITY_WARNING: spec.storage.size: existing data volumes stay at 20Gi; growing them to 50Gi is not automated yet (a StatefulSet's volume claim templates are immutable)"},
				Composed: map[string]string{
					"secret": "Secret/orders-credentials", "tls-ca": "Secret/orders-ca", "tls": "Secret/orders-tls", "configmap": "ConfigMap/orders-config", "networkpolicy": "NetworkPolicy/orders",
					"service-headless": "Service/orders-headless", "service": "Service/orders", "statefulset": "StatefulSet/orders", "sql-providerconfig": "ProviderConfig/orders", "sql-user-app": "User/orders-app",
				},
				Ready: map[string]string{
					"secret": "READY_TRUE", "tls-ca": "READY_UNSPECIFIED", "tls": "READY_UNSPECIFIED", "configmap": "READY_UNSPECIFIED", "networkpolicy": "READY_UNSPECIFIED", "service-headless": "READY_UNSPECIFIED",
					"service": "READY_UNSPECIFIED", "statefulset": "READY_TRUE", "sql-providerconfig": "READY_UNSPECIFIED", "sql-user-app": "READY_UNSPECIFIED",
				},
				Status:     map[string]any{"phase": "PartiallyReady", "ready": false, "replicas": float64(1), "endpoint": "orders.team-a.svc.cluster.local:5432"},
				Passwords:  []string{"pw"},
				Conditions: []string{"VersionSupported=TRUE/Supported", "StorageSized=FALSE/GrowthNotAutomated", "Scaled=TRUE/AsRequested", "BackupHealthy=UNKNOWN/BackupsDisabled", "BackupVerified=UNKNOWN/VerificationDisabled"},
			},
		},
	}

	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := New(logging.NewNopLogger(), WithPasswordGenerator(tc.args.password), WithIssuer(fixedIssuer{}), WithClock(func() time.Time { return testNow }))
			rsp, err := f.RunFunction(t.Context(), tc.args.req)
			if err != nil {
				t.Fatalf("%s\nRunFunction(...): unexpected error: %v", tc.reason, err)
			}
			if diff := cmp.Diff(tc.want, summarise(t, rsp)); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestRunFunctionKeepsEarlierReadiness(t *testing.T) {
	r := req(xr("orders", pgDev), nil)
	r.Desired = &fnv1.State{Resources: map[string]*fnv1.Resource{
		"statefulset": {Resource: resource.MustStructJSON(`{"apiVersion":"apps/v1","kind":"StatefulSet"}`), Ready: fnv1.Ready_READY_TRUE},
	}}
	rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	if got := rsp.GetDesired().GetResources()["statefulset"].GetReady(); got != fnv1.Ready_READY_TRUE {
		t.Errorf("RunFunction(...): an earlier step's readiness must be kept: want READY_TRUE, got %s", got)
	}
}

// TestRunFunctionCrossplane1 calls the function as Crossplane 1.x (and
// its beta render) does: with no capabilities advertised. It must ask in
// the deprecated extra_resources, the only field 1.x resolves, and read
// the answer from extra_resources: then it composes what it composes for
// v2 with the same resources in required_resources.
func TestRunFunctionCrossplane1(t *testing.T) {
	run := func(r *fnv1.RunFunctionRequest) *fnv1.RunFunctionResponse {
		t.Helper()
		rsp, err := New(logging.NewNopLogger(), WithPasswordGenerator(func() (string, error) { return testPassword, nil }),
			WithIssuer(fixedIssuer{}), WithClock(func() time.Time { return testNow })).RunFunction(t.Context(), r)
		if err != nil {
			t.Fatal(err)
		}
		return rsp
	}
	v2 := withRequired(req(xr("orders", pgProd), nil), requiredNamespace, namespaceJSON)
	v1 := req(xr("orders", pgProd), nil)
	v1.Meta.Capabilities = nil
	v1.ExtraResources = v2.GetRequiredResources() //nolint:staticcheck // What Crossplane 1.x sends.

	want, got := run(v2), run(v1)
	if len(got.GetRequirements().GetResources()) != 0 {
		t.Errorf("RunFunction(...): Crossplane 1.x never answers Requirements.Resources, got %v", got.GetRequirements().GetResources())
	}
	if diff := cmp.Diff(want.GetRequirements().GetResources(), got.GetRequirements().GetExtraResources(), protocmp.Transform()); diff != "" { //nolint:staticcheck // What Crossplane 1.x reads.
		t.Errorf("RunFunction(...): Crossplane 1.x must be asked in extra_resources what v2 is asked in resources: -want, +got:\n%s", diff)
	}
	if _, ok := got.GetDesired().GetResources()["backup-pvc"]; !ok {
		t.Errorf("RunFunction(...): the Namespace answered in extra_resources must be read: no backup volume composed, got %v", slices.Sorted(maps.Keys(got.GetDesired().GetResources())))
	}
	if diff := cmp.Diff(want.GetDesired(), got.GetDesired(), protocmp.Transform()); diff != "" {
		t.Errorf("RunFunction(...): Crossplane 1.x, with the same resources, must get the same desired state: -v2, +1.x:\n%s", diff)
	}
}

func TestRunFunctionGeneratesStrongPasswords(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), req(xr("orders", pgDev), nil))
		if err != nil {
			t.Fatal(err)
		}
		pw := summarise(t, rsp).Passwords[0]
		raw, err := base64.RawURLEncoding.DecodeString(pw)
		if err != nil || len(raw)*8 < 128 {
			t.Fatalf("GeneratePassword(): want >= 128 random bits, got %q (%d bits, %v)", pw, len(raw)*8, err)
		}
		if seen[pw] {
			t.Fatalf("GeneratePassword(): %q generated twice", pw)
		}
		seen[pw] = true
	}
}

func TestRunFunctionNeverLeaksPassword(t *testing.T) {
	rsp, err := New(logging.NewNopLogger(), WithPasswordGenerator(func() (string, error) { return testPassword, nil })).
		RunFunction(t.Context(), req(xr("orders", myProd), nil))
	if err != nil {
		t.Fatal(err)
	}
	for n, r := range rsp.GetDesired().GetResources() {
		if n == string(rnSecret) {
			continue
		}
		j, _ := r.GetResource().MarshalJSON()
		if strings.Contains(string(j), testPassword) || strings.Contains(string(j), base64.StdEncoding.EncodeToString([]byte(testPassword))) {
			t.Errorf("RunFunction(...): the password appears in %s, outside the Secret", n)
		}
	}
	x, _ := structpb.NewValue(rsp.GetDesired().GetComposite().GetResource().AsMap())
	if j, _ := x.MarshalJSON(); strings.Contains(string(j), testPassword) {
		t.Errorf("RunFunction(...): the password appears in the XR")
	}
}
