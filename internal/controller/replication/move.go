package replication

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/mysql"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// Events of MySQL primaries.
const (
	ReasonReopened event.Reason = "PrimaryReopened"
)

// A ReplicaPromoter is a Replicator the provider can fail over to and
// switch over from (MySQL): every server starts read-only, replicas follow
// whoever the read-write Service routes to, and the provider makes the one
// primary writable.
type ReplicaPromoter interface {
	Replicator

	// Promote makes the server the primary: once it applied what it
	// received it stops replicating, forgets its source and takes writes.
	// Nothing of it persists: restarted, the server is read-only again.
	Promote(ctx context.Context) error

	// Demote makes a primary refuse writes once its commits under way are
	// done, and ends every session but the provider's and the replicas'.
	Demote(ctx context.Context) error

	// StopReplication stops a replica's threads; StartReplication starts
	// them, and its receiver connects to its source anew.
	StopReplication(ctx context.Context) error
	StartReplication(ctx context.Context) error
}

// moves are how an engine's primary moves, as data: which servers can be
// promoted, which standby is, and the failover and switchover themselves.
type moves struct {
	// promotable tells whether a member's server can be promoted.
	promotable func(Server) bool
	// pick chooses the standby to promote.
	pick pickFn
	// failover and switchover make a planned move.
	failover   func(e *external, ctx context.Context, cr *v1alpha1.Replication, p promotion) error
	switchover func(e *external, ctx context.Context, cr *v1alpha1.Replication, sw switchover) error
	// reopens: servers start read-only, and the provider makes the
	// primary take writes again when it restarted (reopenDue).
	reopens bool
	// slots: the primary keeps a replication slot for every other member.
	slots bool
}

// pgMoves: PostgreSQL promotes the standby with the most WAL and gives it
// slots; standbys find it through primary_conninfo, and the old primary
// rewinds itself.
var pgMoves = moves{
	promotable: func(s Server) bool { _, ok := s.(Promoter); return ok },
	pick:       mostWAL,
	failover:   (*external).failover,
	switchover: (*external).switchover,
	slots:      true,
}

// mysqlMoves: MySQL promotes the replica holding every other's GTIDs;
// the provider repoints the replicas and makes the old primary one.
var mysqlMoves = moves{
	promotable: func(s Server) bool { _, ok := s.(ReplicaPromoter); return ok },
	pick:       gtidSuperset(mysql.PositionContains),
	failover:   (*external).failoverReplicas,
	switchover: (*external).switchoverReplicas,
	reopens:    true,
}

// gtidSuperset picks, among the candidates, the replica whose transactions
// (executed and received: what it holds once promoted) contain those of
// every other replica that answers, candidate or not, so that none of
// them is left with a transaction the new primary lacks. Only a server
// configured as a replica is one: not a blank one, nor a former primary
// that has not rejoined (it may hold transactions no replica has).
func gtidSuperset(contains ContainsFn) pickFn {
	replica := func(ans answer) bool { return ans.err == nil && ans.state != nil && ans.state.Source != nil }
	return func(a assessment, candidates []int) (int, string) {
		var answering []int
		for i, ans := range a.answers {
			if replica(ans) {
				answering = append(answering, i)
			}
		}
	next:
		for _, c := range candidates {
			if !replica(a.answers[c]) {
				continue
			}
			s := a.answers[c].state
			for _, o := range answering {
				if in, err := contains(s.Received, a.answers[o].state.Received); err != nil || !in {
					continue next
				}
			}
			return c, fmt.Sprintf("the replica whose GTIDs hold every other answering replica's (%s)", bounded(s.Received))
		}
		return -1, "no replica that may be promoted holds the GTIDs of every other answering replica"
	}
}

