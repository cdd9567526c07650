package mysql

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
)

// PositionContains reports whether every transaction of position sub is in
// position super: whether a server at sub may replicate from one at super
// without having transactions of its own. Positions are MySQL GTID sets
// (gtid_executed: uuid[:tag]:1-5:7,uuid2:1-3) or MariaDB GTID binlog
// states (gtid_binlog_state: domain-server-seq,...), told apart by their
// syntax (a MySQL set has colons); the members of one Replication run one
// flavor. An empty sub is in every position.
//
// A MariaDB binlog state holds, per replication domain and server, the
// last transaction of that server in the binary log, not a set: sub is in
// super when, for each domain and server of sub, super has that server's
// transactions up to at least sub's sequence number. Replication applies
// a domain in order, so that holds for every server a replica or a former
// primary took transactions from; a former primary's transaction that no
// replica received shows as its own server's sequence number past
// super's.
func PositionContains(super, sub string) (bool, error) {
	sub, super = strip(sub), strip(super)
	if sub == "" {
		return true, nil
	}
	if strings.Contains(sub, ":") || strings.Contains(super, ":") {
		a, err := parseGTIDSet(super)
		if err != nil {
			return false, err
		}
		b, err := parseGTIDSet(sub)
		if err != nil {
			return false, err
		}
		return a.contains(b), nil
	}
	a, err := parseMariaDBPosition(super)
	if err != nil {
		return false, err
	}
	b, err := parseMariaDBPosition(sub)
	if err != nil {
		return false, err
	}
	for k, seq := range b {
		if s, ok := a[k]; !ok || s < seq {
			return false, nil
		}
	}
	return true, nil
}

// strip removes the white space MySQL puts between a set's UUIDs.
func strip(s string) string {
	return strings.Join(strings.Fields(s), "")
}

type interval struct{ lo, hi uint64 }

// A gtidSet is transactions by source UUID and tag ("uuid" or "uuid:tag"),
// each a sorted list of disjoint intervals.
type gtidSet map[string][]interval

func parseGTIDSet(s string) (gtidSet, error) {
	out := gtidSet{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		fields := strings.Split(part, ":")
		if len(fields) < 2 || fields[0] == "" {
			return nil, errors.Errorf("cannot parse GTID set %q", s)
		}
		key := strings.ToLower(fields[0])
		for _, f := range fields[1:] {
			lo, hi, isInterval := strings.Cut(f, "-")
			a, err := strconv.ParseUint(lo, 10, 64)
			if err != nil {
				// MySQL 8.3+ tags (letters, digits, _) name the
				// intervals after them.
				if isInterval || f == "" {
					return nil, errors.Errorf("cannot parse GTID set %q", s)
				}
				key = strings.ToLower(fields[0]) + ":" + strings.ToLower(f)
				continue
			}
			b := a
			if isInterval {
				if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a {
					return nil, errors.Errorf("cannot parse GTID set %q", s)
				}
			}
			out[key] = append(out[key], interval{a, b})
		}
	}
	for k, ivs := range out {
		out[k] = merge(ivs)
	}
	return out, nil
}

// merge sorts intervals and joins overlapping and adjacent ones.
func merge(ivs []interval) []interval {
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].lo < ivs[j].lo })
	var out []interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && iv.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, iv.hi)
			continue
		}
		out = append(out, iv)
	}
	return out
}

func (g gtidSet) contains(sub gtidSet) bool {
	for k, ivs := range sub {
		for _, iv := range ivs {
			if !covered(g[k], iv) {
				return false
			}
		}
	}
	return true
}

func covered(ivs []interval, iv interval) bool {
	for _, s := range ivs {
		if s.lo <= iv.lo && iv.hi <= s.hi {
			return true
		}
	}
	return false
}

// A mariaSource is a MariaDB replication domain and server.
type mariaSource struct{ domain, server uint64 }

// parseMariaDBPosition reads a binlog state or a position into the last
// sequence number of each domain and server.
func parseMariaDBPosition(s string) (map[mariaSource]uint64, error) {
	out := map[mariaSource]uint64{}
	if s == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, errors.Errorf("cannot parse GTID position %q", s)
		}
		var n [3]uint64
		for i := range f {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, errors.Errorf("cannot parse GTID position %q", s)
			}
			n[i] = v
		}
		k := mariaSource{n[0], n[1]}
		out[k] = max(out[k], n[2])
	}
	return out, nil
}

// union is every transaction of position a or b, in the syntax of their
// flavor: both GTID sets' intervals for MySQL, each domain and server's
// later transaction for MariaDB. A replica's executed transactions
// and those it received but has not applied yet are, together, what it
// would hold once promoted.
func union(a, b string) (string, error) {
	a, b = strip(a), strip(b)
	switch {
	case a == "":
		return b, nil
	case b == "":
		return a, nil
	case strings.Contains(a, ":") || strings.Contains(b, ":"):
		if _, err := parseGTIDSet(a + "," + b); err != nil {
			return "", err
		}
		return a + "," + b, nil
	}
	pa, err := parseMariaDBPosition(a)
	if err != nil {
		return "", err
	}
	pb, err := parseMariaDBPosition(b)
	if err != nil {
		return "", err
	}
	for k, seq := range pb {
		pa[k] = max(pa[k], seq)
	}
	keys := make([]mariaSource, 0, len(pa))
	for k := range pa {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].domain != keys[j].domain {
			return keys[i].domain < keys[j].domain
		}
		return keys[i].server < keys[j].server
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d-%d-%d", k.domain, k.server, pa[k]))
	}
	return strings.Join(parts, ","), nil
}
