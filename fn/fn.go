// Package fn is dbplane's composition function: it turns a Database into the
// Kubernetes objects that run it, and reads their state back into the
// Database's status.
package fn

import (
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/crossplane/function-sdk-go/errors"
	"github.com/crossplane/function-sdk-go/logging"
	fnv1 "github.com/crossplane/function-sdk-go/proto/v1"
	"github.com/crossplane/function-sdk-go/request"
	"github.com/crossplane/function-sdk-go/response"

	inputv1alpha1 "github.com/dbplane/dbplane/apis/input/v1alpha1"
)

// Function composes Databases.
type Function struct {
	fnv1.UnimplementedFunctionRunnerServiceServer

	log      logging.Logger
	password func() (string, error)
	issuer   Issuer
	now      func() time.Time
	build    func(Params) ([]Desired, error)
	composed *tracker
	metrics  *Metrics
}

// An Option configures a Function.
type Option func(*Function)

// WithPasswordGenerator replaces crypto/rand password generation; for tests.
func WithPasswordGenerator(g func() (string, error)) Option {
	return func(f *Function) { f.password = g }
}

// WithIssuer replaces the ECDSA certificate issuer; for tests.
func WithIssuer(i Issuer) Option {
	return func(f *Function) { f.issuer = i }
}

// WithClock replaces the clock certificates are issued and renewed by; for
// tests.
func WithClock(now func() time.Time) Option {
	return func(f *Function) { f.now = now }
}

// WithoutCache builds and converts every composed resource on every call.
func WithoutCache() Option {
	return func(f *Function) { f.build = Build }
}

// New returns a Function that logs to log.
func New(log logging.Logger, o ...Option) *Function {
	f := &Function{log: log, password: GeneratePassword, issuer: X509Issuer{}, now: time.Now, build: memoize(4096, Build).Build, composed: newTracker(4096)}
	for _, fn := range o {
		fn(f)
	}
	return f
}

// RunFunction composes one Database. A panic anywhere below becomes a Fatal
// result for this Database alone: function-sdk-go does not recover, and
// one bad Database must not stop the function for every other.
func (f *Function) RunFunction(ctx context.Context, req *fnv1.RunFunctionRequest) (rsp *fnv1.RunFunctionResponse, err error) {
	defer func() {
		if r := recover(); r != nil {
			rsp, err = f.crashed(req, r), nil
		}
		f.metrics.returned(rsp)
	}()
	return f.compose(ctx, req)
}

