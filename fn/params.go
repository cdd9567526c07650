package fn

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"

	inputv1alpha1 "github.com/dbplane/dbplane/apis/input/v1alpha1"
	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// Params are everything the builders need, resolved once from a validated
// Database, the engine and environment tables and what was observed.
type Params struct {
	names

	Engine   engine
	Release  release
	Replicas int32
	Profile  profile

	Resources corev1.ResourceRequirements

	// StorageSize and StorageClass go into the StatefulSet's
	// volumeClaimTemplate. A StatefulSet's claim templates are immutable, so
	// once one exists its size is kept; growing the volumes is not done
	// through the template.
	StorageSize  resource.Quantity
	StorageClass *string
	// RequestedStorage is spec.storage.size, which StorageSize and
	// BackupVolumeSize may be below.
	RequestedStorage resource.Quantity
	// ClaimLabels label the data claims: the observed template's labels
	// once it exists (an older function may have composed other labels).
	ClaimLabels map[string]string

	// Config is the rendered server configuration, ConfigHash its digest,
	// which rolls the pods when it changes.
	Config     string
	ConfigHash string
	// Files are the engine's other files of the ConfigMap.
	Files map[string]string

	Backup        bool
	Schedule      string
	RetentionDays int
	// BackupVolumeSize is the backup volume's size: the data size when it is
	// created, then what exists. Growing a claim fails outright on a storage
	// class that cannot expand volumes, which would stop every later change.
	BackupVolumeSize resource.Quantity
	// Verify composes the verify CronJob, on VerifySchedule.
	Verify         bool
	VerifySchedule string
	// BackupNow is the backup-now annotation's token: a backup Job runs
	// for it. BackupNowPod is the pod template of its Job once it exists,
	// which a Job cannot change.
	BackupNow    string
	BackupNowPod *corev1.PodTemplateSpec
	// KeepBackupVolume keeps an existing backup volume composed after
	// backups are disabled, so that disabling backups never deletes them.
	KeepBackupVolume bool
	// BackupVolumeOwner is the Namespace's owner reference on the backup
	// volume, which keeps it when the Database is deleted. A new backup
	// volume, and so the backup CronJob, is composed only once it is known.
	BackupVolumeOwner *metav1.OwnerReference
	// BackupVolumeClass is the backup volume's storage class: the existing
	// volume's (composed, or left by a deleted Database of the same name),
	// else StorageClass. Once sent it is sent on every call: an apply that
	// dropped it would ask to change an immutable field.
	BackupVolumeClass *string

	Metrics bool
	// Operator: the Prometheus Operator's CRDs exist, so a Database with
	// metrics composes a PodMonitor and a PrometheusRule. OperatorUnknown:
	// Crossplane did not say yet. MonitoringUnavailable says why a
	// Database that asks for metrics is not monitored.
	Operator              bool
	OperatorUnknown       bool
	MonitoringUnavailable string

	// Autoscaling composes a HorizontalPodAutoscaler; Replicas is then
	// what the StatefulSet has, and LeaveReplicas leaves the count out of
	// the StatefulSet once the autoscaler owns it.
	Autoscaling   *v1.Autoscaling
	LeaveReplicas bool
	// AutoscalingMin is the autoscaler's minReplicas: spec's, or more
	// while the primary's ordinal is not below it.
	AutoscalingMin int32

	// Replicated: the engine streams and there is more than one replica.
	// Pods but the first start as standbys of the primary; Primary routing
	// means the SQL provider's Replication found the primary, so the
	// Services select by the role label it keeps on the pods.
	Replicated     bool
	RoleRouting    bool
	SyncStandbys   int32
	StandbyStreams bool
	// SwitchoverTo is the pod the Database's switchover annotation asks
	// to be primary.
	SwitchoverTo string
	// ProviderRolls: the StatefulSet updates OnDelete and the SQL
	// provider's Replication rolls the pods.
	ProviderRolls bool
	// ScaleDownWaits says why Replicas is still above spec.replicas: the
	// primary is among the pods a scale-down removes, and is switched over
	// first.
	ScaleDownWaits string

	// Restore, when set, loads a backup before apps can connect: the restore
	// Job is composed once the first replica is ready and the source
	// Database is known, and the client Service once the Job completed.
	// RestoreKind is the source's kind: Database, or DatabaseClaim for a
	// claim's XDatabase.
	Restore           *v1.Restore
	RestoreKind       string
	ComposeRestoreJob bool
	ComposeService    bool

	// S3 is the Input's bucket: backups are uploaded there and restored
	// from there. Nil: the volumes only.
	S3 *inputv1alpha1.S3

	// SQLUsers composes the SQL provider's ProviderConfig and a User per
	// login; Logins are the app login and spec.users.
	SQLUsers bool
	Logins   []login

	// Clients may connect to the database port (spec.network.from; the
	// Database's namespace when unset), as well as the Database's own pods
	// and Jobs and the SQL provider's pods in ProviderNamespace.
	// MonitoringNamespace's pods may scrape the metrics port.
	Clients             []networkingv1.NetworkPolicyPeer
	ProviderNamespace   string
	MonitoringNamespace string

	// Credentials are the superuser's. Only the Secret builder reads them.
	Credentials Credentials

	// Issuer is the Input's cert-manager Issuer; CertManager: it issues
	// the server certificate (a Certificate is composed), because
	// cert-manager runs in the cluster. Otherwise the function issues TLS,
	// the CA and server certificate, which only the TLS Secret builders
	// read.
	Issuer      *IssuerRef
	CertManager bool
	TLS         Certificates
}

