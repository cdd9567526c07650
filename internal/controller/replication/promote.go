package replication

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kerrors "k8s.io/apimachinery/pkg/api/errors"
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
		to := a.at.Members[p.to]
		p.description = p.reason(to.Name, p.what)
		if m := memberObserved(prev.Members, to.Name); m != nil {
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
		cr.SetConditions(xpv2.Unavailable().WithMessage("failing over: " + promote.description))
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
	uid, err := e.deletePod(ctx, cr, name, "to roll it", func(*corev1.Pod) bool { return true })
	if uid != "" {
		e.record.Event(cr, event.Normal(ReasonRollingUpdate, fmt.Sprintf("Deleted Pod %s: it comes back at the StatefulSet's new revision", name)))
	}
	return err
}

// deletePod deletes member name's Pod, the one read now, when want says so
// of it; a Pod that is gone needs nothing. It returns the UID of the Pod it
// deleted, or ""; why completes the error message.
func (e *external) deletePod(ctx context.Context, cr *v1alpha1.Replication, name, why string, want func(*corev1.Pod) bool) (types.UID, error) {
	pod := &corev1.Pod{}
	err := e.pods.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: name}, pod)
	if client.IgnoreNotFound(err) != nil {
		return "", errors.Wrapf(err, "cannot get Pod %q", name)
	}
	if err != nil || !want(pod) {
		return "", nil
	}
	if err := e.kube.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil {
		return "", errors.Wrapf(err, "cannot delete Pod %q %s", name, why)
	}
	return pod.UID, nil
}

// clock is the time failover decisions read.
func (e *external) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// failover replaces a lost primary, in an order that never lets two
// servers take writes through the read-write Service, and never promotes a
// standby that lacks a commit another standby acknowledged:
//
//  1. the lost primary's Pod loses the primary label, so the Service
//     routes no new connection to it; if its Pod is still Ready (alive,
//     but out of the provider's reach) it is deleted, which ends the
//     sessions it still has, and waited for, up to fenceWait;
//  2. every standby is detached: it stops receiving WAL from anyone, so
//     a lost primary that is only cut off from the provider gets no more
//     acknowledgements, and what each standby received is final;
//  3. of the eligible standbys, the one that received the most is
//     promoted, given a slot for every other member and, with
//     synchronous replication, made to wait for them;
//  4. its Pod gets the primary label, and the other standbys are attached
//     again: they stream, through the Service, from it.
//
// The lost primary, when it starts again, finds another primary behind the
// Service and rewinds itself into a standby (the pods' init step).
func (e *external) failover(ctx context.Context, cr *v1alpha1.Replication, p promotion) error {
	fp := cr.Spec.ForProvider
	e.plan.labels = []labelChange{{pod: p.from}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	// Synchronously, detached standbys keep the lost primary from
	// committing anything more: no need to wait for it to stop.
	if err := e.fence(ctx, cr, p.from, !p.synchronous); err != nil {
		return err
	}
	if err := e.detach(ctx, cr, p); err != nil {
		return err
	}
	to, received, err := e.mostReceivedNow(ctx, cr, p)
	if err != nil {
		return err
	}
	if err := e.promote(ctx, cr, to); err != nil {
		return err
	}
	reason := p.reason(fp.Members[to].Name, mostWALWhat(received))
	at := &cr.Status.AtProvider
	at.LastFailover = &v1alpha1.Failover{At: metav1.Now(), From: p.from, To: fp.Members[to].Name, Reason: reason, LagBytes: p.lagBytes}
	e.record.Event(cr, event.Warning(ReasonFailover, errors.New(reason)))
	return nil
}

// detachWait bounds detaching the standbys.
const detachWait = 5 * time.Second

// detach detaches, at once, every member but the lost primary that this
// poll saw as a standby, within detachWait. A standby not detached may
// still acknowledge the lost primary's commits: with synchronous
// replication the failover stops unless fewer than the commits waited for
// can be (the next poll decides again); without, it goes on.
func (e *external) detach(ctx context.Context, cr *v1alpha1.Replication, p promotion) error {
	ctx, cancel := context.WithTimeout(ctx, detachWait)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var failed []string
	e.detached = map[int]bool{}
	for i, m := range cr.Status.AtProvider.Members {
		if m.Name == p.from || m.Role != v1alpha1.MemberStandby {
			continue
		}
		wg.Go(func() {
			err := e.servers[i].(Promoter).Detach(ctx) //nolint:forcetypeassert // Planned only when every server is a Promoter.
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s (%v)", m.Name, err))
				return
			}
			e.detached[i] = true
		})
	}
	wg.Wait()
	if p.synchronous && len(failed) > 0 {
		slices.Sort(failed)
		return errors.Errorf("cannot fail over from %s: standbys %s could not be detached, and may still acknowledge its commits", p.from, strings.Join(failed, ", "))
	}
	return nil
}