// reopenDue is the member to make take writes again, or -1, for engines
// whose servers start read-only: the last primary when it answers
// read-only and replicating from no one (it restarted before any
// failover), or, when no primary was ever seen, the first pod while no
// member is a replica yet (a new Database: the read-write Service routes
// to it first). Never while any member takes writes. A Replication that
// lost its status with replicas configured opens no one: which server was
// the primary is then for a human to say.
func reopenDue(m moves, members []v1alpha1.ReplicationMember, a assessment) int {
	if !m.reopens || a.primary >= 0 || len(a.primaries) > 0 {
		return -1
	}
	if a.at.LastPrimary == "" {
		for _, ans := range a.answers {
			if ans.state != nil && ans.state.Source != nil {
				return -1
			}
		}
	}
	i := -1
	for j, mb := range members {
		if (a.at.LastPrimary == "" && ordinal(mb.Name) == 0) || (a.at.LastPrimary != "" && mb.Name == a.at.LastPrimary) {
			i = j
		}
	}
	if i < 0 || i >= len(a.answers) {
		return -1
	}
	if s := a.answers[i].state; a.answers[i].err != nil || s == nil || s.Source != nil {
		return -1
	}
	return i
}

// reopen makes member i, the primary, take writes again after it started
// read-only.
func (e *external) reopen(ctx context.Context, cr *v1alpha1.Replication, i int) error {
	if err := e.openPrimary(ctx, cr, i); err != nil {
		return err
	}
	name := cr.Spec.ForProvider.Members[i].Name
	e.record.Event(cr, event.Normal(ReasonReopened, fmt.Sprintf("Made %s, the primary, take writes: it started read-only", name)))
	return nil
}

