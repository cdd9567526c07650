package user

import (
	"context"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossplane/crossplane-runtime/v2/pkg/controller"
	"github.com/crossplane/crossplane-runtime/v2/pkg/errors"
	"github.com/crossplane/crossplane-runtime/v2/pkg/event"
	"github.com/crossplane/crossplane-runtime/v2/pkg/ratelimiter"
	"github.com/crossplane/crossplane-runtime/v2/pkg/reconciler/managed"
	"github.com/crossplane/crossplane-runtime/v2/pkg/resource"
	"github.com/crossplane/crossplane-runtime/v2/pkg/statemetrics"

	"github.com/dbplane/dbplane/apis/sql/v1alpha1"
	"github.com/dbplane/dbplane/internal/clients/mysql"
	"github.com/dbplane/dbplane/internal/clients/postgres"
	"github.com/dbplane/dbplane/internal/clients/xsql"
)

// Options of the User controller beyond crossplane-runtime's.
type Options struct {
	// Pools are the connection pools shared between reconciles.
	Pools *xsql.Pools
	// SQL configures connections to servers.
	SQL xsql.Options
	// AbandonAfter is how long a User being deleted waits for an
	// unreachable server before the provider stops trying to drop its
	// login.
	AbandonAfter time.Duration
}

// engines builds the Server of each engine: the one place that differs by
// engine.
var engines = map[v1alpha1.Engine]func(o Options, flavors *mysql.Flavors, ep xsql.Endpoint, admin xsql.Credential) (Server, error){
	v1alpha1.PostgreSQL: func(o Options, _ *mysql.Flavors, ep xsql.Endpoint, admin xsql.Credential) (Server, error) {
		c := postgres.NewClient(postgres.PoolOpener(o.Pools, ep, admin, o.SQL), ep)
		return reloading{Server: c, reload: c.ReloadTLS, served: func(ctx context.Context) ([]byte, error) {
			return postgres.ServedCertificate(ctx, ep, admin, o.SQL)
		}}, nil
	},
	v1alpha1.MySQL: func(o Options, flavors *mysql.Flavors, ep xsql.Endpoint, admin xsql.Credential) (Server, error) {
		db, err := mysql.PoolDB(o.Pools, ep, admin, o.SQL)
		if err != nil {
			return nil, err
		}
		c := mysql.NewClient(db, ep, flavors)
		return reloading{Server: c, reload: c.ReloadTLS, served: func(ctx context.Context) ([]byte, error) {
			return mysql.ServedCertificate(ctx, ep, admin, o.SQL)
		}}, nil
	},
}

// reloading is a Server whose TLS the provider can reload.
type reloading struct {
	Server

	reload func(ctx context.Context) error
	served func(ctx context.Context) ([]byte, error)
}

// ReloadTLS makes the server read its TLS files again.
func (r reloading) ReloadTLS(ctx context.Context) error { return r.reload(ctx) }

// ServedCertificate is the certificate a new connection gets.
func (r reloading) ServedCertificate(ctx context.Context) ([]byte, error) { return r.served(ctx) }

// NewServer returns the NewServerFn of real servers, reached through o's
// pools.
func NewServer(o Options) NewServerFn {
	flavors := &mysql.Flavors{}
	return func(pc *v1alpha1.ProviderConfig, ep xsql.Endpoint, admin xsql.Credential) (Server, error) {
		newServer, ok := engines[pc.Spec.Engine]
		if !ok {
			return nil, errors.Errorf("spec.engine: Unsupported value: %q: supported values: %q, %q", pc.Spec.Engine, v1alpha1.PostgreSQL, v1alpha1.MySQL)
		}
		return newServer(o, flavors, ep, admin)
	}
}

// Setup adds a controller that reconciles Users.
func Setup(mgr ctrl.Manager, o controller.Options, uo Options) error {
	name := managed.ControllerName(v1alpha1.UserGroupKind)
	//nolint:staticcheck // crossplane-runtime's event recorder takes the record.EventRecorder interface.
	record := event.NewAPIRecorder(mgr.GetEventRecorderFor(name), o.EventFilterFunctions...)

	opts := []managed.ReconcilerOption{
		managed.WithTypedExternalConnector(NewConnector(mgr.GetClient(), mgr.GetAPIReader(), NewServer(uo), record, uo.AbandonAfter)),
		managed.WithLogger(o.Logger.WithValues("controller", name)),
		managed.WithPollInterval(o.PollInterval),
		managed.WithRecorder(record),
		managed.WithManagementPolicies(),
		// The login name is the external name, known before Create: it is
		// safe to retry a Create whose outcome was lost.
		managed.WithDeterministicExternalName(true),
		// A server's catalog is consistent: a login that Observe does not
		// find right after Create is really missing, and a deleted User
		// needs no grace period before its finalizer goes.
		managed.WithCreationGracePeriod(0),
	}
	if o.MetricOptions != nil {
		opts = append(opts, managed.WithMetricRecorder(o.MetricOptions.MRMetrics))
		if o.MetricOptions.MRStateMetrics != nil {
			sr := statemetrics.NewMRStateRecorder(mgr.GetClient(), o.Logger, o.MetricOptions.MRStateMetrics, &v1alpha1.UserList{}, o.MetricOptions.PollStateMetricInterval)
			if err := mgr.Add(sr); err != nil {
				return errors.Wrap(err, "cannot add the User state metrics recorder")
			}
		}
	}

	r := managed.NewReconciler(mgr, resource.ManagedKind(v1alpha1.UserGroupVersionKind), opts...)
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		WithOptions(o.ForControllerRuntime()).
		WithEventFilter(resource.DesiredStateChanged()).
		For(&v1alpha1.User{}).
		Complete(ratelimiter.NewReconciler(name, r, o.GlobalRateLimiter))
}

// SetupGated adds the User controller once the User CRD exists: with
// Crossplane v2 a managed resource's CRD appears only when its
// ManagedResourceDefinition is activated.
func SetupGated(mgr ctrl.Manager, o controller.Options, uo Options) error {
	o.Gate.Register(func() {
		if err := Setup(mgr, o, uo); err != nil {
			mgr.GetLogger().Error(err, "cannot set up the User controller")
		}
	}, v1alpha1.UserGroupVersionKind)
	return nil
}
