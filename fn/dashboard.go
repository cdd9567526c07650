package fn

import (
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/function-sdk-go/resource"
)

// rnDashboard is a Database's Grafana dashboard.
const rnDashboard resource.Name = "dashboard"

// The Grafana sidecar (kube-prometheus-stack, grafana's k8s-sidecar) loads
// every ConfigMap with this label as dashboards, one per key.
const (
	labelGrafanaDashboard = "grafana_dashboard"
	dashboardKey          = "dbplane.json"
)

// A panel is a time series panel of a dashboard: its queries are PromQL
// with the placeholders of alert expressions ({{pods}}, {{claims}},
// {{cronjob}}), one series per legend.
type panel struct {
	Title   string
	Unit    string // Grafana's unit: short, percentunit, s, bytes, reqps
	Queries []query
}

type query struct {
	Expr   string
	Legend string
}

// commonPanels are the panels every engine's dashboard ends with: what
// Kubernetes measures of its volumes and backups.
var commonPanels = []panel{
	{Title: "Volume space used", Unit: "percentunit", Queries: []query{{
		`1 - kubelet_volume_stats_available_bytes{{{claims}}} / kubelet_volume_stats_capacity_bytes{{{claims}}}`, "{{persistentvolumeclaim}}",
	}}},
	{Title: "Last successful backup (age)", Unit: "s", Queries: []query{{
		`time() - kube_cronjob_status_last_successful_time{{{cronjob}}}`, "{{cronjob}}",
	}}},
}

// Dashboard is a Database's Grafana dashboard in a ConfigMap the Grafana
// sidecar loads: availability, connections, throughput, latency where the
// exporter measures it, replication, storage and backups of this Database
// alone (its uid is the Database's, so dashboards of two Databases never
// collide), for any Prometheus data source.
func Dashboard(p Params) *corev1.ConfigMap {
	r := strings.NewReplacer(
		"{{pods}}", `namespace="`+p.Namespace+`",pod=~"`+p.StatefulSet()+`-[0-9]+"`,
		"{{claims}}", `namespace="`+p.Namespace+`",persistentvolumeclaim=~"`+dataVolume+"-"+p.StatefulSet()+`-[0-9]+|`+p.BackupVolume()+`"`,
		"{{cronjob}}", `namespace="`+p.Namespace+`",cronjob="`+p.BackupCronJob()+`"`,
	)
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []any
	for i, pn := range append(append([]panel{}, p.Engine.Exporter.Panels...), commonPanels...) {
		var targets []any
		for j, q := range pn.Queries {
			targets = append(targets, map[string]any{
				"datasource": ds, "expr": r.Replace(q.Expr), "legendFormat": q.Legend, "refId": string(rune('A' + j)),
			})
		}
		panels = append(panels, map[string]any{
			"id": i + 1, "type": "timeseries", "title": pn.Title, "datasource": ds,
			"gridPos":     map[string]any{"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i / 2) * 8},
			"fieldConfig": map[string]any{"defaults": map[string]any{"unit": pn.Unit}, "overrides": []any{}},
			"targets":     targets,
		})
	}
	d := map[string]any{
		"uid":           "dbplane-" + digest([]byte(p.Namespace + "/" + p.Name))[:12],
		"title":         "Database " + p.Namespace + "/" + p.Name + " (" + string(p.names.Engine) + ")",
		"tags":          []string{"dbplane", string(p.names.Engine)},
		"schemaVersion": 39,
		"editable":      false,
		"refresh":       "30s",
		"time":          map[string]any{"from": "now-6h", "to": "now"},
		"templating": map[string]any{"list": []any{map[string]any{
			"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
		}}},
		"panels": panels,
	}
	j, _ := json.MarshalIndent(d, "", "  ") //nolint:errchkjson // Maps of strings, numbers and slices always marshal.
	labels := p.Labels("monitoring")
	labels[labelGrafanaDashboard] = "1"
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name + "-dashboard", Namespace: p.Namespace, Labels: labels},
		Data:       map[string]string{dashboardKey: string(j)},
	}
}
