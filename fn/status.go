package fn

import (
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"

	"github.com/crossplane/function-sdk-go/resource"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// Status computes the Database's status from what was observed and which of
// the desired resources are ready.
//
// Phase is Pending before anything composed exists, Creating until the first
// replica is ready, PartiallyReady while some replicas or resources are not,
// and Ready when all are. Failed is for what will not mend itself: a restore
// Job that gave up. Input the function refuses is not Failed: it gets a Fatal
// result, and Crossplane then applies nothing, status included, and reports
// the reason on the Synced condition.
func Status(p Params, o Observed, ready map[resource.Name]resource.Ready) v1.DatabaseStatus {
	s := v1.DatabaseStatus{Endpoint: net.JoinHostPort(p.Host(), itoa(p.Engine.Port))}
	if o.StatefulSet != nil {
		s.Replicas = o.StatefulSet.Status.ReadyReplicas
	}
	s.LastBackup = lastBackup(o)
	s.OnDemandBackup = BackupNowStatus(p, o)
	if r := o.Replication; r != nil && p.Replicated {
		s.Primary = r.Primary
		for _, m := range r.Members {
			sm := v1.Member{Name: m.Name, Role: string(m.Role), Streaming: m.Streaming, Sync: m.SyncState, LagBytes: m.LagBytes, Message: m.Message}
			// Only a standby's replay lag is known in time.
			if m.Role == sqlv1alpha1.MemberStandby {
				sm.LagSeconds = seconds(m.LagMillis)
			}
			s.Members = append(s.Members, sm)
		}
	}

	all := true
	for _, r := range ready {
		all = all && r == resource.ReadyTrue
	}
	s.Ready = all && len(ready) > 0

	switch {
	case s.Ready:
		s.Phase = v1.PhaseReady
	case jobFailure(o.RestoreJob) != nil:
		// Terminal: the restore Job gave up, and apps never got a
		// Service. Restore into a new Database.
		s.Phase = v1.PhaseFailed
	case len(o.Exists) == 0:
		s.Phase = v1.PhasePending
	case s.Replicas == 0:
		s.Phase = v1.PhaseCreating
	default:
		s.Phase = v1.PhasePartiallyReady
	}
	return s
}

// lastBackup is when a backup last completed: the CronJob's last success
// or a backup Job's (on demand, or scheduled and newer than the CronJob's
// status says), whichever is later.
func lastBackup(o Observed) *metav1.Time {
	var last *metav1.Time
	if o.CronJob != nil {
		last = o.CronJob.Status.LastSuccessfulTime
	}
	jobs := o.BackupJobs
	if j := o.BackupNowJob; j != nil {
		jobs = append(slices.Clone(jobs), *j)
	}
	for _, j := range jobs {
		c := finishedCondition(j)
		if c == nil || c.Type != batchv1.JobComplete || c.LastTransitionTime.IsZero() {
			continue
		}
		if last == nil || c.LastTransitionTime.After(last.Time) {
			last = ptr.To(c.LastTransitionTime)
		}
	}
	return last
}

// SetStatus writes the Database status fields the function owns into the
// desired XR, beside any an earlier step set. Crossplane owns
// status.conditions.
func SetStatus(dxr *resource.Composite, s v1.DatabaseStatus) error {
	fields := map[string]any{
		"phase":    string(s.Phase),
		"ready":    s.Ready,
		"replicas": int64(s.Replicas),
		"endpoint": s.Endpoint,
	}
	if s.ObservedGeneration != 0 {
		fields["observedGeneration"] = s.ObservedGeneration
	}
	if s.Primary != "" {
		fields["primary"] = s.Primary
	}
	if len(s.Members) > 0 {
		ms, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&struct {
			M []v1.Member `json:"m"`
		}{s.Members})
		if err != nil {
			return errors.Wrap(err, "cannot convert status.members")
		}
		fields["members"] = ms["m"]
	}
	if s.LastBackup != nil {
		fields["lastBackup"] = s.LastBackup.UTC().Format(time.RFC3339)
	}
	if s.LastVerifiedBackup != nil {
		fields["lastVerifiedBackup"] = s.LastVerifiedBackup.UTC().Format(time.RFC3339)
		fields["restoreSeconds"] = s.RestoreSeconds
	}
	if b := s.OnDemandBackup; b != nil {
		ob := map[string]any{"token": b.Token, "job": b.Job, "result": string(b.Result)}
		if b.CompletionTime != nil {
			ob["completionTime"] = b.CompletionTime.UTC().Format(time.RFC3339)
		}
		if b.Message != "" {
			ob["message"] = b.Message
		}
		fields["onDemandBackup"] = ob
	}
	st, ok := dxr.Resource.Object["status"].(map[string]any)
	if !ok {
		st = make(map[string]any, len(fields))
	}
	maps.Copy(st, fields)
	return dxr.Resource.SetValue("status", st)
}

// seconds renders milliseconds as seconds with three decimals.
func seconds(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}
