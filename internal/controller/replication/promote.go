package replication

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// Events of promotions.
const (
	ReasonFailover      event.Reason = "Failover"
	ReasonSwitchover    event.Reason = "Switchover"
	ReasonRollingUpdate event.Reason = "RollingUpdate"
)

// promoters tells whether the engine fails over and every member's server
// can be promoted.
func (e *external) promoters() bool {
	if !e.failsOver {
		return false
	}
	for _, s := range e.servers {
		if e.moves.promotable == nil || !e.moves.promotable(s) {
			return false
		}
	}
	return len(e.servers) > 0
}

// failoverDue is the failover to make now, if the engine fails over and
// decide says so, with the promoted standby's lag when last seen; else why
// not, or "".
func (e *external) failoverDue(fp v1alpha1.ReplicationParameters, a assessment, prev v1alpha1.ReplicationObservation, now time.Time) (*promotion, string) {
	if !e.promoters() {
		return nil, ""
	}
	p, why := decide(fp, a, now, e.moves.pick)
	if p != nil {
		if m := memberObserved(prev.Members, a.at.Members[p.to].Name); m != nil {
			p.lagBytes = m.LagBytes
		}
	}
	return p, why
}

// primaryMove is a failover or a switchover to make now, as a plan of its
// own; else why the primary cannot move yet, or "".
func (e *external) primaryMove(ctx context.Context, cr *v1alpha1.Replication, a assessment, prev v1alpha1.ReplicationObservation, now time.Time, pods map[string]pod) (*plan, string) {
	fp := cr.Spec.ForProvider
	if i := reopenDue(e.moves, fp.Members, a); i >= 0 && e.promoters() {
		cr.SetConditions(xpv2.Unavailable().WithMessage(fmt.Sprintf("%s, the primary, started read-only: making it take writes", fp.Members[i].Name)))
		return &plan{reopen: &i}, ""
	}
	promote, why := e.failoverDue(fp, a, prev, now)
	if promote != nil {
		cr.SetConditions(xpv2.Unavailable().WithMessage("failing over: " + promote.reason))
		return &plan{promote: promote}, ""
	}
	if !e.promoters() {
		return nil, why
	}
	sw, swWhy := switchoverDue(fp, a)
	if sw != nil {
		return &plan{switchover: sw}, ""
	}
	roll, rollWhy, err := e.rollout(ctx, cr, a, pods)
	if err != nil {
		rollWhy = err.Error()
	}
	if roll != nil {
		return roll, ""
	}
	return nil, strings.Join(slices.DeleteFunc([]string{why, swWhy, rollWhy}, func(s string) bool { return s == "" }), "; ")
}

// rollout is the next step of rolling the Pods to their StatefulSet's new
// revision (update strategy OnDelete): while every standby streams, restart
// the outdated standby of the highest ordinal; once only the primary is
// outdated, switch over to an updated standby that streams, which restarts
// the old primary. Nil when the Pods run the new revision, or when the
// step must wait (why says for what).
func (e *external) rollout(ctx context.Context, cr *v1alpha1.Replication, a assessment, pods map[string]pod) (*plan, string, error) {
	fp := cr.Spec.ForProvider
	if fp.StatefulSet == "" || a.primary < 0 {
		return nil, "", nil
	}
	sts := &appsv1.StatefulSet{}
	if err := e.pods.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: fp.StatefulSet}, sts); err != nil {
		return nil, "", errors.Wrapf(err, "cannot get StatefulSet %q", fp.StatefulSet)
	}
	next := rolloutStep(fp.Members, a, pods, sts.Status.UpdateRevision)
	return next.plan, next.why, nil
}

// A step is what rolloutStep decides.
type step struct {
	plan *plan
	why  string
}

