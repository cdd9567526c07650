package v1alpha1_test

import (
	stdbufio "bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/install"
	extv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apiextensions-apiserver/pkg/crdserverscheme"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresource"
	"k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"sigs.k8s.io/yaml"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// The generated CRDs, as the provider package ships them.
const crdDir = "../../../package/provider/crds"

// An api is one kind's endpoint of a kube-apiserver, built from its CRD with
// the apiserver's own code: the CRD is admitted (structural schema, CEL
// rules compiled and costed), then objects are pruned with unknown fields
// refused (kubectl's fieldValidation=Strict), defaulted, and validated by
// the OpenAPI schema and CEL rules, with the old object on update.
type api struct {
	gvk      schema.GroupVersionKind
	schema   *structuralschema.Structural
	strategy rest.RESTCreateUpdateStrategy
}

func newAPI(t *testing.T, file string, gvk schema.GroupVersionKind) *api {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(crdDir, file)) //nolint:gosec // The generated CRDs.
	if err != nil {
		t.Fatal(err)
	}
	crd := &extv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		t.Fatalf("cannot decode %s: %v", file, err)
	}

	scheme := runtime.NewScheme()
	install.Install(scheme)
	scheme.Default(crd)
	in := &apiextensions.CustomResourceDefinition{}
	if err := scheme.Convert(crd, in, nil); err != nil {
		t.Fatal(err)
	}
	rest.FillObjectMetaSystemFields(in)
	ctx := genericapirequest.WithNamespace(t.Context(), metav1.NamespaceNone)
	if err := rest.BeforeCreate(customresourcedefinition.NewStrategy(scheme), ctx, in); err != nil {
		t.Fatalf("the apiserver would reject %s: %v", file, err)
	}

	val, err := apihelpers.GetSchemaForVersion(crd, gvk.Version)
	if err != nil || val == nil {
		t.Fatalf("%s has no schema for %s: %v", file, gvk.Version, err)
	}
	v := &apiextensions.CustomResourceValidation{}
	if err := extv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(val, v, nil); err != nil {
		t.Fatal(err)
	}
	s, err := structuralschema.NewStructural(v.OpenAPIV3Schema)
	if err != nil {
		t.Fatalf("%s is not structural: %v", file, err)
	}
	if err := structuraldefaulting.PruneDefaults(s); err != nil {
		t.Fatal(err)
	}
	validator, _, err := apiservervalidation.NewSchemaValidator(v.OpenAPIV3Schema)
	if err != nil {
		t.Fatal(err)
	}
	var status *apiextensions.CustomResourceSubresourceStatus
	var statusValidator apiservervalidation.SchemaValidator
	if sub, _ := apihelpers.GetSubresourcesForVersion(crd, gvk.Version); sub != nil && sub.Status != nil {
		status = &apiextensions.CustomResourceSubresourceStatus{}
		st := v.OpenAPIV3Schema.Properties["status"]
		if statusValidator, _, err = apiservervalidation.NewSchemaValidator(&st); err != nil {
			t.Fatal(err)
		}
	}
	strategy := customresource.NewStrategy(crdserverscheme.NewUnstructuredObjectTyper(),
		crd.Spec.Scope == extv1.NamespaceScoped, gvk, validator, statusValidator, s, status, nil, nil)
	return &api{gvk: gvk, schema: s, strategy: strategy}
}

// decode reads body as the apiserver does, refusing unknown fields, and
// applies defaults.
func (a *api) decode(body string) (*unstructured.Unstructured, error) {
	j, err := yaml.YAMLToJSON([]byte(body))
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		return nil, err
	}
	apiVersion, kind := u.GetAPIVersion(), u.GetKind()
	unknown := structuralpruning.PruneWithOptions(u.Object, a.schema, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	if len(unknown) > 0 {
		return nil, errors.New("unknown fields: " + strings.Join(unknown, ", "))
	}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	structuraldefaulting.Default(u.Object, a.schema)
	return u, nil
}

