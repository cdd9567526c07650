package fn

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/resource"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

func TestSQLUser(t *testing.T) {
	p := params(t, everySpec()["mysql-8.4-staging-metrics=false"])
	ls := logins(p.names, []v1.User{{Name: "reporting", Privileges: "readOnly", PasswordRotationPeriod: "720h"}}, false, false)
	got, err := ToComposed(SQLUser(p, ls[1]))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"apiVersion": "sql.database.example.com/v1alpha1",
		"kind":       "User",
		"metadata": map[string]any{
			"name": "orders-user-reporting", "namespace": "team-a",
			"annotations": map[string]any{"crossplane.io/external-name": "reporting"},
			"labels": map[string]any{
				labelName: "mysql", labelInstance: "orders", labelVersion: "8.4", labelComponent: "sql", labelManagedBy: "dbplane",
			},
		},
		"spec": map[string]any{
			"forProvider":                map[string]any{"database": "app", "privileges": "readOnly", "passwordRotation": map[string]any{"period": "720h"}},
			"providerConfigRef":          map[string]any{"name": "orders", "kind": "ProviderConfig"},
			"writeConnectionSecretToRef": map[string]any{"name": "orders-user-reporting"},
		},
	}
	if diff := cmp.Diff(want, got.Object); diff != "" {
		t.Errorf("SQLUser(...): the exact apply intent: -want, +got:\n%s", diff)
	}
	if ls[0].Login != "app" || ls[0].Privileges != "owner" || ls[0].Object != "orders-app" {
		t.Errorf("logins(...): the first login must be the app login owning the app database, got %+v", ls[0])
	}
}

func TestRunFunctionSQLUsers(t *testing.T) {
	type want struct {
		Composed []string
		Phase    any
	}
	spec := `{"type":"postgresql","version":"16","storage":{"size":"1Gi"},"users":[{"name":"reporting","privileges":"readOnly"},{"name":"etl"}]}`
	observedReady := map[string]string{
		"secret": secretJSON("pw"), "configmap": existsJSON, "service-headless": existsJSON, "service": existsJSON,
		"statefulset": stsJSON(1, 1, "1Gi"), "sql-providerconfig": existsJSON,
		"sql-user-app": userJSON(true), "sql-user-reporting": userJSON(true), "sql-user-etl": userJSON(false),
	}
	off := req(xr("orders", pgDev), nil)
	off.Input = resource.MustStructJSON(`{"apiVersion":"fn.database.example.com/v1alpha1","kind":"Input","sqlUsers":false}`)

	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   want
	}{
		"ExtraUsers": {
			reason: "spec.users adds a User per login beside the app login.",
			req:    req(xr("orders", spec), nil),
			want:   want{Composed: []string{"configmap", "networkpolicy", "secret", "service", "service-headless", "sql-providerconfig", "sql-user-app", "sql-user-etl", "sql-user-reporting", "statefulset", "tls", "tls-ca"}, Phase: "Pending"},
		},
		"LoginNotReady": {
			reason: "A Database whose logins do not all work yet is not Ready.",
			req:    req(xr("orders", spec), observedReady),
			want:   want{Composed: []string{"configmap", "networkpolicy", "secret", "service", "service-headless", "sql-providerconfig", "sql-user-app", "sql-user-etl", "sql-user-reporting", "statefulset", "tls", "tls-ca"}, Phase: "PartiallyReady"},
		},
		"Disabled": {
			reason: "With the input's sqlUsers off nothing of the SQL provider is composed.",
			req:    off,
			want:   want{Composed: []string{"configmap", "networkpolicy", "secret", "service", "service-headless", "statefulset", "tls", "tls-ca"}, Phase: "Pending"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(rsp.GetResults()) > 0 {
				t.Fatalf("%s\nRunFunction(...): unexpected results %v", tc.reason, rsp.GetResults())
			}
			st, _ := rsp.GetDesired().GetComposite().GetResource().AsMap()["status"].(map[string]any)
			got := want{Phase: st["phase"]}
			for n := range rsp.GetDesired().GetResources() {
				got.Composed = append(got.Composed, n)
			}
			slices.Sort(got.Composed)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
