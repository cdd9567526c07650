package replication

import (
	"math"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// statusRefresh is how long the measures in a Replication's status (WAL
// locations, lag, retained WAL) are kept while nothing else changes.
// Crossplane reconciles the Database on every change of a Replication it
// composed, and writes the Database's status; its circuit breaker (100
// events, refilled at 1 a second) holds back a Database whose composed
// resources change faster than that. Measured lag changes on every poll.
const statusRefresh = 30 * time.Second

// Steps of the measures' scales: a lag of 1 s, or 64 KiB, times 1, 2, 5,
// 10, 20, 50 and so on. A measure that moves to another step is written
// at once.
const (
	lagStep   = 1000     // milliseconds
	bytesStep = 64 << 10 // bytes
)

// settle keeps prev's measures in at when they are younger than
// statusRefresh and nothing else about the members and slots changed, so
// that a Replication in a steady state is written once every
// statusRefresh, not on every poll. Everything the controller decides on
// comes from what it just asked, never from these.
func settle(at *v1alpha1.ReplicationObservation, prev v1alpha1.ReplicationObservation, now time.Time) {
	if prev.MeasuredAt == nil || now.Sub(prev.MeasuredAt.Time) >= statusRefresh || changed(*at, prev) {
		at.MeasuredAt = &metav1.Time{Time: now}
		return
	}
	at.MeasuredAt = prev.MeasuredAt
	at.Members = slices.Clone(at.Members)
	for i := range at.Members {
		p := prev.Members[i]
		m := &at.Members[i]
		m.ReceivedLSN, m.ReplayedLSN, m.LagBytes, m.LagMillis = p.ReceivedLSN, p.ReplayedLSN, p.LagBytes, p.LagMillis
	}
	at.Slots = slices.Clone(at.Slots)
	for i := range at.Slots {
		at.Slots[i].RetainedBytes = prev.Slots[i].RetainedBytes
	}
}

// changed tells whether at differs from prev in more than its measures'
// values within their steps.
func changed(at, prev v1alpha1.ReplicationObservation) bool {
	if len(at.Members) != len(prev.Members) || len(at.Slots) != len(prev.Slots) {
		return true
	}
	for i, m := range at.Members {
		p := prev.Members[i]
		if m.Name != p.Name || m.Role != p.Role || m.Streaming != p.Streaming || m.SyncState != p.SyncState ||
			m.Timeline != p.Timeline || m.Message != p.Message ||
			scaleStep(m.LagMillis, lagStep) != scaleStep(p.LagMillis, lagStep) || scaleStep(m.LagBytes, bytesStep) != scaleStep(p.LagBytes, bytesStep) {
			return true
		}
	}
	for i, s := range at.Slots {
		p := prev.Slots[i]
		if s.Name != p.Name || s.Active != p.Active || s.WALStatus != p.WALStatus || scaleStep(s.RetainedBytes, bytesStep) != scaleStep(p.RetainedBytes, bytesStep) {
			return true
		}
	}
	return false
}

// scaleStep is v's step on the scale unit times 1, 2, 5, 10, 20, 50...: 0 below
// unit, then 1, 2, 3...
func scaleStep(v, unit int64) int {
	if v < unit {
		return 0
	}
	s := 1
	for b := unit; b <= math.MaxInt64/10; b *= 10 {
		switch {
		case v < 2*b:
			return s
		case v < 5*b:
			return s + 1
		case v < 10*b:
			return s + 2
		}
		s += 3
	}
	return s
}