// rolloutStep is the pure half of rollout.
func rolloutStep(members []v1alpha1.ReplicationMember, a assessment, pods map[string]pod, revision string) step {
	if revision == "" {
		return step{}
	}
	outdated := func(name string) bool { p, ok := pods[name]; return ok && p.revision != revision }
	var standbys []int
	for i, m := range members {
		if i != a.primary && outdated(m.Name) {
			standbys = append(standbys, i)
		}
	}
	if len(standbys) == 0 && !outdated(members[a.primary].Name) {
		return step{}
	}
	if why := readyMessage(a); why != "" {
		return step{why: "rolling update waits: " + why}
	}
	if len(standbys) > 0 {
		return step{plan: &plan{restart: members[standbys[len(standbys)-1]].Name}}
	}
	for i, m := range a.at.Members {
		if i != a.primary && m.Streaming && !outdated(m.Name) {
			return step{plan: &plan{switchover: &switchover{from: a.primary, to: i}}}
		}
	}
	return step{why: "rolling update waits for an updated standby that streams"}
}

// restart deletes a standby's Pod: its server stops, and the StatefulSet
// creates the Pod again at its new revision.
func (e *external) restart(ctx context.Context, cr *v1alpha1.Replication, name string) error {
	deleted, err := e.deletePod(ctx, cr, name, "to roll it", func(*corev1.Pod) bool { return true })
	if deleted {
		e.record.Event(cr, event.Normal(ReasonRollingUpdate, fmt.Sprintf("Deleted Pod %s: it comes back at the StatefulSet's new revision", name)))
	}
	return err
}

// deletePod deletes member name's Pod, the one read now, when want says so
// of it; a Pod that is gone needs nothing. It tells whether it deleted one;
// why completes the error message.
func (e *external) deletePod(ctx context.Context, cr *v1alpha1.Replication, name, why string, want func(*corev1.Pod) bool) (bool, error) {
	pod := &corev1.Pod{}
	err := e.pods.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: name}, pod)
	if client.IgnoreNotFound(err) != nil {
		return false, errors.Wrapf(err, "cannot get Pod %q", name)
	}
	if err != nil || !want(pod) {
		return false, nil
	}
	if err := e.kube.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil {
		return false, errors.Wrapf(err, "cannot delete Pod %q %s", name, why)
	}
	return true, nil
}

