package replication

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// defaultFailoverAfter is how long a lost primary is waited for when
// spec.forProvider.failoverAfterSeconds is unset.
const defaultFailoverAfter = 5 * time.Second

// A promotion is a failover the controller decided on: promote member to,
// the one of eligible the engine picked when asked, to replace the lost
// primary from.
type promotion struct {
	to       int
	eligible []int
	// unsure is how many more eligible standbys may fail to answer, or be
	// detached, and still one that answers holds every acknowledged commit;
	// -1 without synchronous replication.
	unsure int
	from   string
	// lost is how long from had been unreachable; synchronous tells the
	// mode, for the reason.
	lost        time.Duration
	synchronous bool
	lagBytes    int64
	// what makes to the one (the engine's pick says).
	what string
	// description is the reason as decided, before the standbys were
	// asked again.
	description string
}

// reason says why member (what makes it the one) replaces the lost
// primary, and what the mode means for the commits.
func (p promotion) reason(member, what string) string {
	mode := "asynchronous: commits it had not received are lost"
	if p.synchronous {
		mode = "synchronous: it holds every acknowledged commit"
	}
	return fmt.Sprintf("primary %s unreachable for %s; promoted %s, %s; %s",
		p.from, p.lost.Round(100*time.Millisecond), member, what, mode)
}

// remember carries what failover needs from one poll to the next into the
// observed status: the primary last seen, since when it has been lost, and
// the standbys that were synchronous while it was seen.
func remember(a *assessment, prev v1alpha1.ReplicationObservation, now time.Time) {
	at := &a.at
	at.LastFailover, at.LastSwitchover = prev.LastFailover, prev.LastSwitchover
	if a.primary >= 0 {
		at.LastPrimary = at.Primary
		for _, m := range at.Members {
			if m.SyncState == "quorum" || m.SyncState == "sync" {
				at.Quorum = append(at.Quorum, m.Name)
			}
		}
		return
	}
	at.LastPrimary, at.Quorum = prev.LastPrimary, prev.Quorum
	if lost := memberObserved(at.Members, at.LastPrimary); lost != nil && lost.Role == v1alpha1.MemberUnreachable && !a.splitBrain() {
		at.PrimaryLostAt = prev.PrimaryLostAt
		if at.PrimaryLostAt == nil {
			at.PrimaryLostAt = &metav1.Time{Time: now}
		}
	}
}

// decide tells whether to fail over now, and if not, why not ("" when
// there is nothing to fail over from). It promotes only when the last
// primary has been unreachable for the delay and no other member is
// primary. With synchronous replication it promotes only a standby that was
// synchronous, and only when every such standby but fewer than the number a
// commit waited for answers: then one that answers holds every commit the
// primary acknowledged, and it promotes the one pick chooses among them.
// Without, pick chooses among every standby that answers.
func decide(p v1alpha1.ReplicationParameters, a assessment, now time.Time, pick pickFn) (*promotion, string) {
	at := a.at
	if a.primary >= 0 || a.splitBrain() || at.PrimaryLostAt == nil {
		return nil, ""
	}
	after := defaultFailoverAfter
	if p.FailoverAfterSeconds != nil {
		after = time.Duration(*p.FailoverAfterSeconds) * time.Second
	}
	lost := now.Sub(at.PrimaryLostAt.Time)
	// Since when, not for how long: a message that changes on every poll
	// is a status write on every poll (every 0.5 s while the primary is
	// lost), and a Database reconcile for each, which trips Crossplane's
	// circuit breaker on the Database and leaves its status stale.
	since := at.PrimaryLostAt.UTC().Format(time.RFC3339)
	if after == 0 {
		return nil, fmt.Sprintf("primary %s unreachable since %s; automatic failover is off", at.LastPrimary, since)
	}
	if lost < after {
		return nil, fmt.Sprintf("primary %s unreachable since %s: failing over after %s", at.LastPrimary, since, after)
	}
	// A standby still hears from it: the primary serves the data plane, and
	// only the provider's way to it is cut. Failing over would turn a fault
	// of the provider's network into an outage for the apps.
	for _, i := range slices.Sorted(maps.Keys(a.heard)) {
		if a.heard[i] < after.Milliseconds() {
			return nil, fmt.Sprintf("primary %s unreachable since %s, but standby %s still streams from it: no failover while a standby hears from the primary", at.LastPrimary, since, at.Members[i].Name)
		}
	}

	eligible := map[string]bool{}
	unsure := -1
	if p.Synchronous > 0 {
		if len(at.Quorum) == 0 {
			return nil, fmt.Sprintf("cannot fail over from %s: no standby was synchronous when it was last seen, so none is known to hold every acknowledged commit", at.LastPrimary)
		}
		var missing []string
		for _, q := range at.Quorum {
			if m := memberObserved(at.Members, q); m == nil || m.Role != v1alpha1.MemberStandby {
				missing = append(missing, q)
				continue
			}
			eligible[q] = true
		}
		// A commit waited for min(N, quorum) of them: some standby that
		// answers has it unless that many are missing.
		if n := min(p.Synchronous, len(at.Quorum)); len(missing) >= n {
			return nil, fmt.Sprintf("cannot fail over from %s: synchronous standbys %s do not answer, and a commit the primary acknowledged may be only on them", at.LastPrimary, strings.Join(missing, ", "))
		}
		unsure = min(p.Synchronous, len(at.Quorum)) - len(missing) - 1
	}
	var candidates []int
	for i, m := range at.Members {
		if m.Role == v1alpha1.MemberStandby && (p.Synchronous == 0 || eligible[m.Name]) {
			candidates = append(candidates, i)
		}
	}
	best, what := pick(a, candidates)
	if best < 0 {
		return nil, fmt.Sprintf("cannot fail over from %s: %s", at.LastPrimary, what)
	}
	return &promotion{
		to: best, eligible: candidates, unsure: unsure, from: at.LastPrimary, lost: lost, synchronous: p.Synchronous > 0,
		what: what, lagBytes: at.Members[best].LagBytes,
	}, ""
}

