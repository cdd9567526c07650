// Package v1 contains the Database composite resource API, database.example.com/v1.
//
// These Go types are the source of the XRD: controller-gen turns them and
// their markers into a CRD schema, and apis/generate wraps that schema into
// package/configuration/xrd.yaml. Defaults and CEL rules live here, next to
// the fields they guard, and stand in for an admission webhook.
//
// +kubebuilder:object:generate=true
// +groupName=database.example.com
// +versionName=v1
package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group, version and kind of the Database composite resource.
const (
	Group   = "database.example.com"
	Version = "v1"
	Kind    = "Database"
)

// GroupVersionKind of the Database composite resource.
var GroupVersionKind = schema.GroupVersionKind{Group: Group, Version: Version, Kind: Kind}

// Engine is the database server a Database runs.
// +kubebuilder:validation:Enum=mysql;postgresql
type Engine string

// Supported engines.
const (
	MySQL      Engine = "mysql"
	PostgreSQL Engine = "postgresql"
)

// Environment selects a sizing and tuning profile.
// +kubebuilder:validation:Enum=development;staging;production
type Environment string

// Supported environments.
const (
	Development Environment = "development"
	Staging     Environment = "staging"
	Production  Environment = "production"
)

// Phase summarises a Database's lifecycle for humans.
// +kubebuilder:validation:Enum=Pending;Creating;PartiallyReady;Ready;Failed
type Phase string

// Phases a Database moves through.
const (
	PhasePending        Phase = "Pending"
	PhaseCreating       Phase = "Creating"
	PhasePartiallyReady Phase = "PartiallyReady"
	PhaseReady          Phase = "Ready"
	PhaseFailed         Phase = "Failed"
)

