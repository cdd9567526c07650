package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mattfenwick/cyclonus/pkg/matcher"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// TestRenderedNetworkPolicies evaluates the NetworkPolicy of every golden
// render (what the real crossplane CLI composes from each example, checked by
// TestRenderExamples) with cyclonus' NetworkPolicy engine: the app pods of the
// Database's namespace, its own pods and backup Job, and the SQL provider
// reach the database port; another namespace does not; only the monitoring
// namespace reaches the metrics port, and only where an exporter runs. The
// ports and the pods' labels are read from the rendered StatefulSet and
// CronJob, not restated here.
func TestRenderedNetworkPolicies(t *testing.T) {
	files, err := filepath.Glob("testdata/render/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden renders: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			b, err := os.ReadFile(f) //nolint:gosec // Test data.
			if err != nil {
				t.Fatal(err)
			}
			var (
				pols []*networkingv1.NetworkPolicy
				sts  *appsv1.StatefulSet
				cron *batchv1.CronJob
			)
			for d := range strings.SplitSeq(string(b), "\n---\n") {
				var into any
				switch {
				case strings.Contains(d, "\nkind: NetworkPolicy\n"):
					np := &networkingv1.NetworkPolicy{}
					pols, into = append(pols, np), np
				case strings.Contains(d, "\nkind: StatefulSet\n"):
					sts = &appsv1.StatefulSet{}
					into = sts
				case strings.Contains(d, "\nkind: CronJob\n"):
					cron = &batchv1.CronJob{}
					into = cron
				default:
					continue
				}
				if err := yaml.Unmarshal([]byte(d), into); err != nil {
					t.Fatal(err)
				}
			}
			if len(pols) != 1 || sts == nil {
				t.Fatalf("%s: want one NetworkPolicy and a StatefulSet, got %d NetworkPolicies", f, len(pols))
			}
			ns := sts.Namespace
			nsLabels := func(n string) map[string]string { return map[string]string{corev1.LabelMetadataName: n} }
			peer := func(n string, labels map[string]string) *matcher.TrafficPeer {
				return &matcher.TrafficPeer{IP: "10.0.0.1", Internal: &matcher.InternalPeer{Namespace: n, NamespaceLabels: nsLabels(n), PodLabels: labels}}
			}
			pol := matcher.BuildNetworkPolicies(false, pols)
			server := sts.Spec.Template.Labels
			reach := func(from *matcher.TrafficPeer, port corev1.ContainerPort) bool {
				return pol.IsTrafficAllowed(&matcher.Traffic{
					Source: from, Destination: peer(ns, server), ResolvedPort: int(port.ContainerPort), ResolvedPortName: port.Name, Protocol: port.Protocol,
				}).IsAllowed()
			}

			var db, metrics *corev1.ContainerPort
			for _, c := range sts.Spec.Template.Spec.Containers {
				for _, p := range c.Ports {
					if p.Name == "metrics" {
						metrics = &p
					} else if c.Name == "server" {
						db = &p
					}
				}
			}
			if db == nil {
				t.Fatalf("%s: the server container has no port", f)
			}
			type row struct {
				From, Port string
				Allowed    bool
			}
			from := map[string]*matcher.TrafficPeer{
				"app pod, same namespace":  peer(ns, map[string]string{"app": "orders-api"}),
				"pod of another namespace": peer("elsewhere", map[string]string{"app": "orders-api"}),
				"SQL provider":             peer("crossplane-system", map[string]string{"pkg.crossplane.io/provider": "provider-sql"}),
				"own server":               peer(ns, server),
				"monitoring":               peer("monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}),
			}
			want := []row{
				{"app pod, same namespace", "database", true},
				{"pod of another namespace", "database", false},
				{"SQL provider", "database", true},
				{"own server", "database", true},
				{"monitoring", "database", false},
			}
			if cron != nil {
				from["backup Job"] = peer(ns, cron.Spec.JobTemplate.Spec.Template.Labels)
				want = append(want, row{"backup Job", "database", true})
			}
			if metrics != nil {
				want = append(want, row{"monitoring", "metrics", true}, row{"app pod, same namespace", "metrics", false})
			}
			var got []row
			for _, r := range want {
				port := *db
				if r.Port == "metrics" {
					port = *metrics
				}
				got = append(got, row{r.From, r.Port, reach(from[r.From], port)})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: who reaches the database pods: -want, +got:\n%s", f, diff)
			}
		})
	}
}
