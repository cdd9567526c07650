package replication

import (
	"fmt"

	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// The pure half of repairing MySQL replication: what each member other than
// the primary needs to replicate from it, decided from what every member
// answered. PostgreSQL standbys repair themselves (their init step and
// primary_conninfo), so none of this applies to them.

// A repairKind is one change to a member.
type repairKind string

// Repairs, in the order a member would need them.
const (
	// repairClone replaces a blank member's data with a copy of the
	// primary's (MySQL 8's CLONE); the member restarts on it.
	repairClone repairKind = "clone"
	// repairReplicate makes the member a read-only replica of the
	// read-write Service, from the GTIDs it has.
	repairReplicate repairKind = "replicate"
	// repairProtect makes a member that replicates refuse writes.
	repairProtect repairKind = "protect"
)

// A repair is one change to member (an index into the members).
type repair struct {
	member int
	kind   repairKind
}

// A ContainsFn reports whether every transaction of position sub is in
// position super.
type ContainsFn func(super, sub string) (bool, error)

// sameEndpoint compares host and port, an unset port being def.
func sameEndpoint(host string, port int, ep xsql.Endpoint, def int) bool {
	p := ep.Port
	if p == 0 {
		p = def
	}
	if port == 0 {
		port = def
	}
	return host == ep.Host && port == p
}

// repairs are what every reachable member other than the primary needs to
// replicate from source (the read-write Service), and why a member is left
// alone, by member index. A member is never given data of the primary's
// over transactions of its own: one whose GTIDs are not all the primary's
// is cloned only when it holds no table (what the image's entrypoint made
// of an empty volume), and otherwise left for a human.
func repairs(a assessment, answers []answer, source xsql.Endpoint, defaultPort int, contains ContainsFn) ([]repair, map[int]string) {
	if a.primary < 0 || a.state == nil {
		return nil, nil
	}
	p := a.state
	var out []repair
	why := map[int]string{}
	for i, ans := range answers {
		s := ans.state
		if i == a.primary || ans.err != nil || s == nil {
			continue
		}
		if src := s.Source; src != nil && sameEndpoint(src.Host, src.Port, source, defaultPort) && src.SQL == "Yes" && (src.IO == "Yes" || src.IO == "Connecting") {
			// Replicating, or retrying the source by itself.
			if !s.Protected {
				out = append(out, repair{member: i, kind: repairProtect})
			}
			continue
		}
		in, err := contains(p.Position, s.Position)
		if err != nil {
			why[i] = "cannot compare its GTIDs with the primary's: " + err.Error()
			continue
		}
		switch {
		case in && (s.Position != "" || p.Position == "" || s.Source != nil):
			out = append(out, repair{member: i, kind: repairReplicate})
		case s.UserTables == 0 && s.CanClone && p.CanClone:
			out = append(out, repair{member: i, kind: repairClone})
		case in:
			// Nothing executed and no CLONE (MariaDB): from the start
			// of the primary's binary log.
			out = append(out, repair{member: i, kind: repairReplicate})
		case formerPrimary(a, i) && s.CanClone && p.CanClone:
			// Its transactions the new primary lacks were never
			// acknowledged or were lost by an asynchronous failover:
			// it rejoins as a copy of the new primary.
			out = append(out, repair{member: i, kind: repairClone})
		case formerPrimary(a, i):
			why[i] = fmt.Sprintf("former primary: holds transactions the primary %s does not have (lost by the failover, or committed but never acknowledged); it stays read-only and out of replication, and the provider does not delete them: without CLONE (MariaDB) resolve by hand", a.at.Primary)
		case s.UserTables > 0:
			why[i] = fmt.Sprintf("has transactions the primary does not have and %d tables: the provider neither clones nor replicates it; resolve by hand", s.UserTables)
		default:
			why[i] = "has transactions the primary does not have and cannot be cloned: the provider leaves it alone; resolve by hand"
		}
	}
	return out, why
}

// formerPrimary reports whether member i is the primary the last failover
// replaced.
func formerPrimary(a assessment, i int) bool {
	f := a.at.LastFailover
	return f != nil && i < len(a.at.Members) && a.at.Members[i].Name == f.From
}

// semiSyncWanted is how many replicas the primary's commits are to wait
// for: spec.forProvider.synchronous, at most the standbys there are.
func semiSyncWanted(synchronous, standbys int) int {
	return max(min(synchronous, standbys), 0)
}

// semiSyncDiffers reports whether the primary's semi-sync differs from
// waiting for n replicas. A server without a replica count (MariaDB) waits
// for one.
func semiSyncDiffers(s *xsql.SemiSync, n int) bool {
	if s == nil {
		return false
	}
	if n == 0 {
		return s.SourceEnabled
	}
	return !s.SourceEnabled || (s.WaitFor != 0 && s.WaitFor != n)
}
