package fn

import (
	"maps"
	"reflect"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	xpv2 "github.com/crossplane/crossplane/apis/v2/core/v2"
	"github.com/crossplane/function-sdk-go/errors"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	fnresource "github.com/crossplane/function-sdk-go/resource"

	sqlv1alpha1 "github.com/dbplane/dbplane/apis/sql/v1alpha1"
	v1 "github.com/dbplane/dbplane/apis/v1"
)

// Observed is what the function reads back from the cluster, decoded once:
// the observed composed resources and the resources it asked Crossplane for.
type Observed struct {
	// Exists holds the composed resources that exist.
	Exists map[fnresource.Name]bool

	// StatefulSet is the observed StatefulSet without its pod template.
	StatefulSet  *appsv1.StatefulSet
	CronJob      *batchv1.CronJob
	BackupVolume *corev1.PersistentVolumeClaim
	RestoreJob   *batchv1.Job
	// BackupNowJob is the on-demand backup Job, once it exists.
	BackupNowJob *batchv1.Job
	Autoscaler   *autoscalingv2.HorizontalPodAutoscaler

	// ReadyCondition holds, for composed resources whose readiness is their
	// own Ready condition (SQL Users), whether it is True.
	ReadyCondition map[fnresource.Name]bool

	// Password from the observed Secret; empty when there is no Secret yet.
	Password string

	// RestoreSource is the Database spec.restore.from names, once Crossplane
	// supplied it.
	RestoreSource *v1.Database

	// BackupJobs are the Database's backup Jobs, once Crossplane supplied
	// them; VerifyJobs its verify Jobs.
	BackupJobs []batchv1.Job
	VerifyJobs []batchv1.Job

	// Namespace is the Database's Namespace, once Crossplane supplied it:
	// the backup volume's second owner, which keeps it when the Database
	// is deleted.
	Namespace *corev1.Namespace
	// LeftBackupVolume is a backup volume of the Database's name that
	// exists but is not composed: one a deleted Database of the same name
	// left behind, which this one adopts.
	LeftBackupVolume *corev1.PersistentVolumeClaim

	// Replication is what the SQL provider's Replication last saw of the
	// servers, once it exists.
	Replication *sqlv1alpha1.ReplicationObservation
	// ReplicationMessage is its Ready condition's message: why it is not
	// available, a failover under way or impossible among them.
	ReplicationMessage string

	// OperatorCRDs holds, by name, whether each Prometheus Operator CRD the
	// function asked for exists; a CRD Crossplane did not answer for yet
	// is missing from it.
	OperatorCRDs map[string]bool

	// TLS is what the function issued, read back from its Secrets.
	TLS ObservedTLS
	// CertManager: cert-manager's Certificate CRD exists;
	// CertManagerKnown: Crossplane said whether it does.
	CertManager      bool
	CertManagerKnown bool
}

// Observe reads the observed composed resources, each through its row of
// Kinds, and the required resources the last call asked for. An object it
// cannot read is an error: guessing, for example generating a new password
// for an existing server, would break the Database.
func Observe(req *fnv1.RunFunctionRequest, db *v1.Database) (Observed, error) {
	ocds := req.GetObserved().GetResources()
	o := Observed{Exists: make(map[fnresource.Name]bool, len(ocds)), ReadyCondition: map[fnresource.Name]bool{}}
	// In name order, so that of two unreadable objects the same one is
	// reported on every call.
	for _, name := range slices.Sorted(maps.Keys(ocds)) {
		n := fnresource.Name(name)
		o.Exists[n] = true
		k, ok := kindOf(n)
		if !ok || k.Observe == nil {
			continue
		}
		if err := k.Observe(ocds[name].GetResource().AsMap(), n, &o); err != nil {
			return Observed{}, err
		}
	}

	if r := db.Spec.Restore; r != nil && r.From != "" {
		rs, err := required(req, requiredRestoreSource)
		if err != nil {
			return Observed{}, errors.Wrap(err, "cannot get the restore source Database")
		}
		if len(rs) > 0 {
			if o.RestoreSource, err = Decode(rs[0]); err != nil {
				return Observed{}, errors.Wrap(err, "cannot decode the restore source Database")
			}
		}
	}

	o.sameCA()
	observeOperatorCRDs(req, &o)
	observeCertManager(req, &o)

	if err := observeBackupOwner(req, &o); err != nil {
		return Observed{}, err
	}

	var err error
	if o.BackupJobs, err = requiredJobs(req, requiredBackupJobs, "backup"); err != nil {
		return Observed{}, err
	}
	if o.VerifyJobs, err = requiredJobs(req, requiredVerifyJobs, "verify"); err != nil {
		return Observed{}, err
	}
	return o, nil
}