// clock is the time failover decisions read.
func (e *external) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// failover replaces a lost primary, in an order that never lets two
// servers take writes through the read-write Service:
//
//  1. the lost primary's Pod loses the primary label, so the Service
//     routes no new connection to it; if its Pod is still Ready (alive,
//     but out of the provider's reach) it is deleted, which ends the
//     sessions it still has;
//  2. the standby is promoted, given a slot for every other member and,
//     with synchronous replication, made to wait for them;
//  3. its Pod gets the primary label, and the other standbys reconnect,
//     through the Service, to it.
//
// The lost primary, when it starts again, finds another primary behind the
// Service and rewinds itself into a standby (the pods' init step).
func (e *external) failover(ctx context.Context, cr *v1alpha1.Replication, p promotion) error {
	fp := cr.Spec.ForProvider
	to := fp.Members[p.to].Name
	e.plan.labels = []labelChange{{pod: p.from}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	if err := e.fence(ctx, cr, p.from); err != nil {
		return err
	}
	if err := e.promote(ctx, cr, p.to); err != nil {
		return err
	}
	at := &cr.Status.AtProvider
	at.LastFailover = &v1alpha1.Failover{At: metav1.Now(), From: p.from, To: to, Reason: p.reason, LagBytes: p.lagBytes}
	e.record.Event(cr, event.Warning(ReasonFailover, errors.New(p.reason)))
	return nil
}

// switchover moves the primary to a standby that streams, losing nothing:
// the primary loses its label and its pod is deleted, which shuts the
// server down (fast: its sessions end) after it sent every WAL record to
// its standbys; once the standby has replayed all it received it is
// promoted as in a failover. The old primary's pod comes back and rewinds
// into a standby.
func (e *external) switchover(ctx context.Context, cr *v1alpha1.Replication, sw switchover) error {
	fp := cr.Spec.ForProvider
	from, to := fp.Members[sw.from].Name, fp.Members[sw.to].Name
	e.plan.labels = []labelChange{{pod: from}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	// Before it stops: started again before the standby is promoted, it
	// would find no primary behind the Service and start as one.
	if err := e.servers[sw.from].(Promoter).MarkDemoted(ctx); err != nil { //nolint:forcetypeassert // Planned only when every server is a Promoter.
		return errors.Wrapf(err, "cannot switch over from %s", from)
	}
	if _, err := e.deletePod(ctx, cr, from, "to stop the primary", func(*corev1.Pod) bool { return true }); err != nil {
		return err
	}
	if err := e.caughtUp(ctx, sw.to); err != nil {
		return errors.Wrapf(err, "cannot switch over to %s", to)
	}
	if err := e.promote(ctx, cr, sw.to); err != nil {
		return err
	}
	at := &cr.Status.AtProvider
	at.LastSwitchover = &v1alpha1.Failover{At: metav1.Now(), From: from, To: to, Reason: "spec.forProvider.switchoverTo is " + to}
	e.record.Event(cr, event.Normal(ReasonSwitchover, fmt.Sprintf("Switched over from %s to %s", from, to)))
	return nil
}

// caughtUp waits, up to 30 s, until the standby's WAL receiver stopped (its
// primary is down) and it replayed everything it received.
func (e *external) caughtUp(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		s, err := e.servers[i].Observe(ctx)
		if err == nil && s.Receiver != "streaming" && s.ReceivedLSN != "" && s.ReceivedLSN == s.ReplayedLSN {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the old primary did not stop, or the standby did not replay what it received, within 30 s")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// promote promotes member i, gives it a slot for every other member and
// its synchronous standbys, labels it primary, has the other standbys
// reconnect, and records it as the primary in status.
func (e *external) promote(ctx context.Context, cr *v1alpha1.Replication, i int) error {
	fp := cr.Spec.ForProvider
	to := fp.Members[i].Name
	srv := e.servers[i].(Promoter) //nolint:forcetypeassert // Planned only when every server is a Promoter.
	if err := srv.Promote(ctx); err != nil {
		return errors.Wrapf(err, "cannot promote %s", to)
	}
	var others []string
	for j, m := range fp.Members {
		if j == i || ordinal(m.Name) < 0 {
			continue
		}
		others = append(others, m.Name)
		if err := srv.CreateSlot(ctx, slotOf(fp.SlotPrefix, m.Name)); err != nil {
			return errors.Wrapf(err, "cannot create the slot of %s on %s", m.Name, to)
		}
	}
	// Synchronous before any app can write to it: a commit it
	// acknowledges is on a standby too.
	if e.render != nil {
		want, err := e.render(fp.Synchronous, others)
		if err != nil {
			return errors.Wrap(err, "cannot render synchronous_standby_names")
		}
		if err := srv.SetSynchronousStandbyNames(ctx, want); err != nil {
			return errors.Wrapf(err, "cannot set synchronous_standby_names on %s", to)
		}
	}
	e.plan.labels = []labelChange{{pod: to, value: v1alpha1.RolePrimary}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	for j, m := range cr.Status.AtProvider.Members {
		if j != i && m.Role == v1alpha1.MemberStandby {
			// Best effort: one that does not reconnect now does on its
			// next retry (wal_retrieve_retry_interval).
			_ = e.servers[j].(Promoter).RestartReceiver(ctx) //nolint:forcetypeassert // As above.
		}
	}
	at := &cr.Status.AtProvider
	at.LastPrimary, at.Primary, at.PrimaryLostAt, at.Quorum = to, to, nil, nil
	return nil
}

// fence deletes the lost primary's Pod when it is still Ready: the server
// answers its kubelet but not the provider, and may still hold sessions.
// A Pod that is not Ready, or gone, needs nothing.
func (e *external) fence(ctx context.Context, cr *v1alpha1.Replication, name string) error {
	deleted, err := e.deletePod(ctx, cr, name, "of the lost primary", ready)
	if deleted {
		e.record.Event(cr, event.Normal(ReasonFailover, fmt.Sprintf("Deleted Pod %s: its server was Ready but did not answer the provider", name)))
	}
	return err
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
