//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestCredentialsSurviveReconcilesAndRestarts checks that the superuser
// password is generated once: it stays the same across reconciles that
// change the Database, and across a restart of the function, which loses
// whatever the function remembered in memory.
func TestCredentialsSurviveReconcilesAndRestarts(t *testing.T) {
	defer start(t)()
	const ns, name = "credentials", "creds"
	namespace(t, ns)

	d := newDatabase(ns, name, map[string]any{
		"type":        "postgresql",
		"version":     "17",
		"replicas":    int64(1),
		"environment": "development",
		"storage":     map[string]any{"size": "5Gi"},
		"monitoring":  map[string]any{"enabled": true, "metrics": false, "logging": false},
	})
	applyDatabase(t, d)
	waitReady(t, ns, name)
	first := secret(t, ns, name+"-credentials")

	// Each change of spec.monitoring.logging changes the server
	// configuration: seeing the ConfigMap change proves the function ran
	// and Crossplane applied its result.
	toggle := func(t *testing.T, logging bool) {
		t.Helper()
		before := configMap(t, ns, name+"-config")
		t0 := time.Now()
		applyDatabase(t, d.set(t, logging, "monitoring", "logging"))
		waitFor(t, readyTimeout, "ConfigMap updated", func(ctx context.Context) error {
			cm, err := env.kube.CoreV1().ConfigMaps(ns).Get(ctx, name+"-config", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if maps.Equal(cm.Data, before) {
				return errors.New("ConfigMap unchanged")
			}
			return nil
		})
		t1 := time.Now()
		waitReady(t, ns, name)
		t.Logf("logging=%t: ConfigMap updated after %s, Database Ready after %s", logging, t1.Sub(t0), time.Since(t0))
		record("latency: spec change -> ConfigMap updated", t1.Sub(t0))
		sameCredentials(t, first, secret(t, ns, name+"-credentials"))
	}

	for i := range 4 {
		toggle(t, i%2 == 0)
	}

	t0 := time.Now()
	if err := env.stopFunction(); err != nil {
		t.Fatal(err)
	}
	if err := env.startFunction(t.Context()); err != nil {
		t.Fatal(err)
	}
	record("function restart", time.Since(t0))
	toggle(t, true)
	toggle(t, false)
}

// A credentials snapshot: the Secret's UID and data.
type credentials struct {
	uid  types.UID
	data map[string][]byte
}

func secret(t *testing.T, ns, name string) credentials {
	t.Helper()
	s, err := env.kube.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
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

func configMap(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	cm, err := env.kube.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data
}
