package v1_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/crossplane/crossplane-runtime/v2/pkg/xcrd"
	xpv1 "github.com/crossplane/crossplane/apis/v2/apiextensions/v1"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/crdserverscheme"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// The XRDs under test, as Crossplane installs them: the Database's, and the
// legacy XDatabase's whose claim is the DatabaseClaim.
const (
	xrdPath       = "../../package/configuration/xrd.yaml"
	legacyXRDPath = "../../package/configuration-claims/xrd.yaml"
)

// namespace the test Databases are created in.
const namespace = "default"

// Patterns of the schema, as they appear in its errors.
const (
	schedulePattern  = `^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|[0-9*,/?-]+ [0-9*,/?-]+ [0-9*,/?LW-]+ [0-9A-Za-z*,/?-]+ [0-9A-Za-z*,/?L#-]+)$`
	retentionPattern = `^[1-9][0-9]*d$`
)

// notChecked is the apiserver's error when schema errors stop it running the
// CEL rules.
const notChecked = "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"

// databaseAPI is the Database endpoint of a kube-apiserver. It runs the
// apiserver's own code, in the apiserver's order, for a create or update:
//
//  1. decoding the request body: pruning unknown fields, which kubectl's
//     default fieldValidation=Strict turns into an error, then applying the
//     schema's defaults (the apiserver's schemaCoercingDecoder and
//     unstructuredDefaulter, rebuilt here from their exported parts);
//  2. rest.BeforeCreate or rest.BeforeUpdate with the custom resource
//     strategy the apiserver builds for the CRD: OpenAPI schema validation,
//     then CEL validation with the apiserver's per-call and per-request cost
//     limits, with the old object on update so transition rules run.
type databaseAPI struct {
	schema   *structuralschema.Structural
	strategy rest.RESTCreateUpdateStrategy
	kind     string
	// crossplane are the spec fields Crossplane adds to the CRD (a claim's
	// compositeDeletePolicy, an XR's compositionRef...), left out of the
	// stored spec a test compares.
	crossplane []string
}

// newDatabaseAPI builds the Database endpoint from the XRD, the way
// Crossplane and the apiserver would: Crossplane derives the CRD from the
// XRD, the apiserver admits that CRD and then serves Databases from it.
func newDatabaseAPI(t *testing.T) *databaseAPI {
	t.Helper()
	return newAPI(t, compositeResourceCRD(t, xrdPath), nil)
}

// newClaimAPI builds the DatabaseClaim endpoint from the legacy XRD, and
// newLegacyAPI the XDatabase endpoint: the CRDs Crossplane derives for a
// claim and for its cluster-scoped composite resource.
func newClaimAPI(t *testing.T) *databaseAPI {
	t.Helper()
	crd, err := xcrd.ForCompositeResourceClaim(legacyXRD(t))
	if err != nil {
		t.Fatalf("cannot derive the claim CRD from the legacy XRD: %v", err)
	}
	return newAPI(t, crd, xcrd.GetPropFields(xcrd.CompositeResourceClaimSpecProps(nil)))
}

func newLegacyAPI(t *testing.T) *databaseAPI {
	t.Helper()
	return newAPI(t, compositeResourceCRD(t, legacyXRDPath), xcrd.GetPropFields(xcrd.CompositeResourceSpecProps(xpv1.CompositeResourceScopeLegacyCluster, nil)))
}

