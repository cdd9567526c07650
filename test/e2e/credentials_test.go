//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dbplane/dbplane/test/harness/cluster"
)

// TestCredentialsSurviveReconcilesAndRestarts checks that the superuser
// password is generated once: it stays the same across reconciles that
// change the Database, and across a restart of the function, which loses
// whatever the function remembered in memory.
//
// The changes move the backup schedule: each shows in the CronJob, which
// proves the function ran and Crossplane applied its result, and none rolls
// the StatefulSet. (Changes that roll it produce dozens of watch events each;
// a few in a row open Crossplane's per-XR circuit breaker, after which
// changes apply only every 30 s or so.)
func TestCredentialsSurviveReconcilesAndRestarts(t *testing.T) {
	defer start(t)()
	const ns, name = "credentials", "creds"
	env.Namespace(t, ns)

	d := cluster.NewDatabase(ns, name, map[string]any{
		"type":        "postgresql",
		"version":     "17",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
		"backup":      map[string]any{"enabled": true, "schedule": "0 1 * * *", "retention": "7d"},
	})
	env.ApplyDatabase(t, d)
	env.WaitReady(t, ns, name)
	first := secret(t, ns, name+"-credentials")

	schedule := func(t *testing.T, hour int) {
		t.Helper()
		want := fmt.Sprintf("0 %d * * *", hour)
		t0 := time.Now()
		env.ApplyDatabase(t, d.Set(t, want, "backup", "schedule"))
		env.WaitFor(t, d, "CronJob rescheduled", func(ctx context.Context) error {
			cj, err := env.Kube.BatchV1().CronJobs(ns).Get(ctx, name+"-backup", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if cj.Spec.Schedule != want {
				return fmt.Errorf("CronJob schedule is %q, want %q", cj.Spec.Schedule, want)
			}
			return nil
		})
		record("latency: spec change -> composed object updated", time.Since(t0))
		env.WaitReady(t, ns, name)
		sameCredentials(t, first, secret(t, ns, name+"-credentials"))
	}

	for h := 2; h <= 5; h++ {
		schedule(t, h)
	}

	t0 := time.Now()
	if err := env.StopFunction(); err != nil {
		t.Fatal(err)
	}
	if err := env.StartFunction(t.Context()); err != nil {
		t.Fatal(err)
	}
	record("function restart", time.Since(t0))
	t1 := time.Now()
	schedule(t, 6)
	record("latency: function restarted -> spec change applied", time.Since(t1))
	schedule(t, 7)
}

// A credentials snapshot: the Secret's UID and data.
type credentials struct {
	uid  types.UID
	data map[string][]byte
}

func secret(t *testing.T, ns, name string) credentials {
	t.Helper()
	s, err := env.Kube.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Data["password"]) == 0 {
		t.Fatalf("Secret %s has no password", name)
	}
	return credentials{uid: s.UID, data: s.Data}
}

func sameCredentials(t *testing.T, want, got credentials) {
	t.Helper()
	if got.uid != want.uid {
		t.Errorf("the credentials Secret was replaced: UID %s, was %s", got.uid, want.uid)
	}
	for _, k := range []string{"username", "password"} {
		if !bytes.Equal(got.data[k], want.data[k]) {
			t.Errorf("the credentials Secret's %s changed", k)
		}
	}
}
