//go:build e2e

package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Condition returns the status, reason and message of a Crossplane-style
// condition of o.
func Condition(o *unstructured.Unstructured, typ string) (status, reason, message string) {
	if o == nil {
		return "", "", ""
	}
	cs, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range cs {
		m, ok := c.(map[string]any)
		if !ok || m["type"] != typ {
			continue
		}
		s, _ := m["status"].(string)
		r, _ := m["reason"].(string)
		msg, _ := m["message"].(string)
		return s, r, msg
	}
	return "", "", ""
}

// ObservedGeneration returns the observedGeneration of a condition of o.
func ObservedGeneration(o *unstructured.Unstructured, typ string) int64 {
	cs, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range cs {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			g, _ := m["observedGeneration"].(int64)
			return g
		}
	}
	return 0
}

// Conditions summarises every condition of o, for error messages.
func Conditions(o *unstructured.Unstructured) string {
	if o == nil {
		return "<none>"
	}
	cs, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	var b []string
	for _, c := range cs {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		b = append(b, fmt.Sprintf("%v=%v (%v: %v)", m["type"], m["status"], m["reason"], m["message"]))
	}
	if len(b) == 0 {
		return "<none>"
	}
	return strings.Join(b, "; ")
}

// setCondition sets (adds or replaces) a condition in o's status.
func setCondition(o *unstructured.Unstructured, typ, status, reason, message string) {
	cs, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	c := map[string]any{
		"type":               typ,
		"status":             status,
		"reason":             reason,
		"message":            message,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}
	i := slices.IndexFunc(cs, func(x any) bool { m, ok := x.(map[string]any); return ok && m["type"] == typ })
	if i >= 0 {
		cs[i] = c
	} else {
		cs = append(cs, c)
	}
	_ = unstructured.SetNestedSlice(o.Object, cs, "status", "conditions")
}
