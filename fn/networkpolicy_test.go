package fn

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mattfenwick/cyclonus/pkg/matcher"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/dbplane/dbplane/apis/v1"
)

// A pod somewhere in the cluster, as the NetworkPolicy evaluator sees it.
type pod struct {
	Namespace string
	Labels    map[string]string
}

// Namespaces of the reachability tests, with their labels as Kubernetes
// sets them (kubernetes.io/metadata.name) plus a team label.
var namespaceLabels = map[string]map[string]string{
	"team-a":            {corev1.LabelMetadataName: "team-a", "team": "orders"},
	"team-b":            {corev1.LabelMetadataName: "team-b", "team": "analytics"},
	"crossplane-system": {corev1.LabelMetadataName: "crossplane-system"},
	"monitoring":        {corev1.LabelMetadataName: "monitoring"},
	"kube-system":       {corev1.LabelMetadataName: "kube-system"},
	"platform-metrics":  {corev1.LabelMetadataName: "platform-metrics"},
}

func (p pod) peer(ip string) *matcher.TrafficPeer {
	return &matcher.TrafficPeer{IP: ip, Internal: &matcher.InternalPeer{
		Namespace: p.Namespace, NamespaceLabels: namespaceLabels[p.Namespace], PodLabels: p.Labels,
	}}
}

// allowed asks cyclonus' policy model, built from the composed
// NetworkPolicies, whether from may open a connection to port of to (both
// the sender's egress and the receiver's ingress).
func allowed(pol *matcher.Policy, from, to pod, port int, name string, proto corev1.Protocol) bool {
	return pol.IsTrafficAllowed(&matcher.Traffic{
		Source: from.peer("10.0.0.1"), Destination: to.peer("10.0.0.2"),
		ResolvedPort: port, ResolvedPortName: name, Protocol: proto,
	}).IsAllowed()
}

// composedPolicies are the NetworkPolicies of a Database as Crossplane
// applies them: through ToComposed (which prunes empty objects) and back.
func composedPolicies(t *testing.T, p Params) []*networkingv1.NetworkPolicy {
	t.Helper()
	var out []*networkingv1.NetworkPolicy
	for _, c := range Compose(p) {
		if _, ok := c.Object.(*networkingv1.NetworkPolicy); !ok {
			continue
		}
		u, err := ToComposed(c.Object)
		if err != nil {
			t.Fatal(err)
		}
		np := &networkingv1.NetworkPolicy{}
		if err := fromObject(u.Object, np); err != nil {
			t.Fatal(err)
		}
		out = append(out, np)
	}
	if len(out) == 0 {
		t.Fatal("Compose(): no NetworkPolicy")
	}
	return out
}

