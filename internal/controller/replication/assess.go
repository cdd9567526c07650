package replication

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// The pure half of the controller: from what every member answered to the
// observed status, the desired role labels, the stale slots, the desired
// synchronous_standby_names and the Ready message. No I/O here.

// An answer is what asking one member returned: its state, or why it could
// not be asked.
type answer struct {
	state *xsql.ReplicationState
	err   error
}

// An assessment is what the controller concludes from every member's
// answer.
type assessment struct {
	// at is the observed status.
	at v1alpha1.ReplicationObservation
	// primary is the index of the one member out of recovery, or -1.
	primary int
	// primaries names every member out of recovery: more than one is split
	// brain.
	primaries []string
	// state is the primary's answer, when there is one primary.
	state *xsql.ReplicationState
	// heard is, for each member whose WAL receiver streams, how long ago
	// it last heard from its primary, in milliseconds.
	heard map[int]int64
	// answers are every member's, in spec order.
	answers []answer
}

// splitBrain reports whether more than one member accepts writes.
func (a assessment) splitBrain() bool { return len(a.primaries) > 1 }

// ordinal is the number after a member name's last dash, or -1.
func ordinal(name string) int {
	i := strings.LastIndexByte(name, '-')
	n, err := strconv.Atoi(name[i+1:])
	if i < 0 || err != nil || n < 0 {
		return -1
	}
	return n
}

// slotOf is the name of a member's replication slot.
func slotOf(prefix, member string) string {
	return prefix + strconv.Itoa(ordinal(member))
}

// assess reads every member's answer, in spec order, into the observed
// status.
func assess(p v1alpha1.ReplicationParameters, answers []answer) assessment {
	a := assessment{primary: -1, answers: answers}
	for _, i := range candidates(p.Members, answers) {
		a.primaries = append(a.primaries, p.Members[i].Name)
		a.primary = i
	}
	if len(a.primaries) != 1 {
		a.primary = -1
	} else {
		a.state = answers[a.primary].state
		a.at.Primary = a.primaries[0]
		a.at.SynchronousStandbyNames = a.state.SynchronousStandbyNames
		for _, s := range a.state.Slots {
			a.at.Slots = append(a.at.Slots, v1alpha1.SlotObservation{Name: s.Name, Active: s.Active, WALStatus: s.WALStatus, RetainedBytes: deref(s.RetainedBytes)})
		}
	}

	for i, m := range p.Members {
		a.at.Members = append(a.at.Members, a.member(p.SlotPrefix, m.Name, answers[i]))
		if s := answers[i].state; answers[i].err == nil && s != nil && s.HeardMillis != nil {
			if a.heard == nil {
				a.heard = map[int]int64{}
			}
			a.heard[i] = *s.HeardMillis
		}
	}
	return a
}

// candidates are the members that may be the primary: those that say they
// are. A blank one (MySQL: writable, replicating from no one, no tables:
// what the image made of an empty volume, since every MySQL pod starts
// writable) is the primary only when it is the first pod and no other
// member with data says it is primary: the read-write Service has sent
// writes only to the first pod until the role labels exist, and a blank
// server with another ordinal must never get them. PostgreSQL servers are
// never blank.
func candidates(members []v1alpha1.ReplicationMember, answers []answer) []int {
	var withData, blankFirst []int
	for i, m := range members {
		s := answers[i].state
		switch {
		case answers[i].err != nil || s == nil || !s.Primary:
		case !s.Blank:
			withData = append(withData, i)
		case ordinal(m.Name) == 0:
			blankFirst = append(blankFirst, i)
		}
	}
	if len(withData) > 0 {
		return withData
	}
	return blankFirst
}

// isPrimary reports whether member name is one of the primaries.
func (a assessment) isPrimary(name string) bool { return slices.Contains(a.primaries, name) }

