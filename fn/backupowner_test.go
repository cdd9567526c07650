package fn

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
)

// TestBackupVolumeOutlivesDatabase reads the backup volume RunFunction
// composes: the owner references it asks for (Crossplane adds the
// Database's controller reference; Kubernetes' garbage collector keeps an
// object while any owner exists, so the Namespace's keeps the volume when the
// Database is deleted), and the size and class a left volume is adopted with.
func TestBackupVolumeOutlivesDatabase(t *testing.T) {
	type want struct {
		Composed bool
		Owners   []any
		Size     any
		Class    any
	}
	nsOwner := []any{map[string]any{"apiVersion": "v1", "kind": "Namespace", "name": "team-a", "uid": "5f0c6a1e-team-a"}}
	ownedPVC := `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"orders-backup","namespace":"team-a",` +
		`"ownerReferences":[{"apiVersion":"database.example.com/v1","kind":"Database","name":"orders","uid":"db-1","controller":true},` +
		`{"apiVersion":"v1","kind":"Namespace","name":"team-a","uid":"5f0c6a1e-team-a"}]},"spec":{"resources":{"requests":{"storage":"30Gi"}}}}`
	leftPVC := `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"orders-backup","namespace":"team-a",` +
		`"ownerReferences":[{"apiVersion":"v1","kind":"Namespace","name":"team-a","uid":"5f0c6a1e-team-a"}]},` +
		`"spec":{"storageClassName":"slow","resources":{"requests":{"storage":"50Gi"}}}}`
	otherNS := `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-b","uid":"team-b-uid"}}`

	cases := map[string]struct {
		reason string
		req    *fnv1.RunFunctionRequest
		want   want
	}{
		"NewVolumeOwnedByNamespace": {
			reason: "A new backup volume is owned by the Database's Namespace, as neither controller nor blocking owner, so that Crossplane adds the Database as controller and deleting the Database keeps it.",
			req:    withRequired(req(xr("orders", pgProd), nil), requiredNamespace, namespaceJSON),
			want:   want{Composed: true, Owners: nsOwner, Size: "20Gi"},
		},
		"NoNamespaceNoNewVolume": {
			reason: "Without the Namespace no new backup volume is composed: one without the Namespace's owner reference would be deleted with the Database.",
			req:    req(xr("orders", pgProd), nil),
			want:   want{},
		},
		"OtherNamespaceIgnored": {
			reason: "A Namespace of another name is not the Database's and owns nothing of it.",
			req:    withRequired(req(xr("orders", pgProd), nil), requiredNamespace, otherNS),
			want:   want{},
		},
		"ObservedOwnerKept": {
			reason: "A call without the Namespace repeats the owner reference the composed volume has, so no apply drops it.",
			req:    req(xr("orders", pgProd), map[string]string{"secret": secretJSON("pw"), "backup-pvc": ownedPVC}),
			want:   want{Composed: true, Owners: nsOwner, Size: "30Gi"},
		},
		"ExistingVolumeGetsOwner": {
			reason: "A backup volume composed before this function version, without the owner reference, gets it once the Namespace is known, even with backups disabled.",
			req:    withRequired(req(xr("orders", pgDev), map[string]string{"secret": secretJSON("pw"), "backup-pvc": pvcJSON}), requiredNamespace, namespaceJSON),
			want:   want{Composed: true, Owners: nsOwner, Size: "30Gi"},
		},
		"LeftVolumeAdopted": {
			reason: "A new Database of the name of a deleted one adopts the backup volume it left with that volume's size and class (a claim cannot shrink or change class), so the old backups stay and the apply is not refused.",
			req: withRequired(withRequired(req(xr("orders", pgProd), nil), requiredNamespace, namespaceJSON),
				requiredBackupVolume, leftPVC),
			want: want{Composed: true, Owners: nsOwner, Size: "50Gi", Class: "slow"},
		},
		"ObservedClassRepeated": {
			reason: "The class of the composed volume (the cluster's default one, set by the apiserver) is repeated once seen, so that no later apply asks to remove it: the claim's spec is immutable, and one call that saw the volume only as left would otherwise set it.",
			req: withRequired(req(xr("orders", pgProd), map[string]string{"secret": secretJSON("pw"),
				"backup-pvc": strings.Replace(ownedPVC, `"spec":{`, `"spec":{"storageClassName":"standard",`, 1)}), requiredBackupVolume, leftPVC),
			want: want{Composed: true, Owners: nsOwner, Size: "30Gi", Class: "standard"},
		},
		"LeftVolumeOwnerWithoutNamespace": {
			reason: "A left volume's own Namespace owner reference is enough to adopt it before Crossplane supplied the Namespace.",
			req:    withRequired(req(xr("orders", pgProd), nil), requiredBackupVolume, leftPVC),
			want:   want{Composed: true, Owners: nsOwner, Size: "50Gi", Class: "slow"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := New(logging.NewNopLogger(), WithPasswordGenerator(func() (string, error) { return testPassword, nil }))
			rsp, err := f.RunFunction(t.Context(), tc.req)
			if err != nil {
				t.Fatalf("%s\nRunFunction(...): unexpected error: %v", tc.reason, err)
			}
			for _, r := range rsp.GetResults() {
				if r.GetSeverity() == fnv1.Severity_SEVERITY_FATAL {
					t.Fatalf("%s\nRunFunction(...): fatal result: %s", tc.reason, r.GetMessage())
				}
			}
			got := want{}
			if d, ok := rsp.GetDesired().GetResources()[string(rnBackupVolume)]; ok {
				m := d.GetResource().AsMap()
				md, _ := m["metadata"].(map[string]any)
				spec, _ := m["spec"].(map[string]any)
				res, _ := spec["resources"].(map[string]any)
				reqs, _ := res["requests"].(map[string]any)
				got = want{Composed: true, Size: reqs["storage"], Class: spec["storageClassName"]}
				got.Owners, _ = md["ownerReferences"].([]any)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
			_, cron := rsp.GetDesired().GetResources()[string(rnBackupCronJob)]
			spec, _ := tc.req.GetObserved().GetComposite().GetResource().AsMap()["spec"].(map[string]any)
			if wantCron := tc.want.Composed && spec["backup"] != nil; cron != wantCron {
				t.Errorf("%s\nRunFunction(...): backup CronJob composed %t, want %t (with backups, exactly when its volume is)", tc.reason, cron, wantCron)
			}
		})
	}
}