// TestNetworkPolicyReachability evaluates the composed NetworkPolicy with
// cyclonus' policy engine (the model its conformance tool probes real
// clusters against): who reaches which port of a Database's pods, for every
// engine, version, environment and monitoring setting, and how
// spec.network.from and the Input's namespaces change it. The Database's own
// pods and Jobs carry the labels the composed StatefulSet, CronJob and
// restore Job give them.
func TestNetworkPolicyReachability(t *testing.T) {
	app := pod{"team-a", map[string]string{"app": "orders-api"}}
	other := pod{"team-a", map[string]string{"app": "batch"}}
	foreign := pod{"team-b", map[string]string{"app": "orders-api"}}
	provider := pod{"crossplane-system", map[string]string{"pkg.crossplane.io/provider": "provider-sql"}}
	function := pod{"crossplane-system", map[string]string{"pkg.crossplane.io/function": "function-dbplane"}}
	prometheus := pod{"monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}}
	platformPrometheus := pod{"platform-metrics", map[string]string{"app.kubernetes.io/name": "prometheus"}}
	dns := pod{"kube-system", map[string]string{"k8s-app": "kube-dns"}}

	// A row: who connects to which port of what, and whether it may.
	type row struct {
		From, To string
		Port     string
		Allowed  bool
	}
	// The default table: every row holds for every engine, version,
	// environment and monitoring setting, except that the metrics port
	// exists only with metrics.
	base := []row{
		{"app pod, same namespace", "server", "database", true},
		{"other pod, same namespace", "server", "database", true},
		{"pod of another namespace", "server", "database", false},
		{"SQL provider", "server", "database", true},
		{"provider-labelled pod of another namespace", "server", "database", false},
		{"function (crossplane-system, not the provider)", "server", "database", false},
		{"monitoring namespace", "server", "database", false},
		{"monitoring namespace", "server", "metrics", true},
		{"another monitoring namespace", "server", "metrics", false},
		{"app pod, same namespace", "server", "metrics", false},
		{"own server (standby)", "server", "database", true},
		{"backup Job", "server", "database", true},
		{"restore Job", "server", "database", true},
		{"app pod, same namespace", "server", "other port", false},
		{"server", "DNS", "dns", true},
		{"server", "app pod, same namespace", "database", false},
		{"server", "pod of another namespace", "database", false},
		{"server", "Kubernetes API (outside the pod network)", "https", false},
	}
	cases := map[string]struct {
		reason  string
		network *v1.Network
		in      Input
		// change rewrites rows of base: From -> whether it may now reach
		// the database port.
		change map[string]bool
	}{
		"Default": {
			reason: "Unset spec.network admits the Database's namespace, its own pods and Jobs and the SQL provider to the database port, and only the monitoring namespace to the metrics port; the servers reach only DNS and each other.",
		},
		"Narrowed": {
			reason:  "spec.network.from with a pod selector admits only those pods of the namespace; the Database's own pods, Jobs and the provider still connect.",
			network: &v1.Network{From: []v1.NetworkPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders-api"}}}}},
			change:  map[string]bool{"other pod, same namespace": false},
		},
		"WidenedByNamespaceLabel": {
			reason: "A namespace selector beside podSelector {} admits the namespace's pods and those of the selected namespaces.",
			network: &v1.Network{From: []v1.NetworkPeer{
				{PodSelector: &metav1.LabelSelector{}},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "analytics"}}},
			}},
			change: map[string]bool{"pod of another namespace": true, "provider-labelled pod of another namespace": true},
		},
		"PodsOfSelectedNamespaces": {
			reason: "Both selectors in one peer admit only the selected pods of the selected namespaces: not the Database's own namespace's.",
			network: &v1.Network{From: []v1.NetworkPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "analytics"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "orders-api"}},
			}}},
			change: map[string]bool{"pod of another namespace": true, "app pod, same namespace": false, "other pod, same namespace": false},
		},
		"EveryNamespace": {
			reason:  "namespaceSelector {} admits every pod of every namespace, although the apply intent holds no empty selector.",
			network: &v1.Network{From: []v1.NetworkPeer{{NamespaceSelector: &metav1.LabelSelector{}}}},
			change: map[string]bool{
				"pod of another namespace": true, "function (crossplane-system, not the provider)": true, "monitoring namespace": true,
				"provider-labelled pod of another namespace": true,
			},
		},
		"InputNamespaces": {
			reason: "The Input's providerNamespace and monitoringNamespace move who is admitted as the provider and as Prometheus.",
			in:     Input{SQLUsers: true, ProviderNamespace: "team-b", MonitoringNamespace: "platform-metrics"},
			change: map[string]bool{"SQL provider": false, "provider-labelled pod of another namespace": true},
		},
	}
	for name, tc := range cases {
		for spec, s := range everySpec() {
			t.Run(name+"/"+spec, func(t *testing.T) {
				s.Network = tc.network
				db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: s}
				Default(&db.Spec)
				if errs := Validate(db); len(errs) > 0 {
					t.Fatalf("Validate(): %v", errs)
				}
				in := tc.in
				if in == (Input{}) {
					in = Input{SQLUsers: true}
				}
				p, err := Resolve(db, Observed{}, in, func() (string, error) { return testPassword, nil })
				if err != nil {
					t.Fatal(err)
				}
				pol := matcher.BuildNetworkPolicies(false, composedPolicies(t, p))

				// The Database's pods as its builders label them.
				server := pod{"team-a", StatefulSet(p).Spec.Template.Labels}
				backup := pod{"team-a", BackupCronJob(p).Spec.JobTemplate.Spec.Template.Labels}
				rp := p
				rp.Restore = &v1.Restore{From: "orders-old", Backup: "latest"}
				restore := pod{"team-a", RestoreJob(rp).Spec.Template.Labels}
				pods := map[string]pod{
					"app pod, same namespace": app, "other pod, same namespace": other, "pod of another namespace": foreign,
					"SQL provider": provider, "provider-labelled pod of another namespace": {"team-b", provider.Labels}, "function (crossplane-system, not the provider)": function,
					"monitoring namespace": prometheus, "another monitoring namespace": platformPrometheus,
					"own server (standby)": server, "backup Job": backup, "restore Job": restore, "server": server, "DNS": dns,
				}
				if in.MonitoringNamespace != "" {
					pods["monitoring namespace"], pods["another monitoring namespace"] = platformPrometheus, prometheus
				}
				ports := map[string]struct {
					port  int
					name  string
					proto corev1.Protocol
				}{
					"database":   {int(p.Engine.Port), p.Engine.PortName, corev1.ProtocolTCP},
					"metrics":    {int(p.Engine.Exporter.Port), "metrics", corev1.ProtocolTCP},
					"other port": {22, "ssh", corev1.ProtocolTCP},
					"dns":        {53, "dns", corev1.ProtocolUDP},
					"https":      {443, "https", corev1.ProtocolTCP},
				}

				var want, got []row
				for _, r := range base {
					if r.Port == "metrics" && !p.Metrics {
						r.Allowed = false // no metrics port is admitted at all
					}
					if a, ok := tc.change[r.From]; ok && r.Port == "database" && r.To == "server" {
						r.Allowed = a
					}
					want = append(want, r)

					pt := ports[r.Port]
					from, to := pods[r.From], pods[r.To]
					var ok bool
					if r.To == "Kubernetes API (outside the pod network)" {
						ok = pol.IsTrafficAllowed(&matcher.Traffic{
							Source: from.peer("10.0.0.1"), Destination: &matcher.TrafficPeer{IP: "10.96.0.1"},
							ResolvedPort: pt.port, ResolvedPortName: pt.name, Protocol: pt.proto,
						}).IsAllowed()
					} else {
						ok = allowed(pol, from, to, pt.port, pt.name, pt.proto)
					}
					r.Allowed = ok
					got = append(got, r)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s\nNetworkPolicy(...): who reaches what: -want, +got:\n%s", tc.reason, diff)
				}
			})
		}
	}
}