// resolveBackupVolume sets the backup volume's size, class and owner from
// the existing volume, composed or left, and the Namespace.
func (p *Params) resolveBackupVolume(o Observed) {
	p.BackupVolumeSize = p.RequestedStorage
	if q := o.BackupVolumeSize(); q != nil {
		p.BackupVolumeSize = *q
	}
	p.KeepBackupVolume = o.BackupVolume != nil
	p.BackupVolumeOwner = o.BackupVolumeOwner(p.Namespace)
	p.BackupVolumeClass = p.StorageClass
	for _, v := range []*corev1.PersistentVolumeClaim{o.BackupVolume, o.LeftBackupVolume} {
		if v != nil && v.Spec.StorageClassName != nil {
			p.BackupVolumeClass = v.Spec.StorageClassName
			break
		}
	}
}

// ComposeBackupVolume tells whether the backup volume is composed: once it
// exists, always, so that no change deletes a backup; before, with backups
// enabled once the Namespace that keeps it is known.
func (p Params) ComposeBackupVolume() bool {
	return p.KeepBackupVolume || (p.Backup && p.BackupVolumeOwner != nil)
}

// ComposeBackupCronJob tells whether the backup CronJob is composed: with
// backups enabled, once its volume is.
func (p Params) ComposeBackupCronJob() bool { return p.Backup && p.ComposeBackupVolume() }

// Input is the function's resolved input.
type Input struct {
	SQLUsers bool
	// ProviderNamespace and MonitoringNamespace are where the SQL provider
	// and Prometheus run; empty means DefaultProviderNamespace and
	// DefaultMonitoringNamespace.
	ProviderNamespace   string
	MonitoringNamespace string
	// Issuer, when set, is the cert-manager Issuer that signs the servers'
	// certificates where cert-manager runs.
	Issuer *IssuerRef
	// S3 is the bucket backups are uploaded to besides the volumes; nil
	// keeps them on the volumes only.
	S3 *inputv1alpha1.S3
}

// Namespaces the Input's providerNamespace and monitoringNamespace default
// to, as its schema does.
const (
	DefaultProviderNamespace   = "crossplane-system"
	DefaultMonitoringNamespace = "monitoring"
)

// Credentials of the superuser.
type Credentials struct {
	Username string
	Password string
}