func newAPI(t *testing.T, crd *extv1.CustomResourceDefinition, crossplane []string) *databaseAPI {
	t.Helper()

	crd = admitCRD(t, crd)

	version := v1.Version
	val, err := apihelpers.GetSchemaForVersion(crd, version)
	if err != nil || val == nil {
		t.Fatalf("CRD has no schema for version %q: %v", version, err)
	}
	in := &apiextensions.CustomResourceValidation{}
	if err := extv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(val, in, nil); err != nil {
		t.Fatalf("cannot convert the CRD's schema to the internal version: %v", err)
	}

	// The structural schema drives pruning, defaulting and CEL. As in the
	// apiserver's crdHandler, defaults that pruning would remove are dropped.
	s, err := structuralschema.NewStructural(in.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("CRD schema is not structural: %v", err)
	}
	s = s.DeepCopy()
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		t.Fatalf("cannot prune the CRD's defaults: %v", err)
	}

	validator, _, err := apiservervalidation.NewSchemaValidator(in.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("cannot build the OpenAPI schema validator: %v", err)
	}

	sub, err := apihelpers.GetSubresourcesForVersion(crd, version)
	if err != nil {
		t.Fatalf("cannot get the CRD's subresources: %v", err)
	}
	var status *apiextensions.CustomResourceSubresourceStatus
	var statusValidator apiservervalidation.SchemaValidator
	if sub != nil && sub.Status != nil {
		status = &apiextensions.CustomResourceSubresourceStatus{}
		statusSchema := in.OpenAPIV3Schema.Properties["status"]
		if statusValidator, _, err = apiservervalidation.NewSchemaValidator(&statusSchema); err != nil {
			t.Fatalf("cannot build the status schema validator: %v", err)
		}
	}
	var scale *apiextensions.CustomResourceSubresourceScale
	if sub != nil && sub.Scale != nil {
		scale = &apiextensions.CustomResourceSubresourceScale{}
		if err := extv1.Convert_v1_CustomResourceSubresourceScale_To_apiextensions_CustomResourceSubresourceScale(sub.Scale, scale, nil); err != nil {
			t.Fatalf("cannot convert the CRD's scale subresource: %v", err)
		}
	}

	var selectable []extv1.SelectableField
	for _, v := range crd.Spec.Versions {
		if v.Name == version {
			selectable = v.SelectableFields
		}
	}

	// NewStrategy compiles the CEL rules with celconfig.PerCallLimit and its
	// Validate and ValidateUpdate run them with celconfig.RuntimeCELCostBudget.
	strategy := customresource.NewStrategy(
		crdserverscheme.NewUnstructuredObjectTyper(),
		crd.Spec.Scope == extv1.NamespaceScoped,
		v1.GroupVersionKind.GroupVersion().WithKind(crd.Spec.Names.Kind),
		validator,
		statusValidator,
		s,
		status,
		scale,
		selectable,
	)
	return &databaseAPI{schema: s, strategy: strategy, kind: crd.Spec.Names.Kind, crossplane: crossplane}
}

// compositeResourceCRD is the CRD Crossplane creates for the XRD in path.
func compositeResourceCRD(t *testing.T, path string) *extv1.CustomResourceDefinition {
	t.Helper()
	xrd := readXRD(t, path)
	crd, err := xcrd.ForCompositeResource(xrd)
	if err != nil {
		t.Fatalf("cannot derive the CRD from the XRD: %v", err)
	}
	return crd
}

// legacyXRD is the legacy XRD, as Crossplane reads it.
func legacyXRD(t *testing.T) *xpv1.CompositeResourceDefinition {
	t.Helper()
	return readXRD(t, legacyXRDPath)
}

// readXRD decodes the XRD in path, as Crossplane would default it.
func readXRD(t *testing.T, path string) *xpv1.CompositeResourceDefinition {
	t.Helper()

	b, err := os.ReadFile(path) //nolint:gosec // The repository's XRDs.
	if err != nil {
		t.Fatalf("cannot read the XRD: %v", err)
	}
	// Crossplane's v1 XRD type has every field of the v2 XRD. Strict
	// decoding proves nothing in the file is silently dropped.
	xrd := &xpv1.CompositeResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, xrd); err != nil {
		t.Fatalf("cannot decode the XRD: %v", err)
	}
	if xrd.Spec.Scope == nil {
		if xrd.APIVersion == xpv1.SchemeGroupVersion.String() {
			// A v1 XRD is LegacyCluster unless it says otherwise.
			xrd.Spec.Scope = ptr.To(xpv1.CompositeResourceScopeLegacyCluster)
		} else {
			// A v2 XRD is namespaced unless it says otherwise.
			xrd.Spec.Scope = ptr.To(xpv1.CompositeResourceScopeNamespaced)
		}
	}
	// Crossplane owns the CRD through the XRD's UID, which the apiserver set
	// when the XRD was created.
	xrd.SetUID(types.UID("6f0c1a4e-2b7d-4e59-9a53-2c8d3f1e7b10"))
	return xrd
}