// member is one member's observed state. A standby's streaming, sync state
// and lag are what the primary says, when there is one; its received and
// replayed locations are its own.
func (a assessment) member(prefix, name string, ans answer) v1alpha1.MemberObservation {
	o := v1alpha1.MemberObservation{Name: name, Role: v1alpha1.MemberUnreachable}
	if ans.err != nil || ans.state == nil {
		o.Message = errorText(ans.err)
	} else {
		s := ans.state
		o.Timeline, o.ReceivedLSN, o.ReplayedLSN = s.Timeline, s.ReceivedLSN, s.ReplayedLSN
		o.Role = v1alpha1.MemberStandby
		if a.isPrimary(name) {
			o.Role = v1alpha1.MemberPrimary
			if a.splitBrain() {
				o.Message = "split brain: out of recovery together with " + strings.Join(slices.DeleteFunc(slices.Clone(a.primaries), func(p string) bool { return p == name }), ", ")
			}
			return o
		}
		if s.OwnSource {
			return ownSource(o, s, a.state)
		}
	}
	if a.state == nil {
		// No one primary: a reachable standby's own receiver is all there
		// is to go by.
		if o.Role == v1alpha1.MemberStandby {
			o.Streaming = ans.state.Receiver == "streaming"
			if !o.Streaming {
				o.Message = "WAL receiver " + orText(ans.state.Receiver, "not running")
			}
		}
		return o
	}

	if r := replicaOf(a.state, name); r != nil {
		o.Streaming, o.SyncState = r.State == "streaming", r.SyncState
		o.LagBytes, o.LagMillis = deref(r.LagBytes), deref(r.LagMillis)
		if !o.Streaming && o.Message == "" {
			o.Message = "WAL sender state " + r.State
		}
		if r.LagBytes != nil {
			return o
		}
	} else if o.Role == v1alpha1.MemberStandby {
		o.Message = fmt.Sprintf("not streaming from primary %s: WAL receiver %s", a.at.Primary, orText(ans.state.Receiver, "not running"))
	}
	// Not streaming: the WAL its slot holds back is how far behind it is.
	slot := slotOf(prefix, name)
	for _, s := range a.state.Slots {
		if s.Name == slot {
			o.LagBytes = deref(s.RetainedBytes)
		}
	}
	return o
}

// ownSource is a MySQL replica's state as it reports it itself: it
// streams while both its threads run, and lags by Seconds_Behind_Source.
// MySQL has no honest byte measure of a replica's lag (GTID sets count
// transactions, not bytes): lagBytes stays 0. Its sync state is quorum
// while it acknowledges semi-sync and the primary's commits wait for
// acknowledgements (not fallen back to asynchronous), else async: a
// commit waits for any n of the replicas that acknowledge, as
// PostgreSQL's ANY n. Which of them acknowledged a given commit, the
// servers do not say.
func ownSource(o v1alpha1.MemberObservation, s, primary *xsql.ReplicationState) v1alpha1.MemberObservation {
	src := s.Source
	switch {
	case src == nil && s.Blank:
		o.Message = "new server: not a replica yet"
	case src == nil:
		o.Message = "replicates from no one"
	default:
		o.Streaming = src.Replicating()
		if o.Streaming {
			o.SyncState = "async"
			if primary != nil && primary.SemiSync != nil && primary.SemiSync.SourceActive && s.SemiSync != nil && s.SemiSync.ReplicaActive {
				o.SyncState = "quorum"
			}
		}
		if src.LagSeconds != nil {
			o.LagMillis = *src.LagSeconds * 1000
		}
		if !o.Streaming {
			o.Message = fmt.Sprintf("replica IO thread %s, SQL thread %s", orText(src.IO, "not running"), orText(src.SQL, "not running"))
			if src.LastError != "" {
				o.Message += ": " + bounded(src.LastError)
			}
		}
	}
	return o
}

// bounded is s, bounded to maxMessage.
func bounded(s string) string {
	if len(s) > maxMessage {
		return s[:maxMessage] + "..."
	}
	return s
}

// replicaOf is the primary's WAL sender to member name, preferring one that
// streams; nil when there is none.
func replicaOf(s *xsql.ReplicationState, name string) *xsql.Replica {
	var found *xsql.Replica
	for i := range s.Replicas {
		r := &s.Replicas[i]
		if r.Name != name {
			continue
		}
		if found == nil || r.State == "streaming" {
			found = r
		}
	}
	return found
}