// Resolve turns a validated, defaulted Database into builder Params. The
// password comes from the observed Secret, or from gen for a new Database.
func Resolve(db *v1.Database, o Observed, in Input, gen func() (string, error)) (Params, error) {
	s := db.Spec
	e, ok := engines[s.Type]
	if !ok {
		return Params{}, errors.Errorf("spec.type: unsupported engine %q", s.Type)
	}
	rel, ok := e.Versions[s.Version]
	if !ok {
		return Params{}, errors.Errorf("spec.version: unsupported %s version %q", s.Type, s.Version)
	}
	pr, ok := profiles[s.Environment]
	if !ok {
		return Params{}, errors.Errorf("spec.environment: unsupported environment %q", s.Environment)
	}
	if s.Replicas == nil || s.Backup == nil || s.Monitoring == nil {
		return Params{}, errors.New("spec: not defaulted")
	}
	p := Params{
		names:    names{Name: db.GetName(), Namespace: db.GetNamespace(), Engine: s.Type, Version: s.Version},
		Engine:   e,
		Release:  rel,
		Replicas: *s.Replicas,
		Profile:  pr,
		Backup:   s.Backup.Enabled,
		Schedule: s.Backup.Schedule,
		Metrics:  metrics(s.Monitoring, in),
	}

	var err error
	if p.Resources, err = resources(pr, s.Resources); err != nil {
		return Params{}, errors.Wrap(err, "spec.resources")
	}

	if p.RequestedStorage, err = resource.ParseQuantity(s.Storage.Size); err != nil {
		return Params{}, errors.Wrapf(err, "spec.storage.size: cannot parse %q", s.Storage.Size)
	}
	p.StorageSize = p.RequestedStorage
	p.ClaimLabels = p.claimLabels()
	if t := o.ClaimTemplate(); t != nil {
		if q, ok := t.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
			p.StorageSize = q
		}
		p.ClaimLabels = t.Labels
	}
	if s.Storage.Class != "" {
		p.StorageClass = ptr.To(s.Storage.Class)
	}

	p.resolveBackupVolume(o)
	if err := p.resolveBackup(db, pr, o); err != nil {
		return Params{}, err
	}

	p.SQLUsers = in.SQLUsers
	p.ProviderNamespace = cmp.Or(in.ProviderNamespace, DefaultProviderNamespace)
	p.MonitoringNamespace = cmp.Or(in.MonitoringNamespace, DefaultMonitoringNamespace)
	p.Clients = clients(db.GetNamespace(), s.Network)
	p.S3 = in.S3
	if s.Autoscaling != nil {
		p.Autoscaling = s.Autoscaling
		p.Replicas, p.LeaveReplicas = autoscaledReplicas(s.Autoscaling, p.Replicas, o.StatefulSet)
	}
	p.resolveReplication(s, pr, o, db.GetAnnotations()[AnnotationSwitchoverTo])
	p.resolveMonitoring(o, s.Monitoring.Enabled && s.Monitoring.Metrics)
	mem := p.Resources.Limits.Memory()
	if mem.IsZero() {
		mem = p.Resources.Requests.Memory()
	}
	p.Config = e.Config(tuning{
		MemoryBytes:     mem.Value(),
		MaxConnections:  pr.MaxConnections,
		Logging:         s.Monitoring.Enabled && s.Monitoring.Logging,
		SlowQueryMillis: pr.SlowQueryMillis,
		Port:            e.Port,
		StorageBytes:    p.StorageSize.Value(),
		PrimaryHost:     p.Host(),
		StartReadOnly:   p.providerOpensPrimary(),
		RequireTLS:      pr.RequireTLS,
	})
	p.Files, p.ConfigHash = configFiles(e, pr, p.Config)

	if p.SQLUsers {
		p.Logins = logins(p.names, s.Users, p.Replicated, p.Metrics)
	}

	p.RestoreKind = restoreKind(db)
	if err := p.resolveRestore(s.Restore, o); err != nil {
		return Params{}, err
	}

	p.Credentials = Credentials{Username: e.Superuser, Password: o.Password}
	if p.Credentials.Password == "" {
		pw, err := gen()
		if err != nil {
			return Params{}, errors.Wrap(err, "cannot generate password")
		}
		p.Credentials.Password = pw
	}
	return p, nil
}