// A pickFn chooses the standby to promote among candidates (member
// indexes of standbys that answer and may be promoted), and says what
// makes it the one; -1 and why none can be, when none can.
type pickFn func(a assessment, candidates []int) (int, string)

// mostWAL picks the PostgreSQL standby that received the most WAL.
func mostWAL(a assessment, candidates []int) (int, string) {
	best := mostReceived(a.at.Members, candidates)
	if best < 0 {
		return -1, "no standby answers with its WAL position"
	}
	return best, mostWALWhat(a.at.Members[best].ReceivedLSN)
}

func mostWALWhat(lsn string) string {
	return fmt.Sprintf("the standby with the most WAL received (%s)", lsn)
}

// mostReceived is the one of candidates (indices into members) that
// received the most WAL, or -1 when none tells.
func mostReceived(members []v1alpha1.MemberObservation, candidates []int) int {
	best, bestLSN := -1, uint64(0)
	for _, i := range candidates {
		lsn, ok := parseLSN(members[i].ReceivedLSN)
		if ok && (best < 0 || lsn > bestLSN) {
			best, bestLSN = i, lsn
		}
	}
	return best
}

func memberObserved(ms []v1alpha1.MemberObservation, name string) *v1alpha1.MemberObservation {
	for i := range ms {
		if ms[i].Name == name {
			return &ms[i]
		}
	}
	return nil
}

// parseLSN reads a PostgreSQL WAL location, X/Y in hexadecimal.
func parseLSN(s string) (uint64, bool) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, false
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return h<<32 | l, true
}

// missingSlots are the slots the primary lacks for the other members: a
// standby promoted by a failover has none, and the standbys that follow it
// stream on their own slot.
func missingSlots(prefix string, members []v1alpha1.ReplicationMember, primary int, slots []xsql.Slot) []string {
	have := map[string]bool{}
	for _, s := range slots {
		have[s.Name] = true
	}
	var out []string
	for i, m := range members {
		if s := slotOf(prefix, m.Name); i != primary && ordinal(m.Name) >= 0 && !have[s] {
			out = append(out, s)
		}
	}
	return out
}

// detachedMembers are the members that say a failover detached them: a
// failover that stopped half way, a standby not reached when the others
// were attached, or a promoted one whose attach failed.
func detachedMembers(answers []answer) []int {
	var out []int
	for i, a := range answers {
		if a.err == nil && a.state != nil && a.state.Detached {
			out = append(out, i)
		}
	}
	return out
}

// stalePrimaries are the primaries of a split brain whose Pods to delete:
// every one but the primary the provider last recorded, when that one's Pod
// carries the primary label, and theirs does not. That is a lost primary
// that came back as one after a failover (its container restarted in place,
// without the init step), or a standby promoted behind the provider's back;
// the read-write Service routes to neither. Deleted, its Pod comes back
// through the init step, which rewinds it into a standby.
func stalePrimaries(a assessment, pods map[string]pod) []string {
	recorded := a.at.LastPrimary
	if !a.splitBrain() || !a.isPrimary(recorded) || pods[recorded].role != v1alpha1.RolePrimary {
		return nil
	}
	var out []string
	for _, p := range a.primaries {
		if p != recorded && pods[p].exists && pods[p].role != v1alpha1.RolePrimary {
			out = append(out, p)
		}
	}
	return out
}

// A switchover moves the primary on request: from the primary to member to.
type switchover struct {
	from, to int
}

// switchoverDue is the switchover spec.forProvider.switchoverTo asks for,
// when the primary is another member and the requested one streams; else
// why not, or "" when nothing is asked.
func switchoverDue(p v1alpha1.ReplicationParameters, a assessment) (*switchover, string) {
	if p.SwitchoverTo == "" || a.primary < 0 || a.splitBrain() {
		return nil, ""
	}
	to := -1
	for i, m := range p.Members {
		if m.Name == p.SwitchoverTo {
			to = i
		}
	}
	switch {
	case to < 0:
		return nil, fmt.Sprintf("cannot switch over to %s: it is not a member", p.SwitchoverTo)
	case to == a.primary:
		return nil, ""
	case !a.at.Members[to].Streaming:
		return nil, fmt.Sprintf("cannot switch over to %s yet: it does not stream", p.SwitchoverTo)
	}
	return &switchover{from: a.primary, to: to}, ""
}
