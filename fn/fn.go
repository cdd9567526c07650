// Package fn is dbplane's composition function: it turns a Database into the
// Kubernetes objects that run it, and reads their state back into the
// Database's status.
package fn

import (
	"context"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/resource"
	"github.com/crossplane/function-sdk-go/response"

	inputv1alpha1 "github.com/dbplane/dbplane/apis/input/v1alpha1"
)

// Function composes Databases.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log      logging.Logger
	password func() (string, error)
	cache    *cache
}

// An Option configures a Function.
type Option func(*Function)

// WithPasswordGenerator replaces crypto/rand password generation; for tests.
func WithPasswordGenerator(g func() (string, error)) Option {
	return func(f *Function) { f.password = g }
}

// WithoutCache builds and converts every composed resource on every call.
func WithoutCache() Option {
	return func(f *Function) { f.cache = nil }
}

// New returns a Function that logs to log.
func New(log logging.Logger, o ...Option) *Function {
	f := &Function{log: log, password: GeneratePassword, cache: newCache(4096)}
	for _, fn := range o {
		fn(f)
	}
	return f
}

// RunFunction composes one Database.
func (f *Function) RunFunction(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)

	oxr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot get observed composite resource"))
		return rsp, nil
	}
	log := f.log.WithValues("xr-namespace", oxr.Resource.GetNamespace(), "xr-name", oxr.Resource.GetName())

	db, err := Decode(oxr.Resource.UnstructuredContent())
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}
	Default(&db.Spec)
	if errs := Validate(db); len(errs) > 0 {
		response.Fatal(rsp, errors.Wrap(errs.ToAggregate(), "invalid Database"))
		return rsp, nil
	}

	ocds, err := request.GetObservedComposedResources(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot get observed composed resources"))
		return rsp, nil
	}
	o, err := Observe(ocds)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}

	if r := db.Spec.Restore; r != nil {
		src, err := RestoreSource(req, db)
		if err != nil {
			response.Fatal(rsp, err)
			return rsp, nil
		}
		o.RestoreSource = src
	}

	in, err := DecodeInput(req)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}

	p, err := Resolve(db, o, in, f.password)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot resolve parameters"))
		return rsp, nil
	}
	composed, err := f.cache.Composed(p)
	if err != nil {
		response.Fatal(rsp, err)
		return rsp, nil
	}
	// response.To copied the desired state of earlier steps: add ours to it.
	if rsp.GetDesired() == nil {
		rsp.Desired = &fnv1.State{}
	}
	if rsp.GetDesired().GetResources() == nil {
		rsp.Desired.Resources = map[string]*fnv1.Resource{}
	}
	ready := map[resource.Name]resource.Ready{}
	for _, c := range composed {
		r := Ready(c.Name, o, WantOf(p.Replicas, c.Struct))
		if prev, ok := rsp.Desired.Resources[string(c.Name)]; ok && prev.GetReady() != fnv1.Ready_READY_UNSPECIFIED {
			r = fromProto(prev.GetReady()) // An earlier pipeline step decided.
		}
		rsp.Desired.Resources[string(c.Name)] = &fnv1.Resource{Resource: c.Struct, Ready: toProto(r)}
		ready[c.Name] = r
	}

	if err := SetStatus(rsp, Status(p, o, ready)); err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot set Database status"))
		return rsp, nil
	}

	if rs := Requirements(p); len(rs) > 0 {
		rsp.Requirements = &fnv1.Requirements{Resources: rs}
	}

	var jobs []batchv1.Job
	if p.Backup {
		rs, _, err := request.GetRequiredResource(req, requiredBackupJobs)
		if err != nil {
			response.Fatal(rsp, errors.Wrap(err, "cannot get backup Jobs"))
			return rsp, nil
		}
		if jobs, err = DecodeJobs(rs); err != nil {
			response.Fatal(rsp, err)
			return rsp, nil
		}
	}
	for _, a := range append(Advise(db, p, o), BackupHealthOf(p.Backup, o.CronJob, jobs)) {
		c := condition(rsp, a.Type, a.Status, a.Reason).TargetComposite()
		if a.Message != "" {
			c.WithMessage(a.Message)
		}
		if a.Warn(oxr.Resource) {
			response.Warning(rsp, errors.New(a.Message)).TargetCompositeAndClaim()
		}
	}

	log.Debug("Composed Database", "composed", len(ready))
	return rsp, nil
}

// DecodeInput reads the optional input of the Composition step.
func DecodeInput(req *fnv1.RunFunctionRequest) (Input, error) {
	in := Input{SQLUsers: true}
	if req.GetInput() == nil {
		return in, nil
	}
	ti := &inputv1alpha1.Input{}
	if err := request.GetInput(req, ti); err != nil {
		return Input{}, errors.Wrap(err, "cannot decode function input")
	}
	if ti.SQLUsers != nil {
		in.SQLUsers = *ti.SQLUsers
	}
	return in, nil
}

// condition sets a condition on the XR.
func condition(rsp *fnv1.RunFunctionResponse, typ string, s corev1.ConditionStatus, reason string) *response.ConditionOption {
	switch s {
	case corev1.ConditionTrue:
		return response.ConditionTrue(rsp, typ, reason)
	case corev1.ConditionFalse:
		return response.ConditionFalse(rsp, typ, reason)
	default:
		return response.ConditionUnknown(rsp, typ, reason)
	}
}

// A Composed object and its composed resource name.
type Composed struct {
	Name   resource.Name
	Object runtime.Object
}

// Compose builds every object a Database consists of, in a stable order.
func Compose(p Params) []Composed {
	c := []Composed{
		{rnSecret, Secret(p)},
		{rnConfigMap, ConfigMap(p)},
		{rnHeadlessService, HeadlessService(p)},
		{rnStatefulSet, StatefulSet(p)},
	}
	if p.ComposeService {
		c = append(c, Composed{rnService, Service(p)})
	}
	if p.ComposeRestoreJob {
		c = append(c, Composed{rnRestoreJob, RestoreJob(p)})
	}
	if p.SQLUsers {
		c = append(c, Composed{rnProviderConfig, ProviderConfig(p)})
		for _, l := range p.Logins {
			c = append(c, Composed{l.Resource, SQLUser(p, l)})
		}
	}
	if p.Profile.DisruptionBudget && p.Replicas > 1 {
		c = append(c, Composed{rnDisruption, PodDisruptionBudget(p)})
	}
	if p.Backup || p.KeepBackupVolume {
		c = append(c, Composed{rnBackupVolume, BackupVolume(p)})
	}
	if p.Backup {
		c = append(c, Composed{rnBackupCronJob, BackupCronJob(p)})
	}
	return c
}
