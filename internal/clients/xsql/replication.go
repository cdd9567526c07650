package xsql

// A ReplicationState is what one server says about replication, in
// engine-neutral terms: whether it accepts writes and, as a primary, the
// standbys streaming from it, or, as a standby, how far it has received and
// replayed.
type ReplicationState struct {
	// Primary is true when the server accepts writes: PostgreSQL's
	// pg_is_in_recovery() is false.
	Primary bool `json:"primary"`

	// Timeline is the server's WAL timeline: a primary's current one, a
	// standby's received (else replayed) one.
	Timeline int64 `json:"timeline"`

	// ReceivedLSN and ReplayedLSN are a standby's last received and
	// replayed WAL locations; empty on a primary.
	ReceivedLSN string `json:"receivedLSN"`
	ReplayedLSN string `json:"replayedLSN"`

	// Receiver is a standby's WAL receiver status (streaming, starting,
	// waiting, ...), empty when no receiver runs.
	Receiver string `json:"receiver"`

	// HeardMillis is how long ago a streaming standby last heard from its
	// primary; nil when it does not stream.
	HeardMillis *int64 `json:"heardMillis,omitempty"`

	// Replicas are the standbys streaming from this server.
	Replicas []Replica `json:"replicas"`

	// Slots are the server's physical replication slots.
	Slots []Slot `json:"slots"`

	// SynchronousStandbyNames is the server's synchronous_standby_names.
	SynchronousStandbyNames string `json:"synchronousStandbyNames"`

	// Detached is true for a PostgreSQL server a failover stopped from
	// streaming, and did not attach again (a primary too, when it was
	// promoted and attaching it failed).
	Detached bool `json:"detached,omitempty"`

	// The fields below are what a MySQL or MariaDB server says, whose
	// replicas the provider configures; PostgreSQL leaves them zero.

	// OwnSource is true when the server reports its own replication in
	// Source (MySQL): a primary then lists no Replicas.
	OwnSource bool `json:"ownSource,omitempty"`
	// Blank is true for a server that replicates from no one and holds no
	// table outside the system schemas: what the image's entrypoint made
	// of an empty volume, not a primary apps wrote to.
	Blank bool `json:"blank,omitempty"`
	// Protected is true when even the superuser cannot write: MySQL's
	// super_read_only, MariaDB's read_only (which binds SUPER too unless
	// it holds READ_ONLY ADMIN).
	Protected bool `json:"protected,omitempty"`
	// Position is the set of transactions the server executed: MySQL's
	// gtid_executed, MariaDB's gtid_binlog_state.
	Position string `json:"position,omitempty"`
	// Received is Position with the transactions a replica received and
	// has not applied yet: what it holds once promoted.
	Received string `json:"received,omitempty"`
	// UserTables counts the tables outside the system schemas.
	UserTables int64 `json:"userTables,omitempty"`
	// CanClone is true when the server has the clone plugin active (MySQL
	// 8; MariaDB has none).
	CanClone bool `json:"canClone,omitempty"`
	// Source is a replica's own view of its replication; nil when no
	// source is configured.
	Source *Source `json:"source,omitempty"`
	// SemiSync is the server's semi-synchronous replication; nil when the
	// plugins are not loaded.
	SemiSync *SemiSync `json:"semiSync,omitempty"`
}

// A Source is what a MySQL replica says of the source it replicates from
// (SHOW REPLICA STATUS).
type Source struct {
	Host string `json:"host"`
	Port int    `json:"port"`
	// IO is whether the receiver thread runs: Yes, No or Connecting.
	IO string `json:"io"`
	// SQL is whether the applier thread runs: Yes or No.
	SQL string `json:"sql"`
	// LagSeconds is Seconds_Behind_Source; nil while a thread is stopped.
	LagSeconds *int64 `json:"lagSeconds,omitempty"`
	// LastError is the receiver's or else the applier's last error.
	LastError string `json:"lastError,omitempty"`
	// Received is what the receiver got, applied or not: MySQL's
	// Retrieved_Gtid_Set, MariaDB's Gtid_IO_Pos.
	Received string `json:"received,omitempty"`
}

// Replicating reports whether both threads run.
func (s *Source) Replicating() bool { return s != nil && s.IO == "Yes" && s.SQL == "Yes" }

// SemiSync is a MySQL server's semi-synchronous replication settings.
type SemiSync struct {
	// SourceEnabled: commits on this server wait for replicas.
	SourceEnabled bool `json:"sourceEnabled"`
	// WaitFor is how many replicas a commit waits for; 0 where the server
	// has no such setting (MariaDB waits for one).
	WaitFor int `json:"waitFor"`
	// ReplicaEnabled: this server acknowledges what it receives.
	ReplicaEnabled bool `json:"replicaEnabled"`
	// SourceActive: commits wait for replicas now; false once the source
	// fell back to asynchronous (no acknowledgement within its timeout).
	SourceActive bool `json:"sourceActive"`
	// ReplicaActive: this server's receiver acknowledges now.
	ReplicaActive bool `json:"replicaActive"`
}

// A Replica is a standby streaming from a primary, as the primary sees it.
type Replica struct {
	// Name the standby connects with: its application_name.
	Name string `json:"name"`
	// State of its WAL sender: startup, catchup, streaming, backup or
	// stopping.
	State string `json:"state"`
	// SyncState is async, potential, sync or quorum.
	SyncState string `json:"syncState"`
	// LagBytes is how far its replay is behind the primary's current WAL
	// location; nil when it has not replayed anything yet.
	LagBytes *int64 `json:"lagBytes"`
	// LagMillis is its replay lag; nil when the primary has been idle.
	LagMillis *int64 `json:"lagMillis"`
}

// A Slot is a physical replication slot.
type Slot struct {
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	WALStatus string `json:"walStatus"`
	// RetainedBytes is the WAL from its restart_lsn to the current
	// location; nil when it reserves none.
	RetainedBytes *int64 `json:"retainedBytes"`
}
