package fn

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/crossplane/function-sdk-go/resource/composite"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
)

// Conditions of a Database that works but may need its owner's attention,
// beside BackupHealthy.
const (
	ConditionVersionSupported = "VersionSupported"
	ConditionStorageSized     = "StorageSized"
	ConditionRestored         = "Restored" // Only with spec.restore.
	// ConditionPrimaryAvailable is only for Databases with standbys, once
	// the SQL provider's Replication reported.
	ConditionPrimaryAvailable = "PrimaryAvailable"
	// ConditionScaled is for Databases whose pods the SQL provider rolls
	// (PostgreSQL with its SQL logins).
	ConditionScaled = "Scaled"
)

// Reasons of those conditions.
const (
	ReasonSupported          = "Supported"
	ReasonEndOfLife          = "EndOfLife"
	ReasonAsRequested        = "AsRequested"
	ReasonGrowthNotAutomated = "GrowthNotAutomated"
	ReasonRestoreSucceeded   = "RestoreSucceeded"
	ReasonRestoring          = "Restoring"
	ReasonWaitingForSource   = "WaitingForSource"
	ReasonRestoreFailed      = "RestoreFailed"
	ReasonPrimaryFound       = "PrimaryFound"
	ReasonFailingOver        = "FailingOver"
	ReasonFailoverImpossible = "FailoverImpossible"
	ReasonNoPrimary          = "NoPrimary"
	ReasonSwitchingOverFirst = "SwitchingOverFirst"
)

// Advice is one such condition. Every call sets each of them, so a fixed
// problem clears itself, and a False one is also a Warning event, but only
// when it changed: Kubernetes records about 25 Warning events per object
// and source, then one every five minutes, so a warning repeated on every
// reconcile (MySQL 8.0's end of life, say) would hide the next new one.
type Advice struct {
	Type    string
	Status  corev1.ConditionStatus
	Reason  string
	Message string
}

// Advise tells what about a Database needs attention, a condition each.
func Advise(p Params, o Observed) []Advice {
	a := []Advice{{Type: ConditionVersionSupported, Status: corev1.ConditionTrue, Reason: ReasonSupported}}
	if eol := p.Release.EndOfLife; eol != "" {
		a[0] = Advice{ConditionVersionSupported, corev1.ConditionFalse, ReasonEndOfLife, "spec.version: " + eol}
	}

	var grow []string
	want := p.RequestedStorage
	if want.Cmp(p.StorageSize) > 0 {
		grow = append(grow, "spec.storage.size: existing data volumes stay at "+p.StorageSize.String()+
			"; growing them to "+want.String()+" is not automated yet (a StatefulSet's volume claim templates are immutable)")
	}
	if p.KeepBackupVolume && want.Cmp(p.BackupVolumeSize) > 0 {
		grow = append(grow, "spec.storage.size: the backup volume stays at "+p.BackupVolumeSize.String()+
			"; growing it to "+want.String()+" is not automated yet (not every storage class can expand a volume)")
	}
	sized := Advice{Type: ConditionStorageSized, Status: corev1.ConditionTrue, Reason: ReasonAsRequested}
	if len(grow) > 0 {
		sized = Advice{ConditionStorageSized, corev1.ConditionFalse, ReasonGrowthNotAutomated, strings.Join(grow, ". ")}
	}
	a = append(a, sized)

	if p.Restore != nil {
		a = append(a, restored(p, o))
	}
	if p.Replicated && o.Replication != nil {
		a = append(a, primaryAvailable(o.Replication, o.ReplicationMessage))
	}
	if p.Metrics || p.MonitoringUnavailable != "" {
		a = append(a, monitored(p))
	}
	if p.Engine.ProviderRolls && p.SQLUsers {
		scaled := Advice{Type: ConditionScaled, Status: corev1.ConditionTrue, Reason: ReasonAsRequested}
		if p.ScaleDownWaits != "" {
			scaled = Advice{ConditionScaled, corev1.ConditionFalse, ReasonSwitchingOverFirst, p.ScaleDownWaits}
		}
		a = append(a, scaled)
	}
	return a
}

// primaryAvailable tells whether writes have a primary: found, being failed
// over to a standby, or lost with no standby the provider may promote.
func primaryAvailable(r *sqlv1alpha1.ReplicationObservation, why string) Advice {
	switch {
	case r.Primary != "":
		msg := ""
		if f := r.LastFailover; f != nil {
			msg = fmt.Sprintf("last failover %s: from %s to %s: %s", f.At.UTC().Format(time.RFC3339), f.From, f.To, f.Reason)
		}
		return Advice{ConditionPrimaryAvailable, corev1.ConditionTrue, ReasonPrimaryFound, msg}
	case r.LastPrimary == "":
		return Advice{ConditionPrimaryAvailable, corev1.ConditionUnknown, ReasonNoPrimary, "the SQL provider has not found a primary yet"}
	case strings.Contains(why, "cannot fail over"):
		return Advice{ConditionPrimaryAvailable, corev1.ConditionFalse, ReasonFailoverImpossible, why}
	default:
		return Advice{ConditionPrimaryAvailable, corev1.ConditionFalse, ReasonFailingOver, orString(why, "primary "+r.LastPrimary+" is unreachable")}
	}
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// restored tells how far a restore got.
func restored(p Params, o Observed) Advice {
	switch failed := jobFailure(o.RestoreJob); {
	case jobSucceeded(o.RestoreJob) || o.Exists[rnService]:
		// The client Service is composed only after the restore Job
		// succeeded, and stays once the Job is gone.
		return Advice{ConditionRestored, corev1.ConditionTrue, ReasonRestoreSucceeded, ""}
	case failed != nil:
		return Advice{ConditionRestored, corev1.ConditionFalse, ReasonRestoreFailed,
			fmt.Sprintf("spec.restore: restore Job %s failed: %s: %s", o.RestoreJob.Name, failed.Reason, failed.Message)}
	case o.RestoreJob == nil && o.RestoreSource == nil && p.Restore.FromBackup == nil:
		return Advice{ConditionRestored, corev1.ConditionFalse, ReasonWaitingForSource,
			fmt.Sprintf("spec.restore.from: waiting for Database %q in namespace %q", p.Restore.From, p.Namespace)}
	default:
		return Advice{ConditionRestored, corev1.ConditionUnknown, ReasonRestoring,
			fmt.Sprintf("loading backup %q of Database %q", p.Restore.Backup, p.RestoreSource())}
	}
}

// Warn tells whether a piece of advice is news: False, and not what the
// observed Database already says.
func (a Advice) Warn(xr *composite.Unstructured) bool {
	if a.Status != corev1.ConditionFalse {
		return false
	}
	c := xr.GetCondition(xpv2.ConditionType(a.Type))
	return c.Status != a.Status || string(c.Reason) != a.Reason || c.Message != a.Message
}
