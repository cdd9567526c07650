package v1alpha1

import (
	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AnnotationRotatePassword asks for an immediate password rotation: when its
// value differs from status.atProvider.rotationTrigger the provider rotates
// the password and records the value there. Any new value works, such as a
// timestamp: `kubectl annotate user app sql.database.example.com/rotate-password="$(date +%s)" --overwrite`.
const AnnotationRotatePassword = Group + "/rotate-password"

// Keys of a User's connection Secret.
const (
	ConnectionKeyHost     = "host"
	ConnectionKeyPort     = "port"
	ConnectionKeyDatabase = "database"
	ConnectionKeyUsername = "username"
	ConnectionKeyPassword = "password"
	// ConnectionKeyURI is a URL: postgresql://user:pass@host:port/db?sslmode=...
	// or mysql://user:pass@host:port/db, with every part escaped.
	ConnectionKeyURI = "uri"
	// ConnectionKeyDSN is the data source name of the engine's usual Go
	// driver: a libpq keyword/value string for PostgreSQL (pgx, lib/pq), a
	// github.com/go-sql-driver/mysql DSN for MySQL.
	ConnectionKeyDSN = "dsn"
	// ConnectionKeyCA is the PEM CA certificate that verifies the server,
	// when its ProviderConfig names one.
	ConnectionKeyCA = "ca.crt"
)

// Privileges of a login on its database. The provider enforces exactly the
// set a level defines, granting what is missing and revoking what is extra,
// on every poll.
//
// On PostgreSQL, in the User's database:
//
//   - owner: the login owns the database (ALTER DATABASE ... OWNER TO), has
//     USAGE and CREATE on schema public, ALL on every table, view and
//     sequence in public that it does not own itself, and the same through
//     default privileges on objects the admin login creates in public.
//   - readWrite: CONNECT on the database; USAGE and CREATE on schema public;
//     SELECT, INSERT, UPDATE and DELETE on every table and view in public and
//     USAGE and SELECT on every sequence (nextval for serial columns); the
//     same through default privileges on objects the database owner and the
//     admin login create in public later.
//   - readOnly: CONNECT; USAGE on schema public; SELECT on every table, view
//     and sequence in public, and through default privileges on later ones.
//   - replication: the REPLICATION attribute, for physical streaming
//     replication and pg_basebackup (pg_hba.conf must allow the login's
//     replication connections), and no privilege at all on the database,
//     schema public, or the tables and sequences in it, not even CONNECT;
//     it owns nothing there. The database only says where the provider
//     looks.
//   - monitoring: what a metrics exporter reads: membership in the
//     predefined role pg_monitor (every pg_stat_* view, pg_ls_waldir and the
//     like, no table data), and no privilege on the database, schema public,
//     or the tables and sequences in it; it owns nothing there. It connects
//     through the CONNECT privilege PUBLIC has on every database by default.
//
// At every level the login has LOGIN, INHERIT, VALID UNTIL infinity and no
// SUPERUSER, CREATEDB, CREATEROLE or BYPASSRLS attribute, has REPLICATION
// at the replication level only, is a member of no role (but pg_monitor at
// the monitoring level), and holds no other
// explicit privilege on the database, schema public, or the tables and
// sequences in it. Objects the login owns keep their owner's rights.
// Privileges granted to PUBLIC (CONNECT on a database, USAGE on schema
// public by default), column privileges, other schemas and other databases
// are not managed.
//
// On MySQL and MariaDB, for the account 'name'@'%':
//
//   - owner: ALL PRIVILEGES ON `db`.*.
//   - readWrite: SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES and
//     EXECUTE ON `db`.*.
//   - readOnly: SELECT and SHOW VIEW ON `db`.*.
//   - replication: REPLICATION SLAVE and REPLICATION CLIENT ON *.*, what a
//     replica's login needs on its source, and on MySQL 8 also BACKUP_ADMIN,
//     what a CLONE recipient's login needs on its donor. MariaDB has neither
//     BACKUP_ADMIN nor CLONE, and calls REPLICATION CLIENT BINLOG MONITOR
//     (SHOW MASTER STATUS, SHOW BINARY LOGS; SHOW REPLICA STATUS needs
//     SLAVE MONITOR, which this level does not grant). No privilege on the
//     database: it only says where the login belongs.
//   - monitoring: what a metrics exporter reads: PROCESS and REPLICATION
//     CLIENT ON *.* (on MariaDB, which calls the latter BINLOG MONITOR, also
//     SLAVE MONITOR, for SHOW REPLICA STATUS) and SELECT ON
//     performance_schema.*. Nothing on the database: it only says where the
//     login belongs.
//
// At every level but replication and monitoring the account has no global
// privilege. At every level it has no GRANT OPTION, no privilege on another
// database (but performance_schema at the monitoring level),
// table, column or routine, is not locked, and its password has not
// expired. Roles granted to the account are not managed. `_` and `%` in
// the database name are escaped, so a grant on my_app never matches
// myXapp.
// +kubebuilder:validation:Enum=owner;readWrite;readOnly;replication;monitoring
type Privileges string

// Privilege levels.
const (
	Owner     Privileges = "owner"
	ReadWrite Privileges = "readWrite"
	ReadOnly  Privileges = "readOnly"
	// ReplicationPrivileges is a login for standbys to replicate from, not
	// for apps: the Database API does not offer it. Not named Replication:
	// that is the managed resource's kind.
	ReplicationPrivileges Privileges = "replication"
	// MonitoringPrivileges is a login for a metrics exporter, not for
	// apps: the Database API does not offer it.
	MonitoringPrivileges Privileges = "monitoring"
)

// UserParameters are the desired state of a User's login.
type UserParameters struct {
	// Database the privileges apply to. It must exist on PostgreSQL. It
	// cannot change: create another User instead. At the replication level
	// the login gets nothing on it: it names where the login belongs.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.forProvider.database is immutable"
	Database string `json:"database"`

	// Privileges of the login on the database: owner, readWrite, readOnly,
	// replication or monitoring. See the Privileges type for exactly what each grants.
	// +kubebuilder:default=readWrite
	// +optional
	Privileges Privileges `json:"privileges,omitempty"`

	// PasswordRotation rotates the password on a schedule. Unset never
	// rotates it automatically; the rotate-password annotation rotates it on
	// demand either way.
	// +optional
	PasswordRotation *PasswordRotation `json:"passwordRotation,omitempty"`
}

// PasswordRotation is a password rotation schedule.
type PasswordRotation struct {
	// Period after which the password is replaced, counted from
	// status.atProvider.passwordChangedAt, such as 720h. Unset never rotates
	// it automatically.
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:Pattern=`^([0-9]+h)?([0-9]+m)?$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="spec.forProvider.passwordRotation.period must be at least 1m"
	// +optional
	Period string `json:"period,omitempty"`
}

// UserObservation is the observed state of a User's login.
type UserObservation struct {
	// Username is the login's name: the crossplane.io/external-name
	// annotation, which defaults to metadata.name.
	// +optional
	Username string `json:"username,omitempty"`

	// Privileges the login was last seen to have exactly.
	// +optional
	Privileges Privileges `json:"privileges,omitempty"`

	// PasswordChangedAt is when the provider last set a new password, or
	// first saw the login's current one.
	// +optional
	PasswordChangedAt *metav1.Time `json:"passwordChangedAt,omitempty"`

	// RotationTrigger is the value of the rotate-password annotation the
	// provider last acted on.
	// +optional
	RotationTrigger string `json:"rotationTrigger,omitempty"`
}

// A UserSpec is the desired state of a User.
//
// It spells out the fields of crossplane-runtime's ManagedResourceSpec
// instead of embedding it, so that providerConfigRef defaults to this
// provider's namespaced ProviderConfig (the embedded default names a
// ClusterProviderConfig, which this provider does not have) and
// writeConnectionSecretToRef is required.
type UserSpec struct {
	// WriteConnectionSecretToReference is the Secret, in the User's
	// namespace, the provider writes the login's connection details to:
	// host, port, database, username, password, uri and dsn. The provider
	// also reads the current password back from it, so it is required, and
	// a password that is missing from it is replaced.
	WriteConnectionSecretToReference *xpv2.LocalSecretReference `json:"writeConnectionSecretToRef"`

	// ProviderConfigReference names the ProviderConfig, in the User's
	// namespace, of the server the login lives on.
	// +kubebuilder:default={"kind": "ProviderConfig", "name": "default"}
	// +kubebuilder:validation:XValidation:rule="self.kind == 'ProviderConfig'",message="spec.providerConfigRef.kind must be ProviderConfig"
	// +optional
	ProviderConfigReference *xpv2.ProviderConfigReference `json:"providerConfigRef,omitempty"`

	// ManagementPolicies specify the array of actions Crossplane is allowed
	// to take on the managed and external resources.
	// +kubebuilder:default={"*"}
	// +optional
	ManagementPolicies xpv2.ManagementPolicies `json:"managementPolicies,omitempty"`

	// ForProvider is the desired state of the login.
	ForProvider UserParameters `json:"forProvider"`
}

// A UserStatus is the observed state of a User.
type UserStatus struct {
	xpv2.ManagedResourceStatus `json:",inline"`

	// AtProvider is the observed state of the login.
	// +optional
	AtProvider UserObservation `json:"atProvider,omitempty"`
}

// A User is a database login with a generated password and least privilege on
// one database. Its name on the server is the crossplane.io/external-name
// annotation (metadata.name by default); naming an existing login adopts it,
// resetting its password and privileges. The connection Secret holds what an
// app needs to log in. Ready is True when the password in the Secret logs in
// and the privileges are exactly the requested ones.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={crossplane,managed,sql}
// +kubebuilder:printcolumn:name="READY",type="string",JSONPath=".status.conditions[?(@.type=='Ready')].status"
// +kubebuilder:printcolumn:name="SYNCED",type="string",JSONPath=".status.conditions[?(@.type=='Synced')].status"
// +kubebuilder:printcolumn:name="EXTERNAL-NAME",type="string",JSONPath=".metadata.annotations.crossplane\\.io/external-name"
// +kubebuilder:printcolumn:name="DATABASE",type="string",JSONPath=".spec.forProvider.database"
// +kubebuilder:printcolumn:name="PRIVILEGES",type="string",JSONPath=".spec.forProvider.privileges"
// +kubebuilder:printcolumn:name="PASSWORD-CHANGED",type="date",JSONPath=".status.atProvider.passwordChangedAt",priority=1
// +kubebuilder:printcolumn:name="AGE",type="date",JSONPath=".metadata.creationTimestamp"
type User struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   UserSpec   `json:"spec"`
	Status UserStatus `json:"status,omitempty"`
}

// UserList is a list of Users.
// +kubebuilder:object:root=true
type UserList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []User `json:"items"`
}