// A labelChange sets a Pod's role label to value, or removes it when value
// is empty.
type labelChange struct {
	pod   string
	value string
}

// A pod is what the controller knows of a member's Pod: whether it exists
// and its role label ("" when it has none).
type pod struct {
	exists bool
	role   string
	// revision is the StatefulSet revision the Pod runs.
	revision string
}

// labelChanges are the role label changes the members' Pods need: primary
// on the primary, replica on standbys that stream, none on other reachable
// members. An unreachable member keeps its label: a Service already drops
// a Pod that is not ready, and the provider failing to reach a healthy
// primary must not take it out of the read-write Service. With split brain
// nothing changes: which server keeps the writes is failover's decision.
// Missing Pods need nothing.
func labelChanges(a assessment, pods map[string]pod) []labelChange {
	if a.splitBrain() {
		return nil
	}
	var out []labelChange
	for _, m := range a.at.Members {
		p := pods[m.Name]
		if !p.exists {
			continue
		}
		var want string
		switch {
		case m.Role == v1alpha1.MemberUnreachable:
			continue
		case m.Role == v1alpha1.MemberPrimary:
			want = v1alpha1.RolePrimary
		case m.Streaming:
			want = v1alpha1.RoleReplica
		}
		if p.role != want {
			out = append(out, labelChange{pod: m.Name, value: want})
		}
	}
	return out
}

// staleSlots are the primary's slots to drop: inactive, named
// <prefix><digits>, with an ordinal no member has. A member's own slot is
// kept while it is down (max_slot_wal_keep_size bounds the WAL it holds),
// and so is every other slot: user-created and logical ones are not the
// provider's.
func staleSlots(prefix string, members []v1alpha1.ReplicationMember, slots []xsql.Slot) []string {
	have := map[int]bool{}
	for _, m := range members {
		have[ordinal(m.Name)] = true
	}
	var out []string
	for _, s := range slots {
		digits, ok := strings.CutPrefix(s.Name, prefix)
		if !ok || s.Active || digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue
		}
		n, err := strconv.Atoi(digits)
		if err != nil || have[n] {
			continue
		}
		out = append(out, s.Name)
	}
	return out
}

// standbys are the members other than the primary, in spec order.
func standbys(a assessment, members []v1alpha1.ReplicationMember) []string {
	var out []string
	for i, m := range members {
		if i != a.primary {
			out = append(out, m.Name)
		}
	}
	return out
}

// clampMessage says when more standbys are to be waited for than there
// are, or "".
func clampMessage(synchronous, standbys int) string {
	if synchronous <= standbys {
		return ""
	}
	return fmt.Sprintf("spec.forProvider.synchronous is %d but there are %d standbys: commits wait for %d", synchronous, standbys, standbys)
}

// readyMessage says why the replication is not available, or "" when it is:
// exactly one primary, and every other member streams from it.
func readyMessage(a assessment) string {
	switch {
	case a.splitBrain():
		return "split brain: " + strings.Join(a.primaries, " and ") + " are all out of recovery; the provider changes nothing until only one is"
	case a.primary < 0:
		var why []string
		for _, m := range a.at.Members {
			why = append(why, fmt.Sprintf("%s is %s", m.Name, m.Role))
		}
		return "no primary: " + strings.Join(why, ", ")
	}
	var down []string
	for _, m := range a.at.Members {
		if m.Role == v1alpha1.MemberPrimary || m.Streaming {
			continue
		}
		down = append(down, fmt.Sprintf("%s (%s)", m.Name, orText(m.Message, string(m.Role))))
	}
	if len(down) == 0 {
		return ""
	}
	return "not streaming from " + a.at.Primary + ": " + strings.Join(down, ", ")
}

// maxMessage bounds a member's message: driver errors can be long.
const maxMessage = 256

// errorText is err's text, bounded. Drivers do not put passwords in errors
// (pgx names the user and database, never the password).
func errorText(err error) string {
	if err == nil {
		return "no answer"
	}
	s := err.Error()
	if len(s) > maxMessage {
		s = s[:maxMessage] + "..."
	}
	return s
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