// mostReceivedNow asks the eligible standbys, detached, what they received
// and returns the one that received the most, and its location. With
// synchronous replication, more eligible standbys than p.unsure that do
// not answer now stop the failover: an acknowledged commit may be only on
// them.
func (e *external) mostReceivedNow(ctx context.Context, cr *v1alpha1.Replication, p promotion) (int, string, error) {
	now := slices.Clone(cr.Status.AtProvider.Members)
	var answered []int
	var silent []string
	for _, i := range p.eligible {
		s, err := e.servers[i].Observe(ctx)
		if err != nil || !e.detached[i] {
			silent = append(silent, now[i].Name)
			continue
		}
		now[i].ReceivedLSN = s.ReceivedLSN
		answered = append(answered, i)
	}
	if p.synchronous && len(silent) > p.unsure {
		return -1, "", errors.Errorf("cannot fail over from %s: synchronous standbys %s do not answer once detached, and a commit it acknowledged may be only on them", p.from, strings.Join(silent, ", "))
	}
	best := mostReceived(now, answered)
	if best < 0 {
		return -1, "", errors.New("cannot fail over: no eligible standby answers with its WAL position once detached")
	}
	return best, now[best].ReceivedLSN, nil
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
	var others []string
	for j, m := range fp.Members {
		if j != i && ordinal(m.Name) >= 0 {
			others = append(others, m.Name)
		}
	}
	// Synchronous before it is promoted: no commit it acknowledges, even
	// if a later step fails, is only on it.
	if e.render != nil {
		want, err := e.render(fp.Synchronous, others)
		if err != nil {
			return errors.Wrap(err, "cannot render synchronous_standby_names")
		}
		if err := srv.SetSynchronousStandbyNames(ctx, want); err != nil {
			return errors.Wrapf(err, "cannot set synchronous_standby_names on %s", to)
		}
	}
	if err := srv.Promote(ctx); err != nil {
		return errors.Wrapf(err, "cannot promote %s", to)
	}
	// Not detached any more: demoted one day, it streams again.
	if e.detached[i] {
		if err := srv.Attach(ctx); err != nil {
			return errors.Wrapf(err, "cannot promote %s", to)
		}
	}
	for _, m := range others {
		if err := srv.CreateSlot(ctx, slotOf(fp.SlotPrefix, m)); err != nil {
			return errors.Wrapf(err, "cannot create the slot of %s on %s", m, to)
		}
	}
	e.plan.labels = []labelChange{{pod: to, value: v1alpha1.RolePrimary}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	for j, m := range cr.Status.AtProvider.Members {
		if j == i || m.Role != v1alpha1.MemberStandby {
			continue
		}
		// Best effort: one that does not reconnect now does on its next
		// retry (wal_retrieve_retry_interval); one not attached now is on
		// a later poll.
		if e.detached[j] {
			_ = e.servers[j].(Promoter).Attach(ctx) //nolint:forcetypeassert // As above.
			continue
		}
		_ = e.servers[j].(Promoter).RestartReceiver(ctx) //nolint:forcetypeassert // As above.
	}
	at := &cr.Status.AtProvider
	at.LastPrimary, at.Primary, at.PrimaryLostAt, at.Quorum = to, to, nil, nil
	return nil
}

// fenceWait bounds how long an asynchronous failover waits for a fenced Pod
// to be gone: its server stopped, which takes a kubelet that reaches it a
// second at most, and until then it may commit on the sessions it holds.
// One cut off from its standbys may take its whole grace period to stop
// (its WAL senders wait for standbys it cannot reach), and a kubelet cut
// off from the API server never says so: the failover goes on without. A
// synchronous failover does not wait: detached standbys acknowledge nothing
// to the server, so it commits nothing more.
const fenceWait = 2 * time.Second

// fence deletes the lost primary's Pod when it is still Ready: the server
// answers its kubelet but not the provider, and may still hold sessions.
// With wait, it waits until the Pod is gone, up to fenceWait. A Pod that is
// not Ready, or gone, needs nothing.
func (e *external) fence(ctx context.Context, cr *v1alpha1.Replication, name string, wait bool) error {
	uid, err := e.deletePod(ctx, cr, name, "of the lost primary", ready)
	if err != nil || uid == "" {
		return err
	}
	e.record.Event(cr, event.Normal(ReasonFailover, fmt.Sprintf("Deleted Pod %s: its server was Ready but did not answer the provider", name)))
	if wait && !e.gone(ctx, cr, name, uid, fenceWait) {
		e.record.Event(cr, event.Warning(ReasonFailover, errors.Errorf("Pod %s was not gone %s after it was deleted: failing over without knowing its server stopped", name, fenceWait)))
	}
	return nil
}

// gone waits, up to within, until Pod name of uid no longer exists.
func (e *external) gone(ctx context.Context, cr *v1alpha1.Replication, name string, uid types.UID, within time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		p := &corev1.Pod{}
		err := e.pods.Get(ctx, types.NamespacedName{Namespace: cr.GetNamespace(), Name: name}, p)
		if kerrors.IsNotFound(err) || (err == nil && p.UID != uid) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