// configFiles are the engine's files beside its configuration, and the
// digest of all of them: a new init step or pg_hba.conf rolls the pods too.
func configFiles(e engine, pr profile, config string) (map[string]string, string) {
	fs := map[string]string{}
	if e.Files != nil {
		fs = e.Files(tuning{RequireTLS: pr.RequireTLS})
	}
	all := []string{config}
	for _, k := range slices.Sorted(maps.Keys(fs)) {
		all = append(all, k, fs[k])
	}
	return fs, digest([]byte(strings.Join(all, "\x00")))
}

// resolveBackup sets the retention, verification and on-demand backup of
// a Database with backups.
func (p *Params) resolveBackup(db *v1.Database, pr profile, o Observed) error {
	b := db.Spec.Backup
	if !p.Backup {
		return nil
	}
	days, err := strconv.Atoi(strings.TrimSuffix(b.Retention, "d"))
	if err != nil || days < 1 {
		return errors.Errorf("spec.backup.retention: cannot parse %q as a number of days such as 7d", b.Retention)
	}
	p.RetentionDays = days
	p.Verify, p.VerifySchedule = pr.VerifyBackups, defaultVerifySchedule
	if v := b.Verify; v != nil {
		p.Verify = ptr.Deref(v.Enabled, p.Verify)
		p.VerifySchedule = cmp.Or(v.Schedule, defaultVerifySchedule)
	}
	p.BackupNow = db.GetAnnotations()[AnnotationBackupNow]
	p.BackupNowPod = backupNowPod(o, p.names, p.BackupNow)
	return nil
}

// resolveRestore decides when the restore Job and the client Service are
// composed. It needs p.S3.
func (p *Params) resolveRestore(r *v1.Restore, o Observed) error {
	p.Restore = r
	p.ComposeService = r == nil || o.Exists[rnService] || jobSucceeded(o.RestoreJob)
	if r == nil {
		return nil
	}
	if r.FromBackup != nil && p.S3 == nil {
		return errors.New("spec.restore.fromBackup: restoring from the bucket needs the platform's object storage (the function Input's backupStorage.s3), which is not configured")
	}
	// fromBackup has no source Database to wait for: the bucket is the
	// source.
	known := o.RestoreSource != nil || r.FromBackup != nil
	p.ComposeRestoreJob = o.RestoreJob != nil || (known && o.StatefulSet != nil && o.StatefulSet.Status.ReadyReplicas > 0)
	return nil
}

// metrics tells whether the exporter is composed: it logs in as the
// monitoring login, which only the SQL provider makes.
func metrics(m *v1.Monitoring, in Input) bool {
	return m.Enabled && m.Metrics && in.SQLUsers
}

// resources are the profile's, unless the Database sets its own.
func resources(pr profile, r *v1.Resources) (corev1.ResourceRequirements, error) {
	if r == nil {
		r = &v1.Resources{
			Requests: &v1.ResourceList{CPU: pr.CPURequest, Memory: pr.MemoryRequest},
			Limits:   &v1.ResourceList{CPU: pr.CPULimit, Memory: pr.MemoryLimit},
		}
	}
	req, err := list(r.Requests)
	if err != nil {
		return corev1.ResourceRequirements{}, errors.Wrap(err, "requests")
	}
	lim, err := list(r.Limits)
	if err != nil {
		return corev1.ResourceRequirements{}, errors.Wrap(err, "limits")
	}
	return corev1.ResourceRequirements{Requests: req, Limits: lim}, nil
}

