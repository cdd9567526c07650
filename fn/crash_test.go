package fn

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"

	"github.com/crossplane/function-sdk-go/logging"
)

// TestRunFunctionRecovers: a panic while composing one Database is a Fatal
// result naming it, with the stack in the log, not a crashed function.
func TestRunFunctionRecovers(t *testing.T) {
	var log strings.Builder
	logger := logging.NewLogrLogger(funcr.New(func(_, args string) { log.WriteString(args + "\n") }, funcr.Options{}))
	calls := 0
	boomOnce := func() (string, error) {
		if calls++; calls == 1 {
			panic("boom")
		}
		return testPassword, nil
	}
	f := New(logger, WithPasswordGenerator(boomOnce))

	rsp, err := f.RunFunction(t.Context(), req(xr("orders", pgDev), nil))
	if err != nil {
		t.Fatalf("RunFunction(...): want a Fatal result, got error %v", err)
	}
	var got []string
	for _, r := range rsp.GetResults() {
		got = append(got, r.GetSeverity().String()+": "+r.GetMessage())
	}
	want := []string{"SEVERITY_FATAL: cannot compose Database team-a/orders: the function panicked: boom"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("RunFunction(...): -want, +got:\n%s", diff)
	}
	if rsp.GetMeta().GetTag() != "t" {
		t.Errorf("RunFunction(...): the response must answer the request's tag, got %q", rsp.GetMeta().GetTag())
	}
	if !strings.Contains(log.String(), `"xr-name"="orders"`) || !strings.Contains(log.String(), "runtime/debug.Stack") {
		t.Errorf("RunFunction(...): want the Database and the stack logged, got:\n%s", log.String())
	}

	if len(rsp.GetDesired().GetResources()) > 0 {
		t.Errorf("RunFunction(...): a call that panicked must compose nothing, got %d resources", len(rsp.GetDesired().GetResources()))
	}

	// The same Function composes the next call as if nothing happened.
	rsp, err = f.RunFunction(t.Context(), req(xr("orders", pgDev), nil))
	if err != nil || len(rsp.GetDesired().GetResources()) == 0 {
		t.Errorf("RunFunction(...) after a panic: want a composition, got %v, %v", rsp.GetResults(), err)
	}
}