// requiredJobs are the Jobs Crossplane supplied for requirement name.
func requiredJobs(req *fnv1.RunFunctionRequest, name, what string) ([]batchv1.Job, error) {
	rs, err := required(req, name)
	if err != nil {
		return nil, errors.Wrapf(err, "cannot get %s Jobs", what)
	}
	var out []batchv1.Job
	for _, r := range rs {
		j := batchv1.Job{}
		if err := fromObject(r, &j); err != nil {
			return nil, errors.Wrapf(err, "cannot read %s Job %q", what, (&unstructured.Unstructured{Object: r}).GetName())
		}
		out = append(out, j)
	}
	return out, nil
}

// requirements asks for rs in the field the calling Crossplane resolves:
// Requirements.Resources from one that advertises the capability (v2.2 and
// later, and their render), else the deprecated extra_resources, the only
// one Crossplane 1.x (and its beta render) knows. Sent to 1.x, Resources
// would be an unknown field it never answers, and its render, which
// compares each call's requirements with reflect.DeepEqual, would find
// that field's bytes (a map, marshalled in random order) different from
// one call to the next and refuse the Database as unstable.
func requirements(req *fnv1.RunFunctionRequest, rs map[string]*fnv1.ResourceSelector) *fnv1.Requirements {
	if request.HasCapability(req, fnv1.Capability_CAPABILITY_REQUIRED_RESOURCES) {
		return &fnv1.Requirements{Resources: rs}
	}
	return &fnv1.Requirements{ExtraResources: rs} //nolint:staticcheck // Crossplane 1.x resolves only this field.
}

// answered is what Crossplane supplied for requirement name, and whether
// it answered it at all (an answer may hold no items: nothing matched):
// in required_resources, or in extra_resources from a Crossplane that was
// asked there (see requirements).
func answered(req *fnv1.RunFunctionRequest, name string) (*fnv1.Resources, bool) {
	if rs, ok := req.GetRequiredResources()[name]; ok {
		return rs, true
	}
	rs, ok := req.GetExtraResources()[name] //nolint:staticcheck // Crossplane 1.x answers in this field.
	return rs, ok
}

// required is what Crossplane supplied for a requirement the last call
// made: in required_resources, or in extra_resources from a Crossplane
// that was asked there (see requirements).
func required(req *fnv1.RunFunctionRequest, name string) ([]map[string]any, error) {
	rs, _ := answered(req, name)
	out := make([]map[string]any, 0, len(rs.GetItems()))
	for _, i := range rs.GetItems() {
		if i.GetResource() == nil {
			return nil, errors.Errorf("required resource %q has an empty item", name)
		}
		out = append(out, i.GetResource().AsMap())
	}
	return out, nil
}

// decodeTo is an Observe that decodes the observed object into the field
// of Observed that at points to.
func decodeTo[T any](at func(*Observed) **T) func(map[string]any, fnresource.Name, *Observed) error {
	return func(u map[string]any, n fnresource.Name, o *Observed) error {
		v, err := decodeObserved[T](u, n)
		if err != nil {
			return err
		}
		*at(o) = v
		return nil
	}
}