// DatabaseSpec is what an application team asks for.
//
// +kubebuilder:validation:XValidation:rule="!has(self.environment) || self.environment != 'production' || (has(self.replicas) && self.replicas >= 2)",message="spec.replicas: production databases need at least 2 replicas",fieldPath=".replicas"
// +kubebuilder:validation:XValidation:rule="!has(self.environment) || self.environment != 'production' || !has(self.resources) || (has(self.resources.limits) && (has(self.resources.limits.cpu) || has(self.resources.limits.memory)))",message="spec.resources.limits: production databases that set resources must set limits",fieldPath=".resources"
// +kubebuilder:validation:XValidation:rule="self.type != 'mysql' || self.version in ['8.0', '8.4']",message="spec.version: mysql supports versions 8.0 and 8.4",fieldPath=".version"
// +kubebuilder:validation:XValidation:rule="self.type != 'postgresql' || self.version in ['14', '15', '16', '17', '18']",message="spec.version: postgresql supports versions 14, 15, 16, 17 and 18",fieldPath=".version"
// +kubebuilder:validation:XValidation:rule="self.type != 'postgresql' || oldSelf.type != 'postgresql' || self.version == oldSelf.version",message="spec.version: a PostgreSQL major version cannot change in place (its data directory format differs): restore a backup into a new Database",fieldPath=".version"
// +kubebuilder:validation:XValidation:rule="has(self.restore) == has(oldSelf.restore) && (!has(self.restore) || self.restore == oldSelf.restore)",message="spec.restore can only be set when a Database is created",fieldPath=".restore"
// +kubebuilder:validation:XValidation:rule="!(self.type == 'mysql' && oldSelf.type == 'mysql' && oldSelf.version == '8.4' && self.version == '8.0')",message="spec.version: MySQL cannot be downgraded from 8.4 to 8.0",fieldPath=".version"
// +kubebuilder:validation:XValidation:rule="!has(self.environment) || self.environment != 'production' || !has(self.autoscaling) || self.autoscaling.minReplicas >= 2",message="spec.autoscaling.minReplicas: production databases need at least 2 replicas",fieldPath=".autoscaling.minReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.replication) || !has(self.replication.synchronous) || self.replication.synchronous < (has(self.replicas) ? self.replicas : 1)",message="spec.replication.synchronous: at most replicas - 1 standbys can have a commit",fieldPath=".replication.synchronous"
type DatabaseSpec struct {
	// Type is the database engine. It cannot change after creation: moving
	// data between engines is a migration, not an update.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.type is immutable"
	Type Engine `json:"type"`

	// Version is the engine's major version: "8.0" or "8.4" for mysql, "14"
	// to "18" for postgresql. MySQL 8.0 is past its end of life and is
	// accepted with a warning. MySQL may be upgraded from 8.0 to 8.4 in
	// place, never downgraded; a PostgreSQL major version cannot change in
	// place.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=8
	Version string `json:"version"`

	// Replicas is the number of database pods, 1 to 10. Production needs at
	// least 2.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// Storage is each replica's data volume.
	Storage Storage `json:"storage"`

	// Environment selects the sizing and tuning profile: development,
	// staging or production.
	// +kubebuilder:default=development
	// +optional
	Environment Environment `json:"environment,omitempty"`

	// Resources overrides the environment profile's CPU and memory for the
	// database container. Unset means the profile's.
	// +optional
	Resources *Resources `json:"resources,omitempty"`

	// Backup configures scheduled logical backups.
	// +kubebuilder:default={}
	// +optional
	Backup *Backup `json:"backup,omitempty"`

	// Monitoring configures metrics and logging.
	// +kubebuilder:default={}
	// +optional
	Monitoring *Monitoring `json:"monitoring,omitempty"`

	// Users are logins beyond the app login, each with its own connection
	// Secret named <database>-user-<name>. Every Database has an app login
	// that owns the app database, with its connection Secret <database>-app.
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=name
	// +optional
	Users []User `json:"users,omitempty"`

	// Autoscaling has a HorizontalPodAutoscaler set the number of replicas
	// between minReplicas and maxReplicas on CPU or memory use. spec.replicas
	// is then only where a new Database starts (kept within the bounds): the
	// function leaves the count to the autoscaler.
	// +optional
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`

	// Replication tunes how standbys follow the primary when replicas is 2
	// or more. Unset means the environment's: production commits wait for
	// one standby, development and staging do not wait.
	// +optional
	Replication *Replication `json:"replication,omitempty"`

	// Restore creates the Database from a backup of another Database of the
	// same type in this namespace. It can only be set when the Database is
	// created. Apps reach the Database only after the backup is loaded.
	// +optional
	Restore *Restore `json:"restore,omitempty"`

	// Network says which apps may connect to the database port. Unset means
	// every pod in the Database's namespace. The Database's own pods
	// (replication), its backup and restore Jobs and dbplane's SQL provider
	// may connect whatever it says; nothing else may.
	// +optional
	Network *Network `json:"network,omitempty"`
}

// Network narrows or widens who may connect to the database port.
type Network struct {
	// From are the apps that may connect, as NetworkPolicy peers:
	// podSelector alone selects pods of the Database's namespace,
	// namespaceSelector alone every pod of the namespaces it selects, both
	// the selected pods of the selected namespaces (match a namespace by
	// name with its kubernetes.io/metadata.name label). Unset or empty
	// means every pod of the Database's namespace.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	From []NetworkPeer `json:"from,omitempty"`
}

// NetworkPeer selects pods that may connect to the database port.
//
// +kubebuilder:validation:XValidation:rule="has(self.namespaceSelector) || has(self.podSelector)",message="spec.network.from: set namespaceSelector, podSelector or both"
type NetworkPeer struct {
	// NamespaceSelector selects namespaces by their labels; {} selects
	// every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// PodSelector selects pods by their labels; {} selects every pod.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// Autoscaling bounds and targets of the HorizontalPodAutoscaler.
//
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="spec.autoscaling.minReplicas must not be more than maxReplicas",fieldPath=".minReplicas"
// +kubebuilder:validation:XValidation:rule="has(self.targetCPUUtilization) || has(self.targetMemoryUtilization)",message="spec.autoscaling: set targetCPUUtilization, targetMemoryUtilization or both"
type Autoscaling struct {
	// MinReplicas is the fewest replicas.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MinReplicas int32 `json:"minReplicas"`
	// MaxReplicas is the most replicas.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10
	MaxReplicas int32 `json:"maxReplicas"`
	// TargetCPUUtilization is the average CPU use, in percent of the
	// database container's request, the autoscaler aims for.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	TargetCPUUtilization *int32 `json:"targetCPUUtilization,omitempty"`
	// TargetMemoryUtilization is the average memory use, in percent of the
	// request, the autoscaler aims for.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	TargetMemoryUtilization *int32 `json:"targetMemoryUtilization,omitempty"`
}

// Replication tunes streaming replication.
type Replication struct {
	// Synchronous is how many standbys must have a commit before the app
	// sees it: 0 is asynchronous (a failover may lose the last commits), 1
	// or more is synchronous (PostgreSQL synchronous_standby_names ANY n:
	// while fewer standbys stream, commits wait). At most replicas - 1.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=9
	// +optional
	Synchronous *int32 `json:"synchronous,omitempty"`
}

// Privileges of a login on the app database.
// +kubebuilder:validation:Enum=owner;readWrite;readOnly
type Privileges string

// Privileges a login may have.
const (
	Owner     Privileges = "owner"
	ReadWrite Privileges = "readWrite"
	ReadOnly  Privileges = "readOnly"
)

// A User is a login on the app database.
type User struct {
	// Name of the login.
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9_]{0,30}$`
	// +kubebuilder:validation:XValidation:rule="self != 'app'",message="spec.users[].name: app is the app login every Database has"
	// +kubebuilder:validation:XValidation:rule="self != 'replication'",message="spec.users[].name: replication is the login standbys stream as"
	// +kubebuilder:validation:XValidation:rule="self != 'monitoring'",message="spec.users[].name: monitoring is the login the metrics exporter reads as"
	Name string `json:"name"`

	// Privileges on the app database: owner, readWrite (read and write
	// rows) or readOnly.
	// +kubebuilder:default=readWrite
	// +optional
	Privileges Privileges `json:"privileges,omitempty"`

	// PasswordRotationPeriod rotates the login's password this often, such
	// as 720h. Unset never rotates it on a schedule.
	// +kubebuilder:validation:Pattern=`^([0-9]+h)?([0-9]+m)?$`
	// +kubebuilder:validation:MaxLength=16
	// +optional
	PasswordRotationPeriod string `json:"passwordRotationPeriod,omitempty"`
}

