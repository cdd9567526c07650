package v1alpha1

import (
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LabelRole is the label the Replication controller puts on the Pods of its
// members: RolePrimary on the primary, RoleReplica on standbys that stream
// from it. A Database's read-write Service selects RolePrimary and its
// read-only Service RoleReplica, so moving the label moves the traffic. The
// controller owns this label: Crossplane's apply of the StatefulSet never
// touches a Pod label the template does not hold.
const LabelRole = "database.example.com/role"

// Values of LabelRole.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// A ReplicationMember is one database server of a replicated Database: a
// StatefulSet Pod.
type ReplicationMember struct {
	// Name of the member's Pod, in the Replication's namespace, such as
	// orders-0. The controller labels this Pod with its role. Its ordinal,
	// the number after the last dash, names the member's replication slot,
	// and a PostgreSQL standby streams with this name as its
	// application_name.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?-[0-9]+$`
	Name string `json:"name"`

	// Host name or IP address the provider reaches the member at, such as
	// orders-0.orders-headless.team-a.svc.cluster.local.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host"`

	// Port of the member. Unset means the engine's default: 5432 for
	// postgresql, 3306 for mysql.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int `json:"port,omitempty"`
}

// ReplicationParameters are the desired state of a Database's replication.
type ReplicationParameters struct {
	// Members are every server of the Database, primary and standbys, in
	// ordinal order. The provider finds the primary among them (the one
	// server not in recovery); it does not choose it.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=10
	// +listType=map
	// +listMapKey=name
	Members []ReplicationMember `json:"members"`

	// SlotPrefix names the members' physical replication slots on the
	// primary: <slotPrefix><ordinal>, such as orders_1. An inactive slot
	// with this prefix and an ordinal no member has belonged to a standby
	// that was scaled away, and is dropped so that it stops retaining WAL.
	// Other slots are never dropped. PostgreSQL only.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=61
	// +kubebuilder:validation:Pattern=`^[a-z0-9_]+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.forProvider.slotPrefix is immutable"
	SlotPrefix string `json:"slotPrefix"`

	// Synchronous is the number of standbys a commit waits for before it
	// returns: 0 is asynchronous replication. With N > 0 the primary's
	// synchronous_standby_names is ANY N (every other member), and stays so
	// while standbys are down: commits then wait, which is the point. N
	// larger than the number of standbys is clamped to it, and the Ready
	// condition says so. On MySQL it is semi-synchronous replication: the
	// primary's rpl_semi_sync_source_enabled and
	// rpl_semi_sync_source_wait_for_replica_count (MariaDB:
	// rpl_semi_sync_master_enabled, which always waits for one replica).
	// Unlike PostgreSQL, a MySQL commit waits at most
	// rpl_semi_sync_source_timeout (10 s by default) for an
	// acknowledgement, then the primary continues asynchronously until a
	// replica catches up.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=9
	// +kubebuilder:default=0
	// +optional
	Synchronous int `json:"synchronous,omitempty"`

	// FailoverAfterSeconds is how long the primary must stay unreachable
	// before a standby is promoted. 0 never fails over automatically.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3600
	// +kubebuilder:default=5
	// +optional
	FailoverAfterSeconds *int `json:"failoverAfterSeconds,omitempty"`

	// SwitchoverTo names the member to be primary. While it is a standby
	// that streams and another member is primary, the provider switches
	// over: the primary stops (MySQL: turns read-only and ends its
	// sessions), the member is promoted once it has all the primary wrote,
	// and the old primary rejoins as its standby. Empty leaves the primary
	// where it is.
	// +optional
	SwitchoverTo string `json:"switchoverTo,omitempty"`

	// StatefulSet, when set, is the StatefulSet of the members' Pods, whose
	// update strategy is OnDelete: the provider rolls its Pods to the new
	// revision itself, standbys first, one at a time and only while every
	// standby streams, then switches over to an updated standby, which
	// restarts the old primary last.
	// +optional
	StatefulSet string `json:"statefulSet,omitempty"`

	// ReplicationSecretRef is a key of a Secret in the Replication's
	// namespace holding the password of the login `replication`, which
	// replicas log in to their source as. MySQL only, where the provider
	// configures each replica itself (CHANGE REPLICATION SOURCE, CLONE);
	// PostgreSQL standbys read their password in their own pods. The
	// provider never logs the password or writes it into status or events.
	// +optional
	ReplicationSecretRef *xpv2.LocalSecretKeySelector `json:"replicationSecretRef,omitempty"`

	// SourceCAFile is where every member's server reads the CA that signed
	// the members' certificates, on its own file system. MySQL only: when
	// set, replicas connect to their source over TLS and verify its
	// certificate and host name against it (SOURCE_SSL_VERIFY_SERVER_CERT).
	// PostgreSQL standbys' primary_conninfo says so in their own
	// configuration.
	// +optional
	SourceCAFile string `json:"sourceCAFile,omitempty"`
}

// MemberRole is what a member was last seen to be.
// +kubebuilder:validation:Enum=primary;standby;unreachable
type MemberRole string

// Member roles.
const (
	// MemberPrimary accepts writes: PostgreSQL's pg_is_in_recovery() is
	// false.
	MemberPrimary MemberRole = "primary"
	// MemberStandby replays the primary's changes: pg_is_in_recovery() is
	// true.
	MemberStandby MemberRole = "standby"
	// MemberUnreachable could not be asked.
	MemberUnreachable MemberRole = "unreachable"
)

// A MemberObservation is the observed replication state of one member.
type MemberObservation struct {
	// Name of the member's Pod.
	Name string `json:"name"`

	// Role of the member: primary, standby or unreachable.
	Role MemberRole `json:"role"`

	// Streaming is true for a standby that the primary streams WAL to
	// (pg_stat_replication.state is streaming). False on the primary.
	// +optional
	Streaming bool `json:"streaming,omitempty"`

	// SyncState of a standby, from the primary's
	// pg_stat_replication.sync_state: sync, quorum, potential or async.
	// A MySQL replica is quorum while it acknowledges semi-sync and the
	// primary's commits wait for acknowledgements, else async. Empty when
	// it does not stream.
	// +optional
	SyncState string `json:"syncState,omitempty"`

	// Timeline the member is on: the primary's current WAL timeline, a
	// standby's received timeline. Members on different timelines have
	// diverged.
	// +optional
	Timeline int64 `json:"timeline,omitempty"`

	// ReceivedLSN is the last WAL location a standby received and flushed
	// (pg_last_wal_receive_lsn()).
	// +optional
	ReceivedLSN string `json:"receivedLSN,omitempty"`

	// ReplayedLSN is the last WAL location a standby replayed
	// (pg_last_wal_replay_lsn()).
	// +optional
	ReplayedLSN string `json:"replayedLSN,omitempty"`

	// LagBytes is how far a standby's replay is behind the primary's
	// current WAL location, in bytes: from pg_stat_replication while it
	// streams, else from what its replication slot retains.
	// +optional
	LagBytes int64 `json:"lagBytes,omitempty"`

	// LagMillis is a streaming standby's replay lag
	// (pg_stat_replication.replay_lag), in milliseconds. 0 when the
	// primary has been idle.
	// +optional
	LagMillis int64 `json:"lagMillis,omitempty"`

	// Message says why a member is unreachable or does not stream. It never
	// holds credentials.
	// +optional
	Message string `json:"message,omitempty"`
}

// A SlotObservation is a physical replication slot on the primary.
type SlotObservation struct {
	// Name of the slot.
	Name string `json:"name"`

	// Active is true while a standby streams through the slot.
	// +optional
	Active bool `json:"active,omitempty"`

	// WALStatus is pg_replication_slots.wal_status: reserved, extended,
	// unreserved or lost.
	// +optional
	WALStatus string `json:"walStatus,omitempty"`

	// RetainedBytes is the WAL the slot holds back on the primary, from
	// its restart_lsn to the current WAL location.
	// +optional
	RetainedBytes int64 `json:"retainedBytes,omitempty"`
}

// A Failover is a promotion the provider made.
type Failover struct {
	// At is when the standby was promoted.
	At metav1.Time `json:"at"`
	// From is the primary that was lost, To the standby promoted.
	From string `json:"from"`
	To   string `json:"to"`
	// Reason says why, and what it may have cost.
	Reason string `json:"reason"`
	// LagBytes is how far the promoted standby's replay was behind the
	// lost primary when last seen: with asynchronous replication, about
	// what commits may be lost.
	// +optional
	LagBytes int64 `json:"lagBytes,omitempty"`
}

// ReplicationObservation is the observed state of a Database's replication.
type ReplicationObservation struct {
	// Primary is the member that accepts writes, or empty when none or
	// more than one does.
	// +optional
	Primary string `json:"primary,omitempty"`

	// Members are the observed state of every member, in spec order.
	// +optional
	// +listType=map
	// +listMapKey=name
	Members []MemberObservation `json:"members,omitempty"`

	// Slots are the physical replication slots on the primary.
	// +optional
	// +listType=map
	// +listMapKey=name
	Slots []SlotObservation `json:"slots,omitempty"`

	// SynchronousStandbyNames is the primary's current
	// synchronous_standby_names. Empty is asynchronous replication.
	// +optional
	SynchronousStandbyNames string `json:"synchronousStandbyNames,omitempty"`

	// LastPrimary is the member last seen, or made, primary: the one a
	// failover replaces when it is lost.
	// +optional
	LastPrimary string `json:"lastPrimary,omitempty"`

	// PrimaryLostAt is when LastPrimary was first found unreachable, while
	// it still is.
	// +optional
	PrimaryLostAt *metav1.Time `json:"primaryLostAt,omitempty"`

	// Quorum are the standbys that were synchronous (quorum or sync) when
	// the primary was last seen: with synchronous replication, only they
	// may hold commits the primary acknowledged.
	// +optional
	Quorum []string `json:"quorum,omitempty"`

	// MeasuredAt is when the members' WAL locations and lag and the slots'
	// retained WAL were read. They are refreshed every 30 s, or at once
	// when a member's lag moves to another step of 1, 2, 5, 10, 20, 50...
	// seconds (or 64 KiB times those) and whenever anything else about a
	// member or slot changes; roles, streaming, sync states and messages
	// are always current. A status that changed on every poll would be
	// an update, and a reconcile of the Database, every poll.
	// +optional
	MeasuredAt *metav1.Time `json:"measuredAt,omitempty"`

	// LastFailover is the last promotion the provider made.
	// +optional
	LastFailover *Failover `json:"lastFailover,omitempty"`

	// LastSwitchover is the last switchover the provider made.
	// +optional
	LastSwitchover *Failover `json:"lastSwitchover,omitempty"`
}

// A ReplicationSpec is the desired state of a Replication.
type ReplicationSpec struct {
	// ProviderConfigReference names the ProviderConfig, in the
	// Replication's namespace, whose admin login (a PostgreSQL superuser)
	// the provider connects to every member with. Its engine and TLS mode
	// apply; its host and port do not: each member has its own.
	// +kubebuilder:default={"kind": "ProviderConfig", "name": "default"}
	// +kubebuilder:validation:XValidation:rule="self.kind == 'ProviderConfig'",message="spec.providerConfigRef.kind must be ProviderConfig"
	// +optional
	ProviderConfigReference *xpv2.ProviderConfigReference `json:"providerConfigRef,omitempty"`

	// ManagementPolicies specify the array of actions Crossplane is allowed
	// to take on the managed and external resources.
	// +kubebuilder:default={"*"}
	// +optional
	ManagementPolicies xpv2.ManagementPolicies `json:"managementPolicies,omitempty"`

	// ForProvider is the desired state of the replication.
	ForProvider ReplicationParameters `json:"forProvider"`
}

// A ReplicationStatus is the observed state of a Replication.
type ReplicationStatus struct {
	xpv2.ManagedResourceStatus `json:",inline"`

	// AtProvider is the observed state of the replication.
	// +optional
	AtProvider ReplicationObservation `json:"atProvider,omitempty"`
}

// A Replication watches and repairs the streaming replication between the
// servers of one Database: it finds the primary, reports every standby's
// state and lag, labels the Pods with their role (database.example.com/role:
// primary or replica) for the read-write and read-only Services, drops the
// replication slots of standbys that were scaled away, and keeps the
// primary's synchronous_standby_names as spec.forProvider.synchronous asks.
// It never promotes or demotes a server. Ready is True when exactly one
// member is primary and every other member streams from it. Deleting a
// Replication removes the role labels and changes nothing on the servers.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={crossplane,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="PRIMARY",type="string",JSONPath=".status.atProvider.primary"
// +kubebuilder:printcolumn:name="SYNCHRONOUS",type="integer",JSONPath=".spec.forProvider.synchronous"
// +kubebuilder:printcolumn:name="MESSAGE",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].message",priority=1
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type Replication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReplicationSpec   `json:"spec"`
	Status ReplicationStatus `json:"status,omitempty"`
}

// ReplicationList is a list of Replications.
// +kubebuilder:object:root=true
type ReplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Replication `json:"items"`
}