// compose is RunFunction's script.
func (f *Function) compose(_ context.Context, req *fnv1.RunFunctionRequest) (*fnv1.RunFunctionResponse, error) {
	rsp := response.To(req, response.DefaultTTL)

	in, err := DecodeInput(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot decode function input"))
		return rsp, nil
	}

	oxr, err := request.GetObservedCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot get observed composite resource"))
		return rsp, nil
	}
	log := f.log.WithValues("xr-namespace", oxr.Resource.GetNamespace(), "xr-name", oxr.Resource.GetName())

	db, err := Decode(oxr.Resource.UnstructuredContent())
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot decode Database"))
		return rsp, nil
	}
	if err := Identify(db); err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot accept Database"))
		return rsp, nil
	}
	Default(&db.Spec)
	if errs := Validate(db); len(errs) > 0 {
		response.Fatal(rsp, errors.Wrap(errs.ToAggregate(), "cannot accept Database"))
		return rsp, nil
	}

	o, err := Observe(req, db)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot observe the Database's resources"))
		return rsp, nil
	}
	if err := ValidateRestoreSource(db, o.RestoreSource); err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot accept Database"))
		return rsp, nil
	}

	p, err := Resolve(db, o, in, f.password)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot resolve parameters"))
		return rsp, nil
	}
	if err := p.ResolveTLS(o, in, f.issuer, f.now()); err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot issue TLS certificates"))
		return rsp, nil
	}

	ds, err := f.build(p)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot build composed resources"))
		return rsp, nil
	}
	ready := SetDesired(rsp, ds, o)

	dxr, err := request.GetDesiredCompositeResource(req)
	if err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot get desired composite resource"))
		return rsp, nil
	}
	st := Status(p, o, ready)
	st.ObservedGeneration = db.Generation
	verified := VerificationOf(p.Backup && p.Verify, o.VerifyJobs)
	st.LastVerifiedBackup, st.RestoreSeconds = verified.At, verified.Seconds
	// Info only when what the Database composes changed: Crossplane calls
	// for every Database at least every poll interval. Not for a call whose
	// requirements Crossplane has yet to answer: it calls again with them
	// and keeps only that call's answer.
	if !p.OperatorUnknown {
		changed := f.composed.changed(p.Namespace+"/"+p.Name, ds)
		if len(changed) > 0 {
			log.Info("Composed resources changed", "changes", changed, "phase", st.Phase)
		}
		f.metrics.composed(p.Namespace+"/"+p.Name, st.Phase, len(changed) > 0)
	}
	if err := SetStatus(dxr, st); err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot set Database status"))
		return rsp, nil
	}
	dxr.Ready = fromProto(req.GetDesired().GetComposite().GetReady())
	if err := response.SetDesiredCompositeResource(rsp, dxr); err != nil {
		response.Fatal(rsp, errors.Wrap(err, "cannot set desired composite resource"))
		return rsp, nil
	}

	if rs := Requirements(p); len(rs) > 0 {
		rsp.Requirements = requirements(req, rs)
	}

	// BackupVerified always, so that one left from when backups were on
	// does not stay.
	for _, a := range append(Advise(p, o), BackupHealthOf(p.Backup, o.CronJob, o.BackupJobs), verified.Advice) {
		// CompositeAndClaim: a claim's XDatabase passes them on to the
		// DatabaseClaim; for a Database there is no claim to pass them to.
		c := condition(rsp, a.Type, a.Status, a.Reason).TargetCompositeAndClaim()
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

// crashed is the response to a call that panicked: a Fatal result naming
// the Database, so Crossplane applies nothing and reports it on the
// Database, and the stack in the log.
func (f *Function) crashed(req *fnv1.RunFunctionRequest, r any) *fnv1.RunFunctionResponse {
	md := req.GetObserved().GetComposite().GetResource().GetFields()["metadata"].GetStructValue().GetFields()
	ns, name := md["namespace"].GetStringValue(), md["name"].GetStringValue()
	f.log.Info("RunFunction panicked", "xr-namespace", ns, "xr-name", name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	// Not response.To: compose may have written into the request's desired
	// state, which response.To shares.
	rsp := &fnv1.RunFunctionResponse{Meta: &fnv1.ResponseMeta{Tag: req.GetMeta().GetTag(), Ttl: durationpb.New(response.DefaultTTL)}}
	response.Fatal(rsp, errors.Errorf("cannot compose Database %s/%s: the function panicked: %v", ns, name, r))
	return rsp
}

// DecodeInput reads the optional input of the Composition step.
func DecodeInput(req *fnv1.RunFunctionRequest) (Input, error) {
	in := Input{SQLUsers: true}
	if req.GetInput() == nil {
		return in, nil
	}
	ti := &inputv1alpha1.Input{}
	if err := request.GetInput(req, ti); err != nil {
		return Input{}, err
	}
	if ti.SQLUsers != nil {
		in.SQLUsers = *ti.SQLUsers
	}
	in.ProviderNamespace = ptr.Deref(ti.ProviderNamespace, "")
	in.MonitoringNamespace = ptr.Deref(ti.MonitoringNamespace, "")
	if ti.TLS != nil && ti.TLS.IssuerRef != nil {
		r := ti.TLS.IssuerRef
		in.Issuer = &IssuerRef{Name: r.Name, Kind: cmp.Or(r.Kind, "Issuer"), Group: cmp.Or(r.Group, "cert-manager.io")}
	}
	if bs := ti.BackupStorage; bs != nil && bs.S3 != nil {
		s3 := *bs.S3
		if s3.Region == "" {
			s3.Region = "us-east-1"
		}
		if s3.Endpoint == "" || s3.Bucket == "" || s3.CredentialsSecretName == "" {
			return Input{}, errors.New("backupStorage.s3: endpoint, bucket and credentialsSecretName are required")
		}
		if s3.Prefix != "" && !strings.HasSuffix(s3.Prefix, "/") {
			return Input{}, errors.Errorf("backupStorage.s3.prefix: %q must end in /", s3.Prefix)
		}
		in.S3 = &s3
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