func (a *api) create(t *testing.T, body string) (*unstructured.Unstructured, error) {
	t.Helper()
	u, err := a.decode(body)
	if err != nil {
		return nil, err
	}
	rest.FillObjectMetaSystemFields(u)
	ctx := genericapirequest.WithNamespace(t.Context(), "team-a")
	if err := rest.BeforeCreate(a.strategy, ctx, u); err != nil {
		return nil, err
	}
	u.SetResourceVersion("1")
	return u, nil
}

func (a *api) update(t *testing.T, old *unstructured.Unstructured, body string) error {
	t.Helper()
	u, err := a.decode(body)
	if err != nil {
		return err
	}
	u.SetResourceVersion(old.GetResourceVersion())
	return rest.BeforeUpdate(a.strategy, genericapirequest.WithNamespace(t.Context(), "team-a"), u, old)
}

func causes(err error) []string {
	if err == nil {
		return nil
	}
	var se *apierrors.StatusError
	if !errors.As(err, &se) || se.ErrStatus.Details == nil {
		return []string{err.Error()}
	}
	var out []string
	for _, c := range se.ErrStatus.Details.Causes {
		out = append(out, c.Field+": "+c.Message)
	}
	return out
}

const user = `apiVersion: sql.database.example.com/v1alpha1
kind: User
metadata: {name: orders-app, namespace: team-a}
spec:
  forProvider: {database: app}
  writeConnectionSecretToRef: {name: orders-app-db}
`

func TestUserDefaults(t *testing.T) {
	a := newAPI(t, "sql.database.example.com_users.yaml", v1alpha1.UserGroupVersionKind)
	u, err := a.create(t, user)
	if err != nil {
		t.Fatalf("a minimal User is admitted: %v", causes(err))
	}
	want := map[string]any{
		"forProvider":                map[string]any{"database": "app", "privileges": "readWrite"},
		"providerConfigRef":          map[string]any{"kind": "ProviderConfig", "name": "default"},
		"managementPolicies":         []any{"*"},
		"writeConnectionSecretToRef": map[string]any{"name": "orders-app-db"},
	}
	if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
		t.Errorf("a User defaults to readWrite, the ProviderConfig named default in its namespace, and every management policy: -want, +got:\n%s", diff)
	}
}