func list(l *v1.ResourceList) (corev1.ResourceList, error) {
	if l == nil {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for _, kv := range []struct {
		k corev1.ResourceName
		v string
	}{{corev1.ResourceCPU, l.CPU}, {corev1.ResourceMemory, l.Memory}} {
		k, v := kv.k, kv.v
		if v == "" {
			continue
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, errors.Wrapf(err, "%s: cannot parse %q", k, v)
		}
		out[k] = q
	}
	return out, nil
}

// BackupHost is where backups read from: a standby when one streams, to
// spare the primary, else the primary.
func (p Params) BackupHost() string {
	if p.StandbyStreams {
		return p.ReadOnlyHost()
	}
	return p.Host()
}

// providerOpensPrimary: the SQL provider's Replication makes the one
// primary take writes (MySQL with replicas), so every server starts
// read-only.
func (p *Params) providerOpensPrimary() bool {
	return p.Engine.ProviderReplicates && p.Replicated && p.SQLUsers
}

// resolveReplication decides whether standbys stream, how many a commit
// waits for, and, from what the Replication saw, how to route.
func (p *Params) resolveReplication(s v1.DatabaseSpec, pr profile, o Observed, switchoverTo string) {
	if p.Engine.ProviderRolls && p.SQLUsers && p.Autoscaling == nil {
		if held, to := holdForPrimary(p.Replicas, o); held > 0 {
			p.ScaleDownWaits = fmt.Sprintf("spec.replicas: scaling to %d waits for the primary to move to %s: the pods removed would include it", p.Replicas, to)
			p.Replicas, switchoverTo = held, to
		}
	}
	if a := p.Autoscaling; a != nil {
		p.AutoscalingMin = a.MinReplicas
		if floor, primary := floorForPrimary(a.MinReplicas, p.StatefulSet(), o.Replication); p.Engine.ProviderRolls && p.SQLUsers && floor > 0 {
			p.AutoscalingMin = floor
			// Only when the autoscaler wants fewer: a switchover costs
			// writes a second.
			if to := p.StatefulSet() + "-0"; limitedByMin(o.Autoscaler) {
				p.ScaleDownWaits = fmt.Sprintf("spec.autoscaling: the autoscaler wants fewer than %d replicas, which would remove the primary %s: switching over to %s first", floor, primary, to)
				if switchoverTo == "" {
					switchoverTo = to
				}
			}
		}
	}
	p.Replicated = p.Engine.Streaming && p.Replicas > 1
	if !p.Replicated {
		return
	}
	p.SwitchoverTo = switchoverTo
	p.ProviderRolls = p.Engine.ProviderRolls && p.SQLUsers
	p.SyncStandbys = pr.SyncStandbys
	if r := s.Replication; r != nil && r.Synchronous != nil {
		p.SyncStandbys = *r.Synchronous
	}
	if r := o.Replication; r != nil {
		// Once a primary was found the Services follow the labels for
		// good: while a failover is under way no pod is labelled primary,
		// and pod 0 may be a standby, or the lost primary itself.
		p.RoleRouting = r.Primary != "" || r.LastPrimary != ""
		p.StandbyStreams = streaming(r) > 0
	}
}

// floorForPrimary is the autoscaler's minReplicas that keeps the primary
// (the one of the StatefulSet sts the Replication saw), when least would
// let a scale-down remove it, and the primary; zero when least keeps it.
func floorForPrimary(least int32, sts string, r *sqlv1alpha1.ReplicationObservation) (int32, string) {
	if r == nil {
		return 0, ""
	}
	primary := r.Primary
	if primary == "" {
		primary = r.LastPrimary
	}
	if n := podOrdinal(sts, primary); n >= int(least) {
		return int32(n) + 1, primary //nolint:gosec // An ordinal below the StatefulSet's replicas.
	}
	return 0, ""
}

// limitedByMin tells whether the autoscaler wants fewer replicas than its
// minReplicas lets it have.
func limitedByMin(hpa *autoscalingv2.HorizontalPodAutoscaler) bool {
	if hpa == nil {
		return false
	}
	for _, c := range hpa.Status.Conditions {
		if c.Type == autoscalingv2.ScalingLimited {
			return c.Status == corev1.ConditionTrue && c.Reason == "TooFewReplicas"
		}
	}
	return false
}

// holdForPrimary is the replica count to keep, and the pod to switch over
// to, while scaling down to desired would remove the primary (a failover
// or switchover moved it to a high ordinal): a StatefulSet removes the
// highest ordinals. Zero when the scale-down may go ahead.
func holdForPrimary(desired int32, o Observed) (int32, string) {
	sts, r := o.StatefulSet, o.Replication
	if sts == nil || sts.Spec.Replicas == nil || r == nil || *sts.Spec.Replicas <= desired {
		return 0, ""
	}
	primary := r.Primary
	if primary == "" {
		primary = r.LastPrimary
	}
	if n := podOrdinal(sts.GetName(), primary); n < int(desired) {
		return 0, ""
	}
	return *sts.Spec.Replicas, sts.GetName() + "-0"
}