// admitCRD creates the CRD the way the apiserver does: defaulting, conversion
// to the internal version, then rest.BeforeCreate with the CRD strategy, whose
// validation requires a structural schema and pruned defaults, compiles every
// CEL rule and rejects rules whose estimated cost is too high. It returns the
// CRD as the apiserver stores and serves it.
func admitCRD(t *testing.T, crd *extv1.CustomResourceDefinition) *extv1.CustomResourceDefinition {
	t.Helper()

	scheme := runtime.NewScheme()
	install.Install(scheme)

	scheme.Default(crd)
	in := &apiextensions.CustomResourceDefinition{}
	if err := scheme.Convert(crd, in, nil); err != nil {
		t.Fatalf("cannot convert the CRD to the internal version: %v", err)
	}
	rest.FillObjectMetaSystemFields(in)
	ctx := genericapirequest.WithNamespace(t.Context(), metav1.NamespaceNone)
	if err := rest.BeforeCreate(customresourcedefinition.NewStrategy(scheme), ctx, in); err != nil {
		t.Fatalf("the apiserver would reject the XRD's CRD:\n%s", strings.Join(errorStrings(err), "\n"))
	}

	out := &extv1.CustomResourceDefinition{}
	if err := scheme.Convert(in, out, nil); err != nil {
		t.Fatalf("cannot convert the admitted CRD to v1: %v", err)
	}
	return out
}

// decode reads a request body the way the apiserver's decoder does for
// kubectl's default fieldValidation=Strict: unknown fields are an error,
// nulls without defaults are dropped, and defaults are applied. The body may
// leave out apiVersion, kind and metadata.name; decode fills them in.
func (a *databaseAPI) decode(body string) (*unstructured.Unstructured, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(body), &m); err != nil {
		return nil, fmt.Errorf("test body is not a YAML object: %w", err)
	}
	if _, ok := m["apiVersion"]; !ok {
		m["apiVersion"] = v1.GroupVersionKind.GroupVersion().String()
	}
	if _, ok := m["kind"]; !ok {
		m["kind"] = a.kind
	}
	md, _ := m["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	if _, ok := md["name"]; !ok {
		md["name"] = "orders"
	}
	m["metadata"] = md
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("cannot marshal test body: %w", err)
	}
	// The apiserver's JSON decoding, which reads integers as int64.
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return nil, fmt.Errorf("test body is not an object: %w", err)
	}

	// As unstructuredSchemaCoercer.apply.
	om, _, unknown, err := schemaobjectmeta.GetObjectMetaWithOptions(u.Object, schemaobjectmeta.ObjectMetaOptions{ReturnUnknownFieldPaths: true})
	if err != nil {
		return nil, err
	}
	apiVersion, kind := u.GetAPIVersion(), u.GetKind()
	unknown = append(unknown, structuralpruning.PruneWithOptions(u.Object, a.schema, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})...)
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, a.schema)
	ferr, paths := schemaobjectmeta.CoerceWithOptions(nil, u.Object, a.schema, false, schemaobjectmeta.CoerceOptions{ReturnUnknownFieldPaths: true})
	if ferr != nil {
		return nil, ferr
	}
	unknown = append(unknown, paths...)
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	if err := schemaobjectmeta.SetObjectMeta(u.Object, om); err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		errs := make([]error, 0, len(unknown))
		for _, p := range unknown {
			errs = append(errs, fmt.Errorf("unknown field %q", p))
		}
		return nil, runtime.NewStrictDecodingError(errs)
	}

	// As unstructuredDefaulter.
	structuraldefaulting.Default(u.Object, a.schema)
	return u, nil
}

// create admits a new Database and returns it as it would be stored.
func (a *databaseAPI) create(ctx context.Context, body string) (*unstructured.Unstructured, error) {
	u, err := a.decode(body)
	if err != nil {
		return nil, err
	}
	rest.FillObjectMetaSystemFields(u)
	if err := rest.BeforeCreate(a.strategy, genericapirequest.WithNamespace(ctx, namespace), u); err != nil {
		return nil, err
	}
	u.SetResourceVersion("1")
	return u, nil
}

// update replaces the stored Database old with body, as kubectl apply or
// edit would, and returns the updated Database.
func (a *databaseAPI) update(ctx context.Context, old *unstructured.Unstructured, body string) (*unstructured.Unstructured, error) {
	u, err := a.decode(body)
	if err != nil {
		return nil, err
	}
	// Clients update the object they read.
	u.SetResourceVersion(old.GetResourceVersion())
	if err := rest.BeforeUpdate(a.strategy, genericapirequest.WithNamespace(ctx, namespace), u, old); err != nil {
		return nil, err
	}
	return u, nil
}

