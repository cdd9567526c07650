//go:build e2e

package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestApplyRefusesBadDatabases applies Databases the schema's CEL rules
// refuse and checks that kubectl apply fails with a message that names the
// field, and that nothing changed: a refused create creates nothing, a
// refused update keeps the old spec.
func TestApplyRefusesBadDatabases(t *testing.T) {
	defer start(t)()
	const ns = "validation"
	env.Namespace(t, ns)

	spec := func() map[string]any {
		return map[string]any{
			"type":        "postgresql",
			"version":     "16",
			"replicas":    int64(1),
			"environment": "development",
			"storage":     map[string]any{"size": "10Gi"},
		}
	}
	mysql := func() map[string]any {
		s := spec()
		s["type"], s["version"] = "mysql", "8.4"
		return s
	}

	cases := map[string]struct {
		reason string
		// existing is applied first, when set: the bad apply is an update.
		existing map[string]any
		apply    map[string]any
		// want are substrings of kubectl's error: the field and the rule's
		// message.
		want []string
	}{
		"ProductionWithOneReplica": {
			reason: "A production Database needs at least two replicas.",
			apply: func() map[string]any {
				s := spec()
				s["environment"] = "production"
				return s
			}(),
			want: []string{"spec.replicas", "production databases need at least 2 replicas"},
		},
		"StorageShrink": {
			reason:   "Storage may grow but never shrink.",
			existing: spec(),
			apply: func() map[string]any {
				s := spec()
				s["storage"] = map[string]any{"size": "5Gi"}
				return s
			}(),
			want: []string{"spec.storage.size", "may grow but never shrink"},
		},
		"TypeChange": {
			reason:   "The engine of a Database cannot change.",
			existing: mysql(),
			apply:    spec(),
			want:     []string{"spec.type", "spec.type is immutable"},
		},
		"UnknownMySQLVersion": {
			reason: "MySQL 9.0 is not a supported version.",
			apply: func() map[string]any {
				s := mysql()
				s["version"] = "9.0"
				return s
			}(),
			want: []string{"spec.version", "mysql supports versions 8.0 and 8.4"},
		},
		"PostgreSQLMajorVersionChange": {
			reason:   "A PostgreSQL major version cannot change in place.",
			existing: spec(),
			apply: func() map[string]any {
				s := spec()
				s["version"] = "17"
				return s
			}(),
			want: []string{"spec.version", "PostgreSQL major version cannot change in place"},
		},
		"MySQLDowngrade": {
			reason:   "MySQL may go from 8.0 to 8.4, never back.",
			existing: mysql(),
			apply: func() map[string]any {
				s := mysql()
				s["version"] = "8.0"
				return s
			}(),
			want: []string{"spec.version", "MySQL cannot be downgraded from 8.4 to 8.0"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			defer start(t)()
			t.Parallel()
			db := strings.ToLower(name)
			if tc.existing != nil {
				env.ApplyDatabase(t, cluster.NewDatabase(ns, db, tc.existing))
			}

			_, err := env.Kubectl(t.Context(), strings.NewReader(cluster.NewDatabase(ns, db, tc.apply).YAML(t)), "apply", "-f", "-")
			var ke *cluster.KubectlError
			if !errors.As(err, &ke) {
				t.Fatalf("%s\nkubectl apply: want an error naming the field, got %v", tc.reason, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(ke.Stderr, w) {
					t.Errorf("%s\nkubectl apply: error does not contain %q:\n%s", tc.reason, w, ke.Stderr)
				}
			}
			t.Logf("kubectl apply: %s", strings.TrimSpace(ke.Stderr))

			got, err := env.GetDatabase(t.Context(), ns, db)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.existing == nil && got != nil:
				t.Errorf("%s\nthe refused Database was created", tc.reason)
			case tc.existing != nil && got == nil:
				t.Errorf("%s\nthe existing Database is gone", tc.reason)
			case tc.existing != nil:
				g := cluster.Database{Unstructured: got}
				for _, f := range []string{"type", "version"} {
					if g.Str("spec", f) != tc.existing[f] {
						t.Errorf("%s\nspec.%s is %q after a refused update, want %q", tc.reason, f, g.Str("spec", f), tc.existing[f])
					}
				}
				if s := g.Str("spec", "storage", "size"); s != "10Gi" {
					t.Errorf("%s\nspec.storage.size is %q after a refused update, want 10Gi", tc.reason, s)
				}
			}
		})
	}
}
