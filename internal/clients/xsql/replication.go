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

	// Replicas are the standbys streaming from this server.
	Replicas []Replica `json:"replicas"`

	// Slots are the server's physical replication slots.
	Slots []Slot `json:"slots"`

	// SynchronousStandbyNames is the server's synchronous_standby_names.
	SynchronousStandbyNames string `json:"synchronousStandbyNames"`
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