// decodeObserved decodes observed composed resource n into a new T.
func decodeObserved[T any](u map[string]any, n fnresource.Name) (*T, error) {
	v := new(T)
	if err := fromObject(u, v); err != nil {
		return nil, errors.Wrapf(err, "observed %s %q (composed resource %s)", reflect.TypeFor[T]().Name(), (&unstructured.Unstructured{Object: u}).GetName(), n)
	}
	return v, nil
}

// observeStatefulSet reads the observed StatefulSet but for its pod
// template, which nothing reads back and which is most of its size.
func observeStatefulSet(u map[string]any, n fnresource.Name, o *Observed) error {
	if spec, ok := u["spec"].(map[string]any); ok {
		delete(spec, "template")
	}
	return decodeTo(func(o *Observed) **appsv1.StatefulSet { return &o.StatefulSet })(u, n, o)
}

// observeSecret reads the superuser's password.
func observeSecret(u map[string]any, n fnresource.Name, o *Observed) error {
	s, err := decodeObserved[corev1.Secret](u, n)
	if err != nil {
		return err
	}
	if len(s.Data[keyPassword]) == 0 {
		return errors.Errorf("observed Secret %q has no data.%s: refusing to generate a new password for an existing database", s.GetName(), keyPassword)
	}
	o.Password = string(s.Data[keyPassword])
	return nil
}

// observeReadyCondition records whether the object's Ready condition is
// True, for objects that report their own readiness (managed resources).
func observeReadyCondition(u map[string]any, n fnresource.Name, o *Observed) error {
	st, _ := u["status"].(map[string]any)
	cs, _ := st["conditions"].([]any)
	for _, c := range cs {
		if cm, ok := c.(map[string]any); ok && cm["type"] == string(xpv2.TypeReady) {
			o.ReadyCondition[n] = cm["status"] == string(corev1.ConditionTrue)
		}
	}
	return nil
}

// ClaimTemplate is the observed StatefulSet's data claim template, or nil.
// A StatefulSet's claim templates are immutable: once one exists, what we
// compose must repeat it.
func (o Observed) ClaimTemplate() *corev1.PersistentVolumeClaim {
	if o.StatefulSet == nil {
		return nil
	}
	for i, t := range o.StatefulSet.Spec.VolumeClaimTemplates {
		if t.Name == dataVolume {
			return &o.StatefulSet.Spec.VolumeClaimTemplates[i]
		}
	}
	return nil
}

// BackupVolumeSize is the existing backup volume's requested size: the
// composed one's, else the one a deleted Database of the same name left.
func (o Observed) BackupVolumeSize() *resource.Quantity {
	v := o.BackupVolume
	if v == nil {
		v = o.LeftBackupVolume
	}
	if v == nil {
		return nil
	}
	if q, ok := v.Spec.Resources.Requests[corev1.ResourceStorage]; ok {
		return &q
	}
	return nil
}

// jobSucceeded reports a Job whose Complete condition is true.
func jobSucceeded(j *batchv1.Job) bool {
	if j == nil {
		return false
	}
	c := finishedCondition(*j)
	return c != nil && c.Type == batchv1.JobComplete
}

// jobFailure is a Job's true Failed condition, if it failed for good.
func jobFailure(j *batchv1.Job) *batchv1.JobCondition {
	if j == nil {
		return nil
	}
	if c := finishedCondition(*j); c != nil && c.Type == batchv1.JobFailed {
		return c
	}
	return nil
}

// streaming is the number of standbys that stream.
func streaming(r *sqlv1alpha1.ReplicationObservation) int {
	n := 0
	for _, m := range r.Members {
		if m.Role == sqlv1alpha1.MemberStandby && m.Streaming {
			n++
		}
	}
	return n
}

// observeReplication reads the Replication's status and its Ready
// condition.
func observeReplication(u map[string]any, n fnresource.Name, o *Observed) error {
	if err := observeReadyCondition(u, n, o); err != nil {
		return err
	}
	r, err := decodeObserved[sqlv1alpha1.Replication](u, n)
	if err != nil {
		return err
	}
	o.Replication = &r.Status.AtProvider
	o.ReplicationMessage = r.Status.GetCondition(xpv2.TypeReady).Message
	return nil
}