// Restore names the backup a Database starts from.
//
// +kubebuilder:validation:XValidation:rule="has(self.from) != has(self.fromBackup)",message="spec.restore: set exactly one of from (a Database that exists) and fromBackup (backups in the bucket)"
type Restore struct {
	// From is the Database, in this namespace, whose backups to restore:
	// from its backup volume, or from its prefix in the bucket when the
	// platform configured object storage. The function waits for it to
	// exist. It may name this Database itself when its backup volume
	// survived.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	From string `json:"from,omitempty"`

	// FromBackup restores from the bucket alone: the backups a Database of
	// this namespace uploaded, whether or not it still exists, in this
	// cluster or another sharing the bucket and prefix. Needs the
	// platform's object storage.
	// +optional
	FromBackup *BackupLocation `json:"fromBackup,omitempty"`

	// Backup is latest, or the file name of one backup such as
	// app-20261122T020000Z.sql.gz. Its checksum is verified before loading.
	// +kubebuilder:default=latest
	// +kubebuilder:validation:Pattern=`^(latest|[A-Za-z0-9_]+-[0-9]{8}T[0-9]{6}Z\.sql\.gz)$`
	// +optional
	Backup string `json:"backup,omitempty"`
}

// BackupLocation is where in the bucket a Database's backups are: under the
// platform's prefix, <namespace>/<database>/. The namespace is always this
// Database's: a team restores only its own namespace's backups (the restore
// Job holds the platform's bucket keys).
type BackupLocation struct {
	// Database is the name the backups were taken under.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Database string `json:"database"`
}

// Storage is a replica's data volume.
//
// +kubebuilder:validation:XValidation:rule="has(self.class) == has(oldSelf.class) && (!has(self.class) || self.class == oldSelf.class)",message="spec.storage.class is immutable"
type Storage struct {
	// Size of each replica's data volume, a Kubernetes quantity such as
	// 20Gi. It may grow but never shrink.
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="spec.storage.size must be a positive quantity such as 20Gi"
	// +kubebuilder:validation:XValidation:rule="!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0",message="spec.storage.size may grow but never shrink"
	Size string `json:"size"`

	// Class is the StorageClass of the data volumes. Unset means the
	// cluster's default StorageClass. It cannot change after creation.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Class string `json:"class,omitempty"`
}