// TestNetworkPolicyRefusesBadSelectors: selectors the apiserver would
// refuse in the NetworkPolicy are refused on the Database, naming the field.
func TestNetworkPolicyRefusesBadSelectors(t *testing.T) {
	cases := map[string]struct {
		reason string
		peer   v1.NetworkPeer
		want   []string
	}{
		"NoSelector": {
			reason: "A peer with neither selector would admit nothing and is refused.",
			peer:   v1.NetworkPeer{},
			want:   []string{"spec.network.from[0]: Required value: set namespaceSelector, podSelector or both"},
		},
		"BadOperator": {
			reason: "An operator Kubernetes does not know is refused.",
			peer: v1.NetworkPeer{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: "Like", Values: []string{"x"}},
			}}},
			want: []string{`spec.network.from[0].podSelector.matchExpressions[0].operator: Invalid value: "Like": not a valid selector operator`},
		},
		"Valid": {
			reason: "Both selectors with labels are accepted.",
			peer: v1.NetworkPeer{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}},
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := everySpec()["postgresql-18-development-metrics=false"]
			s.Network = &v1.Network{From: []v1.NetworkPeer{tc.peer}}
			db := &v1.Database{ObjectMeta: metav1.ObjectMeta{Name: "orders", Namespace: "team-a"}, Spec: s}
			Default(&db.Spec)
			var got []string
			for _, e := range Validate(db) {
				got = append(got, e.Error())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nValidate(...): -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