// errorStrings are the errors the apiserver would return, one per field.
func errorStrings(err error) []string {
	if err == nil {
		return nil
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details == nil || len(se.ErrStatus.Details.Causes) == 0 {
		return []string{err.Error()}
	}
	out := make([]string, 0, len(se.ErrStatus.Details.Causes))
	for _, c := range se.ErrStatus.Details.Causes {
		out = append(out, c.Field+": "+c.Message)
	}
	return out
}

// storedSpec is the spec of u, with numbers as yaml.Unmarshal reads them.
func storedSpec(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	j, err := json.Marshal(u.Object["spec"])
	if err != nil {
		t.Fatalf("cannot marshal the stored spec: %v", err)
	}
	s := map[string]any{}
	if err := yaml.Unmarshal(j, &s); err != nil {
		t.Fatalf("cannot unmarshal the stored spec: %v", err)
	}
	return s
}

// TestDatabaseValidation creates and updates Databases through the apiserver
// code that serves the XRD's CRD, and checks what the apiserver would store
// or return. Every case runs on the Database, the DatabaseClaim and the
// XDatabase: the two XRDs are generated from the same Go types, so the same
// bodies must be refused with the same errors and stored with the same
// defaults.
func TestDatabaseValidation(t *testing.T) {
	apis := map[string]*databaseAPI{
		"Database":      newDatabaseAPI(t),
		"DatabaseClaim": newClaimAPI(t),
		"XDatabase":     newLegacyAPI(t),
	}

	cases := map[string]validationCase{
		// Accepted creates: every engine and environment, every version.
		"MySQL80Development": {
			reason: "MySQL 8.0 is still accepted, in development.",
			new: `
spec:
  type: mysql
  version: "8.0"
  environment: development
  storage: {size: 10Gi}`,
		},
		"MySQL84Staging": {
			reason: "MySQL 8.4 in staging needs nothing beyond the minimum.",
			new: `
spec:
  type: mysql
  version: "8.4"
  environment: staging
  storage: {size: 10Gi}`,
		},
		"MySQL84Production": {
			reason: "Production MySQL with two replicas and no resources uses the production profile.",
			new: `
spec:
  type: mysql
  version: "8.4"
  environment: production
  replicas: 2
  storage: {size: 100Gi, class: fast}`,
		},
		"PostgreSQL14Development": {
			reason: "PostgreSQL 14 is the oldest supported version.",
			new: `
spec:
  type: postgresql
  version: "14"
  environment: development
  storage: {size: 10Gi}`,
		},
		"PostgreSQL15Staging": {
			reason: "PostgreSQL 15 in staging.",
			new: `
spec:
  type: postgresql
  version: "15"
  environment: staging
  replicas: 2
  storage: {size: 10Gi}`,
		},
		"PostgreSQL16Production": {
			reason: "Production PostgreSQL with three replicas.",
			new: `
spec:
  type: postgresql
  version: "16"
  environment: production
  replicas: 3
  storage: {size: 50Gi}`,
		},
		"PostgreSQL17Staging": {
			reason: "PostgreSQL 17 in staging.",
			new: `
spec:
  type: postgresql
  version: "17"
  environment: staging
  storage: {size: 1Ti}`,
		},
		"PostgreSQL18Development": {
			reason: "PostgreSQL 18 is the newest supported version.",
			new: `
spec:
  type: postgresql
  version: "18"
  storage: {size: 512Mi}`,
		},
		"MinimalDatabaseIsDefaulted": {
			reason: "A Database that sets only what it must gets every default the schema declares.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			wantSpec: `
type: postgresql
version: "16"
replicas: 1
environment: development
storage: {size: 10Gi}
backup: {enabled: false, schedule: "0 2 * * *", retention: 7d}
monitoring: {enabled: false, metrics: false, logging: false}`,
		},
		"NullsAreDefaulted": {
			reason: "Explicit nulls for defaulted fields get the defaults, as if they were left out.",
			new: `
spec:
  type: mysql
  version: "8.4"
  replicas: null
  environment: null
  backup: null
  monitoring: {metrics: null}
  storage: {size: 10Gi}`,
			wantSpec: `
type: mysql
version: "8.4"
replicas: 1
environment: development
storage: {size: 10Gi}
backup: {enabled: false, schedule: "0 2 * * *", retention: 7d}
monitoring: {enabled: false, metrics: false, logging: false}`,
		},
		"ProductionWithLimits": {
			reason: "Production may override resources when it sets limits.",
			new: `
spec:
  type: postgresql
  version: "17"
  environment: production
  replicas: 2
  resources:
    requests: {cpu: 500m, memory: 1Gi}
    limits: {cpu: "2", memory: 4Gi}
  storage: {size: 20Gi}`,
		},
		"ProductionWithOnlyAMemoryLimit": {
			reason: "One limit is enough: the rule is that production is not unbounded.",
			new: `
spec:
  type: mysql
  version: "8.4"
  environment: production
  replicas: 2
  resources:
    limits: {memory: 4Gi}
  storage: {size: 20Gi}`,
		},
		"DevelopmentWithRequestsOnly": {
			reason: "Outside production, requests without limits are fine.",
			new: `
spec:
  type: mysql
  version: "8.4"
  resources:
    requests: {cpu: 250m, memory: 512Mi}
  storage: {size: 20Gi}`,
		},
		"BackupEnabledWithDefaults": {
			reason: "Enabling backups alone gets the default schedule and retention.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  backup: {enabled: true}`,
			wantSpec: `
type: postgresql
version: "16"
replicas: 1
environment: development
storage: {size: 10Gi}
backup: {enabled: true, schedule: "0 2 * * *", retention: 7d}
monitoring: {enabled: false, metrics: false, logging: false}`,
		},
		"BackupDescriptorSchedule": {
			reason: "Cron descriptors such as @daily are schedules too.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  backup: {enabled: true, schedule: "@daily", retention: 30d}`,
		},
		"BackupCronSchedule": {
			reason: "A five-field cron expression with ranges, steps and names is a schedule.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  backup: {enabled: true, schedule: "*/15 1-5 * * MON-FRI", retention: 1d}`,
		},

		"CreateWithRestore": {
			reason: "A Database may start from another's backup; the backup defaults to the latest.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  restore: {from: orders-old}`,
		},
		"CreateWithRestoreOfOneFile": {
			reason: "A backup may be named by its file.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  restore: {from: orders-old, backup: app-20261122T020000Z.sql.gz}`,
		},
		"NetworkFromSelectors": {
			reason: "spec.network.from takes NetworkPolicy peers: pod, namespace or both selectors.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  network:
    from:
    - podSelector: {matchLabels: {app: orders-api}}
    - namespaceSelector: {matchLabels: {team: analytics}}
      podSelector: {matchExpressions: [{key: app, operator: In, values: [reports]}]}`,
		},
		"NetworkPeerWithoutSelector": {
			reason: "A peer with no selector would admit no one: refused with the rule's message.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  network:
    from: [{}]`,
			wantErr: []string{
				"spec.network.from[0]: Invalid value: spec.network.from: set namespaceSelector, podSelector or both",
			},
		},
		"CreateWithRestoreFromTheBucket": {
			reason: "A Database may start from backups in the bucket alone, of a Database that is gone.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  restore: {fromBackup: {database: orders-gone}, backup: app-20261122T020000Z.sql.gz}`,
		},
		"RestoreFromBoth": {
			reason: "from and fromBackup are two sources: refused at apply time, naming the rule.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  restore: {from: orders-old, fromBackup: {database: orders-old}}`,
			wantErr: []string{
				"spec.restore: Invalid value: spec.restore: set exactly one of from (a Database that exists) and fromBackup (backups in the bucket)",
			},
		},
		"RestoreFromNeither": {
			reason: "A restore with no source is refused at apply time.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  restore: {backup: latest}`,
			wantErr: []string{
				"spec.restore: Invalid value: spec.restore: set exactly one of from (a Database that exists) and fromBackup (backups in the bucket)",
			},
		},
		"RestoreFromBackupOfAPath": {
			reason: "fromBackup.database is a Database name, never a path into the bucket.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  restore: {fromBackup: {database: ../team-b/orders}}`,
			wantErr: []string{
				`spec.restore.fromBackup.database: Invalid value: "../team-b/orders": spec.restore.fromBackup.database in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'`,
			},
		},
		"RestoreOfABadFileName": {
			reason: "Only latest or a backup file name; no paths.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  restore: {from: orders-old, backup: ../../etc/passwd}`,
			wantErr: []string{
				`spec.restore.backup: Invalid value: "../../etc/passwd": spec.restore.backup in body should match '^(latest|[A-Za-z0-9_]+-[0-9]{8}T[0-9]{6}Z\.sql\.gz)$'`,
			},
		},

		// Rejected creates. Each error names the field and carries the rule's
		// message.
		"ProductionWithOneReplica": {
			reason: "Production needs at least two replicas.",
			new: `
spec:
  type: postgresql
  version: "16"
  environment: production
  replicas: 1
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.replicas: Invalid value: spec.replicas: production databases need at least 2 replicas",
			},
		},
		"ProductionWithDefaultedReplicas": {
			reason: "The replicas default of 1 is not enough for production: defaults are applied before the rules run.",
			new: `
spec:
  type: mysql
  version: "8.4"
  environment: production
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.replicas: Invalid value: spec.replicas: production databases need at least 2 replicas",
			},
		},
		"ProductionWithRequestsButNoLimits": {
			reason: "Production that overrides resources must set limits.",
			new: `
spec:
  type: postgresql
  version: "16"
  environment: production
  replicas: 2
  resources:
    requests: {cpu: "1", memory: 2Gi}
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.resources: Invalid value: spec.resources.limits: production databases that set resources must set limits",
			},
		},
		"ProductionWithEmptyLimits": {
			reason: "An empty limits object sets no limits.",
			new: `
spec:
  type: postgresql
  version: "16"
  environment: production
  replicas: 2
  resources:
    limits: {}
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.resources: Invalid value: spec.resources.limits: production databases that set resources must set limits",
			},
		},
		"UnknownType": {
			reason: "Only mysql and postgresql are engines. The enum error blocks the CEL rules, as in the apiserver.",
			new: `
spec:
  type: mongodb
  version: "7.0"
  storage: {size: 10Gi}`,
			wantErr: []string{
				`spec.type: Unsupported value: "mongodb": supported values: "mysql", "postgresql"`,
				notChecked,
			},
		},
		"MySQL90": {
			reason: "MySQL 9.0 is not supported.",
			new: `
spec:
  type: mysql
  version: "9.0"
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.version: Invalid value: spec.version: mysql supports versions 8.0 and 8.4",
			},
		},
		"PostgreSQL13": {
			reason: "PostgreSQL 13 is past its end of life.",
			new: `
spec:
  type: postgresql
  version: "13"
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.version: Invalid value: spec.version: postgresql supports versions 14, 15, 16, 17 and 18",
			},
		},
		"PostgreSQLWithAMySQLVersion": {
			reason: "Versions are per engine: 8.4 is a MySQL version.",
			new: `
spec:
  type: postgresql
  version: "8.4"
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.version: Invalid value: spec.version: postgresql supports versions 14, 15, 16, 17 and 18",
			},
		},
		"ZeroReplicas": {
			reason: "At least one replica.",
			new: `
spec:
  type: mysql
  version: "8.4"
  replicas: 0
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
			},
		},
		"ElevenReplicas": {
			reason: "At most ten replicas.",
			new: `
spec:
  type: mysql
  version: "8.4"
  replicas: 11
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
			},
		},
		"AbbreviatedEnvironment": {
			reason: "Environments are spelled out: prod is not production.",
			new: `
spec:
  type: mysql
  version: "8.4"
  environment: prod
  storage: {size: 10Gi}`,
			wantErr: []string{
				`spec.environment: Unsupported value: "prod": supported values: "development", "staging", "production"`,
				notChecked,
			},
		},
		"StorageSizeNotAQuantity": {
			reason: "Storage size must be a quantity.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: lots}`,
			wantErr: []string{
				`spec.storage.size: Invalid value: "lots": spec.storage.size must be a positive quantity such as 20Gi`,
			},
		},
		"StorageSizeNegative": {
			reason: "Storage size must be positive.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: -1Gi}`,
			wantErr: []string{
				`spec.storage.size: Invalid value: "-1Gi": spec.storage.size must be a positive quantity such as 20Gi`,
			},
		},
		"StorageSizeZero": {
			reason: "A zero storage size is not positive.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: "0"}`,
			wantErr: []string{
				`spec.storage.size: Invalid value: "0": spec.storage.size must be a positive quantity such as 20Gi`,
			},
		},
		"StorageSizeMissing": {
			reason: "Storage size is required.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {class: fast}`,
			wantErr: []string{
				"spec.storage.size: Required value",
				notChecked,
			},
		},
		"VersionMissing": {
			reason: "Version is required: there is no default engine version.",
			new: `
spec:
  type: postgresql
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.version: Required value",
				notChecked,
			},
		},
		"UnknownField": {
			reason: "A misspelt field is an error under kubectl's default fieldValidation=Strict, not silently pruned.",
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi, storageClass: fast}`,
			wantErr: []string{
				`strict decoding error: unknown field "spec.storage.storageClass"`,
			},
		},
		"BackupScheduleInWords": {
			reason: "A schedule must be a cron expression or descriptor.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  backup: {enabled: true, schedule: every day}`,
			wantErr: []string{
				`spec.backup.schedule: Invalid value: "every day": spec.backup.schedule in body should match '` + schedulePattern + `'`,
			},
		},
		"BackupRetentionWithoutUnit": {
			reason: "Retention is a number of days with a d suffix.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  backup: {enabled: true, retention: "7"}`,
			wantErr: []string{
				`spec.backup.retention: Invalid value: "7": spec.backup.retention in body should match '` + retentionPattern + `'`,
			},
		},
		"BackupRetentionZeroDays": {
			reason: "Zero days would keep nothing.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  backup: {retention: 0d}`,
			wantErr: []string{
				`spec.backup.retention: Invalid value: "0d": spec.backup.retention in body should match '` + retentionPattern + `'`,
			},
		},
		"BackupRetentionInHours": {
			reason: "Retention is in days, not hours.",
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}
  backup: {enabled: true, retention: 7h}`,
			wantErr: []string{
				`spec.backup.retention: Invalid value: "7h": spec.backup.retention in body should match '` + retentionPattern + `'`,
			},
		},
		"CPUNotAQuantity": {
			reason: "CPU must be a quantity.",
			new: `
