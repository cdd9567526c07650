package fn

import (
	"strings"

	"github.com/crossplane/function-sdk-go/resource"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// Composed resource names. They identify our resources within the pipeline
// and must never change between calls: a renamed entry is deleted and
// created again.
const (
	rnStatefulSet     resource.Name = "statefulset"
	rnHeadlessService resource.Name = "service-headless"
	rnService         resource.Name = "service"
	rnConfigMap       resource.Name = "configmap"
	rnSecret          resource.Name = "secret"
	rnBackupCronJob   resource.Name = "backup-cronjob"
	rnBackupVolume    resource.Name = "backup-pvc"
	rnDisruption      resource.Name = "pdb"
	rnRestoreJob      resource.Name = "restore-job"
	rnReadOnlyService resource.Name = "service-ro"
)

// appDatabase is the database the image creates on first start.
const appDatabase = "app"

// Data volume, config volume and container names.
const (
	dataVolume      = "data"
	configVolume    = "config"
	runVolume       = "run"
	backupVolume    = "backup"
	serverContainer = "server"
	backupMount     = "/backup"
)

// Keys of the credentials Secret.
const (
	keyUsername = "username"
	keyPassword = "password"
	keyHost     = "host"
	keyPort     = "port"
	keyDatabase = "database"
)

// Label keys.
const (
	labelName      = "app.kubernetes.io/name"
	labelInstance  = "app.kubernetes.io/instance"
	labelVersion   = "app.kubernetes.io/version"
	labelComponent = "app.kubernetes.io/component"
	labelManagedBy = "app.kubernetes.io/managed-by"
	labelPodName   = "statefulset.kubernetes.io/pod-name"
	// labelRole is what a server is, as the SQL provider last saw it:
	// rolePrimary or roleReplica (a standby that streams). The Services
	// select by it, so that they follow the servers.
	labelRole   = sqlv1alpha1.LabelRole
	rolePrimary = sqlv1alpha1.RolePrimary
	roleReplica = sqlv1alpha1.RoleReplica

	annotationConfigHash = "database.example.com/config-hash"
	annotationSpecDigest = "database.example.com/spec-digest"
)

// names are the object names and labels of one Database's composed objects.
type names struct {
	Name      string
	Namespace string
	Engine    v1.Engine
	Version   string
}

func (n names) StatefulSet() string     { return n.Name }
func (n names) HeadlessService() string { return n.Name + "-headless" }
func (n names) Service() string         { return n.Name }
func (n names) ConfigMap() string       { return n.Name + "-config" }
func (n names) Secret() string          { return n.Name + "-credentials" }
func (n names) BackupCronJob() string   { return n.Name + "-backup" }
func (n names) BackupVolume() string    { return n.Name + "-backup" }
func (n names) Disruption() string      { return n.Name }
func (n names) RestoreJob() string      { return n.Name + "-restore" }
func (n names) CASecret() string        { return n.Name + "-ca" }
func (n names) TLSSecret() string       { return n.Name + "-tls" }

// FirstPodHost is the first replica's DNS name through the headless Service,
// which resolves before the replica is ready.
func (n names) FirstPodHost() string {
	return n.FirstPod() + "." + n.HeadlessService() + "." + n.Namespace + ".svc.cluster.local"
}

// SlotPrefix, followed by a pod's ordinal, names the pod's physical
// replication slot: slot names allow only a-z, 0-9 and _.
func (n names) SlotPrefix() string { return strings.ReplaceAll(n.Name, "-", "_") + "_" }

// ReadOnlyService selects the standbys that stream.
func (n names) ReadOnlyService() string { return n.Name + "-ro" }

// Replication is the SQL provider's Replication observing the servers.
func (n names) Replication() string { return n.Name }

// ReplicationLogin's User and its connection Secret.
func (n names) ReplicationUser() string { return n.Name + "-" + replicationLogin }

// MonitoringUser is the metrics exporter's login's User and its connection
// Secret.
func (n names) MonitoringUser() string { return n.Name + "-" + monitoringLogin }

// FirstPod is the pod the client Service selects until replication exists.
func (n names) FirstPod() string { return n.Name + "-0" }

// Host is the client Service's in-cluster DNS name.
func (n names) Host() string { return n.Service() + "." + n.Namespace + ".svc.cluster.local" }

// ReadOnlyHost is the read-only Service's.
func (n names) ReadOnlyHost() string {
	return n.ReadOnlyService() + "." + n.Namespace + ".svc.cluster.local"
}

// PodHost is a pod's DNS name through the headless Service.
func (n names) PodHost(ordinal int32) string {
	return n.Name + "-" + itoa(ordinal) + "." + n.HeadlessService() + "." + n.Namespace + ".svc.cluster.local"
}

// Selector selects the database pods. It is part of the StatefulSet's
// immutable selector, so it holds only labels that never change.
func (n names) Selector() map[string]string {
	return map[string]string{
		labelName:      string(n.Engine),
		labelInstance:  n.Name,
		labelComponent: "database",
	}
}

// claimLabels label the data volume claims. A StatefulSet's claim templates
// are immutable, so they hold only labels that never change: no version.
func (n names) claimLabels() map[string]string {
	l := n.Selector()
	l[labelManagedBy] = "dbplane"
	return l
}

// Labels of every composed object of a component.
func (n names) Labels(component string) map[string]string {
	return map[string]string{
		labelName:      string(n.Engine),
		labelInstance:  n.Name,
		labelVersion:   n.Version,
		labelComponent: component,
		labelManagedBy: "dbplane",
	}
}