func TestUserValidation(t *testing.T) {
	a := newAPI(t, "sql.database.example.com_users.yaml", v1alpha1.UserGroupVersionKind)
	cases := map[string]struct {
		reason string
		body   string
		want   []string
	}{
		"ClusterProviderConfig": {
			reason: "Only the namespaced ProviderConfig exists.",
			body:   user + "  providerConfigRef: {kind: ClusterProviderConfig, name: default}\n",
			want:   []string{"spec.providerConfigRef: Invalid value: spec.providerConfigRef.kind must be ProviderConfig"},
		},
		"NoConnectionSecret": {
			reason: "The password lives only in the connection Secret, so it is required.",
			body:   strings.Replace(user, "  writeConnectionSecretToRef: {name: orders-app-db}\n", "", 1),
			want:   []string{"spec.writeConnectionSecretToRef: Required value"},
		},
		"Privileges": {
			reason: "Privileges are one of five levels.",
			body:   strings.Replace(user, "{database: app}", "{database: app, privileges: superuser}", 1),
			want:   []string{`spec.forProvider.privileges: Unsupported value: "superuser": supported values: "owner", "readWrite", "readOnly", "replication", "monitoring"`},
		},
		"ShortPeriod": {
			reason: "A rotation period is at least a minute.",
			body:   strings.Replace(user, "{database: app}", "{database: app, passwordRotation: {period: 0m}}", 1),
			want:   []string{`spec.forProvider.passwordRotation.period: Invalid value: "0m": spec.forProvider.passwordRotation.period must be at least 1m`},
		},
		"PeriodFormat": {
			reason: "A rotation period is hours and minutes, like 720h.",
			body:   strings.Replace(user, "{database: app}", "{database: app, passwordRotation: {period: 30d}}", 1),
			want:   []string{`spec.forProvider.passwordRotation.period: Invalid value: "30d": spec.forProvider.passwordRotation.period in body should match '^([0-9]+h)?([0-9]+m)?$'`},
		},
		"NoDatabase": {
			reason: "The database is required.",
			body:   strings.Replace(user, "{database: app}", "{privileges: owner}", 1),
			want:   []string{"spec.forProvider.database: Required value"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := a.create(t, tc.body)
			got := causes(err)
			// Schema errors stop the apiserver before CEL; compare the first cause.
			if len(got) > 1 {
				got = got[:1]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ncreate: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}

	old, err := a.create(t, user)
	if err != nil {
		t.Fatal(err)
	}
	err = a.update(t, old, strings.Replace(user, "{database: app}", "{database: other}", 1))
	if diff := cmp.Diff([]string{`spec.forProvider.database: Invalid value: "other": spec.forProvider.database is immutable`}, causes(err)); diff != "" {
		t.Errorf("the database cannot change: -want, +got:\n%s", diff)
	}
}

func TestProviderConfigDefaults(t *testing.T) {
	a := newAPI(t, "sql.database.example.com_providerconfigs.yaml", v1alpha1.ProviderConfigGroupVersionKind)
	u, err := a.create(t, `apiVersion: sql.database.example.com/v1alpha1
kind: ProviderConfig
metadata: {name: orders, namespace: team-a}
spec:
  engine: mysql
  host: orders.team-a.svc
  credentials: {secretRef: {name: orders-credentials}}
`)
	if err != nil {
		t.Fatalf("a minimal ProviderConfig is admitted: %v", causes(err))
	}
	want := map[string]any{
		"engine": "mysql", "host": "orders.team-a.svc", "tls": "disable",
		"credentials": map[string]any{"secretRef": map[string]any{"name": "orders-credentials", "usernameKey": "username", "passwordKey": "password"}},
	}
	if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
		t.Errorf("a ProviderConfig defaults to no TLS and the keys username and password: -want, +got:\n%s", diff)
	}
	if _, err := a.create(t, `apiVersion: sql.database.example.com/v1alpha1
kind: ProviderConfig
metadata: {name: orders, namespace: team-a}
spec: {engine: oracle, host: h, credentials: {secretRef: {name: s}}}
`); err == nil {
		t.Error("an unknown engine is refused")
	}
}

// TestExamples admits every provider example with unknown fields refused,
// so the examples and the Go types cannot drift apart.
func TestExamples(t *testing.T) {
	apis := map[string]*api{
		v1alpha1.UserKind:           newAPI(t, "sql.database.example.com_users.yaml", v1alpha1.UserGroupVersionKind),
		v1alpha1.ProviderConfigKind: newAPI(t, "sql.database.example.com_providerconfigs.yaml", v1alpha1.ProviderConfigGroupVersionKind),
		v1alpha1.ReplicationKind:    newAPI(t, "sql.database.example.com_replications.yaml", v1alpha1.ReplicationGroupVersionKind),
	}
	files, err := filepath.Glob("../../../examples/provider/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no provider examples: %v", err)
	}
	seen := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f) //nolint:gosec // The checked-in examples.
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio(b))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil || tm.Kind == "" {
				continue
			}
			a, ok := apis[tm.Kind]
			if !ok || tm.APIVersion != v1alpha1.SchemeGroupVersion.String() {
				continue
			}
			seen[tm.Kind]++
			if _, err := a.create(t, string(doc)); err != nil {
				t.Errorf("%s: a %s is refused: %v", f, tm.Kind, causes(err))
			}
			// And the Go types read it with nothing left over.
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			obj := map[string]any{
				v1alpha1.UserKind:           &v1alpha1.User{},
				v1alpha1.ProviderConfigKind: &v1alpha1.ProviderConfig{},
				v1alpha1.ReplicationKind:    &v1alpha1.Replication{},
			}[tm.Kind]
			dec := json.NewDecoder(bytes.NewReader(j))
			dec.DisallowUnknownFields()
			if err := dec.Decode(obj); err != nil {
				t.Errorf("%s: the Go %s type cannot read the example: %v", f, tm.Kind, err)
			}
		}
	}
	if seen[v1alpha1.UserKind] == 0 || seen[v1alpha1.ProviderConfigKind] == 0 || seen[v1alpha1.ReplicationKind] == 0 {
		t.Errorf("examples must show every kind, saw %v", seen)
	}
}

