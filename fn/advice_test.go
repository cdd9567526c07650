package fn

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/crossplane/function-sdk-go/logging"
)

// TestRunFunctionWarnsOnChange shows advice is a condition on every call and
// a Warning only when the observed Database does not already say it, so a
// lasting warning does not spend the object's Warning event budget.
func TestRunFunctionWarnsOnChange(t *testing.T) {
	const eol = "spec.version: MySQL 8.0 reached its end of life in April 2026 and gets no more security fixes: move to 8.4"
	const grow = "spec.storage.size: existing data volumes stay at 1Gi; growing them to 2Gi is not automated yet (a StatefulSet's volume claim templates are immutable)"
	withConditions := func(spec string, cs ...string) string {
		x := strings.TrimSuffix(xr("orders", spec), "}")
		return x + `,"status":{"conditions":[` + strings.Join(cs, ",") + `]}}`
	}
	cond := func(typ, status, reason, msg string) string {
		return fmt.Sprintf(`{"type":%q,"status":%q,"reason":%q,"message":%q,"lastTransitionTime":"2026-11-23T10:00:00Z"}`, typ, status, reason, msg)
	}
	my80Grown := `{"type":"mysql","version":"8.0","storage":{"size":"2Gi"}}`
	observed := map[string]string{"secret": secretJSON("pw"), "statefulset": stsJSON(1, 1, "1Gi")}

	type want struct {
		Results    []string
		Conditions []string
	}
	cases := map[string]struct {
		reason string
		xr     string
		want   want
	}{
		"New": {
			reason: "A Database that says nothing yet gets the warning and the condition.",
			xr:     xr("orders", my80Dev),
			want: want{
				Results:    []string{"SEVERITY_WARNING: " + eol},
				Conditions: []string{"VersionSupported=FALSE/EndOfLife", "StorageSized=TRUE/AsRequested"},
			},
		},
		"AlreadySaid": {
			reason: "A Database whose condition already says it gets no second warning; the condition stays.",
			xr:     withConditions(my80Dev, cond("VersionSupported", "False", "EndOfLife", eol), cond("StorageSized", "True", "AsRequested", "")),
			want:   want{Conditions: []string{"VersionSupported=FALSE/EndOfLife", "StorageSized=TRUE/AsRequested"}},
		},
		"NewWarningBesideAnOldOne": {
			reason: "Growing storage on a Database already told of its end of life warns of the growth alone.",
			xr:     withConditions(my80Grown, cond("VersionSupported", "False", "EndOfLife", eol), cond("StorageSized", "True", "AsRequested", "")),
			want: want{
				Results:    []string{"SEVERITY_WARNING: " + grow},
				Conditions: []string{"VersionSupported=FALSE/EndOfLife", "StorageSized=FALSE/GrowthNotAutomated"},
			},
		},
		"MessageChanged": {
			reason: "The same condition with another message is news: growing again warns again.",
			xr: withConditions(my80Grown, cond("VersionSupported", "False", "EndOfLife", eol),
				cond("StorageSized", "False", "GrowthNotAutomated", strings.Replace(grow, "2Gi", "3Gi", 1))),
			want: want{
				Results:    []string{"SEVERITY_WARNING: " + grow},
				Conditions: []string{"VersionSupported=FALSE/EndOfLife", "StorageSized=FALSE/GrowthNotAutomated"},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rsp, err := New(logging.NewNopLogger()).RunFunction(t.Context(), req(tc.xr, observed))
			if err != nil {
				t.Fatal(err)
			}
			g := summarise(t, rsp)
			got := want{Results: g.Results}
			for _, c := range g.Conditions {
				if !strings.HasPrefix(c, ConditionBackupHealthy) && !strings.HasPrefix(c, ConditionBackupVerified) {
					got.Conditions = append(got.Conditions, c)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nRunFunction(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