// Resources are the CPU and memory of the database container.
//
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.cpu) || !has(self.limits.cpu) || !isQuantity(self.requests.cpu) || !isQuantity(self.limits.cpu) || quantity(self.requests.cpu).compareTo(quantity(self.limits.cpu)) <= 0",message="spec.resources.requests.cpu: must not be more than limits.cpu",fieldPath=".requests.cpu"
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.memory) || !has(self.limits.memory) || !isQuantity(self.requests.memory) || !isQuantity(self.limits.memory) || quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0",message="spec.resources.requests.memory: must not be more than limits.memory",fieldPath=".requests.memory"
type Resources struct {
	// Requests are what the scheduler reserves.
	// +optional
	Requests *ResourceList `json:"requests,omitempty"`

	// Limits are what the container may not exceed.
	// +optional
	Limits *ResourceList `json:"limits,omitempty"`
}

// ResourceList is an amount of CPU and memory.
type ResourceList struct {
	// CPU as a Kubernetes quantity, such as 500m or 2.
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="cpu must be a positive quantity such as 500m"
	// +optional
	CPU string `json:"cpu,omitempty"`

	// Memory as a Kubernetes quantity, such as 1Gi.
	// +kubebuilder:validation:XValidation:rule="isQuantity(self) && quantity(self).isGreaterThan(quantity('0'))",message="memory must be a positive quantity such as 1Gi"
	// +optional
	Memory string `json:"memory,omitempty"`
}

// Backup configures scheduled logical backups to a backup volume.
//
// +kubebuilder:validation:XValidation:rule="!has(self.enabled) || !self.enabled || (has(self.schedule) && has(self.retention))",message="spec.backup: schedule and retention are required when backups are enabled"
type Backup struct {
	// Enabled turns scheduled backups on.
	// +kubebuilder:default=false
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Schedule is a five-field cron expression (UTC) or a descriptor such
	// as @daily.
	// +kubebuilder:default="0 2 * * *"
	// +kubebuilder:validation:Pattern=`^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|[0-9*,/?-]+ [0-9*,/?-]+ [0-9*,/?LW-]+ [0-9A-Za-z*,/?-]+ [0-9A-Za-z*,/?L#-]+)$`
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// Retention is how long backups are kept, in days, such as 7d. The
	// newest good backup is always kept.
	// +kubebuilder:default="7d"
	// +kubebuilder:validation:Pattern=`^[1-9][0-9]*d$`
	// +optional
	Retention string `json:"retention,omitempty"`

	// Verify restores the newest backup into a scratch server on a
	// schedule and checks its tables and row counts against those recorded
	// at dump time (the BackupVerified condition). Unset means the
	// environment's: weekly in production, off in development and staging.
	// +optional
	Verify *BackupVerify `json:"verify,omitempty"`
}

// BackupVerify schedules restore tests of the backups.
type BackupVerify struct {
	// Enabled turns the restore tests on or off; unset means the
	// environment's.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Schedule is a five-field cron expression (UTC) or a descriptor.
	// +kubebuilder:default="0 4 * * 0"
	// +kubebuilder:validation:Pattern=`^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|[0-9*,/?-]+ [0-9*,/?-]+ [0-9*,/?LW-]+ [0-9A-Za-z*,/?-]+ [0-9A-Za-z*,/?L#-]+)$`
	// +optional
	Schedule string `json:"schedule,omitempty"`
}

// Monitoring configures observability of the database.
type Monitoring struct {
	// Enabled turns monitoring on.
	// +kubebuilder:default=false
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// Metrics adds a Prometheus metrics exporter sidecar.
	// +kubebuilder:default=false
	// +optional
	Metrics bool `json:"metrics,omitempty"`

	// Logging turns on the engine's slow query and connection logging.
	// +kubebuilder:default=false
	// +optional
	Logging bool `json:"logging,omitempty"`
}