const replication = `apiVersion: sql.database.example.com/v1alpha1
kind: Replication
metadata: {name: orders, namespace: team-a}
spec:
  forProvider:
    slotPrefix: orders_
    members:
    - {name: orders-0, host: orders-0.orders-headless.team-a.svc.cluster.local}
    - {name: orders-1, host: orders-1.orders-headless.team-a.svc.cluster.local, port: 5432}
`

func TestReplicationDefaults(t *testing.T) {
	a := newAPI(t, "sql.database.example.com_replications.yaml", v1alpha1.ReplicationGroupVersionKind)
	u, err := a.create(t, replication)
	if err != nil {
		t.Fatalf("a minimal Replication is admitted: %v", causes(err))
	}
	want := map[string]any{
		"forProvider": map[string]any{"slotPrefix": "orders_", "synchronous": int64(0), "failoverAfterSeconds": int64(5), "members": []any{
			map[string]any{"name": "orders-0", "host": "orders-0.orders-headless.team-a.svc.cluster.local"},
			map[string]any{"name": "orders-1", "host": "orders-1.orders-headless.team-a.svc.cluster.local", "port": int64(5432)},
		}},
		"providerConfigRef":  map[string]any{"kind": "ProviderConfig", "name": "default"},
		"managementPolicies": []any{"*"},
	}
	if diff := cmp.Diff(want, u.Object["spec"]); diff != "" {
		t.Errorf("a Replication defaults to asynchronous, failing over after 5 s, the ProviderConfig named default and every management policy: -want, +got:\n%s", diff)
	}
}

func TestReplicationValidation(t *testing.T) {
	a := newAPI(t, "sql.database.example.com_replications.yaml", v1alpha1.ReplicationGroupVersionKind)
	cases := map[string]struct {
		reason string
		body   string
		want   []string
	}{
		"DuplicateMember": {
			reason: "Members are a map keyed by name: a Pod is one member.",
			body:   strings.Replace(replication, "name: orders-1,", "name: orders-0,", 1),
			want:   []string{`spec.forProvider.members[1]: Duplicate value: {"name":"orders-0"}`},
		},
		"NoOrdinal": {
			reason: "A member is a StatefulSet Pod, whose name ends in its ordinal.",
			body:   strings.Replace(replication, "name: orders-1,", "name: orders,", 1),
			want:   []string{`spec.forProvider.members[1].name: Invalid value: "orders": spec.forProvider.members[1].name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[0-9]+$'`},
		},
		"SlotPrefix": {
			reason: "A slot name holds lower-case letters, digits and underscores only.",
			body:   strings.Replace(replication, "slotPrefix: orders_", "slotPrefix: orders-", 1),
			want:   []string{`spec.forProvider.slotPrefix: Invalid value: "orders-": spec.forProvider.slotPrefix in body should match '^[a-z0-9_]+$'`},
		},
		"NegativeSynchronous": {
			reason: "Synchronous counts standbys.",
			body:   strings.Replace(replication, "slotPrefix: orders_", "slotPrefix: orders_\n    synchronous: -1", 1),
			want:   []string{`spec.forProvider.synchronous: Invalid value: -1: spec.forProvider.synchronous in body should be greater than or equal to 0`},
		},
		"NoMembers": {
			reason: "A Replication has at least one member.",
			body:   strings.SplitAfter(replication, "    slotPrefix: orders_\n")[0],
			want:   []string{"spec.forProvider.members: Required value"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := a.create(t, tc.body)
			got := causes(err)
			if len(got) > 1 {
				got = got[:1]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ncreate: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}

	old, err := a.create(t, replication)
	if err != nil {
		t.Fatal(err)
	}
	err = a.update(t, old, strings.Replace(replication, "slotPrefix: orders_", "slotPrefix: other_", 1))
	if diff := cmp.Diff([]string{`spec.forProvider.slotPrefix: Invalid value: "other_": spec.forProvider.slotPrefix is immutable`}, causes(err)); diff != "" {
		t.Errorf("the slot prefix cannot change: -want, +got:\n%s", diff)
	}
}

func bufio(b []byte) *stdbufio.Reader { return stdbufio.NewReader(bytes.NewReader(b)) }