// failoverReplicas replaces a lost MySQL primary in the order PostgreSQL's
// failover keeps, so that two servers never take writes through the
// read-write Service:
//
//  1. the lost primary's Pod loses the primary label; its Pod is deleted
//     if still Ready (alive, but out of the provider's reach);
//  2. the replica applies all it received, stops replicating, forgets its
//     source, waits for semi-sync acknowledgements as asked, and only then
//     takes writes;
//  3. its Pod gets the primary label, and the other replicas (stopped
//     before step 2) start again and connect through the Service, to it,
//     from their GTIDs.
//
// The lost primary restarts read-only (the composed read_only) and is made
// a replica of the new one, or, holding transactions the new one lacks,
// re-cloned (MySQL 8) or left read-only and reported (MariaDB): repairs.
func (e *external) failoverReplicas(ctx context.Context, cr *v1alpha1.Replication, p promotion) error {
	to := cr.Spec.ForProvider.Members[p.to].Name
	e.plan.labels = []labelChange{{pod: p.from}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	// Its replicas are stopped before it opens (openPrimary); with
	// asynchronous replication, wait for it to stop.
	if err := e.fence(ctx, cr, p.from, !p.synchronous); err != nil {
		return err
	}
	if err := e.openPrimary(ctx, cr, p.to); err != nil {
		return err
	}
	at := &cr.Status.AtProvider
	at.LastFailover = &v1alpha1.Failover{At: metav1.Now(), From: p.from, To: to, Reason: p.description}
	e.record.Event(cr, event.Warning(ReasonFailover, errors.New(p.description)))
	return nil
}

// switchoverReplicas moves the MySQL primary to a replica that replicates,
// losing no acknowledged commit: the primary loses its label, refuses
// writes once its commits under way are done and ends its sessions (their
// clients reconnect through the Service); once the replica executed every
// transaction the old primary has, it is promoted as in a failover, and the
// old primary replicates from it.
func (e *external) switchoverReplicas(ctx context.Context, cr *v1alpha1.Replication, sw switchover) error {
	fp := cr.Spec.ForProvider
	from, to := fp.Members[sw.from].Name, fp.Members[sw.to].Name
	if e.credential == nil {
		return errors.Errorf("cannot switch over from %s: %s", from, e.noCredential)
	}
	old := e.servers[sw.from].(ReplicaPromoter) //nolint:forcetypeassert // Planned only when every server is a ReplicaPromoter.
	e.plan.labels = []labelChange{{pod: from}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	if err := old.Demote(ctx); err != nil {
		return errors.Wrapf(err, "cannot switch over from %s", from)
	}
	s, err := old.Observe(ctx)
	if err != nil {
		return errors.Wrapf(err, "cannot switch over from %s", from)
	}
	if err := e.executed(ctx, sw.to, s.Position); err != nil {
		return errors.Wrapf(err, "cannot switch over to %s", to)
	}
	if err := e.openPrimary(ctx, cr, sw.to); err != nil {
		return err
	}
	semiSync := s.SemiSync != nil
	if err := old.Replicate(ctx, e.source, *e.credential, semiSync); err != nil {
		return errors.Wrapf(err, "cannot make %s a replica of %s", from, to)
	}
	at := &cr.Status.AtProvider
	at.LastSwitchover = &v1alpha1.Failover{At: metav1.Now(), From: from, To: to, Reason: "spec.forProvider.switchoverTo is " + to}
	e.record.Event(cr, event.Normal(ReasonSwitchover, fmt.Sprintf("Switched over from %s to %s", from, to)))
	return nil
}

// executed waits, up to 30 s, until member i executed every transaction of
// position.
func (e *external) executed(ctx context.Context, i int, position string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		s, err := e.servers[i].Observe(ctx)
		if err == nil {
			last = s.Position
			if in, err := e.contains(s.Position, position); err == nil && in {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return errors.Errorf("the replica did not execute the old primary's transactions (%s) within 30 s: it has %s", bounded(position), bounded(last))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// openPrimary makes member i the primary: the other replicas stop
// replicating while no pod is labelled primary, it gets semi-sync as asked
// (before any app can commit on it) and takes writes, it is labelled
// primary, the other replicas start again and connect through the
// read-write Service, which now routes to it, and it is recorded as the
// primary in status. A replica stopped while the Service routes to no one
// cannot, on the way, reach the new primary with the old one's session
// ids (a semi-sync replica, stopping, kills its binary log reader on the
// host it replicates from).
func (e *external) openPrimary(ctx context.Context, cr *v1alpha1.Replication, i int) error {
	fp := cr.Spec.ForProvider
	to := fp.Members[i].Name
	srv := e.servers[i].(ReplicaPromoter) //nolint:forcetypeassert // Planned only when every server is a ReplicaPromoter.
	var prior *xsql.ReplicationState
	if i < len(e.answers) {
		prior = e.answers[i].state
	}
	// Best effort: one that does not stop or start now is repaired on a
	// later poll.
	var stopped []int
	var failed []string
	for j, ans := range e.answers {
		if j == i || ans.err != nil || ans.state == nil || ans.state.Source == nil {
			continue
		}
		if r, ok := e.servers[j].(ReplicaPromoter); ok {
			if err := r.StopReplication(ctx); err != nil {
				failed = append(failed, fp.Members[j].Name)
				continue
			}
			stopped = append(stopped, j)
		}
	}
	if prior != nil && prior.SemiSync != nil {
		if err := srv.SetSemiSync(ctx, semiSyncWanted(fp.Synchronous, len(fp.Members)-1)); err != nil {
			return errors.Wrapf(err, "cannot set semi-synchronous replication on %s", to)
		}
	}
	if err := srv.Promote(ctx); err != nil {
		return errors.Wrapf(err, "cannot promote %s", to)
	}
	e.plan.labels = []labelChange{{pod: to, value: v1alpha1.RolePrimary}}
	if err := e.relabel(ctx, cr); err != nil {
		return err
	}
	for _, j := range stopped {
		if err := e.servers[j].(ReplicaPromoter).StartReplication(ctx); err != nil { //nolint:forcetypeassert // Stopped above as one.
			failed = append(failed, fp.Members[j].Name)
		}
	}
	if len(failed) > 0 {
		e.record.Event(cr, event.Warning(ReasonReplicaConfigured, errors.Errorf("cannot reconnect %s to %s yet", strings.Join(failed, ", "), to)))
	}
	at := &cr.Status.AtProvider
	at.LastPrimary, at.Primary, at.PrimaryLostAt, at.Quorum = to, to, nil, nil
	return nil
}