// DatabaseStatus is what the composition function observed. Crossplane owns
// status.conditions; the function sets the Ready condition through
// readiness of the composed resources.
type DatabaseStatus struct {
	// Phase summarises the lifecycle: Pending, Creating, PartiallyReady,
	// Ready or Failed.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// Ready is true when every replica is ready and every composed resource
	// exists.
	// +optional
	Ready bool `json:"ready,omitempty"`

	// Replicas is the number of ready replicas.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// LastBackup is when a backup, scheduled or on demand, last completed
	// successfully.
	// +optional
	LastBackup *metav1.Time `json:"lastBackup,omitempty"`

	// LastVerifiedBackup is when a verify Job last restored the newest
	// backup into a scratch server and found every table and row count as
	// dumped.
	// +optional
	LastVerifiedBackup *metav1.Time `json:"lastVerifiedBackup,omitempty"`

	// RestoreSeconds is how long the verify Job of LastVerifiedBackup ran:
	// starting the scratch server, download, checks, load and comparison,
	// an upper bound of the restore time (RTO).
	// +optional
	RestoreSeconds int64 `json:"restoreSeconds,omitempty"`

	// OnDemandBackup is the backup the database.example.com/backup-now
	// annotation asked for: its token, its Job and how it went.
	// +optional
	OnDemandBackup *OnDemandBackup `json:"onDemandBackup,omitempty"`

	// Endpoint is the host:port clients connect to, inside the cluster.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`

	// Primary is the pod the read-write Service routes to, as the SQL
	// provider last saw the servers, when there are standbys.
	// +optional
	Primary string `json:"primary,omitempty"`

	// Members are the servers and how each follows the primary, when there
	// are standbys.
	// +listType=map
	// +listMapKey=name
	// +optional
	Members []Member `json:"members,omitempty"`

	// ObservedGeneration is the metadata.generation of the spec this status
	// was composed from. Crossplane's Synced and Ready conditions can name a
	// newer generation than the one composed when a reconcile began on a
	// stale read of the Database: the status describes the current spec only
	// when this equals metadata.generation.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// BackupResult is how an on-demand backup went.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type BackupResult string

// Results of an on-demand backup.
const (
	BackupPending   BackupResult = "Pending"
	BackupRunning   BackupResult = "Running"
	BackupSucceeded BackupResult = "Succeeded"
	BackupFailed    BackupResult = "Failed"
)

// OnDemandBackup is the backup a database.example.com/backup-now token
// asked for.
type OnDemandBackup struct {
	// Token is the annotation's value the backup ran for.
	Token string `json:"token"`
	// Job is the backup Job's name.
	Job string `json:"job"`
	// Result is Pending (the Job is not created yet), Running, Succeeded or
	// Failed.
	Result BackupResult `json:"result"`
	// CompletionTime is when the Job finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Message says why the Job failed.
	// +optional
	Message string `json:"message,omitempty"`
}

// A Member is one server of a Database with standbys.
type Member struct {
	// Name is the pod's.
	Name string `json:"name"`
	// Role is primary, standby or unreachable.
	Role string `json:"role,omitempty"`
	// Streaming tells whether a standby receives the primary's changes.
	// +optional
	Streaming bool `json:"streaming,omitempty"`
	// Sync is the standby's synchronous state on the primary: sync or
	// quorum when commits wait for it, potential, or async.
	// +optional
	Sync string `json:"sync,omitempty"`
	// LagBytes is how far behind the primary's WAL the standby has
	// replayed.
	// +optional
	LagBytes int64 `json:"lagBytes,omitempty"`
	// LagSeconds is how long ago the standby replayed what the primary
	// has, in seconds, rounded to milliseconds.
	// +optional
	LagSeconds string `json:"lagSeconds,omitempty"`
	// Message says why a server does not stream.
	// +optional
	Message string `json:"message,omitempty"`
}

// A Database is a managed MySQL or PostgreSQL server for one application.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=db
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="TYPE",type="string",JSONPath=".spec.type"
// +kubebuilder:printcolumn:name="VERSION",type="string",JSONPath=".spec.version"
// +kubebuilder:printcolumn:name="REPLICAS",type="integer",JSONPath=".spec.replicas"
// +kubebuilder:printcolumn:name="ENVIRONMENT",type="string",JSONPath=".spec.environment"
// +kubebuilder:printcolumn:name="PHASE",type="string",JSONPath=".status.phase",priority=1
// +kubebuilder:printcolumn:name="ENDPOINT",type="string",JSONPath=".status.endpoint",priority=1
// +kubebuilder:printcolumn:name="PRIMARY",type="string",JSONPath=".status.primary",priority=1
type Database struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   DatabaseSpec   `json:"spec"`
	Status DatabaseStatus `json:"status,omitempty"`
}