spec:
  type: postgresql
  version: "16"
  resources:
    requests: {cpu: two cores}
  storage: {size: 10Gi}`,
			wantErr: []string{
				`spec.resources.requests.cpu: Invalid value: "two cores": cpu must be a positive quantity such as 500m`,
			},
		},
		"NegativeCPUAndZeroMemory": {
			reason: "CPU and memory must be positive.",
			new: `
spec:
  type: postgresql
  version: "16"
  resources:
    limits: {cpu: "-1", memory: "0"}
  storage: {size: 10Gi}`,
			wantErr: []string{
				`spec.resources.limits.cpu: Invalid value: "-1": cpu must be a positive quantity such as 500m`,
				`spec.resources.limits.memory: Invalid value: "0": memory must be a positive quantity such as 1Gi`,
			},
		},
		"RequestsAboveLimits": {
			reason: "A container may not request more than its limit; the StatefulSet would be rejected later.",
			new: `
spec:
  type: postgresql
  version: "16"
  resources:
    requests: {cpu: "4", memory: 8Gi}
    limits: {cpu: 4000m, memory: 4Gi}
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.resources.requests.memory: Invalid value: spec.resources.requests.memory: must not be more than limits.memory",
			},
		},

		// Updates. The old Database is created first and must be valid.
		"UpdateUnchanged": {
			reason: "Applying the same Database again is fine.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi, class: fast}`,
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi, class: fast}`,
		},
		"UpdateUnrelatedFields": {
			reason: "Labels, monitoring, backups and replicas may change; transition rules only guard their own fields.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi, class: fast}`,
			new: `
metadata:
  labels: {team: orders}
spec:
  type: postgresql
  version: "16"
  replicas: 3
  storage: {size: 10Gi, class: fast}
  backup: {enabled: true, schedule: "@hourly"}
  monitoring: {enabled: true, metrics: true}`,
			wantSpec: `
type: postgresql
version: "16"
replicas: 3
environment: development
storage: {size: 10Gi, class: fast}
backup: {enabled: true, schedule: "@hourly", retention: 7d}
monitoring: {enabled: true, metrics: true, logging: false}`,
		},
		"UpdateStorageGrows": {
			reason: "Storage may grow.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 20Gi}`,
		},
		"UpdateStorageRespelt": {
			reason: "Sizes are compared as quantities: 1Gi and 1024Mi are the same size.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 1Gi}`,
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 1024Mi}`,
		},
		"UpdateToProductionWithDefaultedReplicas": {
			reason: "Promoting to production without raising replicas is rejected on update too.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: mysql
  version: "8.4"
  environment: production
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.replicas: Invalid value: spec.replicas: production databases need at least 2 replicas",
			},
		},
		"UpdateAddsRestore": {
			reason: "Restoring into a running Database would load over its data: spec.restore is for creation only.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}
  restore: {from: orders-old}`,
			wantErr: []string{
				"spec.restore: Invalid value: spec.restore can only be set when a Database is created",
			},
		},
		"UpdateMySQLUpgrade": {
			reason: "MySQL upgrades from 8.0 to 8.4 in place.",
			old: `
spec:
  type: mysql
  version: "8.0"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}`,
		},
		"UpdateMySQLDowngrade": {
			reason: "MySQL cannot downgrade from 8.4 to 8.0.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: mysql
  version: "8.0"
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.version: Invalid value: spec.version: MySQL cannot be downgraded from 8.4 to 8.0",
			},
		},
		"UpdatePostgreSQLMajor": {
			reason: "A PostgreSQL major version cannot change in place: the new server would refuse the old data directory.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: postgresql
  version: "17"
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.version: Invalid value: spec.version: a PostgreSQL major version cannot change in place (its data directory format differs): restore a backup into a new Database",
			},
		},
		"UpdateTypeChange": {
			reason: "The engine is immutable.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			wantErr: []string{
				`spec.type: Invalid value: "postgresql": spec.type is immutable`,
			},
		},
		"UpdateStorageShrinks": {
			reason: "Storage may not shrink.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 20Gi}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			wantErr: []string{
				`spec.storage.size: Invalid value: "10Gi": spec.storage.size may grow but never shrink`,
			},
		},
		"UpdateStorageClassChange": {
			reason: "The storage class is immutable.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi, class: fast}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi, class: slow}`,
			wantErr: []string{
				"spec.storage: Invalid value: spec.storage.class is immutable",
			},
		},
		"UpdateStorageClassSetFromUnset": {
			reason: "A Database that started on the default class cannot name a class later.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi, class: fast}`,
			wantErr: []string{
				"spec.storage: Invalid value: spec.storage.class is immutable",
			},
		},
		"UpdateStorageClassUnset": {
			reason: "Nor can it drop its class for the default.",
			old: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi, class: fast}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 10Gi}`,
			wantErr: []string{
				"spec.storage: Invalid value: spec.storage.class is immutable",
			},
		},
		"UpdateEverythingImmutable": {
			reason: "Every transition rule reports at once.",
			old: `
spec:
  type: mysql
  version: "8.4"
  storage: {size: 20Gi, class: fast}`,
			new: `
spec:
  type: postgresql
  version: "16"
  storage: {size: 5Gi, class: slow}`,
			wantErr: []string{
				`spec.type: Invalid value: "postgresql": spec.type is immutable`,
				`spec.storage.size: Invalid value: "5Gi": spec.storage.size may grow but never shrink`,
				"spec.storage: Invalid value: spec.storage.class is immutable",
			},
		},
	}

	for kind, api := range apis {
		for name, tc := range cases {
			t.Run(kind+"/"+name, func(t *testing.T) {
				testValidation(t, api, tc)
			})
		}
	}
}

// validationCase is one create or update of TestDatabaseValidation.
type validationCase struct {
	reason string
	// old is the stored Database for an update; empty for a create.
	old string
	// new is the body of the create or update. It may leave out
	// apiVersion, kind and metadata.name.
	new string
	// wantErr is every error the apiserver returns, one per field.
	wantErr []string
	// wantSpec, if set, is the spec the apiserver stores, less the fields
	// Crossplane adds.
	wantSpec string
}

// testValidation runs one case of TestDatabaseValidation on one API.
func testValidation(t *testing.T, api *databaseAPI, tc validationCase) {
	t.Helper()
	ctx := t.Context()

	var got *unstructured.Unstructured
	var err error
	if tc.old == "" {
		got, err = api.create(ctx, tc.new)
	} else {
		old, oerr := api.create(ctx, tc.old)
		if oerr != nil {
			t.Fatalf("%s\ncreate(old): the stored %s must be valid: %v", tc.reason, api.kind, oerr)
		}
		got, err = api.update(ctx, old, tc.new)
	}

	// The apiserver reports schema errors in no particular order.
	if diff := cmp.Diff(tc.wantErr, errorStrings(err), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("%s\nValidate(...): -want, +got:\n%s", tc.reason, diff)
	}
	if tc.wantSpec == "" || err != nil {
		return
	}
	want := map[string]any{}
	if err := yaml.Unmarshal([]byte(tc.wantSpec), &want); err != nil {
		t.Fatalf("want.spec is not YAML: %v", err)
	}
	spec := storedSpec(t, got)
	for _, f := range api.crossplane {
		delete(spec, f)
	}
	if diff := cmp.Diff(want, spec); diff != "" {
		t.Errorf("%s\nValidate(...): -want, +got:\n%s", tc.reason, diff)
	}
}
